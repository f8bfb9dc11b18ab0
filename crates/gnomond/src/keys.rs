//! The `keyfile` directive and the `rekey` command: reads chrony's symmetric key file with
//! [`gnomon_core::auth::KeyStore::parse`], logs each bad line with chronyd's wording followed by
//! "in file NAME", and hands the keys to the NTP server, whose replies to keyed requests then
//! carry a MAC (`Server::finalize`). `rekey` re-reads the same file; it also asks the NTS-KE
//! service (nts_ke.rs) to reload its externally managed cookie keys.

use gnomon_core::auth::KeyStore;
use gnomon_core::server::Server;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The configured key file, kept for `rekey` (set once at start-up).
static KEY_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Longest key file read, octets: far more than any real file (chrony allows 2047-octet lines
/// and 2^32 IDs, but files hold a handful of keys), so a wrong path cannot exhaust memory.
const MAX_FILE_LEN: u64 = 16 << 20;

/// Why the key file could not be read.
#[derive(Debug)]
pub enum KeyFileError {
    /// open/read failed.
    Io(std::io::Error),
    /// Over [`MAX_FILE_LEN`].
    TooLarge,
}

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFileError::Io(e) => write!(f, "{e}"),
            KeyFileError::TooLarge => write!(f, "file larger than {MAX_FILE_LEN} octets"),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Reads and parses the key file; returns the keys and the warning lines to log
/// (chronyd's wording with " at line N in file NAME").
pub fn read_key_file(path: &Path) -> Result<(KeyStore, Vec<String>), KeyFileError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(KeyFileError::Io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(KeyFileError::Io)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeyFileError::TooLarge);
    }
    // Invalid UTF-8 only affects the lines that hold it: they fail to parse as keys.
    let text = String::from_utf8_lossy(&bytes);
    let (store, warnings) = KeyStore::parse(&text);
    // Zero the raw copy: it holds key material.
    bytes.iter_mut().for_each(|b| *b = 0);
    let lines = warnings
        .iter()
        .map(|w| format!("{w} in file {}", path.display()))
        .collect();
    Ok((store, lines))
}

/// Loads `path` (if set), logging problems, and returns the keys (empty when unreadable, as
/// chronyd then serves no keyed replies).
pub fn load(path: Option<&Path>) -> KeyStore {
    let Some(path) = path else {
        return KeyStore::new();
    };
    match read_key_file(path) {
        Ok((store, warnings)) => {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            tracing::debug!(
                "Loaded {} symmetric keys from {}",
                store.len(),
                path.display()
            );
            store
        }
        Err(e) => {
            tracing::warn!("Could not open keyfile {} : {e}", path.display());
            KeyStore::new()
        }
    }
}

/// Start-up: remembers `keyfile` for `rekey` and gives the server its keys.
pub fn install(path: Option<PathBuf>, server: &mut Server) {
    server.set_keys(load(path.as_deref()));
    let _ = KEY_FILE.set(path);
}

/// The `rekey` command: re-reads the key file, and asks the NTS-KE service to reload its
/// cookie keys when they are managed externally (`ntsrotate 0` with `ntsdumpdir`).
pub fn rekey(server: &mut Server) {
    if let Some(path) = KEY_FILE.get().and_then(Option::as_deref) {
        server.set_keys(load(Some(path)));
    }
    crate::nts_ke::request_reload();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gnomond-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn warnings_name_the_line_and_the_file() {
        let p = temp_file(
            "warn.keys",
            "1 MD5 HEX:0102030405060708090A0B0C0D0E0F10\n2 BOGUS abc\nnonsense\n",
        );
        let (store, warnings) = read_key_file(&p).unwrap();
        assert_eq!(store.len(), 1);
        assert!(store.get(1).is_some());
        assert_eq!(
            warnings,
            vec![
                format!("Invalid type in key 2 at line 2 in file {}", p.display()),
                format!("Could not parse key at line 3 in file {}", p.display()),
            ]
        );
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn missing_file_gives_no_keys() {
        let p = Path::new("/nonexistent/gnomond/keys");
        assert!(matches!(read_key_file(p), Err(KeyFileError::Io(_))));
        assert!(load(Some(p)).is_empty());
        assert!(load(None).is_empty());
    }
}
