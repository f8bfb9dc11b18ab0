//! The bench's OS layer: batched UDP receive and send (`recvmmsg(2)` / `sendmmsg(2)`), kernel
//! receive timestamps (`SO_TIMESTAMPNS`), `poll(2)`, CPU pinning (`sched_setaffinity(2)`), the
//! open-files limit and TCP connections from a chosen loopback address (the NTS-KE flood).
//!
//! This is the only module of the bench that uses `unsafe`: every block is a single libc call on
//! buffers owned by the struct that makes the call, rebuilt just before the call so no pointer
//! outlives the borrow it was taken from.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;

/// Largest datagram the bench reads; NTP packets with a MAC or a few extension fields fit.
pub const BUF_LEN: usize = 512;
/// Room for one SO_TIMESTAMPNS control message (aligned as the kernel wants it).
const CMSG_WORDS: usize = 8;

/// A set of receive buffers for one `recvmmsg` call, reusable for sending replies in place.
pub struct Batch {
    bufs: Vec<[u8; BUF_LEN]>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    cmsgs: Vec<[u64; CMSG_WORDS]>,
    rx_ts: Vec<Option<(i64, i64)>>,
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
}

impl Batch {
    /// Buffers for up to `n` datagrams per call.
    pub fn new(n: usize) -> Batch {
        // SAFETY: sockaddr_storage and mmsghdr are plain C structs for which all-zero is valid.
        let zero_addr: libc::sockaddr_storage = unsafe { zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        Batch {
            bufs: vec![[0u8; BUF_LEN]; n],
            lens: vec![0; n],
            addrs: vec![zero_addr; n],
            addr_lens: vec![0; n],
            cmsgs: vec![[0u64; CMSG_WORDS]; n],
            rx_ts: vec![None; n],
            hdrs: vec![zero_hdr; n],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                n
            ],
        }
    }

    /// How many datagrams one call handles.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// Buffer `i` (for filling before [`Batch::send`], or reading after [`Batch::recv`]).
    pub fn buf_mut(&mut self, i: usize) -> &mut [u8; BUF_LEN] {
        &mut self.bufs[i]
    }

    /// The datagram received into slot `i`.
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.lens[i].min(BUF_LEN)]
    }

    /// Kernel receive timestamp of slot `i` (seconds, nanoseconds since the Unix epoch).
    pub fn rx_timestamp(&self, i: usize) -> Option<(i64, i64)> {
        self.rx_ts[i]
    }

    /// Sets the length of the datagram in slot `i` (for sending).
    pub fn set_len(&mut self, i: usize, len: usize) {
        self.lens[i] = len.min(BUF_LEN);
    }

    fn build(&mut self, n: usize, with_addr: bool, with_cmsg: bool, for_recv: bool) {
        for i in 0..n {
            self.iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            self.iovs[i].iov_len = if for_recv { BUF_LEN } else { self.lens[i] };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            if with_addr {
                h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = if for_recv {
                    size_of::<libc::sockaddr_storage>() as libc::socklen_t
                } else {
                    self.addr_lens[i]
                };
            } else {
                h.msg_name = std::ptr::null_mut();
                h.msg_namelen = 0;
            }
            if with_cmsg {
                h.msg_control = self.cmsgs[i].as_mut_ptr().cast();
                h.msg_controllen = (CMSG_WORDS * 8) as _;
            } else {
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
            }
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
    }

    /// Receives up to `capacity()` datagrams without blocking. Returns how many arrived (0 when
    /// the socket had none). With `with_addr` the sources are kept for [`Batch::send_back`]; with
    /// `with_ts` the kernel receive timestamps are parsed.
    pub fn recv(&mut self, fd: RawFd, with_addr: bool, with_ts: bool) -> io::Result<usize> {
        let n = self.capacity();
        self.build(n, with_addr, with_ts, true);
        // SAFETY: hdrs[..n] point into buffers owned by self, valid for the whole call.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        let got = r as usize;
        for i in 0..got {
            self.lens[i] = self.hdrs[i].msg_len as usize;
            self.addr_lens[i] = self.hdrs[i].msg_hdr.msg_namelen;
            self.rx_ts[i] = if with_ts {
                self.parse_timestamp(i)
            } else {
                None
            };
        }
        Ok(got)
    }

    fn parse_timestamp(&self, i: usize) -> Option<(i64, i64)> {
        let h = &self.hdrs[i].msg_hdr;
        // SAFETY: the CMSG_* macros walk the control buffer the kernel just filled, bounded by
        // msg_controllen; the timespec is read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                    let ts: libc::timespec =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                    return Some((ts.tv_sec, ts.tv_nsec));
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        None
    }

    /// Sends slots `0..n` (lengths set by [`Batch::set_len`]) on a connected socket, or back to
    /// their sources when `to_sources`. Returns how many the kernel took (fewer when its buffer
    /// is full).
    pub fn send(&mut self, fd: RawFd, n: usize, to_sources: bool) -> io::Result<usize> {
        let n = n.min(self.capacity());
        self.build(n, to_sources, false, false);
        let mut done = 0usize;
        while done < n {
            // SAFETY: hdrs[done..n] point into buffers owned by self, valid for the whole call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(done),
                    io::ErrorKind::Interrupted => continue,
                    // A reply to a client that went away is not the responder's problem.
                    io::ErrorKind::ConnectionRefused => {
                        done += 1;
                        continue;
                    }
                    _ => Err(e),
                };
            }
            if r == 0 {
                break;
            }
            done += r as usize;
        }
        Ok(done)
    }

    /// Sends slots `0..n` back to the addresses they were received from.
    pub fn send_back(&mut self, fd: RawFd, n: usize) -> io::Result<usize> {
        self.send(fd, n, true)
    }
}

