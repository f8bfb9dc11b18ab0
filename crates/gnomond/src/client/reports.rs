//! The engine's reports as the command server and the metrics endpoint read them: a snapshot
//! refreshed by the client after every engine call (the loop is single-threaded, so the
//! command server, which owns its `SourceReports`, shares it through `Rc<RefCell<..>>`).
//! Layouts and units are chronyd's cmdmon replies (features.md §3.2–3.4).
//!
//! Commands that act on sources or on the clock are answered here from the snapshot with the
//! status chronyd gives (`503 No such source`, `511 Source already present`, ...) and queued
//! ([`CommandQueue`]); the client carries them out on the engine before its next poll
//! (commands.rs), so the next request already sees their effect.

use crate::reports::SourceReports;
use gnomon_cmdmon::{
    Activity, AddSource, Addr, AuthData, GlobalFloatField, NtpData, SelectData, SourceData,
    SourceFloatField, SourceIntField, SourceStats, SourceType, Status, Timespec, Tracking,
};
use gnomon_core::association::{AuthReport, NtpDataReport, SelectReport, SourceSetting};
use gnomon_core::local_clock::LeapState;
use gnomon_core::reports::{
    LeapStatus, SourceMode, SourceReport, SourceStatsReport, TrackingReport,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

/// A command for the client to carry out on the engine (already checked against the
/// snapshot).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceCommand {
    /// `online`/`offline` on these sources.
    SetOnline(Vec<IpAddr>, bool),
    /// `onoffline`: every source with an address online.
    OnOffline,
    /// `burst GOOD/TOTAL` on these sources.
    Burst(Vec<IpAddr>, u32, u32),
    /// `minpoll ADDRESS N` and friends.
    Modify(IpAddr, SourceSetting),
    /// `add server|pool|peer`.
    Add(AddSource),
    /// `delete ADDRESS`.
    Delete(IpAddr),
    /// `local ...` / `local off` (`None`): the engine's fallback reference and orphan mode.
    SetLocal(Option<gnomon_core::reference::LocalConfig>),
    /// `makestep THRESHOLD LIMIT`, `maxupdateskew`, `reselectdist`.
    SetParam(crate::reports::EngineParam),
    /// `makestep`.
    MakeStep,
    /// `dfreq PPM`.
    Dfreq(f64),
    /// `doffset SECONDS`.
    Doffset(f64),
    /// `reselect`.
    Reselect,
    /// `refresh`: resolve the names of sources again.
    Refresh,
    /// `reload sources`: re-read the `sourcedir` files.
    ReloadSources,
    /// `reset sources`: drop every measurement.
    ResetSources,
}

/// Commands waiting for the client.
pub type CommandQueue = Rc<RefCell<Vec<SourceCommand>>>;

/// What `ntpdata`, `selectdata` and `activity` need beyond a `sources` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceDetail {
    /// `ntpdata` (NTP sources).
    pub ntp: Option<NtpDataReport>,
    /// `selectdata`.
    pub select: Option<SelectReport>,
    /// The local address requests to the source leave from.
    pub local_ip: Option<IpAddr>,
    /// Its UDP port.
    pub remote_port: u16,
    /// In a `burst`.
    pub bursting: bool,
    /// `authdata`.
    pub auth: Option<AuthReport>,
    /// Its burst ends offline.
    pub burst_returns_offline: bool,
}

/// One source as last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// The name it was configured with.
    pub name: String,
    /// `sources` row.
    pub report: SourceReport,
    /// `sourcestats` row.
    pub stats: SourceStatsReport,
    /// Reference ID the source is known by (its IPv4 address or IPv6 hash).
    pub ref_id: u32,
    /// Polling (not `offline`).
    pub online: bool,
}

/// What the engine reported at its last call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `tracking`.
    pub tracking: TrackingReport,
    /// Sources in engine order.
    pub sources: Vec<SourceRow>,
    /// Names still waiting for the resolver.
    pub unresolved: usize,
    /// The engine is synchronised to a source.
    pub synchronised: bool,
    /// Per-source details, in the order of `sources` (commands.rs).
    pub details: Details,
}

/// Per-source details and the index of the sources by address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    /// In the order of the snapshot's sources.
    pub rows: Vec<SourceDetail>,
    /// Source index by address (address requests are answered without a scan: chronyc asks
    /// one per source).
    pub by_ip: HashMap<IpAddr, usize>,
}

/// The shared snapshot and command queue, as the command server's [`SourceReports`].
#[derive(Debug, Clone, Default)]
pub struct ClientReports(pub Rc<RefCell<Snapshot>>, pub CommandQueue);

