//! The load generator: many UDP sockets, each keeping a window of client requests outstanding
//! (open loop with a window), sent with `sendmmsg` and read with `recvmmsg`. Every request
//! carries a random transmit timestamp; a reply counts only if its origin timestamp equals the
//! transmit timestamp of one of that socket's outstanding requests (the client's TEST2 of
//! RFC 5905 §8). The run is bounded by a duration and by a request count, whichever comes first,
//! then waits at most one timeout for stragglers and stops by itself.

use crate::histogram::Histogram;
use crate::packet::{client_request, parse_reply, HEADER_LEN};
use crate::sys::{monotonic_now, self_cpu_seconds, set_rcvbuf, Batch, Epoll};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What to send, where, and for how long.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server (loopback only).
    pub target: SocketAddr,
    /// Number of client sockets (distinct source ports).
    pub sockets: usize,
    /// Requests each socket keeps outstanding.
    pub window: usize,
    /// How long to send.
    pub duration: Duration,
    /// Most requests to send in total.
    pub max_requests: u64,
    /// After this long without a reply a request is counted lost and its slot reused.
    pub timeout: Duration,
    /// Seed of the transmit-timestamp nonces.
    pub seed: u64,
}

/// What came back.
#[derive(Clone, Default)]
pub struct LoadResult {
    /// Requests sent.
    pub sent: u64,
    /// Valid replies matched to an outstanding request.
    pub valid: u64,
    /// Datagrams that were not a valid reply or matched no request we sent.
    pub invalid: u64,
    /// Replies that matched a request already counted lost.
    pub late: u64,
    /// Requests with no reply within the timeout.
    pub lost: u64,
    /// Valid replies with stratum 0 (kiss-o'-death).
    pub kod: u64,
    /// Valid replies with leap 3 (server unsynchronised).
    pub unsynchronised: u64,
    /// From the first send to the end of sending.
    pub send_elapsed: Duration,
    /// CPU time the generator used while sending (to tell whether it, not the server, was the
    /// bottleneck).
    pub generator_cpu_seconds: f64,
    /// Latency of every valid reply (send call to receive call, in the generator).
    pub latency: Histogram,
    /// The first reason a datagram was invalid, for the report.
    pub first_invalid: Option<String>,
}

impl LoadResult {
    /// Valid replies per second of sending.
    pub fn rate(&self) -> f64 {
        let s = self.send_elapsed.as_secs_f64();
        if s > 0.0 {
            self.valid as f64 / s
        } else {
            0.0
        }
    }
}

impl fmt::Display for LoadResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} valid {} invalid {} late {} lost {} kod {} unsynchronised {} in {:.3} s: \
             {:.0} responses/s, latency p50 {:.1} us p90 {:.1} us p99 {:.1} us p99.9 {:.1} us \
             max {:.1} us, generator CPU {:.0} %",
            self.sent,
            self.valid,
            self.invalid,
            self.late,
            self.lost,
            self.kod,
            self.unsynchronised,
            self.send_elapsed.as_secs_f64(),
            self.rate(),
            self.latency.quantile(0.5) as f64 / 1e3,
            self.latency.quantile(0.9) as f64 / 1e3,
            self.latency.quantile(0.99) as f64 / 1e3,
            self.latency.quantile(0.999) as f64 / 1e3,
            self.latency.quantile(1.0) as f64 / 1e3,
            100.0 * self.generator_cpu_seconds / self.send_elapsed.as_secs_f64().max(1e-9),
        )?;
        if let Some(why) = &self.first_invalid {
            write!(f, " (first invalid: {why})")?;
        }
        Ok(())
    }
}

/// Why the generator could not run.
#[derive(Debug)]
pub enum LoadError {
    /// The target is not a loopback address.
    NotLoopback(SocketAddr),
    /// Zero sockets, window, duration or request count.
    Empty,
    /// A socket call failed.
    Io(&'static str, io::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotLoopback(a) => write!(f, "refusing to load {a}: loopback only"),
            LoadError::Empty => write!(f, "sockets, window, duration and count must be > 0"),
            LoadError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// splitmix64: cheap, seedable nonces (unpredictability is not the point of a benchmark).
struct Nonces(u64);

impl Nonces {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        z | 1 // never zero: a zero transmit would be an invalid request
    }
}

struct Flight {
    transmit: u64,
    sent_ns: u64,
}

struct Conn {
    sock: UdpSocket,
    outstanding: Vec<Flight>,
    expired: HashSet<u64>,
}

struct Run<'a> {
    cfg: &'a LoadConfig,
    start: Instant,
    nonces: Nonces,
    batch: Batch,
    res: LoadResult,
    sending: bool,
}

