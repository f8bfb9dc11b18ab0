//! The 48-byte NTP packet header (RFC 5905 §7.3, figure 8; the same layout since NTPv1).
//!
//! ```text
//!  0: LI(2) VN(3) Mode(3) | Stratum | Poll | Precision
//!  4: Root Delay (short)      8: Root Dispersion (short)   12: Reference ID
//! 16: Reference Timestamp    24: Origin Timestamp          32: Receive Timestamp
//! 40: Transmit Timestamp
//! ```
//!
//! Decoding and encoding are fixed-size copies with no allocation and no validation beyond
//! length: every bit pattern is a header, so `encode(decode(x)) == x` for any 48 bytes. Whether a
//! version or mode is acceptable is the caller's policy (chrony drops versions outside 1..=4,
//! which [`crate::Packet::decode`] enforces).

use crate::error::DecodeError;
use crate::timestamp::{NtpShort, NtpTimestamp};

/// Leap indicator: a warning of a leap second at the end of the current UTC day, or that the
/// clock is unsynchronised (RFC 5905 §7.3).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LeapIndicator {
    /// No leap second pending.
    #[default]
    NoWarning = 0,
    /// The last minute of the day has 61 seconds.
    InsertSecond = 1,
    /// The last minute of the day has 59 seconds.
    DeleteSecond = 2,
    /// Clock not synchronised (the "alarm" condition).
    Unsynchronised = 3,
}

impl From<u8> for LeapIndicator {
    /// Total: only the low 2 bits are used, as in the header's first octet.
    #[inline]
    fn from(v: u8) -> Self {
        match v & 0b11 {
            0 => LeapIndicator::NoWarning,
            1 => LeapIndicator::InsertSecond,
            2 => LeapIndicator::DeleteSecond,
            _ => LeapIndicator::Unsynchronised,
        }
    }
}

impl From<LeapIndicator> for u8 {
    #[inline]
    fn from(v: LeapIndicator) -> u8 {
        v as u8
    }
}

/// Association mode (RFC 5905 §7.3, figure 10).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Reserved (0).
    #[default]
    Reserved = 0,
    /// Symmetric active (1).
    SymmetricActive = 1,
    /// Symmetric passive (2).
    SymmetricPassive = 2,
    /// Client (3).
    Client = 3,
    /// Server (4).
    Server = 4,
    /// Broadcast (5).
    Broadcast = 5,
    /// NTP control message (6), used by ntpq; chrony does not answer it.
    Control = 6,
    /// Reserved for private use (7), used by ntpdc.
    Private = 7,
}

impl From<u8> for Mode {
    /// Total: only the low 3 bits are used, as in the header's first octet.
    #[inline]
    fn from(v: u8) -> Self {
        match v & 0b111 {
            0 => Mode::Reserved,
            1 => Mode::SymmetricActive,
            2 => Mode::SymmetricPassive,
            3 => Mode::Client,
            4 => Mode::Server,
            5 => Mode::Broadcast,
            6 => Mode::Control,
            _ => Mode::Private,
        }
    }
}

impl From<Mode> for u8 {
    #[inline]
    fn from(v: Mode) -> u8 {
        v as u8
    }
}

/// The fixed NTP header, field for field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Leap indicator (2 bits).
    pub leap: LeapIndicator,
    /// Version number (3 bits; only the low 3 bits are encoded).
    pub version: u8,
    /// Association mode (3 bits).
    pub mode: Mode,
    /// Stratum: 0 unspecified / kiss-o'-death, 1 primary, 2..=15 secondary, 16 unsynchronised.
    pub stratum: u8,
    /// Poll exponent, log2 seconds.
    pub poll: i8,
    /// Precision exponent, log2 seconds.
    pub precision: i8,
    /// Total round-trip delay to the reference clock.
    pub root_delay: NtpShort,
    /// Total dispersion to the reference clock.
    pub root_dispersion: NtpShort,
    /// Reference ID (or kiss code at stratum 0), as the big-endian 32-bit value on the wire.
    pub reference_id: u32,
    /// Time the system clock was last set or corrected.
    pub reference_timestamp: NtpTimestamp,
    /// T1: client's transmit time, echoed by the server.
    pub origin_timestamp: NtpTimestamp,
    /// T2: time the request arrived at the server.
    pub receive_timestamp: NtpTimestamp,
    /// T3: time the reply left the server (or the request left the client).
    pub transmit_timestamp: NtpTimestamp,
}

