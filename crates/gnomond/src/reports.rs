//! The monitoring reports of the command server: one function per cmdmon report, each turning
//! daemon state into the cmdmon reply struct chronyc prints (`tracking`, `serverstats`,
//! `clients`, ...). Source reports go through [`SourceReports`], which the synchronisation
//! engine will implement; until it is in the daemon, [`NoSources`] says what chronyd 4.3 says
//! with no sources: 0 sources, `503 No such source` for any index or address, all-zero
//! activity.

use crate::responder::Counters;
use gnomon_cmdmon::{
    Activity, AddSource, Addr, AuthData, ClientAccess, ClientAccesses, GlobalFloatField, NtpData,
    SelectData, ServerStats, SourceData, SourceFloatField, SourceIntField, SourceStats, Status,
    Timespec, Tracking, MAX_CLIENT_ACCESSES,
};
use gnomon_core::client_log::{ClientAccessReport, ClientLog};
use gnomon_core::server::ReferenceInfo;
use gnomon_wire::NtpTimestamp;

/// A run-time setting of the synchronisation engine (chronyc `makestep THRESHOLD LIMIT`,
/// `maxupdateskew`, `reselectdist`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineParam {
    /// Threshold (s) and limit (updates from now; negative: always).
    Makestep(f64, i32),
    /// ppm.
    MaxUpdateSkew(f64),
    /// Seconds.
    ReselectDistance(f64),
}

/// The daemon's sources as the command server sees them: the per-source reports (`sources`,
/// `sourcestats`, `selectdata`, `ntpdata`, `authdata`, `sourcename`, `activity`; errors are the
/// status chronyd answers) and the commands that act on sources or on the clock discipline.
/// Each command's default body is what chronyd 4.3 answers when it cannot do it (checked
/// black-box against chronyd 4.3 with no sources under `-x`, except where noted), which is
/// what the daemon answers until the synchronisation engine overrides it.
pub trait SourceReports {
    /// Number of sources (N_SOURCES).
    fn n_sources(&self) -> u32;
    /// SOURCE_DATA for the source at `index`.
    fn source_data(&self, index: i32) -> Result<SourceData, Status>;
    /// SOURCESTATS for the source at `index`.
    fn source_stats(&self, index: u32) -> Result<SourceStats, Status>;
    /// SELECT_DATA for the source at `index`.
    fn select_data(&self, index: u32) -> Result<SelectData, Status>;
    /// NTP_DATA for the NTP source with address `ip`.
    fn ntp_data(&self, ip: &Addr) -> Result<NtpData, Status>;
    /// AUTH_DATA for the NTP source with address `ip`.
    fn auth_data(&self, ip: &Addr) -> Result<AuthData, Status>;
    /// The name the NTP source with address `ip` was configured with.
    fn source_name(&self, ip: &Addr) -> Result<Vec<u8>, Status>;
    /// Counts of sources by state (ACTIVITY).
    fn activity(&self) -> Activity;
    /// TRACKING from the synchronisation engine (client.rs) while it is synchronised; `None`
    /// answers from what the NTP server serves.
    fn tracking(&self) -> Option<gnomon_cmdmon::Tracking> {
        None
    }

