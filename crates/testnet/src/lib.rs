//! Test networks for Gnomon: the impairing user-space UDP relay that stands in for netem (the
//! kernel here has none) between NTP clients and their server on loopback. `gnomon-bench sync`
//! puts one in front of chronyd and one in front of gnomond; gnomond's integration tests use
//! the same [`Relay`] and [`Impairment`], and their multi-namespace router relay the same
//! [`DelayLine`] (seeded fates, bounded queue ordered by due time) and [`wait_readable`].
//!
//! The relay is a real-time stand-in for a network, not library logic driven by the caller's
//! clock: its thread reads the monotonic clock and waits in `ppoll(2)`, both in `sys`, the one
//! module allowed to do either. The [`DelayLine`] itself takes time as an argument.
#![deny(unsafe_code)]

pub mod delay_line;
pub mod impairment;
pub mod relay;
mod sys;

pub use delay_line::{DelayLine, Outcome};
pub use impairment::{Impairment, MAX_HOLD};
pub use relay::{DirectionCounts, Relay, RelayCounts, CLIENT_LIMIT, QUEUE_LIMIT};
pub use sys::wait_readable;
