//! Decode errors for every wire format in this crate.
//!
//! One enum for the whole crate so that callers (the server hot path, the client, NTS-KE) can
//! count and log drops by cause without converting between error types. Each variant names the
//! cause, the way chrony's debug log names why it dropped a packet ("invalid length",
//! "invalid version", "invalid format").

use core::fmt;

/// Why some bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than the 48 bytes of an NTP header (RFC 5905 §7.3).
    ShortHeader {
        /// Length of the input.
        len: usize,
    },
    /// The packet length is not a multiple of 4 octets (RFC 5905 §7.3, chrony drops these).
    UnalignedLength {
        /// Length of the input.
        len: usize,
    },
    /// The packet is longer than any NTP packet this implementation accepts.
    PacketTooLong {
        /// Length of the input.
        len: usize,
    },
    /// The version number is outside 1..=4 (chrony accepts NTPv1 to NTPv4 only).
    UnsupportedVersion {
        /// The version field found.
        version: u8,
    },
    /// Bytes after the header (or after the last extension field) that form neither a valid
    /// extension field nor a MAC of an acceptable length (RFC 7822 §7.5).
    InvalidTrailer {
        /// Offset of the first byte that could not be parsed.
        offset: usize,
    },
    /// An extension field header announces a length below 16, not a multiple of 4, or past
    /// the end of the input (RFC 7822 §3).
    BadExtensionLength {
        /// Offset of the extension field.
        offset: usize,
        /// The length the field announces.
        length: u16,
    },
    /// An extension field would be encoded with a value too long for its 16-bit length.
    ExtensionTooLong {
        /// Length of the value.
        len: usize,
    },
    /// A MAC digest to encode is longer than the 64 octets of the longest supported hash or
    /// not a multiple of 4 octets.
    BadDigestLength {
        /// Length of the digest.
        len: usize,
    },
    /// The output buffer is too small for the encoding.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// An NTS authenticator extension field body is malformed (RFC 8915 §5.6).
    BadNtsAuthenticator,
    /// An NTS-KE record header or body runs past the end of the input (RFC 8915 §4).
    TruncatedRecord {
        /// Offset of the record.
        offset: usize,
    },
    /// An NTS-KE record body exceeds 65535 octets and cannot be encoded.
    RecordTooLong {
        /// Length of the body.
        len: usize,
    },
    /// An NTS-KE record stream ends (at a record boundary) before its End of Message record.
    NoEndOfMessage {
        /// Length of the input.
        len: usize,
    },
    /// An NTS-KE record type above 0x7FFF cannot be encoded (the top bit is the critical bit).
    BadRecordType {
        /// The record type.
        record_type: u16,
    },
    /// An NTS-KE record body does not have the layout its type requires (RFC 8915 §4.1).
    BadRecordBody {
        /// The record type.
        record_type: u16,
        /// Length of the body.
        len: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::ShortHeader { len } => {
                write!(
                    f,
                    "packet of {len} bytes is shorter than the 48-byte NTP header"
                )
            }
            DecodeError::UnalignedLength { len } => {
                write!(f, "packet length {len} is not a multiple of 4")
            }
            DecodeError::PacketTooLong { len } => write!(f, "packet of {len} bytes is too long"),
            DecodeError::UnsupportedVersion { version } => {
                write!(f, "unsupported NTP version {version}")
            }
            DecodeError::InvalidTrailer { offset } => write!(
                f,
                "bytes from offset {offset} are neither an extension field nor a MAC"
            ),
            DecodeError::BadExtensionLength { offset, length } => write!(
                f,
                "extension field at offset {offset} has invalid length {length}"
            ),
            DecodeError::ExtensionTooLong { len } => {
                write!(f, "extension field value of {len} bytes is too long")
            }
            DecodeError::BadDigestLength { len } => write!(
                f,
                "MAC digest of {len} bytes is not a multiple of 4 bytes up to 64"
            ),
            DecodeError::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer of {available} bytes is too small, {needed} needed"
            ),
            DecodeError::BadNtsAuthenticator => {
                write!(f, "malformed NTS authenticator extension field")
            }
            DecodeError::TruncatedRecord { offset } => {
                write!(f, "NTS-KE record at offset {offset} is truncated")
            }
            DecodeError::RecordTooLong { len } => {
                write!(f, "NTS-KE record body of {len} bytes is too long")
            }
            DecodeError::NoEndOfMessage { len } => {
                write!(
                    f,
                    "NTS-KE message of {len} bytes has no End of Message record"
                )
            }
            DecodeError::BadRecordType { record_type } => {
                write!(f, "NTS-KE record type {record_type} is above 32767")
            }
            DecodeError::BadRecordBody { record_type, len } => write!(
                f,
                "NTS-KE record of type {record_type} has an invalid body of {len} bytes"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}
