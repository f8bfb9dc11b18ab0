//! chronyd's statistics logs: `logdir`, `log tracking measurements rawmeasurements statistics
//! selection`, `logbanner`, `logchange`, and the close/re-open of `chronyc cyclelogs` that
//! logrotate relies on.
//!
//! Behaviour copied from chronyd 4.3 (observed black-box, features.md §3.11):
//! * files `tracking.log`, `measurements.log`, `statistics.log`, `selection.log` in `logdir`
//!   (created when missing), opened on their first entry, appending, never through a
//!   symbolic link;
//! * before the first entry of a file and then every `logbanner` entries (default 32) a
//!   banner: `=` ruler, column headings, ruler; `logbanner 0` writes no banner at all;
//! * `cyclelogs` closes every file; the next entry opens the path afresh (so a renamed file
//!   keeps its old lines and a new file starts, with a banner);
//! * a tracking entry at every clock update and whenever the reference changes (one for the
//!   unsynchronised state before the first update); a measurement entry for every accepted
//!   sample and a statistics entry for the regression it fed, with the values from before
//!   the clock update they caused;
//! * `measurements` also writes the packets that passed RFC 5905 tests 1–7 but failed one
//!   of the tests A–D (maxdelay, maxdelayratio, maxdelaydevratio, loop);
//!   `rawmeasurements` writes, in the same file and layout, every packet that passed tests
//!   1–3, including those failing 5–7 (an unsynchronised server: leap `?`, and chronyd
//!   computes no measurement for it, so offset, delay, dispersion and tests A–D show 0).
//!   A packet failing test A or any of 5–7 shows `LP`/`RP` 0 and score 1.00, as chronyd's;
//! * a `selection.log` round (one entry per source, [`selection`]) after every engine call
//!   that took a sample (chronyd: after every sample's selection);
//! * `logchange`: a warning `System clock wrong by X seconds, adjustment started` when an
//!   update's offset exceeds the threshold (chronyd -x leaves out ", adjustment started").
//!
//! The layouts are in [`format`]. Writing never fails the caller: an unwritable file is
//! reported once and retried at the next `cyclelogs`.

pub mod format;
pub mod selection;

use std::collections::BTreeMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gnomon_conf::directive::LogKind;
use gnomon_conf::Settings;
use gnomon_core::association::engine::SampleRecord;
use gnomon_core::association::{Engine, Event, RejectedMeasurement};
use gnomon_core::local_clock::{ClockDriver, LeapState};
use gnomon_core::reports::{LeapStatus, SourceState, SourceStatsReport, TrackingReport};

use format::{
    MeasurementLine, StampSource, StatisticsExtra, TestBits, TrackingExtra, MEASUREMENTS_HEADER,
    SELECTION_HEADER, STATISTICS_HEADER, TRACKING_HEADER,
};

/// Skew assumed before a source has a frequency estimate (chronyd's worst-case bound,
/// 2000 ppm, seen in the first `Stress` value of every statistics log).
const INITIAL_SKEW: f64 = 2000e-6;

/// Samples before chronyd's regression (and its statistics entries) starts.
const MIN_REGRESSION_SAMPLES: u32 = 3;

/// Bumped by [`request_reopen`]; every [`StatLogs`] re-opens its files when it changed.
static REOPEN_GENERATION: AtomicU64 = AtomicU64::new(0);

/// `cyclelogs`: asks every open statistics log to close and re-open its file before its
/// next entry (callable from the command server without a handle to the logs).
pub fn request_reopen() {
    REOPEN_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// What to log where (from `logdir`, `log`, `logbanner`, `logchange`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatLogSettings {
    /// `logdir`; without it no file is written (as chronyd).
    pub dir: Option<PathBuf>,
    /// `log tracking`.
    pub tracking: bool,
    /// `log measurements` (or `rawmeasurements`).
    pub measurements: bool,
    /// `log rawmeasurements`: also packets that failed tests 5–7.
    pub raw_measurements: bool,
    /// `log statistics`.
    pub statistics: bool,
    /// `log selection`.
    pub selection: bool,
    /// `logbanner`: entries between banners, 0 = no banner.
    pub banner_every: u32,
    /// `logchange` threshold, seconds.
    pub logchange: f64,
    /// Whether the daemon controls the clock (without `-x`).
    pub clock_control: bool,
}

