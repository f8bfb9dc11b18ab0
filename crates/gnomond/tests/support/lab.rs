//! Multi-namespace labs for whole-daemon tests (sync_hierarchy.rs): one network namespace per
//! node joined by veth pairs to a router namespace whose user-space relays add delay, jitter
//! and loss between the nodes, and helpers to run code and daemons inside a namespace.

use super::*;
use gnomon_testnet::{wait_readable, DelayLine, Outcome};
use std::net::{SocketAddr, UdpSocket};

/// Moves the calling thread into the network namespace `name` (setns(2) moves only this
/// thread; processes and threads it starts afterwards inherit the namespace).
#[allow(unsafe_code)]
fn enter_netns(name: &str) {
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{name}");
    let file = std::fs::File::open(&path).unwrap();
    // SAFETY: setns with a valid namespace descriptor affects only this thread's network
    // namespace; `file` stays open for the call.
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// As [`in_netns`], but `f` may borrow from the caller (a scoped thread): daemons started in
/// `ns` and chronyc queries to them (on its loopback) can run from one test body.
pub fn in_ns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            enter_netns(&ns.name);
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `ip ARGS`; panics with the command line when it fails.
fn ip(args: &[&str]) {
    let out = run_bounded(Command::new("ip").args(args), Duration::from_secs(10));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// A namespace named `name` (loopback up), deleted on drop.
    pub fn named(name: &str) -> Netns {
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }
}

/// A star of network namespaces created by the test: node `i` (1..=n) has its own namespace
/// with one veth, `eth0`, linked to device `l{i}` of a router namespace, on the private subnet
/// 10.200.i.0/24 that exists only inside these namespaces. Node `i` is 10.200.i.(10+i) on
/// its own link; on link `j` the router answers as 10.200.j.(10+i) for every other node
/// `i` ([`Lab::seen`]), so that user-space relays in the router (a [`RouterRelay`]) can stand
/// for the other nodes. Nothing routes anywhere else: each namespace has only its connected
/// subnets (no default route), the router does not forward (ip_forward 0), and no namespace
/// has a link to the machine's own. Every namespace (and with it every veth) is deleted on
/// drop, also when construction fails half-way.
#[derive(Debug)]
pub struct Lab {
    /// The router namespace (where relays run).
    pub router: Netns,
    /// Node `i`'s namespace is `nodes[i - 1]`.
    pub nodes: Vec<Netns>,
}

impl Lab {
    /// Creates the router and `n` (1..=9) node namespaces and links them.
    pub fn star(n: u8) -> Lab {
        assert!((1..=9).contains(&n), "1 to 9 nodes");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let prefix = format!("gnh-{}-{nanos}", std::process::id());
        let mut lab = Lab {
            router: Netns::named(&format!("{prefix}-r")),
            nodes: Vec::new(),
        };
        let r = lab.router.name.clone();
        ip(&[
            "netns",
            "exec",
            &r,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=0",
        ]);
        for i in 1..=n {
            let node = Netns::named(&format!("{prefix}-{i}"));
            let name = node.name.clone();
            lab.nodes.push(node);
            let dev = format!("l{i}");
            // Created inside the router, its peer end moved straight into the node: the
            // machine's own namespace never holds either end.
            ip(&[
                "-n", &r, "link", "add", &dev, "type", "veth", "peer", "name", "eth0", "netns",
                &name,
            ]);
            let own = format!("{}/24", Lab::addr(i));
            ip(&["-n", &name, "addr", "add", &own, "dev", "eth0"]);
            ip(&["-n", &name, "link", "set", "eth0", "up"]);
            for j in (1..=n).filter(|&j| j != i) {
                let stand_in = format!("{}/24", Lab::seen(j, i));
                ip(&["-n", &r, "addr", "add", &stand_in, "dev", &dev]);
            }
            ip(&["-n", &r, "link", "set", &dev, "up"]);
        }
        lab
    }

    /// Node `i`'s namespace.
    pub fn node(&self, i: u8) -> &Netns {
        &self.nodes[usize::from(i) - 1]
    }

    /// Node `i`'s own address (on its link).
    pub fn addr(i: u8) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, 200, i, 10 + i)
    }

    /// The router's address that stands for node `i` on node `on`'s link.
    pub fn seen(i: u8, on: u8) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, 200, on, 10 + i)
    }
}

