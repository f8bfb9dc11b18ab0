//! The relay's OS layer: its reading of the monotonic clock and its wait for readable sockets
//! (`ppoll(2)`). The only module of this crate that may read the clock (clippy.toml bans
//! `Instant::now` in libraries, whose time is an argument; the relay thread has no caller to
//! take it from) and the only one with `unsafe`: one libc call in [`wait_readable`].
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Longest single wait: a due time further off than this is waited for in several calls, so
/// the timespec can never overflow.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The relay's reading of the monotonic clock.
#[allow(clippy::disallowed_methods)]
pub fn monotonic_now() -> Instant {
    Instant::now()
}

/// Waits until one of `fds` is readable (or has an error pending) or `timeout` passes, and
/// leaves the indexes of the ready ones in `out`: the wait of every impairing relay's thread
/// (this crate's [`Relay`](crate::Relay) and the router relay of gnomond's namespace tests). `ppoll(2)` rather than `poll(2)`: the relay
/// holds datagrams for a few milliseconds, and poll's whole-millisecond timeout would add up
/// to 1 ms to every hold (or spin for the last one). An interrupted wait returns with nothing
/// ready.
pub fn wait_readable(fds: &[RawFd], timeout: Duration, out: &mut Vec<usize>) -> io::Result<()> {
    out.clear();
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timeout = timeout.min(MAX_WAIT);
    let ts = libc::timespec {
        // At most MAX_WAIT seconds and under 1e9 nanoseconds: both fit any time_t and c_long.
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `pfds` is a live array of exactly `pfds.len()` pollfd for the whole call (the
    // kernel writes only their `revents`), `ts` a live timespec it only reads, and a null
    // signal mask keeps the thread's own. A closed descriptor in `fds` is reported as
    // POLLNVAL, never dereferenced.
    let r = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(());
        }
        return Err(e);
    }
    for (i, p) in pfds.iter().enumerate() {
        if p.revents & (libc::POLLIN | libc::POLLERR) != 0 {
            out.push(i);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn wait_reports_only_the_readable_socket_and_times_out_on_none() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let fds = [a.as_raw_fd(), b.as_raw_fd()];
        let mut ready = vec![7];
        let t0 = monotonic_now();
        wait_readable(&fds, Duration::from_millis(20), &mut ready).unwrap();
        assert!(ready.is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(20));
        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        wait_readable(&fds, Duration::from_secs(5), &mut ready).unwrap();
        assert_eq!(ready, [1]);
    }
}
