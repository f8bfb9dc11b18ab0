//! The NTP server's I/O path: a batch of requests from one socket in (recvmmsg, kernel receive
//! timestamps), the protocol engine asked about each, the replies out in one sendmmsg with the
//! transmit timestamp read from CLOCK_REALTIME once, immediately before the call, and patched
//! into every reply of the batch. No allocation and no syscall per datagram; drops are counted,
//! never logged one by one.
//!
//! Interleaved mode (gnomon_core's `server/interleaved.rs`): a reply to a client that uses it
//! ([`Outgoing::capture`]) gets a kernel software transmit timestamp asked for on that one
//! datagram (an SO_TIMESTAMPING control message in the sendmmsg entry, see
//! [`TxBatch::request_tx_timestamp`]); after the send the daemon's transmit reading is reported
//! at once ([`Responder::note_transmit`], the fallback chronyd also uses), and the kernel stamp,
//! read from the socket's error queue right after the send (loopback and most drivers stamp
//! inside the send call) or at the next wake-up (poll reports POLLERR), replaces it. Batches
//! without such replies cost exactly what they did: no error-queue read, no socket option, no
//! control message. Error-queue reads only happen on a socket with stamps asked for and not
//! yet read, each allocates the (bounded) stamp list, and they stop once the queue is empty.

use crate::os::clock::TimeSpec;
use crate::os::net::{RxBatch, TxBatch, UdpSocket, TX_STAMPS_MAX};
use gnomon_core::server::response_receive_timestamp;
use gnomon_wire::NtpTimestamp;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

/// Replies waiting for their kernel transmit stamp, at most (the oldest is forgotten first:
/// its client then gets the daemon's reading, which was reported at the send).
const PENDING_STAMPS_MAX: usize = 2 * crate::os::net::BATCH;

/// Why a request got no reply (for the counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    /// Not a well-formed NTP request (too short, wrong mode or version, truncated, bad fields).
    Malformed,
    /// The sender is not allowed by the access rules.
    Denied,
    /// The rate limiter chose not to answer.
    RateLimited,
    /// Any other reason the engine gave (authentication, unsupported extension, ...).
    Other,
}

/// A reply the engine built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Its length in the response buffer.
    pub len: usize,
    /// Whether the transmit timestamp is to be patched in (false for a KoD or an interleaved
    /// reply, sent as built).
    pub stamp: bool,
    /// Whether the reply's transmit time is wanted back ([`Responder::note_transmit`]): the
    /// client uses the interleaved mode.
    pub capture: bool,
}

/// The protocol side of the server: answers one request at a time, sans-IO.
pub trait Responder {
    /// Writes the reply to `request` into `response` and says how to send it, or why there is
    /// none. `rx` is the (disciplined) receive time, `now_mono` CLOCK_MONOTONIC in seconds.
    fn respond(
        &mut self,
        request: &[u8],
        from: SocketAddr,
        rx: NtpTimestamp,
        now_mono: f64,
        response: &mut [u8],
    ) -> Result<Outgoing, DropKind>;

    /// Patches the transmit timestamp into a reply written by `respond`.
    fn finalize(&mut self, response: &mut [u8], tx: NtpTimestamp);

    /// The transmit time of a reply `respond` asked to capture, sent to `to` with receive
    /// timestamp `rx`: the daemon's reading at the send (`kernel` false), then the kernel's
    /// stamp when it comes back (`kernel` true).
    fn note_transmit(&mut self, to: IpAddr, rx: NtpTimestamp, tx: NtpTimestamp, kernel: bool) {
        let _ = (to, rx, tx, kernel);
    }
}

