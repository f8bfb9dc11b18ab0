//! UDP sockets with kernel receive timestamps (SO_TIMESTAMPNS) and batched I/O
//! (recvmmsg/sendmmsg), as the NTP server path needs: one syscall per batch in each direction,
//! no allocation per datagram. Wildcard sockets also ask for the destination address
//! (IP_PKTINFO / IPV6_RECVPKTINFO) so a reply leaves from the address the request reached, as
//! chronyd does on multi-homed hosts.
//!
//! Client and peer sockets can also ask for kernel software transmit timestamps
//! ([`UdpSocket::enable_tx_timestamps`], SO_TIMESTAMPING with SOF_TIMESTAMPING_TX_SOFTWARE, as
//! chronyd 4.3 does on Linux): the kernel loops each sent datagram back on the socket's error
//! queue with the time the driver handed it to the device, read without blocking by
//! [`UdpSocket::recv_tx_timestamps`] (a non-empty error queue makes poll(2) report POLLERR).
//!
//! Server sockets ask for them per datagram instead ([`TxBatch::request_tx_timestamp`]: an
//! SO_TIMESTAMPING control message on that one sendmmsg entry, Linux ≥ 4.13), after
//! [`UdpSocket::enable_tx_timestamp_reports`]: only the responses to interleaved-mode clients
//! are stamped, so serving everyone else costs nothing more.

use super::clock::TimeSpec;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Datagrams per recvmmsg/sendmmsg call.
pub const BATCH: usize = 64;
/// Receive buffer per datagram; longer datagrams are reported as truncated.
pub const DATAGRAM_MAX: usize = 2048;
/// Control-message space per datagram (timestamp + pktinfo, with headers and padding). With
/// transmit timestamps enabled the kernel adds an SCM_TIMESTAMPING message (64 bytes) to every
/// received datagram as well: 32 + 40 + 64 bytes with IPv6 pktinfo, so 192 bytes leave room.
const CONTROL_WORDS: usize = 24;
/// Error-queue entries read per [`UdpSocket::recv_tx_timestamps`] call (one per datagram sent
/// since the last read: a client socket sends one, a peer socket one per poll).
pub const TX_STAMPS_MAX: usize = 8;
/// Looped-back bytes kept per transmit timestamp: link, IP and UDP headers plus an NTP header
/// with room for a MAC (the payload identifies the datagram; NTS fields past it are not needed).
const TX_LOOP_MAX: usize = 256;
/// `SCM_TSTAMP_SND` (linux/errqueue.h): the stamp taken when the datagram left through the
/// driver, as opposed to the scheduler or acknowledgement stamps, which are not asked for.
const SCM_TSTAMP_SND: u32 = 0;

/// A bound, non-blocking UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
    local: SocketAddr,
}

pub(super) fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: the option value is a local c_int whose size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(super::last_error());
    }
    Ok(())
}

impl UdpSocket {
    /// Opens and binds a UDP socket on `addr` with receive timestamps enabled. IPv6 sockets are
    /// IPv6-only so that an IPv4 socket can share the port.
    pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
        let v6 = addr.is_ipv6();
        let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                domain,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
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
        setsockopt_int(s, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        let pktinfo = addr.ip().is_unspecified();
        if v6 {
            setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
            if pktinfo {
                setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
            }
        } else if pktinfo {
            setsockopt_int(s, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        }
        let (storage, len) = to_sockaddr(addr);
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes for this socket's family.
        let r = unsafe { libc::bind(s, (&storage as *const libc::sockaddr_storage).cast(), len) };
        if r != 0 {
            return Err(super::last_error());
        }
        let local = local_addr(s).unwrap_or(addr);
        Ok(UdpSocket { fd, local })
    }

    /// The descriptor, for the poll set.
    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The bound address (with the kernel-chosen port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The same socket as a standard-library one (still non-blocking), for the command
    /// port, whose datagrams are few and need neither batching nor timestamps.
    pub fn into_std(self) -> std::net::UdpSocket {
        std::net::UdpSocket::from(self.fd)
    }

    /// Connects the socket to `addr` (connect(2) on a datagram socket): from then on the
    /// kernel delivers it only datagrams from `addr`, and [`UdpSocket::send`] goes there. The
    /// socket keeps its receive timestamps, so an [`RxBatch`] still stamps what it reads.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<()> {
        let (storage, len) = to_sockaddr(addr);
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes for `addr`'s family; a
        // mismatched family is rejected by the kernel with an error, not undefined behaviour.
        let r = unsafe {
            libc::connect(
                self.fd.as_raw_fd(),
                (&storage as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if r != 0 {
            return Err(super::last_error());
        }
        Ok(())
    }

    /// The local address as the kernel has it now (getsockname): after [`UdpSocket::connect`]
    /// a wildcard-bound socket has the address of the interface towards the remote, which
    /// [`UdpSocket::local_addr`] (the address bound) does not show.
    pub fn current_local_addr(&self) -> std::io::Result<SocketAddr> {
        local_addr(self.fd.as_raw_fd()).ok_or_else(super::last_error)
    }

    /// Sends `data` to the connected address without blocking; returns the bytes sent.
    pub fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        // SAFETY: `data` is a live slice whose pointer and length are passed together.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(super::last_error());
        }
        Ok(n as usize)
    }

    /// Asks the kernel for a software transmit timestamp of every datagram this socket sends
    /// (SO_TIMESTAMPING: SOF_TIMESTAMPING_TX_SOFTWARE generates it when the driver takes the
    /// datagram, SOF_TIMESTAMPING_SOFTWARE reports it). Receive timestamps (SO_TIMESTAMPNS)
    /// keep working. Each stamp comes back on the error queue with the datagram itself: read
    /// them with [`UdpSocket::recv_tx_timestamps`] (poll reports POLLERR until they are).
    pub fn enable_tx_timestamps(&self) -> std::io::Result<()> {
        let flags = libc::SOF_TIMESTAMPING_TX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
        setsockopt_int(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            flags as i32,
        )
    }

    /// Lets the socket report software timestamps (SO_TIMESTAMPING with
    /// SOF_TIMESTAMPING_SOFTWARE) without generating any: transmit stamps are then asked for per
    /// datagram ([`TxBatch::request_tx_timestamp`]) and read with
    /// [`UdpSocket::recv_tx_timestamps`]. SOF_TIMESTAMPING_OPT_RX_FILTER (Linux ≥ 6.12) keeps
    /// the kernel from adding an SCM_TIMESTAMPING message to every received datagram; older
    /// kernels refuse the flag and are asked without it (the control space has room for it).
    pub fn enable_tx_timestamp_reports(&self) -> std::io::Result<()> {
        let fd = self.fd.as_raw_fd();
        let flags = libc::SOF_TIMESTAMPING_SOFTWARE;
        let filtered = flags | libc::SOF_TIMESTAMPING_OPT_RX_FILTER;
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, filtered as i32)
            .or_else(|_| setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags as i32))
    }

