//! The command (cmdmon) transports, opened as chronyd opens them (chrony.conf(5)
//! `bindcmdaddress`, `cmdport`):
//!
//! * a Unix datagram socket (default `/run/gnomond/gnomond.sock`, `bindcmdaddress
//!   /path` to move it, e.g. to chronyd's `/var/run/chrony/chronyd.sock` for drop-in use;
//!   `bindcmdaddress /` disables it). Its directory is created (mode 0770, owned by the user the
//!   daemon runs as) when missing; an existing one must be a real directory (never a symlink),
//!   owned by that user and group, with no permission bits beyond 0770, else the socket is disabled with
//!   an error, as chronyd does. An existing socket file at the path is replaced; anything else
//!   there is left alone and the socket disabled. The file is removed at exit.
//! * UDP sockets on `cmdport` (default 323; 0 disables) bound to the `bindcmdaddress` IPs
//!   (default 127.0.0.1 and ::1), each optional: a failure is logged and skipped.

use crate::cli::Family;
use gnomon_conf::Settings;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Largest datagram read: one more than the largest request, so that an oversized one is seen
/// as such (and dropped) rather than silently truncated to a valid length.
pub const RECV_MAX: usize = gnomon_cmdmon::MAX_REQUEST_LEN + 1;

/// Where a command came from, which decides what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A client on the Unix socket (every command allowed), bound to this path (a client
    /// without a path cannot be answered).
    Unix(Option<PathBuf>),
    /// A client over UDP (monitoring subset, access rules, rate limit).
    Udp(SocketAddr),
}

/// Why the Unix socket was not opened.
#[derive(Debug)]
pub enum UnixSocketError {
    /// The directory is a symbolic link.
    DirSymlink(PathBuf),
    /// The directory path is not a directory.
    NotDirectory(PathBuf),
    /// The directory allows more than 0770.
    DirPermissions(PathBuf),
    /// The directory is owned by another user.
    DirOwner(PathBuf, u32),
    /// The directory belongs to another group.
    DirGroup(PathBuf, u32),
    /// Something that is not a socket is at the socket path.
    NotSocket(PathBuf),
    /// A system call failed.
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for UnixSocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnixSocketError::DirSymlink(d) => write!(f, "{} is a symbolic link", d.display()),
            UnixSocketError::NotDirectory(d) => write!(f, "{} is not directory", d.display()),
            UnixSocketError::DirPermissions(d) => {
                write!(f, "Wrong permissions on {}", d.display())
            }
            UnixSocketError::DirOwner(d, uid) => {
                write!(f, "Wrong owner of {} (UID != {uid})", d.display())
            }
            UnixSocketError::DirGroup(d, gid) => {
                write!(f, "Wrong group of {} (GID != {gid})", d.display())
            }
            UnixSocketError::NotSocket(p) => {
                write!(f, "{} exists and is not a socket", p.display())
            }
            UnixSocketError::Io(p, e) => write!(f, "Could not bind {} : {e}", p.display()),
        }
    }
}

impl std::error::Error for UnixSocketError {}

/// One command socket.
#[derive(Debug)]
pub enum CommandSocket {
    /// The Unix socket and its path (removed on drop).
    Unix(UnixDatagram, PathBuf),
    /// A UDP socket.
    Udp(std::net::UdpSocket),
}

impl CommandSocket {
    /// The descriptor, for the poll set.
    pub fn fd(&self) -> i32 {
        match self {
            CommandSocket::Unix(s, _) => s.as_raw_fd(),
            CommandSocket::Udp(s) => s.as_raw_fd(),
        }
    }

    /// Reads one datagram into `buf`; `Ok(None)` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<(usize, Peer)>> {
        let r = match self {
            CommandSocket::Unix(s, _) => s
                .recv_from(buf)
                .map(|(n, a)| (n, Peer::Unix(a.as_pathname().map(Path::to_path_buf)))),
            CommandSocket::Udp(s) => s.recv_from(buf).map(|(n, a)| (n, Peer::Udp(a))),
        };
        match r {
            Ok(x) => Ok(Some(x)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `reply` back to `peer`.
    pub fn send(&self, reply: &[u8], peer: &Peer) -> std::io::Result<()> {
        match (self, peer) {
            (CommandSocket::Unix(s, _), Peer::Unix(Some(path))) => s.send_to(reply, path)?,
            (CommandSocket::Udp(s), Peer::Udp(addr)) => s.send_to(reply, addr)?,
            _ => return Ok(()),
        };
        Ok(())
    }
}

impl Drop for CommandSocket {
    fn drop(&mut self) {
        if let CommandSocket::Unix(_, path) = self {
            // Only our socket: if something else replaced it meanwhile, leave it.
            if std::fs::symlink_metadata(&*path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(&*path);
            }
        }
    }
}

/// Checks (or creates) the socket's directory as chronyd does: owned by `uid` and `gid`,
/// nothing beyond 0770, never through a symbolic link.
pub fn prepare_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), UnixSocketError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o770)
                .create(dir)
                .map_err(|e| UnixSocketError::Io(dir.to_path_buf(), e))?;
            std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
                .map_err(|e| UnixSocketError::Io(dir.to_path_buf(), e))?;
            // Re-check what was created: a racing process could have put a link there.
            check_dir(dir, uid, gid)
        }
        Err(e) => Err(UnixSocketError::Io(dir.to_path_buf(), e)),
        Ok(_) => check_dir(dir, uid, gid),
    }
}