impl Run<'_> {
    fn now_ns(&self) -> u64 {
        monotonic_now().duration_since(self.start).as_nanos() as u64
    }

    fn fill(&mut self, c: &mut Conn) -> Result<(), LoadError> {
        if !self.sending {
            return Ok(());
        }
        let room = self.cfg.window.saturating_sub(c.outstanding.len());
        let budget = self.cfg.max_requests.saturating_sub(self.res.sent) as usize;
        let n = room.min(budget).min(self.batch.capacity());
        if n == 0 {
            return Ok(());
        }
        let mut nonces = Vec::with_capacity(n);
        for i in 0..n {
            let t = self.nonces.next();
            nonces.push(t);
            self.batch.buf_mut(i)[..HEADER_LEN].copy_from_slice(&client_request(t));
            self.batch.set_len(i, HEADER_LEN);
        }
        let sent_ns = self.now_ns();
        let sent = self
            .batch
            .send(c.sock.as_raw_fd(), n, false)
            .map_err(|e| LoadError::Io("sendmmsg", e))?;
        for &t in &nonces[..sent] {
            c.outstanding.push(Flight {
                transmit: t,
                sent_ns,
            });
        }
        self.res.sent += sent as u64;
        Ok(())
    }

    fn drain(&mut self, c: &mut Conn) -> Result<(), LoadError> {
        loop {
            let got = self
                .batch
                .recv(c.sock.as_raw_fd(), false, false)
                .map_err(|e| LoadError::Io("recvmmsg", e))?;
            if got == 0 {
                return Ok(());
            }
            let now = self.now_ns();
            for i in 0..got {
                let reply = match parse_reply(self.batch.packet(i)) {
                    Ok(r) => r,
                    Err(e) => {
                        self.invalid(e.to_string());
                        continue;
                    }
                };
                if let Some(k) = c
                    .outstanding
                    .iter()
                    .position(|f| f.transmit == reply.origin_timestamp.0)
                {
                    let f = c.outstanding.swap_remove(k);
                    self.res.valid += 1;
                    self.res.latency.record(now.saturating_sub(f.sent_ns));
                    if reply.stratum == 0 {
                        self.res.kod += 1;
                    }
                    if reply.leap == gnomon_wire::LeapIndicator::Unsynchronised {
                        self.res.unsynchronised += 1;
                    }
                } else if c.expired.remove(&reply.origin_timestamp.0) {
                    self.res.late += 1;
                } else {
                    self.invalid(format!(
                        "origin {:016x} matches no request sent on this socket",
                        reply.origin_timestamp.0
                    ));
                }
            }
            if got < self.batch.capacity() {
                return Ok(());
            }
        }
    }

    fn invalid(&mut self, why: String) {
        self.res.invalid += 1;
        if self.res.first_invalid.is_none() {
            self.res.first_invalid = Some(why);
        }
    }

    fn expire(&mut self, c: &mut Conn, now: u64) {
        let limit = self.cfg.timeout.as_nanos() as u64;
        let mut i = 0;
        while i < c.outstanding.len() {
            if now.saturating_sub(c.outstanding[i].sent_ns) > limit {
                let f = c.outstanding.swap_remove(i);
                c.expired.insert(f.transmit);
                self.res.lost += 1;
            } else {
                i += 1;
            }
        }
    }
}

