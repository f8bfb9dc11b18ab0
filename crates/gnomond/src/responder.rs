//! The NTP server's I/O path: a batch of requests from one socket in (recvmmsg, kernel receive
//! timestamps), the protocol engine asked about each, the replies out in one sendmmsg with the
//! transmit timestamp read from CLOCK_REALTIME once, immediately before the call, and patched
//! into every reply of the batch. No allocation and no syscall per datagram; drops are counted,
//! never logged one by one.

use crate::os::clock::TimeSpec;
use crate::os::net::{RxBatch, TxBatch, UdpSocket};
use gnomon_wire::NtpTimestamp;
use std::net::SocketAddr;

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
    /// Whether the transmit timestamp is to be patched in (false for a KoD, sent as built).
    pub stamp: bool,
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

/// Batches and counters for serving NTP.
#[derive(Debug)]
pub struct BatchServer {
    rx: RxBatch,
    tx: TxBatch,
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
        let n = self.rx.recv(socket)?;
        if n == 0 {
            return Ok(0);
        }
        self.counters.received += n as u64;
        self.counters.batches += 1;
        let mut fallback_rx: Option<NtpTimestamp> = None;
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
                Ok(out) => self.tx.commit(out.len, d.from, d.local, out.stamp),
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
        }
        Ok(n)
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
