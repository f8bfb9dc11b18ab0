//! The client's NTS trust roots from chrony's `ntstrustedcerts [set-ID] file|directory` and
//! `nosystemcert` (chrony.conf 4.3): each directive adds the PEM certificates of a file, or
//! of every regular file in a directory (in name order; a directory's first
//! [`MAX_DIR_FILES`] files by name, the others ignored with a warning), to set `set-ID`
//! (default 0). Set 0
//! also holds the system's trusted CAs unless `nosystemcert`; the other sets start empty. A
//! source picks its set with `certset` (default 0).
//!
//! Unreadable files and files without a certificate are logged and skipped, as chronyd skips
//! them at start; a set left without any root cannot verify anything, so its sources never
//! complete a key exchange (no fallback to unauthenticated NTP).

use gnomon_conf::Settings;
use gnomon_core::nts_client::NtsTrust;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest certificate file read, octets (real bundles are a few hundred kB).
const MAX_CERT_FILE: u64 = 8 << 20;
/// Most files read from one directory (the first ones in name order).
pub const MAX_DIR_FILES: usize = 1024;

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CERT_FILE)
        .read_to_end(&mut data)?;
    Ok(data)
}

/// The files an `ntstrustedcerts` path stands for: itself, or a directory's regular files.
fn files_of(path: &Path) -> Vec<PathBuf> {
    files_within(path, MAX_DIR_FILES)
}

/// [`files_of`] keeping at most `limit` files of a directory: the first ones in name order,
/// whatever order the directory lists them in, so the same directory always gives the same
/// set. Memory stays bounded by `limit` however large the directory is.
fn files_within(path: &Path, limit: usize) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        tracing::warn!("Could not read directory {}", path.display());
        return Vec::new();
    };
    // A max-heap of the `limit` smallest names seen so far.
    let mut kept = std::collections::BinaryHeap::with_capacity(limit.saturating_add(1));
    let mut ignored = 0usize;
    for file in entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
    {
        kept.push(file);
        if kept.len() > limit {
            kept.pop();
            ignored = ignored.saturating_add(1);
        }
    }
    if ignored > 0 {
        tracing::warn!(
            "Ignored {ignored} files of {} beyond the first {limit} in name order",
            path.display()
        );
    }
    kept.into_sorted_vec()
}

/// The `ntstrustedcerts` and `nosystemcert` directives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConfig {
    /// (set, file or directory) in configuration order.
    pub trusted: Vec<(Option<u32>, PathBuf)>,
    /// `nosystemcert`.
    pub no_system: bool,
}

impl TrustConfig {
    /// From the settings.
    pub fn from_settings(settings: &Settings) -> TrustConfig {
        TrustConfig {
            trusted: settings.nts_trusted_certs.clone(),
            no_system: settings.nosystemcert,
        }
    }
}

/// The PEM contents of every readable certificate file, by set.
pub fn trusted_pems(config: &TrustConfig) -> BTreeMap<u32, Vec<Vec<u8>>> {
    let mut sets: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for (set, path) in &config.trusted {
        let entry = sets.entry(set.unwrap_or(0)).or_default();
        for file in files_of(path) {
            match read_bounded(&file) {
                // A single bad file must not make the whole set unusable.
                Ok(pem) if NtsTrust::new(std::slice::from_ref(&pem), false).is_ok() => {
                    entry.push(pem)
                }
                Ok(_) => tracing::warn!("Could not load certificates from {}", file.display()),
                Err(e) => tracing::warn!("Could not read {} : {e}", file.display()),
            }
        }
    }
    sets
}

/// The trust sets: `ntstrustedcerts` files by set, set 0 with the system store unless
/// `nosystemcert`. A set with no root at all is absent.
pub fn trust_sets(config: &TrustConfig) -> BTreeMap<u32, NtsTrust> {
    let mut pems = trusted_pems(config);
    pems.entry(0).or_default();
    pems.into_iter()
        .filter_map(|(set, files)| {
            let system = set == 0 && !config.no_system;
            match NtsTrust::new(&files, system) {
                Ok(t) => Some((set, t)),
                Err(e) => {
                    tracing::debug!("NTS certificate set {set} unusable : {e}");
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lines: &[String]) -> TrustConfig {
        TrustConfig::from_settings(&Settings::from_config(
            &gnomon_conf::load_lines(lines).unwrap(),
        ))
    }

    fn cert(dir: &Path, name: &str) -> PathBuf {
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl: {out:?}");
        std::fs::remove_file(key).unwrap();
        cert
    }

    #[test]
    fn files_directories_and_sets_are_loaded_and_bad_files_skipped() {
        let dir = std::env::temp_dir().join(format!("gnomond-trust-{}", std::process::id()));
        let sub = dir.join("certs");
        std::fs::create_dir_all(&sub).unwrap();
        let a = cert(&dir, "a");
        cert(&sub, "b");
        cert(&sub, "c");
        std::fs::write(sub.join("junk.txt"), "not a certificate").unwrap();
        let s = settings(&[
            "nosystemcert".into(),
            format!("ntstrustedcerts {}", a.display()),
            format!("ntstrustedcerts 5 {}", sub.display()),
            format!("ntstrustedcerts 6 {}", dir.join("missing.pem").display()),
        ]);
        let pems = trusted_pems(&s);
        assert_eq!(pems[&0].len(), 1);
        assert_eq!(pems[&5].len(), 2);
        assert!(pems[&6].is_empty());
        let sets = trust_sets(&s);
        assert!(sets.contains_key(&0) && sets.contains_key(&5));
        // Nothing trusted in set 6, and no system store outside set 0.
        assert!(!sets.contains_key(&6));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directory_over_the_limit_keeps_its_first_files_by_name() {
        let dir = std::env::temp_dir().join(format!("gnomond-trustmax-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        // Created in name order: tmpfs lists the newest first, ext4 in hash order, so the
        // listing order does not give the first names.
        let names: Vec<String> = (0..40).map(|i| format!("f{i:02}.pem")).collect();
        for n in &names {
            std::fs::write(dir.join(n), "x").unwrap();
        }
        let got = files_within(&dir, 5);
        let want: Vec<PathBuf> = (0..5).map(|i| dir.join(format!("f{i:02}.pem"))).collect();
        assert_eq!(got, want);
        // Under the limit: every regular file, in name order, no directory.
        assert_eq!(files_within(&dir, 100).len(), 40);
        assert_eq!(files_within(&dir, 100)[39], dir.join("f39.pem"));
        assert_eq!(files_of(&dir).len(), 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nosystemcert_without_files_leaves_no_set() {
        let s = settings(&["nosystemcert".into()]);
        assert!(trust_sets(&s).is_empty());
    }
}
