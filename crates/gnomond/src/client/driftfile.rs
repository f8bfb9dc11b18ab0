//! The `driftfile`: the clock's frequency error saved across restarts, as chronyd keeps it.
//! Loaded once at start (garbage, NaN, infinities, out-of-range values and a truncated file
//! are logged and ignored, never trusted); written atomically, a temporary file in the same
//! directory renamed over the old one, so a crash mid-write never leaves a cut file; written
//! at exit and every hour while synchronised (chronyd's default `driftfile` interval).

use gnomon_core::reference::{format_drift, parse_drift, DriftError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Seconds between periodic writes (chronyd writes the drift file hourly by default).
pub const DEFAULT_INTERVAL: f64 = 3600.0;

/// Why the drift file was not used.
#[derive(Debug)]
pub enum LoadError {
    /// It could not be read.
    Read(std::io::Error),
    /// Its content is unusable.
    Content(DriftError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Read(e) => write!(f, "{e}"),
            LoadError::Content(e) => write!(f, "{e}"),
        }
    }
}

/// Reads the drift file: (frequency ppm, skew ppm); `Ok(None)` when it does not exist.
pub fn load(path: &Path, max_drift_ppm: f64) -> Result<Option<(f64, f64)>, LoadError> {
    // A drift file is two numbers: anything much longer is not one.
    const MAX_LEN: u64 = 256;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Read(e)),
    };
    let mut text = String::new();
    use std::io::Read;
    file.take(MAX_LEN)
        .read_to_string(&mut text)
        .map_err(LoadError::Read)?;
    parse_drift(&text, max_drift_ppm)
        .map(Some)
        .map_err(LoadError::Content)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes the drift file atomically: temporary file, fsync, rename.
pub fn save(path: &Path, freq_ppm: f64, skew_ppm: f64) -> std::io::Result<()> {
    if !freq_ppm.is_finite() || !skew_ppm.is_finite() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "drift not finite",
        ));
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format_drift(freq_ppm, skew_ppm).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gnomond-drift-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn saved_drift_loads_back_and_leaves_no_temp_file() {
        let d = dir("rt");
        let p = d.join("drift");
        save(&p, -12.345678, 0.25).unwrap();
        let (f, s) = load(&p, 500.0).unwrap().unwrap();
        assert!((f + 12.345678).abs() < 1e-6 && (s - 0.25).abs() < 1e-6);
        assert!(!temp_path(&p).exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn garbage_nan_and_truncated_files_are_refused() {
        let d = dir("bad");
        let p = d.join("drift");
        for bad in ["garbage\n", "nan 1.0\n", "inf 0.1\n", "12.5", "1e9 1\n"] {
            std::fs::write(&p, bad).unwrap();
            assert!(
                matches!(load(&p, 500.0), Err(LoadError::Content(_))),
                "{bad:?}"
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_file_is_not_an_error_and_nan_is_never_written() {
        let d = dir("none");
        let p = d.join("drift");
        assert!(load(&p, 500.0).unwrap().is_none());
        assert!(save(&p, f64::NAN, 1.0).is_err());
        assert!(!p.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
