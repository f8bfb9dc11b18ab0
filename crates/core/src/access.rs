//! Access table: chrony's `allow`/`deny` (and `cmdallow`/`cmddeny`) semantics.
//!
//! Behaviour follows chrony.conf(5), `allow` directive:
//! - rules live in one tree per address family with one level per 4 bits of the address
//!   (16 entries per table); a rule with prefix length `L` writes the entries of the table at
//!   depth `ceil(L / 4)` that its remaining `L mod 4` bits cover (`/0` writes the root);
//! - an address is judged by the deepest entry on its path that holds a rule, so a more
//!   specific rule wins over a less specific one in a different table, whatever their order;
//!   two rules landing in the same table overwrite each other's shared entries in
//!   configuration order (chrony's documented "1.2.3.0/25 and 1.2.3.0/28 are in the same
//!   table" caveat);
//! - `allow all SUBNET` / `deny all SUBNET` also erase every nested rule below the subnet;
//! - a bare `allow`/`deny` (no subnet) applies to both IPv4 and IPv6, `0/0` to IPv4 only and
//!   `::/0` to IPv6 only;
//! - with no rule at all nothing is allowed (chronyd serves nobody without `allow`);
//! - an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is judged by the IPv4 rules, both when it
//!   is looked up and when it appears in a rule with a prefix of at least 96 bits.
//!
//! The table stays mutable so that chronyc's run-time `allow`/`deny` commands can change it.
//! Lookups walk at most 8 (IPv4) or 32 (IPv6) levels and never allocate.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `allow`/`deny` directive or command, as the daemon maps it from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRule {
    /// `allow` (true) or `deny` (false).
    pub allow: bool,
    /// The `all` keyword: also erase every nested rule inside the subnet.
    pub all: bool,
    /// The subnet and its prefix length; `None` means every address of both families.
    pub subnet: Option<(IpAddr, u8)>,
}

/// Why a rule could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    /// The prefix length is longer than the address (over 32 for IPv4, over 128 for IPv6).
    PrefixTooLong {
        /// The prefix length that was given.
        prefix: u8,
        /// The longest prefix the family allows.
        max: u8,
    },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::PrefixTooLong { prefix, max } => {
                write!(f, "prefix length {prefix} is longer than {max} bits")
            }
        }
    }
}

impl std::error::Error for AccessError {}

/// An address family, for [`AccessTable::any_allowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (and IPv4-mapped IPv6).
    V4,
    /// IPv6.
    V6,
}

/// What one tree entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No rule here: the nearest ancestor with a rule decides.
    AsParent,
    Allow,
    Deny,
}

/// One tree entry: its own rule and an optional table for the next 4 bits.
#[derive(Debug, Clone)]
struct Node {
    state: State,
    children: Option<Box<[Node; 16]>>,
}

impl Node {
    const fn empty() -> Node {
        Node {
            state: State::AsParent,
            children: None,
        }
    }

    fn children_mut(&mut self) -> &mut [Node; 16] {
        self.children
            .get_or_insert_with(|| Box::new(std::array::from_fn(|_| Node::empty())))
    }

    fn any_allow(&self) -> bool {
        self.state == State::Allow
            || self
                .children
                .as_ref()
                .is_some_and(|c| c.iter().any(Node::any_allow))
    }
}

/// The allow/deny rules of one service (NTP or command access).
#[derive(Debug, Clone)]
pub struct AccessTable {
    v4: Node,
    v6: Node,
}

impl Default for AccessTable {
    fn default() -> Self {
        Self::new()
    }
}

/// The 4-bit group `index` (0 = most significant) of an address of `bits` bits.
fn nibble(addr: u128, bits: u32, index: u32) -> usize {
    ((addr >> (bits - 4 - 4 * index)) & 0xF) as usize
}

/// If `addr` is IPv4-mapped IPv6, the IPv4 address.
fn mapped_v4(addr: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = addr.segments();
    if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xFFFF {
        let [_, _, _, _, _, _, hi, lo] = s;
        Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
    } else {
        None
    }
}

/// The address as (family, bits, value), IPv4-mapped IPv6 folded to IPv4.
fn canonical(addr: IpAddr) -> (Family, u32, u128) {
    match addr {
        IpAddr::V4(a) => (Family::V4, 32, u128::from(u32::from(a))),
        IpAddr::V6(a) => match mapped_v4(&a) {
            Some(v4) => (Family::V4, 32, u128::from(u32::from(v4))),
            None => (Family::V6, 128, u128::from(a)),
        },
    }
}