    /// Reads the error queue without blocking and returns the transmit timestamps in it, oldest
    /// first, at most [`TX_STAMPS_MAX`] per call. Other entries (none are expected: IP_RECVERR
    /// is not set) are read and dropped, as are stamps whose looped-back datagram cannot be
    /// parsed. An error is returned only when nothing could be read.
    pub fn recv_tx_timestamps(&self) -> std::io::Result<Vec<TxTimestamp>> {
        let mut out = Vec::new();
        let mut reads = 0;
        while reads < TX_STAMPS_MAX {
            reads += 1;
            match recv_error_entry(self.fd.as_raw_fd()) {
                Ok(Some(entry)) => out.extend(entry),
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

/// A transmit timestamp the kernel looped back on a socket's error queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxTimestamp {
    /// When the driver took the datagram (CLOCK_REALTIME, software stamp).
    pub time: TimeSpec,
    /// The start of the datagram's UDP payload as looped back (at most the first bytes of a
    /// long datagram): what identifies which datagram the stamp belongs to.
    pub payload: Vec<u8>,
}

/// Control space for one error-queue entry: SCM_TIMESTAMPING (64 bytes), IP(V6)_RECVERR with
/// the offender address (64 bytes) and SCM_TIMESTAMPNS (32 bytes), with room to spare.
const ERR_CONTROL_WORDS: usize = 32;

/// One recvmsg(MSG_ERRQUEUE) on `fd`: `Ok(None)` when the queue is empty, `Ok(Some(None))`
/// for an entry that is not a usable transmit timestamp.
fn recv_error_entry(fd: i32) -> std::io::Result<Option<Option<TxTimestamp>>> {
    let mut data = [0u8; TX_LOOP_MAX];
    let mut control = [0u64; ERR_CONTROL_WORDS];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no buffers); the fields set below point at
    // the local buffers, which outlive the call, with their true lengths.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; ERR_CONTROL_WORDS]>();
    // SAFETY: `msg` describes buffers owned by this frame; recvmsg writes within their lengths.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if n < 0 {
        let err = super::last_error();
        return match err.kind() {
            std::io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(err),
        };
    }
    let len = (n as usize).min(TX_LOOP_MAX);
    let mut time = None;
    let mut sent_stamp = false;
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* macros walk only within
    // that length, and each payload is read unaligned with its known type after checking its
    // level, type and length.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let data_ptr = libc::CMSG_DATA(cmsg);
            let payload = (c.cmsg_len as usize).saturating_sub(data_ptr as usize - cmsg as usize);
            match (c.cmsg_level, c.cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING)
                    if payload >= 3 * size_of::<libc::timespec>() =>
                {
                    // ts[0] is the software stamp (ts[2] the hardware one, not asked for).
                    let ts: libc::timespec = std::ptr::read_unaligned(data_ptr.cast());
                    if ts.tv_sec != 0 || ts.tv_nsec != 0 {
                        time = Some(TimeSpec {
                            sec: ts.tv_sec,
                            nsec: u32::try_from(ts.tv_nsec).unwrap_or(0),
                        });
                    }
                }
                (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
                    if payload >= size_of::<libc::sock_extended_err>() =>
                {
                    let ee: libc::sock_extended_err = std::ptr::read_unaligned(data_ptr.cast());
                    sent_stamp = ee.ee_errno == libc::ENOMSG as u32
                        && ee.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                        && ee.ee_info == SCM_TSTAMP_SND;
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let entry = match (time, sent_stamp, looped_udp_payload(&data[..len])) {
        (Some(time), true, Some(p)) => Some(TxTimestamp {
            time,
            payload: p.to_vec(),
        }),
        _ => None,
    };
    Ok(Some(entry))
}

/// The UDP payload inside a datagram looped back with its transmit timestamp. The kernel
/// returns the packet as the driver saw it: an Ethernet header (also on the loopback device,
/// with an optional 802.1Q tag) or, on devices without a link header, the IP header first;
/// then IPv4 or IPv6 (without extension headers, which our datagrams never carry) and UDP.
/// `None` when the bytes are none of these. A payload cut by the read buffer is returned cut.
pub fn looped_udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let ethertype = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ip_start = match ethertype(12) {
        Some(0x0800 | 0x86DD) => Some(14),
        Some(0x8100) if matches!(ethertype(16), Some(0x0800 | 0x86DD)) => Some(18),
        _ => None,
    };
    ip_start
        .and_then(|at| udp_in_ip(frame.get(at..)?))
        .or_else(|| udp_in_ip(frame))
}

/// The UDP payload of an IPv4 or IPv6 packet carrying UDP.
fn udp_in_ip(ip: &[u8]) -> Option<&[u8]> {
    let first = *ip.first()?;
    let udp = match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0F) * 4;
            // Protocol 17 (UDP), header at least 20 bytes.
            if ihl < 20 || *ip.get(9)? != 17 {
                return None;
            }
            ip.get(ihl..)?
        }
        6 => {
            if *ip.get(6)? != 17 {
                return None;
            }
            ip.get(40..)?
        }
        _ => return None,
    };
    let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if udp_len < 8 {
        return None;
    }
    let end = udp_len.min(udp.len());
    udp.get(8..end)
}

