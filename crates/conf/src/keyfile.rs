//! Symmetric key file (`keyfile`): lines `ID [TYPE] KEY` (chrony.conf(5) "keyfile").
//!
//! TYPE defaults to MD5; KEY is `HEX:…`, `ASCII:…` or bare ASCII. chronyd warns about and skips
//! lines it cannot use and flags keys shorter than 80 bits as insecure; AES-CMAC keys must have
//! exactly their cipher's length. Comments and blank lines follow the chrony.conf rules.

use crate::location::Location;
use crate::parse::is_comment_or_blank;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// MAC algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    Tiger,
    Whirlpool,
    Rmd128,
    Rmd160,
    Rmd256,
    Rmd320,
    Aes128,
    Aes256,
}

const TYPES: &[(&str, KeyType)] = &[
    ("MD5", KeyType::Md5),
    ("SHA1", KeyType::Sha1),
    ("SHA256", KeyType::Sha256),
    ("SHA384", KeyType::Sha384),
    ("SHA512", KeyType::Sha512),
    ("SHA3-224", KeyType::Sha3_224),
    ("SHA3-256", KeyType::Sha3_256),
    ("SHA3-384", KeyType::Sha3_384),
    ("SHA3-512", KeyType::Sha3_512),
    ("TIGER", KeyType::Tiger),
    ("WHIRLPOOL", KeyType::Whirlpool),
    ("RMD128", KeyType::Rmd128),
    ("RMD160", KeyType::Rmd160),
    ("RMD256", KeyType::Rmd256),
    ("RMD320", KeyType::Rmd320),
    ("AES128", KeyType::Aes128),
    ("AES256", KeyType::Aes256),
];

impl KeyType {
    /// chrony's name of the type.
    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }

    /// Required key length in bytes for CMAC ciphers.
    pub fn fixed_len(self) -> Option<usize> {
        match self {
            KeyType::Aes128 => Some(16),
            KeyType::Aes256 => Some(32),
            _ => None,
        }
    }
}

/// One usable key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub id: u32,
    pub kind: KeyType,
    pub secret: Vec<u8>,
    pub location: Location,
}

impl fmt::Debug for Key {
    // Never print secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Key {{ id: {}, kind: {:?}, bits: {} }}",
            self.id,
            self.kind,
            self.secret.len() * 8
        )
    }
}

impl Key {
    /// chrony warns about keys shorter than 80 bits.
    pub fn is_insecure(&self) -> bool {
        self.secret.len() * 8 < 80
    }
}

