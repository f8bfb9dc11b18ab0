//! The PID file, as chronyd keeps one: refused when another live process holds it ("Another
//! gnomond may already be running (pid=N), check PATH"), replaced when stale, written as
//! "PID\n", removed on clean exit. Unlike chronyd it is never opened through a symbolic link
//! (O_NOFOLLOW, and a link already at the path is refused), so a writable directory cannot be
//! used to make the daemon clobber another file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// gnomond's default PID file (chrony's path works too when configured with `pidfile`); the
/// configuration crate owns the value.
pub use gnomon_conf::settings::DEFAULT_PIDFILE;

/// Why the PID file could not be taken.
#[derive(Debug)]
pub enum PidFileError {
    /// Another live process's id is in the file.
    AlreadyRunning {
        /// That process.
        pid: i32,
        /// The file.
        path: PathBuf,
    },
    /// The path is a symbolic link.
    Symlink(PathBuf),
    /// Opening, creating or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

impl std::fmt::Display for PidFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidFileError::AlreadyRunning { pid, path } => write!(
                f,
                "Another gnomond may already be running (pid={pid}), check {}",
                path.display()
            ),
            PidFileError::Symlink(path) => write!(
                f,
                "Could not open {} : refusing to follow a symbolic link",
                path.display()
            ),
            PidFileError::Io { path, error } => {
                let text = error.to_string();
                // "No such file or directory (os error 2)" → chronyd's "No such file or directory".
                let text = text.split(" (os error").next().unwrap_or(&text);
                write!(f, "Could not open {} : {text}", path.display())
            }
        }
    }
}

impl std::error::Error for PidFileError {}

/// A PID file this process holds; removed by [`PidFile::remove`] or on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    removed: bool,
}

/// Reads the process id stored at `path`, if it is a regular file holding one.
pub fn read_pid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse().ok()
}

impl PidFile {
    /// Takes the PID file at `path` for process `pid`; `alive` says whether a process exists.
    pub fn acquire(
        path: &Path,
        pid: i32,
        alive: impl Fn(i32) -> bool,
    ) -> Result<PidFile, PidFileError> {
        let io = |error| PidFileError::Io {
            path: path.to_path_buf(),
            error,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(PidFileError::Symlink(path.to_path_buf()))
            }
            Ok(meta) if meta.is_file() => {
                if let Some(other) = read_pid(path) {
                    if other != pid && alive(other) {
                        return Err(PidFileError::AlreadyRunning {
                            pid: other,
                            path: path.to_path_buf(),
                        });
                    }
                }
            }
            Ok(_) => {
                return Err(io(std::io::Error::other("not a regular file")));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    // As chronyd's run directory: the command socket may live here too, and
                    // its directory must not be open to others (command_socket.rs).
                    .mode(0o770)
                    .create(dir)
                    .map_err(io)?;
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    PidFileError::Symlink(path.to_path_buf())
                } else {
                    io(e)
                }
            })?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        writeln!(file, "{pid}").map_err(io)?;
        Ok(PidFile {
            path: path.to_path_buf(),
            removed: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (only if it is still a regular file, never through a link).
    pub fn remove(&mut self) -> std::io::Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_file() => std::fs::remove_file(&self.path),
            _ => Ok(()),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gnomond-pid-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn pidfile_written_and_removed() {
        let dir = temp_dir("write");
        let path = dir.join("sub/g.pid");
        let mut p = PidFile::acquire(&path, 4242, |_| false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
        p.remove().unwrap();
        assert!(!path.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pidfile_of_live_process_is_refused() {
        let dir = temp_dir("live");
        let path = dir.join("g.pid");
        std::fs::write(&path, "77\n").unwrap();
        let err = PidFile::acquire(&path, 4242, |pid| pid == 77).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Another gnomond may already be running (pid=77), check {}",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "77\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stale_pidfile_is_replaced() {
        let dir = temp_dir("stale");
        let path = dir.join("g.pid");
        std::fs::write(&path, "77\n").unwrap();
        let _p = PidFile::acquire(&path, 4242, |_| false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
        drop(_p);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn symlinked_pidfile_is_refused_and_target_untouched() {
        let dir = temp_dir("link");
        let target = dir.join("victim");
        std::fs::write(&target, "keep").unwrap();
        let path = dir.join("g.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = PidFile::acquire(&path, 4242, |_| false).unwrap_err();
        assert!(matches!(err, PidFileError::Symlink(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
