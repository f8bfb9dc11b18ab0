//! Deterministic simulator: virtual clocks, a virtual network and a scenario runner that drive the
//! same engine gnomond runs, in virtual time.
#![forbid(unsafe_code)]
