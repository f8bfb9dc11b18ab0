//! NTS cookies and the server keys that seal them (RFC 8915 §6, the format being the
//! server's own choice).
//!
//! A cookie is `key ID (4) ‖ nonce (16) ‖ AES-SIV-CMAC-256(server key, nonce; C2S ‖ S2C)`:
//! 4 + 16 + 16 + 64 = 100 octets. The AEAD (RFC 5297 nonce-based: components [nonce]) both
//! hides the client's keys and authenticates the cookie, so a changed octet, a truncated
//! cookie or a key ID we no longer hold fails to open and the NTP layer answers an NTS NAK.
//!
//! Server keys live in a ring of four, as chronyd 4.3 keeps them: the low two bits of a key ID
//! are its slot, the rest random. `ntsrotate` seconds after the last rotation the oldest
//! slot gets a fresh key and becomes current, so a cookie stays valid for three rotation
//! periods after the key that sealed it was replaced.
//!
//! The dump written to `ntsdumpdir/ntskeys` uses chronyd 4.3's layout (measured from its
//! file), so either daemon can read the other's keys:
//!
//! ```text
//! NKS0
//! 15 <seconds since the last rotation>
//! <ID hex> <key hex>        four lines, oldest first, current last
//! ```

use std::fmt::{self, Write as _};

use aes_siv::siv::Aes128Siv;
use aes_siv::KeyInit;
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// AEAD_AES_SIV_CMAC_256 key length.
pub const AEAD_KEY_LEN: usize = 32;
/// Length of our cookies.
pub const COOKIE_LEN: usize = 4 + COOKIE_NONCE_LEN + 16 + 2 * AEAD_KEY_LEN;
/// Nonce length inside a cookie.
pub const COOKIE_NONCE_LEN: usize = 16;
/// Number of server keys kept.
pub const SERVER_KEY_SLOTS: usize = 4;
/// Default `ntsrotate` (one week).
pub const DEFAULT_ROTATE_INTERVAL: f64 = 604_800.0;
/// AEAD algorithm number written in the dump (AEAD_AES_SIV_CMAC_256).
const DUMP_AEAD: u16 = 15;

/// The two keys an NTS-KE exchange exports for one client (RFC 8915 §5.1).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// Client-to-server key.
    pub c2s: [u8; AEAD_KEY_LEN],
    /// Server-to-client key.
    pub s2c: [u8; AEAD_KEY_LEN],
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct ServerKey {
    id: u32,
    key: [u8; AEAD_KEY_LEN],
}

/// Why a key dump cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDumpError {
    /// First line is not `NKS0`.
    BadMagic,
    /// The algorithm/age line is malformed or names another algorithm.
    BadHeader,
    /// A key line is malformed (line number).
    BadKeyLine(usize),
    /// Not exactly four keys, or two in one slot.
    BadKeyCount,
}

impl fmt::Display for KeyDumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDumpError::BadMagic => f.write_str("not an NTS key dump (missing NKS0)"),
            KeyDumpError::BadHeader => f.write_str("bad algorithm or age line"),
            KeyDumpError::BadKeyLine(n) => write!(f, "bad key at line {n}"),
            KeyDumpError::BadKeyCount => f.write_str("wrong number of keys"),
        }
    }
}

impl std::error::Error for KeyDumpError {}

/// The server's cookie keys.
#[derive(Clone)]
pub struct ServerKeys {
    slots: [ServerKey; SERVER_KEY_SLOTS],
    current: usize,
    /// Monotonic time of the last rotation.
    rotated_at: f64,
    /// `ntsrotate`; 0 disables rotation.
    interval: f64,
}

impl fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKeys")
            .field("current_id", &self.current_id())
            .field("rotated_at", &self.rotated_at)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

