//! The NTS cookie jar (RFC 8915 §5.7, §6): at most eight cookies, each used once.
//!
//! A cookie is taken out of the jar when a request is built, so it can never be sent twice
//! (catalogue case 32): a request that gets no answer costs one cookie, and after eight
//! unanswered requests the jar is empty and the association runs NTS-KE again instead of
//! reusing one. Cookies received from servers are checked before they are stored: 4 to 256
//! octets and a multiple of 4 (chrony's limits, case 20); anything else is discarded. The
//! jar's contents are zeroized when dropped and never printed.

use std::collections::VecDeque;
use std::fmt;

use zeroize::Zeroizing;

/// Most cookies kept.
pub const MAX_COOKIES: usize = 8;
/// Longest cookie accepted, octets.
pub const MAX_COOKIE_LEN: usize = 256;

/// True for a cookie the jar accepts: 4..=256 octets, a multiple of 4.
pub fn is_valid_cookie(cookie: &[u8]) -> bool {
    (4..=MAX_COOKIE_LEN).contains(&cookie.len()) && cookie.len() % 4 == 0
}

/// Unused cookies, oldest first.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CookieJar {
    cookies: VecDeque<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("len", &self.cookies.len())
            .finish()
    }
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Stores a cookie; false (and discarded) when malformed or the jar is full.
    pub fn push(&mut self, cookie: &[u8]) -> bool {
        if !is_valid_cookie(cookie) || self.cookies.len() >= MAX_COOKIES {
            return false;
        }
        self.cookies.push_back(Zeroizing::new(cookie.to_vec()));
        true
    }

    /// Takes the oldest cookie out (it is never handed out again).
    pub fn take(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        self.cookies.pop_front()
    }

    /// Length of the cookie [`CookieJar::take`] would give next.
    pub fn next_len(&self) -> Option<usize> {
        self.cookies.front().map(|c| c.len())
    }

    /// Cookies held.
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// True when no cookie is left.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Takes every cookie out, oldest first (to save them: they are never handed out again
    /// from this jar).
    pub fn drain(&mut self) -> Vec<Zeroizing<Vec<u8>>> {
        self.cookies.drain(..).collect()
    }

    /// Drops every cookie (after an NTS NAK or a new key exchange).
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_cookie_is_never_handed_out_again() {
        let mut jar = CookieJar::new();
        for i in 0..3u8 {
            assert!(jar.push(&[i; 100]));
        }
        let mut seen = Vec::new();
        while let Some(c) = jar.take() {
            assert!(!seen.iter().any(|s: &Vec<u8>| s[..] == c[..]));
            seen.push(c.to_vec());
        }
        assert_eq!(seen.len(), 3);
        assert!(jar.take().is_none());
    }

    #[test]
    fn case20_hostile_cookie_lengths_are_discarded_and_jar_capped_at_8() {
        let mut jar = CookieJar::new();
        for bad in [0usize, 1, 2, 3, 6, 101, 257, 260, 4096] {
            assert!(!jar.push(&vec![7u8; bad]), "length {bad}");
        }
        assert!(jar.is_empty());
        for i in 0..20u8 {
            jar.push(&[i; 100]);
        }
        assert_eq!(jar.len(), MAX_COOKIES);
        assert!(!jar.push(&[1; 4]));
        jar.clear();
        assert!(jar.is_empty());
    }

    #[test]
    fn next_len_is_the_length_of_the_cookie_taken_next() {
        let mut jar = CookieJar::new();
        assert_eq!(jar.next_len(), None);
        jar.push(&[1; 100]);
        jar.push(&[2; 8]);
        assert_eq!(jar.next_len(), Some(100));
        jar.take();
        assert_eq!(jar.next_len(), Some(8));
    }

    #[test]
    fn debug_output_shows_no_cookie_bytes() {
        let mut jar = CookieJar::new();
        jar.push(&[0xAB; 100]);
        let s = format!("{jar:?}");
        assert!(!s.contains("171") && !s.to_lowercase().contains("ab,"));
    }
}