fn timespec(t: f64) -> Timespec {
    // Never set (0) or nonsense (negative, NaN): the epoch, as chronyd reports it.
    if t.is_nan() || t <= 0.0 {
        return Timespec::default();
    }
    let sec = t.floor();
    Timespec {
        sec: sec as u64,
        nsec: (((t - sec) * 1e9) as u32).min(999_999_999),
    }
}

/// TRACKING from the engine's report.
pub fn tracking(t: &TrackingReport) -> Tracking {
    Tracking {
        ref_id: t.reference_id,
        ip_addr: t
            .reference_addr
            .map_or(Addr::Unspec, |a| Addr::from(a.ip())),
        stratum: u16::from(t.stratum),
        leap_status: match t.leap_status {
            LeapStatus::Normal => 0,
            LeapStatus::InsertSecond => 1,
            LeapStatus::DeleteSecond => 2,
            LeapStatus::Unsynchronised => 3,
        },
        ref_time: timespec(t.ref_time),
        current_correction: t.system_time,
        last_offset: t.last_offset,
        rms_offset: t.rms_offset,
        freq_ppm: t.frequency_ppm,
        resid_freq_ppm: t.residual_freq_ppm,
        skew_ppm: t.skew_ppm,
        root_delay: t.root_delay,
        root_dispersion: t.root_dispersion,
        last_update_interval: t.update_interval,
    }
}

fn source_data(row: &SourceRow) -> SourceData {
    let r = &row.report;
    SourceData {
        ip_addr: Addr::from(r.addr.ip()),
        poll: i16::from(r.poll),
        stratum: u16::from(r.stratum),
        state: r.state.code(),
        mode: match r.mode {
            SourceMode::Server => 0,
            SourceMode::Peer => 1,
            SourceMode::RefClock => 2,
        },
        flags: 0,
        reachability: u16::from(r.reach),
        since_sample: r.last_rx,
        orig_latest_meas: r.measured_offset,
        latest_meas: r.adjusted_offset,
        latest_meas_err: r.error,
    }
}

fn source_stats(row: &SourceRow) -> SourceStats {
    let s = &row.stats;
    SourceStats {
        ref_id: row.ref_id,
        ip_addr: Addr::from(row.report.addr.ip()),
        n_samples: s.samples,
        n_runs: s.runs,
        span_seconds: s.span_seconds,
        sd: s.std_dev,
        resid_freq_ppm: s.frequency_ppm,
        skew_ppm: s.skew_ppm,
        est_offset: s.offset,
        est_offset_err: s.est_offset_err,
    }
}

fn options_bits(o: gnomon_core::selection::SelectOptions) -> u16 {
    u16::from(o.noselect)
        | u16::from(o.prefer) << 1
        | u16::from(o.trust) << 2
        | u16::from(o.require) << 3
}

fn leap_code(l: Option<LeapState>) -> u8 {
    match l {
        Some(LeapState::Normal) => 0,
        Some(LeapState::Insert) => 1,
        Some(LeapState::Delete) => 2,
        None => 3,
    }
}

/// SELECT_DATA from a row and its selection report.
pub fn select_data(row: &SourceRow, s: &SelectReport) -> SelectData {
    SelectData {
        ref_id: row.ref_id,
        ip_addr: Addr::from(row.report.addr.ip()),
        state_char: u8::try_from(s.state).unwrap_or(b'?'),
        authentication: u8::from(s.authenticated),
        leap: leap_code(s.leap),
        conf_options: options_bits(s.configured),
        eff_options: options_bits(s.effective),
        last_sample_ago: s.last_sample_ago,
        score: s.score,
        lo_limit: s.lo_limit,
        hi_limit: s.hi_limit,
    }
}

