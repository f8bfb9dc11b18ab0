//! The scenario runner: a discrete-event simulation of clients (each the real
//! [`gnomon_core::association::Engine`] on a [`VirtualClock`]), simulated servers and the
//! network between them, in virtual time.
//!
//! Every client is driven exactly as gnomond drives the engine: `handle_timeout` when its
//! `poll_timeout` is due on its own clock, `handle_packet` with the clock's reading when a
//! packet arrives, actions carried out by the "daemon" part of this runner. The true offset and
//! frequency error of every client are sampled once per `sample_interval` seconds.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use gnomon_core::association::{
    Action, Engine, EngineConfig, Event, ExitReason, SourceConfig, SourceId,
};
use gnomon_core::local_clock::ClockDriver;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::clock::{ClockParams, VirtualClock};
use crate::network::{LeapEvent, Link, SimServer};

/// What a client source points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A simulated server (index).
    Server(usize),
    /// Another client, as a symmetric peer (index).
    Node(usize),
}

/// A client to simulate.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    /// Its clock.
    pub clock: ClockParams,
    /// Engine configuration (the seed is mixed with the run's seed).
    pub engine: EngineConfig,
    /// `server`/`peer` sources.
    pub sources: Vec<(Target, SourceConfig)>,
    /// `pool` directives: (pool name, options, maxsources).
    pub pools: Vec<(String, SourceConfig, usize)>,
    /// A drift file value loaded at start.
    pub drift: Option<(f64, f64)>,
    /// Link used for packets from this client to peers.
    pub peer_link: Link,
}

/// One sampled point of a client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// True time.
    pub t: f64,
    /// Clock reading minus UTC, seconds.
    pub offset: f64,
    /// Frequency error (without the slew in progress).
    pub freq: f64,
    /// The client's `tracking` "Last offset" (its own estimate at its last update), seconds.
    pub last_offset: f64,
    /// True when the client's reference is synchronised (`tracking` stratum non-zero).
    pub synchronised: bool,
}

/// What happened to one client.
#[derive(Debug, Clone, Default)]
pub struct ClientTrace {
    /// Sampled points.
    pub points: Vec<Point>,
    /// Events the engine logged, with the true time.
    pub events: Vec<(f64, Event)>,
    /// Exit request, with the true time.
    pub exit: Option<(f64, ExitReason)>,
    /// Clock steps made: (true time, amount).
    pub steps: Vec<(f64, f64)>,
    /// Number of clock updates made by the reference.
    pub updates: u64,
    /// Final drift (frequency ppm, skew ppm).
    pub drift: (f64, f64),
    /// Final `sources` rows.
    pub sources: Vec<gnomon_core::reports::SourceReport>,
    /// Packets the client's sources rejected as not answering a request of ours (spoofed,
    /// stale, strangers' kisses).
    pub bogus_rejected: u64,
    /// RATE kisses that were honoured (they answered our own request).
    pub rate_kisses_honoured: u64,
    /// Final jitter asymmetry of each source (`ntpdata`'s "Jitter asymmetry"), in the order
    /// of `sources`.
    pub jitter_asymmetry: Vec<f64>,
}

struct Node {
    engine: Engine,
    clock: VirtualClock,
    addr: SocketAddr,
    trace: ClientTrace,
    peer_link: Link,
}

#[derive(Debug)]
enum Delivery {
    ToServer {
        server: usize,
        node: usize,
        data: [u8; 48],
    },
    ToNode {
        node: usize,
        from: SocketAddr,
        source: Option<SourceId>,
        data: [u8; 48],
    },
    Raw {
        node: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
}

#[derive(Debug)]
struct Ev {
    t: f64,
    seq: u64,
    what: Delivery,
}

impl PartialEq for Ev {
    fn eq(&self, o: &Self) -> bool {
        self.t == o.t && self.seq == o.seq
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ev {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest event.
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// Address of simulated server `i`.
pub fn server_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8)), 123)
}

/// Address of client `i`.
pub fn node_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + i as u8)), 123)
}

/// A simulated world.
pub struct World {
    t: f64,
    leaps: Vec<LeapEvent>,
    servers: Vec<SimServer>,
    pools: HashMap<String, Vec<usize>>,
    nodes: Vec<Node>,
    queue: BinaryHeap<Ev>,
    seq: u64,
    rng: StdRng,
    sample_interval: f64,
    next_sample: f64,
}

