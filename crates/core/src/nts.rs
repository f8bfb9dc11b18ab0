//! Network Time Security, server side (RFC 8915).
//!
//! - [`cookie`]: server keys (a ring of four, rotated every `ntsrotate` seconds), cookies
//!   sealing a client's C2S/S2C keys with AEAD_AES_SIV_CMAC_256, and the `ntsdumpdir` key dump
//!   in chronyd 4.3's `ntskeys` layout;
//! - [`ntp`]: NTS extension fields in NTPv4 requests and responses (§5), used by
//!   [`crate::server::Server`];
//! - [`ke`]: the NTS-KE server over TLS 1.3 (§4), sans-IO.
//!
//! Everything is sans-IO: the daemon owns sockets, files, clocks and threads and passes
//! `now`, byte buffers and a seeded RNG.

pub mod cookie;
pub mod ke;
pub mod ntp;

pub use cookie::{KeyDumpError, ServerKeys, SessionKeys, COOKIE_LEN};
pub use ke::{NtsKeError, NtsKeServerSetup, NtsKeSession, NtsKeSetupError};