/// Turns on kernel receive timestamps in nanoseconds (`SO_TIMESTAMPNS`).
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads an int from a live stack variable.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the socket's receive buffer size (bytes); the kernel may cap it at `rmem_max`.
pub fn set_rcvbuf(fd: RawFd, bytes: usize) -> io::Result<()> {
    let v: libc::c_int = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt reads an int from a live stack variable.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set by the SIGINT/SIGTERM handler [`catch_interrupts`] installs.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    // Only an atomic store: the one kind of work that is async-signal-safe.
    INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM set a flag ([`interrupted`]) instead of killing the process, so a
/// long bench (`sync`) can stop between steps and let its Drop guards kill its daemons by PID
/// and remove its temporary directories.
pub fn catch_interrupts() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is a plain C struct for which all-zero is valid; the handler only
        // stores to an atomic; sa and the empty mask live across the calls.
        let r = unsafe {
            let mut sa: libc::sigaction = zeroed();
            sa.sa_sigaction = note_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(signal, &sa, std::ptr::null_mut())
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`catch_interrupts`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// An epoll set: the generator watches many sockets, and epoll's cost grows with the number of
/// ready sockets rather than with all of them (poll's), which keeps the generator cheap per reply.
pub struct Epoll {
    fd: std::os::fd::OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new, empty set.
    pub fn new(max_events: usize) -> io::Result<Epoll> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 has no memory arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let zero = libc::epoll_event { events: 0, u64: 0 };
        Ok(Epoll {
            fd,
            events: vec![zero; max_events.max(1)],
        })
    }

    /// Watches `fd` for input, reporting it as `token`.
    pub fn add(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token as u64,
        };
        // SAFETY: ev is a live stack value for the whole call.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` and puts the tokens of the readable descriptors in `out`.
    pub fn wait(&mut self, timeout_ms: i32, out: &mut Vec<usize>) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        out.clear();
        // SAFETY: events is a live array of the length passed.
        let r = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as libc::c_int,
                timeout_ms,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        for ev in &self.events[..r as usize] {
            out.push(ev.u64 as usize);
        }
        Ok(())
    }
}

/// CPU time (user + system) this process has used, in seconds.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: rusage is a plain C struct written by the call.
    let mut ru: libc::rusage = unsafe { zeroed() };
    // SAFETY: ru is live for the whole call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } < 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sets this process's nice value (negative = higher priority; needs root).