impl StatLogSettings {
    /// From the configuration; `clock_control` is false under `-x`.
    pub fn from_settings(s: &Settings, clock_control: bool) -> StatLogSettings {
        let has = |k: LogKind| s.log.contains(&k);
        StatLogSettings {
            dir: s.logdir.clone(),
            tracking: has(LogKind::Tracking),
            measurements: has(LogKind::Measurements) || has(LogKind::RawMeasurements),
            raw_measurements: has(LogKind::RawMeasurements),
            statistics: has(LogKind::Statistics),
            selection: has(LogKind::Selection),
            banner_every: u32::try_from(s.logbanner).unwrap_or(0),
            logchange: s.logchange,
            clock_control,
        }
    }

    fn any_file(&self) -> bool {
        self.tracking || self.measurements || self.statistics || self.selection
    }
}

/// Why the logs could not be set up.
#[derive(Debug)]
pub enum StatLogError {
    /// `logdir` does not exist and could not be created.
    CreateDir(PathBuf, std::io::Error),
    /// `logdir` exists but is not a directory.
    NotADirectory(PathBuf),
}

impl std::fmt::Display for StatLogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatLogError::CreateDir(p, e) => {
                write!(f, "Could not create directory {} : {e}", p.display())
            }
            StatLogError::NotADirectory(p) => write!(f, "{} is not directory", p.display()),
        }
    }
}

impl std::error::Error for StatLogError {}

/// One log file.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    header: &'static str,
    file: Option<File>,
    /// Entries written since the file was (re)opened.
    entries: u64,
    /// An open or write failed and was reported; quiet until the next re-open.
    failed: bool,
}

impl LogFile {
    fn new(dir: &Path, name: &str, header: &'static str) -> LogFile {
        LogFile {
            path: dir.join(name),
            header,
            file: None,
            entries: 0,
            failed: false,
        }
    }

    fn open(path: &Path) -> std::io::Result<File> {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            // A link planted in the log directory must not redirect root's writes.
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    }

    fn write(&mut self, line: &str, banner_every: u32) {
        if self.failed {
            return;
        }
        if self.file.is_none() {
            match LogFile::open(&self.path) {
                Ok(f) => {
                    self.file = Some(f);
                    self.entries = 0;
                }
                Err(e) => {
                    tracing::error!("Could not open log file {} : {e}", self.path.display());
                    self.failed = true;
                    return;
                }
            }
        }
        let mut buf = String::with_capacity(line.len() + 3 * self.header.len() + 4);
        if banner_every > 0 && self.entries % u64::from(banner_every) == 0 {
            buf.push_str(&format::banner(self.header));
        }
        buf.push_str(line);
        buf.push('\n');
        let Some(f) = self.file.as_mut() else {
            return;
        };
        // One write per entry: with O_APPEND the banner and line land together.
        if let Err(e) = f.write_all(buf.as_bytes()) {
            tracing::error!("Could not write to {} : {e}", self.path.display());
            self.failed = true;
            return;
        }
        self.entries += 1;
    }

    fn close(&mut self) {
        self.file = None;
        self.entries = 0;
        self.failed = false;
    }
}

/// What the last tracking entry described (a new entry is due when it changes).
#[derive(Debug, Clone, Copy, PartialEq)]
struct TrackingKey {
    ref_time: u64,
    leap: LeapStatus,
    stratum: u8,
    reference_id: u32,
}

/// The statistics logs of one daemon.
#[derive(Debug)]
pub struct StatLogs {
    settings: StatLogSettings,
    tracking: Option<LogFile>,
    measurements: Option<LogFile>,
    statistics: Option<LogFile>,
    selection: Option<LogFile>,
    /// A sample entered since the last [`StatLogs::observe`]: its selection round is due.
    selection_due: bool,
    generation: u64,
    last_tracking: Option<TrackingKey>,
    /// Each source's regression after the last engine call: (frequency ppm, skew ppm,
    /// samples), the "old" values of `Stress` and `Bs`.
    prev_stats: BTreeMap<SocketAddr, (f64, f64, u32)>,
    /// The engine stepped the clock since the last [`StatLogs::observe`]: that update has
    /// its own messages, so no `logchange` warning for it.
    stepped: bool,
    /// The clock's remaining correction before the last sample's update (`Rem. corr.` of
    /// the tracking entry for that update).
    correction_before: Option<f64>,
}

