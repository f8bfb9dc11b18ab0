//! Reading the two clocks the daemon may use (CLOCK_REALTIME and CLOCK_MONOTONIC); never writing.

/// A `timespec` read from a clock: whole seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeSpec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, 0..1e9.
    pub nsec: u32,
}

impl TimeSpec {
    /// As floating-point seconds.
    pub fn as_f64(self) -> f64 {
        self.sec as f64 + f64::from(self.nsec) * 1e-9
    }
}

fn read(clock: libc::clockid_t) -> TimeSpec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids used are always supported on
    // Linux, so the call cannot fail (if it did, `ts` stays zero, which is still initialised).
    unsafe {
        libc::clock_gettime(clock, &mut ts);
    }
    TimeSpec {
        sec: ts.tv_sec,
        nsec: u32::try_from(ts.tv_nsec).unwrap_or(0),
    }
}

/// CLOCK_REALTIME now.
pub fn realtime() -> TimeSpec {
    read(libc::CLOCK_REALTIME)
}

/// CLOCK_MONOTONIC now, in seconds.
pub fn monotonic() -> f64 {
    read(libc::CLOCK_MONOTONIC).as_f64()
}