/// One path through a [`RouterRelay`]: datagrams a client sends to `front` go to `target`
/// from a socket on `back_ip` with the client's own source port (port-preserving; an
/// ephemeral port only if that one is taken), and what `target` sends back to that socket
/// returns to the client from `front`.
#[derive(Debug, Clone)]
pub struct RelayPath {
    /// Where clients send (a router address on their link).
    pub front: SocketAddr,
    /// The router address the target sees the clients as.
    pub back_ip: std::net::IpAddr,
    /// Where their datagrams go.
    pub target: SocketAddr,
    /// Clients whose back socket is opened at start and kept (a symmetric peer: the target
    /// may send first, to `back_ip` and the client's port).
    pub fixed: Vec<SocketAddr>,
}

/// Datagram counts of one [`RelayPath`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathCounts {
    /// Forwarded client → target.
    pub out: u64,
    /// Forwarded target → client.
    pub back: u64,
    /// Dropped (the impairment's loss), both ways.
    pub lost: u64,
    /// Dropped because the delay line was full, both ways.
    pub overflow: u64,
}

/// User-space UDP relays running on one thread inside a namespace (a [`Lab`]'s router): each
/// [`RelayPath`] delays, jitters and drops every datagram each way as the [`Impairment`]
/// says (the kernel here has no netem). The paths, their port-preserving back sockets and the
/// namespace are the router's own; the impairment is gnomon-testnet's, as for [`Relay`]: one
/// seeded [`DelayLine`] for all paths, and a wait (`ppoll(2)`) until the next datagram is due
/// or a socket is readable. Stops on drop, and by itself after `life`.
pub struct RouterRelay {
    counts: std::sync::Arc<std::sync::Mutex<Vec<PathCounts>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct PathState {
    spec: RelayPath,
    front: UdpSocket,
    /// Client address -> (its socket towards the target, last use, kept for good).
    backs: std::collections::HashMap<SocketAddr, (UdpSocket, Instant, bool)>,
}

fn bind_nonblocking(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl PathState {
    fn back_for(&mut self, client: SocketAddr, fixed: bool) -> std::io::Result<&UdpSocket> {
        if !self.backs.contains_key(&client) {
            let ip = self.spec.back_ip;
            let s = bind_nonblocking(SocketAddr::new(ip, client.port()))
                .or_else(|_| bind_nonblocking(SocketAddr::new(ip, 0)))?;
            self.backs.insert(client, (s, Instant::now(), fixed));
        }
        let entry = self.backs.get_mut(&client).unwrap();
        entry.1 = Instant::now();
        Ok(&entry.0)
    }
}

impl RouterRelay {
    /// Opens every path's sockets inside `ns` and starts relaying; panics when a socket
    /// cannot be bound.
    pub fn start(
        ns: &Netns,
        paths: Vec<RelayPath>,
        imp: Impairment,
        seed: u64,
        life: Duration,
    ) -> RouterRelay {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let line = DelayLine::new(imp, seed, gnomon_testnet::QUEUE_LIMIT)
            .unwrap_or_else(|e| panic!("router relay: {e}"));
        let counts = Arc::new(Mutex::new(vec![PathCounts::default(); paths.len()]));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        let name = ns.name.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            enter_netns(&name);
            let mut states = Vec::new();
            for spec in paths {
                let opened = bind_nonblocking(spec.front).map(|front| PathState {
                    spec: spec.clone(),
                    front,
                    backs: std::collections::HashMap::new(),
                });
                let mut state = match opened {
                    Ok(st) => st,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("bind {}: {e}", spec.front)));
                        return;
                    }
                };
                for client in spec.fixed.clone() {
                    if let Err(e) = state.back_for(client, true) {
                        let _ = ready_tx.send(Err(format!("bind for {client}: {e}")));
                        return;
                    }
                }
                states.push(state);
            }
            let _ = ready_tx.send(Ok(()));
            relay_loop(&mut states, line, life, &s, &c);
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("router relay: {e}"),
            Err(e) => panic!("router relay did not start: {e}"),
        }
        RouterRelay {
            counts,
            stop,
            thread: Some(thread),
        }
    }

    /// The counts of every path so far, in the order given to [`RouterRelay::start`].
    pub fn counts(&self) -> Vec<PathCounts> {
        self.counts.lock().unwrap().clone()
    }
}