impl World {
    /// Builds a world starting at true time `start`.
    pub fn new(
        start: f64,
        servers: Vec<SimServer>,
        pools: HashMap<String, Vec<usize>>,
        clients: Vec<ClientSpec>,
        leaps: Vec<LeapEvent>,
        seed: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut nodes = Vec::with_capacity(clients.len());
        for (i, spec) in clients.into_iter().enumerate() {
            let mut clock = VirtualClock::new(spec.clock, start, rng.random());
            let mut cfg = spec.engine.clone();
            cfg.seed ^= rng.random::<u64>();
            let mut engine = Engine::new(cfg);
            let now = clock.read();
            if let Some((f, s)) = spec.drift {
                let _ = engine.load_drift(f, s, &mut clock);
            }
            for (target, sc) in &spec.sources {
                let addr = match target {
                    Target::Server(k) => server_addr(*k),
                    Target::Node(k) => node_addr(*k),
                };
                engine.add_source(addr, *sc, now);
            }
            for (name, sc, max) in &spec.pools {
                engine.add_pool(name, *sc, *max);
            }
            nodes.push(Node {
                engine,
                clock,
                addr: node_addr(i),
                trace: ClientTrace::default(),
                peer_link: spec.peer_link.clone(),
            });
        }
        World {
            t: start,
            leaps,
            servers,
            pools,
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            sample_interval: 1.0,
            // Half a second off the whole seconds, so that a sample never falls on the exact
            // instant of a leap second (whose transient is as short as the clock's offset).
            next_sample: start + 0.5,
        }
    }

    /// Schedules a packet that appears to come from server `server` and reaches client `node`
    /// at true time `t` (spoofed replies, strangers' kisses, truncated packets).
    pub fn inject(&mut self, t: f64, node: usize, server: usize, data: Vec<u8>) {
        self.seq += 1;
        self.queue.push(Ev {
            t,
            seq: self.seq,
            what: Delivery::Raw {
                node,
                from: server_addr(server),
                data,
            },
        });
    }

    /// Changes how often the clients' true offsets are sampled (default 1 s).
    pub fn set_sample_interval(&mut self, seconds: f64) {
        self.sample_interval = seconds.max(1e-3);
    }

    /// Current true time.
    pub fn now(&self) -> f64 {
        self.t
    }

    /// Mutable access to a server (to change its behaviour mid-run).
    pub fn server_mut(&mut self, i: usize) -> Option<&mut SimServer> {
        self.servers.get_mut(i)
    }

    /// A client's engine.
    pub fn engine(&self, node: usize) -> Option<&Engine> {
        self.nodes.get(node).map(|n| &n.engine)
    }

    /// A client's clock.
    pub fn clock(&self, node: usize) -> Option<&VirtualClock> {
        self.nodes.get(node).map(|n| &n.clock)
    }

    /// Runs until true time `end`.
    pub fn run_until(&mut self, end: f64) {
        // Bounded: every iteration moves time or consumes an event or a due timer.
        let mut guard: u64 = 0;
        while self.t < end && guard < 50_000_000 {
            guard += 1;
            let next_ev = self.queue.peek().map(|e| e.t);
            let next_timer = self.next_timer();
            let mut t = self.next_sample;
            if let Some(e) = next_ev {
                t = t.min(e);
            }
            if let Some(x) = next_timer {
                t = t.min(x);
            }
            let t = t.max(self.t);
            if t > end {
                self.advance(end);
                break;
            }
            self.advance(t);
            if self.t >= self.next_sample {
                self.sample();
                self.next_sample += self.sample_interval;
            }
            while self.queue.peek().is_some_and(|e| e.t <= self.t) {
                if let Some(ev) = self.queue.pop() {
                    self.deliver(ev.what);
                }
            }
            self.run_timers();
        }
    }

    /// The traces, consuming the world.
    pub fn finish(mut self) -> Vec<ClientTrace> {
        for n in &mut self.nodes {
            n.trace.steps = n.clock.steps().to_vec();
            n.trace.updates = n.engine.reference().updates();
            n.trace.drift = n.engine.drift(&n.clock);
            let now = n.clock.reading();
            let rows = n.engine.sources(now, &n.clock);
            n.trace.bogus_rejected = rows
                .iter()
                .filter_map(|(id, _)| n.engine.association(*id))
                .map(|a| a.rejected(gnomon_core::association::Rejection::Bogus))
                .sum();
            n.trace.rate_kisses_honoured = rows
                .iter()
                .filter_map(|(id, _)| n.engine.association(*id))
                .map(|a| a.rejected(gnomon_core::association::Rejection::KissRate))
                .sum();
            n.trace.jitter_asymmetry = rows
                .iter()
                .map(|(id, _)| {
                    n.engine
                        .association(*id)
                        .map_or(0.0, |a| a.stats().jitter_asymmetry())
                })
                .collect();
            n.trace.sources = rows.into_iter().map(|(_, r)| r).collect();
        }
        self.nodes.into_iter().map(|n| n.trace).collect()
    }

    fn advance(&mut self, t: f64) {
        for n in &mut self.nodes {
            n.clock.advance_to(t);
        }
        self.t = t;
    }

