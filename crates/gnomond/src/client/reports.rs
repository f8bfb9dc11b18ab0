//! The engine's reports as the command server and the metrics endpoint read them: a snapshot
//! refreshed by the client after every engine call (the loop is single-threaded, so the
//! command server, which owns its `SourceReports`, shares it through `Rc<RefCell<..>>`).
//! Layouts and units are chronyd's cmdmon replies (features.md §3.2–3.4).

use crate::reports::SourceReports;
use gnomon_cmdmon::{
    Activity, Addr, AuthData, NtpData, SelectData, SourceData, SourceStats, Status, Timespec,
    Tracking,
};
use gnomon_core::reports::{
    LeapStatus, SourceMode, SourceReport, SourceStatsReport, TrackingReport,
};
use std::cell::RefCell;
use std::rc::Rc;

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
}

/// The shared snapshot, as the command server's [`SourceReports`].
#[derive(Debug, Clone, Default)]
pub struct ClientReports(pub Rc<RefCell<Snapshot>>);

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

impl ClientReports {
    fn row(&self, index: i64) -> Result<SourceRow, Status> {
        let snap = self.0.borrow();
        usize::try_from(index)
            .ok()
            .and_then(|i| snap.sources.get(i))
            .cloned()
            .ok_or(Status::NoSuchSource)
    }

    fn by_ip(&self, ip: &Addr) -> Result<SourceRow, Status> {
        let snap = self.0.borrow();
        snap.sources
            .iter()
            .find(|r| Addr::from(r.report.addr.ip()) == *ip)
            .cloned()
            .ok_or(Status::NoSuchSource)
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
        // Selection details are not exported by the engine yet.
        self.row(i64::from(index)).and(Err(Status::Failed))
    }
    fn ntp_data(&self, ip: &Addr) -> Result<NtpData, Status> {
        // Per-packet NTP data is not exported by the engine yet.
        self.by_ip(ip).and(Err(Status::Failed))
    }
    fn auth_data(&self, ip: &Addr) -> Result<AuthData, Status> {
        // No authentication yet: chronyd reports mode 0 (none) for such sources.
        self.by_ip(ip).map(|_| AuthData::default())
    }
    fn source_name(&self, ip: &Addr) -> Result<Vec<u8>, Status> {
        self.by_ip(ip).map(|r| r.name.into_bytes())
    }
    fn activity(&self) -> Activity {
        let snap = self.0.borrow();
        let online = snap.sources.iter().filter(|r| r.online).count();
        Activity {
            online: i32::try_from(online).unwrap_or(i32::MAX),
            offline: i32::try_from(snap.sources.len() - online).unwrap_or(i32::MAX),
            burst_online: 0,
            burst_offline: 0,
            unresolved: i32::try_from(snap.unresolved).unwrap_or(i32::MAX),
        }
    }
    fn tracking(&self) -> Option<Tracking> {
        // Unsynchronised, the NTP server's view (`local` or unsynchronised) is the answer.
        let snap = self.0.borrow();
        snap.synchronised.then(|| tracking(&snap.tracking))
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