fn local_addr(fd: i32) -> Option<SocketAddr> {
    // SAFETY: zeroed storage is valid; getsockname writes at most `len` bytes into it.
    unsafe {
        let mut storage: libc::sockaddr_storage = zeroed();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return None;
        }
        from_sockaddr(&storage)
    }
}

pub(super) fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin);
            }
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6);
            }
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is aligned for it.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6; storage is aligned for it.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The local address and interface a datagram arrived on (from IP_PKTINFO/IPV6_PKTINFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketInfo {
    /// IPv4 destination address and interface index.
    V4 { addr: [u8; 4], ifindex: i32 },
    /// IPv6 destination address and interface index.
    V6 { addr: [u8; 16], ifindex: u32 },
}

/// One received datagram, borrowed from an [`RxBatch`].
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// The payload.
    pub data: &'a [u8],
    /// The sender.
    pub from: SocketAddr,
    /// Kernel receive timestamp (CLOCK_REALTIME), when the kernel gave one.
    pub rx: Option<TimeSpec>,
    /// Destination address, on wildcard sockets.
    pub local: Option<PacketInfo>,
    /// The datagram was longer than the buffer (or the control data was cut).
    pub truncated: bool,
}

/// Buffers and headers for one recvmmsg call, allocated once.
pub struct RxBatch {
    bufs: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    control: Box<[[u64; CONTROL_WORDS]]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    count: usize,
}

impl std::fmt::Debug for RxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBatch")
            .field("count", &self.count)
            .finish()
    }
}

/// Plain-old-data libc structs for which all-zero bytes are a valid value.
trait Zeroable: Sized {}
impl Zeroable for libc::iovec {}
impl Zeroable for libc::mmsghdr {}
impl Zeroable for libc::sockaddr_storage {}

fn zeroed_slice<T: Zeroable>(n: usize) -> Box<[T]> {
    // SAFETY: `Zeroable` is implemented only for libc C structs made of integers and raw
    // pointers, for which all-zero bytes are a valid (null/empty) value.
    (0..n).map(|_| unsafe { zeroed::<T>() }).collect()
}

