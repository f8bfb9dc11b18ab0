//! Reply payload structures of cmdmon protocol v6 (features.md §4.6): one struct per report
//! reply, field for field as on the wire, in host units (seconds, ppm) after float decoding.

use crate::field::{Addr, Timespec};

/// SOURCE_DATA: one row of `sources`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SourceData {
    /// For a refclock: an IPv4-family address holding the refid.
    pub ip_addr: Addr,
    pub poll: i16,
    pub stratum: u16,
    /// 0 selected, 1 nonselectable, 2 falseticker, 3 jittery, 4 combined (unselected), 5 selectable.
    pub state: u16,
    /// 0 client, 1 peer, 2 reference clock.
    pub mode: u16,
    pub flags: u16,
    pub reachability: u16,
    /// Seconds since the last sample; 0xFFFFFFFF = never.
    pub since_sample: u32,
    pub orig_latest_meas: f64,
    pub latest_meas: f64,
    pub latest_meas_err: f64,
}

/// TRACKING.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tracking {
    pub ref_id: u32,
    pub ip_addr: Addr,
    pub stratum: u16,
    /// 0 normal, 1 insert, 2 delete, 3 unsynchronised.
    pub leap_status: u16,
    pub ref_time: Timespec,
    pub current_correction: f64,
    pub last_offset: f64,
    pub rms_offset: f64,
    pub freq_ppm: f64,
    pub resid_freq_ppm: f64,
    pub skew_ppm: f64,
    pub root_delay: f64,
    pub root_dispersion: f64,
    pub last_update_interval: f64,
}

/// SOURCESTATS.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SourceStats {
    pub ref_id: u32,
    pub ip_addr: Addr,
    pub n_samples: u32,
    pub n_runs: u32,
    pub span_seconds: u32,
    pub sd: f64,
    pub resid_freq_ppm: f64,
    pub skew_ppm: f64,
    pub est_offset: f64,
    pub est_offset_err: f64,
}

/// RTC.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rtc {
    pub ref_time: Timespec,
    pub n_samples: u16,
    pub n_runs: u16,
    pub span_seconds: u32,
    pub rtc_seconds_fast: f64,
    pub rtc_gain_rate_ppm: f64,
}

/// ACTIVITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Activity {
    pub online: i32,
    pub offline: i32,
    pub burst_online: i32,
    pub burst_offline: i32,
    pub unresolved: i32,
}

/// SMOOTHING.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Smoothing {
    /// 0x1 active, 0x2 leap only.
    pub flags: u32,
    pub offset: f64,
    pub freq_ppm: f64,
    pub wander_ppm: f64,
    pub last_update_ago: f64,
    pub remaining_time: f64,
}

/// SERVER_STATS3 (first 11 counters, 32-bit) / SERVER_STATS4 (all 17, 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerStats {
    pub ntp_hits: u64,
    pub nke_hits: u64,
    pub cmd_hits: u64,
    pub ntp_drops: u64,
    pub nke_drops: u64,
    pub cmd_drops: u64,
    pub log_drops: u64,
    pub ntp_auth_hits: u64,
    pub ntp_interleaved_hits: u64,
    pub ntp_timestamps: u64,
    pub ntp_span_seconds: u64,
    pub ntp_daemon_rx_timestamps: u64,
    pub ntp_daemon_tx_timestamps: u64,
    pub ntp_kernel_rx_timestamps: u64,
    pub ntp_kernel_tx_timestamps: u64,
    pub ntp_hw_rx_timestamps: u64,
    pub ntp_hw_tx_timestamps: u64,
}

