//! Reference identifiers (RFC 5905 §7.3, "Reference ID").
//!
//! Above stratum 1 the reference ID names the server this host synchronises to: its IPv4
//! address, or for IPv6 the first four octets of the MD5 digest of the address (RFC 5905 §7.3,
//! which is what chrony sends, and which chrony's loop test compares against its own address).
//! At stratum 0/1 it is four ASCII characters: a kiss code (RFC 5905 §7.4) or a reference clock
//! name such as `GPS\0`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use md5::{Digest, Md5};

/// Reference ID of an IPv4 server: the address in network byte order.
#[inline]
pub fn refid_ipv4(addr: Ipv4Addr) -> u32 {
    u32::from(addr)
}

/// Reference ID of an IPv6 server: the first 4 octets of MD5 over the 16 address octets.
pub fn refid_ipv6(addr: &Ipv6Addr) -> u32 {
    let digest = Md5::digest(addr.octets());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Reference ID of a server address of either family.
pub fn refid_ip(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => refid_ipv4(*a),
        IpAddr::V6(a) => refid_ipv6(a),
    }
}

/// Reference ID from four ASCII octets (kiss codes, reference clock names).
#[inline]
pub const fn refid_ascii(code: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*code)
}

/// Kiss code asking the client to reduce its rate (RFC 5905 §7.4; sent by chrony's rate limiting).
pub const KISS_RATE: u32 = refid_ascii(b"RATE");
/// Kiss code: access denied (RFC 5905 §7.4).
pub const KISS_DENY: u32 = refid_ascii(b"DENY");
/// Kiss code: access restricted (RFC 5905 §7.4).
pub const KISS_RSTR: u32 = refid_ascii(b"RSTR");
/// NTS NAK kiss code: the server could not decrypt the cookie (RFC 8915 §5.7).
pub const KISS_NTSN: u32 = refid_ascii(b"NTSN");
/// chrony's reference ID when serving its own clock (`local` directive): 127.127.1.1.
pub const REFID_LOCAL: u32 = 0x7f7f_0101;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_refid_is_the_address() {
        assert_eq!(refid_ipv4(Ipv4Addr::new(192, 0, 2, 1)), 0xc000_0201);
        assert_eq!(
            refid_ip(&IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
            0x7f00_0001
        );
    }

    #[test]
    fn ipv6_refid_is_md5_prefix() {
        // Expected values from Python's hashlib: md5(ipaddress.IPv6Address(a).packed).
        assert_eq!(refid_ipv6(&Ipv6Addr::LOCALHOST), 0xcf40_4dc8);
        assert_eq!(refid_ipv6(&Ipv6Addr::UNSPECIFIED), 0x4ae7_1336);
        let doc: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(refid_ip(&IpAddr::V6(doc)), 0x39ab_9b37);
    }

    #[test]
    fn ascii_codes_are_big_endian() {
        assert_eq!(KISS_RATE.to_be_bytes(), *b"RATE");
        assert_eq!(REFID_LOCAL.to_be_bytes(), [127, 127, 1, 1]);
    }
}
