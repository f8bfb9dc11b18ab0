//! Field encodings shared by cmdmon requests and replies (features.md §4.2): big-endian
//! integers, the 20-byte `IPAddr`, the 12-byte `Timespec`, `Integer64` and the 32-bit float,
//! plus a bounds-checked reader so that every decoder is total.

use crate::float::{decode_float, encode_float};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The datagram ended before a field that its command or reply code requires.
    Truncated { needed: usize, have: usize },
    /// Datagram shorter than the header or longer than the largest request.
    BadLength(usize),
    /// `version` is not 6 (the daemon answers `STT_BADPKTVERSION` for 5 and above).
    BadVersion(u8),
    /// `pkt_type` is not request (1) / reply (2) as expected.
    BadPacketType(u8),
    /// `res1`/`res2` not zero (chronyd drops such requests).
    NonZeroReserved,
    /// Request code that protocol version 6 does not (or no longer) define.
    UnknownCommand(u16),
    /// Reply code not defined by protocol version 6.
    UnknownReply(u16),
    /// ADD_SOURCE with a source type other than server (1), peer (2) or pool (3); chronyd
    /// answers `STT_INVALID`.
    BadSourceType(u32),
    /// ADD_SOURCE whose name field has no NUL terminator; chronyd answers `STT_INVALIDNAME`.
    UnterminatedName,
    /// Shorter than the length the request code requires (the daemon answers `STT_BADPKTLENGTH`).
    ShortRequest {
        command: u16,
        needed: usize,
        have: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, have } => {
                write!(f, "packet truncated: needs {needed} bytes, has {have}")
            }
            Self::BadLength(n) => write!(f, "bad packet length {n}"),
            Self::BadVersion(v) => write!(f, "protocol version {v} is not 6"),
            Self::BadPacketType(t) => write!(f, "unexpected packet type {t}"),
            Self::NonZeroReserved => write!(f, "reserved header bytes are not zero"),
            Self::UnknownCommand(c) => write!(f, "unknown command code {c}"),
            Self::UnknownReply(c) => write!(f, "unknown reply code {c}"),
            Self::BadSourceType(t) => write!(f, "unknown source type {t}"),
            Self::UnterminatedName => write!(f, "source name is not NUL-terminated"),
            Self::ShortRequest {
                command,
                needed,
                have,
            } => {
                write!(f, "request {command} needs {needed} bytes, has {have}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// An `IPAddr` on the wire: unspecified, IPv4, IPv6, or the ID of a not-yet-resolved source
/// (family 3; chronyc prints it as `ID#XXXXXXXXXX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Addr {
    #[default]
    Unspec,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Id(u32),
}

impl Addr {
    /// Wire size of an `IPAddr`.
    pub const LEN: usize = 20;

    /// The IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Addr::V4(a) => Some(IpAddr::V4(a)),
            Addr::V6(a) => Some(IpAddr::V6(a)),
            Addr::Unspec | Addr::Id(_) => None,
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Addr::V4(a),
            IpAddr::V6(a) => Addr::V6(a),
        }
    }
}

/// `Timespec`: seconds (64-bit, split high/low) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    pub sec: u64,
    pub nsec: u32,
}

impl Timespec {
    pub const LEN: usize = 12;

    /// Seconds as a float (for SI-unit JSON output).
    pub fn as_secs_f64(&self) -> f64 {
        self.sec as f64 + f64::from(self.nsec) * 1e-9
    }
}

/// Big-endian writer.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.u32((v >> 32) as u32);
        self.u32(v as u32);
    }
    pub fn float(&mut self, v: f64) {
        self.u32(encode_float(v));
    }
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
    /// Zero-pads up to `len` bytes in total (no-op if already longer).
    pub fn pad_to(&mut self, len: usize) {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
    }
    /// A fixed-size, NUL-padded byte string; longer input is cut so that a NUL always ends it.
    pub fn fixed_str(&mut self, s: &[u8], size: usize) {
        let n = s.len().min(size.saturating_sub(1));
        self.buf.extend_from_slice(&s[..n]);
        self.zeros(size - n);
    }
    pub fn addr(&mut self, a: &Addr) {
        let (bytes, family): ([u8; 16], u16) = match *a {
            Addr::Unspec => ([0; 16], 0),
            Addr::V4(v4) => {
                let mut b = [0; 16];
                b[..4].copy_from_slice(&v4.octets());
                (b, 1)
            }
            Addr::V6(v6) => (v6.octets(), 2),
            Addr::Id(id) => {
                let mut b = [0; 16];
                b[..4].copy_from_slice(&id.to_be_bytes());
                (b, 3)
            }
        };
        self.buf.extend_from_slice(&bytes);
        self.u16(family);
        self.u16(0);
    }
    pub fn timespec(&mut self, t: &Timespec) {
        self.u32((t.sec >> 32) as u32);
        self.u32(t.sec as u32);
        self.u32(t.nsec);
    }
}