/// NTP_DATA from a row and its details; `now_unix` resolves the NTP era of the reference
/// time. Receive timestamps are the kernel's; transmit timestamps the kernel's when the
/// exchange got one (core association/tx_stamp.rs), else the daemon's.
pub fn ntp_data(row: &SourceRow, d: &SourceDetail, n: &NtpDataReport, now_unix: i64) -> NtpData {
    // A source never heard from has no local address or timestamping yet (chronyd: UNSPEC,
    // "Invalid").
    let heard = n.total_valid > 0;
    NtpData {
        remote_addr: Addr::from(row.report.addr.ip()),
        local_addr: d
            .local_ip
            .filter(|_| heard)
            .map_or(Addr::Unspec, Addr::from),
        remote_port: d.remote_port,
        leap: n.leap,
        version: n.version,
        mode: n.mode,
        stratum: n.stratum,
        poll: n.poll,
        precision: n.precision,
        root_delay: n.root_delay,
        root_dispersion: n.root_dispersion,
        ref_id: n.reference_id,
        ref_time: crate::reports::timespec(n.reference_time, now_unix),
        offset: n.offset,
        peer_delay: n.peer_delay,
        peer_dispersion: n.peer_dispersion,
        response_time: n.response_time,
        jitter_asymmetry: n.jitter_asymmetry,
        flags: n.tests
            | if n.interleaved { 0x4000 } else { 0 }
            | if n.authenticated { 0x8000 } else { 0 },
        tx_tss_char: match (heard, n.tx_kernel) {
            (false, _) => 0,
            (true, true) => b'K',
            (true, false) => b'D',
        },
        rx_tss_char: if heard { b'K' } else { 0 },
        total_tx_count: n.total_tx,
        total_rx_count: n.total_rx,
        total_valid_count: n.total_valid,
        total_good_count: n.total_good,
        total_kernel_tx: n.total_kernel_tx,
        total_kernel_rx: n.total_rx,
        total_hw_tx: 0,
        total_hw_rx: 0,
    }
}

/// AUTH_DATA from the engine's report. Key-exchange attempts, the age of the last exchange,
/// NAKs and the cookie length are not tracked by the engine: 0, and the age unknown (`-`).
pub fn auth_data(a: &AuthReport) -> AuthData {
    AuthData {
        mode: a.mode,
        key_type: a.key_type,
        key_id: a.key_id,
        key_length: a.key_bits,
        ke_attempts: a.ke_attempts,
        // No key exchange yet, or no NTS (chronyc prints `-`).
        last_ke_ago: a.last_ke_ago.unwrap_or(u32::MAX),
        cookies: a.cookies,
        cookie_length: a.cookie_len,
        nak: u16::from(a.nak),
    }
}

/// Whether a source at `ip` is one `mask`/`address` names: every source without an address,
/// the address itself without a mask, else the sources in the masked subnet.
fn matches(mask: &Addr, address: &Addr, ip: IpAddr) -> bool {
    let Some(a) = address.ip() else {
        return *address == Addr::Unspec;
    };
    match (mask.ip(), a, ip) {
        (None, _, _) => a == ip,
        (Some(IpAddr::V4(m)), IpAddr::V4(a), IpAddr::V4(ip)) => {
            u32::from(a) & u32::from(m) == u32::from(ip) & u32::from(m)
        }
        (Some(IpAddr::V6(m)), IpAddr::V6(a), IpAddr::V6(ip)) => {
            u128::from(a) & u128::from(m) == u128::from(ip) & u128::from(m)
        }
        _ => false,
    }
}

impl ClientReports {
    fn row(&self, index: i64) -> Result<SourceRow, Status> {
        let snap = self.0.borrow();
        usize::try_from(index)
            .ok()
            .and_then(|i| snap.sources.get(i))
            .cloned()
            .ok_or(Status::NoSuchSource)
    }

    fn by_ip(&self, ip: &Addr) -> Result<(SourceRow, SourceDetail), Status> {
        let snap = self.0.borrow();
        let wanted = ip.ip().ok_or(Status::NoSuchSource)?;
        let index = match snap.details.by_ip.get(&wanted) {
            Some(i) => Some(*i),
            // Without an index (details not filled): a scan.
            None if snap.details.by_ip.is_empty() => snap
                .sources
                .iter()
                .position(|r| r.report.addr.ip() == wanted),
            None => None,
        };
        index
            .and_then(|i| snap.sources.get(i).map(|r| (i, r)))
            .map(|(i, r)| {
                (
                    r.clone(),
                    snap.details.rows.get(i).cloned().unwrap_or_default(),
                )
            })
            .ok_or(Status::NoSuchSource)
    }

    fn queue(&self, c: SourceCommand) -> Status {
        self.1.borrow_mut().push(c);
        Status::Success
    }

    /// The addresses of the sources `mask`/`address` names.
    fn matching(&self, mask: &Addr, address: &Addr) -> Vec<IpAddr> {
        self.0
            .borrow()
            .sources
            .iter()
            .map(|r| r.report.addr.ip())
            .filter(|ip| matches(mask, address, *ip))
            .collect()
    }

    /// The address of the source at exactly `address`.
    fn exact(&self, address: &Addr) -> Result<IpAddr, Status> {
        self.by_ip(address).map(|(r, _)| r.report.addr.ip())
    }
}