    /// `online`/`offline` [mask/address]: no source matches.
    fn set_online(&mut self, _mask: &Addr, _address: &Addr, _online: bool) -> Status {
        Status::NoSuchSource
    }
    /// `onoffline`: nothing to switch.
    fn on_offline(&mut self) -> Status {
        Status::Success
    }
    /// `burst N/M` [mask/address]: no source matches.
    fn burst(&mut self, _mask: &Addr, _address: &Addr, _good: i32, _total: i32) -> Status {
        Status::NoSuchSource
    }
    /// `minpoll`/`maxpoll`/`minstratum`/`polltarget` on a source: no such source.
    fn modify_int(&mut self, _field: SourceIntField, _address: &Addr, _value: i32) -> Status {
        Status::NoSuchSource
    }
    /// `maxdelay`/`maxdelayratio`/`maxdelaydevratio` on a source: no such source.
    fn modify_float(&mut self, _field: SourceFloatField, _address: &Addr, _value: f64) -> Status {
        Status::NoSuchSource
    }
    /// `selectopts` (4.5+) on a source: no such source.
    fn modify_select_opts(
        &mut self,
        _address: &Addr,
        _ref_id: u32,
        _mask: u32,
        _options: u32,
    ) -> Status {
        Status::NoSuchSource
    }
    /// `offset` (4.5+) on a source: no such source.
    fn modify_offset(&mut self, _address: &Addr, _ref_id: u32, _offset: f64) -> Status {
        Status::NoSuchSource
    }
    /// `add server|pool|peer`: cannot add (chronyd's status for a source it could not add;
    /// chronyd itself accepts it).
    fn add_source(&mut self, _source: &AddSource) -> Status {
        Status::Failed
    }
    /// `delete ADDRESS`: no such source.
    fn delete_source(&mut self, _ip: &Addr) -> Status {
        Status::NoSuchSource
    }
    /// `local ...`/`local off` (`None`) for the synchronisation engine's fallback reference
    /// and orphan mode; without an engine there is nothing to change (the NTP server's part
    /// is done by the command server).
    fn set_local(&mut self, _local: Option<gnomon_core::reference::LocalConfig>) {}
    /// `makestep THRESHOLD LIMIT`, `maxupdateskew`, `reselectdist` for the engine (nothing
    /// to change without one; the command server validated the values).
    fn set_engine_param(&mut self, _param: EngineParam) {}
    /// `makestep` (now): fails, as chronyd's without a reference.
    fn make_step(&mut self) -> Status {
        Status::Failed
    }
    /// `dfreq`/`doffset`: nothing disciplines the clock (chronyd itself accepts them).
    fn adjust_clock(&mut self, _field: GlobalFloatField, _value: f64) -> Status {
        Status::Failed
    }
    /// `reselect`, `refresh`, `reset sources`, `reload sources`, `dump`: nothing to do.
    fn housekeeping(&mut self, _command: u16) -> Status {
        Status::Success
    }
}

/// The daemon's sources while the synchronisation engine is not in it: none.
#[derive(Debug, Clone, Copy, Default)]
// The daemon answers through the client's reports now (client.rs); tests still use it.
#[cfg_attr(not(test), allow(dead_code))]
pub struct NoSources;

impl SourceReports for NoSources {
    fn n_sources(&self) -> u32 {
        0
    }
    fn source_data(&self, _index: i32) -> Result<SourceData, Status> {
        Err(Status::NoSuchSource)
    }
    fn source_stats(&self, _index: u32) -> Result<SourceStats, Status> {
        Err(Status::NoSuchSource)
    }
    fn select_data(&self, _index: u32) -> Result<SelectData, Status> {
        Err(Status::NoSuchSource)
    }
    fn ntp_data(&self, _ip: &Addr) -> Result<NtpData, Status> {
        Err(Status::NoSuchSource)
    }
    fn auth_data(&self, _ip: &Addr) -> Result<AuthData, Status> {
        Err(Status::NoSuchSource)
    }
    fn source_name(&self, _ip: &Addr) -> Result<Vec<u8>, Status> {
        Err(Status::NoSuchSource)
    }
    fn activity(&self) -> Activity {
        Activity::default()
    }
}

/// A reference time as cmdmon's Timespec; the zero NTP timestamp (never set) is the Unix
/// epoch, which chronyc prints as `Thu Jan 01 00:00:00 1970`, as chronyd reports it.
pub fn timespec(t: NtpTimestamp, pivot_unix: i64) -> Timespec {
    if t.is_zero() {
        return Timespec::default();
    }
    let (sec, nsec) = t.to_unix(pivot_unix);
    Timespec {
        sec: u64::try_from(sec).unwrap_or(0),
        nsec,
    }
}

