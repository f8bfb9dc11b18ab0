//! Slow and silent TLS peers of gnomond's NTS-KE, both directions (security catalogue cases
//! 29 and 30, and the handshake-deadline half of the timing concerns): a peer that never
//! speaks, or that trickles a TLS record one octet at a time so that no read ever idles, must
//! be cut at the handshake deadline (an absolute deadline, not an idle timeout), and while it
//! is connected gnomond keeps answering NTP and keeps its other sources. Also: a flood of
//! silent connections from many addresses beyond `maxntsconnections`, `ntsratelimit` per
//! address, and a key-exchange host whose name never resolves.
//!
//! Timing is asserted only as generous upper bounds that a correct daemon meets many times
//! over (the client deadline is 10 s, the catalogue allows 16 s; the server deadline is 2 s,
//! asserted below 6 s); the effect asserted is that the connection ends and service goes on.
//! Lower bounds (half the deadline) only check that the peer really was held, not rejected
//! at once, which would leave the deadline untested.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::*;

/// The catalogue's bound on one client NTS-KE attempt (chronyd's client timeout).
const CLIENT_ATTEMPT_LIMIT: Duration = Duration::from_secs(16);
/// Longest life of a fake key-exchange server (bounds every loop in its threads).
const FAKE_LIFE: Duration = Duration::from_secs(90);
/// A TLS record header announcing a 16 KiB handshake record: the peer waits for its body.
const BIG_RECORD_HEADER: [u8; 5] = [0x16, 0x03, 0x03, 0x40, 0x00];
/// Pause between trickled octets: the connection is never idle for long.
const TRICKLE: Duration = Duration::from_millis(200);

/// How a fake key-exchange server treats each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Reads everything, never writes.
    Silent,
    /// Announces a 16 KiB record, then sends one octet of it every [`TRICKLE`].
    Trickle,
}

/// One connection the fake server accepted.
#[derive(Debug, Clone, Copy)]
struct Conn {
    accepted: Instant,
    /// When the other side closed it (EOF or reset), if it did.
    closed: Option<Instant>,
}

