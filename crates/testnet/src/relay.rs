//! The impairing UDP relay: a user-space stand-in for netem (the kernel here has none) between
//! NTP clients and their server on loopback, used by `gnomon-bench sync` and by gnomond's
//! integration tests. Datagrams a client sends to [`Relay::addr`] go to the target from a
//! socket of the relay's own per client address, and replies come back the same way; each
//! datagram, in each direction independently, is dropped with probability `loss` or else held
//! for `delay` plus a uniformly random `[0, jitter)` before it is forwarded
//! ([`Impairment::fate`]). Randomness is a seeded RNG, so a seed replays the same sequence of
//! fates; the hold queue is bounded, and the relay thread stops by itself at its deadline (and
//! when the [`Relay`] is dropped or finished).
//!
//! The target may be given after start ([`Relay::start_untargeted`], [`Relay::set_target`]):
//! symmetric peers each need the other's relay address in their configuration before the other
//! runs. Until then, datagrams from clients are dropped (counted as failed).
//!
//! The wait is `ppoll(2)` until the next datagram is due or a socket is readable, so on the
//! clean path a datagram is forwarded as soon as the relay thread runs, in either direction
//! alike.

use crate::delay_line::{DelayLine, Outcome};
use crate::impairment::{Impairment, MAX_HOLD};
use crate::sys::{monotonic_now, wait_readable};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
const _: () = assert!(MAX_HOLD < CLIENT_IDLE.as_secs_f64());
/// Longest a relay thread sleeps between checks of its stop flag and deadline.
const TICK: Duration = Duration::from_millis(50);
/// Datagrams read from one socket per wake-up, so one busy socket cannot starve the rest.
const READ_BURST: usize = 64;

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
    /// Failed to send, or had no socket to leave by or no target to go to.
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
    target: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<RelayCounts>>,
}

