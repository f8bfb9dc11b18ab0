//! NTS-KE client handshakes (RFC 8915 §4) off the NTP path: a few helper threads connect TCP
//! to the key-establishment server, move octets between the socket and the sans-IO
//! [`NtsKeClient`] the engine built, and report each result through a channel, waking the
//! poll loop with a byte on a socket pair whose read end is in the poll set — the pattern of
//! the name resolver ([`super::resolver`]), as architecture rule 5 allows helper threads only
//! for DNS and NTS-KE. chronyd runs its NTS-KE client sessions beside its main loop likewise.
//!
//! Every handshake is bounded: the TCP connect by [`CONNECT_TIMEOUT`] (and the state machine's
//! deadline), every read and write by the state machine's deadline (`DEFAULT_KE_TIMEOUT`, 10 s),
//! so a silent or slow server costs one helper thread at most that long and never the NTP
//! path. When the server's NTPv4 Server record names a host rather than an address, the helper
//! looks it up before reporting, so the engine gets the address with the outcome
//! (`Engine::nts_ke_finished`'s `resolved`). That lookup is bounded too: getaddrinfo cannot be
//! cancelled, so it runs on a short-lived detached thread (at most [`MAX_LOOKUPS`] at once)
//! while the helper waits no longer than what is left of the handshake's deadline; a lookup
//! that does not answer in time fails the exchange ([`HandshakeError::Resolve`]), so a hostile
//! key-exchange server naming a slow host cannot hold helpers beyond the deadline.