/// TRACKING from what the server serves: unsynchronised (reference ID 0, stratum 0, leap
/// "Not synchronised", root delay and dispersion 1 s) or the `local` reference (127.127.1.1,
/// its stratum, leap normal, its reference time), with no correction, offset or frequency
/// error, since nothing disciplines the clock yet. `now_unix` resolves the NTP era.
pub fn tracking(reference: &ReferenceInfo, now_unix: i64) -> Tracking {
    Tracking {
        ref_id: reference.reference_id,
        ip_addr: Addr::Unspec,
        stratum: u16::from(reference.stratum),
        leap_status: reference.leap as u16,
        ref_time: timespec(reference.reference_time, now_unix),
        root_delay: reference.root_delay,
        root_dispersion: reference.root_dispersion,
        ..Tracking::default()
    }
}

/// Command-server counters (the "Command packets" lines of `serverstats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandCounters {
    /// Command requests received from allowed hosts and the Unix socket.
    pub hits: u64,
    /// Command requests dropped by `cmdratelimit`.
    pub drops: u64,
}

/// SERVER_STATS: the NTP engine's counters, the command server's, and the I/O path's
/// timestamp counts (all receive timestamps are the kernel's unless it gave none; transmit
/// timestamps are read by the daemon just before sending).
pub fn server_stats(
    core: &gnomon_core::server::ServerStats,
    commands: &CommandCounters,
    io: &Counters,
) -> ServerStats {
    let daemon_rx = io.no_kernel_timestamp.min(core.ntp_received);
    ServerStats {
        ntp_hits: core.ntp_received,
        nke_hits: io.nke_hits,
        nke_drops: io.nke_drops,
        cmd_hits: commands.hits,
        ntp_drops: core.ntp_rate_limited,
        cmd_drops: commands.drops,
        log_drops: core.client_log_records_dropped,
        ntp_auth_hits: core.ntp_authenticated,
        ntp_interleaved_hits: core.ntp_interleaved,
        ntp_timestamps: core.ntp_timestamps_held,
        ntp_daemon_rx_timestamps: daemon_rx,
        // Interleaved replies whose transmit time came from the kernel (server/interleaved.rs).
        ntp_daemon_tx_timestamps: core.ntp_served.saturating_sub(core.ntp_kernel_tx),
        ntp_kernel_tx_timestamps: core.ntp_kernel_tx,
        ntp_kernel_rx_timestamps: core.ntp_received - daemon_rx,
        ..ServerStats::default()
    }
}

fn client_access(r: &ClientAccessReport) -> ClientAccess {
    ClientAccess {
        ip: Addr::from(r.addr),
        ntp_hits: r.ntp_hits,
        nke_hits: r.nke_hits,
        cmd_hits: r.cmd_hits,
        ntp_drops: r.ntp_drops,
        nke_drops: r.nke_drops,
        cmd_drops: r.cmd_drops,
        ntp_interval: r.ntp_interval,
        nke_interval: r.nke_interval,
        cmd_interval: r.cmd_interval,
        ntp_timeout_interval: r.ntp_timeout_interval,
        last_ntp_hit_ago: r.last_ntp_hit_ago,
        last_nke_hit_ago: r.last_nke_hit_ago,
        last_cmd_hit_ago: r.last_cmd_hit_ago,
    }
}