impl AccessTable {
    /// An empty table: every address is denied.
    pub fn new() -> Self {
        AccessTable {
            v4: Node::empty(),
            v6: Node::empty(),
        }
    }

    /// Applies one rule on top of the existing ones (configuration order matters only for
    /// rules in the same table, as in chrony).
    pub fn apply(&mut self, rule: &AccessRule) -> Result<(), AccessError> {
        let state = if rule.allow {
            State::Allow
        } else {
            State::Deny
        };
        let Some((addr, prefix)) = rule.subnet else {
            set_root(&mut self.v4, state, rule.all);
            set_root(&mut self.v6, state, rule.all);
            return Ok(());
        };
        let (family, bits, value, prefix) = match addr {
            IpAddr::V4(_) => {
                if prefix > 32 {
                    return Err(AccessError::PrefixTooLong { prefix, max: 32 });
                }
                let (f, b, v) = canonical(addr);
                (f, b, v, u32::from(prefix))
            }
            IpAddr::V6(a) => {
                if prefix > 128 {
                    return Err(AccessError::PrefixTooLong { prefix, max: 128 });
                }
                match mapped_v4(&a) {
                    Some(v4) if prefix >= 96 => (
                        Family::V4,
                        32,
                        u128::from(u32::from(v4)),
                        u32::from(prefix) - 96,
                    ),
                    _ => (Family::V6, 128, u128::from(a), u32::from(prefix)),
                }
            }
        };
        let root = match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        };
        if prefix == 0 {
            set_root(root, state, rule.all);
            return Ok(());
        }
        // Walk the full nibbles above the table the rule lands in.
        let depth = prefix.div_ceil(4);
        let mut node = root;
        for level in 0..depth - 1 {
            node = &mut node.children_mut()[nibble(value, bits, level)];
        }
        // The last table: the rule's remaining bits select a run of entries.
        let rem = prefix - 4 * (depth - 1);
        let first = nibble(value, bits, depth - 1) & !((1usize << (4 - rem)) - 1);
        let count = 1usize << (4 - rem);
        for entry in node.children_mut()[first..first + count].iter_mut() {
            entry.state = state;
            if rule.all {
                entry.children = None;
            }
        }
        Ok(())
    }

    /// Whether `addr` may use the service.
    pub fn allowed(&self, addr: IpAddr) -> bool {
        let (family, bits, value) = canonical(addr);
        let mut node = match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        let mut verdict = node.state;
        let mut level = 0;
        while let Some(children) = node.children.as_deref() {
            if level * 4 >= bits {
                break;
            }
            node = &children[nibble(value, bits, level)];
            if node.state != State::AsParent {
                verdict = node.state;
            }
            level += 1;
        }
        verdict == State::Allow
    }

    /// Whether any address of the family could be allowed (chronyd opens its server socket
    /// for a family only then).
    pub fn any_allowed(&self, family: Family) -> bool {
        match family {
            Family::V4 => self.v4.any_allow(),
            Family::V6 => self.v6.any_allow(),
        }
    }
}