/// Server counters (the basis of `serverstats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams received.
    pub received: u64,
    /// recvmmsg calls that returned datagrams (received / batches = mean batch size).
    pub batches: u64,
    /// Replies handed to the kernel.
    pub sent: u64,
    /// Replies the kernel refused.
    pub send_failed: u64,
    /// Dropped as malformed (including truncated and non-IP senders).
    pub malformed: u64,
    /// Dropped by access rules.
    pub denied: u64,
    /// Dropped by the rate limiter.
    pub rate_limited: u64,
    /// Dropped for other reasons.
    pub other_drops: u64,
    /// Datagrams without a kernel receive timestamp (a CLOCK_REALTIME read was used).
    pub no_kernel_timestamp: u64,
    /// NTS-KE connections that passed `allow`/`deny` (nts_ke.rs; copied each loop turn), as
    /// chronyd's "NTS-KE connections accepted".
    pub nke_hits: u64,
    /// NTS-KE connections refused by `ntsratelimit`, as chronyd's "NTS-KE connections dropped".
    pub nke_drops: u64,
    /// Replies sent with a kernel transmit timestamp asked for (interleaved-mode clients).
    pub tx_stamps_requested: u64,
    /// Kernel transmit timestamps read back and matched to their reply.
    pub tx_stamps_matched: u64,
}

impl Counters {
    fn count_drop(&mut self, kind: DropKind) {
        match kind {
            DropKind::Malformed => self.malformed += 1,
            DropKind::Denied => self.denied += 1,
            DropKind::RateLimited => self.rate_limited += 1,
            DropKind::Other => self.other_drops += 1,
        }
    }
}

/// A time read from CLOCK_REALTIME (or the kernel) as an NTP timestamp, corrected by the clock
/// driver's offset from CLOCK_REALTIME (non-zero only with the null clock's artificial error).
pub fn ntp_time(ts: TimeSpec, correction: f64) -> NtpTimestamp {
    let t = NtpTimestamp::from_unix(ts.sec, ts.nsec);
    if correction == 0.0 {
        t
    } else {
        t.add_seconds(correction)
    }
}

/// A reply whose kernel transmit stamp is awaited.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PendingStamp {
    /// The socket it left from.
    fd: i32,
    /// Its destination.
    to: IpAddr,
    /// Its receive timestamp, which identifies it in the looped-back datagram.
    rx: NtpTimestamp,
    /// Monotonic time of the send: a stamp not read within [`STAMP_WAIT`] is given up.
    sent: f64,
}

/// How long a reply's kernel transmit stamp is waited for, seconds (the daemon's reading
/// stands for it after that). A software stamp is queued when the driver takes the datagram:
/// a late one is a busy transmit queue, a second is far beyond that.
const STAMP_WAIT: f64 = 1.0;

/// Batches and counters for serving NTP.
#[derive(Debug)]
pub struct BatchServer {
    rx: RxBatch,
    tx: TxBatch,
    /// Replies of the current batch to capture: destination and receive timestamp.
    captured: Vec<(IpAddr, NtpTimestamp)>,
    /// Replies waiting for their kernel stamp, oldest first.
    pending: VecDeque<PendingStamp>,
    /// Sockets whose error queue may hold stamps (read until found empty).
    unread: Vec<i32>,
    /// What has happened so far.
    pub counters: Counters,
}

