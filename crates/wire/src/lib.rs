//! NTP wire formats: 64-bit timestamps with era handling, 32-bit short format, the packet
//! header (RFC 5905 §7.3), extension fields and the MAC trailer (RFC 7822), NTS extension
//! fields (RFC 8915 §5) and NTS-KE records (RFC 8915 §4).
//!
//! Every decoder is total: it never panics and never allocates more than its input justifies.
#![forbid(unsafe_code)]
