//! The `ntsdumpdir` key file (`ntskeys`, chronyd 4.3's layout, made by
//! `gnomon_core::nts::ServerKeys::dump`): written to a temporary file created 0600 in the same
//! directory and renamed over the old one, so a crash never leaves a partial or readable file;
//! a dump found readable by others is reported, since anyone who can read it can decrypt
//! cookies and impersonate the server to their holders.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The dump's name inside `ntsdumpdir`, as chronyd's.
pub const FILE_NAME: &str = "ntskeys";

/// Longest dump read, octets: a real dump is about 330 octets.
const MAX_LEN: u64 = 64 * 1024;

/// The dump's path in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Writes `text` as `dir/ntskeys` atomically with mode 0600, creating `dir` (0750) if needed.
pub fn write(dir: &Path, text: &str) -> std::io::Result<()> {
    write_file(dir, FILE_NAME, text)
}

/// Writes `text` as `dir/name` atomically with mode 0600, creating `dir` (0750) if needed
/// (also the NTS client's per-server cookie files, client/nts_dump.rs).
pub fn write_file(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)?;
    }
    let tmp = dir.join(format!("{name}.tmp"));
    // A stale temporary file (a crash mid-write) may have other permissions: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What reading the dump found.
#[derive(Debug)]
pub enum Loaded {
    /// No dump yet.
    Missing,
    /// The dump's text and whether others may read it.
    Text {
        /// The file's contents.
        text: String,
        /// Mode has any "other" permission bit.
        world_readable: bool,
    },
}

/// Reads `dir/ntskeys`.
pub fn read(dir: &Path) -> std::io::Result<Loaded> {
    use std::io::Read;
    let p = path(dir);
    let file = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(e),
    };
    let world_readable = file.metadata()?.permissions().mode() & 0o007 != 0;
    let mut bytes = Vec::new();
    file.take(MAX_LEN).read_to_end(&mut bytes)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))?;
    Ok(Loaded::Text {
        text,
        world_readable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("gnomond-ntsdump-{tag}-{}", std::process::id()))
    }

    #[test]
    fn dump_is_written_0600_and_read_back() {
        let dir = temp_dir("rw").join("sub");
        write(&dir, "NKS0\n15 1.0\n").unwrap();
        let mode = std::fs::metadata(path(&dir)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.join("ntskeys.tmp").exists());
        match read(&dir).unwrap() {
            Loaded::Text {
                text,
                world_readable,
            } => {
                assert_eq!(text, "NKS0\n15 1.0\n");
                assert!(!world_readable);
            }
            Loaded::Missing => panic!("dump missing"),
        }
        write(&dir, "NKS0\n15 2.0\n").unwrap();
        assert!(
            matches!(read(&dir).unwrap(), Loaded::Text { text, .. } if text.ends_with("2.0\n"))
        );
        std::fs::remove_dir_all(temp_dir("rw")).unwrap();
    }

    #[test]
    fn world_readable_dump_is_flagged() {
        let dir = temp_dir("wr");
        write(&dir, "x").unwrap();
        std::fs::set_permissions(path(&dir), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read(&dir).unwrap(),
            Loaded::Text {
                world_readable: true,
                ..
            }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_dump_is_not_an_error() {
        assert!(matches!(read(&temp_dir("none")).unwrap(), Loaded::Missing));
    }
}