impl Default for BatchServer {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchServer {
    /// Allocates the batches (once).
    pub fn new() -> BatchServer {
        BatchServer {
            rx: RxBatch::new(),
            tx: TxBatch::new(),
            captured: Vec::with_capacity(crate::os::net::BATCH),
            pending: VecDeque::with_capacity(PENDING_STAMPS_MAX),
            unread: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// Serves one batch from `socket`; returns how many datagrams were read (0 = socket drained).
    /// `correction` is added to CLOCK_REALTIME readings; `now_mono` is the batch's monotonic time.
    pub fn serve_batch(
        &mut self,
        socket: &UdpSocket,
        responder: &mut impl Responder,
        correction: f64,
        now_mono: f64,
    ) -> std::io::Result<usize> {
        if self.unread.contains(&socket.fd()) {
            self.read_tx_stamps(socket, responder, correction, now_mono);
        }
        let n = self.rx.recv(socket)?;
        if n == 0 {
            return Ok(0);
        }
        self.counters.received += n as u64;
        self.counters.batches += 1;
        let mut fallback_rx: Option<NtpTimestamp> = None;
        self.captured.clear();
        // None: not tried in this batch; Some(false): the socket cannot report stamps.
        let mut stamping: Option<bool> = None;
        for i in 0..n {
            let Some(d) = self.rx.get(i) else {
                self.counters.malformed += 1;
                continue;
            };
            if d.truncated {
                self.counters.malformed += 1;
                continue;
            }
            let rx = match d.rx {
                Some(ts) => ntp_time(ts, correction),
                None => {
                    self.counters.no_kernel_timestamp += 1;
                    *fallback_rx
                        .get_or_insert_with(|| ntp_time(crate::os::clock::realtime(), correction))
                }
            };
            let Some(slot) = self.tx.slot() else {
                break;
            };
            match responder.respond(d.data, d.from, rx, now_mono, slot) {
                Ok(out) => {
                    let capture = if out.capture {
                        slot.get(..out.len).and_then(response_receive_timestamp)
                    } else {
                        None
                    };
                    self.tx.commit(out.len, d.from, d.local, out.stamp);
                    if let Some(reply_rx) = capture {
                        // Reporting is switched on the first time it is needed; once per
                        // batch with such replies, so a reopened socket gets it too.
                        let on = *stamping
                            .get_or_insert_with(|| socket.enable_tx_timestamp_reports().is_ok());
                        if on {
                            self.tx.request_tx_timestamp();
                            self.counters.tx_stamps_requested += 1;
                        }
                        self.captured.push((d.from.ip(), reply_rx));
                    }
                }
                Err(kind) => self.counters.count_drop(kind),
            }
        }
        if !self.tx.is_empty() {
            // The transmit timestamp: read as late as possible, right before the send.
            let tx_time = ntp_time(crate::os::clock::realtime(), correction);
            for payload in self.tx.stamped_payloads_mut() {
                responder.finalize(payload, tx_time);
            }
            let (sent, failed) = self.tx.send(socket);
            self.counters.sent += sent as u64;
            self.counters.send_failed += failed as u64;
            self.after_send(
                socket,
                responder,
                tx_time,
                stamping == Some(true),
                correction,
                now_mono,
            );
        }
        Ok(n)
    }

    /// Reports the daemon's transmit reading of the captured replies and, when kernel stamps
    /// were asked for, reads those already queued.
    fn after_send(
        &mut self,
        socket: &UdpSocket,
        responder: &mut impl Responder,
        tx_time: NtpTimestamp,
        stamped: bool,
        correction: f64,
        now_mono: f64,
    ) {
        if self.captured.is_empty() {
            return;
        }
        let fd = socket.fd();
        for &(to, rx) in &self.captured {
            responder.note_transmit(to, rx, tx_time, false);
            if stamped {
                if self.pending.len() >= PENDING_STAMPS_MAX {
                    self.pending.pop_front();
                }
                self.pending.push_back(PendingStamp {
                    fd,
                    to,
                    rx,
                    sent: now_mono,
                });
            }
        }
        if stamped {
            if !self.unread.contains(&fd) {
                self.unread.push(fd);
            }
            self.read_tx_stamps(socket, responder, correction, now_mono);
        }
    }

    /// Poll reported POLLERR on `socket`: whatever is in its error queue is read now (a stamp
    /// arriving after the read that followed its send), so that the error queue is always
    /// drained and poll does not keep waking the loop for it.
    pub fn drain_error_queue(
        &mut self,
        socket: &UdpSocket,
        responder: &mut impl Responder,
        correction: f64,
        now_mono: f64,
    ) {
        self.read_tx_stamps(socket, responder, correction, now_mono);
    }

    /// Reads `socket`'s error queue until it is empty (bounded), handing each kernel stamp
    /// that matches an awaited reply to the responder.
    fn read_tx_stamps(
        &mut self,
        socket: &UdpSocket,
        responder: &mut impl Responder,
        correction: f64,
        now_mono: f64,
    ) {
        let fd = socket.fd();
        for _ in 0..=PENDING_STAMPS_MAX / TX_STAMPS_MAX {
            let stamps = match socket.recv_tx_timestamps() {
                Ok(stamps) if !stamps.is_empty() => stamps,
                // Empty (or unreadable): replies still waiting keep the socket on the list
                // (their stamps may come later, reported by POLLERR) until they are given up.
                _ => {
                    self.pending
                        .retain(|p| p.fd != fd || now_mono - p.sent < STAMP_WAIT);
                    if !self.pending.iter().any(|p| p.fd == fd) {
                        self.unread.retain(|&f| f != fd);
                    }
                    return;
                }
            };
            for stamp in stamps {
                let Some(rx) = response_receive_timestamp(&stamp.payload) else {
                    continue;
                };
                let Some(at) = self.pending.iter().position(|p| p.fd == fd && p.rx == rx) else {
                    continue;
                };
                if let Some(p) = self.pending.remove(at) {
                    responder.note_transmit(p.to, rx, ntp_time(stamp.time, correction), true);
                    self.counters.tx_stamps_matched += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes requests that start with 0x23 and calls the rest malformed; the transmit timestamp
    /// goes into bytes 40..48 and the receive timestamp into 32..40, as NTP puts them.
    struct Echo;
    impl Responder for Echo {
        fn respond(
            &mut self,
            request: &[u8],
            _from: SocketAddr,
            rx: NtpTimestamp,
            _now_mono: f64,
            response: &mut [u8],
        ) -> Result<Outgoing, DropKind> {
            if request.len() < 48 || request[0] != 0x23 {
                return Err(DropKind::Malformed);
            }
            response[..48].copy_from_slice(&request[..48]);
            response[32..40].copy_from_slice(&rx.to_be_bytes());
            Ok(Outgoing {
                len: 48,
                stamp: true,
                capture: false,
            })
        }
        fn finalize(&mut self, response: &mut [u8], tx: NtpTimestamp) {
            response[40..48].copy_from_slice(&tx.to_be_bytes());
        }
    }

    #[test]
    fn batch_answers_good_requests_counts_bad_ones_and_stamps_rx_before_tx() {
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut req = [0u8; 48];
        req[0] = 0x23;
        client.send_to(&req, sock.local_addr()).unwrap();
        client.send_to(&[1, 2, 3], sock.local_addr()).unwrap();
        client.send_to(&req, sock.local_addr()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut server = BatchServer::new();
        assert_eq!(server.serve_batch(&sock, &mut Echo, 0.0, 0.0).unwrap(), 3);
        assert_eq!(server.counters.received, 3);
        assert_eq!(server.counters.sent, 2);
        assert_eq!(server.counters.malformed, 1);
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(n, 48);
            let rx = u64::from_be_bytes(buf[32..40].try_into().unwrap());
            let tx = u64::from_be_bytes(buf[40..48].try_into().unwrap());
            assert!(rx != 0 && tx >= rx, "rx {rx:x} tx {tx:x}");
        }
        assert_eq!(server.serve_batch(&sock, &mut Echo, 0.0, 0.0).unwrap(), 0);
    }

    /// Answers like [`Echo`], with the receive timestamp in the reply, and asks to capture the
    /// transmit time of replies to requests whose second octet is 1; records what it is told.
    #[derive(Default)]
    struct Capturing {
        noted: Vec<(IpAddr, NtpTimestamp, NtpTimestamp, bool)>,
    }
    impl Responder for Capturing {
        fn respond(
            &mut self,
            request: &[u8],
            from: SocketAddr,
            rx: NtpTimestamp,
            now_mono: f64,
            response: &mut [u8],
        ) -> Result<Outgoing, DropKind> {
            let out = Echo.respond(request, from, rx, now_mono, response)?;
            Ok(Outgoing {
                capture: request[1] == 1,
                ..out
            })
        }
        fn finalize(&mut self, response: &mut [u8], tx: NtpTimestamp) {
            Echo.finalize(response, tx);
        }
        fn note_transmit(&mut self, to: IpAddr, rx: NtpTimestamp, tx: NtpTimestamp, kernel: bool) {
            self.noted.push((to, rx, tx, kernel));
        }
    }

    #[test]
    fn captured_replies_get_the_daemon_reading_then_the_kernel_stamp_others_nothing() {
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut plain = [0u8; 48];
        plain[0] = 0x23;
        let mut interleaved = plain;
        interleaved[1] = 1;
        for req in [&plain, &interleaved, &plain] {
            client.send_to(req, sock.local_addr()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut server = BatchServer::new();
        let mut responder = Capturing::default();
        let before = ntp_time(crate::os::clock::realtime(), 0.0);
        assert_eq!(
            server.serve_batch(&sock, &mut responder, 0.0, 0.0).unwrap(),
            3
        );
        let after = ntp_time(crate::os::clock::realtime(), 0.0);
        assert_eq!(server.counters.tx_stamps_requested, 1);
        assert_eq!(server.counters.tx_stamps_matched, 1);
        let mut replies = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            let n = client.recv(&mut buf).unwrap();
            replies.push(buf[..n].to_vec());
        }
        let rx = NtpTimestamp(u64::from_be_bytes(replies[1][32..40].try_into().unwrap()));
        let daemon_tx = NtpTimestamp(u64::from_be_bytes(replies[1][40..48].try_into().unwrap()));
        let ip = client.local_addr().unwrap().ip();
        assert_eq!(responder.noted.len(), 2, "{:?}", responder.noted);
        assert_eq!(responder.noted[0], (ip, rx, daemon_tx, false));
        let (to, stamped_rx, kernel_tx, kernel) = responder.noted[1];
        assert_eq!((to, stamped_rx, kernel), (ip, rx, true));
        assert!(
            kernel_tx.diff_seconds(daemon_tx) >= 0.0,
            "kernel stamp after the reading"
        );
        assert!(kernel_tx.diff_seconds(before) > 0.0 && after.diff_seconds(kernel_tx) > 0.0);
        // The error queue was read empty: no POLLERR left behind, nothing more to read.
        let mut fds = [crate::os::poll::readable(sock.fd())];
        assert_eq!(crate::os::poll::wait(&mut fds, 0).unwrap(), 0);
        assert!(server.unread.is_empty() && server.pending.is_empty());
    }

    #[test]
    fn a_stamp_not_yet_queued_is_waited_for_then_given_up() {
        // A reply whose kernel stamp is late (a busy transmit queue): the socket stays on the
        // list, so the POLLERR that reports the stamp is served, until STAMP_WAIT passes.
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut server = BatchServer::new();
        let mut responder = Capturing::default();
        server.pending.push_back(PendingStamp {
            fd: sock.fd(),
            to: "127.0.0.1".parse().unwrap(),
            rx: NtpTimestamp(1),
            sent: 10.0,
        });
        server.unread.push(sock.fd());
        server.drain_error_queue(&sock, &mut responder, 0.0, 10.5);
        assert_eq!(server.unread, vec![sock.fd()]);
        assert_eq!(server.pending.len(), 1);
        server.drain_error_queue(&sock, &mut responder, 0.0, 10.0 + STAMP_WAIT);
        assert!(server.unread.is_empty() && server.pending.is_empty());
        assert!(responder.noted.is_empty());
    }

    #[test]
    fn batches_without_captured_replies_never_touch_the_error_queue() {
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut req = [0u8; 48];
        req[0] = 0x23;
        client.send_to(&req, sock.local_addr()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut server = BatchServer::new();
        let mut responder = Capturing::default();
        assert_eq!(
            server.serve_batch(&sock, &mut responder, 0.0, 0.0).unwrap(),
            1
        );
        assert_eq!(server.counters.sent, 1);
        assert_eq!(server.counters.tx_stamps_requested, 0);
        assert!(responder.noted.is_empty() && server.unread.is_empty());
    }

    #[test]
    fn correction_moves_timestamps() {
        let ts = TimeSpec {
            sec: 1_700_000_000,
            nsec: 0,
        };
        let a = ntp_time(ts, 0.0);
        let b = ntp_time(ts, 0.5);
        assert!((b.diff_seconds(a) - 0.5).abs() < 1e-9);
    }
}