/// A TCP server on 127.0.0.1 that accepts NTS-KE connections and never completes a handshake.
struct FakeKe {
    port: u16,
    conns: Arc<Mutex<Vec<Conn>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeKe {
    /// A fake key-exchange server on `ip` (each NTS source needs its own address: like
    /// chronyd, gnomond refuses a second source at an address already in use).
    fn start(behaviour: Behaviour, ip: [u8; 4]) -> FakeKe {
        let listener = TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (conns.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let born = Instant::now();
            let mut workers = Vec::new();
            while !s.load(Ordering::Relaxed) && born.elapsed() < FAKE_LIFE {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let index = {
                            let mut v = c.lock().unwrap();
                            v.push(Conn {
                                accepted: Instant::now(),
                                closed: None,
                            });
                            v.len() - 1
                        };
                        let (c, s) = (c.clone(), s.clone());
                        workers.push(std::thread::spawn(move || {
                            serve(stream, behaviour, &s, born);
                            c.lock().unwrap()[index].closed = Some(Instant::now());
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            s.store(true, Ordering::Relaxed);
            for w in workers {
                let _ = w.join();
            }
        });
        FakeKe {
            port,
            conns,
            stop,
            thread: Some(thread),
        }
    }

    fn conns(&self) -> Vec<Conn> {
        self.conns.lock().unwrap().clone()
    }

    /// Waits up to `limit` for the first connection.
    fn wait_first(&self, limit: Duration) -> Option<Conn> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.conns().first() {
                return Some(*c);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Waits up to `limit` for the first connection to be closed by the other side; returns
    /// how long it was held.
    fn wait_first_closed(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(Conn {
                accepted,
                closed: Some(closed),
            }) = self.conns().first()
            {
                return Some(closed.duration_since(*accepted));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for FakeKe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Holds `stream` open per `behaviour` until the other side closes it (returns) or the fake
/// server stops (returns too; the caller then records a close that the test would see as
/// too late).
fn serve(mut stream: TcpStream, behaviour: Behaviour, stop: &AtomicBool, born: Instant) {
    stream.set_read_timeout(Some(TRICKLE)).unwrap();
    let mut sent = 0usize;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) && born.elapsed() < FAKE_LIFE {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        if behaviour == Behaviour::Trickle {
            let octet = BIG_RECORD_HEADER.get(sent).copied().unwrap_or(0);
            if stream.write_all(&[octet]).is_err() {
                return;
            }
            sent += 1;
        }
    }
}

/// A plain chronyd server on 127.0.0.3 (`local stratum 5`); its port.
fn upstream() -> (Chronyd, u16) {
    let port = free_udp_port();
    let c = Chronyd::start(&format!(
        "port {port}\nbindaddress 127.0.0.3\nallow 127.0.0.0/8\nlocal stratum 5\ncmdport 0"
    ));
    wait_answers(
        SocketAddr::from(([127, 0, 0, 3], port)),
        Duration::from_secs(10),
        "upstream chronyd",
    );
    (c, port)
}

/// Case 29 (client side): one NTS source whose key-exchange server accepts and then says
/// nothing, another whose server trickles a never-ending TLS record. gnomond answers NTP
/// promptly throughout, selects its plain source meanwhile, cuts both handshakes within the
/// attempt limit, and retries without a storm.
#[test]
fn silent_and_trickling_nts_ke_servers_hold_neither_ntp_service_nor_other_sources() {
    let dir = TempDir::new("sec-ke-client");
    let (cert, _key) = make_cert(dir.path(), "trusted");
    let (up, up_port) = upstream();
    let silent = FakeKe::start(Behaviour::Silent, [127, 0, 0, 1]);
    let trickle = FakeKe::start(Behaviour::Trickle, [127, 0, 0, 2]);
    let nts_port = free_udp_port();
    // authselectmode ignore: in chronyd's default `mix` the NTS sources would be required, and
    // the point here is that the plain source is used while the key exchanges hang.
    let d = Daemon::start(&format!(
        "server 127.0.0.1 port {nts_port} nts ntsport {} iburst minpoll -2 maxpoll -2\n\
         server 127.0.0.2 port {nts_port} nts ntsport {} iburst minpoll -2 maxpoll -2\n\
         server 127.0.0.3 port {up_port} iburst minpoll -2 maxpoll -2\n\
         authselectmode ignore\nallow 127.0.0.1\nntstrustedcerts {}\nnosystemcert",
        silent.port,
        trickle.port,
        cert.display()
    ));
    let first_silent = silent.wait_first(Duration::from_secs(10));
    let first_trickle = trickle.wait_first(Duration::from_secs(10));
    assert!(
        first_silent.is_some() && first_trickle.is_some(),
        "gnomond never connected to the key-exchange servers:\n{}",
        d.stderr()
    );
    // Both handshakes are hanging now: NTP is still served, promptly.
    assert!(
        silent.conns()[0].closed.is_none() && trickle.conns()[0].closed.is_none(),
        "a handshake ended before NTP could be checked during it"
    );
    for i in 0..8 {
        assert!(
            query(d.addr_v4(), Duration::from_millis(500)).is_some(),
            "NTP query {i} unanswered while key exchanges hang:\n{}",
            d.stderr()
        );
    }
    // The plain source is selected while the handshakes still hang (they last up to 10 s).
    let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(30));
    assert!(
        ok,
        "plain source not selected beside hanging key exchanges:\n{listing}\n{}",
        d.stderr()
    );
    // Each handshake is cut within the attempt limit, the trickled one too (no idle timeout
    // could end it: an octet arrives every 200 ms).
    let bound = CLIENT_ATTEMPT_LIMIT + Duration::from_secs(4);
    let held_silent = silent.wait_first_closed(bound);
    let held_trickle = trickle.wait_first_closed(bound);
    // At least half the 10 s deadline: the handshake hung rather than failing outright (which
    // would leave the deadline untested).
    let hung = Duration::from_secs(5);
    assert!(
        held_silent.is_some_and(|h| h >= hung && h <= CLIENT_ATTEMPT_LIMIT),
        "silent key-exchange server held gnomond {held_silent:?}:\n{}",
        d.stderr()
    );
    assert!(
        held_trickle.is_some_and(|h| h >= hung && h <= CLIENT_ATTEMPT_LIMIT),
        "trickling key-exchange server held gnomond {held_trickle:?}:\n{}",
        d.stderr()
    );
    // No NTS source was selected or reached, nothing went unauthenticated to the NTS port.
    let listing = chronyc_sources(d.cmdport);
    let nts_lines: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with('^') && (l.contains("127.0.0.1") || l.contains("127.0.0.2")))
        .collect();
    assert_eq!(nts_lines.len(), 2, "{listing}");
    for l in &nts_lines {
        assert!(!l.starts_with("^*") && !l.starts_with("^+"), "{listing}");
    }
    // Still serving and still alive; retries back off (no connection storm).
    for i in 0..5 {
        assert!(
            query(d.addr_v4(), Duration::from_millis(500)).is_some(),
            "NTP query {i} unanswered after the key exchanges failed"
        );
    }
    let (s_n, t_n) = (silent.conns().len(), trickle.conns().len());
    assert!(
        s_n <= 3 && t_n <= 3,
        "key-exchange retries without back-off: {s_n} and {t_n} connections"
    );
    drop(up);
}

/// Case 30 (server side), the slow variant: clients that trickle a TLS record one octet at a
/// time into gnomond's NTS-KE server are cut at its 2 s handshake deadline although they are
/// never idle, NTP is answered promptly meanwhile, a client arriving while they hold both
/// slots is accepted and closed at once (as chronyd does), and a real TLS client is served
/// afterwards.
#[test]
fn trickling_nts_ke_clients_are_cut_at_the_server_deadline() {
    let dir = TempDir::new("sec-ke-server");
    let (cert, key) = make_cert(dir.path(), "server");
    let ntsport = free_tcp_port();
    let d = Daemon::start(&format!(
        "allow 127.0.0.1\nlocal stratum 3\nntsport {ntsport}\nntsservercert {}\n\
         ntsserverkey {}\nmaxntsconnections 2",
        cert.display(),
        key.display()
    ));
    let ke: SocketAddr = ([127, 0, 0, 1], ntsport).into();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tricklers: Vec<JoinHandle<Option<Duration>>> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect_timeout(&ke, Duration::from_secs(2)).ok()?;
                let opened = Instant::now();
                s.set_read_timeout(Some(TRICKLE)).unwrap();
                let mut buf = [0u8; 512];
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) && opened.elapsed() < Duration::from_secs(30) {
                    let octet = BIG_RECORD_HEADER.get(sent).copied().unwrap_or(0);
                    if s.write_all(&[octet]).is_err() {
                        return Some(opened.elapsed());
                    }
                    sent += 1;
                    match s.read(&mut buf) {
                        Ok(0) => return Some(opened.elapsed()),
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => return Some(opened.elapsed()),
                    }
                }
                None
            })
        })
        .collect();
    // NTP service while both KE slots are taken by tricklers.
    std::thread::sleep(Duration::from_millis(300));
    // A third client meanwhile is closed at once, not left in the backlog until a trickler's
    // deadline (1.7 s away at least).
    let extra = TcpStream::connect_timeout(&ke, Duration::from_secs(2)).unwrap();
    assert!(
        closed_within(&extra, Duration::from_millis(500)),
        "a client beyond maxntsconnections was not closed at once:\n{}",
        d.stderr()
    );
    drop(extra);
    for i in 0..8 {
        assert!(
            query(d.addr_v4(), Duration::from_millis(500)).is_some(),
            "NTP query {i} unanswered while NTS-KE is held by trickling clients"
        );
    }
    let held: Vec<Option<Duration>> = tricklers.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    for h in &held {
        // Held at least ~the deadline: the record was accepted as a slow handshake, not
        // rejected at once (which would leave the deadline untested).
        assert!(
            h.is_some_and(|h| h >= Duration::from_millis(1500) && h < Duration::from_secs(6)),
            "trickling client held the server {h:?} (after {:?}):\n{}",
            started.elapsed(),
            d.stderr()
        );
    }
    // A real TLS 1.3 client gets a handshake with ALPN ntske/1 afterwards.
    let out = run_bounded(
        Command::new(require_tool("openssl"))
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{ntsport}"))
            .args(["-alpn", "ntske/1", "-tls1_3", "-servername", "localhost"]),
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ALPN protocol: ntske/1"),
        "no NTS-KE handshake after the tricklers:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP connection to `dst` from the loopback address `src` (any 127/8 address works on
/// loopback), so one test can play many clients.
#[allow(unsafe_code)]
fn connect_from(src: std::net::Ipv4Addr, dst: SocketAddr) -> Option<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(dst) = dst else {
        return None;
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
    // SAFETY: plain socket calls on a descriptor this function owns; the sockaddr structs live
    // across the calls and `len` is their size. On success the descriptor is handed to a
    // TcpStream, which closes it; on failure it is closed here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let ok = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) == 0
            && libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) == 0;
        if !ok {
            libc::close(fd);
            return None;
        }
        Some(TcpStream::from_raw_fd(fd))
    }
}