fn new_key(slot: usize, rng: &mut dyn RngCore) -> ServerKey {
    let mut key = [0u8; AEAD_KEY_LEN];
    rng.fill_bytes(&mut key);
    let id = (rng.next_u32() & !3) | (slot as u32 & 3);
    ServerKey { id, key }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(s, 16).ok()
}

impl ServerKeys {
    /// Four fresh keys, the last current, rotated `now_mono`.
    pub fn generate(rng: &mut dyn RngCore, now_mono: f64, interval: f64) -> ServerKeys {
        ServerKeys {
            slots: [0, 1, 2, 3].map(|s| new_key(s, rng)),
            current: 0,
            rotated_at: now_mono,
            interval,
        }
    }

    /// ID of the key sealing new cookies.
    pub fn current_id(&self) -> u32 {
        self.slots[self.current].id
    }

    /// Monotonic time at which the next rotation is due (`None` when rotation is disabled).
    pub fn next_rotation(&self) -> Option<f64> {
        (self.interval > 0.0).then_some(self.rotated_at + self.interval)
    }

    /// Replaces the oldest key with a fresh one and makes it current.
    pub fn rotate(&mut self, rng: &mut dyn RngCore, now_mono: f64) {
        let next = (self.current + 1) % SERVER_KEY_SLOTS;
        self.slots[next] = new_key(next, rng);
        self.current = next;
        self.rotated_at = now_mono;
    }

    /// Rotates if `ntsrotate` seconds have passed; true if it did (the daemon then rewrites
    /// the dump).
    pub fn rotate_if_due(&mut self, rng: &mut dyn RngCore, now_mono: f64) -> bool {
        match self.next_rotation() {
            Some(due) if now_mono >= due => {
                self.rotate(rng, now_mono);
                true
            }
            _ => false,
        }
    }

    fn cipher(key: &ServerKey) -> Aes128Siv {
        Aes128Siv::new(&key.key.into())
    }

    /// Seals `keys` into a new cookie with the current key.
    pub fn seal(&self, keys: &SessionKeys, rng: &mut dyn RngCore) -> [u8; COOKIE_LEN] {
        let key = &self.slots[self.current];
        let mut cookie = [0u8; COOKIE_LEN];
        cookie[..4].copy_from_slice(&key.id.to_be_bytes());
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        cookie[4..20].copy_from_slice(&nonce);
        let body = &mut cookie[20 + 16..];
        body[..AEAD_KEY_LEN].copy_from_slice(&keys.c2s);
        body[AEAD_KEY_LEN..].copy_from_slice(&keys.s2c);
        // Encrypting 64 octets with one header cannot fail (the limits are 126 headers).
        if let Ok(tag) = Self::cipher(key).encrypt_in_place_detached([&nonce[..]], body) {
            cookie[20..36].copy_from_slice(&tag);
        }
        cookie
    }

    /// Opens a cookie: `None` if it has the wrong length, names a key we do not hold, or
    /// fails authentication.
    pub fn open(&self, cookie: &[u8]) -> Option<SessionKeys> {
        if cookie.len() != COOKIE_LEN {
            return None;
        }
        let id = u32::from_be_bytes(cookie[..4].try_into().ok()?);
        let key = self.slots.get(id as usize & 3).filter(|k| k.id == id)?;
        let nonce = &cookie[4..20];
        let tag: [u8; 16] = cookie[20..36].try_into().ok()?;
        let mut body = Zeroizing::new([0u8; 2 * AEAD_KEY_LEN]);
        body.copy_from_slice(&cookie[36..]);
        Self::cipher(key)
            .decrypt_in_place_detached([nonce], &mut body[..], &tag.into())
            .ok()?;
        let mut keys = SessionKeys {
            c2s: [0; AEAD_KEY_LEN],
            s2c: [0; AEAD_KEY_LEN],
        };
        keys.c2s.copy_from_slice(&body[..AEAD_KEY_LEN]);
        keys.s2c.copy_from_slice(&body[AEAD_KEY_LEN..]);
        Some(keys)
    }

