//! NTP wire formats: 64-bit timestamps with era handling, 32-bit short format, the packet
//! header (RFC 5905 §7.3), extension fields and the MAC trailer told apart as chrony 4.3 does
//! (RFC 7822 §7.5), NTS extension fields (RFC 8915 §5), NTS-KE records (RFC 8915 §4) and
//! reference IDs.
//!
//! Every decoder is total: it never panics and never allocates; decoded values borrow from
//! the input. Encoders write into a caller's `&mut [u8]` and return the length written.
//!
//! Modules, one per concept: [`timestamp`], [`header`], [`extension`], [`mac`], [`packet`],
//! [`nts`], [`nts_ke`], [`refid`], [`error`].
#![forbid(unsafe_code)]

pub mod error;
pub mod extension;
pub mod header;
pub mod mac;
pub mod nts;
pub mod nts_ke;
pub mod packet;
pub mod refid;
pub mod timestamp;

pub use error::DecodeError;
pub use extension::{
    encode_extension_field, encode_extension_field_min, ExtensionField, ExtensionFieldIter,
    ExtensionFields,
};
pub use header::{Header, LeapIndicator, Mode};
pub use mac::{encode_crypto_nak, encode_mac, Mac, MsSntpRequest};
pub use nts::{encode_cookie_placeholder, encode_nts_authenticator, NtsAuthenticator};
pub use nts_ke::{encode_record, NtsKeMessage, NtsKeRecord, NtsKeRecords};
pub use packet::Packet;
pub use refid::{refid_ip, refid_ipv4, refid_ipv6};
pub use timestamp::{NtpShort, NtpTimestamp, NTP_UNIX_OFFSET};
