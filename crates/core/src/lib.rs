//! The Gnomon engine, sans-IO: time is passed in, randomness is a seeded field, outputs are values.
//!
//! Module ownership while the foundation is laid (one concept per module):
//! server side: `access`, `rate_limit`, `client_log`, `server`;
//! synchronisation: `local_clock`, `sample_filter`, `source_stats`, `selection`, `reference`,
//! `association`, `reports`.
#![forbid(unsafe_code)]

pub mod access;
pub mod association;
pub mod auth;
pub mod client_log;
pub mod local_clock;
pub mod nts;
pub mod nts_client;
pub mod rate_limit;
pub mod reference;
pub mod reports;
pub mod sample_filter;
pub mod selection;
pub mod server;
pub mod source_stats;
