//! The reference: disciplines the local clock from the combined selection result and keeps the
//! `tracking` figures, as chrony's `reference` module does.
//!
//! Behaviour followed (chrony.conf): the frequency is updated by weighting the current estimate
//! and the sources' residual frequency by the inverse square of their skews (an update whose
//! skew exceeds `maxupdateskew` leaves the frequency alone; the result is clamped to
//! `maxdrift`); the offset is stepped when `makestep THRESHOLD LIMIT` allows it and slewed
//! otherwise, with a correction time of `corrtimeratio` update intervals (shorter for offsets
//! larger than the RMS offset, never faster than `maxslewrate`); `maxchange OFFSET START IGNORE`
//! ignores too large updates and finally asks the daemon to exit. Leap seconds announced by the
//! sources (by majority, see `selection`) or by a leap table are applied at the end of the last
//! day of June or December per `leapsecmode`. `local` gives a fallback reference when all sources
//! are lost. `fallbackdrift` (see [`fallback_drift`]) sets long-term average frequencies when
//! updates stop. The drift file format (`%20.6f %20.6f`) is parsed and formatted here; file I/O
//! is the daemon's.

pub mod fallback_drift;
pub mod leap_table;

use fallback_drift::FallbackDrift;

use crate::local_clock::{ClockDriver, ClockError, LeapState};
use crate::reports::{LeapStatus, TrackingReport};
use crate::selection::Combined;

/// `leapsecmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeapMode {
    /// The kernel steps the clock at midnight (default).
    #[default]
    System,
    /// The engine steps the clock at midnight.
    Step,
    /// The engine slews the leap second from midnight on.
    Slew,
    /// Nothing is done; later measurements correct the error.
    Ignore,
}

/// `local [stratum N] [distance D] [orphan]`: fallback reference when no source is usable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalConfig {
    /// Stratum served in local mode (default 10).
    pub stratum: u8,
    /// `distance`: after synchronisation from sources was lost, the local reference activates
    /// only once our root distance exceeds this (seconds, default 1). Never synchronised, it
    /// is active at once.
    pub distance: f64,
    /// `orphan`: sources at `stratum` or above are held back in selection (see
    /// [`crate::selection::Orphan`]).
    pub orphan: bool,
}

impl Default for LocalConfig {
    /// chrony's `local` without options: stratum 10, distance 1 s, no orphan mode.
    fn default() -> Self {
        LocalConfig {
            stratum: 10,
            distance: 1.0,
            orphan: false,
        }
    }
}

/// Reference ID of local mode ("127.127.1.1").
pub const LOCAL_REFERENCE_ID: u32 = 0x7F7F_0101;

/// Clock discipline directives (chrony defaults in [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceConfig {
    /// `maxslewrate`, ppm.
    pub max_slew_rate_ppm: f64,
    /// `makestep THRESHOLD LIMIT` (limit < 0: always).
    pub makestep: Option<(f64, i64)>,
    /// `maxchange OFFSET START IGNORE` (ignore < 0: never exit).
    pub maxchange: Option<(f64, u64, i64)>,
    /// `maxupdateskew`, ppm.
    pub max_update_skew_ppm: f64,
    /// `maxdrift`, ppm.
    pub max_drift_ppm: f64,
    /// `corrtimeratio`.
    pub corr_time_ratio: f64,
    /// `maxclockerror`, ppm.
    pub max_clock_error_ppm: f64,
    /// `leapsecmode`.
    pub leap_mode: LeapMode,
    /// `local`.
    pub local: Option<LocalConfig>,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            max_slew_rate_ppm: 83333.333,
            makestep: None,
            maxchange: None,
            max_update_skew_ppm: 1000.0,
            max_drift_ppm: 500_000.0,
            corr_time_ratio: 3.0,
            max_clock_error_ppm: 1.0,
            leap_mode: LeapMode::System,
            local: None,
        }
    }
}

/// A correction of the local clock that every source must apply to its stored samples
/// (see `SourceStats::apply_clock_change`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockChange {
    /// Local time of the change.
    pub when: f64,
    /// Frequency change (dimensionless, positive = the clock now runs faster).
    pub dfreq: f64,
    /// Offset change (seconds, positive = the clock moved forward).
    pub doffset: f64,
}

