//! The system clock driver: disciplines CLOCK_REALTIME through `clock_adjtime(2)`, as chronyd's
//! `sys_linux`/`sys_timex` drivers do (features.md, architecture rule 3).
//!
//! * Frequency: `ADJ_FREQUENCY` (units of 2^-16 ppm, ±500 ppm in the kernel); beyond that the
//!   tick length is changed too (`ADJ_TICK`, 1 µs of a 10 000 µs tick = 100 ppm), so
//!   corrections up to ±10 % are possible as with chronyd.
//! * Offsets: slewed by the kernel (`ADJ_OFFSET_SINGLESHOT`, adjtime semantics at 500 ppm);
//!   the remainder is read back with `ADJ_OFFSET_SS_READ`. Steps: `ADJ_SETOFFSET | ADJ_NANO`.
//! * Leap seconds: `STA_INS` / `STA_DEL`; synchronisation status for other readers of the
//!   kernel state: `esterror`, `maxerror`, and `STA_UNSYNC`, which is cleared only with
//!   `rtcsync` (as chronyd on Linux does: a clear `STA_UNSYNC` is what turns on the kernel's
//!   11-minute copy of the system time to the RTC, so without `rtcsync` it stays set).
//!
//! The kernel call is behind the small [`Adjtimex`] trait so that unit tests check every value
//! handed to the kernel with a mock. The real implementation ([`LibcAdjtimex`]) exists only with
//! the `system-clock` cargo feature, which is off by default and never enabled in tests or CI:
//! without it gnomond refuses to start without `-x`.

// Without the feature only the tests and the refusal use the driver.
#![cfg_attr(not(feature = "system-clock"), allow(dead_code))]

use super::{NullClock, OsTime, RawTime};
use gnomon_core::local_clock::{ClockDriver, ClockError, LeapState};

/// Nominal tick length in µs (USER_HZ is 100 in the Linux timex ABI).
pub const NOMINAL_TICK: i64 = 10_000;
/// ppm per µs of tick change.
const PPM_PER_TICK_US: f64 = 1e6 / NOMINAL_TICK as f64;
/// Largest frequency the kernel takes in `freq`, ppm.
const MAX_KERNEL_FREQ_PPM: f64 = 500.0;
/// Largest total correction, ppm (a tick change of ±10 %).
pub const MAX_FREQ_PPM: f64 = 100_000.0;
/// `freq` units per ppm (the kernel's 16-bit binary fraction).
const FREQ_SCALE: f64 = 65_536.0;
/// Largest `maxerror`/`esterror` the kernel keeps, µs (NTP_PHASE_LIMIT-like 16 s).
const MAX_ERROR_US: f64 = 16_000_000.0;

/// Linux `ADJ_OFFSET_SS_READ` (read the remaining single-shot offset); not in every libc
/// release, so spelt out here with its kernel value.
const ADJ_OFFSET_SS_READ: u32 = 0xa001;

/// The `struct timex` fields the driver uses, in the kernel's units (µs, or ns for `time_usec`
/// with `ADJ_NANO`; `freq` in 2^-16 ppm). Plain Rust so the mock needs no libc layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timex {
    /// `ADJ_*` mode bits.
    pub modes: u32,
    /// `offset`.
    pub offset: i64,
    /// `freq`.
    pub freq: i64,
    /// `maxerror`.
    pub maxerror: i64,
    /// `esterror`.
    pub esterror: i64,
    /// `status` (`STA_*`).
    pub status: i32,
    /// `tick`.
    pub tick: i64,
    /// `time.tv_sec`.
    pub time_sec: i64,
    /// `time.tv_usec` (nanoseconds with `ADJ_NANO`).
    pub time_usec: i64,
}

/// The kernel interface: one `clock_adjtime(CLOCK_REALTIME, tx)` call. Returns the clock state
/// or the errno.
pub trait Adjtimex {
    /// Performs the call with `tx` (modes and values set by the caller; filled on return).
    fn call(&self, tx: &mut Timex) -> Result<i32, i32>;
}

fn empty_timex() -> Timex {
    Timex::default()
}

/// The real kernel call (only with the `system-clock` feature; never built in tests or CI).
#[cfg(feature = "system-clock")]
#[derive(Debug, Default, Clone, Copy)]
pub struct LibcAdjtimex;

