//! The NTP packets the bench sends and checks: a client-mode request (RFC 5905 §7.3, mode 3)
//! whose transmit timestamp is a random nonce, and the validation of a server reply (mode 4)
//! against it, the way a client's TEST2 does (origin timestamp == our transmit timestamp).

use std::fmt;

use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};

/// Length of an NTP header without extension fields or MAC.
pub const HEADER_LEN: usize = Header::LEN;

/// A client request carrying `transmit` as its transmit timestamp (the nonce the reply must echo).
pub fn client_request(transmit: u64) -> [u8; HEADER_LEN] {
    Header {
        version: 4,
        mode: Mode::Client,
        // Poll 6 and precision -20, as ordinary clients send.
        poll: 6,
        precision: -20,
        transmit_timestamp: NtpTimestamp(transmit),
        ..Header::default()
    }
    .to_bytes()
}

/// Why a datagram is not a valid reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// Fewer than 48 bytes.
    TooShort(usize),
    /// Not mode 4.
    WrongMode(u8),
    /// Version outside 1..=4.
    WrongVersion(u8),
    /// Transmit timestamp zero.
    ZeroTransmit,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::TooShort(n) => write!(f, "reply too short ({n} bytes)"),
            ReplyError::WrongMode(m) => write!(f, "reply has mode {m}, not 4"),
            ReplyError::WrongVersion(v) => write!(f, "reply has version {v}"),
            ReplyError::ZeroTransmit => write!(f, "reply has a zero transmit timestamp"),
        }
    }
}

/// Decodes and checks a reply's header (not yet its origin: the caller matches that).
pub fn parse_reply(p: &[u8]) -> Result<Header, ReplyError> {
    let h = Header::decode(p).map_err(|_| ReplyError::TooShort(p.len()))?;
    if h.mode != Mode::Server {
        return Err(ReplyError::WrongMode(h.mode.into()));
    }
    if h.version == 0 || h.version > 4 {
        return Err(ReplyError::WrongVersion(h.version));
    }
    if h.transmit_timestamp.is_zero() {
        return Err(ReplyError::ZeroTransmit);
    }
    Ok(h)
}

/// A Unix time as a 64-bit NTP timestamp (era folded, as on the wire).
pub fn ntp_from_unix(secs: i64, nanos: u32) -> u64 {
    NtpTimestamp::from_unix(secs, nanos).0
}

/// An NTP timestamp as Unix seconds, taking the era nearest to `pivot` (Unix seconds).
pub fn ntp_to_unix_f64(ts: u64, pivot: i64) -> f64 {
    NtpTimestamp(ts).to_unix_f64(pivot)
}

/// A fixed server reply to `request` written into `out` (the bare responder's only work): the
/// request's transmit becomes the origin; reference, receive and transmit are the kernel
/// receive time.
pub fn fixed_reply(request: &[u8], rx_ntp: u64, out: &mut [u8; HEADER_LEN]) -> Option<usize> {
    let req = Header::decode(request).ok()?;
    if req.mode != Mode::Client {
        return None;
    }
    let rx = NtpTimestamp(rx_ntp);
    Header {
        leap: LeapIndicator::NoWarning,
        version: req.version,
        mode: Mode::Server,
        stratum: 10,
        poll: req.poll,
        precision: -24,
        root_delay: NtpShort(0),
        root_dispersion: NtpShort(0),
        reference_id: 0x7f7f_0101,
        reference_timestamp: rx,
        origin_timestamp: req.transmit_timestamp,
        receive_timestamp: rx,
        transmit_timestamp: rx,
    }
    .encode(out);
    Some(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_reply_echoes_the_request_transmit_as_origin() {
        let req = client_request(0x1122_3344_5566_7788);
        let mut out = [0u8; 48];
        let n = fixed_reply(&req, ntp_from_unix(1_700_000_000, 5), &mut out).unwrap();
        let r = parse_reply(&out[..n]).unwrap();
        assert_eq!(r.origin_timestamp.0, 0x1122_3344_5566_7788);
        assert_eq!((r.mode, r.version, r.stratum), (Mode::Server, 4, 10));
        assert_eq!(r.leap, LeapIndicator::NoWarning);
    }

    #[test]
    fn replies_that_are_short_or_not_mode_4_are_rejected() {
        assert_eq!(
            parse_reply(&[0u8; 47]).err(),
            Some(ReplyError::TooShort(47))
        );
        assert_eq!(
            parse_reply(&client_request(7)).err(),
            Some(ReplyError::WrongMode(3))
        );
        let mut out = [0u8; 48];
        assert_eq!(fixed_reply(&out.clone(), 1, &mut out), None);
    }

    #[test]
    fn ntp_unix_conversion_round_trips_across_the_2036_era() {
        for secs in [
            1_700_000_000i64,
            2_085_978_495,
            2_085_978_497,
            2_200_000_000,
        ] {
            let ts = ntp_from_unix(secs, 500_000_000);
            let back = ntp_to_unix_f64(ts, secs - 1000);
            assert!(
                (back - (secs as f64 + 0.5)).abs() < 1e-6,
                "{secs} -> {back}"
            );
        }
    }
}
