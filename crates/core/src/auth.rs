//! Symmetric-key authentication: chrony's key file (`keyfile`) and the NTP MAC (RFC 5905 §7.3
//! and appendix A, RFC 8573 for AES-CMAC).
//!
//! Key file format, as chrony 4.3 reads it (its manual plus black-box runs of `chronyd -x -d`
//! with deliberately bad lines):
//!
//! ```text
//! # comment ("#", "%", "!" or ";" after optional white space), blank lines ignored
//! ID [TYPE] KEY        ID 1..2^32-1, TYPE default MD5, KEY = ASCII:text | HEX:hex | text
//! ```
//!
//! Type names are case-sensitive (`sha1` is "Invalid type in key N"). A line with one token or
//! four and more is "Could not parse key at line N". An undecodable key (`HEX:zz`, `HEX:`, odd
//! hex) is "Could not decode key N", an AES key of the wrong size "Invalid length of AES128 key
//! N (expected 128 bits)", a repeated ID "Detected duplicate key N" (chrony's wording; we add
//! the line number to each). Every such line is skipped and the rest still load. A duplicate
//! keeps the first definition (chronyd answers only with the first). Key ID 0 loads and
//! works as chronyd's does (measured: a 68-octet request MAC'd with key 0 is answered; it is
//! not a crypto-NAK, which has no digest), but unlike chrony, which wraps `4294967296` to key
//! 0, IDs above 2^32-1 are refused. Deliberately stricter too: chronyd 4.3 reads IDs the way
//! `scanf("%u")` does (measured: `+6` and `6a` load as key 6, `-1` as 4294967295, `0x10` as
//! 0, all silently); here an ID must be plain decimal digits, anything else "Could not parse
//! key". The key is decoded before the type is checked, as chronyd does, and TIGER and
//! WHIRLPOOL, which chronyd names but this build lacks, are "Unsupported hash function".
//!
//! MAC: hash types compute H(key ‖ packet); AES types compute AES-CMAC(key, packet). The
//! digest carried is the full output, except in NTPv4 where hashes longer than 160 bits are
//! truncated to 20 octets (RFC 7822 §7.5). Measured against chronyd 4.3: an NTPv4 request with
//! a SHA256 or SHA512 key is answered only when its digest is exactly 20 octets; NTPv3 only with
//! the full 32/64; MD5 and AES128 with 16; the answer carries the same key ID and digest length.
//! Verification compares in constant time (`subtle`); key material is zeroized on drop.

use std::fmt;

use aes::{Aes128, Aes256};
use cmac::Cmac;
use sha2::Digest;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Longest digest any supported type produces (SHA512).
pub const MAX_DIGEST_LEN: usize = 64;
/// Longest digest carried in an NTPv4 packet (RFC 7822 §7.5).
pub const MAX_V4_DIGEST_LEN: usize = 20;
/// Keys shorter than this many bits are reported as insecure (chrony warns "Key N is too
/// short" for a source using one).
pub const MIN_SECURE_KEY_BITS: usize = 80;
/// Longest key-file line chrony reads (2047 characters plus the newline).
pub const MAX_LINE_LEN: usize = 2047;

/// A MAC algorithm of the key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// MD5 (the default when a line has no type).
    Md5,
    /// SHA1.
    Sha1,
    /// SHA256.
    Sha256,
    /// SHA384.
    Sha384,
    /// SHA512.
    Sha512,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
    /// AES-CMAC with a 128-bit key (RFC 8573).
    Aes128,
    /// AES-CMAC with a 256-bit key.
    Aes256,
}

impl KeyType {
    /// Parses a key-file type name (case-sensitive, as chrony).
    pub fn from_name(name: &str) -> Option<KeyType> {
        Some(match name {
            "MD5" => KeyType::Md5,
            "SHA1" => KeyType::Sha1,
            "SHA256" => KeyType::Sha256,
            "SHA384" => KeyType::Sha384,
            "SHA512" => KeyType::Sha512,
            "SHA3-224" => KeyType::Sha3_224,
            "SHA3-256" => KeyType::Sha3_256,
            "SHA3-384" => KeyType::Sha3_384,
            "SHA3-512" => KeyType::Sha3_512,
            "AES128" => KeyType::Aes128,
            "AES256" => KeyType::Aes256,
            _ => return None,
        })
    }