#[cfg(feature = "system-clock")]
impl Adjtimex for LibcAdjtimex {
    #[allow(unsafe_code)]
    fn call(&self, tx: &mut Timex) -> Result<i32, i32> {
        // SAFETY: libc::timex is a plain C struct of integers and padding, for which all-zero
        // bytes are a valid value.
        let mut k: libc::timex = unsafe { std::mem::zeroed() };
        k.modes = tx.modes as _;
        k.offset = tx.offset as _;
        k.freq = tx.freq as _;
        k.maxerror = tx.maxerror as _;
        k.esterror = tx.esterror as _;
        k.status = tx.status as _;
        k.tick = tx.tick as _;
        k.time.tv_sec = tx.time_sec as _;
        k.time.tv_usec = tx.time_usec as _;
        // SAFETY: `k` is a valid, exclusively borrowed timex for the duration of the call.
        let r = unsafe { libc::clock_adjtime(libc::CLOCK_REALTIME, &mut k) };
        if r < 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        *tx = Timex {
            modes: k.modes as _,
            offset: k.offset as _,
            freq: k.freq as _,
            maxerror: k.maxerror as _,
            esterror: k.esterror as _,
            status: k.status as _,
            tick: k.tick as _,
            time_sec: k.time.tv_sec as _,
            time_usec: k.time.tv_usec as _,
        };
        Ok(r)
    }
}

/// The system clock driver.
#[derive(Debug)]
pub struct SystemClock<A: Adjtimex, T: RawTime> {
    kernel: A,
    time: T,
    freq_ppm: f64,
    leap: LeapState,
    synchronised: bool,
    /// `rtcsync`: let the kernel copy the time to the RTC while synchronised.
    rtc_sync: bool,
}

/// Splits a correction in ppm into the tick (µs) and the kernel `freq` value.
pub fn tick_and_freq(ppm: f64) -> (i64, i64) {
    let mut tick = NOMINAL_TICK;
    if ppm.abs() > MAX_KERNEL_FREQ_PPM {
        // Whole µs of tick for the bulk, the kernel frequency for the rest.
        tick += (ppm / PPM_PER_TICK_US).round() as i64;
    }
    let rest = ppm - (tick - NOMINAL_TICK) as f64 * PPM_PER_TICK_US;
    (tick, (rest * FREQ_SCALE).round() as i64)
}

fn os(errno: i32) -> ClockError {
    ClockError::Os(errno)
}

impl<A: Adjtimex, T: RawTime> SystemClock<A, T> {
    /// Takes over the clock: reads the kernel's current frequency (so a restart keeps it, as
    /// chronyd does) and turns the kernel PLL off.
    pub fn new(kernel: A, time: T) -> Result<Self, ClockError> {
        let mut tx = empty_timex();
        kernel.call(&mut tx).map_err(os)?;
        let freq_ppm =
            tx.freq as f64 / FREQ_SCALE + (tx.tick - NOMINAL_TICK) as f64 * PPM_PER_TICK_US;
        let mut clock = SystemClock {
            kernel,
            time,
            freq_ppm,
            leap: LeapState::Normal,
            synchronised: false,
            rtc_sync: false,
        };
        clock.write_status()?;
        Ok(clock)
    }

    /// With `rtcsync`: the kernel's `STA_UNSYNC` follows our synchronisation status.
    pub fn with_rtc_sync(mut self, rtc_sync: bool) -> Self {
        self.rtc_sync = rtc_sync;
        self
    }

    fn status_bits(&self) -> i32 {
        let mut status = 0;
        match self.leap {
            LeapState::Normal => {}
            LeapState::Insert => status |= libc::STA_INS,
            LeapState::Delete => status |= libc::STA_DEL,
        }
        if !(self.synchronised && self.rtc_sync) {
            status |= libc::STA_UNSYNC;
        }
        status
    }

    fn write_status(&mut self) -> Result<(), ClockError> {
        let mut tx = empty_timex();
        tx.modes = libc::ADJ_STATUS;
        // STA_PLL off: the engine disciplines the clock, not the kernel's PLL.
        tx.status = self.status_bits();
        self.kernel.call(&mut tx).map(|_| ()).map_err(os)
    }
}

impl<A: Adjtimex, T: RawTime> ClockDriver for SystemClock<A, T> {
    fn read(&mut self) -> f64 {
        self.time.realtime()
    }

    fn frequency_ppm(&self) -> f64 {
        self.freq_ppm
    }