fn set_root(root: &mut Node, state: State, all: bool) {
    root.state = state;
    if all {
        root.children = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rule(allow: bool, all: bool, subnet: Option<(&str, u8)>) -> AccessRule {
        AccessRule {
            allow,
            all,
            subnet: subnet.map(|(a, p)| (ip(a), p)),
        }
    }

    fn table(rules: &[AccessRule]) -> AccessTable {
        let mut t = AccessTable::new();
        for r in rules {
            t.apply(r).unwrap();
        }
        t
    }

    #[test]
    fn no_rule_denies_everything() {
        let t = AccessTable::new();
        assert!(!t.allowed(ip("127.0.0.1")));
        assert!(!t.allowed(ip("::1")));
        assert!(!t.any_allowed(Family::V4));
        assert!(!t.any_allowed(Family::V6));
    }

    #[test]
    fn bare_allow_allows_both_families() {
        let t = table(&[rule(true, false, None)]);
        assert!(t.allowed(ip("203.0.113.9")));
        assert!(t.allowed(ip("2001:db8::1")));
    }

    #[test]
    fn zero_prefix_covers_one_family_only() {
        let t = table(&[rule(true, false, Some(("0.0.0.0", 0)))]);
        assert!(t.allowed(ip("198.51.100.1")));
        assert!(!t.allowed(ip("2001:db8::1")));
        let t = table(&[rule(true, false, Some(("::", 0)))]);
        assert!(!t.allowed(ip("198.51.100.1")));
        assert!(t.allowed(ip("2001:db8::1")));
        assert!(t.any_allowed(Family::V6) && !t.any_allowed(Family::V4));
    }

    #[test]
    fn single_host_and_partial_address() {
        // `allow 3.4.5` is the daemon's mapping of chrony's dotted shorthand to 3.4.5.0/24.
        let t = table(&[
            rule(true, false, Some(("1.2.3.4", 32))),
            rule(true, false, Some(("3.4.5.0", 24))),
        ]);
        assert!(t.allowed(ip("1.2.3.4")));
        assert!(!t.allowed(ip("1.2.3.5")));
        assert!(t.allowed(ip("3.4.5.200")));
        assert!(!t.allowed(ip("3.4.6.1")));
    }

    /// chrony.conf(5), first `allow all` example: order does not matter.
    #[test]
    fn most_specific_rule_wins() {
        let rules = [
            rule(true, false, Some(("1.2.3.4", 32))),
            rule(false, false, Some(("1.2.3.0", 24))),
            rule(true, false, Some(("1.2.0.0", 16))),
        ];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for order in orders {
            let t = table(&order.map(|i| rules[i]));
            assert!(t.allowed(ip("1.2.3.4")), "{order:?}");
            assert!(!t.allowed(ip("1.2.3.5")), "{order:?}");
            assert!(t.allowed(ip("1.2.4.1")), "{order:?}");
            assert!(!t.allowed(ip("1.3.0.1")), "{order:?}");
        }
    }

    /// chrony.conf(5), second example: `allow all 1.2.0.0/16` erases the nested rules.
    #[test]
    fn allow_all_overrides_nested_rules() {
        let t = table(&[
            rule(true, false, Some(("1.2.3.4", 32))),
            rule(false, false, Some(("1.2.3.0", 24))),
            rule(true, true, Some(("1.2.0.0", 16))),
        ]);
        assert!(t.allowed(ip("1.2.3.4")));
        assert!(t.allowed(ip("1.2.3.5")));
        // A later nested rule still applies on top.
        let mut t = t;
        t.apply(&rule(false, false, Some(("1.2.9.0", 24)))).unwrap();
        assert!(!t.allowed(ip("1.2.9.1")));
    }

    #[test]
    fn deny_all_then_allow_subnet() {
        let t = table(&[
            rule(false, true, None),
            rule(true, false, Some(("192.168.124.0", 24))),
        ]);
        assert!(t.allowed(ip("192.168.124.77")));
        assert!(!t.allowed(ip("192.168.125.1")));
        let t = table(&[
            rule(true, false, Some(("192.168.124.0", 24))),
            rule(false, true, None),
        ]);
        assert!(!t.allowed(ip("192.168.124.77")));
    }

    /// Documented caveat: /25 and /28 share a table, so the later one overwrites.
    #[test]
    fn rules_in_the_same_table_apply_in_order() {
        let t = table(&[
            rule(false, false, Some(("1.2.3.0", 28))),
            rule(true, false, Some(("1.2.3.0", 25))),
        ]);
        assert!(t.allowed(ip("1.2.3.1")));
        let t = table(&[
            rule(true, false, Some(("1.2.3.0", 25))),
            rule(false, false, Some(("1.2.3.0", 28))),
        ]);
        assert!(!t.allowed(ip("1.2.3.1")));
        assert!(t.allowed(ip("1.2.3.16")));
        // /28 and /29 are in different tables: the /29 wins whatever the order.
        let t = table(&[
            rule(false, false, Some(("1.2.3.0", 29))),
            rule(true, false, Some(("1.2.3.0", 28))),
        ]);
        assert!(!t.allowed(ip("1.2.3.1")));
        assert!(t.allowed(ip("1.2.3.9")));
    }

    /// Prefixes that are not a multiple of 4 bits (CVE-2015-1821 territory).
    #[test]
    fn odd_prefix_lengths_cover_exactly_their_addresses() {
        for prefix in [29u8, 30, 31, 32] {
            let t = table(&[rule(true, false, Some(("192.168.0.0", prefix)))]);
            let size = 1u32 << (32 - prefix);
            for host in 0..16u32 {
                let a = IpAddr::V4(Ipv4Addr::from(0xC0A8_0000 | host));
                assert_eq!(t.allowed(a), host < size, "/{prefix} host {host}");
            }
        }
        let t = table(&[rule(true, false, Some(("2001:db8::", 127)))]);
        assert!(t.allowed(ip("2001:db8::1")));
        assert!(!t.allowed(ip("2001:db8::2")));
        let t = table(&[rule(true, false, Some(("2001:db8::5", 128)))]);
        assert!(t.allowed(ip("2001:db8::5")));
        assert!(!t.allowed(ip("2001:db8::4")));
    }

    #[test]
    fn overlong_prefix_is_rejected() {
        let mut t = AccessTable::new();
        assert_eq!(
            t.apply(&rule(true, false, Some(("1.2.3.4", 33)))),
            Err(AccessError::PrefixTooLong {
                prefix: 33,
                max: 32
            })
        );
        assert_eq!(
            t.apply(&rule(true, false, Some(("::1", 129)))),
            Err(AccessError::PrefixTooLong {
                prefix: 129,
                max: 128
            })
        );
        assert!(!t.allowed(ip("1.2.3.4")));
    }

    #[test]
    fn ipv4_mapped_matches_v4_rules() {
        let t = table(&[rule(true, false, Some(("192.168.1.0", 24)))]);
        assert!(t.allowed(ip("::ffff:192.168.1.5")));
        assert!(!t.allowed(ip("::ffff:192.168.2.5")));
        // Not mapped: the ::/0 side stays denied.
        assert!(!t.allowed(ip("::192.168.1.5")));
        // A rule written as a mapped address lands in the IPv4 tree.
        let t = table(&[rule(true, false, Some(("::ffff:10.0.0.0", 104)))]);
        assert!(t.allowed(ip("10.1.2.3")));
        assert!(!t.allowed(ip("11.0.0.1")));
    }

    #[test]
    fn v6_subnet_rules() {
        let t = table(&[
            rule(true, false, Some(("2001:db8::", 32))),
            rule(false, false, Some(("2001:db8:dead::", 48))),
        ]);
        assert!(t.allowed(ip("2001:db8:1::1")));
        assert!(!t.allowed(ip("2001:db8:dead::1")));
        assert!(!t.allowed(ip("2001:db9::1")));
        assert!(!t.allowed(ip("10.0.0.1")));
    }

    #[test]
    fn host_bits_beyond_the_prefix_are_ignored() {
        let t = table(&[rule(true, false, Some(("10.1.2.3", 8)))]);
        assert!(t.allowed(ip("10.200.0.1")));
    }

    /// Compare the tree against a naive model for random rules and addresses: the model
    /// applies "deepest table wins, later rule wins within a table" literally.
    #[test]
    fn matches_reference_model_on_random_rules() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut rules = Vec::new();
            for _ in 0..rng.random_range(1..8) {
                let prefix: u8 = rng.random_range(0..=32);
                let addr = 0x0A00_0000 | (rng.random::<u32>() & 0x00FF_FFFF);
                rules.push((rng.random::<bool>(), prefix, addr));
            }
            let mut t = AccessTable::new();
            for &(allow, prefix, addr) in &rules {
                t.apply(&AccessRule {
                    allow,
                    all: false,
                    subnet: Some((IpAddr::V4(Ipv4Addr::from(addr)), prefix)),
                })
                .unwrap();
            }
            for _ in 0..200 {
                let a = 0x0A00_0000 | (rng.random::<u32>() & 0x00FF_FFFF);
                // Model: among covering rules, the deepest table wins, then the latest one.
                let mut best: Option<(u32, usize, bool)> = None;
                for (i, &(allow, prefix, addr)) in rules.iter().enumerate() {
                    let mask = if prefix == 0 {
                        0
                    } else {
                        u32::MAX << (32 - prefix)
                    };
                    if a & mask == addr & mask {
                        let depth = u32::from(prefix).div_ceil(4);
                        if best.is_none_or(|(d, j, _)| (depth, i) > (d, j)) {
                            best = Some((depth, i, allow));
                        }
                    }
                }
                let expected = best.is_some_and(|(_, _, allow)| allow);
                assert_eq!(t.allowed(IpAddr::V4(Ipv4Addr::from(a))), expected);
            }
        }
    }
}