/// Refuses targets off loopback: the relay's traffic stays on this machine.
fn check_target(target: SocketAddr) -> io::Result<()> {
    if target.ip().is_loopback() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("relay target {target} is not a loopback address"),
    ))
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
        check_target(target)?;
        Relay::spawn(Some(target), imp, seed, life)
    }

    /// As [`Relay::start`] with no target yet: clients' datagrams are dropped (and counted as
    /// failed) until [`Relay::set_target`].
    pub fn start_untargeted(imp: Impairment, seed: u64, life: Duration) -> io::Result<Relay> {
        Relay::spawn(None, imp, seed, life)
    }

    /// Points the relay at `target`, a loopback address. Datagrams already held go to the new
    /// target when due, and only the new target's replies are relayed back.
    pub fn set_target(&self, target: SocketAddr) -> io::Result<()> {
        check_target(target)?;
        *self.target.lock().unwrap_or_else(PoisonError::into_inner) = Some(target);
        Ok(())
    }

    fn spawn(
        target: Option<SocketAddr>,
        imp: Impairment,
        seed: u64,
        life: Duration,
    ) -> io::Result<Relay> {
        let line = DelayLine::new(imp, seed, QUEUE_LIMIT)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let front = UdpSocket::bind(("127.0.0.1", 0))?;
        front.set_nonblocking(true)?;
        let addr = front.local_addr()?;
        let target = Arc::new(Mutex::new(target));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared_target, flag) = (target.clone(), stop.clone());
        let end = monotonic_now() + life;
        let thread = std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || {
                let mut w = Worker {
                    front,
                    shared_target,
                    target: None,
                    line,
                    clients: HashMap::new(),
                    counts: RelayCounts::default(),
                };
                w.run(&flag, end);
                w.counts
            })?;
        Ok(Relay {
            addr,
            target,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    /// To the target, from the socket of this client address.
    Up(SocketAddr),
    /// Back to this client address, from the front socket.
    Down(SocketAddr),
}

/// A client address's socket towards the target.
struct Client {
    sock: UdpSocket,
    last_used: Instant,
}

/// The relay thread's state.
struct Worker {
    front: UdpSocket,
    /// Where [`Relay::set_target`] writes.
    shared_target: Arc<Mutex<Option<SocketAddr>>>,
    /// Its value read at this wake-up.
    target: Option<SocketAddr>,
    /// Every datagram between being read and being forwarded.
    line: DelayLine<Hop>,
    clients: HashMap<SocketAddr, Client>,
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
            // Read after every wait, so a datagram that woke the thread after set_target
            // returned goes to the new target.
            self.target = *self
                .shared_target
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
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
            if let Some(due) = self.line.next_due() {
                wait = wait.min(due.saturating_duration_since(now));
            }
            if wait_readable(&fds, wait, &mut ready).is_err() {
                // A failing poll would spin; sleep a tick instead and let the deadline end it.
                std::thread::sleep(TICK);
                continue;
            }
            self.target = *self
                .shared_target
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for &i in &ready {
                if i == 0 {
                    self.read_front(&mut buf);
                } else if let Some(addr) = order.get(i - 1) {
                    self.read_back(*addr, &mut buf);
                }
            }
        }
    }

    /// Puts a datagram into the delay line, counting what became of it.
    fn hold(&mut self, hop: Hop, data: &[u8], now: Instant) {
        let counts = match hop {
            Hop::Up(_) => &mut self.counts.up,
            Hop::Down(_) => &mut self.counts.down,
        };
        counts.received += 1;
        match self.line.hold(hop, data, now) {
            Outcome::Held => {}
            Outcome::Lost => counts.lost += 1,
            Outcome::Overflow => counts.overflow += 1,
        }
    }

    fn read_front(&mut self, buf: &mut [u8]) {
        for _ in 0..READ_BURST {
            let (n, from) = match self.front.recv_from(buf) {
                Ok(x) => x,
                // An ICMP error from a client that went away: nothing to forward, read on.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(_) => return,
            };
            if self.target.is_none() {
                self.counts.up.received += 1;
                self.counts.up.failed += 1;
                continue;
            }
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
            if Some(from) != self.target {
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
        while let Some((hop, data)) = self.line.pop_due(now) {
            let (sent, counts) = match hop {
                Hop::Up(client) => (
                    self.clients
                        .get(&client)
                        .zip(self.target)
                        .map(|(c, to)| c.sock.send_to(&data, to)),
                    &mut self.counts.up,
                ),
                Hop::Down(client) => (
                    Some(self.front.send_to(&data, client)),
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
    fn relay_refuses_a_target_off_loopback() {
        let far: SocketAddr = ([192, 0, 2, 1], 123).into();
        let r = Relay::start(far, Impairment::CLEAN, 1, Duration::from_secs(1));
        assert!(r.is_err());
        let r = Relay::start_untargeted(Impairment::CLEAN, 1, Duration::from_secs(1)).unwrap();
        assert!(r.set_target(far).is_err());
    }

    #[test]
    fn relay_refuses_a_bad_impairment() {
        let (server, _t) = echo(0);
        let bad = Impairment {
            loss: 2.0,
            ..Impairment::CLEAN
        };
        let r = Relay::start(server, bad, 1, Duration::from_secs(1));
        assert_eq!(r.err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
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
    fn untargeted_relay_drops_until_its_target_is_set_then_forwards() {
        let (server, t) = echo(1);
        let relay = Relay::start_untargeted(Impairment::CLEAN, 8, Duration::from_secs(10)).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 8];
        c.send_to(b"a", relay.addr).unwrap();
        assert!(c.recv_from(&mut buf).is_err());
        relay.set_target(server).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.send_to(b"b", relay.addr).unwrap();
        let (k, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..k], from), (&b"b"[..], relay.addr));
        t.join().unwrap();
        let counts = relay.finish();
        let up = DirectionCounts {
            received: 2,
            sent: 1,
            failed: 1,
            ..DirectionCounts::default()
        };
        let down = DirectionCounts {
            received: 1,
            sent: 1,
            ..DirectionCounts::default()
        };
        assert_eq!(counts, RelayCounts { up, down });
    }

    /// A plain socket standing for a target, so the test sees the relay's back address.
    fn listener() -> (SocketAddr, UdpSocket) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        (s.local_addr().unwrap(), s)
    }

    #[test]
    fn retargeted_relay_sends_to_the_new_target_and_relays_back_only_its_replies() {
        let (old_addr, old) = listener();
        let (new_addr, new) = listener();
        let relay = Relay::start(old_addr, Impairment::CLEAN, 9, Duration::from_secs(10)).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 8];
        c.send_to(b"q", relay.addr).unwrap();
        let (_, back) = old.recv_from(&mut buf).unwrap();
        relay.set_target(new_addr).unwrap();
        c.send_to(b"r", relay.addr).unwrap();
        let (k, back_now) = new.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..k], back_now), (&b"r"[..], back));
        // The old target's late reply is not relayed; the new one's is.
        old.send_to(b"stale", back).unwrap();
        new.send_to(b"s", back).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (k, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"s");
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(c.recv_from(&mut buf).is_err());
        let counts = relay.finish();
        assert_eq!(
            (counts.up.sent, counts.down.received, counts.down.sent),
            (2, 1, 1)
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
