//! The one clock seam (architecture rule 3): a [`ClockDriver`] trait implemented by the system
//! driver (the kernel clock-adjustment call, only in gnomond's `clock/system.rs`), the null
//! driver (`-x`: corrections kept in memory, the kernel clock is never written) and the
//! simulator's virtual clock.
//!
//! Times are seconds as `f64` relative to the Unix epoch for offsets and frequency in ppm, as
//! chrony's `local.c` interface does; absolute times are read by the caller and passed in.

/// Leap-second state handed to the kernel (or kept by the null/virtual driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeapState {
    /// No leap second pending.
    #[default]
    Normal,
    /// Insert a second at the end of the UTC day.
    Insert,
    /// Delete the last second of the UTC day.
    Delete,
}

/// Why a clock operation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClockError {
    /// The driver refused the value (out of the kernel's range, not finite, ...).
    InvalidValue(&'static str),
    /// The OS call failed with this errno.
    Os(i32),
}

impl core::fmt::Display for ClockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClockError::InvalidValue(what) => write!(f, "invalid clock value: {what}"),
            ClockError::Os(errno) => write!(f, "clock operation failed (errno {errno})"),
        }
    }
}

impl std::error::Error for ClockError {}

/// A clock that the engine may read and discipline.
///
/// `now` values are seconds since the Unix epoch of the *raw* clock being driven; the engine keeps
/// its own model of the difference between raw and true time.
pub trait ClockDriver {
    /// Reads the clock (seconds since the Unix epoch, nanosecond resolution is enough).
    fn read(&mut self) -> f64;
    /// The current frequency offset in ppm (positive = the clock is made to run faster).
    fn frequency_ppm(&self) -> f64;
    /// Sets the frequency offset in ppm.
    fn set_frequency_ppm(&mut self, ppm: f64) -> Result<(), ClockError>;
    /// Starts slewing the clock by `offset` seconds (positive = the clock is moved forward).
    fn accrue_offset(&mut self, offset: f64) -> Result<(), ClockError>;
    /// Starts slewing `offset` seconds at about `rate_ppm` (chosen by the engine from
    /// `corrtimeratio` and `maxslewrate`). Drivers that slew at their own pace keep the default,
    /// which ignores the rate.
    fn accrue_offset_with_rate(&mut self, offset: f64, rate_ppm: f64) -> Result<(), ClockError> {
        let _ = rate_ppm;
        self.accrue_offset(offset)
    }
    /// Offset (seconds) still to be slewed by a previous `accrue_offset`.
    fn remaining_offset(&self) -> f64;
    /// Steps the clock by `offset` seconds at once (positive = forward).
    fn step(&mut self, offset: f64) -> Result<(), ClockError>;
    /// Arms (or clears) a leap second.
    fn set_leap(&mut self, leap: LeapState) -> Result<(), ClockError>;
    /// Tells the kernel (for `rtcsync`) whether we are synchronised and how good the clock is.
    fn set_sync_status(
        &mut self,
        synchronised: bool,
        est_error: f64,
        max_error: f64,
    ) -> Result<(), ClockError>;
}

/// Cooked time: the raw reading plus the correction still being slewed, i.e. the time the clock
/// will show once the pending slew is done (chrony's "cooked" time). Measurements use it so that
/// they are consistent with corrections already decided.
pub fn cooked_time(clock: &dyn ClockDriver, raw: f64) -> f64 {
    raw + clock.remaining_offset()
}

/// An in-memory clock for unit tests: slews instantly, records every call.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct TestClock {
    pub now: f64,
    pub freq_ppm: f64,
    pub remaining: f64,
    pub steps: Vec<f64>,
    pub slews: Vec<(f64, f64)>,
    pub leap: LeapState,
    pub sync: Option<(bool, f64, f64)>,
}

#[cfg(test)]
impl ClockDriver for TestClock {
    fn read(&mut self) -> f64 {
        self.now
    }
    fn frequency_ppm(&self) -> f64 {
        self.freq_ppm
    }
    fn set_frequency_ppm(&mut self, ppm: f64) -> Result<(), ClockError> {
        if !ppm.is_finite() {
            return Err(ClockError::InvalidValue("frequency"));
        }
        self.freq_ppm = ppm;
        Ok(())
    }
    fn accrue_offset(&mut self, offset: f64) -> Result<(), ClockError> {
        self.accrue_offset_with_rate(offset, 500.0)
    }
    fn accrue_offset_with_rate(&mut self, offset: f64, rate_ppm: f64) -> Result<(), ClockError> {
        self.slews.push((offset, rate_ppm));
        self.remaining += offset;
        Ok(())
    }
    fn remaining_offset(&self) -> f64 {
        self.remaining
    }
    fn step(&mut self, offset: f64) -> Result<(), ClockError> {
        self.steps.push(offset);
        self.now += offset;
        Ok(())
    }
    fn set_leap(&mut self, leap: LeapState) -> Result<(), ClockError> {
        self.leap = leap;
        Ok(())
    }
    fn set_sync_status(
        &mut self,
        synchronised: bool,
        est_error: f64,
        max_error: f64,
    ) -> Result<(), ClockError> {
        self.sync = Some((synchronised, est_error, max_error));
        Ok(())
    }
}