pub fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority has no memory arguments.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts this process in the SCHED_FIFO class at `priority` (1..=99; needs root). The kernel's
/// RT throttling (sched_rt_runtime_us) still leaves the rest of the machine 5 % of each CPU.
pub fn set_fifo(priority: i32) -> io::Result<()> {
    let p = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: p is a live stack value for the whole call.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; CPU_SET writes inside it; the call reads it.
    unsafe {
        let mut set: libc::cpu_set_t = zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Clock ticks per second for /proc/PID/stat's utime and stime.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let r = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if r > 0 {
        r as u64
    } else {
        100
    }
}

/// Converts a stored source address back into a `SocketAddr`.
#[cfg(test)]
fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

impl Batch {
    /// Moves slot `from`'s source address to slot `to` (to compact replies before sending).
    pub fn copy_source(&mut self, from: usize, to: usize) {
        self.addrs[to] = self.addrs[from];
        self.addr_lens[to] = self.addr_lens[from];
    }

    /// Source address of slot `i` after a [`Batch::recv`] with `with_addr`.
    #[cfg(test)]
    pub fn source(&self, i: usize) -> Option<std::net::SocketAddr> {
        sockaddr_to_std(&self.addrs[i])
    }
}

/// The bench's one reading of the monotonic clock (the workspace bans `Instant::now` elsewhere).
#[allow(clippy::disallowed_methods)]
pub fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// The bench's one reading of the real-time clock: (Unix seconds, nanoseconds).
#[allow(clippy::disallowed_methods)]
pub fn realtime_now() -> (i64, u32) {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

/// Raises this process's RLIMIT_NOFILE soft limit to `want` (at most the hard limit);
/// returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a struct owned by this frame.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        let old = lim.rlim_cur;
        lim.rlim_cur = want.min(lim.rlim_max);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return old;
        }
    }
    lim.rlim_cur
}

/// Starts a non-blocking TCP connection from loopback address `src` to `dst` (any 127/8
/// address is local on Linux's loopback, so one process plays many clients). The connection
/// completes in the background; the descriptor is owned by the returned stream.
pub fn connect_from(
    src: std::net::Ipv4Addr,
    dst: std::net::SocketAddr,
) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(dst) = dst else {
        return Err(io::ErrorKind::Unsupported.into());
    };
    let sin = |a: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    };
    let (local, remote) = (sin(src, 0), sin(*dst.ip(), dst.port()));
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: socket calls on a descriptor this function owns; the sockaddr structs live across
    // the calls and `len` is their size. The descriptor goes to a TcpStream (which closes it) as
    // soon as it exists, so every error path below closes it too.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = std::net::TcpStream::from_raw_fd(fd);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        Ok(stream)
    }
}

/// Makes the child `cmd` starts receive SIGKILL when the bench dies, so that daemons started
/// for a run cannot outlive a bench killed with SIGKILL (its Drop guards then never run). The
/// flag survives `noclock`'s exec of the daemon (the parent-death signal is kept across
/// execve unless the credentials change; `-u root` changes none).
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn batch_round_trips_datagrams_with_timestamps_and_sources() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        enable_rx_timestamps(b.as_raw_fd()).unwrap();
        let mut tx = Batch::new(4);
        for i in 0..3 {
            tx.buf_mut(i)[0] = i as u8 + 1;
            tx.set_len(i, 48);
        }
        assert_eq!(tx.send(a.as_raw_fd(), 3, false).unwrap(), 3);
        let mut rx = Batch::new(8);
        let mut got = 0;
        for _ in 0..100 {
            got += rx.recv(b.as_raw_fd(), true, true).unwrap();
            if got == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, 3);
        assert_eq!(rx.packet(2)[0], 3);
        assert_eq!(rx.packet(0).len(), 48);
        assert!(rx.rx_timestamp(0).unwrap().0 > 1_600_000_000);
        assert_eq!(rx.source(1), Some(a.local_addr().unwrap()));
        // Echo them back in place: the sources come from the receive.
        assert_eq!(rx.send_back(b.as_raw_fd(), 3).unwrap(), 3);
        let mut buf = [0u8; 64];
        a.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 48);
        assert_eq!(buf[0], 1);
    }
}
