//! The `keyfile` directive and the `rekey` command: reads chrony's symmetric key file with
//! [`gnomon_core::auth::KeyStore::parse`], logs each bad line with chronyd's wording followed by
//! "in file NAME", and hands the keys to the NTP server, whose replies to keyed requests then
//! carry a MAC (`Server::finalize`). `rekey` re-reads the same file; it also asks the NTS-KE
//! service (nts_ke.rs) to reload its externally managed cookie keys.
//!
//! The same parsed keys serve the client half (`key N` on `server`/`peer`, client.rs): the
//! file is read once per load and the result shared through [`loaded`], with a generation
//! number that `rekey` advances so that the client's engine picks up the new material.

use gnomon_core::auth::KeyStore;
use gnomon_core::server::Server;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The configured key file, kept for `rekey` (set once at start-up).
static KEY_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The keys last loaded and their generation (0 = nothing loaded yet).
static LOADED: Mutex<(u64, Option<KeyStore>)> = Mutex::new((0, None));

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

/// Records `keys` as the current ones for the client half, advancing the generation.
fn publish(keys: &KeyStore) {
    let mut slot = LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slot.0 = slot.0.wrapping_add(1).max(1);
    slot.1 = Some(keys.clone());
}

/// The generation of the keys last loaded (0 before start-up loaded any): the client compares
/// it with the one it holds to know when `rekey` changed them.
pub fn generation() -> u64 {
    LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .0
}

/// The keys last loaded by [`install`] or [`rekey`] with their generation (empty before).
pub fn loaded() -> (u64, KeyStore) {
    let slot = LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (slot.0, slot.1.clone().unwrap_or_default())
}

/// Start-up: remembers `keyfile` for `rekey` and gives the server (and, through [`loaded`],
/// the client) its keys.
pub fn install(path: Option<PathBuf>, server: &mut Server) {
    let keys = load(path.as_deref());
    publish(&keys);
    server.set_keys(keys);
    let _ = KEY_FILE.set(path);
}

/// The `rekey` command: re-reads the key file, and asks the NTS-KE service to reload its
/// cookie keys when they are managed externally (`ntsrotate 0` with `ntsdumpdir`).
pub fn rekey(server: &mut Server) {
    if let Some(path) = KEY_FILE.get().and_then(Option::as_deref) {
        let keys = load(Some(path));
        publish(&keys);
        server.set_keys(keys);
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
    fn published_keys_reach_the_client_with_a_new_generation() {
        let p = temp_file(
            "pub.keys",
            "7 SHA256 HEX:00112233445566778899AABBCCDDEEFF\n",
        );
        let before = generation();
        let (store, _) = read_key_file(&p).unwrap();
        publish(&store);
        let (gen, keys) = loaded();
        assert!(gen > before);
        assert!(keys.get(7).is_some());
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
