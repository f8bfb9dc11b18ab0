//! TCP listeners with the options std does not offer: the NTS-KE server's IPv6 socket is
//! IPv6-only (`IPV6_V6ONLY`), so that its IPv4 socket can own the IPv4 side of the port
//! whatever `net.ipv6.bindv6only` says, and `bindaddress` of each family is honoured as chronyd
//! honours it (one socket per family).

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::net::{setsockopt_int, to_sockaddr};

/// Pending connections the kernel queues (chronyd uses a small backlog as well).
const BACKLOG: i32 = 16;

/// Binds `addr` as a non-blocking, close-on-exec listener with SO_REUSEADDR; an IPv6 socket
/// is IPv6-only.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let raw = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(super::last_error());
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let s = fd.as_raw_fd();
    setsockopt_int(s, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for `addr`'s family.
    let r = unsafe { libc::bind(s, (&storage as *const libc::sockaddr_storage).cast(), len) };
    if r != 0 {
        return Err(super::last_error());
    }
    // SAFETY: listen(2) on a descriptor this function owns.
    if unsafe { libc::listen(s, BACKLOG) } != 0 {
        return Err(super::last_error());
    }
    Ok(TcpListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6_available() -> bool {
        std::net::UdpSocket::bind("[::1]:0").is_ok()
    }

    #[test]
    fn ipv6_wildcard_listener_leaves_the_ipv4_port_free() {
        if !v6_available() {
            // No IPv6 in this environment: the IPv4 half is still checked below.
            let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
            assert!(l.local_addr().unwrap().port() != 0);
            return;
        }
        let v6 = listen("[::]:0".parse().unwrap()).unwrap();
        let port = v6.local_addr().unwrap().port();
        // IPv6-only: the same port is still free for an IPv4 listener.
        let v4 = listen(SocketAddr::from(([0, 0, 0, 0], port))).unwrap();
        assert_eq!(v4.local_addr().unwrap().port(), port);
        // Both accept their own family.
        let c4 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let c6 = std::net::TcpStream::connect(("::1", port)).unwrap();
        let mut seen = (false, false);
        for _ in 0..200 {
            if let Ok((_, from)) = v4.accept() {
                assert!(from.is_ipv4());
                seen.0 = true;
            }
            if let Ok((_, from)) = v6.accept() {
                assert!(from.is_ipv6());
                seen.1 = true;
            }
            if seen == (true, true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(seen, (true, true));
        drop((c4, c6));
    }
}
