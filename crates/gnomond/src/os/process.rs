//! Process-level calls: identity, privilege drop, capabilities, detaching, scheduling.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// This process's id.
pub fn pid() -> i32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The effective user and group ids of this process.
pub fn effective_ids() -> UserIds {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe {
        UserIds {
            uid: libc::geteuid(),
            gid: libc::getegid(),
        }
    }
}

/// Whether a process with this id exists (kill(pid, 0); EPERM still means it exists).
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check, nothing is delivered.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || super::last_error().raw_os_error() == Some(libc::EPERM)
}

/// A user's uid and primary gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Looks a user up in the password database; `None` when unknown.
pub fn lookup_user(name: &str) -> Option<UserIds> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter; `buf` outlives the call and its length is
    // passed; getpwnam_r writes `result` to either null or `&mut pwd`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if r != 0 || result.is_null() {
            return None;
        }
        Some(UserIds {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        })
    }
}

/// Switches to `ids` for good: supplementary groups cleared to the primary group, then gid, then
/// uid (the order that leaves no way back to root).
pub fn switch_user(ids: UserIds) -> std::io::Result<()> {
    let groups = [ids.gid as libc::gid_t];
    // SAFETY: the group list pointer and length describe a local array; the id calls take plain
    // integers.
    unsafe {
        if libc::setgroups(1, groups.as_ptr()) != 0 {
            return Err(super::last_error());
        }
        if libc::setresgid(ids.gid, ids.gid, ids.gid) != 0 {
            return Err(super::last_error());
        }
        if libc::setresuid(ids.uid, ids.uid, ids.uid) != 0 {
            return Err(super::last_error());
        }
    }
    Ok(())
}

const CAP_SYS_TIME: u32 = 25;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes CAP_SYS_TIME from this process for good: from the bounding set (when permitted) and
/// from the effective, permitted and inheritable sets. With `-x` the daemon must not be able to
/// set the clock even while it stays root.
pub fn drop_sys_time() -> std::io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number; failure (no CAP_SETPCAP) is harmless
    // because the capset below still removes it from the sets this process can use.
    unsafe {
        libc::prctl(
            libc::PR_CAPBSET_DROP,
            CAP_SYS_TIME as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget/capset with version 3 read/write exactly two CapData records, which `data`
    // holds; the header is a valid repr(C) struct matching the kernel's layout.
    unsafe {
        if libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        ) != 0
        {
            return Err(super::last_error());
        }
        let mask = !(1u32 << CAP_SYS_TIME);
        data[0].effective &= mask;
        data[0].permitted &= mask;
        data[0].inheritable &= mask;
        if libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        ) != 0
        {
            return Err(super::last_error());
        }
    }
    Ok(())
}

/// Whether CAP_SYS_TIME is in this process's effective set.
pub fn has_sys_time() -> bool {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: as in `drop_sys_time`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    r == 0 && data[0].effective & (1u32 << CAP_SYS_TIME) != 0
}

/// SCHED_FIFO at `priority` (chronyd's `-P` / `sched_priority`).
pub fn set_fifo_priority(priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(super::last_error());
    }
    Ok(())
}

/// Locks current and future memory (chronyd's `-m` / `lock_all`).
pub fn lock_memory() -> std::io::Result<()> {
    // SAFETY: mlockall takes flags only.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        return Err(super::last_error());
    }
    Ok(())
}

/// The detached daemon's channel to the parent that waits in the foreground: the parent exits
/// with the status (and prints the message) the daemon reports once it has started or failed.
#[derive(Debug)]
pub struct ParentChannel {
    fd: Option<OwnedFd>,
}

impl ParentChannel {
    /// Reports success (status 0) or a fatal message; the parent then exits.
    pub fn report(&mut self, message: Option<&str>) {
        if let Some(fd) = self.fd.take() {
            let text = match message {
                None => "\0".to_string(),
                Some(m) => format!("\x01{m}\n"),
            };
            let bytes = text.as_bytes();
            // SAFETY: writing a local buffer of the stated length to our own pipe end.
            unsafe {
                libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            }
        }
    }
}

/// Detaches like a classic daemon: fork (the parent waits on a pipe and exits with the child's
/// start-up status), setsid, fork again, chdir to /, stdio to /dev/null. Returns in the
/// grandchild only. Must be called while the process is single-threaded.
pub fn daemonize() -> std::io::Result<ParentChannel> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(super::last_error());
    }
    // SAFETY: pipe2 succeeded; we own both descriptors.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the process is single-threaded here (documented precondition), so fork is safe.
    match unsafe { libc::fork() } {
        -1 => return Err(super::last_error()),
        0 => {}
        _ => {
            drop(write);
            let mut status = [0u8; 4096];
            let mut len = 0;
            loop {
                // SAFETY: reading into the unused tail of a local buffer.
                let n = unsafe {
                    libc::read(
                        read.as_raw_fd(),
                        status[len..].as_mut_ptr().cast(),
                        status.len() - len,
                    )
                };
                if n <= 0 || len + n as usize >= status.len() {
                    break;
                }
                len += n as usize;
            }
            let code = match status[..len].first() {
                Some(0) => 0,
                Some(_) => {
                    eprint!("{}", String::from_utf8_lossy(&status[1..len]));
                    1
                }
                None => 1,
            };
            // SAFETY: _exit ends the parent without running the child's shared destructors.
            unsafe { libc::_exit(code) }
        }
    }
    drop(read);
    // SAFETY: setsid/fork/_exit/chdir/open/dup2 with valid arguments; still single-threaded.
    unsafe {
        libc::setsid();
        match libc::fork() {
            -1 => return Err(super::last_error()),
            0 => {}
            _ => libc::_exit(0),
        }
        libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(ParentChannel { fd: Some(write) })
}

/// Sends one message to syslog (facility daemon) at `priority` (LOG_ERR, LOG_INFO, ...).
pub fn syslog(priority: i32, message: &str) {
    static OPENED: std::sync::Once = std::sync::Once::new();
    OPENED.call_once(|| {
        // SAFETY: the ident is a 'static C string, as openlog requires it to stay valid.
        unsafe { libc::openlog(c"gnomond".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) }
    });
    let Ok(text) = CString::new(message.replace('\0', " ")) else {
        return;
    };
    // SAFETY: a constant "%s" format with one valid C string argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) }
}