/// What a clock update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpdateAction {
    /// The offset (local minus true, seconds) is being slewed away.
    Slewed(f64),
    /// The clock was stepped to remove this offset ("System clock wrong by X seconds").
    Stepped(f64),
    /// `maxchange`: the offset was too large and ignored.
    IgnoredMaxChange(f64),
    /// `maxchange`: too many large offsets; the daemon must exit.
    ExitMaxChange(f64),
}

/// Result of [`Reference::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Update {
    /// What happened to the offset.
    pub action: UpdateAction,
    /// The change the sources must apply (none when ignored).
    pub change: Option<ClockChange>,
}

/// Why a drift file was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftError {
    /// Not two numbers.
    Malformed,
    /// A value is NaN or infinite.
    NotFinite,
    /// The frequency is beyond `maxdrift` or the skew is negative.
    OutOfRange,
}

impl core::fmt::Display for DriftError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DriftError::Malformed => "could not parse drift file",
            DriftError::NotFinite => "drift file value not finite",
            DriftError::OutOfRange => "drift file value out of range",
        })
    }
}

impl std::error::Error for DriftError {}

/// Parses a drift file (`FREQ_PPM SKEW_PPM`: the rate the clock gains, gains positive, and its
/// error bound, as chrony writes it). Read as chronyd 4.3 reads it (measured on loopback): the
/// first two numbers count, whatever follows them (more words, no final newline) is ignored.
/// Fewer than two numbers, NaN, infinities, a negative skew or a frequency beyond
/// `max_drift_ppm` are errors; the caller logs and ignores them.
pub fn parse_drift(text: &str, max_drift_ppm: f64) -> Result<(f64, f64), DriftError> {
    let mut it = text.split_ascii_whitespace();
    let (Some(f), Some(s)) = (it.next(), it.next()) else {
        return Err(DriftError::Malformed);
    };
    let (Ok(freq), Ok(skew)) = (f.parse::<f64>(), s.parse::<f64>()) else {
        return Err(DriftError::Malformed);
    };
    if !freq.is_finite() || !skew.is_finite() {
        return Err(DriftError::NotFinite);
    }
    if freq.abs() > max_drift_ppm || skew < 0.0 {
        return Err(DriftError::OutOfRange);
    }
    Ok((freq, skew))
}

/// Formats the drift file content (chrony's layout).
pub fn format_drift(freq_ppm: f64, skew_ppm: f64) -> String {
    format!("{freq_ppm:20.6} {skew_ppm:20.6}\n")
}

/// Seconds in a UTC day.
const DAY: f64 = 86400.0;

/// True when the UTC day containing `unix_time` is the last day of June or December, the only
/// days a leap second is accepted on.
pub fn is_leap_day(unix_time: f64) -> bool {
    let days = (unix_time / DAY).floor() as i64;
    let (_, m, d) = civil_from_days(days + 1);
    d == 1 && (m == 7 || m == 1)
}

/// Proleptic Gregorian date (year, month 1–12, day 1–31) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The clock discipline and the tracking state.
#[derive(Debug, Clone)]
pub struct Reference {
    cfg: ReferenceConfig,
    synchronised: bool,
    local_mode: bool,
    stratum: u8,
    reference_id: u32,
    ref_time: f64,
    last_offset: f64,
    mean_square_offset: f64,
    skew: f64,
    residual_freq: f64,
    root_delay: f64,
    root_dispersion: f64,
    update_interval: f64,
    last_update: Option<f64>,
    updates: u64,
    maxchange_ignored: i64,
    leap: LeapState,
    armed_leap: LeapState,
    fallback: Option<FallbackDrift>,
}

impl Reference {
    /// A fresh, unsynchronised reference.
    pub fn new(cfg: ReferenceConfig) -> Self {
        Reference {
            cfg,
            synchronised: false,
            local_mode: false,
            stratum: 0,
            reference_id: 0,
            ref_time: 0.0,
            last_offset: 0.0,
            mean_square_offset: 0.0,
            skew: crate::source_stats::WORST_CASE_SKEW,
            residual_freq: 0.0,
            root_delay: 0.0,
            root_dispersion: 0.0,
            update_interval: 0.0,
            last_update: None,
            updates: 0,
            maxchange_ignored: 0,
            leap: LeapState::Normal,
            armed_leap: LeapState::Normal,
            fallback: None,
        }
    }