    /// The key-file name.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Md5 => "MD5",
            KeyType::Sha1 => "SHA1",
            KeyType::Sha256 => "SHA256",
            KeyType::Sha384 => "SHA384",
            KeyType::Sha512 => "SHA512",
            KeyType::Sha3_224 => "SHA3-224",
            KeyType::Sha3_256 => "SHA3-256",
            KeyType::Sha3_384 => "SHA3-384",
            KeyType::Sha3_512 => "SHA3-512",
            KeyType::Aes128 => "AES128",
            KeyType::Aes256 => "AES256",
        }
    }

    /// Full digest length in octets.
    pub fn digest_len(self) -> usize {
        match self {
            KeyType::Md5 | KeyType::Aes128 | KeyType::Aes256 => 16,
            KeyType::Sha1 => 20,
            KeyType::Sha3_224 => 28,
            KeyType::Sha256 | KeyType::Sha3_256 => 32,
            KeyType::Sha384 | KeyType::Sha3_384 => 48,
            KeyType::Sha512 | KeyType::Sha3_512 => 64,
        }
    }

    /// Digest length carried in a packet of this NTP version: truncated to 20 octets in NTPv4.
    pub fn wire_digest_len(self, version: u8) -> usize {
        if version >= 4 {
            self.digest_len().min(MAX_V4_DIGEST_LEN)
        } else {
            self.digest_len()
        }
    }

    /// Required key length in octets for the cipher types.
    pub fn cipher_key_len(self) -> Option<usize> {
        match self {
            KeyType::Aes128 => Some(16),
            KeyType::Aes256 => Some(32),
            _ => None,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key cannot be built from its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// No key material.
    Empty,
    /// An AES key whose size does not match the cipher.
    BadCipherKeyLength {
        /// The cipher.
        key_type: KeyType,
        /// Octets given.
        len: usize,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("empty key"),
            KeyError::BadCipherKeyLength { key_type, len } => write!(
                f,
                "invalid length of {key_type} key ({} bits)",
                len.saturating_mul(8)
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// One symmetric key. The material is zeroized when the key is dropped and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    id: u32,
    key_type: KeyType,
    material: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("key_type", &self.key_type)
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

fn hash_mac<D: Digest>(key: &[u8], data: &[u8], out: &mut [u8; MAX_DIGEST_LEN]) -> usize {
    let mut h = D::new();
    h.update(key);
    h.update(data);
    let digest = h.finalize();
    let n = digest.len().min(MAX_DIGEST_LEN);
    out[..n].copy_from_slice(&digest[..n]);
    n
}

/// AES-CMAC (RFC 4493, as RFC 8573 uses it). The key length was checked when the key was
/// built; if it somehow did not fit, the digest stays all zero, which no peer's MAC matches.
fn cmac_mac<M: cmac::Mac + cmac::digest::KeyInit>(
    key: &[u8],
    data: &[u8],
    out: &mut [u8; MAX_DIGEST_LEN],
) -> usize {
    out[..16].fill(0);
    if let Ok(mut m) = <M as cmac::digest::KeyInit>::new_from_slice(key) {
        m.update(data);
        let tag = m.finalize().into_bytes();
        let n = tag.len().min(16);
        out[..n].copy_from_slice(&tag[..n]);
    }
    16
}

impl Key {
    /// Builds a key; AES keys must match their cipher's size, and no key is empty.
    pub fn new(id: u32, key_type: KeyType, material: Vec<u8>) -> Result<Key, KeyError> {
        let material = Zeroizing::new(material);
        if material.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Some(want) = key_type.cipher_key_len() {
            if material.len() != want {
                return Err(KeyError::BadCipherKeyLength {
                    key_type,
                    len: material.len(),
                });
            }
        }
        Ok(Key {
            id,
            key_type,
            material,
        })
    }

    /// Key ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Key length in bits.
    pub fn bits(&self) -> usize {
        self.material.len().saturating_mul(8)
    }

    /// True for keys shorter than 80 bits (loaded, but chrony calls them too short).
    pub fn is_insecure(&self) -> bool {
        self.bits() < MIN_SECURE_KEY_BITS
    }

    /// Computes the full MAC of `data` into `out`, returning its length.
    pub fn compute(&self, data: &[u8], out: &mut [u8; MAX_DIGEST_LEN]) -> usize {
        let k = self.material.as_slice();
        match self.key_type {
            KeyType::Md5 => hash_mac::<md5::Md5>(k, data, out),
            KeyType::Sha1 => hash_mac::<sha1::Sha1>(k, data, out),
            KeyType::Sha256 => hash_mac::<sha2::Sha256>(k, data, out),
            KeyType::Sha384 => hash_mac::<sha2::Sha384>(k, data, out),
            KeyType::Sha512 => hash_mac::<sha2::Sha512>(k, data, out),
            KeyType::Sha3_224 => hash_mac::<sha3::Sha3_224>(k, data, out),
            KeyType::Sha3_256 => hash_mac::<sha3::Sha3_256>(k, data, out),
            KeyType::Sha3_384 => hash_mac::<sha3::Sha3_384>(k, data, out),
            KeyType::Sha3_512 => hash_mac::<sha3::Sha3_512>(k, data, out),
            KeyType::Aes128 => cmac_mac::<Cmac<Aes128>>(k, data, out),
            KeyType::Aes256 => cmac_mac::<Cmac<Aes256>>(k, data, out),
        }
    }

    /// Writes the digest to carry in a packet of NTP `version` into `out`, returning its
    /// length (truncated to 20 octets in NTPv4).
    pub fn sign(&self, data: &[u8], version: u8, out: &mut [u8; MAX_DIGEST_LEN]) -> usize {
        let full = self.compute(data, out);
        let len = self.key_type.wire_digest_len(version).min(full);
        out[len..].zeroize();
        len
    }

    /// Verifies a received digest over `data` for NTP `version`: its length must be the one
    /// this type carries in that version, and the octets must match (constant time).
    pub fn verify(&self, data: &[u8], version: u8, digest: &[u8]) -> bool {
        let mut expected = Zeroizing::new([0u8; MAX_DIGEST_LEN]);
        let len = self.sign(data, version, &mut expected);
        digest.len() == len && bool::from(expected[..len].ct_eq(digest))
    }
}

/// The loaded keys, looked up by ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyStore {
    /// Sorted by ID, no duplicates.
    keys: Vec<Key>,
}

impl KeyStore {
    /// No keys.
    pub fn new() -> KeyStore {
        KeyStore::default()
    }

    /// Adds a key; false (and no change) if its ID is already present.
    pub fn insert(&mut self, key: Key) -> bool {
        match self.keys.binary_search_by_key(&key.id, |k| k.id) {
            Ok(_) => false,
            Err(at) => {
                self.keys.insert(at, key);
                true
            }
        }
    }

    /// The key with this ID.
    pub fn get(&self, id: u32) -> Option<&Key> {
        self.keys
            .binary_search_by_key(&id, |k| k.id)
            .ok()
            .and_then(|i| self.keys.get(i))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True without keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys in ID order.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// Parses a key file's text (see the module documentation). Never fails: bad lines become
    /// warnings and are skipped.
    pub fn parse(text: &str) -> (KeyStore, Vec<KeyFileWarning>) {
        let mut store = KeyStore::new();
        let mut warnings = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            match parse_line(raw) {
                Ok(None) => {}
                Ok(Some(key)) => {
                    let (id, insecure) = (key.id, key.is_insecure());
                    if !store.insert(key) {
                        warnings.push(KeyFileWarning {
                            line,
                            kind: KeyWarningKind::Duplicate { id },
                        });
                    } else if insecure {
                        warnings.push(KeyFileWarning {
                            line,
                            kind: KeyWarningKind::Insecure { id },
                        });
                    }
                }
                Err(kind) => warnings.push(KeyFileWarning { line, kind }),
            }
        }
        (store, warnings)
    }
}

/// What is wrong with a key-file line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWarningKind {
    /// Wrong number of fields, bad ID, over-long line or a NUL byte.
    Unparsable,
    /// Unknown or unsupported type name.
    InvalidType {
        /// Key ID.
        id: u32,
    },
    /// A hash chrony names but this build does not provide (TIGER, WHIRLPOOL).
    UnsupportedHash {
        /// Key ID.
        id: u32,
    },
    /// AES key of the wrong size.
    InvalidLength {
        /// Key ID.
        id: u32,
        /// The cipher.
        key_type: KeyType,
    },
    /// Bad hex digits, odd hex length or an empty key.
    Undecodable {
        /// Key ID.
        id: u32,
    },
    /// The ID was already defined (the first definition is kept).
    Duplicate {
        /// Key ID.
        id: u32,
    },
    /// Loaded, but shorter than 80 bits.
    Insecure {
        /// Key ID.
        id: u32,
    },
}

/// A warning about one line of the key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFileWarning {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: KeyWarningKind,
}

impl fmt::Display for KeyFileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        match self.kind {
            KeyWarningKind::Unparsable => write!(f, "Could not parse key at line {line}"),
            KeyWarningKind::InvalidType { id } => {
                write!(f, "Invalid type in key {id} at line {line}")
            }
            KeyWarningKind::UnsupportedHash { id } => {
                write!(f, "Unsupported hash function in key {id} at line {line}")
            }
            KeyWarningKind::InvalidLength { id, key_type } => write!(
                f,
                "Invalid length of {key_type} key {id} (expected {} bits) at line {line}",
                key_type.cipher_key_len().unwrap_or(0) * 8
            ),
            KeyWarningKind::Undecodable { id } => {
                write!(f, "Could not decode key {id} at line {line}")
            }
            KeyWarningKind::Duplicate { id } => {
                write!(f, "Detected duplicate key {id} at line {line}")
            }
            KeyWarningKind::Insecure { id } => {
                write!(f, "Key {id} is too short (insecure) at line {line}")
            }
        }
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(hex: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = hex.as_bytes();
    if bytes.is_empty() || bytes.len() % 2 != 0 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
    for pair in bytes.chunks_exact(2) {
        out.push((hex_value(pair[0])? << 4) | hex_value(pair[1])?);
    }
    Some(out)
}

/// Type names chrony 4.3 knows but a build without those hashes refuses with "Unsupported
/// hash function in key N" (measured against the installed chronyd; `RMD160` and lower-case
/// names are "Invalid type").
const UNSUPPORTED_HASH_NAMES: [&str; 2] = ["TIGER", "WHIRLPOOL"];

/// Parses one line: `Ok(None)` for blank lines and comments.
fn parse_line(raw: &str) -> Result<Option<Key>, KeyWarningKind> {
    let text = raw.strip_suffix('\r').unwrap_or(raw);
    if text.len() > MAX_LINE_LEN || text.contains('\0') {
        return Err(KeyWarningKind::Unparsable);
    }
    let trimmed = text.trim_start();
    if trimmed.is_empty() || trimmed.starts_with(['#', '%', '!', ';']) {
        return Ok(None);
    }
    let mut fields = trimmed.split_ascii_whitespace();
    let (Some(id_text), Some(second), third, None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(KeyWarningKind::Unparsable);
    };
    let id = match id_text.parse::<u32>() {
        Ok(id) if id_text.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => return Err(KeyWarningKind::Unparsable),
    };
    let (type_name, key_text) = match third {
        Some(k) => (second, k),
        None => ("MD5", second),
    };
    // chronyd decodes the key before it looks at the type (measured: `11 sha1 HEX:zz` is
    // "Could not decode key 11"), and names the hashes it knows but was built without.
    let mut material = if let Some(hex) = key_text.strip_prefix("HEX:") {
        decode_hex(hex).ok_or(KeyWarningKind::Undecodable { id })?
    } else {
        Zeroizing::new(
            key_text
                .strip_prefix("ASCII:")
                .unwrap_or(key_text)
                .as_bytes()
                .to_vec(),
        )
    };
    if material.is_empty() {
        return Err(KeyWarningKind::Undecodable { id });
    }
    let key_type = match KeyType::from_name(type_name) {
        Some(t) => t,
        None if UNSUPPORTED_HASH_NAMES.contains(&type_name) => {
            return Err(KeyWarningKind::UnsupportedHash { id })
        }
        None => return Err(KeyWarningKind::InvalidType { id }),
    };
    match Key::new(id, key_type, std::mem::take(&mut *material)) {
        Ok(key) => Ok(Some(key)),
        Err(KeyError::BadCipherKeyLength { key_type, .. }) => {
            Err(KeyWarningKind::InvalidLength { id, key_type })
        }
        Err(KeyError::Empty) => Err(KeyWarningKind::Undecodable { id }),
    }
}

#[cfg(test)]
mod security_tests;
#[cfg(test)]
mod tests;
