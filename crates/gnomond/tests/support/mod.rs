//! Test harness for whole-daemon tests: starts `gnomond -x -d` under the `noclock` wrapper (no
//! CAP_SYS_TIME, so nothing it does can touch this machine's clock) with a temporary
//! configuration on a random free loopback port, waits until it answers, and kills it by PID
//! and removes the temporary directory on drop, even when the test fails.
//!
//! Used by `daemon_*.rs` and by the interop tests (`interop_*.rs`), which may append helpers at
//! the end of this file.
// Test support: panicking on a broken environment is the right failure, and tests read the
// real clocks.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods
)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The gnomond binary Cargo built for these tests.
pub fn gnomond_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gnomond"))
}

/// The `noclock` wrapper: `shared/tools/noclock` beside the workspace (CI's layout), else
/// /work/shared/tools/noclock. Panics if neither exists: daemons must never run without it.
pub fn noclock() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/noclock");
    for p in [beside, PathBuf::from("/work/shared/tools/noclock")] {
        if p.is_file() {
            return p;
        }
    }
    panic!("shared/tools/noclock not found: refusing to start a time daemon without it");
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("gnomond-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn pseudo_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A UDP port in 20000–60000 that is free on 127.0.0.1 and [::1] right now.
pub fn free_udp_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + (pseudo_random() % 40_000) as u16;
        let v4 = UdpSocket::bind(("127.0.0.1", port));
        let v6 = UdpSocket::bind(("::1", port));
        if v4.is_ok() && v6.is_ok() {
            return port;
        }
    }
    panic!("no free UDP port found");
}

/// A 48-byte NTPv4 client (mode 3) request whose transmit timestamp is `tx`.
pub fn client_request(tx: [u8; 8]) -> [u8; 48] {
    let mut req = [0u8; 48];
    req[0] = 0x23; // LI 0, VN 4, mode 3
    req[2] = 6; // poll
    req[3] = 0xe9; // precision -23
    req[40..48].copy_from_slice(&tx);
    req
}

/// Sends `request` to `server` and returns the first reply within `timeout`.
pub fn exchange(server: SocketAddr, request: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let bind: SocketAddr = if server.is_ipv6() {
        "[::1]:0".parse().unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(bind).ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    sock.send_to(request, server).ok()?;
    let mut buf = [0u8; 2048];
    let (n, from) = sock.recv_from(&mut buf).ok()?;
    (from == server).then(|| buf[..n].to_vec())
}

/// Sends a mode 3 request and returns the reply if it is a mode 4 answer to that request.
pub fn query(server: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
    let tx = pseudo_random().to_be_bytes();
    let reply = exchange(server, &client_request(tx), timeout)?;
    (reply.len() >= 48 && reply[0] & 7 == 4 && reply[24..32] == tx).then_some(reply)
}

/// What `Daemon::start` waits for before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// A mode 3 query to 127.0.0.1:port is answered.
    Answers,
    /// The PID file exists (for configurations that answer nobody on IPv4 loopback).
    PidFile,
}

/// A running gnomond, killed by PID on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    /// Its NTP port.
    pub port: u16,
    /// Its UDP command port (`cmdport`, unless `extra` changed it).
    pub cmdport: u16,
    /// Its Unix command socket (`bindcmdaddress`, unless `extra` changed it), in a directory
    /// the daemon creates with chronyd's permissions.
    pub socket: PathBuf,
    /// Its PID file.
    pub pidfile: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// Where its stderr goes.
    pub log: PathBuf,
    /// The temporary directory holding all of the above (removed last).
    pub dir: TempDir,
}

impl Daemon {
    /// Starts `gnomond -x -d -u root -f CONF` where CONF is `port P`, `pidfile DIR/gnomond.pid`,
    /// `cmdport C` (a free port), `bindcmdaddress DIR/run/gnomond.sock` and then `extra` (more
    /// directives, one per line, which may override those), and waits until it answers on
    /// 127.0.0.1. `extra` should contain an `allow` for 127.0.0.1.
    pub fn start(extra: &str) -> Daemon {
        Daemon::start_with(extra, &[], Ready::Answers)
    }

    /// As [`Daemon::start`], with more command-line arguments and a choice of readiness test.
    pub fn start_with(extra: &str, args: &[&str], ready: Ready) -> Daemon {
        Daemon::start_on_port(free_udp_port(), extra, args, ready)
    }