fn check_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), UnixSocketError> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| UnixSocketError::Io(dir.into(), e))?;
    if m.file_type().is_symlink() {
        return Err(UnixSocketError::DirSymlink(dir.into()));
    }
    if !m.is_dir() {
        return Err(UnixSocketError::NotDirectory(dir.into()));
    }
    if m.mode() & 0o777 & !0o770 != 0 {
        return Err(UnixSocketError::DirPermissions(dir.into()));
    }
    if m.uid() != uid {
        return Err(UnixSocketError::DirOwner(dir.into(), uid));
    }
    if m.gid() != gid {
        return Err(UnixSocketError::DirGroup(dir.into(), gid));
    }
    Ok(())
}

/// Opens the Unix command socket at `path`, for a daemon that will run as `uid`/`gid`.
pub fn open_unix(path: &Path, uid: u32, gid: u32) -> Result<CommandSocket, UnixSocketError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    prepare_dir(dir, uid, gid)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| UnixSocketError::Io(path.into(), e))?
        }
        Ok(_) => return Err(UnixSocketError::NotSocket(path.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(UnixSocketError::Io(path.into(), e)),
    }
    let sock = UnixDatagram::bind(path).map_err(|e| UnixSocketError::Io(path.into(), e))?;
    sock.set_nonblocking(true)
        .map_err(|e| UnixSocketError::Io(path.into(), e))?;
    Ok(CommandSocket::Unix(sock, path.to_path_buf()))
}

/// Opens every command socket the settings ask for; failures are logged and skipped, as
/// chronyd does. `owner` is the uid/gid the daemon will run as.
pub fn open_all(
    settings: &Settings,
    family: Option<Family>,
    owner: (u32, u32),
) -> Vec<CommandSocket> {
    let mut sockets = Vec::new();
    if let Some(path) = &settings.cmd_socket {
        match open_unix(path, owner.0, owner.1) {
            Ok(s) => {
                tracing::debug!("Opened Unix command socket {}", path.display());
                sockets.push(s);
            }
            Err(e) => {
                tracing::error!("{e}");
                tracing::error!("Disabled command socket {}", path.display());
            }
        }
    }
    if settings.cmdport == 0 {
        return sockets;
    }
    for ip in &settings.bind_cmd_addresses {
        let skip = match family {
            Some(Family::V4) => ip.is_ipv6(),
            Some(Family::V6) => ip.is_ipv4(),
            None => false,
        };
        if skip {
            continue;
        }
        let addr = SocketAddr::new(*ip, settings.cmdport);
        match crate::os::net::UdpSocket::bind(addr) {
            Ok(s) => {
                tracing::debug!("Opened command socket on {addr}");
                sockets.push(CommandSocket::Udp(s.into_std()));
            }
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
            Err(e) => tracing::error!("Could not open command socket on {addr} : {e}"),
        }
    }
    sockets
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gnomond-cs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Our uid and gid, as the owner of a file we create.
    fn me() -> (u32, u32) {
        let probe = tmp("me");
        let o = std::fs::metadata(&probe).unwrap();
        std::fs::remove_dir_all(&probe).unwrap();
        (o.uid(), o.gid())
    }

    #[test]
    fn missing_directory_is_created_0770_and_socket_removed_on_drop() {
        let (uid, gid) = me();
        let base = tmp("create");
        let path = base.join("run/sub/cmd.sock");
        let s = open_unix(&path, uid, gid).unwrap();
        let m = std::fs::symlink_metadata(base.join("run/sub")).unwrap();
        assert_eq!(m.mode() & 0o007, 0, "no access for others");
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket());
        drop(s);
        assert!(!path.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn world_readable_directory_and_symlinks_are_refused() {
        let (uid, gid) = me();
        let base = tmp("perm");
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            open_unix(&open.join("s.sock"), uid, gid),
            Err(UnixSocketError::DirPermissions(_))
        ));
        let real = base.join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o750)).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            open_unix(&link.join("s.sock"), uid, gid),
            Err(UnixSocketError::DirSymlink(_))
        ));
        assert!(matches!(
            open_unix(&real.join("s.sock"), uid.wrapping_add(1), gid),
            Err(UnixSocketError::DirOwner(..))
        ));
        assert!(matches!(
            open_unix(&real.join("s.sock"), uid, gid.wrapping_add(1)),
            Err(UnixSocketError::DirGroup(..))
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_regular_file_at_the_path_is_never_unlinked() {
        let (uid, gid) = me();
        let base = tmp("file");
        let dir = base.join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let path = dir.join("s.sock");
        std::fs::write(&path, "keep").unwrap();
        assert!(matches!(
            open_unix(&path, uid, gid),
            Err(UnixSocketError::NotSocket(_))
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
        // A stale socket, on the other hand, is replaced.
        std::fs::remove_file(&path).unwrap();
        let stale = UnixDatagram::bind(&path).unwrap();
        drop(stale);
        let s = open_unix(&path, uid, gid).unwrap();
        drop(s);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
