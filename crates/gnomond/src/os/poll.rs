//! poll(2): the daemon's single wait point (chronyd's scheduler model; timers are the timeout).

pub use libc::{POLLERR, POLLIN};

/// One descriptor to wait on.
pub type PollFd = libc::pollfd;

/// A poll entry waiting for input on `fd`.
pub fn readable(fd: i32) -> PollFd {
    PollFd {
        fd,
        events: POLLIN,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready or `timeout_ms` passes (-1 = forever). Returns the number
/// of ready descriptors; EINTR is reported as 0 ready so the caller re-checks its signal pipe.
pub fn wait(fds: &mut [PollFd], timeout_ms: i32) -> std::io::Result<usize> {
    // SAFETY: the pointer and length describe the caller's slice of initialised pollfd values,
    // which poll only writes `revents` of.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let err = super::last_error();
        if err.kind() == std::io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(n as usize)
}