/// Whether the server has already closed `s` (EOF or reset), looking for at most `wait`.
fn closed_within(s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 64];
    let mut r = s;
    match r.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// How soon after its connect completed a connection must be closed to count as dropped at
/// once (rejected by a limit): well inside the 2 s handshake deadline, which gnomond starts
/// only when it accepts the connection, so a held session can never count as dropped.
const DROPPED_WINDOW: Duration = Duration::from_millis(1500);

/// What a connection's first [`DROPPED_WINDOW`] showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    /// Closed by the server within the window: rejected by a limit.
    Dropped,
    /// Seen open late in the window (after 2/3 of it): held by the server.
    Held,
    /// Not looked at late enough in the window to tell (a starved watcher).
    Unjudged,
}

/// Opens, one after another, `count` connections to `ke` from each `(address, count)` of
/// `from`, while a watcher thread looks at every open connection each 10 ms until its
/// [`DROPPED_WINDOW`] (counted from its own connect) is over. Returns each connection's
/// judgement in connect order (`None`: refused by the kernel) and how long connecting took.
fn connect_and_judge(
    ke: SocketAddr,
    from: &[(std::net::Ipv4Addr, usize)],
) -> (Vec<Option<Judged>>, Duration) {
    struct Watched {
        stream: TcpStream,
        connected: Instant,
        closed: bool,
        last_open_age: Option<Duration>,
    }
    let list: Mutex<Vec<Option<Watched>>> = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let mut connect_time = Duration::ZERO;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Bounded: 10 ms passes for at most a minute; it ends once connecting is over and
            // every window has passed.
            for _ in 0..6000 {
                let finished = done.load(Ordering::SeqCst);
                let mut all = list.lock().unwrap();
                let now = Instant::now();
                let mut open_windows = false;
                for w in all.iter_mut().flatten().filter(|w| !w.closed) {
                    let age = now.saturating_duration_since(w.connected);
                    if age < DROPPED_WINDOW {
                        open_windows = true;
                        if closed_now(&w.stream) {
                            w.closed = true;
                        } else {
                            w.last_open_age = Some(age);
                        }
                    }
                }
                drop(all);
                if finished && !open_windows {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        for &(src, count) in from {
            for _ in 0..count {
                let w = connect_from(src, ke).map(|stream| Watched {
                    stream,
                    connected: Instant::now(),
                    closed: false,
                    last_open_age: None,
                });
                list.lock().unwrap().push(w);
            }
        }
        connect_time = started.elapsed();
        done.store(true, Ordering::SeqCst);
    });
    let judged = list
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|w| {
            w.map(|w| match w.last_open_age {
                _ if w.closed => Judged::Dropped,
                Some(age) if age >= DROPPED_WINDOW * 2 / 3 => Judged::Held,
                _ => Judged::Unjudged,
            })
        })
        .collect();
    (judged, connect_time)
}