#[inline(always)]
fn be32(b: &[u8; Header::LEN], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn be64(b: &[u8; Header::LEN], at: usize) -> u64 {
    u64::from_be_bytes([
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ])
}

impl Header {
    /// Length of the header on the wire.
    pub const LEN: usize = 48;

    /// Decodes the first 48 bytes of `buf`; any further bytes are ignored. Every version 0..=7
    /// and every mode is accepted (callers validate). Fails only when `buf` is shorter than 48.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Header, DecodeError> {
        match buf.first_chunk::<{ Header::LEN }>() {
            Some(b) => Ok(Header::decode_array(b)),
            None => Err(DecodeError::ShortHeader { len: buf.len() }),
        }
    }

    /// Decodes a header from exactly 48 bytes; infallible.
    #[inline]
    pub fn decode_array(b: &[u8; Header::LEN]) -> Header {
        let lvm = b[0];
        Header {
            leap: LeapIndicator::from(lvm >> 6),
            version: (lvm >> 3) & 0b111,
            mode: Mode::from(lvm),
            stratum: b[1],
            poll: b[2] as i8,
            precision: b[3] as i8,
            root_delay: NtpShort(be32(b, 4)),
            root_dispersion: NtpShort(be32(b, 8)),
            reference_id: be32(b, 12),
            reference_timestamp: NtpTimestamp(be64(b, 16)),
            origin_timestamp: NtpTimestamp(be64(b, 24)),
            receive_timestamp: NtpTimestamp(be64(b, 32)),
            transmit_timestamp: NtpTimestamp(be64(b, 40)),
        }
    }

    /// Encodes into a 48-byte array. Only the low 3 bits of `version` are written.
    #[inline]
    pub fn encode(&self, out: &mut [u8; 48]) {
        out[0] = (u8::from(self.leap) << 6) | ((self.version & 0b111) << 3) | u8::from(self.mode);
        out[1] = self.stratum;
        out[2] = self.poll as u8;
        out[3] = self.precision as u8;
        out[4..8].copy_from_slice(&self.root_delay.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.0.to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id.to_be_bytes());
        out[16..24].copy_from_slice(&self.reference_timestamp.0.to_be_bytes());
        out[24..32].copy_from_slice(&self.origin_timestamp.0.to_be_bytes());
        out[32..40].copy_from_slice(&self.receive_timestamp.0.to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit_timestamp.0.to_be_bytes());
    }

    /// The encoded header as a new array.
    #[inline]
    pub fn to_bytes(&self) -> [u8; Header::LEN] {
        let mut out = [0u8; Header::LEN];
        self.encode(&mut out);
        out
    }

    /// Encodes into the start of `out`, returning 48, or an error if `out` is shorter.
    #[inline]
    pub fn encode_to_slice(&self, out: &mut [u8]) -> Result<usize, DecodeError> {
        let available = out.len();
        match out.first_chunk_mut::<{ Header::LEN }>() {
            Some(arr) => {
                self.encode(arr);
                Ok(Header::LEN)
            }
            None => Err(DecodeError::BufferTooSmall {
                needed: Header::LEN,
                available,
            }),
        }
    }

    /// The reference ID as the four bytes sent on the wire (for kiss codes like `RATE`).
    #[inline]
    pub const fn reference_id_bytes(&self) -> [u8; 4] {
        self.reference_id.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_bytes() -> [u8; 48] {
        let mut b = [0u8; 48];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        b
    }

    #[test]
    fn decode_rejects_47_bytes() {
        assert_eq!(
            Header::decode(&[0u8; 47]),
            Err(DecodeError::ShortHeader { len: 47 })
        );
        assert_eq!(
            Header::decode(&[]),
            Err(DecodeError::ShortHeader { len: 0 })
        );
    }

    #[test]
    fn decode_ignores_bytes_after_header() {
        let mut long = [0u8; 60];
        long[..48].copy_from_slice(&sample_bytes());
        long[48..].fill(0xff);
        assert_eq!(Header::decode(&long), Header::decode(&sample_bytes()));
    }

    #[test]
    fn first_octet_splits_into_leap_version_mode() {
        let mut b = [0u8; 48];
        b[0] = 0b11_100_011; // LI=3, VN=4, mode=3
        b[1] = 16;
        b[2] = 0xfa; // poll -6
        b[3] = 0xe9; // precision -23
        let h = Header::decode(&b).unwrap();
        assert_eq!(h.leap, LeapIndicator::Unsynchronised);
        assert_eq!(h.version, 4);
        assert_eq!(h.mode, Mode::Client);
        assert_eq!(h.stratum, 16);
        assert_eq!(h.poll, -6);
        assert_eq!(h.precision, -23);
    }

    #[test]
    fn fields_are_big_endian_at_rfc5905_offsets() {
        let mut b = [0u8; 48];
        b[4..8].copy_from_slice(&[0, 1, 0x80, 0]);
        b[12..16].copy_from_slice(b"GPS\0");
        b[40..48].copy_from_slice(&[0xe9, 0, 0, 0, 0x80, 0, 0, 0]);
        let h = Header::decode(&b).unwrap();
        assert_eq!(h.root_delay.to_seconds(), 1.5);
        assert_eq!(&h.reference_id_bytes(), b"GPS\0");
        assert_eq!(h.transmit_timestamp.seconds(), 0xe900_0000);
        assert_eq!(h.transmit_timestamp.fraction(), 1 << 31);
    }

    #[test]
    fn encode_inverts_decode() {
        let b = sample_bytes();
        let h = Header::decode(&b).unwrap();
        assert_eq!(h.to_bytes(), b);
    }

    #[test]
    fn encode_masks_version_to_three_bits() {
        let h = Header {
            version: 0b1111_1100,
            mode: Mode::Server,
            ..Header::default()
        };
        let b = h.to_bytes();
        assert_eq!(b[0], 0b00_100_100);
    }

    #[test]
    fn encode_to_slice_reports_small_buffer() {
        let h = Header::default();
        let mut small = [0u8; 40];
        assert_eq!(
            h.encode_to_slice(&mut small),
            Err(DecodeError::BufferTooSmall {
                needed: 48,
                available: 40
            })
        );
        let mut big = [0xaau8; 64];
        assert_eq!(h.encode_to_slice(&mut big), Ok(48));
        assert_eq!(big[48], 0xaa);
    }

    #[test]
    fn enum_conversions_use_low_bits_only() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(LeapIndicator::from(v)), v & 3);
            assert_eq!(u8::from(Mode::from(v)), v & 7);
        }
    }
}