    fn set_frequency_ppm(&mut self, ppm: f64) -> Result<(), ClockError> {
        if !ppm.is_finite() {
            return Err(ClockError::InvalidValue("frequency"));
        }
        let ppm = ppm.clamp(-MAX_FREQ_PPM, MAX_FREQ_PPM);
        let (tick, freq) = tick_and_freq(ppm);
        let mut tx = empty_timex();
        tx.modes = libc::ADJ_FREQUENCY | libc::ADJ_TICK;
        tx.freq = freq;
        tx.tick = tick;
        self.kernel.call(&mut tx).map_err(os)?;
        self.freq_ppm = ppm;
        Ok(())
    }

    fn accrue_offset(&mut self, offset: f64) -> Result<(), ClockError> {
        if !offset.is_finite() {
            return Err(ClockError::InvalidValue("offset"));
        }
        // The kernel replaces the pending single-shot offset: add what is left of it.
        let total = self.remaining_offset() + offset;
        // adjtime's range (about ±2145 s in µs in a 32-bit long).
        let us = (total * 1e6).round().clamp(-2.0e9, 2.0e9);
        let mut tx = empty_timex();
        tx.modes = libc::ADJ_OFFSET_SINGLESHOT;
        tx.offset = us as i64;
        self.kernel.call(&mut tx).map(|_| ()).map_err(os)
    }

    fn remaining_offset(&self) -> f64 {
        let mut tx = empty_timex();
        tx.modes = ADJ_OFFSET_SS_READ;
        match self.kernel.call(&mut tx) {
            Ok(_) => tx.offset as f64 * 1e-6,
            Err(_) => 0.0,
        }
    }

    fn step(&mut self, offset: f64) -> Result<(), ClockError> {
        if !offset.is_finite() {
            return Err(ClockError::InvalidValue("step"));
        }
        let sec = offset.floor();
        let nsec = ((offset - sec) * 1e9).round();
        // Normalised: 0 <= nsec < 1e9, as ADJ_SETOFFSET requires.
        let (sec, nsec) = if nsec >= 1e9 {
            (sec + 1.0, 0.0)
        } else {
            (sec, nsec)
        };
        let mut tx = empty_timex();
        tx.modes = libc::ADJ_SETOFFSET | libc::ADJ_NANO;
        tx.time_sec = sec as i64;
        tx.time_usec = nsec as i64;
        self.kernel.call(&mut tx).map(|_| ()).map_err(os)
    }

    fn set_leap(&mut self, leap: LeapState) -> Result<(), ClockError> {
        self.leap = leap;
        self.write_status()
    }

    fn set_sync_status(
        &mut self,
        synchronised: bool,
        est_error: f64,
        max_error: f64,
    ) -> Result<(), ClockError> {
        self.synchronised = synchronised;
        let mut tx = empty_timex();
        tx.modes = libc::ADJ_STATUS | libc::ADJ_ESTERROR | libc::ADJ_MAXERROR;
        tx.status = self.status_bits();
        tx.esterror = (est_error * 1e6).clamp(0.0, MAX_ERROR_US) as i64;
        tx.maxerror = (max_error * 1e6).clamp(0.0, MAX_ERROR_US) as i64;
        self.kernel.call(&mut tx).map(|_| ()).map_err(os)
    }
}

impl<A: Adjtimex, T: RawTime> super::DaemonClock for SystemClock<A, T> {
    fn correction(&mut self) -> f64 {
        // The kernel clock is the disciplined clock itself.
        0.0
    }
}

/// The clock the daemon runs with: the null driver (`-x`) or, only in builds with the
/// `system-clock` feature, the system driver.
#[derive(Debug)]
pub enum DaemonClocks {
    /// `-x`.
    Null(NullClock<OsTime>),
    /// The kernel clock.
    #[cfg(feature = "system-clock")]
    System(SystemClock<LibcAdjtimex, OsTime>),
}

impl DaemonClocks {
    /// The null clock with `-x`; otherwise the system clock when this build has it.
    pub fn select(
        no_clock: bool,
        null: NullClock<OsTime>,
        rtc_sync: bool,
    ) -> Result<DaemonClocks, String> {
        if no_clock {
            return Ok(DaemonClocks::Null(null));
        }
        #[cfg(feature = "system-clock")]
        {
            SystemClock::new(LibcAdjtimex, OsTime)
                .map(|c| DaemonClocks::System(c.with_rtc_sync(rtc_sync)))
                .map_err(|e| format!("Could not take control of the system clock : {e}"))
        }
        #[cfg(not(feature = "system-clock"))]
        {
            // `rtcsync` concerns only the system driver.
            let _ = rtc_sync;
            Err("gnomond was built without the system-clock feature: run it with -x".into())
        }
    }
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            DaemonClocks::Null($c) => $e,
            #[cfg(feature = "system-clock")]
            DaemonClocks::System($c) => $e,
        }
    };
}