use gnomon_core::association::SourceId;
use gnomon_core::nts_client::{NtsKeClient, NtsKeClientError, NtsKeOutcome};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait for the TCP connection, seconds (the handshake's deadline may cut it shorter).
pub const CONNECT_TIMEOUT: f64 = 5.0;
/// Helper threads: key exchanges run concurrently up to this many, so one silent server does
/// not delay the others' sessions.
pub const WORKERS: usize = 4;
/// Octets read from the socket at a time.
const READ_CHUNK: usize = 4096;
/// Server-record lookups that may be running at once (threads left behind by lookups that
/// missed their deadline count until getaddrinfo returns); beyond it a lookup fails at once.
pub const MAX_LOOKUPS: usize = 8;

/// Why a key exchange failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The TCP connection could not be made (refused, unreachable, timed out).
    Connect(std::io::Error),
    /// Reading or writing the connection failed.
    Io(std::io::Error),
    /// The server closed the connection before a complete response.
    Closed,
    /// The state machine rejected the exchange (TLS, certificate, response, deadline).
    Ke(NtsKeClientError),
    /// The Server record's host name could not be looked up before the deadline (or too many
    /// lookups were already running).
    Resolve(String),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Connect(e) => write!(f, "could not connect : {e}"),
            HandshakeError::Io(e) => write!(f, "connection failed : {e}"),
            HandshakeError::Closed => f.write_str("connection closed early"),
            HandshakeError::Ke(e) => write!(f, "{e}"),
            HandshakeError::Resolve(name) => {
                write!(f, "could not resolve NTP server {name} in time")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<NtsKeClientError> for HandshakeError {
    fn from(e: NtsKeClientError) -> Self {
        HandshakeError::Ke(e)
    }
}

/// Seconds left until `deadline` as a socket timeout (never zero, which means "forever").
fn left(deadline: f64, now: f64) -> Duration {
    Duration::from_secs_f64((deadline - now).clamp(0.001, 3600.0))
}

/// Runs one key exchange with the server at `addr`: connect, then drive `ke` until it gives
/// an outcome or fails. `mono` reads the monotonic clock the state machine's deadline is on.
pub fn handshake(
    mut ke: NtsKeClient,
    addr: SocketAddr,
    mono: &dyn Fn() -> f64,
) -> Result<NtsKeOutcome, HandshakeError> {
    ke.check_deadline(mono())?;
    let connect = left(ke.deadline(), mono()).min(Duration::from_secs_f64(CONNECT_TIMEOUT));
    let mut stream = TcpStream::connect_timeout(&addr, connect).map_err(HandshakeError::Connect)?;
    // The handshake is a few small flights: send each at once.
    let _ = stream.set_nodelay(true);
    let mut out = Vec::new();
    let mut buf = [0u8; READ_CHUNK];
    loop {
        out.clear();
        ke.write_tls(&mut out);
        if !out.is_empty() {
            stream
                .set_write_timeout(Some(left(ke.deadline(), mono())))
                .map_err(HandshakeError::Io)?;
            match stream.write_all(&out) {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => {
                    ke.check_deadline(mono())?;
                    return Err(HandshakeError::Io(e));
                }
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
        stream
            .set_read_timeout(Some(left(ke.deadline(), mono())))
            .map_err(HandshakeError::Io)?;
        match stream.read(&mut buf) {
            Ok(n) => {
                let data = buf.get(..n).unwrap_or_default();
                if let Some(outcome) = ke.read_tls(data, mono())? {
                    return Ok(outcome);
                }
                if n == 0 {
                    return Err(HandshakeError::Closed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => ke.check_deadline(mono())?,
            Err(e) => return Err(HandshakeError::Io(e)),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The addresses of `name` (getaddrinfo; empty when the lookup failed).
fn lookup(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|a| a.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// Lookups running now (see [`MAX_LOOKUPS`]).
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// Gives back a [`LOOKUPS`] slot when its lookup thread ends, however it ends.
struct LookupSlot;

impl Drop for LookupSlot {
    fn drop(&mut self) {
        LOOKUPS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The address of an NTPv4 Server record that names a host, looked up within `timeout`:
/// `Ok(None)` for no record or an address literal (the engine reads those itself) or when the
/// lookup failed (requests keep going to the current address); else the first address of the
/// same family as the key-exchange server, or the first one. An error when no answer came in
/// time or [`MAX_LOOKUPS`] are already running.
pub fn resolve_server(
    outcome: &NtsKeOutcome,
    ke_addr: SocketAddr,
    timeout: Duration,
) -> Result<Option<IpAddr>, HandshakeError> {
    resolve_with(outcome, ke_addr, timeout, lookup)
}

/// [`resolve_server`] with the lookup function given.
fn resolve_with(
    outcome: &NtsKeOutcome,
    ke_addr: SocketAddr,
    timeout: Duration,
    look: fn(&str) -> Vec<IpAddr>,
) -> Result<Option<IpAddr>, HandshakeError> {
    let Some(name) = outcome.ntp_server.as_deref() else {
        return Ok(None);
    };
    if name.parse::<IpAddr>().is_ok() {
        return Ok(None);
    }
    let failed = || HandshakeError::Resolve(name.to_string());
    let claimed = LOOKUPS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < MAX_LOOKUPS).then_some(n + 1)
    });
    if claimed.is_err() {
        return Err(failed());
    }
    let slot = LookupSlot;
    let (tx, rx) = channel();
    let owned = name.to_string();
    // Detached: if the deadline passes first, the thread ends on its own when getaddrinfo
    // returns, its answer dropped with the channel.
    std::thread::Builder::new()
        .name("gnomond-ntsdns".into())
        .spawn(move || {
            let _slot = slot;
            let _ = tx.send(look(&owned));
        })
        .map_err(|_| failed())?;
    let addrs = match rx.recv_timeout(timeout) {
        Ok(addrs) => addrs,
        Err(RecvTimeoutError::Timeout) => return Err(failed()),
        // The thread died without an answer: as a failed lookup.
        Err(RecvTimeoutError::Disconnected) => Vec::new(),
    };
    Ok(addrs
        .iter()
        .find(|ip| ip.is_ipv4() == ke_addr.is_ipv4())
        .or(addrs.first())
        .copied())
}

/// A key exchange to run.
struct Job {
    id: SourceId,
    ke: NtsKeClient,
    addr: SocketAddr,
    name: String,
}

/// One finished key exchange.
#[derive(Debug)]
pub struct Finished {
    /// The source it was for.
    pub id: SourceId,
    /// The key-exchange server.
    pub addr: SocketAddr,
    /// The name its certificate was checked for.
    pub name: String,
    /// Keys and cookies, or why it failed.
    pub result: Result<NtsKeOutcome, HandshakeError>,
    /// The address of a Server record that names a host.
    pub resolved: Option<IpAddr>,
}

/// The helper threads and their pipe.
#[derive(Debug)]
pub struct NtsKeRunner {
    jobs: Sender<Job>,
    results: Receiver<Finished>,
    wake: UnixStream,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {} ({})", self.id, self.addr, self.name)
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, done: &Sender<Finished>, notify: &UnixStream) {
    loop {
        // Only the waiting thread holds the lock; the others are busy or queue behind it.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        // Ends when the daemon drops the job sender.
        let Ok(job) = job else {
            return;
        };
        let mono = crate::os::clock::monotonic;
        let deadline = job.ke.deadline();
        let (result, resolved) = match handshake(job.ke, job.addr, &mono) {
            // The lookup gets what is left of the handshake's deadline.
            Ok(o) => match resolve_server(&o, job.addr, left(deadline, mono())) {
                Ok(ip) => (Ok(o), ip),
                Err(e) => (Err(e), None),
            },
            Err(e) => (Err(e), None),
        };
        let msg = Finished {
            id: job.id,
            addr: job.addr,
            name: job.name,
            result,
            resolved,
        };
        if done.send(msg).is_err() || (&*notify).write_all(&[1]).is_err() {
            return;
        }
    }
}

impl NtsKeRunner {
    /// Starts the helper threads.
    pub fn start() -> std::io::Result<NtsKeRunner> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let notify = Arc::new(notify);
        let (jobs, todo) = channel::<Job>();
        let todo = Arc::new(Mutex::new(todo));
        let (done, results) = channel::<Finished>();
        for i in 0..WORKERS {
            let (todo, done, notify) = (Arc::clone(&todo), done.clone(), Arc::clone(&notify));
            std::thread::Builder::new()
                .name(format!("gnomond-ntske{i}"))
                .spawn(move || worker(&todo, &done, &notify))?;
        }
        Ok(NtsKeRunner {
            jobs,
            results,
            wake,
        })
    }

    /// The descriptor to poll for results.
    pub fn fd(&self) -> i32 {
        self.wake.as_raw_fd()
    }

    /// Queues the key exchange `ke` of source `id` with the server at `addr` (certificate
    /// checked for `name`).
    pub fn run(&mut self, id: SourceId, ke: NtsKeClient, addr: SocketAddr, name: &str) {
        let job = Job {
            id,
            ke,
            addr,
            name: name.to_string(),
        };
        // Fails only when every helper thread is gone; the source then never gets keys.
        if self.jobs.send(job).is_err() {
            tracing::error!("NTS-KE helper threads have stopped");
        }
    }

    /// Finished key exchanges (call when the descriptor is readable).
    pub fn take(&mut self) -> Vec<Finished> {
        let mut sink = [0u8; 64];
        while matches!(self.wake.read(&mut sink), Ok(n) if n > 0) {}
        self.results.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnomon_core::nts_client::NtsTrust;
    use std::net::TcpListener;
    use std::process::Command;

    /// A self-signed certificate for `localhost` made with openssl, as PEM.
    fn trusted_pem(tag: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("gnomond-ntske-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let ok = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(ok.status.success(), "openssl: {ok:?}");
        let pem = std::fs::read(&cert).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        pem
    }

    fn wall() -> f64 {
        crate::os::clock::realtime().as_f64()
    }

    #[test]
    fn silent_server_fails_at_the_deadline() {
        let trust = NtsTrust::new(&[trusted_pem("silent")], false).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mono = crate::os::clock::monotonic;
        let ke = NtsKeClient::new(&trust, "localhost", wall(), true, mono(), 0.5).unwrap();
        let start = mono();
        // The listener's backlog accepts the connection; nobody ever answers.
        let r = handshake(ke, addr, &mono);
        let took = mono() - start;
        assert!(
            matches!(r, Err(HandshakeError::Ke(NtsKeClientError::Timeout))),
            "{r:?}"
        );
        assert!((0.4..3.0).contains(&took), "took {took}");
        drop(listener);
    }

    #[test]
    fn refused_connection_is_reported_through_the_pipe() {
        let trust = NtsTrust::new(&[trusted_pem("refused")], false).unwrap();
        // A port nobody listens on: bind, learn the port, close.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mono = crate::os::clock::monotonic;
        let ke = NtsKeClient::new(&trust, "localhost", wall(), true, mono(), 5.0).unwrap();
        let mut runner = NtsKeRunner::start().unwrap();
        runner.run(SourceId(9), ke, addr, "localhost");
        let mut fds = [crate::os::poll::readable(runner.fd())];
        assert_eq!(crate::os::poll::wait(&mut fds, 5000).unwrap(), 1);
        let got = runner.take();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, SourceId(9));
        assert!(
            matches!(got[0].result, Err(HandshakeError::Connect(_))),
            "{:?}",
            got[0].result
        );
    }

    #[test]
    fn server_record_with_an_address_needs_no_lookup() {
        let outcome = NtsKeOutcome {
            keys: gnomon_core::nts::SessionKeys {
                c2s: [0u8; 32],
                s2c: [0u8; 32],
            },
            cookies: Vec::new(),
            ntp_server: Some("127.0.0.2".into()),
            ntp_port: None,
        };
        let ke: SocketAddr = "127.0.0.1:4460".parse().unwrap();
        let t = Duration::from_secs(5);
        // Never looked up: a lookup would panic.
        assert_eq!(
            resolve_with(&outcome, ke, t, |_| unreachable!()).unwrap(),
            None
        );
        let named = NtsKeOutcome {
            ntp_server: Some("localhost".into()),
            ..outcome
        };
        let ip = resolve_server(&named, ke, t).unwrap();
        assert!(ip.is_some_and(|ip| ip.is_loopback()), "{ip:?}");
    }

    fn named(name: &str) -> NtsKeOutcome {
        NtsKeOutcome {
            keys: gnomon_core::nts::SessionKeys {
                c2s: [0u8; 32],
                s2c: [0u8; 32],
            },
            cookies: Vec::new(),
            ntp_server: Some(name.into()),
            ntp_port: None,
        }
    }

    #[test]
    fn server_record_lookup_prefers_the_key_exchange_family() {
        let both = |_: &str| vec!["2001:db8::1".parse().unwrap(), "192.0.2.7".parse().unwrap()];
        let t = Duration::from_secs(5);
        let v4: SocketAddr = "127.0.0.1:4460".parse().unwrap();
        let v6: SocketAddr = "[::1]:4460".parse().unwrap();
        let o = named("ntp.example");
        assert_eq!(
            resolve_with(&o, v4, t, both).unwrap(),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            resolve_with(&o, v6, t, both).unwrap(),
            Some("2001:db8::1".parse().unwrap())
        );
        // A failed lookup keeps the current address.
        assert_eq!(resolve_with(&o, v4, t, |_| Vec::new()).unwrap(), None);
    }

    #[test]
    fn hanging_server_record_lookup_fails_the_exchange_at_the_deadline() {
        fn slow(_: &str) -> Vec<IpAddr> {
            std::thread::sleep(Duration::from_secs(3));
            vec![IpAddr::from([127, 0, 0, 1])]
        }
        let ke: SocketAddr = "127.0.0.1:4460".parse().unwrap();
        let mono = crate::os::clock::monotonic;
        let start = mono();
        let r = resolve_with(&named("slow.example"), ke, Duration::from_millis(200), slow);
        let took = mono() - start;
        assert!(
            matches!(&r, Err(HandshakeError::Resolve(n)) if n == "slow.example"),
            "{r:?}"
        );
        assert!(took < 2.0, "took {took}");
        assert_eq!(
            r.err().unwrap().to_string(),
            "could not resolve NTP server slow.example in time"
        );
    }
}
