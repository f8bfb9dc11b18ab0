//! The impairing UDP relay of `gnomon-bench sync`: a user-space stand-in for netem (the kernel
//! here has none) between an NTP client and its server on loopback. Datagrams a client sends
//! to [`Relay::addr`] go to the target from a socket of the relay's own per client address, and
//! replies come back the same way; each datagram, in each direction independently, is dropped
//! with probability `loss` or else held for `delay` plus a uniformly random `[0, jitter)`
//! before it is forwarded ([`Impairment::fate`]). Randomness is a seeded RNG, so a seed
//! replays the same sequence of fates; the hold queue is bounded, and the relay thread stops by
//! itself at its deadline (and when the [`Relay`] is dropped or finished).
//!
//! The wait is `ppoll(2)` until the next datagram is due or a socket is readable, so on the
//! clean path a datagram is forwarded as soon as the relay thread runs, in either direction
//! alike.

use crate::sys::{monotonic_now, ppoll_readable};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Datagrams held at once (both directions together); more are dropped and counted. NTP
/// clients polling once a second hold a handful.
pub const QUEUE_LIMIT: usize = 1024;
/// Client addresses with a socket of their own at once; datagrams from more are dropped.
pub const CLIENT_LIMIT: usize = 256;
/// A client address's socket is closed after this long unused (gnomond sends every request
/// from a fresh port). It exceeds the longest hold, so no queued datagram loses its socket.
const CLIENT_IDLE: Duration = Duration::from_secs(5);
/// Longest hold (`delay + jitter`) accepted, below [`CLIENT_IDLE`].
pub const MAX_HOLD: f64 = 1.0;
/// Longest a relay thread sleeps between checks of its stop flag and deadline.
const TICK: Duration = Duration::from_millis(50);
/// Datagrams read from one socket per wake-up, so one busy socket cannot starve the rest.
const READ_BURST: usize = 64;

/// What the relay does to every datagram, each way.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Fixed one-way delay, seconds.
    pub delay: f64,
    /// Extra delay drawn uniformly from `[0, jitter)`, seconds.
    pub jitter: f64,
    /// Probability that a datagram is dropped.
    pub loss: f64,
}

impl Impairment {
    /// Forwards at once: the relay's own scheduling is the only noise.
    pub const CLEAN: Impairment = Impairment {
        delay: 0.0,
        jitter: 0.0,
        loss: 0.0,
    };
    /// 5 ms one-way delay, 0–2 ms uniform jitter, 5 % loss, each way.
    pub const IMPAIRED: Impairment = Impairment {
        delay: 0.005,
        jitter: 0.002,
        loss: 0.05,
    };

    /// Checks that the figures are finite, non-negative, `loss` at most 1 and the longest hold
    /// at most [`MAX_HOLD`].
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(self.delay) && ok(self.jitter) && ok(self.loss) && self.loss <= 1.0) {
            return Err(format!("bad impairment {self}"));
        }
        if self.delay + self.jitter > MAX_HOLD {
            return Err(format!("impairment {self} holds longer than {MAX_HOLD} s"));
        }
        Ok(())
    }

    /// The fate of one datagram from two independent uniform draws in `[0, 1)`: `None` when
    /// `u_loss < loss` (dropped), else how long it is held, `delay + jitter × u_jitter`.
    pub fn fate(&self, u_loss: f64, u_jitter: f64) -> Option<Duration> {
        if u_loss < self.loss {
            return None;
        }
        let hold = self.delay + self.jitter * u_jitter;
        // A checked impairment and draws in [0, 1) give a finite non-negative hold; anything
        // else is held for no time rather than trusted.
        Some(Duration::try_from_secs_f64(hold).unwrap_or(Duration::ZERO))
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ms one-way delay, 0-{} ms jitter, {} % loss each way",
            self.delay * 1e3,
            self.jitter * 1e3,
            self.loss * 100.0
        )
    }
}