    /// As [`Daemon::start_with`], on NTP port `port` instead of a random one (in a namespace
    /// of its own a daemon can have the standard port 123, as the seed configurations assume).
    pub fn start_on_port(port: u16, extra: &str, args: &[&str], ready: Ready) -> Daemon {
        let dir = TempDir::new("daemon");
        let pidfile = dir.join("gnomond.pid");
        let config = dir.join("gnomond.conf");
        let log = dir.join("stderr.log");
        let cmdport = free_udp_port();
        let socket = dir.join("run/gnomond.sock");
        std::fs::write(
            &config,
            format!(
                "port {port}\npidfile {}\ncmdport {cmdport}\nbindcmdaddress {}\n{extra}\n",
                pidfile.display(),
                socket.display()
            ),
        )
        .unwrap();
        let mut daemon = Daemon {
            child: None,
            port,
            cmdport,
            socket,
            pidfile,
            config,
            log,
            dir,
        };
        daemon.spawn(args);
        daemon.wait_ready(ready, Duration::from_secs(20));
        daemon
    }

    /// As [`Daemon::start`] but in the foreground without `-d` (`-x -n -u root -f CONF`), so
    /// that `-l FILE` in `args` takes effect; waits until it answers NTP.
    pub fn start_foreground(extra: &str, args: &[&str]) -> Daemon {
        Daemon::start_with(extra, &[&["-n"], args].concat(), Ready::Answers)
    }

