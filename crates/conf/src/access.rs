//! `allow`/`deny`/`cmdallow`/`cmddeny` arguments: `[all] [SUBNET]`.
//!
//! chrony semantics (chrony.conf(5), checked against chronyd 4.3): a bare `allow` means every
//! address; `all` (lower case only: `allow All` is read as a host name) makes the rule override
//! earlier nested rules; an IPv4 address may be partial (`192.168` = 192.168.0.0/16) and takes an
//! optional `/BITS`; IPv6 takes `/BITS` (default 128); anything else is a host name that chronyd
//! resolves when it reads the file (an unresolvable name is fatal there). Prefix lengths above the
//! family maximum are accepted by chronyd and mean the whole address; we clamp them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One access rule's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSpec {
    /// The `all` keyword: this rule replaces all rules nested inside it.
    pub all: bool,
    /// `None` = every address (bare `allow` / `allow all`).
    pub subnet: Option<Subnet>,
}

/// An address and prefix length, or a host name to be resolved by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subnet {
    V4 {
        addr: Ipv4Addr,
        prefix: u8,
    },
    V6 {
        addr: Ipv6Addr,
        prefix: u8,
    },
    /// Resolved later; `prefix` is applied to the resolved address when given.
    Host {
        name: String,
        prefix: Option<u8>,
    },
}

impl Subnet {
    /// Whether `ip` falls inside this subnet (host names never match before resolution).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Subnet::V4 { addr, prefix }, IpAddr::V4(ip)) => {
                let mask = mask_u32(*prefix);
                u32::from(*addr) & mask == u32::from(ip) & mask
            }
            (Subnet::V6 { addr, prefix }, IpAddr::V6(ip)) => {
                let mask = mask_u128(*prefix);
                u128::from(*addr) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Prefix length in bits (None for an unresolved name without `/BITS`).
    pub fn prefix(&self) -> Option<u8> {
        match self {
            Subnet::V4 { prefix, .. } | Subnet::V6 { prefix, .. } => Some(*prefix),
            Subnet::Host { prefix, .. } => *prefix,
        }
    }
}

impl AccessSpec {
    /// Whether this rule covers `ip`.
    pub fn matches(&self, ip: IpAddr) -> bool {
        match &self.subnet {
            None => true,
            Some(s) => s.contains(ip),
        }
    }
}

fn mask_u32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn mask_u128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subnet::V4 { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Subnet::V6 { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Subnet::Host { name, prefix: None } => f.write_str(name),
            Subnet::Host {
                name,
                prefix: Some(p),
            } => write!(f, "{name}/{p}"),
        }
    }
}

impl fmt::Display for AccessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.subnet, self.all) {
            (None, false) => f.write_str("(any)"),
            (None, true) => f.write_str("all"),
            (Some(s), false) => write!(f, "{s}"),
            (Some(s), true) => write!(f, "all {s}"),
        }
    }
}

/// Parse the arguments of an access directive; `None` means "Could not parse".
pub(crate) fn parse_access(args: &[&str]) -> Option<AccessSpec> {
    let (all, rest) = match args.first() {
        Some(&"all") => (true, &args[1..]),
        _ => (false, args),
    };
    match rest {
        [] => Some(AccessSpec { all, subnet: None }),
        [one] => parse_subnet(one).map(|s| AccessSpec {
            all,
            subnet: Some(s),
        }),
        _ => None,
    }
}