impl Default for RxBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RxBatch {
    /// Allocates the batch (done once at start-up).
    pub fn new() -> RxBatch {
        RxBatch {
            bufs: vec![0u8; BATCH * DATAGRAM_MAX].into_boxed_slice(),
            addrs: zeroed_slice(BATCH),
            control: vec![[0u64; CONTROL_WORDS]; BATCH].into_boxed_slice(),
            iovs: zeroed_slice(BATCH),
            hdrs: zeroed_slice(BATCH),
            count: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; returns how many arrived (0 when the
    /// socket had none).
    pub fn recv(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        self.count = 0;
        let bufs = self.bufs.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: i * DATAGRAM_MAX + DATAGRAM_MAX <= bufs.len(), so the pointer stays inside.
            self.iovs[i] = libc::iovec {
                iov_base: unsafe { bufs.add(i * DATAGRAM_MAX) }.cast(),
                iov_len: DATAGRAM_MAX,
            };
            let hdr = &mut self.hdrs[i];
            hdr.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_control = self.control[i].as_mut_ptr().cast();
            hdr.msg_hdr.msg_controllen = CONTROL_WORDS * 8;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
        // SAFETY: every header points at buffers owned by `self` that stay alive and unaliased
        // for the call; the count passed equals the number of headers.
        let n = unsafe {
            libc::recvmmsg(
                socket.fd(),
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = super::last_error();
            return match err.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        self.count = n as usize;
        Ok(self.count)
    }

    /// The `i`-th datagram of the last `recv`; `None` past the end or when the sender address is
    /// not an IP address.
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.count {
            return None;
        }
        let hdr = &self.hdrs[i];
        let from = from_sockaddr(&self.addrs[i])?;
        let len = (hdr.msg_len as usize).min(DATAGRAM_MAX);
        let data = &self.bufs[i * DATAGRAM_MAX..i * DATAGRAM_MAX + len];
        let truncated = hdr.msg_hdr.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
        let mut rx = None;
        let mut local = None;
        // SAFETY: the kernel filled msg_control/msg_controllen of this header; the CMSG_* macros
        // walk only within that length, and each payload is read unaligned with its known type
        // after checking level, type and length.
        unsafe {
            let msg = &hdr.msg_hdr;
            let mut cmsg = libc::CMSG_FIRSTHDR(msg);
            while !cmsg.is_null() {
                let c = &*cmsg;
                let data_ptr = libc::CMSG_DATA(cmsg);
                let payload = c.cmsg_len as usize - (data_ptr as usize - cmsg as usize);
                match (c.cmsg_level, c.cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)
                        if payload >= size_of::<libc::timespec>() =>
                    {
                        let ts: libc::timespec = std::ptr::read_unaligned(data_ptr.cast());
                        rx = Some(TimeSpec {
                            sec: ts.tv_sec,
                            nsec: u32::try_from(ts.tv_nsec).unwrap_or(0),
                        });
                    }
                    (libc::IPPROTO_IP, libc::IP_PKTINFO)
                        if payload >= size_of::<libc::in_pktinfo>() =>
                    {
                        let pi: libc::in_pktinfo = std::ptr::read_unaligned(data_ptr.cast());
                        local = Some(PacketInfo::V4 {
                            addr: pi.ipi_addr.s_addr.to_ne_bytes(),
                            ifindex: pi.ipi_ifindex,
                        });
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                        if payload >= size_of::<libc::in6_pktinfo>() =>
                    {
                        let pi: libc::in6_pktinfo = std::ptr::read_unaligned(data_ptr.cast());
                        local = Some(PacketInfo::V6 {
                            addr: pi.ipi6_addr.s6_addr,
                            ifindex: pi.ipi6_ifindex,
                        });
                    }
                    _ => {}
                }
                cmsg = libc::CMSG_NXTHDR(msg, cmsg);
            }
        }
        Some(Datagram {
            data,
            from,
            rx,
            local,
            truncated,
        })
    }
}

/// Buffers and headers for one sendmmsg call, allocated once. Fill with [`TxBatch::slot`] and
/// [`TxBatch::commit`], patch the payloads, then [`TxBatch::send`].
pub struct TxBatch {
    bufs: Box<[u8]>,
    lens: Box<[usize]>,
    stamp: Box<[bool]>,
    addrs: Box<[libc::sockaddr_storage]>,
    addr_lens: Box<[libc::socklen_t]>,
    control: Box<[[u64; CONTROL_WORDS]]>,
    control_lens: Box<[usize]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    count: usize,
}

/// Control space of a per-datagram transmit timestamp request: CMSG_SPACE of a u32.
const TX_STAMP_REQUEST_SPACE: usize = 24;

impl std::fmt::Debug for TxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxBatch")
            .field("count", &self.count)
            .finish()
    }
}

impl Default for TxBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl TxBatch {
    /// Allocates the batch (done once at start-up).
    pub fn new() -> TxBatch {
        TxBatch {
            bufs: vec![0u8; BATCH * DATAGRAM_MAX].into_boxed_slice(),
            lens: vec![0; BATCH].into_boxed_slice(),
            stamp: vec![false; BATCH].into_boxed_slice(),
            addrs: zeroed_slice(BATCH),
            addr_lens: vec![0; BATCH].into_boxed_slice(),
            control: vec![[0u64; CONTROL_WORDS]; BATCH].into_boxed_slice(),
            control_lens: vec![0; BATCH].into_boxed_slice(),
            iovs: zeroed_slice(BATCH),
            hdrs: zeroed_slice(BATCH),
            count: 0,
        }
    }

    /// The next free payload buffer, or `None` when the batch is full.
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        let i = self.count;
        if i >= BATCH {
            return None;
        }
        Some(&mut self.bufs[i * DATAGRAM_MAX..(i + 1) * DATAGRAM_MAX])
    }

    /// Queues the current slot's first `len` bytes to `to`, sent from `local` when given;
    /// `stamp` says whether [`TxBatch::stamped_payloads_mut`] should offer it for patching.
    pub fn commit(&mut self, len: usize, to: SocketAddr, local: Option<PacketInfo>, stamp: bool) {
        let i = self.count;
        if i >= BATCH {
            return;
        }
        self.lens[i] = len.min(DATAGRAM_MAX);
        self.stamp[i] = stamp;
        let (storage, alen) = to_sockaddr(to);
        self.addrs[i] = storage;
        self.addr_lens[i] = alen;
        self.control_lens[i] = match local {
            None => 0,
            Some(info) => write_pktinfo(&mut self.control[i], info),
        };
        self.count += 1;
    }

    /// Asks the kernel for a software transmit timestamp of the datagram just committed (an
    /// SO_TIMESTAMPING control message with SOF_TIMESTAMPING_TX_SOFTWARE on it alone). The
    /// socket must report them ([`UdpSocket::enable_tx_timestamp_reports`]); the stamp comes
    /// back on its error queue with the datagram. Does nothing on an empty batch.
    pub fn request_tx_timestamp(&mut self) {
        let Some(i) = self.count.checked_sub(1) else {
            return;
        };
        let offset = self.control_lens[i];
        let control = &mut self.control[i];
        if offset + TX_STAMP_REQUEST_SPACE > control.len() * 8 || offset % 8 != 0 {
            return;
        }
        let flags = libc::SOF_TIMESTAMPING_TX_SOFTWARE;
        // SAFETY: CMSG_LEN/CMSG_SPACE are pure arithmetic. The header and the u32 payload are
        // written unaligned inside `control` (checked above: offset + 24 bytes fit), at an
        // 8-aligned offset after the pktinfo message, where CMSG_NXTHDR expects the next one.
        unsafe {
            debug_assert_eq!(
                libc::CMSG_SPACE(size_of::<u32>() as u32) as usize,
                TX_STAMP_REQUEST_SPACE
            );
            let base = control.as_mut_ptr().cast::<u8>().add(offset);
            let header = libc::cmsghdr {
                cmsg_len: libc::CMSG_LEN(size_of::<u32>() as u32) as usize,
                cmsg_level: libc::SOL_SOCKET,
                cmsg_type: libc::SO_TIMESTAMPING,
            };
            std::ptr::write_unaligned(base.cast::<libc::cmsghdr>(), header);
            let data = base.add(libc::CMSG_LEN(0) as usize);
            std::ptr::write_unaligned(data.cast::<u32>(), flags);
        }
        self.control_lens[i] = offset + TX_STAMP_REQUEST_SPACE;
    }

    /// Queued payloads committed with `stamp`, for patching the transmit timestamp just before
    /// sending.
    pub fn stamped_payloads_mut(&mut self) -> impl Iterator<Item = &mut [u8]> + '_ {
        let lens = &self.lens[..self.count];
        let stamp = &self.stamp[..self.count];
        self.bufs
            .chunks_mut(DATAGRAM_MAX)
            .zip(lens.iter().zip(stamp.iter()))
            .filter(|(_, (_, &stamp))| stamp)
            .map(|(buf, (&len, _))| &mut buf[..len])
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sends every queued datagram (one sendmmsg, repeated only if the kernel took part of the
    /// batch) and empties the batch. Returns (sent, failed).
    pub fn send(&mut self, socket: &UdpSocket) -> (usize, usize) {
        let total = self.count;
        let bufs = self.bufs.as_mut_ptr();
        for i in 0..total {
            // SAFETY: i < BATCH, so the pointer stays inside `bufs`.
            self.iovs[i] = libc::iovec {
                iov_base: unsafe { bufs.add(i * DATAGRAM_MAX) }.cast(),
                iov_len: self.lens[i],
            };
            let hdr = &mut self.hdrs[i];
            hdr.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = self.addr_lens[i];
            hdr.msg_hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
            if self.control_lens[i] > 0 {
                hdr.msg_hdr.msg_control = self.control[i].as_mut_ptr().cast();
                hdr.msg_hdr.msg_controllen = self.control_lens[i];
            } else {
                hdr.msg_hdr.msg_control = std::ptr::null_mut();
                hdr.msg_hdr.msg_controllen = 0;
            }
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
        let mut sent = 0;
        let mut failed = 0;
        while sent + failed < total {
            let start = sent + failed;
            // SAFETY: headers start..total point at buffers owned by `self`, alive for the call.
            let n = unsafe {
                libc::sendmmsg(
                    socket.fd(),
                    self.hdrs[start..].as_mut_ptr(),
                    (total - start) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                sent += n as usize;
            } else if n < 0 && super::last_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            } else {
                // The first remaining datagram failed (unreachable, buffer full): skip it.
                failed += 1;
            }
        }
        self.count = 0;
        (sent, failed)
    }
}

fn write_pktinfo(control: &mut [u64; CONTROL_WORDS], info: PacketInfo) -> usize {
    let (level, kind, payload_len) = match info {
        PacketInfo::V4 { .. } => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            size_of::<libc::in_pktinfo>(),
        ),
        PacketInfo::V6 { .. } => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            size_of::<libc::in6_pktinfo>(),
        ),
    };
    control.fill(0);
    // SAFETY: CMSG_SPACE of a pktinfo (<= 40 bytes) fits the 128-byte, 8-aligned control buffer;
    // the header and payload are written inside it through the CMSG_* macros on a msghdr that
    // describes exactly this buffer.
    unsafe {
        let space = libc::CMSG_SPACE(payload_len as u32) as usize;
        let mut msg: libc::msghdr = zeroed();
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return 0;
        }
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload_len as u32) as usize;
        let data = libc::CMSG_DATA(cmsg);
        match info {
            PacketInfo::V4 { addr, ifindex } => {
                let pi = libc::in_pktinfo {
                    ipi_ifindex: ifindex,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(addr),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(data.cast(), pi);
            }
            PacketInfo::V6 { addr, ifindex } => {
                let pi = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: addr },
                    ipi6_ifindex: ifindex,
                };
                std::ptr::write_unaligned(data.cast(), pi);
            }
        }
        space
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip_on_loopback_carries_rx_timestamps() {
        let server = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            client.send_to(&[i; 48], server.local_addr()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RxBatch::new();
        assert_eq!(rx.recv(&server).unwrap(), 5);
        let mut tx = TxBatch::new();
        for i in 0..5 {
            let d = rx.get(i).unwrap();
            assert_eq!(d.data, &[i as u8; 48][..]);
            assert_eq!(d.from, client.local_addr().unwrap());
            assert!(d.rx.is_some_and(|t| t.sec > 1_600_000_000));
            assert!(!d.truncated);
            let slot = tx.slot().unwrap();
            slot[..4].copy_from_slice(&[9, 9, 9, i as u8]);
            tx.commit(4, d.from, d.local, true);
        }
        for p in tx.stamped_payloads_mut() {
            p[0] = 7;
        }
        assert_eq!(tx.send(&server), (5, 0));
        let mut buf = [0u8; 64];
        for i in 0..5u8 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[7, 9, 9, i]);
        }
        assert_eq!(rx.recv(&server).unwrap(), 0);
    }

    #[test]
    fn wildcard_socket_reports_destination_and_replies_from_it() {
        let server = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = server.local_addr().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(&[1; 48], ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RxBatch::new();
        assert_eq!(rx.recv(&server).unwrap(), 1);
        let d = rx.get(0).unwrap();
        assert!(matches!(
            d.local,
            Some(PacketInfo::V4 {
                addr: [127, 0, 0, 1],
                ..
            })
        ));
        let mut tx = TxBatch::new();
        tx.slot().unwrap()[0] = 5;
        tx.commit(1, d.from, d.local, false);
        assert_eq!(tx.send(&server), (1, 0));
        let mut buf = [0u8; 8];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((n, from.port()), (1, port));
    }

    #[test]
    fn oversized_datagram_is_flagged_truncated() {
        let server = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(&vec![0u8; DATAGRAM_MAX + 10], server.local_addr())
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RxBatch::new();
        assert_eq!(rx.recv(&server).unwrap(), 1);
        assert!(rx.get(0).unwrap().truncated);
    }

    #[test]
    fn connected_socket_reads_only_its_peer_with_rx_timestamps() {
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(peer.local_addr().unwrap()).unwrap();
        assert_eq!(sock.send(b"poll").unwrap(), 4);
        let mut buf = [0u8; 8];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"poll"[..], sock.local_addr()));
        stranger.send_to(b"spoof", sock.local_addr()).unwrap();
        peer.send_to(b"reply", sock.local_addr()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RxBatch::new();
        assert_eq!(rx.recv(&sock).unwrap(), 1);
        let d = rx.get(0).unwrap();
        assert_eq!(
            (d.data, d.from),
            (&b"reply"[..], peer.local_addr().unwrap())
        );
        assert!(d.rx.is_some_and(|t| t.sec > 1_600_000_000));
    }

    #[test]
    fn connected_wildcard_socket_reports_the_address_towards_its_peer() {
        let sock = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = sock.local_addr().port();
        sock.connect("127.0.0.1:9".parse().unwrap()).unwrap();
        assert_eq!(sock.local_addr(), SocketAddr::from(([0, 0, 0, 0], port)));
        assert_eq!(
            sock.current_local_addr().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
    }

    /// Sends `data` from a TX-stamping socket connected to a fresh peer; returns the socket,
    /// the peer and the CLOCK_REALTIME readings just before and after the send.
    fn stamped_send(local: &str, data: &[u8]) -> (UdpSocket, std::net::UdpSocket, f64, f64) {
        let sock = UdpSocket::bind(local.parse().unwrap()).unwrap();
        sock.enable_tx_timestamps().unwrap();
        let peer_addr = SocketAddr::new(sock.local_addr().ip(), 0);
        let peer = std::net::UdpSocket::bind(peer_addr).unwrap();
        sock.connect(peer.local_addr().unwrap()).unwrap();
        let before = crate::os::clock::realtime().as_f64();
        assert_eq!(sock.send(data).unwrap(), data.len());
        let after = crate::os::clock::realtime().as_f64();
        (sock, peer, before, after)
    }

    #[test]
    fn tx_timestamp_comes_back_with_the_sent_payload_and_rx_stamps_still_work() {
        let payload: Vec<u8> = (0..48u8).collect();
        let (sock, peer, before, after) = stamped_send("127.0.0.1:0", &payload);
        // Loopback hands the datagram to its driver inside send(): the stamp is queued already.
        let stamps = sock.recv_tx_timestamps().unwrap();
        assert_eq!(stamps.len(), 1, "{stamps:?}");
        assert_eq!(stamps[0].payload, payload);
        let t = stamps[0].time.as_f64();
        assert!(
            t >= before && t <= after,
            "{t} not within [{before}, {after}]"
        );
        // Read once: the queue is empty now.
        assert!(sock.recv_tx_timestamps().unwrap().is_empty());
        let mut buf = [0u8; 64];
        assert_eq!(peer.recv(&mut buf).unwrap(), 48);
        peer.send_to(b"reply", sock.local_addr()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RxBatch::new();
        assert_eq!(rx.recv(&sock).unwrap(), 1);
        let d = rx.get(0).unwrap();
        assert_eq!(d.data, b"reply");
        assert!(!d.truncated);
        assert!(d.rx.is_some_and(|t| t.sec > 1_600_000_000));
    }

    /// A server socket (wildcard, so replies carry pktinfo too) stamps only the datagrams a
    /// stamp was asked for, and keeps its receive stamps and pktinfo.
    fn per_datagram_stamps_on(local: &str, client_addr: &str) {
        let sock = UdpSocket::bind(local.parse().unwrap()).unwrap();
        sock.enable_tx_timestamp_reports().unwrap();
        let port = sock.local_addr().port();
        let client = std::net::UdpSocket::bind(client_addr).unwrap();
        let server_addr = SocketAddr::new(client.local_addr().unwrap().ip(), port);
        for i in 0..3u8 {
            client.send_to(&[i; 48], server_addr).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RxBatch::new();
        assert_eq!(rx.recv(&sock).unwrap(), 3);
        let mut tx = TxBatch::new();
        let before = crate::os::clock::realtime().as_f64();
        for i in 0..3 {
            let d = rx.get(i).unwrap();
            assert!(!d.truncated && d.rx.is_some() && d.local.is_some(), "{d:?}");
            let (from, local) = (d.from, d.local);
            tx.slot().unwrap()[..48].copy_from_slice(&[10 + i as u8; 48]);
            tx.commit(48, from, local, false);
            if i == 1 {
                tx.request_tx_timestamp();
            }
        }
        assert_eq!(tx.send(&sock), (3, 0));
        let after = crate::os::clock::realtime().as_f64();
        let stamps = sock.recv_tx_timestamps().unwrap();
        assert_eq!(stamps.len(), 1, "{stamps:?}");
        assert_eq!(stamps[0].payload, vec![11u8; 48]);
        let t = stamps[0].time.as_f64();
        assert!(
            t >= before && t <= after,
            "{t} not within [{before}, {after}]"
        );
        let mut buf = [0u8; 64];
        for i in 0..3u8 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&[10 + i; 48][..], server_addr));
        }
        // Receive path unchanged after stamping: stamp and pktinfo, nothing cut.
        client.send_to(&[9; 48], server_addr).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(rx.recv(&sock).unwrap(), 1);
        let d = rx.get(0).unwrap();
        assert!(!d.truncated && d.rx.is_some() && d.local.is_some(), "{d:?}");
        assert!(sock.recv_tx_timestamps().unwrap().is_empty());
    }

    #[test]
    fn only_datagrams_asked_for_are_stamped_ipv4() {
        per_datagram_stamps_on("0.0.0.0:0", "127.0.0.1:0");
    }

    #[test]
    fn only_datagrams_asked_for_are_stamped_ipv6() {
        per_datagram_stamps_on("[::]:0", "[::1]:0");
    }

    #[test]
    fn ipv6_wildcard_socket_with_tx_stamps_keeps_pktinfo_and_rx_stamp_untruncated() {
        let sock = UdpSocket::bind("[::]:0".parse().unwrap()).unwrap();
        sock.enable_tx_timestamps().unwrap();
        let port = sock.local_addr().port();
        let client = std::net::UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(&[3; 48], ("::1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = RxBatch::new();
        assert_eq!(rx.recv(&sock).unwrap(), 1);
        let d = rx.get(0).unwrap();
        // SCM_TIMESTAMPNS, IPV6_PKTINFO and the SCM_TIMESTAMPING that TX stamping adds.
        assert!(!d.truncated);
        assert!(d.rx.is_some());
        assert!(matches!(d.local, Some(PacketInfo::V6 { .. })));
        // Replying from it loops the reply back with its stamp too.
        let mut tx = TxBatch::new();
        tx.slot().unwrap()[..4].copy_from_slice(b"pong");
        tx.commit(4, d.from, d.local, false);
        assert_eq!(tx.send(&sock), (1, 0));
        let stamps = sock.recv_tx_timestamps().unwrap();
        assert_eq!(stamps.len(), 1, "{stamps:?}");
        assert_eq!(stamps[0].payload, b"pong");
    }

    #[test]
    fn several_sends_queue_their_stamps_in_order_and_poll_reports_pollerr() {
        let (sock, _peer, _, _) = stamped_send("127.0.0.1:0", b"first");
        assert_eq!(sock.send(b"second").unwrap(), 6);
        let mut fds = [crate::os::poll::readable(sock.fd())];
        assert_eq!(crate::os::poll::wait(&mut fds, 0).unwrap(), 1);
        assert_ne!(fds[0].revents & crate::os::poll::POLLERR, 0);
        let stamps = sock.recv_tx_timestamps().unwrap();
        let payloads: Vec<&[u8]> = stamps.iter().map(|s| &s.payload[..]).collect();
        assert_eq!(payloads, [&b"first"[..], &b"second"[..]]);
        assert!(stamps[0].time.as_f64() <= stamps[1].time.as_f64());
        // Drained: poll has nothing to report.
        fds[0].revents = 0;
        assert_eq!(crate::os::poll::wait(&mut fds, 0).unwrap(), 0);
    }

    #[test]
    fn without_tx_stamping_the_error_queue_stays_empty() {
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(peer.local_addr().unwrap()).unwrap();
        sock.send(b"plain").unwrap();
        assert!(sock.recv_tx_timestamps().unwrap().is_empty());
    }

    #[test]
    fn long_datagram_is_identified_by_its_first_bytes() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let (sock, _peer, _, _) = stamped_send("127.0.0.1:0", &payload);
        let stamps = sock.recv_tx_timestamps().unwrap();
        assert_eq!(stamps.len(), 1);
        let got = &stamps[0].payload;
        assert!(
            got.len() >= 48 && got.len() < payload.len(),
            "{}",
            got.len()
        );
        assert_eq!(got[..], payload[..got.len()]);
    }

    fn udp(payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut v = vec![0x30, 0x39, 0x00, 0x7B];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    fn ipv4(payload: &[u8], protocol: u8) -> Vec<u8> {
        let mut v = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0];
        v.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        v.extend_from_slice(payload);
        v
    }

    fn ipv6(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
        v.extend_from_slice(&[0; 32]);
        v.extend_from_slice(payload);
        v
    }

    fn ethernet(ethertype: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0; 12];
        v.extend_from_slice(ethertype);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn looped_payload_is_found_behind_link_ip_and_udp_headers() {
        let ntp = [0xE3u8; 48];
        let v4 = ipv4(&udp(&ntp), 17);
        assert_eq!(looped_udp_payload(&ethernet(&[8, 0], &v4)), Some(&ntp[..]));
        let v6 = ipv6(&udp(&ntp));
        assert_eq!(
            looped_udp_payload(&ethernet(&[0x86, 0xDD], &v6)),
            Some(&ntp[..])
        );
        let tagged = ethernet(&[0x81, 0, 0, 5, 0x86, 0xDD], &v6);
        assert_eq!(looped_udp_payload(&tagged), Some(&ntp[..]));
        // A device without a link header (tun, WireGuard).
        assert_eq!(looped_udp_payload(&v4), Some(&ntp[..]));
        assert_eq!(looped_udp_payload(&v6), Some(&ntp[..]));
        // Ethernet padding after a short datagram is not payload.
        let mut padded = ethernet(&[8, 0], &ipv4(&udp(b"ab"), 17));
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(looped_udp_payload(&padded), Some(&b"ab"[..]));
    }

    #[test]
    fn looped_payload_parser_refuses_what_is_not_udp_and_never_panics() {
        assert_eq!(
            looped_udp_payload(&ethernet(&[8, 0], &ipv4(&udp(b"x"), 6))),
            None
        );
        assert_eq!(looped_udp_payload(&[]), None);
        assert_eq!(looped_udp_payload(&[0x45]), None);
        assert_eq!(looped_udp_payload(&[0x41; 60]), None);
        let full = ethernet(&[0x86, 0xDD], &ipv6(&udp(&[1; 48])));
        for cut in 0..full.len() {
            let _ = looped_udp_payload(&full[..cut]);
        }
        // A UDP length below its own header is refused.
        let mut bad = udp(b"abc");
        bad[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(looped_udp_payload(&ipv4(&bad, 17)), None);
    }

    #[test]
    fn connect_to_another_family_fails() {
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(sock.connect("[::1]:9".parse().unwrap()).is_err());
        assert!(sock.send(b"x").is_err());
    }
}