    fn sample(&mut self) {
        let utc = LeapEvent::utc(&self.leaps, self.t);
        for n in &mut self.nodes {
            let reference = n.engine.reference();
            n.trace.points.push(Point {
                t: self.t,
                offset: n.clock.reading() - utc,
                freq: n.clock.frequency_error(),
                last_offset: reference.tracking(n.clock.reading(), &n.clock).last_offset,
                synchronised: reference.is_synchronised(),
            });
        }
    }

    fn next_timer(&self) -> Option<f64> {
        self.nodes
            .iter()
            .filter(|n| n.trace.exit.is_none())
            .filter_map(|n| {
                let d = n.engine.poll_timeout()?;
                if d <= n.clock.reading() {
                    Some(self.t)
                } else {
                    Some(n.clock.true_time_of(d).max(self.t + 1e-9))
                }
            })
            .reduce(f64::min)
    }

    fn run_timers(&mut self) {
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.trace.exit.is_some() {
                continue;
            }
            let Some(d) = n.engine.poll_timeout() else {
                continue;
            };
            let now = n.clock.read();
            if d > now {
                continue;
            }
            let actions = n.engine.handle_timeout(now, &mut n.clock);
            self.perform(i, actions);
        }
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::ToServer { server, node, data } => {
                let Some(s) = self.servers.get(server) else {
                    return;
                };
                let Some(reply) = s.respond(&data, self.t, &self.leaps) else {
                    return;
                };
                let Some(delay) = s.link.delay(self.t, false, &mut self.rng) else {
                    return;
                };
                let from = server_addr(server);
                let source = self.nodes[node].engine.source_by_addr(from);
                self.push(
                    self.t + delay,
                    Delivery::ToNode {
                        node,
                        from,
                        source,
                        data: reply,
                    },
                );
            }
            Delivery::ToNode {
                node,
                from,
                source,
                data,
            } => {
                let n = &mut self.nodes[node];
                if n.trace.exit.is_some() {
                    return;
                }
                let Some(id) = source.or_else(|| n.engine.source_by_addr(from)) else {
                    return;
                };
                let rx = n.clock.read();
                let refid = match n.addr.ip() {
                    IpAddr::V4(v4) => Some(u32::from(v4)),
                    IpAddr::V6(_) => None,
                };
                let actions = n
                    .engine
                    .handle_packet(id, rx, &data, refid, false, &mut n.clock);
                self.perform(node, actions);
            }
            Delivery::Raw { node, from, data } => self.deliver_raw(node, from, &data),
        }
    }

    fn deliver_raw(&mut self, node: usize, from: SocketAddr, data: &[u8]) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if n.trace.exit.is_some() {
            return;
        }
        let Some(id) = n.engine.source_by_addr(from) else {
            return;
        };
        let rx = n.clock.read();
        let actions = n
            .engine
            .handle_packet(id, rx, data, None, false, &mut n.clock);
        self.perform(node, actions);
    }

    fn push(&mut self, t: f64, what: Delivery) {
        self.seq += 1;
        self.queue.push(Ev {
            t,
            seq: self.seq,
            what,
        });
    }

    fn perform(&mut self, node: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(_, tx) => self.send(node, tx.remote, tx.payload),
                Action::Resolve(pool, name) => {
                    let mut addrs: Vec<SocketAddr> = self
                        .pools
                        .get(&name)
                        .map(|v| v.iter().map(|&i| server_addr(i)).collect())
                        .unwrap_or_default();
                    addrs.shuffle(&mut self.rng);
                    let n = &mut self.nodes[node];
                    let now = n.clock.read();
                    n.engine.pool_resolved(pool, &addrs, now);
                }
                Action::Log(e) => self.nodes[node].trace.events.push((self.t, e)),
                Action::Exit(r) => self.nodes[node].trace.exit = Some((self.t, r)),
            }
        }
    }

    fn send(&mut self, node: usize, remote: SocketAddr, payload: [u8; 48]) {
        if let Some(k) = (0..self.servers.len()).find(|&k| server_addr(k) == remote) {
            if let Some(d) = self.servers[k].link.delay(self.t, true, &mut self.rng) {
                self.push(
                    self.t + d,
                    Delivery::ToServer {
                        server: k,
                        node,
                        data: payload,
                    },
                );
            }
        } else if let Some(k) = (0..self.nodes.len()).find(|&k| node_addr(k) == remote) {
            let from = self.nodes[node].addr;
            let link = self.nodes[node].peer_link.clone();
            if let Some(d) = link.delay(self.t, true, &mut self.rng) {
                self.push(
                    self.t + d,
                    Delivery::ToNode {
                        node: k,
                        from,
                        source: None,
                        data: payload,
                    },
                );
            }
        }
    }
}