/// Counts of one direction of a relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionCounts {
    /// Datagrams read.
    pub received: u64,
    /// Dropped by the loss draw.
    pub lost: u64,
    /// Dropped because the queue or the client table was full.
    pub overflow: u64,
    /// Handed to the kernel.
    pub sent: u64,
    /// Failed to send (or had no socket to leave by).
    pub failed: u64,
}

/// Counts of both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Client → target.
    pub up: DirectionCounts,
    /// Target → client.
    pub down: DirectionCounts,
}

/// A running relay; the thread stops and is joined on drop.
pub struct Relay {
    /// Where clients send.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<RelayCounts>>,
}

impl Relay {
    /// Starts a relay on 127.0.0.1 (an ephemeral port) to `target`, a loopback address, with
    /// `imp` drawn from a generator seeded with `seed`; it stops by itself after `life`.
    pub fn start(
        target: SocketAddr,
        imp: Impairment,
        seed: u64,
        life: Duration,
    ) -> io::Result<Relay> {
        if !target.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("relay target {target} is not a loopback address"),
            ));
        }
        imp.check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let front = UdpSocket::bind(("127.0.0.1", 0))?;
        front.set_nonblocking(true)?;
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let end = monotonic_now() + life;
        let thread = std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || {
                let mut w = Worker {
                    front,
                    target,
                    imp,
                    rng: StdRng::seed_from_u64(seed),
                    clients: HashMap::new(),
                    queue: BinaryHeap::new(),
                    seq: 0,
                    counts: RelayCounts::default(),
                };
                w.run(&flag, end);
                w.counts
            })?;
        Ok(Relay {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the relay and returns its counts.
    pub fn finish(mut self) -> RelayCounts {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> RelayCounts {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Which way a held datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Hop {
    /// To the target, from the socket of this client address.
    Up(SocketAddr),
    /// Back to this client address, from the front socket.
    Down(SocketAddr),
}

/// A held datagram, ordered by when it is due (then by arrival, so equal holds keep order).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    due: Instant,
    seq: u64,
    hop: Hop,
    data: Vec<u8>,
}

/// A client address's socket towards the target.
struct Client {
    sock: UdpSocket,
    last_used: Instant,
}

/// The relay thread's state.
struct Worker {
    front: UdpSocket,
    target: SocketAddr,
    imp: Impairment,
    rng: StdRng,
    clients: HashMap<SocketAddr, Client>,
    queue: BinaryHeap<Reverse<Held>>,
    seq: u64,
    counts: RelayCounts,
}

impl Worker {
    fn run(&mut self, stop: &AtomicBool, end: Instant) {
        let mut fds = Vec::new();
        let mut order: Vec<SocketAddr> = Vec::new();
        let mut ready = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            let now = monotonic_now();
            if stop.load(Ordering::Relaxed) || now >= end {
                return;
            }
            self.send_due(now);
            self.clients
                .retain(|_, c| now.saturating_duration_since(c.last_used) < CLIENT_IDLE);
            fds.clear();
            order.clear();
            fds.push(self.front.as_raw_fd());
            for (addr, c) in &self.clients {
                fds.push(c.sock.as_raw_fd());
                order.push(*addr);
            }
            let mut wait = TICK.min(end.saturating_duration_since(now));
            if let Some(Reverse(h)) = self.queue.peek() {
                wait = wait.min(h.due.saturating_duration_since(now));
            }
            if ppoll_readable(&fds, wait, &mut ready).is_err() {
                // A failing poll would spin; sleep a tick instead and let the deadline end it.
                std::thread::sleep(TICK);
                continue;
            }
            for &i in &ready {
                if i == 0 {
                    self.read_front(&mut buf);
                } else if let Some(addr) = order.get(i - 1) {
                    self.read_back(*addr, &mut buf);
                }
            }
        }
    }

    /// Draws the fate of a datagram and queues it, counting what happened.
    fn hold(&mut self, hop: Hop, data: &[u8], now: Instant) {
        let counts = match hop {
            Hop::Up(_) => &mut self.counts.up,
            Hop::Down(_) => &mut self.counts.down,
        };
        counts.received += 1;
        let (u_loss, u_jitter) = (self.rng.random::<f64>(), self.rng.random::<f64>());
        let Some(hold) = self.imp.fate(u_loss, u_jitter) else {
            counts.lost += 1;
            return;
        };
        if self.queue.len() >= QUEUE_LIMIT {
            counts.overflow += 1;
            return;
        }
        self.seq += 1;
        self.queue.push(Reverse(Held {
            due: now + hold,
            seq: self.seq,
            hop,
            data: data.to_vec(),
        }));
    }

    fn read_front(&mut self, buf: &mut [u8]) {
        for _ in 0..READ_BURST {
            let (n, from) = match self.front.recv_from(buf) {
                Ok(x) => x,
                // An ICMP error from a client that went away: nothing to forward, read on.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(_) => return,
            };
            let now = monotonic_now();
            if !self.clients.contains_key(&from) {
                if self.clients.len() >= CLIENT_LIMIT {
                    self.counts.up.received += 1;
                    self.counts.up.overflow += 1;
                    continue;
                }
                let sock = match UdpSocket::bind(("127.0.0.1", 0))
                    .and_then(|s| s.set_nonblocking(true).map(|()| s))
                {
                    Ok(s) => s,
                    Err(_) => {
                        self.counts.up.received += 1;
                        self.counts.up.failed += 1;
                        continue;
                    }
                };
                self.clients.insert(
                    from,
                    Client {
                        sock,
                        last_used: now,
                    },
                );
            }
            if let Some(c) = self.clients.get_mut(&from) {
                c.last_used = now;
            }
            let data = buf.get(..n).unwrap_or_default().to_vec();
            self.hold(Hop::Up(from), &data, now);
        }
    }

    fn read_back(&mut self, client: SocketAddr, buf: &mut [u8]) {
        for _ in 0..READ_BURST {
            let Some(c) = self.clients.get_mut(&client) else {
                return;
            };
            let (n, from) = match c.sock.recv_from(buf) {
                Ok(x) => x,
                // The target's port was closed (ICMP): nothing to forward, read on.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(_) => return,
            };
            if from != self.target {
                continue;
            }
            let now = monotonic_now();
            c.last_used = now;
            let data = buf.get(..n).unwrap_or_default().to_vec();
            self.hold(Hop::Down(client), &data, now);
        }
    }

    /// Forwards every held datagram that is due by `now`.
    fn send_due(&mut self, now: Instant) {
        while self.queue.peek().is_some_and(|Reverse(h)| h.due <= now) {
            let Some(Reverse(h)) = self.queue.pop() else {
                return;
            };
            let (sent, counts) = match h.hop {
                Hop::Up(client) => (
                    self.clients
                        .get(&client)
                        .map(|c| c.sock.send_to(&h.data, self.target)),
                    &mut self.counts.up,
                ),
                Hop::Down(client) => (
                    Some(self.front.send_to(&h.data, client)),
                    &mut self.counts.down,
                ),
            };
            match sent {
                Some(Ok(_)) => counts.sent += 1,
                _ => counts.failed += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fate_drops_below_the_loss_probability_and_holds_delay_plus_scaled_jitter() {
        let imp = Impairment::IMPAIRED;
        assert_eq!(imp.fate(0.049, 0.5), None);
        assert_eq!(imp.fate(0.0, 0.0), None);
        assert_eq!(imp.fate(0.05, 0.0), Some(Duration::from_millis(5)));
        assert_eq!(imp.fate(0.5, 0.5), Some(Duration::from_millis(6)));
        let longest = imp.fate(0.99, 0.999_999).unwrap();
        assert!(longest < Duration::from_millis(7) && longest > Duration::from_micros(6_999));
        assert_eq!(Impairment::CLEAN.fate(0.0, 0.7), Some(Duration::ZERO));
    }

    #[test]
    fn seeded_fates_have_the_configured_loss_rate_and_mean_hold() {
        let imp = Impairment::IMPAIRED;
        let mut rng = StdRng::seed_from_u64(7);
        let (mut lost, mut held, mut sum) = (0u32, 0u32, 0.0f64);
        for _ in 0..100_000 {
            match imp.fate(rng.random(), rng.random()) {
                None => lost += 1,
                Some(d) => {
                    held += 1;
                    sum += d.as_secs_f64();
                    assert!((0.005..0.007).contains(&d.as_secs_f64()));
                }
            }
        }
        let rate = f64::from(lost) / 100_000.0;
        assert!((0.045..0.055).contains(&rate), "loss rate {rate}");
        let mean = sum / f64::from(held);
        assert!((mean - 0.006).abs() < 2e-5, "mean hold {mean}");
    }

    #[test]
    fn check_refuses_negative_nan_certain_loss_above_one_and_long_holds() {
        assert!(Impairment::IMPAIRED.check().is_ok());
        assert!(Impairment::CLEAN.check().is_ok());
        let bad = [
            Impairment {
                delay: -0.001,
                ..Impairment::CLEAN
            },
            Impairment {
                jitter: f64::NAN,
                ..Impairment::CLEAN
            },
            Impairment {
                loss: 1.5,
                ..Impairment::CLEAN
            },
            Impairment {
                delay: 0.8,
                jitter: 0.3,
                loss: 0.0,
            },
        ];
        for imp in bad {
            assert!(imp.check().is_err(), "{imp:?}");
        }
    }

    #[test]
    fn relay_refuses_a_target_off_loopback() {
        let far: SocketAddr = ([192, 0, 2, 1], 123).into();
        let r = Relay::start(far, Impairment::CLEAN, 1, Duration::from_secs(1));
        assert!(r.is_err());
    }

    /// An echo server on loopback answering `n` datagrams or until 5 s pass.
    fn echo(n: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = s.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            for _ in 0..n {
                let Ok((k, from)) = s.recv_from(&mut buf) else {
                    return;
                };
                s.send_to(&buf[..k], from).unwrap();
            }
        });
        (addr, t)
    }

    #[test]
    fn clean_relay_forwards_both_ways_and_counts() {
        let (server, t) = echo(3);
        let relay = Relay::start(server, Impairment::CLEAN, 3, Duration::from_secs(10)).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        for i in 0..3u8 {
            c.send_to(&[i, 42], relay.addr).unwrap();
            let (k, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..k], from), (&[i, 42][..], relay.addr));
        }
        t.join().unwrap();
        let counts = relay.finish();
        let three = DirectionCounts {
            received: 3,
            sent: 3,
            ..DirectionCounts::default()
        };
        assert_eq!(
            counts,
            RelayCounts {
                up: three,
                down: three
            }
        );
    }

    #[test]
    fn delayed_relay_holds_each_way_and_total_loss_forwards_nothing() {
        let (server, t) = echo(1);
        let slow = Impairment {
            delay: 0.05,
            jitter: 0.0,
            loss: 0.0,
        };
        let relay = Relay::start(server, slow, 4, Duration::from_secs(10)).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let t0 = monotonic_now();
        c.send_to(b"x", relay.addr).unwrap();
        let mut buf = [0u8; 8];
        c.recv_from(&mut buf).unwrap();
        // Two holds of 50 ms: the round trip cannot be shorter (it can be longer on a busy
        // machine, so no upper bound is asserted).
        assert!(t0.elapsed() >= Duration::from_millis(100));
        t.join().unwrap();
        drop(relay);

        let all_lost = Impairment {
            loss: 1.0,
            ..Impairment::CLEAN
        };
        let relay = Relay::start(server, all_lost, 5, Duration::from_secs(10)).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        c.send_to(b"y", relay.addr).unwrap();
        assert!(c.recv_from(&mut buf).is_err());
        let counts = relay.finish();
        assert_eq!((counts.up.received, counts.up.lost), (1, 1));
        assert_eq!(counts.up.sent + counts.down.received, 0);
    }

    #[test]
    fn relay_stops_by_itself_at_its_deadline() {
        let (server, _t) = echo(0);
        let relay = Relay::start(server, Impairment::CLEAN, 6, Duration::from_millis(100)).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(relay.thread.as_ref().is_some_and(|t| t.is_finished()));
    }
}
