//! Deterministic simulator: virtual clocks, a virtual network and a scenario runner that drive the
//! same engine gnomond runs, in virtual time.
#![forbid(unsafe_code)]

pub mod clock;
pub mod network;
pub mod orphan;
pub mod runner;
pub mod scenario;
