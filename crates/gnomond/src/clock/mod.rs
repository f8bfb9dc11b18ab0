//! Clock drivers behind `gnomon_core::local_clock::ClockDriver` (architecture rule 3). Only the
//! null driver exists so far: gnomond runs with `-x` until the system driver lands.

pub mod null;
pub mod system;

pub use null::{NullClock, NullClockStart};

/// Where a driver reads raw time from: the OS clocks in the daemon, a fake in tests.
pub trait RawTime {
    /// CLOCK_REALTIME in seconds since the Unix epoch.
    fn realtime(&mut self) -> f64;
    /// CLOCK_MONOTONIC in seconds.
    fn monotonic(&mut self) -> f64;
}

/// The OS clocks (read-only).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsTime;

impl RawTime for OsTime {
    fn realtime(&mut self) -> f64 {
        crate::os::clock::realtime().as_f64()
    }
    fn monotonic(&mut self) -> f64 {
        crate::os::clock::monotonic()
    }
}

/// A driver the daemon's I/O path can use: besides the engine's interface, the offset of the
/// driven clock from CLOCK_REALTIME, added to kernel timestamps (zero for the system driver,
/// the accumulated in-memory corrections for the null driver).
pub trait DaemonClock: gnomon_core::local_clock::ClockDriver {
    /// Seconds to add to a CLOCK_REALTIME reading to get this clock's time.
    fn correction(&mut self) -> f64;
}

impl<T: RawTime> DaemonClock for NullClock<T> {
    fn correction(&mut self) -> f64 {
        NullClock::correction(self)
    }
}