impl ServerStats {
    pub(crate) fn counters(&self) -> [u64; 17] {
        [
            self.ntp_hits,
            self.nke_hits,
            self.cmd_hits,
            self.ntp_drops,
            self.nke_drops,
            self.cmd_drops,
            self.log_drops,
            self.ntp_auth_hits,
            self.ntp_interleaved_hits,
            self.ntp_timestamps,
            self.ntp_span_seconds,
            self.ntp_daemon_rx_timestamps,
            self.ntp_daemon_tx_timestamps,
            self.ntp_kernel_rx_timestamps,
            self.ntp_kernel_tx_timestamps,
            self.ntp_hw_rx_timestamps,
            self.ntp_hw_tx_timestamps,
        ]
    }
    pub(crate) fn from_counters(c: [u64; 17]) -> Self {
        ServerStats {
            ntp_hits: c[0],
            nke_hits: c[1],
            cmd_hits: c[2],
            ntp_drops: c[3],
            nke_drops: c[4],
            cmd_drops: c[5],
            log_drops: c[6],
            ntp_auth_hits: c[7],
            ntp_interleaved_hits: c[8],
            ntp_timestamps: c[9],
            ntp_span_seconds: c[10],
            ntp_daemon_rx_timestamps: c[11],
            ntp_daemon_tx_timestamps: c[12],
            ntp_kernel_rx_timestamps: c[13],
            ntp_kernel_tx_timestamps: c[14],
            ntp_hw_rx_timestamps: c[15],
            ntp_hw_tx_timestamps: c[16],
        }
    }
}

/// NTP_DATA (chronyc ≤ 4.5) / NTP_DATA2 (4.6+, adds the kernel/hardware counters).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NtpData {
    pub remote_addr: Addr,
    pub local_addr: Addr,
    pub remote_port: u16,
    pub leap: u8,
    pub version: u8,
    pub mode: u8,
    pub stratum: u8,
    pub poll: i8,
    pub precision: i8,
    pub root_delay: f64,
    pub root_dispersion: f64,
    pub ref_id: u32,
    pub ref_time: Timespec,
    pub offset: f64,
    pub peer_delay: f64,
    pub peer_dispersion: f64,
    pub response_time: f64,
    pub jitter_asymmetry: f64,
    /// 0x3FF test bits, 0x4000 interleaved, 0x8000 authenticated.
    pub flags: u16,
    /// `D`, `K` or `H` (daemon, kernel, hardware timestamping).
    pub tx_tss_char: u8,
    pub rx_tss_char: u8,
    pub total_tx_count: u32,
    pub total_rx_count: u32,
    pub total_valid_count: u32,
    pub total_good_count: u32,
    pub total_kernel_tx: u32,
    pub total_kernel_rx: u32,
    pub total_hw_tx: u32,
    pub total_hw_rx: u32,
}

/// One manual-input sample of MANUAL_LIST2.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ManualSample {
    pub when: Timespec,
    pub slewed_offset: f64,
    pub orig_offset: f64,
    pub residual: f64,
}

/// AUTH_DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthData {
    /// 0 none, 1 symmetric key, 2 NTS.
    pub mode: u16,
    pub key_type: u16,
    pub key_id: u32,
    pub key_length: u16,
    pub ke_attempts: u16,
    pub last_ke_ago: u32,
    pub cookies: u16,
    pub cookie_length: u16,
    pub nak: u16,
}

/// One client record of CLIENT_ACCESSES_BY_INDEX3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientAccess {
    pub ip: Addr,
    pub ntp_hits: u32,
    pub nke_hits: u32,
    pub cmd_hits: u32,
    pub ntp_drops: u32,
    pub nke_drops: u32,
    pub cmd_drops: u32,
    /// log2 of the mean interval; 127 = unknown.
    pub ntp_interval: i8,
    pub nke_interval: i8,
    pub cmd_interval: i8,
    pub ntp_timeout_interval: i8,
    /// Seconds since the last hit; 0xFFFFFFFF = never.
    pub last_ntp_hit_ago: u32,
    pub last_nke_hit_ago: u32,
    pub last_cmd_hit_ago: u32,
}

/// CLIENT_ACCESSES_BY_INDEX3.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientAccesses {
    pub n_indices: u32,
    pub next_index: u32,
    /// At most [`MAX_CLIENT_ACCESSES`]; extra entries are not encoded.
    pub clients: Vec<ClientAccess>,
}

/// SELECT_DATA.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SelectData {
    pub ref_id: u32,
    pub ip_addr: Addr,
    pub state_char: u8,
    pub authentication: u8,
    pub leap: u8,
    pub conf_options: u16,
    pub eff_options: u16,
    pub last_sample_ago: u32,
    pub score: f64,
    pub lo_limit: f64,
    pub hi_limit: f64,
}