    /// The dump file's text (chronyd's `ntskeys` layout). Contains the keys: the daemon writes
    /// it to a temporary file created 0600 and renames it over the old one.
    pub fn dump(&self, now_mono: f64) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(320));
        let age = (now_mono - self.rotated_at).max(0.0);
        let _ = write!(out, "NKS0\n{DUMP_AEAD} {age:.1}\n");
        for i in 1..=SERVER_KEY_SLOTS {
            let k = &self.slots[(self.current + i) % SERVER_KEY_SLOTS];
            let _ = write!(out, "{:08X} ", k.id);
            for b in k.key {
                let _ = write!(out, "{b:02X}");
            }
            out.push('\n');
        }
        out
    }

    /// Loads a dump written by [`ServerKeys::dump`] or chronyd: the last key is current and
    /// its age is kept, so rotation continues on schedule.
    pub fn load(text: &str, now_mono: f64, interval: f64) -> Result<ServerKeys, KeyDumpError> {
        let mut lines = text.lines();
        if lines.next().map(str::trim_end) != Some("NKS0") {
            return Err(KeyDumpError::BadMagic);
        }
        let header = lines.next().ok_or(KeyDumpError::BadHeader)?;
        let mut parts = header.split_ascii_whitespace();
        let (Some(aead), Some(age), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyDumpError::BadHeader);
        };
        let age: f64 = age.parse().map_err(|_| KeyDumpError::BadHeader)?;
        if aead.parse::<u16>() != Ok(DUMP_AEAD) || !age.is_finite() || age < 0.0 {
            return Err(KeyDumpError::BadHeader);
        }
        let mut slots: [Option<ServerKey>; SERVER_KEY_SLOTS] = Default::default();
        let mut count = 0;
        let mut last_slot = 0;
        for (i, line) in lines.enumerate() {
            let line_no = i + 3;
            if line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split_ascii_whitespace();
            let (Some(id), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(KeyDumpError::BadKeyLine(line_no));
            };
            let id = u32::from_str_radix(id, 16).map_err(|_| KeyDumpError::BadKeyLine(line_no))?;
            let hex = key.as_bytes();
            if hex.len() != 2 * AEAD_KEY_LEN {
                return Err(KeyDumpError::BadKeyLine(line_no));
            }
            let mut k = ServerKey {
                id,
                key: [0; AEAD_KEY_LEN],
            };
            for (dst, pair) in k.key.iter_mut().zip(hex.chunks_exact(2)) {
                *dst = hex_byte(pair).ok_or(KeyDumpError::BadKeyLine(line_no))?;
            }
            let slot = id as usize & 3;
            if count >= SERVER_KEY_SLOTS || slots[slot].is_some() {
                return Err(KeyDumpError::BadKeyCount);
            }
            slots[slot] = Some(k);
            last_slot = slot;
            count += 1;
        }
        let [Some(a), Some(b), Some(c), Some(d)] = slots else {
            return Err(KeyDumpError::BadKeyCount);
        };
        Ok(ServerKeys {
            slots: [a, b, c, d],
            current: last_slot,
            rotated_at: now_mono - age,
            interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn keys() -> SessionKeys {
        SessionKeys {
            c2s: [1; 32],
            s2c: [2; 32],
        }
    }

    #[test]
    fn cookie_round_trips_and_any_changed_octet_fails() {
        let mut rng = StdRng::seed_from_u64(7);
        let sk = ServerKeys::generate(&mut rng, 0.0, 3600.0);
        let cookie = sk.seal(&keys(), &mut rng);
        assert_eq!(sk.open(&cookie), Some(keys()));
        for i in 0..COOKIE_LEN {
            let mut bad = cookie;
            bad[i] ^= 0x40;
            assert_eq!(sk.open(&bad), None, "octet {i}");
        }
        assert_eq!(sk.open(&cookie[..99]), None);
        assert_eq!(sk.open(&[]), None);
    }

    #[test]
    fn cookies_survive_three_rotations_not_four() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut sk = ServerKeys::generate(&mut rng, 0.0, 10.0);
        let cookie = sk.seal(&keys(), &mut rng);
        assert!(!sk.rotate_if_due(&mut rng, 9.9));
        for t in [10.0, 20.0, 30.0] {
            assert!(sk.rotate_if_due(&mut rng, t));
            assert_eq!(sk.open(&cookie), Some(keys()));
        }
        assert!(sk.rotate_if_due(&mut rng, 40.0));
        assert_eq!(sk.open(&cookie), None);
    }

    #[test]
    fn zero_interval_disables_rotation() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut sk = ServerKeys::generate(&mut rng, 0.0, 0.0);
        assert_eq!(sk.next_rotation(), None);
        assert!(!sk.rotate_if_due(&mut rng, 1e9));
    }

    #[test]
    fn dump_round_trips_with_age_and_current_key() {
        let mut rng = StdRng::seed_from_u64(10);
        let mut sk = ServerKeys::generate(&mut rng, 100.0, 50.0);
        sk.rotate(&mut rng, 120.0);
        let cookie = sk.seal(&keys(), &mut rng);
        let text = sk.dump(130.0);
        assert!(text.starts_with("NKS0\n15 10.0\n"));
        assert_eq!(text.lines().count(), 6);
        let loaded = ServerKeys::load(&text, 1000.0, 50.0).unwrap();
        assert_eq!(loaded.current_id(), sk.current_id());
        assert_eq!(loaded.open(&cookie), Some(keys()));
        assert_eq!(loaded.next_rotation(), Some(1040.0));
    }

    /// A dump as chronyd 4.3 wrote it into its ntsdumpdir (keys listed oldest first).
    #[test]
    fn loads_chronyd_dump() {
        let text = "NKS0\n15 2.0\n\
            3161E679 2E635801D699A4F72F86DE66B400194DC5E2F1440AC4138DADAA49D1F1BB21DF\n\
            D339CDDE 5B57EE869E7F996CA14BD2517FD8C5EA554DBB4EDB40B7BB8BC3A8C476414C54\n\
            127FEADB F1632CEB723D6DE46046A0D77CC88BD905DA3F4EE4C4CB58D5C37C1FFE602253\n\
            583B0158 D5FCE0D804635105808AEF0A820AA8731910F5BF06539300385F5CE35DA6C0E6\n";
        let sk = ServerKeys::load(text, 10.0, 100.0).unwrap();
        assert_eq!(sk.current_id(), 0x583B_0158);
        assert_eq!(sk.next_rotation(), Some(108.0));
        assert_eq!(&*sk.dump(10.0), text);
    }

    #[test]
    fn bad_dumps_are_refused() {
        assert_eq!(
            ServerKeys::load("", 0.0, 1.0).unwrap_err(),
            KeyDumpError::BadMagic
        );
        assert_eq!(
            ServerKeys::load("NKS0\n16 0\n", 0.0, 1.0).unwrap_err(),
            KeyDumpError::BadHeader
        );
        assert_eq!(
            ServerKeys::load("NKS0\n15 0\n00000000 zz\n", 0.0, 1.0).unwrap_err(),
            KeyDumpError::BadKeyLine(3)
        );
        let one = format!("NKS0\n15 0\n00000001 {}\n", "00".repeat(32));
        assert_eq!(
            ServerKeys::load(&one, 0.0, 1.0).unwrap_err(),
            KeyDumpError::BadKeyCount
        );
    }

    #[test]
    fn debug_hides_keys() {
        let mut rng = StdRng::seed_from_u64(11);
        let sk = ServerKeys::generate(&mut rng, 0.0, 1.0);
        assert!(!format!("{sk:?}").contains("key: ["));
        assert_eq!(format!("{:?}", keys()), "SessionKeys { .. }");
    }
}