impl SourceReports for ClientReports {
    fn n_sources(&self) -> u32 {
        u32::try_from(self.0.borrow().sources.len()).unwrap_or(u32::MAX)
    }
    fn source_data(&self, index: i32) -> Result<SourceData, Status> {
        self.row(i64::from(index)).map(|r| source_data(&r))
    }
    fn source_stats(&self, index: u32) -> Result<SourceStats, Status> {
        self.row(i64::from(index)).map(|r| source_stats(&r))
    }
    fn select_data(&self, index: u32) -> Result<SelectData, Status> {
        let row = self.row(i64::from(index))?;
        let snap = self.0.borrow();
        let detail = usize::try_from(index)
            .ok()
            .and_then(|i| snap.details.rows.get(i));
        match detail.and_then(|d| d.select.as_ref()) {
            Some(s) => Ok(select_data(&row, s)),
            None => Err(Status::NoSuchSource),
        }
    }
    fn ntp_data(&self, ip: &Addr) -> Result<NtpData, Status> {
        let (row, mut detail) = self.by_ip(ip)?;
        if detail.local_ip.is_none() && detail.ntp.is_some_and(|n| n.total_valid > 0) {
            detail.local_ip = super::commands::local_address(row.report.addr.ip());
        }
        match &detail.ntp {
            Some(n) => Ok(ntp_data(&row, &detail, n, crate::os::clock::realtime().sec)),
            None => Err(Status::NoSuchSource),
        }
    }
    fn auth_data(&self, ip: &Addr) -> Result<AuthData, Status> {
        let (_, detail) = self.by_ip(ip)?;
        Ok(auth_data(&detail.auth.unwrap_or_default()))
    }
    fn source_name(&self, ip: &Addr) -> Result<Vec<u8>, Status> {
        self.by_ip(ip).map(|(r, _)| r.name.into_bytes())
    }
    fn activity(&self) -> Activity {
        let snap = self.0.borrow();
        let (mut online, mut offline, mut burst_online, mut burst_offline) = (0, 0, 0, 0);
        for (i, r) in snap.sources.iter().enumerate() {
            let d = snap.details.rows.get(i);
            let counter = match (d.is_some_and(|d| d.bursting), r.online) {
                (true, _) if d.is_some_and(|d| d.burst_returns_offline) => &mut burst_offline,
                (true, _) => &mut burst_online,
                (false, true) => &mut online,
                (false, false) => &mut offline,
            };
            *counter += 1;
        }
        let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        Activity {
            online: n(online),
            offline: n(offline),
            burst_online: n(burst_online),
            burst_offline: n(burst_offline),
            unresolved: n(snap.unresolved),
        }
    }
    fn tracking(&self) -> Option<Tracking> {
        // Unsynchronised, the NTP server's view (`local` or unsynchronised) is the answer.
        let snap = self.0.borrow();
        snap.synchronised.then(|| tracking(&snap.tracking))
    }