/// CLIENT_ACCESSES_BY_INDEX3 (`clients [-p N] [-r]`): up to `n_clients` (at most 8) records
/// from slot `first_index` on with at least `min_hits` NTP, NTS-KE or command hits;
/// `next_index` is where the next request continues. With `reset`, the counters of every slot
/// scanned are zeroed after being reported, so a full listing resets all clients.
/// `519 Client logging is not active` with `noclientlog`.
pub fn client_accesses(
    log: &mut ClientLog,
    first_index: u32,
    n_clients: u32,
    min_hits: u32,
    reset: bool,
    now_mono: f64,
) -> Result<ClientAccesses, Status> {
    if !log.is_enabled() {
        return Err(Status::Inactive);
    }
    let slots = log.slots();
    let want = (n_clients as usize).min(MAX_CLIENT_ACCESSES);
    let mut clients = Vec::with_capacity(want);
    let mut index = first_index as usize;
    while index < slots && clients.len() < want {
        if let Some(r) = log.report(index, now_mono) {
            if r.ntp_hits.max(r.nke_hits).max(r.cmd_hits) >= min_hits {
                clients.push(client_access(&r));
            }
            if reset {
                log.reset_counters(index);
            }
        }
        index += 1;
    }
    Ok(ClientAccesses {
        n_indices: u32::try_from(slots).unwrap_or(u32::MAX),
        next_index: u32::try_from(index).unwrap_or(u32::MAX),
        clients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnomon_core::client_log::Service;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn unsynchronised_tracking_is_chronyds() {
        let t = tracking(&ReferenceInfo::unsynchronised(-20), 1_800_000_000);
        assert_eq!((t.ref_id, t.stratum, t.leap_status), (0, 0, 3));
        assert_eq!(t.ref_time, Timespec::default());
        assert_eq!((t.root_delay, t.root_dispersion), (1.0, 1.0));
    }

    #[test]
    fn local_tracking_reports_local_refid_and_reference_time() {
        let at = NtpTimestamp::from_unix(1_795_318_666, 0);
        let t = tracking(&ReferenceInfo::local(8, at, -20), 1_795_318_670);
        assert_eq!((t.ref_id, t.stratum, t.leap_status), (0x7F7F_0101, 8, 0));
        assert_eq!(t.ref_time.sec, 1_795_318_666);
        assert_eq!((t.root_delay, t.root_dispersion), (0.0, 0.0));
    }

    fn log_with(n: u8, hits: u32) -> ClientLog {
        let mut log = ClientLog::new(524_288, [None, None, None], 1);
        for i in 0..n {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
            for _ in 0..hits + u32::from(i) {
                log.log_access(ip, Service::Command, 10.0);
            }
        }
        log
    }

    #[test]
    fn clients_are_paged_eight_at_a_time_to_the_end() {
        let mut log = log_with(20, 1);
        let mut seen = 0;
        let mut first = 0;
        loop {
            let r = client_accesses(&mut log, first, 8, 0, false, 11.0).unwrap();
            assert!(r.clients.len() <= 8);
            seen += r.clients.len();
            first = r.next_index;
            if first >= r.n_indices {
                break;
            }
        }
        assert_eq!(seen, 20);
    }

    #[test]
    fn min_hits_filters_and_reset_zeroes_counters() {
        let mut log = log_with(4, 1);
        let all = |log: &mut ClientLog, min: u32, reset: bool| {
            let r = client_accesses(log, 0, 8, min, reset, 11.0).unwrap();
            assert_eq!(r.next_index, r.n_indices);
            r.clients
        };
        // Client i has 1 + i command hits.
        assert_eq!(all(&mut log, 3, false).len(), 2);
        let before = all(&mut log, 0, true);
        assert_eq!(
            before.iter().map(|c| c.cmd_hits).sum::<u32>(),
            1 + 2 + 3 + 4
        );
        let after = all(&mut log, 0, false);
        assert_eq!(after.len(), 4);
        assert!(after.iter().all(|c| c.cmd_hits == 0));
    }

    #[test]
    fn clients_without_client_log_is_inactive() {
        let mut log = ClientLog::disabled();
        assert_eq!(
            client_accesses(&mut log, 0, 8, 0, false, 1.0),
            Err(Status::Inactive)
        );
    }

    #[test]
    fn no_sources_answers_no_such_source() {
        let s = NoSources;
        assert_eq!(s.n_sources(), 0);
        assert_eq!(s.source_data(0), Err(Status::NoSuchSource));
        assert_eq!(s.ntp_data(&Addr::Unspec), Err(Status::NoSuchSource));
        assert_eq!(s.activity(), Activity::default());
    }
}