/// Runs the generator to completion (it stops by itself).
pub fn run(cfg: &LoadConfig) -> Result<LoadResult, LoadError> {
    if !cfg.target.ip().is_loopback() {
        return Err(LoadError::NotLoopback(cfg.target));
    }
    if cfg.sockets == 0 || cfg.window == 0 || cfg.duration.is_zero() || cfg.max_requests == 0 {
        return Err(LoadError::Empty);
    }
    let bind: SocketAddr = if cfg.target.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let mut conns = Vec::with_capacity(cfg.sockets);
    for _ in 0..cfg.sockets {
        let sock = UdpSocket::bind(bind).map_err(|e| LoadError::Io("bind", e))?;
        sock.connect(cfg.target)
            .map_err(|e| LoadError::Io("connect", e))?;
        sock.set_nonblocking(true)
            .map_err(|e| LoadError::Io("nonblocking", e))?;
        // Room for the whole window of replies even when the generator falls behind.
        set_rcvbuf(sock.as_raw_fd(), 1 << 20).map_err(|e| LoadError::Io("SO_RCVBUF", e))?;
        conns.push(Conn {
            sock,
            outstanding: Vec::with_capacity(cfg.window),
            expired: HashSet::new(),
        });
    }
    let mut epoll = Epoll::new(conns.len()).map_err(|e| LoadError::Io("epoll_create", e))?;
    for (i, c) in conns.iter().enumerate() {
        epoll
            .add(c.sock.as_raw_fd(), i)
            .map_err(|e| LoadError::Io("epoll_ctl", e))?;
    }
    let cpu0 = self_cpu_seconds();
    let mut run = Run {
        cfg,
        start: monotonic_now(),
        nonces: Nonces(cfg.seed),
        batch: Batch::new(cfg.window.clamp(1, 64)),
        res: LoadResult::default(),
        sending: true,
    };
    let send_deadline = cfg.duration.as_nanos() as u64;
    let mut stop_at: Option<u64> = None;
    let mut last_expire = 0u64;
    let mut ready = Vec::with_capacity(conns.len());
    for c in conns.iter_mut() {
        run.fill(c)?;
    }
    loop {
        let now = run.now_ns();
        if run.sending && (now >= send_deadline || run.res.sent >= cfg.max_requests) {
            run.sending = false;
            run.res.send_elapsed = Duration::from_nanos(now);
            run.res.generator_cpu_seconds = self_cpu_seconds() - cpu0;
            stop_at = Some(now + cfg.timeout.as_nanos() as u64);
        }
        if let Some(end) = stop_at {
            if now >= end || conns.iter().all(|c| c.outstanding.is_empty()) {
                break;
            }
        }
        epoll
            .wait(5, &mut ready)
            .map_err(|e| LoadError::Io("epoll_wait", e))?;
        for &i in &ready {
            run.drain(&mut conns[i])?;
            run.fill(&mut conns[i])?;
        }
        let now = run.now_ns();
        if now.saturating_sub(last_expire) > 10_000_000 {
            last_expire = now;
            for c in conns.iter_mut() {
                run.expire(c, now);
                run.fill(c)?;
            }
        }
    }
    // Whatever is still outstanding after the grace period is lost.
    for c in &conns {
        run.res.lost += c.outstanding.len() as u64;
    }
    Ok(run.res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::fixed_reply;

    /// A tiny echo server on a thread: answers every request with the fixed reply, or with a
    /// corrupted origin when `corrupt` is set.
    fn echo_server(corrupt: bool, limit: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let addr = s.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut out = [0u8; 48];
            for _ in 0..limit {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    return;
                };
                let len = fixed_reply(&buf[..n], 1 << 32, &mut out).unwrap();
                if corrupt {
                    out[31] ^= 0xff;
                }
                s.send_to(&out[..len], from).unwrap();
            }
        });
        (addr, h)
    }

    fn cfg(target: SocketAddr, max: u64) -> LoadConfig {
        LoadConfig {
            target,
            sockets: 4,
            window: 4,
            duration: Duration::from_secs(5),
            max_requests: max,
            timeout: Duration::from_millis(200),
            seed: 42,
        }
    }

    #[test]
    fn generator_stops_at_the_request_count_and_matches_every_reply() {
        let (addr, h) = echo_server(false, 1000);
        let r = run(&cfg(addr, 1000)).unwrap();
        h.join().unwrap();
        assert_eq!(r.sent, 1000);
        assert_eq!(r.valid, 1000, "{r}");
        assert_eq!(r.invalid + r.lost + r.late, 0);
        assert_eq!(r.latency.count(), 1000);
    }

    #[test]
    fn replies_with_a_wrong_origin_are_counted_invalid() {
        let (addr, h) = echo_server(true, 100);
        let r = run(&cfg(addr, 100)).unwrap();
        h.join().unwrap();
        assert_eq!(r.valid, 0);
        assert_eq!(r.invalid, 100, "{r}");
        assert_eq!(r.lost, 100);
        assert!(r.first_invalid.unwrap().contains("matches no request"));
    }

    #[test]
    fn a_silent_server_means_lost_requests_and_a_bounded_run() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut c = cfg(silent.local_addr().unwrap(), 1_000_000);
        c.duration = Duration::from_millis(300);
        let t0 = monotonic_now();
        let r = run(&c).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(r.valid, 0);
        assert_eq!(r.lost, r.sent);
        assert!(r.sent >= 16);
    }

    #[test]
    fn non_loopback_targets_are_refused() {
        let c = cfg("192.0.2.1:123".parse().unwrap(), 1);
        assert!(matches!(run(&c), Err(LoadError::NotLoopback(_))));
    }
}