impl StatLogs {
    /// Sets up the logs: creates `logdir` when a log is enabled and it is missing (parents
    /// 0755, the directory itself 0750, as chronyd). Files open on their first entry.
    pub fn open(settings: StatLogSettings) -> Result<StatLogs, StatLogError> {
        let dir = if settings.any_file() {
            settings.dir.clone()
        } else {
            None
        };
        if let Some(d) = &dir {
            create_log_dir(d)?;
        }
        let file = |on: bool, name: &str, header: &'static str| {
            dir.as_deref()
                .filter(|_| on)
                .map(|d| LogFile::new(d, name, header))
        };
        Ok(StatLogs {
            tracking: file(settings.tracking, "tracking.log", TRACKING_HEADER),
            measurements: file(
                settings.measurements,
                "measurements.log",
                MEASUREMENTS_HEADER,
            ),
            statistics: file(settings.statistics, "statistics.log", STATISTICS_HEADER),
            selection: file(settings.selection, "selection.log", SELECTION_HEADER),
            selection_due: false,
            settings,
            generation: REOPEN_GENERATION.load(Ordering::SeqCst),
            last_tracking: None,
            prev_stats: BTreeMap::new(),
            stepped: false,
            correction_before: None,
        })
    }

    /// `cyclelogs`: closes every file; the next entry of each opens its path afresh and
    /// starts with a banner.
    pub fn reopen(&mut self) {
        for f in [
            &mut self.tracking,
            &mut self.measurements,
            &mut self.statistics,
            &mut self.selection,
        ]
        .into_iter()
        .flatten()
        {
            f.close();
        }
    }

    fn check_reopen(&mut self) {
        let g = REOPEN_GENERATION.load(Ordering::SeqCst);
        if g != self.generation {
            self.generation = g;
            self.reopen();
        }
    }

    /// Writes a `tracking.log` entry for UTC `t`.
    pub fn record_tracking(&mut self, t: f64, r: &TrackingReport, extra: &TrackingExtra) {
        self.check_reopen();
        let every = self.settings.banner_every;
        if let Some(f) = &mut self.tracking {
            f.write(&format::tracking_line(t, r, extra), every);
        }
    }

    /// Writes a `measurements.log` entry for UTC `t`.
    pub fn record_measurement(&mut self, t: f64, m: &MeasurementLine) {
        self.check_reopen();
        let every = self.settings.banner_every;
        if let Some(f) = &mut self.measurements {
            f.write(&format::measurement_line(t, m), every);
        }
    }

    /// Writes a `statistics.log` entry for UTC `t`.
    pub fn record_statistics(
        &mut self,
        t: f64,
        addr: SocketAddr,
        st: &SourceStatsReport,
        extra: &StatisticsExtra,
    ) {
        self.check_reopen();
        let every = self.settings.banner_every;
        if let Some(f) = &mut self.statistics {
            f.write(&format::statistics_line(t, addr.ip(), st, extra), every);
        }
    }

    /// Writes a `selection.log` round at UTC `t`.
    pub fn record_selection(&mut self, t: f64, round: &[format::SelectionLine]) {
        self.check_reopen();
        let every = self.settings.banner_every;
        if let Some(f) = &mut self.selection {
            for l in round {
                // Banners fall between entries, even inside a round (as chronyd's).
                f.write(&format::selection_line(t, l), every);
            }
        }
    }

    /// An accepted sample ([`Engine::handle_packet_recorded`]) received at UTC `t`: its
    /// measurement entry and the statistics entry of the regression it fed. `tx_stamp` and
    /// `rx_stamp` say where the local transmit and receive timestamps came from (the kernel's
    /// stamps or the daemon's readings: [`Engine::tx_from_kernel`] for the transmit one).
    pub fn record_sample(
        &mut self,
        t: f64,
        rec: &SampleRecord,
        tx_stamp: StampSource,
        rx_stamp: StampSource,
    ) {
        let s = &rec.sample;
        self.selection_due = true;
        let m = MeasurementLine {
            addr: rec.remote.ip(),
            leap: Some(s.leap),
            stratum: s.stratum,
            tests: TestBits::PASSED,
            local_poll: rec.local_poll,
            remote_poll: rec.remote_poll,
            score: rec.poll_score,
            // chronyd's column is positive when the local clock is slow.
            offset: -rec.measured_offset,
            peer_delay: s.peer_delay,
            peer_dispersion: s.peer_dispersion,
            // The sample's root values include this hop; the column is the server's.
            root_delay: (s.root_delay - s.peer_delay).max(0.0),
            root_dispersion: (s.root_dispersion - s.peer_dispersion).max(0.0),
            reference_id: rec.reference_id,
            mode: if rec.peer { 1 } else { 4 },
            interleaved: rec.interleaved,
            tx_stamp,
            rx_stamp,
        };
        self.record_measurement(t, &m);
        self.correction_before = Some(rec.remaining_correction);
        let st = rec.stats;
        if st.samples < MIN_REGRESSION_SAMPLES {
            // chronyd fits no regression (and logs none) before three samples.
            return;
        }
        let (old_freq, old_skew, old_n) = self
            .prev_stats
            .get(&rec.remote)
            .filter(|p| p.2 >= MIN_REGRESSION_SAMPLES)
            .map_or((0.0, INITIAL_SKEW, 0), |&(f, k, n)| (f * 1e-6, k * 1e-6, n));
        let extra = StatisticsExtra {
            stress: (old_freq - st.frequency_ppm * 1e-6).abs() / old_skew.max(1e-12),
            dropped: (old_n + 1).saturating_sub(st.samples),
            asymmetry: rec.jitter_asymmetry,
        };
        self.record_statistics(t, rec.remote, &st, &extra);
        // Until the next engine call ends, this regression is the one to compare with.
        self.prev_stats
            .insert(rec.remote, (st.frequency_ppm, st.skew_ppm, st.samples));
    }

    /// A packet received at UTC `t` that passed tests 1–3 but failed a later one: its
    /// measurement entry with the failed tests as 0 (no statistics entry: nothing entered
    /// the regression). Without `rawmeasurements` only packets that passed tests 1–7 are
    /// written (chronyd 4.3: `measurements` shows maxdelay failures, not an unsynchronised
    /// server).
    pub fn record_rejected(&mut self, t: f64, rec: &RejectedMeasurement, rx_stamp: StampSource) {
        let r = &rec.report;
        let mut tests = [true; 10];
        for (i, t) in tests.iter_mut().enumerate() {
            // Test 1 is the flags' bit 9 (ntp_data.rs).
            *t = r.tests >> (9 - i) & 1 == 1;
        }
        // Columns 3..6 are tests 5–7.
        let failed_5_to_7 = tests[3..6].iter().any(|t| !t);
        if failed_5_to_7 && !self.settings.raw_measurements {
            return;
        }
        if failed_5_to_7 {
            // chronyd stops there: tests A–D are not run and no measurement is computed.
            tests[6..].fill(false);
        }
        // A packet dropped by test 5–7 or by maxdelay (test A) shows chronyd's reset
        // polls and score (captured: `0  0 1.00`); failing maxdelayratio (B) or
        // maxdelaydevratio (C) keeps the source's (captured too; D, the loop test, was not
        // provoked and is assumed to be like B and C).
        let reset_polls = failed_5_to_7 || !tests[6];
        let measured = |x: f64| if failed_5_to_7 { 0.0 } else { x };
        let m = MeasurementLine {
            addr: rec.remote.ip(),
            leap: match r.leap {
                0 => Some(LeapState::Normal),
                1 => Some(LeapState::Insert),
                2 => Some(LeapState::Delete),
                _ => None,
            },
            stratum: r.stratum,
            tests: TestBits(tests),
            local_poll: if reset_polls { 0 } else { rec.local_poll },
            remote_poll: if reset_polls { 0 } else { r.poll },
            score: if reset_polls { 1.0 } else { rec.poll_score },
            offset: measured(-r.offset) + 0.0,
            peer_delay: measured(r.peer_delay),
            peer_dispersion: measured(r.peer_dispersion),
            root_delay: r.root_delay,
            root_dispersion: r.root_dispersion,
            reference_id: r.reference_id,
            mode: if rec.peer { 1 } else { 4 },
            interleaved: r.interleaved,
            // The exchange's transmit time: the kernel's stamp when one replaced the reading.
            tx_stamp: if r.tx_kernel {
                StampSource::Kernel
            } else {
                StampSource::Daemon
            },
            rx_stamp,
        };
        self.record_measurement(t, &m);
    }

    /// Sees an engine event before the daemon logs it; returns true when the event is
    /// this module's to report: a slew is warned about per `logchange` by
    /// [`StatLogs::observe`] (the engine's own threshold is fixed at 1 s). A step is noted
    /// (its messages are the daemon's) and returns false.
    pub fn takes_event(&mut self, e: &Event) -> bool {
        match e {
            Event::Slewing(_) => true,
            Event::Stepped(_) => {
                self.stepped = true;
                false
            }
            _ => false,
        }
    }

    /// After every engine call, at UTC `t` (the driver time `now`): writes a tracking entry
    /// when the reference changed, warns per `logchange`, and remembers each source's
    /// regression as corrected by the updates.
    pub fn observe(&mut self, t: f64, engine: &Engine, now: f64, clock: &dyn ClockDriver) {
        if std::mem::take(&mut self.selection_due) && self.selection.is_some() {
            let round = selection::round(engine, now, clock);
            self.record_selection(t, &round);
        }
        let stats = engine.source_stats(now, clock);
        self.prev_stats = stats
            .iter()
            .map(|(_, a, s)| (*a, (s.frequency_ppm, s.skew_ppm, s.samples)))
            .collect();
        let mut r = engine.tracking(now, clock);
        let key = TrackingKey {
            ref_time: r.ref_time.to_bits(),
            leap: r.leap_status,
            stratum: r.stratum,
            reference_id: r.reference_id,
        };
        // Both describe the update of this engine call, if there was one.
        let stepped = std::mem::take(&mut self.stepped);
        let correction_before = self.correction_before.take();
        if self.last_tracking == Some(key) {
            return;
        }
        let updated = self
            .last_tracking
            .is_none_or(|k| k.ref_time != key.ref_time);
        self.last_tracking = Some(key);
        let synchronised = r.leap_status != LeapStatus::Unsynchronised;
        if synchronised && updated && !stepped && r.last_offset.abs() > self.settings.logchange {
            tracing::warn!(
                "System clock wrong by {:.6} seconds{}",
                -r.last_offset,
                if self.settings.clock_control {
                    ", adjustment started"
                } else {
                    ""
                }
            );
        }
        if self.tracking.is_none() {
            return;
        }
        let sources = engine.sources(now, clock);
        let combined = if synchronised {
            sources
                .iter()
                .filter(|(_, s)| matches!(s.state, SourceState::Selected | SourceState::Combined))
                .count() as u32
        } else {
            0
        };
        let offset_sd = sources
            .iter()
            .find(|(_, s)| s.state == SourceState::Selected)
            .and_then(|(id, _)| stats.iter().find(|(i, _, _)| i == id))
            .map_or(0.0, |(_, _, s)| s.est_offset_err);
        if synchronised && updated {
            // chronyd's entry shows the correction left before this update was applied.
            r.system_time = correction_before.unwrap_or(r.system_time);
        }
        // The unsynchronised reference reports -0 ppm; chronyd prints 0.000.
        r.frequency_ppm += 0.0;
        let extra = TrackingExtra {
            combined,
            offset_sd,
            max_error: r.root_delay / 2.0 + r.root_dispersion + r.system_time.abs(),
        };
        self.record_tracking(t, &r, &extra);
    }
}

/// Creates `dir` when missing: parents 0755, the directory itself 0750.
fn create_log_dir(dir: &Path) -> Result<(), StatLogError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => return Err(StatLogError::NotADirectory(dir.to_path_buf())),
        Err(_) => {}
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| StatLogError::CreateDir(parent.to_path_buf(), e))?;
    }
    match DirBuilder::new().mode(0o750).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(StatLogError::CreateDir(dir.to_path_buf(), e)),
    }
}

#[cfg(test)]
mod tests;