    fn set_online(&mut self, mask: &Addr, address: &Addr, online: bool) -> Status {
        let targets = self.matching(mask, address);
        if targets.is_empty() {
            return Status::NoSuchSource;
        }
        self.queue(SourceCommand::SetOnline(targets, online))
    }
    fn on_offline(&mut self) -> Status {
        self.queue(SourceCommand::OnOffline)
    }
    fn burst(&mut self, mask: &Addr, address: &Addr, good: i32, total: i32) -> Status {
        let targets = self.matching(mask, address);
        if targets.is_empty() {
            return Status::NoSuchSource;
        }
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        self.queue(SourceCommand::Burst(targets, count(good), count(total)))
    }
    fn modify_int(&mut self, field: SourceIntField, address: &Addr, value: i32) -> Status {
        let ip = match self.exact(address) {
            Ok(ip) => ip,
            Err(s) => return s,
        };
        let setting = match field {
            SourceIntField::Minpoll => SourceSetting::MinPoll(value),
            SourceIntField::Maxpoll => SourceSetting::MaxPoll(value),
            SourceIntField::Minstratum => SourceSetting::MinStratum(value),
            SourceIntField::Polltarget => SourceSetting::PollTarget(value),
        };
        self.queue(SourceCommand::Modify(ip, setting))
    }
    fn modify_float(&mut self, field: SourceFloatField, address: &Addr, value: f64) -> Status {
        let ip = match self.exact(address) {
            Ok(ip) => ip,
            Err(s) => return s,
        };
        let setting = match field {
            SourceFloatField::Maxdelay => SourceSetting::MaxDelay(value),
            SourceFloatField::Maxdelayratio => SourceSetting::MaxDelayRatio(value),
            SourceFloatField::Maxdelaydevratio => SourceSetting::MaxDelayDevRatio(value),
        };
        self.queue(SourceCommand::Modify(ip, setting))
    }
    fn add_source(&mut self, source: &AddSource) -> Status {
        let Ok(name) = std::str::from_utf8(&source.name) else {
            return Status::InvalidName;
        };
        if name.is_empty() || name.len() > 255 {
            return Status::InvalidName;
        }
        // A pool name may give several addresses: only a single address is checked now.
        if let Ok(ip) = name.parse::<IpAddr>() {
            if source.source_type != SourceType::Pool && self.exact(&Addr::from(ip)).is_ok() {
                return Status::SourceAlreadyKnown;
            }
        }
        self.queue(SourceCommand::Add(source.clone()))
    }
    fn delete_source(&mut self, ip: &Addr) -> Status {
        match self.exact(ip) {
            Ok(ip) => self.queue(SourceCommand::Delete(ip)),
            Err(s) => s,
        }
    }
    fn set_local(&mut self, local: Option<gnomon_core::reference::LocalConfig>) {
        // Always accepted: the command server already answered and changed what it serves.
        let _ = self.queue(SourceCommand::SetLocal(local));
    }
    fn set_engine_param(&mut self, param: crate::reports::EngineParam) {
        let _ = self.queue(SourceCommand::SetParam(param));
    }
    fn make_step(&mut self) -> Status {
        self.queue(SourceCommand::MakeStep)
    }
    fn adjust_clock(&mut self, field: GlobalFloatField, value: f64) -> Status {
        match field {
            GlobalFloatField::Dfreq => self.queue(SourceCommand::Dfreq(value)),
            GlobalFloatField::Doffset => self.queue(SourceCommand::Doffset(value)),
            _ => Status::Invalid,
        }
    }
    fn housekeeping(&mut self, command: u16) -> Status {
        use gnomon_cmdmon::code as req;
        match command {
            req::RESELECT => self.queue(SourceCommand::Reselect),
            req::REFRESH => self.queue(SourceCommand::Refresh),
            req::RELOAD_SOURCES => self.queue(SourceCommand::ReloadSources),
            req::RESET_SOURCES => self.queue(SourceCommand::ResetSources),
            _ => Status::Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnomon_core::reports::SourceState;

    fn row(addr: &str) -> SourceRow {
        SourceRow {
            name: "ntp.example".into(),
            report: SourceReport {
                addr: addr.parse().unwrap(),
                mode: SourceMode::Server,
                state: SourceState::Selected,
                stratum: 2,
                poll: -2,
                reach: 0o377,
                last_rx: 1,
                adjusted_offset: 1e-4,
                measured_offset: 2e-4,
                error: 3e-5,
            },
            stats: SourceStatsReport::default(),
            ref_id: 0x7F00_0001,
            online: true,
        }
    }

    #[test]
    fn rows_become_cmdmon_source_data_in_order() {
        let r = ClientReports::default();
        r.0.borrow_mut().sources = vec![row("127.0.0.1:123"), row("127.0.0.2:123")];
        assert_eq!(r.n_sources(), 2);
        let d = r.source_data(1).unwrap();
        assert_eq!(d.ip_addr, Addr::V4("127.0.0.2".parse().unwrap()));
        assert_eq!(
            (d.poll, d.stratum, d.state, d.reachability),
            (-2, 2, 0, 255)
        );
        assert_eq!(r.source_data(2), Err(Status::NoSuchSource));
        assert_eq!(r.source_data(-1), Err(Status::NoSuchSource));
        assert_eq!(
            r.source_name(&Addr::V4("127.0.0.1".parse().unwrap()))
                .unwrap(),
            b"ntp.example"
        );
        assert_eq!(r.activity().online, 2);
    }

    #[test]
    fn tracking_keeps_chrony_signs_and_leap_codes() {
        let t = TrackingReport {
            frequency_ppm: 50.0,
            system_time: -1e-3,
            ref_time: 1_800_000_000.25,
            leap_status: LeapStatus::Normal,
            ..TrackingReport::default()
        };
        let c = tracking(&t);
        assert_eq!(
            (c.freq_ppm, c.current_correction, c.leap_status),
            (50.0, -1e-3, 0)
        );
        assert_eq!(c.ref_time.sec, 1_800_000_000);
        assert_eq!(tracking(&TrackingReport::default()).leap_status, 3);
    }
}