/// Which way a queued datagram goes: (path index, client address).
#[derive(Debug, Clone, Copy)]
enum Hop {
    /// From the client's back socket to the target.
    Out(usize, SocketAddr),
    /// From the front to the client.
    Back(usize, SocketAddr),
}

/// Longest the router relay waits between checks of its stop flag and deadline.
const ROUTER_TICK: Duration = Duration::from_millis(50);

fn relay_loop(
    states: &mut [PathState],
    mut line: DelayLine<Hop>,
    life: Duration,
    stop: &std::sync::atomic::AtomicBool,
    counts: &std::sync::Mutex<Vec<PathCounts>>,
) {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 2048];
    let (mut fds, mut ready) = (Vec::new(), Vec::new());
    let end = Instant::now() + life;
    loop {
        let now = Instant::now();
        if stop.load(std::sync::atomic::Ordering::Relaxed) || now >= end {
            return;
        }
        while let Some((hop, data)) = line.pop_due(now) {
            let mut c = counts.lock().unwrap();
            match hop {
                Hop::Out(p, client) => {
                    let st = &states[p];
                    if let Some((sock, _, _)) = st.backs.get(&client) {
                        let _ = sock.send_to(&data, st.spec.target);
                        c[p].out += 1;
                    }
                }
                Hop::Back(p, client) => {
                    let _ = states[p].front.send_to(&data, client);
                    c[p].back += 1;
                }
            }
        }
        // Forget idle clients (gnomond uses a fresh port per request), but never the fixed.
        // The idle time exceeds the longest hold, so no held datagram loses its socket.
        for st in states.iter_mut() {
            st.backs
                .retain(|_, b| b.2 || now.saturating_duration_since(b.1) < Duration::from_secs(5));
        }
        fds.clear();
        for st in states.iter() {
            fds.push(st.front.as_raw_fd());
            fds.extend(st.backs.values().map(|b| b.0.as_raw_fd()));
        }
        let mut wait = ROUTER_TICK.min(end.saturating_duration_since(now));
        if let Some(due) = line.next_due() {
            wait = wait.min(due.saturating_duration_since(now));
        }
        if wait_readable(&fds, wait, &mut ready).is_err() {
            // A failing wait would spin; sleep a tick instead and let the deadline end it.
            std::thread::sleep(ROUTER_TICK);
            continue;
        }
        if ready.is_empty() {
            continue;
        }
        // A handful of sockets: read them all rather than map the ready indexes back.
        for (p, st) in states.iter_mut().enumerate() {
            let mut got = Vec::new();
            while let Ok((n, from)) = st.front.recv_from(&mut buf) {
                // Open the back socket now, so the target's answer has somewhere to go.
                if st.back_for(from, false).is_ok() {
                    got.push((Hop::Out(p, from), buf[..n].to_vec()));
                }
            }
            for (client, (sock, _, _)) in &st.backs {
                while let Ok((n, from)) = sock.recv_from(&mut buf) {
                    // Only the target speaks to a back socket.
                    if from == st.spec.target {
                        got.push((Hop::Back(p, *client), buf[..n].to_vec()));
                    }
                }
            }
            for (hop, data) in got {
                let mut c = counts.lock().unwrap();
                match line.hold(hop, &data, Instant::now()) {
                    Outcome::Held => {}
                    Outcome::Lost => c[p].lost += 1,
                    Outcome::Overflow => c[p].overflow += 1,
                }
            }
        }
    }
}

impl Drop for RouterRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