/// Parse `ADDR[/BITS]`, a partial IPv4 address, or a host name.
pub(crate) fn parse_subnet(s: &str) -> Option<Subnet> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(parse_decimal(b, u32::MAX)?)),
        None => (s, None),
    };
    if addr.is_empty() {
        return None;
    }
    if addr.contains(':') {
        let ip: Ipv6Addr = addr.parse().ok()?;
        let prefix = bits.map_or(128, |b| b.min(128)) as u8;
        return Some(Subnet::V6 { addr: ip, prefix });
    }
    if addr
        .bytes()
        .all(|c| c.is_ascii_digit() || c == b'.' || c == b'+')
    {
        let (ip, n) = parse_partial_v4(addr)?;
        let prefix = bits.map_or(8 * n as u32, |b| b.min(32)) as u8;
        return Some(Subnet::V4 { addr: ip, prefix });
    }
    // `all` in the subnet position (`allow all all`) is a host name nobody can resolve.
    if addr == "all" {
        return None;
    }
    let host_ok = addr
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_')
        && addr.bytes().any(|c| c.is_ascii_alphabetic())
        && !addr.starts_with(['-', '.']);
    if !host_ok {
        return None;
    }
    Some(Subnet::Host {
        name: addr.to_string(),
        prefix: bits.map(|b| b.min(128) as u8),
    })
}

/// A `%d`-style number as chronyd reads address parts and prefix lengths: optional `+`, any
/// number of digits (leading zeros allowed), at most `max`.
fn parse_decimal(s: &str, max: u32) -> Option<u32> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 10 {
        return None;
    }
    let v: u64 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    u32::try_from(v).ok().filter(|v| *v <= max)
}

/// `a`, `a.b`, `a.b.c` or `a.b.c.d`, each part 0..=255; returns the address and part count.
fn parse_partial_v4(s: &str) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in s.split('.') {
        if n == 4 {
            return None;
        }
        octets[n] = u8::try_from(parse_decimal(part, 255)?).ok()?;
        n += 1;
    }
    Some((Ipv4Addr::from(octets), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Subnet {
        parse_subnet(s).unwrap()
    }

    #[test]
    fn bare_allow_means_everything() {
        let a = parse_access(&[]).unwrap();
        assert!(!a.all && a.subnet.is_none());
        assert!(a.matches("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn partial_ipv4_address_implies_prefix() {
        assert_eq!(
            v4("192.168"),
            Subnet::V4 {
                addr: Ipv4Addr::new(192, 168, 0, 0),
                prefix: 16
            }
        );
        assert_eq!(v4("10/8").prefix(), Some(8));
        assert!(v4("10.0.0.1/8").contains("10.9.9.9".parse().unwrap()));
    }

    #[test]
    fn chronyd_rejections_are_rejected() {
        for bad in [
            "300.1.1.1",
            "1.2.3.4.5",
            "fe80::1%eth0",
            "1.2.3.4/-1",
            "1.2.3.4/",
            "/8",
            "1.2.3.4/24x",
            "-3",
            "256",
            "1..2",
            "1.2.",
            ".1",
            "1.2.3.4/8/9",
            "[::1]",
        ] {
            assert_eq!(parse_subnet(bad), None, "{bad}");
        }
        assert_eq!(parse_access(&["all", "all"]), None);
        assert_eq!(parse_access(&["1.2.3.4", "5"]), None);
    }

    #[test]
    fn octets_and_prefix_take_plus_and_leading_zeros_like_chronyd() {
        assert_eq!(v4("+3").prefix(), Some(8));
        assert_eq!(
            v4("00000001.2"),
            Subnet::V4 {
                addr: Ipv4Addr::new(1, 2, 0, 0),
                prefix: 16
            }
        );
        assert_eq!(v4("1.2.3.4/+8").prefix(), Some(8));
        assert_eq!(v4("10/08").prefix(), Some(8));
    }

    #[test]
    fn all_keyword_is_case_sensitive() {
        let a = parse_access(&["All"]).unwrap();
        assert!(!a.all);
        assert!(matches!(a.subnet, Some(Subnet::Host { .. })));
    }

    #[test]
    fn ipv6_subnet_matches_inside_only() {
        let s = v4("2001:db8::/32");
        assert!(s.contains("2001:db8::1".parse().unwrap()));
        assert!(!s.contains("2001:db9::1".parse().unwrap()));
        assert!(!s.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(v4("::1").prefix(), Some(128));
        assert_eq!(v4("1.2.3.4/33").prefix(), Some(32));
    }
}