/// Whether the server has already closed `s` (EOF or reset), without waiting.
fn closed_now(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64];
    let mut r = s;
    let closed = match r.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Resident set size of process `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Case 30 (server side), the flood: silent connections from 150 addresses exceed the default
/// `maxntsconnections` (100): 100 are held until the deadline and the other 50 are accepted
/// and closed at once, as chronyd does; 30 quick connections from one address meet
/// `ntsratelimit` with its defaults (burst 8, leak 1/4; like chronyd, no limit without the
/// directive), while another address is not limited; NTP is answered promptly throughout,
/// every held connection ends at the deadline, and the daemon's memory grows by little.
#[test]
fn nts_ke_flood_is_rate_limited_per_address_and_every_session_ends() {
    let dir = TempDir::new("sec-ke-flood");
    let (cert, key) = make_cert(dir.path(), "server");
    let ntsport = free_tcp_port();
    let mut d = Daemon::start(&format!(
        "allow 127.0.0.0/8\nlocal stratum 3\nntsport {ntsport}\nntsservercert {}\n\
         ntsserverkey {}\nntsratelimit",
        cert.display(),
        key.display()
    ));
    let ke: SocketAddr = ([127, 0, 0, 1], ntsport).into();
    let rss_before = rss_kib(d.pid());

    // One address, 30 connections at once: the rate limit lets the burst (and a leak) in.
    // Another address meanwhile: not limited by the first one's count. The listener's backlog
    // (16) overflows, so some connects take a SYN retry (1 s): each connection is judged by
    // how soon after its own connect it is closed, never by a fixed sleep.
    let (judged, connect_time) = connect_and_judge(
        ke,
        &[([127, 0, 2, 1].into(), 30), ([127, 0, 2, 2].into(), 4)],
    );
    assert!(
        judged.iter().all(Option::is_some),
        "connections refused by the kernel"
    );
    let count = |range: std::ops::Range<usize>, j: Judged| {
        judged[range].iter().filter(|&&x| x == Some(j)).count()
    };
    let dropped_one = count(0..30, Judged::Dropped);
    let unjudged_one = count(0..30, Judged::Unjudged);
    let dropped_other = count(30..34, Judged::Dropped);
    let unjudged = unjudged_one + count(30..34, Judged::Unjudged);
    println!(
        "rate limit: {dropped_one} of 30 dropped at once ({unjudged_one} not judged), other \
         address {dropped_other} of 4; connects took {connect_time:?}"
    );
    if unjudged > 0 {
        // Only on a machine so loaded that the watcher did not look at a connection late in
        // its window: such a connection counts either way below.
        println!("note: {unjudged} connections not judged (watcher starved)");
    }
    assert!(
        dropped_one <= 22 && dropped_one + unjudged_one >= 8,
        "rate limit from one address: {dropped_one} of 30 dropped at once ({unjudged_one} not \
         judged, connects took {connect_time:?}):\n{}",
        d.stderr()
    );
    assert_eq!(dropped_other, 0, "another address was limited too");
    // Let those sessions end (deadline 2 s) before the capacity test.
    std::thread::sleep(Duration::from_millis(2500));

    // 150 addresses, one silent connection each, from a helper thread, 5 ms apart so the
    // listener's backlog (16) does not overflow: gnomond holds at most 100 sessions and closes
    // the rest as soon as it accepts them. A watcher thread notes when each connection is
    // closed, so "closed at once" is measured per connection, whatever the connects cost.
    type Watched = (TcpStream, Instant, Option<Instant>);
    let conns: Arc<Mutex<Vec<Watched>>> = Arc::new(Mutex::new(Vec::new()));
    let opened = Instant::now();
    let deadline = opened + Duration::from_secs(20);
    let list = conns.clone();
    let connector = std::thread::spawn(move || {
        for i in 1..=150u8 {
            if let Some(s) = connect_from([127, 0, 3, i].into(), ke) {
                list.lock().unwrap().push((s, Instant::now(), None));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let list = conns.clone();
    let watcher = std::thread::spawn(move || {
        // Bounded by the 20 s deadline: every session must have ended by then.
        while Instant::now() < deadline {
            let mut all = list.lock().unwrap();
            let now = Instant::now();
            for (s, _, closed) in all.iter_mut().filter(|c| c.2.is_none()) {
                if closed_now(s) {
                    *closed = Some(now);
                }
            }
            if all.len() == 150 && all.iter().all(|c| c.2.is_some()) {
                return;
            }
            drop(all);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    // NTP is answered promptly while the flood arrives and 100 sessions are held.
    let mut answered = 0;
    while !connector.is_finished() || answered < 5 {
        assert!(
            query(d.addr_v4(), Duration::from_millis(500)).is_some(),
            "NTP query {answered} unanswered during the NTS-KE flood"
        );
        answered += 1;
        assert!(answered < 400, "connector never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    connector.join().unwrap();
    watcher.join().unwrap();
    let many = std::mem::take(&mut *conns.lock().unwrap());
    assert_eq!(many.len(), 150, "connections refused by the kernel");
    // Every session ends (the held ones at the 2 s deadline; 20 s bounds this many times
    // over), either at once (under 1 s: refused because full) or held to the deadline.
    let mut held: Vec<(Instant, Instant)> = Vec::new();
    let mut at_once = 0u64;
    for (_, connected, closed) in &many {
        let closed = closed.unwrap_or_else(|| {
            panic!(
                "a silent connection outlived every deadline ({:?}):\n{}",
                opened.elapsed(),
                d.stderr()
            )
        });
        if closed.duration_since(*connected) < Duration::from_secs(1) {
            at_once += 1;
        } else {
            held.push((*connected, closed));
        }
    }
    // The cap was filled, the excess closed at once (50 when the connects take under 2 s; fewer
    // if slow connects let deadlines free slots first, so the bound is loose), and never more
    // than 100 held at a time (observed intervals start at the connect and end up to one scan
    // late, so they may overlap a little more than the real sessions).
    let peak = held
        .iter()
        .map(|(from, _)| held.iter().filter(|(a, b)| a <= from && from < b).count())
        .max()
        .unwrap_or(0);
    eprintln!(
        "flood: held {}, at most {peak} at once, closed at once {at_once}",
        held.len()
    );
    assert!(
        held.len() >= 100 && at_once >= 10 && peak <= 110,
        "held {} (at most {peak} at once), closed at once {at_once}, connects took {:?}:\n{}",
        held.len(),
        many.last().map(|c| c.1.duration_since(opened)),
        d.stderr()
    );
    for i in 0..5 {
        assert!(
            query(d.addr_v4(), Duration::from_millis(500)).is_some(),
            "NTP query {i} unanswered after the flood"
        );
    }
    let grown = rss_kib(d.pid()).saturating_sub(rss_before);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
    // The daemon's own count agrees: the burst's excess was rate-limited.
    d.terminate();
    let log = d.stderr();
    let stats = log
        .lines()
        .find(|l| l.contains("NTS-KE connections accepted"))
        .unwrap_or_else(|| panic!("no NTS-KE statistics at exit:\n{log}"));
    let count = |label: &str| -> u64 {
        let words: Vec<&str> = stats.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == label)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {label} in {stats}"))
    };
    assert!(count("rate-limited") >= 8, "{stats}");
    assert!(count("refused-full") >= at_once, "{stats}");
    assert!(
        count("accepted") <= 30 + 4 + 150 - count("rate-limited"),
        "{stats}"
    );
}

/// Case 29, DNS failure for the key-exchange host: in a private network namespace (no name
/// server reachable, so no query leaves the machine) an NTS source named `nts-ke.invalid`
/// never resolves; gnomond keeps serving NTP, selects its plain source meanwhile, and keeps
/// running.
#[test]
fn unresolvable_nts_ke_host_holds_neither_ntp_service_nor_other_sources() {
    let ns = Netns::new();
    in_netns(&ns, || {
        let dir = TempDir::new("sec-ke-dns");
        let (cert, _key) = make_cert(dir.path(), "trusted");
        let (up, up_port) = upstream();
        let mut d = Daemon::start(&format!(
            "server nts-ke.invalid nts iburst minpoll -2 maxpoll -2\n\
             server 127.0.0.3 port {up_port} iburst minpoll -2 maxpoll -2\n\
             authselectmode ignore\nallow 127.0.0.1\nntstrustedcerts {}\nnosystemcert",
            cert.display()
        ));
        let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(30));
        assert!(
            ok,
            "plain source not selected beside an unresolvable NTS source:\n{listing}\n{}",
            d.stderr()
        );
        for i in 0..5 {
            assert!(
                query(d.addr_v4(), Duration::from_millis(500)).is_some(),
                "NTP query {i} unanswered"
            );
        }
        assert!(d.try_wait().is_none(), "gnomond exited:\n{}", d.stderr());
        assert!(
            !listing
                .lines()
                .any(|l| l.starts_with("^*") && !l.contains("127.0.0.3")),
            "{listing}"
        );
        drop(up);
    });
}