impl ClockDriver for DaemonClocks {
    fn read(&mut self) -> f64 {
        each!(self, c => c.read())
    }
    fn frequency_ppm(&self) -> f64 {
        each!(self, c => c.frequency_ppm())
    }
    fn set_frequency_ppm(&mut self, ppm: f64) -> Result<(), ClockError> {
        each!(self, c => c.set_frequency_ppm(ppm))
    }
    fn accrue_offset(&mut self, offset: f64) -> Result<(), ClockError> {
        each!(self, c => c.accrue_offset(offset))
    }
    fn accrue_offset_with_rate(&mut self, offset: f64, rate_ppm: f64) -> Result<(), ClockError> {
        each!(self, c => c.accrue_offset_with_rate(offset, rate_ppm))
    }
    fn remaining_offset(&self) -> f64 {
        each!(self, c => c.remaining_offset())
    }
    fn step(&mut self, offset: f64) -> Result<(), ClockError> {
        each!(self, c => c.step(offset))
    }
    fn set_leap(&mut self, leap: LeapState) -> Result<(), ClockError> {
        each!(self, c => c.set_leap(leap))
    }
    fn set_sync_status(
        &mut self,
        synchronised: bool,
        est_error: f64,
        max_error: f64,
    ) -> Result<(), ClockError> {
        each!(self, c => c.set_sync_status(synchronised, est_error, max_error))
    }
}

