//! Shutdown signals through a self-pipe: the handler writes the signal number into a
//! non-blocking pipe whose read end sits in the poll set (SIGTERM, SIGINT, SIGQUIT and SIGHUP all
//! make chronyd exit cleanly; so do we).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte. A full pipe only
        // loses a duplicate notification, which is harmless.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// The read end of the self-pipe; keeps the write end alive as long as it lives.
#[derive(Debug)]
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Creates the pipe and installs handlers for the shutdown signals; ignores SIGPIPE.
    pub fn install() -> std::io::Result<SignalPipe> {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(super::last_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
            set_handler(sig, on_signal as *const () as libc::sighandler_t)?;
        }
        set_handler(libc::SIGPIPE, libc::SIG_IGN)?;
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    /// The descriptor to poll for input.
    pub fn fd(&self) -> i32 {
        self.read.as_raw_fd()
    }

    /// Reads pending notifications; returns the last signal received, if any.
    pub fn take(&self) -> Option<i32> {
        let mut buf = [0u8; 16];
        let mut last = None;
        loop {
            // SAFETY: reading into a local buffer of the stated length from our own pipe.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return last;
            }
            last = Some(i32::from(buf[n as usize - 1]));
        }
    }
}

fn set_handler(sig: i32, handler: libc::sighandler_t) -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags); we then set the handler,
    // which is either SIG_IGN or an extern "C" fn that only calls async-signal-safe write(2).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(super::last_error());
        }
    }
    Ok(())
}