    /// `fallbackdrift MIN MAX` (log2 seconds; 0 for either disables it, as in chrony).
    pub fn set_fallback_drift(&mut self, min_log2: i32, max_log2: i32) {
        self.fallback = FallbackDrift::new(min_log2, max_log2);
    }

    /// Index of the fallback drift in use (0 = the 2^MIN s average), if one was set since the
    /// last update.
    pub fn fallback_drift_active(&self) -> Option<usize> {
        self.fallback.as_ref().and_then(FallbackDrift::active)
    }

    /// When the next fallback drift is due (local time), for the engine's poll timeout.
    pub fn fallback_drift_deadline(&self) -> Option<f64> {
        self.fallback.as_ref().and_then(FallbackDrift::next_due)
    }

    /// Sets the clock's frequency to a fallback drift when one is due at local time `now`
    /// (`fallbackdrift`): the clock becomes unsynchronised, as chrony's does. Returns the
    /// frequency change the sources must apply.
    pub fn apply_fallback_drift(
        &mut self,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<Option<ClockChange>, ClockError> {
        let Some(freq) = self.fallback.as_mut().and_then(|f| f.due(now)) else {
            return Ok(None);
        };
        let old = clock.frequency_ppm();
        let target = self.limit_drift(freq);
        clock.set_frequency_ppm(target)?;
        if self.synchronised {
            self.synchronised = false;
            self.reference_id = 0;
            self.leap = LeapState::Normal;
            clock.set_sync_status(false, 0.0, 16.0)?;
        }
        Ok(Some(ClockChange {
            when: now,
            dfreq: (target - old) * 1e-6,
            doffset: 0.0,
        }))
    }

    /// The directives.
    pub fn config(&self) -> &ReferenceConfig {
        &self.cfg
    }

    /// True after a clock update from sources (or in local mode).
    pub fn is_synchronised(&self) -> bool {
        self.synchronised || self.local_mode
    }

    /// Number of clock updates so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Stratum we serve (0 when unsynchronised).
    pub fn stratum(&self) -> u8 {
        if self.is_synchronised() {
            self.stratum
        } else {
            0
        }
    }

    /// Reference ID we serve.
    pub fn reference_id(&self) -> u32 {
        self.reference_id
    }

    /// Root delay we serve, seconds.
    pub fn root_delay(&self) -> f64 {
        self.root_delay
    }

    /// Root dispersion we serve at local time `now` (grows with the time since the update).
    pub fn root_dispersion_at(&self, now: f64) -> f64 {
        self.root_distance_growth(now)
    }

    /// Root distance (root delay / 2 + root dispersion) we serve at local time `now`; 0 in
    /// local mode, as chrony's local reference serves no delay or dispersion.
    pub fn root_distance_at(&self, now: f64) -> f64 {
        if self.local_mode {
            0.0
        } else {
            self.root_delay / 2.0 + self.root_distance_growth(now)
        }
    }

    /// True while the local reference (`local`) is what we serve.
    pub fn local_active(&self) -> bool {
        self.local_mode
    }

    /// Local time of the last clock update.
    pub fn ref_time(&self) -> f64 {
        self.ref_time
    }

    /// Leap warning we pass on.
    pub fn leap(&self) -> LeapState {
        self.leap
    }

    /// Drift to save, in chrony's drift file convention: (rate at which the undisciplined
    /// clock gains, ppm, gains positive — the negated driver correction; skew ppm).
    pub fn drift(&self, clock: &dyn ClockDriver) -> (f64, f64) {
        (-clock.frequency_ppm(), self.skew * 1e6)
    }

    /// Applies a drift file value at start (gain rate in ppm, gains positive; skew ppm): the
    /// driver is set to compensate the gain.
    pub fn load_drift(
        &mut self,
        freq_ppm: f64,
        skew_ppm: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        let f = self.limit_drift(freq_ppm);
        clock.set_frequency_ppm(-f)?;
        self.skew = (skew_ppm * 1e-6).clamp(1e-12, crate::source_stats::WORST_CASE_SKEW);
        Ok(())
    }

    /// Updates the clock from a selection result valid at local time `now`.
    pub fn update(
        &mut self,
        now: f64,
        comb: &Combined,
        clock: &mut dyn ClockDriver,
    ) -> Result<Update, ClockError> {
        let offset = comb.offset;
        if let Some((max, start, ignore)) = self.cfg.maxchange {
            if self.updates >= start && offset.abs() > max {
                if ignore >= 0 && self.maxchange_ignored >= ignore {
                    return Ok(Update {
                        action: UpdateAction::ExitMaxChange(offset),
                        change: None,
                    });
                }
                self.maxchange_ignored += 1;
                return Ok(Update {
                    action: UpdateAction::IgnoredMaxChange(offset),
                    change: None,
                });
            }
        }

        let interval = self.last_update.map_or(0.0, |t| (now - t).max(0.0));
        // The current frequency estimate ages by maxclockerror per update.
        let our_skew = self.skew + self.cfg.max_clock_error_ppm * 1e-6;
        let mut dfreq = 0.0;
        if comb.skew <= self.cfg.max_update_skew_ppm * 1e-6 {
            let w_new = our_skew * our_skew / (our_skew * our_skew + comb.skew * comb.skew);
            // Sources see our clock gain `frequency`: slow it down by the weighted amount.
            let old = clock.frequency_ppm();
            let target = self.limit_drift(old - w_new * comb.frequency * 1e6);
            clock.set_frequency_ppm(target)?;
            dfreq = (target - old) * 1e-6;
            self.skew = (our_skew * comb.skew
                / (our_skew * our_skew + comb.skew * comb.skew).sqrt())
            .max(1e-12);
        }
        // Remaining residual frequency after the correction, for `tracking`.
        self.residual_freq = comb.frequency + dfreq;
        if let Some(f) = &mut self.fallback {
            f.update(now, clock.frequency_ppm());
        }

        let step = match self.cfg.makestep {
            Some((threshold, limit)) => {
                offset.abs() > threshold && (limit < 0 || self.updates < limit as u64)
            }
            None => false,
        };
        let action = if step {
            clock.step(-offset)?;
            UpdateAction::Stepped(offset)
        } else {
            // The rate applies to everything still to be slewed, not only this update's part.
            let total = offset - clock.remaining_offset();
            let rate = self.slew_rate(total, interval, comb.offset_sd);
            clock.accrue_offset_with_rate(-offset, rate)?;
            UpdateAction::Slewed(offset)
        };

        if self.updates > 0 {
            self.update_interval = interval;
        }
        self.updates += 1;
        self.last_update = Some(now);
        self.synchronised = true;
        self.local_mode = false;
        self.ref_time = now;
        self.last_offset = offset;
        self.mean_square_offset = if self.updates == 1 {
            offset * offset
        } else {
            0.875 * self.mean_square_offset + 0.125 * offset * offset
        };
        self.stratum = comb.stratum.saturating_add(1).min(16);
        self.reference_id = comb.reference_id;
        self.root_delay = comb.root_delay;
        self.root_dispersion = comb.root_dispersion + comb.offset_sd;
        self.leap = comb.leap;
        Ok(Update {
            action,
            change: Some(ClockChange {
                when: now,
                dfreq,
                doffset: -offset,
            }),
        })
    }

    /// Limits a frequency (ppm) to ±`maxdrift`. The directive's number comes from a file
    /// unchecked (`maxdrift -1`, `maxdrift nan` parse): a negative limit counts by its size and
    /// a NaN limit, like chronyd's comparisons with NaN, limits nothing — never a panic.
    fn limit_drift(&self, freq_ppm: f64) -> f64 {
        let limit = self.cfg.max_drift_ppm.abs();
        if limit.is_nan() {
            freq_ppm
        } else {
            freq_ppm.clamp(-limit, limit)
        }
    }

    /// Slew rate (ppm) for an offset: `corrtimeratio` update intervals for an offset equal to
    /// the typical correction (the RMS of past offsets, or the estimate's own uncertainty when
    /// that is larger), proportionally faster for larger offsets, within `maxslewrate`.
    fn slew_rate(&self, offset: f64, interval: f64, uncertainty: f64) -> f64 {
        let base = self.cfg.corr_time_ratio * interval.max(1.0);
        let typical = self.mean_square_offset.sqrt().min(uncertainty.max(1e-9));
        let scale = if offset.abs() > typical && typical > 0.0 {
            typical / offset.abs()
        } else {
            1.0
        };
        let duration = (base * scale).max(1e-3);
        (offset.abs() / duration * 1e6).min(self.cfg.max_slew_rate_ppm)
    }

    /// No usable selection: become unsynchronised, or fall back to local mode. With `local`,
    /// a clock that was synchronised from sources keeps serving that synchronisation (with
    /// its root dispersion growing) until its root distance exceeds `local distance`, as
    /// chrony.conf documents ([`Reference::check_local_distance`] switches when the
    /// threshold is crossed).
    pub fn unsynchronise(
        &mut self,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        if let Some(local) = self.cfg.local {
            if self.synchronised && self.root_distance_at(now) < local.distance {
                return Ok(());
            }
            return self.enter_local(local, now, clock);
        }
        if self.synchronised {
            self.synchronised = false;
            self.reference_id = 0;
            self.leap = LeapState::Normal;
            clock.set_sync_status(false, 0.0, 16.0)?;
        }
        Ok(())
    }

    /// With `local`: activates the local reference once the root distance of the
    /// synchronisation we serve exceeds `local distance`, whether or not selection still has a
    /// source (chrony.conf: a source that stopped giving usable samples leaves the clock
    /// synchronised with a growing distance). Called at every timer; returns true when the
    /// local reference was activated now.
    pub fn check_local_distance(
        &mut self,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<bool, ClockError> {
        match self.cfg.local {
            Some(local) if self.synchronised && self.root_distance_at(now) >= local.distance => {
                self.enter_local(local, now, clock)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// chronyc `makestep THRESHOLD LIMIT` at run time. As chronyd counts it, LIMIT is the
    /// number of clock updates from now on in which a step is allowed (negative: always, 0:
    /// never), not from the start as in the directive.
    pub fn set_makestep(&mut self, threshold: f64, limit: i64) {
        if !threshold.is_finite() {
            return;
        }
        let limit = if limit < 0 {
            -1
        } else {
            i64::try_from(self.updates)
                .unwrap_or(i64::MAX)
                .saturating_add(limit)
        };
        self.cfg.makestep = Some((threshold, limit));
    }

    /// chronyc `maxupdateskew SKEW` at run time, ppm.
    pub fn set_max_update_skew(&mut self, ppm: f64) {
        if ppm.is_finite() && ppm > 0.0 {
            self.cfg.max_update_skew_ppm = ppm;
        }
    }

    /// chronyc `local ...` / `local off` at run time: the fallback reference becomes what the
    /// command says, as if configured so. Already in local mode, the new stratum is served at
    /// once and `local off` leaves local mode (unsynchronised until a source updates the
    /// clock). Synchronised from sources, nothing changes now: the new `distance` decides when
    /// [`Reference::check_local_distance`] falls back (chronyd, checked black-box, keeps
    /// serving its synchronisation after `local stratum 10 orphan` until the 1 s default
    /// distance is reached).
    pub fn set_local(
        &mut self,
        local: Option<LocalConfig>,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        self.cfg.local = local;
        if !self.local_mode {
            return Ok(());
        }
        match local {
            Some(l) => {
                self.stratum = l.stratum;
                Ok(())
            }
            None => {
                self.local_mode = false;
                self.synchronised = false;
                self.reference_id = 0;
                self.leap = LeapState::Normal;
                clock.set_sync_status(false, 0.0, 16.0)
            }
        }
    }

    fn enter_local(
        &mut self,
        local: LocalConfig,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        self.local_mode = true;
        self.synchronised = false;
        self.stratum = local.stratum;
        self.reference_id = LOCAL_REFERENCE_ID;
        self.ref_time = now;
        self.root_delay = 0.0;
        self.root_dispersion = 0.0;
        self.leap = LeapState::Normal;
        clock.set_sync_status(false, 0.0, 16.0)
    }

    /// Tells the kernel about our state (rtcsync: the kernel copies the time to the RTC when
    /// it is synchronised).
    pub fn report_sync_status(
        &self,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        if !self.synchronised {
            return clock.set_sync_status(false, 0.0, 16.0);
        }
        let est = self.mean_square_offset.sqrt();
        let max = self.root_delay / 2.0 + self.root_distance_growth(now);
        clock.set_sync_status(true, est, max)
    }

    fn root_distance_growth(&self, now: f64) -> f64 {
        let age = (now - self.ref_time).max(0.0);
        self.root_dispersion + age * (self.skew + self.cfg.max_clock_error_ppm * 1e-6)
    }

    /// Local time of the next leap-second event, if one is pending: the end of today when
    /// today is a leap day and a leap is announced.
    pub fn next_leap_event(&self, now: f64) -> Option<f64> {
        if self.leap == LeapState::Normal || !self.is_synchronised() || !is_leap_day(now) {
            return None;
        }
        let midnight = ((now / DAY).floor() + 1.0) * DAY;
        Some(match self.leap {
            LeapState::Delete => midnight - 1.0,
            _ => midnight,
        })
    }

    /// Arms the kernel leap flag (`leapsecmode system`) while a leap is pending today.
    pub fn arm_leap(&mut self, now: f64, clock: &mut dyn ClockDriver) -> Result<(), ClockError> {
        let want = if self.cfg.leap_mode == LeapMode::System && self.next_leap_event(now).is_some()
        {
            self.leap
        } else {
            LeapState::Normal
        };
        if want != self.armed_leap {
            clock.set_leap(want)?;
            self.armed_leap = want;
        }
        Ok(())
    }

    /// Applies the leap second at its event time per `leapsecmode`; returns the timeline change
    /// (`doffset` = -1 s for an insertion). The sources saw the same leap, so measured offsets
    /// stay valid: the caller shifts only times (and deadlines when the driver's time jumped).
    pub fn apply_leap(
        &mut self,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<Option<ClockChange>, ClockError> {
        let doffset = match self.leap {
            LeapState::Insert => -1.0,
            LeapState::Delete => 1.0,
            LeapState::Normal => return Ok(None),
        };
        match self.cfg.leap_mode {
            // The kernel made the step; only our model needs it.
            LeapMode::System => {}
            LeapMode::Step => clock.step(doffset)?,
            LeapMode::Slew => clock.accrue_offset_with_rate(doffset, self.cfg.max_slew_rate_ppm)?,
            LeapMode::Ignore => {
                self.leap = LeapState::Normal;
                return Ok(None);
            }
        }
        self.leap = LeapState::Normal;
        if self.armed_leap != LeapState::Normal {
            clock.set_leap(LeapState::Normal)?;
            self.armed_leap = LeapState::Normal;
        }
        Ok(Some(ClockChange {
            when: now,
            dfreq: 0.0,
            doffset,
        }))
    }

    /// Overrides the sources' leap vote with a leap table's answer (leapsectz / leapseclist).
    pub fn set_leap_from_table(&mut self, leap: LeapState) {
        self.leap = leap;
    }

    /// The `tracking` report at local time `now`.
    pub fn tracking(&self, now: f64, clock: &dyn ClockDriver) -> TrackingReport {
        let sync = self.is_synchronised();
        TrackingReport {
            reference_id: if sync { self.reference_id } else { 0 },
            reference_addr: None,
            stratum: self.stratum(),
            ref_time: if sync { self.ref_time } else { 0.0 },
            system_time: clock.remaining_offset(),
            last_offset: self.last_offset,
            rms_offset: self.mean_square_offset.sqrt(),
            frequency_ppm: -clock.frequency_ppm(),
            residual_freq_ppm: self.residual_freq * 1e6,
            skew_ppm: self.skew * 1e6,
            root_delay: if self.synchronised {
                self.root_delay
            } else {
                0.0
            },
            root_dispersion: if self.synchronised {
                self.root_distance_growth(now)
            } else {
                0.0
            },
            update_interval: self.update_interval,
            leap_status: LeapStatus::from_state(sync, self.leap),
        }
    }
}

#[cfg(test)]
mod tests;