impl super::DaemonClock for DaemonClocks {
    fn correction(&mut self) -> f64 {
        each!(self, c => super::DaemonClock::correction(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Records every call; answers reads with a fixed state.
    #[derive(Default)]
    struct Mock {
        calls: RefCell<Vec<Timex>>,
        tick: i64,
        freq: i64,
        ss_offset_us: i64,
        fail: Option<i32>,
    }

    impl Adjtimex for Mock {
        fn call(&self, tx: &mut Timex) -> Result<i32, i32> {
            if let Some(e) = self.fail {
                return Err(e);
            }
            self.calls.borrow_mut().push(*tx);
            if tx.modes == 0 {
                tx.tick = self.tick;
                tx.freq = self.freq;
            }
            if tx.modes == ADJ_OFFSET_SS_READ {
                tx.offset = self.ss_offset_us;
            }
            Ok(0)
        }
    }

    struct Fixed;
    impl RawTime for Fixed {
        fn realtime(&mut self) -> f64 {
            1.8e9
        }
        fn monotonic(&mut self) -> f64 {
            1.0
        }
    }

    fn mock() -> Mock {
        Mock {
            tick: NOMINAL_TICK,
            ..Mock::default()
        }
    }

    fn last(c: &SystemClock<Mock, Fixed>) -> Timex {
        *c.kernel.calls.borrow().last().unwrap()
    }

    #[test]
    fn start_reads_kernel_frequency_and_marks_unsynchronised() {
        let m = Mock {
            tick: NOMINAL_TICK + 2,
            freq: (12.5 * FREQ_SCALE) as i64,
            ..Mock::default()
        };
        let c = SystemClock::new(m, Fixed).unwrap();
        assert!((c.frequency_ppm() - 212.5).abs() < 1e-9);
        let tx = last(&c);
        assert_eq!(tx.modes, libc::ADJ_STATUS);
        assert_eq!(tx.status & libc::STA_UNSYNC, libc::STA_UNSYNC);
        assert_eq!(tx.status & libc::STA_PLL, 0);
    }

    #[test]
    fn small_frequency_uses_freq_and_large_uses_tick() {
        let mut c = SystemClock::new(mock(), Fixed).unwrap();
        c.set_frequency_ppm(-50.0).unwrap();
        let tx = last(&c);
        assert_eq!(tx.modes, libc::ADJ_FREQUENCY | libc::ADJ_TICK);
        assert_eq!((tx.tick, tx.freq), (NOMINAL_TICK, -50 * 65_536));
        c.set_frequency_ppm(1234.0).unwrap();
        let tx = last(&c);
        assert_eq!(tx.tick, NOMINAL_TICK + 12);
        assert_eq!(tx.freq, 34 * 65_536);
        assert_eq!(c.frequency_ppm(), 1234.0);
        assert!(c.set_frequency_ppm(f64::NAN).is_err());
    }

    #[test]
    fn tick_split_covers_the_whole_range() {
        for ppm in [
            -99_999.0, -501.0, -500.0, 0.0, 0.001, 499.9, 777.7, 99_999.0,
        ] {
            let (tick, freq) = tick_and_freq(ppm);
            let back = (tick - NOMINAL_TICK) as f64 * 100.0 + freq as f64 / FREQ_SCALE;
            assert!((back - ppm).abs() < 1e-4, "{ppm}");
            assert!(
                (freq as f64 / FREQ_SCALE).abs() <= MAX_KERNEL_FREQ_PPM,
                "{ppm}"
            );
        }
    }

    #[test]
    fn step_is_setoffset_with_normalised_nanoseconds() {
        let mut c = SystemClock::new(mock(), Fixed).unwrap();
        c.step(-0.25).unwrap();
        let tx = last(&c);
        assert_eq!(tx.modes, libc::ADJ_SETOFFSET | libc::ADJ_NANO);
        assert_eq!((tx.time_sec, tx.time_usec), (-1, 750_000_000));
        c.step(2.0).unwrap();
        let tx = last(&c);
        assert_eq!((tx.time_sec, tx.time_usec), (2, 0));
    }

    #[test]
    fn slew_adds_to_the_pending_single_shot_offset() {
        let m = Mock {
            ss_offset_us: 1_000,
            ..mock()
        };
        let mut c = SystemClock::new(m, Fixed).unwrap();
        assert!((c.remaining_offset() - 0.001).abs() < 1e-12);
        c.accrue_offset(0.002).unwrap();
        let tx = last(&c);
        assert_eq!(tx.modes, libc::ADJ_OFFSET_SINGLESHOT);
        assert_eq!(tx.offset, 3_000);
    }

    #[test]
    fn leap_and_sync_status_set_kernel_bits_and_errors() {
        let mut c = SystemClock::new(mock(), Fixed).unwrap().with_rtc_sync(true);
        c.set_leap(LeapState::Insert).unwrap();
        assert_eq!(last(&c).status & libc::STA_INS, libc::STA_INS);
        c.set_sync_status(true, 0.001, 0.5).unwrap();
        let tx = last(&c);
        assert_eq!(
            tx.modes,
            libc::ADJ_STATUS | libc::ADJ_ESTERROR | libc::ADJ_MAXERROR
        );
        assert_eq!(tx.status & libc::STA_UNSYNC, 0);
        assert_eq!(tx.status & libc::STA_INS, libc::STA_INS);
        assert_eq!((tx.esterror, tx.maxerror), (1_000, 500_000));
        c.set_leap(LeapState::Delete).unwrap();
        let tx = last(&c);
        assert_eq!(tx.status & (libc::STA_INS | libc::STA_DEL), libc::STA_DEL);
        c.set_sync_status(false, 100.0, 100.0).unwrap();
        let tx = last(&c);
        assert_eq!(tx.status & libc::STA_UNSYNC, libc::STA_UNSYNC);
        assert_eq!(tx.maxerror as f64, MAX_ERROR_US);
    }

    #[test]
    fn without_rtcsync_the_kernel_stays_unsynchronised_for_the_rtc() {
        // chronyd on Linux clears STA_UNSYNC only with `rtcsync`: the errors still go in.
        let mut c = SystemClock::new(mock(), Fixed).unwrap();
        c.set_sync_status(true, 0.001, 0.5).unwrap();
        let tx = last(&c);
        assert_eq!(tx.status & libc::STA_UNSYNC, libc::STA_UNSYNC);
        assert_eq!((tx.esterror, tx.maxerror), (1_000, 500_000));
    }

    #[test]
    fn kernel_errors_are_reported_with_errno() {
        let m = Mock {
            fail: Some(libc::EPERM),
            ..mock()
        };
        assert_eq!(
            SystemClock::new(m, Fixed).err(),
            Some(ClockError::Os(libc::EPERM))
        );
    }

    #[test]
    fn this_build_refuses_the_system_clock_without_the_feature() {
        let null = NullClock::new(OsTime, Default::default());
        let r = DaemonClocks::select(false, null, false);
        #[cfg(not(feature = "system-clock"))]
        assert!(r.is_err());
        #[cfg(feature = "system-clock")]
        drop(r);
    }
}