/// Bounds-checked big-endian reader over a datagram.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos.saturating_add(N);
        match self.buf.get(self.pos..end) {
            Some(s) => {
                let mut a = [0u8; N];
                a.copy_from_slice(s);
                self.pos = end;
                Ok(a)
            }
            None => Err(DecodeError::Truncated {
                needed: end,
                have: self.buf.len(),
            }),
        }
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.take::<1>()?[0] as i8)
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let hi = u64::from(self.u32()?);
        Ok(hi << 32 | u64::from(self.u32()?))
    }
    pub fn float(&mut self) -> Result<f64, DecodeError> {
        Ok(decode_float(self.u32()?))
    }
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        match n.checked_add(self.pos) {
            Some(end) if end <= self.buf.len() => {
                self.pos = end;
                Ok(())
            }
            _ => Err(DecodeError::Truncated {
                needed: self.pos.saturating_add(n),
                have: self.buf.len(),
            }),
        }
    }
    /// Whether the next `size` bytes contain a NUL (without consuming them).
    pub fn has_nul_within(&self, size: usize) -> bool {
        let end = self.pos.saturating_add(size).min(self.buf.len());
        self.buf.get(self.pos..end).is_some_and(|s| s.contains(&0))
    }

    /// A fixed-size NUL-terminated string: the bytes before the first NUL. The last byte is
    /// always taken as the terminator, so at most `size - 1` bytes come back (as encoded).
    pub fn fixed_str(&mut self, size: usize) -> Result<Vec<u8>, DecodeError> {
        let start = self.pos;
        self.skip(size)?;
        let s = &self.buf[start..self.pos.saturating_sub(1).max(start)];
        let n = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Ok(s[..n].to_vec())
    }
    pub fn addr(&mut self) -> Result<Addr, DecodeError> {
        let b: [u8; 16] = self.take()?;
        let family = self.u16()?;
        self.u16()?;
        let first4 = [b[0], b[1], b[2], b[3]];
        match family {
            0 => Ok(Addr::Unspec),
            1 => Ok(Addr::V4(Ipv4Addr::from(first4))),
            2 => Ok(Addr::V6(Ipv6Addr::from(b))),
            3 => Ok(Addr::Id(u32::from_be_bytes(first4))),
            // chronyd reads an unknown family as "no address" (then e.g. 503 No such source).
            _ => Ok(Addr::Unspec),
        }
    }
    pub fn timespec(&mut self) -> Result<Timespec, DecodeError> {
        let hi = self.u32()?;
        let lo = self.u32()?;
        let nsec = self.u32()?.min(999_999_999);
        // 0x7FFFFFFF in the high word is the old "no high part" marker.
        let hi = if hi == 0x7FFF_FFFF { 0 } else { u64::from(hi) };
        Ok(Timespec {
            sec: hi << 32 | u64::from(lo),
            nsec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_in_20_bytes() {
        for a in [
            Addr::Unspec,
            Addr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            Addr::V6("2001:db8::1".parse().unwrap()),
            Addr::Id(0x1234_5678),
        ] {
            let mut w = Writer::default();
            w.addr(&a);
            assert_eq!(w.buf.len(), Addr::LEN);
            assert_eq!(Reader::new(&w.buf, 0).addr().unwrap(), a);
        }
    }

    #[test]
    fn unknown_family_decodes_as_unspecified() {
        let mut b = [7u8; 20];
        b[16] = 0;
        b[17] = 9;
        assert_eq!(Reader::new(&b, 0).addr(), Ok(Addr::Unspec));
    }

    #[test]
    fn timespec_old_high_marker_means_zero() {
        let b = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff];
        let t = Reader::new(&b, 0).timespec().unwrap();
        assert_eq!(t.sec, 5);
        assert_eq!(t.nsec, 999_999_999);
    }

    #[test]
    fn reader_reports_truncation_instead_of_panicking() {
        let mut r = Reader::new(&[1, 2, 3], 2);
        assert!(r.u32().is_err());
        assert!(r.skip(usize::MAX).is_err());
        assert_eq!(r.u8().unwrap(), 3);
    }
}