    fn spawn(&mut self, args: &[&str]) {
        let stderr = std::fs::File::create(&self.log).unwrap();
        // `-n` (foreground, logging as configured) replaces `-d` when the caller asks for it.
        let debug = if args.contains(&"-n") {
            None
        } else {
            Some("-d")
        };
        let child = Command::new(noclock())
            .arg(gnomond_bin())
            .arg("-x")
            .args(debug)
            .args(["-u", "root", "-f"])
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn wait_ready(&mut self, ready: Ready, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.try_wait() {
                panic!("gnomond exited early ({status}):\n{}", self.stderr());
            }
            let ok = match ready {
                Ready::Answers => query(self.addr_v4(), Duration::from_millis(200)).is_some(),
                Ready::PidFile => self.pidfile.exists(),
            };
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gnomond did not become ready:\n{}", self.stderr());
    }

    /// The server's IPv4 loopback address.
    pub fn addr_v4(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's IPv6 loopback address.
    pub fn addr_v6(&self) -> SocketAddr {
        format!("[::1]:{}", self.port).parse().unwrap()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends `signal` (e.g. "TERM") to the daemon by PID.
    pub fn signal(&self, signal: &str) {
        if self.child.is_some() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(self.pid().to_string())
                .status();
        }
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("gnomond ignored SIGTERM:\n{}", self.stderr()))
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(s) = self.try_wait() {
                self.child = None;
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs gnomond to completion with `args` (always under noclock) and returns its output.
/// Use for options that exit at once (-h, -v, -p, bad options, bad configs).
pub fn run_gnomond(args: &[&str]) -> Output {
    let mut child = Command::new(noclock())
        .arg(gnomond_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait: a daemon that unexpectedly keeps running is killed after 20 s.
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- Helpers for the interop tests (interop_*.rs), appended by engineer "bench". ----

/// The path of a required third-party program; panics (the test FAILS, never skips) when it is
/// missing, naming the script that installs it.
pub fn require_tool(name: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run shared/tools/install-peers.sh (interop tests never skip)");
}

/// A real chronyd started as `noclock chronyd -x -d -u root -f CONF`, killed by PID on drop.
/// CONF is `pidfile DIR/chronyd.pid` followed by `conf`.
#[derive(Debug)]
pub struct Chronyd {
    child: Option<Child>,
    /// Its configuration file.
    pub config: PathBuf,
    /// Where its output goes.
    pub log: PathBuf,
    /// The temporary directory (removed last).
    pub dir: TempDir,
}

impl Chronyd {
    /// Starts chronyd with `conf` (directives, one per line). Returns at once: use
    /// [`wait_answers`] or chronyc to know when it is ready.
    pub fn start(conf: &str) -> Chronyd {
        let chronyd = require_tool("chronyd");
        let dir = TempDir::new("chronyd");
        let config = dir.join("chronyd.conf");
        let log = dir.join("chronyd.log");
        std::fs::write(
            &config,
            format!("pidfile {}\n{conf}\n", dir.join("chronyd.pid").display()),
        )
        .unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(noclock())
            .arg(chronyd)
            .args(["-x", "-d", "-u", "root", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Chronyd {
            child: Some(child),
            config,
            log,
            dir,
        }
    }

    /// Everything it logged so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits up to `limit` until `server` answers a mode 3 query; panics with `what` otherwise.
pub fn wait_answers(server: SocketAddr, limit: Duration, what: &str) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if query(server, Duration::from_millis(200)).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not answer on {server} within {limit:?}");
}

/// Runs a program to completion, killing it after `limit`; returns its output.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

// ---- Helpers for the synchronisation tests (sync_*.rs), appended by engineer "client". ----

/// Seconds since the Unix epoch of the NTP timestamp in `b[at..at + 8]`.
pub fn ntp_seconds(b: &[u8], at: usize) -> f64 {
    let sec = u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let frac = u32::from_be_bytes(b[at + 4..at + 8].try_into().unwrap());
    // Era 0 (until 2036) is enough for these tests.
    f64::from(sec) - 2_208_988_800.0 + f64::from(frac) / 4_294_967_296.0
}

fn realtime_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The true offset of the time `server` serves from this machine's CLOCK_REALTIME (positive:
/// the server is ahead), from the best (least delay) of `n` exchanges over loopback; `None`
/// when it did not answer. This is independent of the daemon's own reports.
pub fn served_offset(server: SocketAddr, n: usize) -> Option<f64> {
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..n {
        let t1 = realtime_now();
        let Some(reply) = query(server, Duration::from_millis(300)) else {
            continue;
        };
        let t4 = realtime_now();
        let (t2, t3) = (ntp_seconds(&reply, 32), ntp_seconds(&reply, 40));
        let delay = (t4 - t1) - (t3 - t2);
        let offset = ((t2 - t1) + (t3 - t4)) / 2.0;
        if best.is_none_or(|(d, _)| delay < d) {
            best = Some((delay, offset));
        }
    }
    best.map(|(_, o)| o)
}

/// `chronyc -n -h 127.0.0.1 -p PORT tracking` as text (empty when chronyc failed).
pub fn chronyc_tracking(cmdport: u16) -> String {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .args(["-n", "-h", "127.0.0.1", "-p"])
            .arg(cmdport.to_string())
            .arg("tracking"),
        Duration::from_secs(5),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The signed value of a `tracking` line such as `Frequency : 50.1 ppm fast` (fast positive)
/// or `Stratum : 9`.
pub fn tracking_value(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(label))?;
    let rest = line.split_once(':')?.1.trim();
    let mut words = rest.split_whitespace();
    let v: f64 = words.next()?.trim_start_matches('+').parse().ok()?;
    Some(if rest.ends_with("slow") { -v } else { v })
}

/// A gnomond started with `-X offset=0.5,freq=50` (the null clock 0.5 s ahead and 50 ppm fast)
/// polling `upstream` every 0.25 s, also serving NTP on loopback so that its true offset can be
/// measured with [`served_offset`].
pub fn off_client(upstream: SocketAddr, extra: &str) -> Daemon {
    Daemon::start_with(
        &format!(
            "server {} port {} minpoll -2 maxpoll -2 iburst\nallow 127.0.0.1\n{extra}",
            upstream.ip(),
            upstream.port()
        ),
        &["-X", "offset=0.5,freq=50"],
        Ready::Answers,
    )
}

/// Watches `client` until `limit`: returns (seconds to the first synchronised `tracking`,
/// the served offsets measured after it, the last tracking text).
pub fn watch_sync(client: &Daemon, limit: Duration) -> (Option<f64>, Vec<(f64, f64)>, String) {
    let start = Instant::now();
    let mut first_sync = None;
    let mut offsets = Vec::new();
    let mut last = String::new();
    while start.elapsed() < limit {
        let text = chronyc_tracking(client.cmdport);
        let synced = tracking_value(&text, "Stratum").is_some_and(|s| s > 0.0);
        if synced {
            let t = start.elapsed().as_secs_f64();
            first_sync.get_or_insert(t);
            if let Some(o) = served_offset(client.addr_v4(), 5) {
                offsets.push((t, o));
            }
        }
        if !text.is_empty() {
            last = text;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    (first_sync, offsets, last)
}

/// The impairing UDP relay on loopback (a user-space netem) and what it does to datagrams:
/// gnomon-testnet's, shared with `gnomon-bench sync`. The lab's [`RouterRelay`] holds its
/// datagrams in the same crate's delay line, by the same [`Impairment`].
#[allow(unused_imports)] // not every test uses the relay
pub use gnomon_testnet::{Impairment, Relay, RelayCounts};

/// `chronyc -n -h 127.0.0.1 -p PORT sources` as text (empty when chronyc failed).
pub fn chronyc_sources(cmdport: u16) -> String {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .args(["-n", "-h", "127.0.0.1", "-p"])
            .arg(cmdport.to_string())
            .arg("sources"),
        Duration::from_secs(5),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private network namespace (`ip netns add`, loopback up), deleted on drop. Daemons and
/// relays started from [`in_netns`] live in it, isolated from every other session's ports.
#[derive(Debug)]
pub struct Netns {
    /// Its name under /var/run/netns.
    pub name: String,
}

impl Netns {
    /// Creates `gnc-PID-NANOS`; panics when namespaces cannot be created (the test fails).
    pub fn new() -> Netns {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("gnc-{}-{nanos}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(ok(&["netns", "add", &name]), "ip netns add {name} failed");
        let ns = Netns { name };
        assert!(
            ok(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]),
            "loopback of {} not up",
            ns.name
        );
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs `f` on a thread that first enters `ns` (setns(2) moves only the calling thread;
/// threads and processes it starts inherit the namespace). A panic in `f` is re-raised here.
#[allow(unsafe_code)]
pub fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{}", ns.name);
    let handle = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns with a valid namespace descriptor affects only this thread's network
        // namespace; `file` stays open for the call.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    });
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Polls `chronyc sources` on a chronyd's UDP `cmdport` until a line starts with `^*` or
/// `limit` passes; returns whether a source was selected and the last listing.
pub fn wait_selected(cmdport: u16, limit: Duration) -> (bool, String) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        last = chronyc_sources(cmdport);
        if last.lines().any(|l| l.starts_with("^*")) {
            return (true, last);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    (false, last)
}

// Multi-namespace labs (sync_hierarchy.rs): lab.rs.
mod lab;
#[allow(unused_imports)] // only the namespace tests use the labs
pub use lab::*;

/// How many random ports [`free_tcp_port`] tries before giving up.
const FREE_TCP_PORT_TRIES: usize = 100;

/// A port in 20000–60000 that is free right now for TCP on 127.0.0.1 and [::1] and for UDP
/// on both (an NTS-KE port and its NTP twin); panics after [`FREE_TCP_PORT_TRIES`] tries.
pub fn free_tcp_port() -> u16 {
    for _ in 0..FREE_TCP_PORT_TRIES {
        let p = free_udp_port();
        let v4 = std::net::TcpListener::bind(("127.0.0.1", p));
        let v6 = std::net::TcpListener::bind(("::1", p));
        if v4.is_ok() && v6.is_ok() {
            return p;
        }
    }
    panic!(
        "no port free for TCP and UDP on 127.0.0.1 and [::1] in 20000-60000 after \
         {FREE_TCP_PORT_TRIES} tries"
    );
}

/// A self-signed P-256 certificate for `localhost`, 127.0.0.1 and ::1 in `dir`: (cert, key),
/// made with openssl as a chrony user would make one. The directory and both files are left
/// world-readable: chronyd reads them after dropping to `_chrony` unless given `-u root`.
pub fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let out = run_bounded(
        Command::new(require_tool("openssl"))
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-addext"])
            .args([
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "openssl: {out:?}");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in [&cert, &key] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (cert, key)
}

/// `gnomon_serverstats_ntp_requests_ignored_total{reason="auth_failed"}` (bad MACs, NTS NAKs)
/// from the metrics endpoint at `metrics`.
pub fn auth_failures(metrics: SocketAddr) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&metrics, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let prefix = "gnomon_serverstats_ntp_requests_ignored_total{reason=\"auth_failed\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no auth_failed sample in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

// ---- chronyc over a Unix command socket (sync_tx_timestamps, sync_xleave*) ----

/// How long a client may take to select its source (iburst at minpoll -2: about a second).
pub const SYNC_LIMIT: Duration = Duration::from_secs(30);

/// `chronyc -n -h SOCKET ARGS` over a Unix command socket: its output (stdout, then stderr).
pub fn chronyc(socket: &Path, args: &str) -> String {
    let mut cmd = Command::new(require_tool("chronyc"));
    cmd.args(["-n", "-h", socket.to_str().unwrap()]);
    cmd.args(args.split_whitespace());
    let out = run_bounded(&mut cmd, Duration::from_secs(15));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// The value of a `name : value` report line ("Interleaved : Yes" → "Yes"); panics with the
/// report when there is none.
pub fn field(text: &str, label: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_once(": "))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label} in:\n{text}"))
}

/// A counter of a report ([`field`] as a number).
pub fn count(text: &str, label: &str) -> u64 {
    field(text, label).parse().unwrap()
}

/// Polls `chronyc sources` over `socket` until a line starts with `prefix`, for at most
/// [`SYNC_LIMIT`]; returns the listing.
pub fn wait_sources(socket: &Path, prefix: &str) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < SYNC_LIMIT {
        last = chronyc(socket, "sources");
        if last.lines().any(|l| l.starts_with(prefix)) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no {prefix} source within {SYNC_LIMIT:?}:\n{last}");
}