/// A problem with one key file line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWarning {
    pub location: Location,
    pub message: String,
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Parsed key file: keys in file order (a later duplicate ID replaces nothing: chrony keeps
/// the first and warns) and warnings for skipped or weak lines.
#[derive(Debug, Clone, Default)]
pub struct KeyFile {
    pub keys: Vec<Key>,
    pub warnings: Vec<KeyWarning>,
}

impl KeyFile {
    pub fn get(&self, id: u32) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// Read a key file from disk; warns (line 0) when other users may read it.
pub fn read_keyfile(path: &Path) -> std::io::Result<KeyFile> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > crate::load::MAX_FILE_BYTES {
        return Err(std::io::Error::other("key file too large"));
    }
    let bytes = std::fs::read(path)?;
    let mut k = parse_keyfile(&String::from_utf8_lossy(&bytes), path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o004 != 0 {
            k.warnings.insert(
                0,
                KeyWarning {
                    location: Location::new(Arc::from(path), 0),
                    message: "Key file is readable by all users (use chmod 640 or 600)".to_string(),
                },
            );
        }
    }
    Ok(k)
}

/// Parse key file text.
pub fn parse_keyfile(text: &str, name: &Path) -> KeyFile {
    let file: Arc<Path> = Arc::from(name);
    let mut out = KeyFile::default();
    for (i, line) in text.lines().enumerate() {
        let location = Location::new(file.clone(), i + 1);
        if line.len() > crate::parse::MAX_LINE_LEN {
            out.warnings.push(KeyWarning {
                location,
                message: "Could not parse key: line too long".to_string(),
            });
            continue;
        }
        // A NUL byte ends the line, as in chronyd's C parser.
        let line = line.split('\0').next().unwrap_or("");
        if is_comment_or_blank(line) {
            continue;
        }
        match parse_key_line(line) {
            Ok(k) => {
                if out.get(k.0).is_some() {
                    out.warnings.push(KeyWarning {
                        location,
                        message: format!("Duplicated key ID {}", k.0),
                    });
                    continue;
                }
                let key = Key {
                    id: k.0,
                    kind: k.1,
                    secret: k.2,
                    location: location.clone(),
                };
                if key.is_insecure() {
                    out.warnings.push(KeyWarning {
                        location,
                        message: format!(
                            "Key {} is too short ({} bits, insecure; use at least 80)",
                            key.id,
                            key.secret.len() * 8
                        ),
                    });
                }
                out.keys.push(key);
            }
            Err(why) => out.warnings.push(KeyWarning {
                location,
                message: format!("Could not parse key: {why}"),
            }),
        }
    }
    out
}

fn parse_key_line(line: &str) -> Result<(u32, KeyType, Vec<u8>), String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let (id, kind, key) = match words.as_slice() {
        [id, key] => (*id, "MD5", *key),
        [id, kind, key] => (*id, *kind, *key),
        _ => return Err("expected `ID [TYPE] KEY`".into()),
    };
    let id: u32 = id.parse().map_err(|_| format!("invalid key ID `{id}`"))?;
    let kind = TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(kind))
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("unknown key type `{kind}`"))?;
    let secret = if let Some(h) = key.strip_prefix("HEX:") {
        decode_hex(h).ok_or("invalid HEX key")?
    } else if let Some(a) = key.strip_prefix("ASCII:") {
        a.as_bytes().to_vec()
    } else {
        key.as_bytes().to_vec()
    };
    if secret.is_empty() {
        return Err("empty key".into());
    }
    if let Some(n) = kind.fixed_len() {
        if secret.len() != n {
            return Err(format!(
                "{} needs a {}-bit key, got {} bits",
                kind.name(),
                n * 8,
                secret.len() * 8
            ));
        }
    }
    Ok((id, kind, secret))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seed_style_keys_and_skips_bad_lines() {
        let text = "# keys\n1 SHA1 HEX:0123456789abcdef0123456789abcdef01234567\n2 SHA256 HEX:$(openssl rand -hex 32)\n3 ASCII:short\n4 AES128 HEX:00\n";
        let k = parse_keyfile(text, Path::new("k.keys"));
        assert_eq!(k.keys.len(), 2);
        assert_eq!(k.get(1).unwrap().kind, KeyType::Sha1);
        assert!(k.get(3).unwrap().is_insecure());
        let msgs: Vec<String> = k.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            msgs[0].starts_with("k.keys:3: Could not parse key"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].starts_with("k.keys:4: Key 3 is too short"),
            "{msgs:?}"
        );
        assert!(msgs[2].contains("AES128 needs a 128-bit key"), "{msgs:?}");
    }

    #[test]
    fn security_case_16_lines_warn_and_valid_keys_load() {
        let long = format!("12 MD5 ASCII:{}", "a".repeat(2040));
        let text = format!(
            "1 MD5 HEX:zz\r\n2 SHA1 HEX:abc\r\n2 SHA256 HEX:\r\n3 FOO HEX:0011\r\n4 AES128 HEX:{}\r\n\
             5 SHA1 HEX:00112233445566778899\r\n5 SHA1 HEX:00112233445566778899\r\n4294967296 MD5 ASCII:abcdefghijkl\r\n\
             6 MD5 HEX:001122334455667788\r\n{long}\r\n7 MD5 ASCII:abcdefghij\0kl\r\n",
            "00".repeat(15)
        );
        let k = parse_keyfile(&text, Path::new("k"));
        let ids: Vec<u32> = k.keys.iter().map(|k| k.id).collect();
        assert_eq!(ids, vec![5, 6, 7]);
        assert!(k.get(6).unwrap().is_insecure(), "9-byte key");
        assert_eq!(k.get(7).unwrap().secret, b"abcdefghij");
        let lines: Vec<usize> = k.warnings.iter().map(|w| w.location.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 7, 8, 9, 10]);
    }

    #[test]
    fn debug_output_hides_secret() {
        let k = parse_keyfile("1 MD5 ASCII:secretsecret", Path::new("k"));
        assert!(!format!("{:?}", k.keys[0]).contains("secret"));
    }
}
