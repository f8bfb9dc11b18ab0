//! The NTS-KE server (RFC 8915 §4) as chronyd runs it: `ntsservercert`/`ntsserverkey` (several
//! pairs, chosen by SNI), `ntsport` (4460), `ntsntpserver`, `ntsprocesses` helpers each with at
//! most `maxntsconnections` connections, `ntsratelimit`, cookie keys rotated every `ntsrotate`
//! seconds and kept in `ntsdumpdir/ntskeys` across restarts.
//!
//! Architecture rule 5: the main thread only accepts (non-blocking, a bounded number per
//! wake-up), checks `allow`/`deny` and `ntsratelimit`, and hands each connection to the least
//! busy helper thread (worker.rs), where the TLS work happens under a per-connection deadline.
//! When every helper holds `maxntsconnections`, a new connection is accepted and closed at
//! once, as chronyd does, rather than left waiting in the kernel's backlog. Key rotation
//! happens on the main thread, which gives the NTP path (`Server::set_nts_keys`) and every
//! helper a copy of the new keys. Helpers report finished connections through a socket in the
//! main poll set.

pub(crate) mod dump;
mod worker;

use crate::cli::Family;
use crate::ntp_server::CoreResponder;
use crate::os::poll::{self, PollFd};
use gnomon_conf::Settings;
use gnomon_core::client_log::Service;
use gnomon_core::nts::{NtsKeServerSetup, ServerKeys};
use gnomon_core::rate_limit::Limiter;
use gnomon_core::server::Server;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use worker::{Msg, Worker};

/// Connections accepted per listener per wake-up, so a connection flood cannot starve NTP.
const ACCEPTS_PER_WAKE: usize = 32;
/// Helper threads at most (chronyd allows any number of processes; more threads than cores
/// only add contention, and the pipe protocol names a helper in one octet).
const MAX_HELPERS: usize = 64;

/// Set by `rekey` (keys.rs); the main loop reloads externally managed keys.
static RELOAD: AtomicBool = AtomicBool::new(false);

/// Asks the service to reload `ntsdumpdir/ntskeys` if rotation is disabled (`rekey`).
pub fn request_reload() {
    RELOAD.store(true, Ordering::Relaxed);
}

/// Why the NTS-KE server cannot start.
#[derive(Debug)]
pub enum NtsKeStartError {
    /// A certificate or key file could not be read.
    File(PathBuf, std::io::Error),
    /// The TLS configuration was refused.
    Setup(gnomon_core::nts::NtsKeSetupError),
    /// /dev/urandom unreadable.
    Random(std::io::Error),
}

impl std::fmt::Display for NtsKeStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NtsKeStartError::File(p, e) => write!(f, "Could not read {} : {e}", p.display()),
            NtsKeStartError::Setup(e) => write!(f, "Could not set credentials : {e}"),
            NtsKeStartError::Random(e) => write!(f, "Could not read /dev/urandom : {e}"),
        }
    }
}

impl std::error::Error for NtsKeStartError {}

struct Helper {
    tx: mpsc::Sender<Msg>,
    wake: UnixStream,
    active: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Counters, for logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct NtsKeCounters {
    /// Connections handed to a helper.
    pub accepted: u64,
    /// Refused by `allow`/`deny`.
    pub denied: u64,
    /// Refused by `ntsratelimit`.
    pub rate_limited: u64,
    /// Refused because every helper had `maxntsconnections`.
    pub full: u64,
}

/// The NTS-KE service of the main loop.
pub struct NtsKeService {
    listeners: Vec<TcpListener>,
    setup: NtsKeServerSetup,
    keys: ServerKeys,
    dump_dir: Option<PathBuf>,
    interval: f64,
    helpers_wanted: usize,
    max_per_helper: usize,
    helpers: Vec<Helper>,
    /// Read end of the helpers' "connection finished" pipe.
    done_rx: UnixStream,
    done_tx: UnixStream,
    rng: StdRng,
    counters: NtsKeCounters,
}

impl NtsKeService {
    /// `serverstats`' NTS-KE counters: (accepted, dropped). Like chronyd, every connection
    /// past `allow`/`deny` is "accepted" (also those closed at once because every slot is
    /// busy), and "dropped" are those `ntsratelimit` refused.
    pub fn serverstats(&self) -> (u64, u64) {
        let c = &self.counters;
        (c.accepted + c.full + c.rate_limited, c.rate_limited)
    }
}

impl std::fmt::Debug for NtsKeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtsKeService")
            .field("listeners", &self.listeners.len())
            .field("helpers", &self.helpers.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn random_rng() -> Result<StdRng, NtsKeStartError> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(NtsKeStartError::Random)?;
    Ok(StdRng::from_seed(seed))
}

/// Opens the listeners: on `bindaddress` of each family or the wildcard, one socket per
/// family; the IPv6 one is IPv6-only (`os::tcp::listen`), so the IPv4 socket owns IPv4
/// whatever the system's `bindv6only` default.
fn open_listeners(settings: &Settings, family: Option<Family>) -> Vec<TcpListener> {
    let pick = |v6: bool| -> IpAddr {
        settings
            .bind_addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv6() == v6)
            .unwrap_or(if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            })
    };
    let mut out: Vec<TcpListener> = Vec::new();
    for v6 in [true, false] {
        if family == Some(if v6 { Family::V4 } else { Family::V6 }) {
            continue;
        }
        let addr = SocketAddr::new(pick(v6), settings.ntsport);
        match crate::os::tcp::listen(addr) {
            Ok(l) => {
                tracing::debug!("Opened NTS-KE socket on {addr}");
                out.push(l);
            }
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
            Err(e) => tracing::error!("Could not open NTS-KE socket on {addr} : {e}"),
        }
    }
    out
}

impl NtsKeService {
    /// Sets up the service if `ntsservercert` is configured (`Ok(None)` otherwise): reads the
    /// certificates, loads or generates the cookie keys (writing the dump), gives the NTP
    /// server the keys and the `ntsratelimit` limiter (`rate_limit` is whether the directive
    /// is present), and binds the listeners. Helpers start on the first loop iteration, after
    /// privileges are dropped, so that they never hold capabilities.
    pub fn open(
        settings: &Settings,
        rate_limit: bool,
        family: Option<Family>,
        server: &mut Server,
    ) -> Result<Option<NtsKeService>, NtsKeStartError> {
        if settings.nts_server_certs.is_empty() {
            return Ok(None);
        }
        if settings.nts_server_certs.len() != settings.nts_server_keys.len() {
            tracing::warn!(
                "{} ntsservercert but {} ntsserverkey: using the first {} pairs",
                settings.nts_server_certs.len(),
                settings.nts_server_keys.len(),
                settings
                    .nts_server_certs
                    .len()
                    .min(settings.nts_server_keys.len())
            );
        }
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| NtsKeStartError::File(p.clone(), e));
        let mut pairs = Vec::new();
        for (cert, key) in settings
            .nts_server_certs
            .iter()
            .zip(&settings.nts_server_keys)
        {
            pairs.push((read(cert)?, read(key)?));
        }
        let mut setup =
            NtsKeServerSetup::new(&pairs, settings.port).map_err(NtsKeStartError::Setup)?;
        setup.ntp_server = settings.ntsntpserver.clone();
        let mut rng = random_rng()?;
        let interval = f64::from(settings.ntsrotate.max(0));
        let now = crate::os::clock::monotonic();
        let dump_dir = settings.ntsdumpdir.clone();
        let keys = match dump_dir
            .as_deref()
            .and_then(|d| load_keys(d, now, interval))
        {
            Some(k) => k,
            None => {
                let k = ServerKeys::generate(&mut rng, now, interval);
                if interval > 0.0 {
                    save_keys(dump_dir.as_deref(), &k, now);
                }
                k
            }
        };
        server.set_nts_keys(Some(keys.clone()));
        if rate_limit {
            match Limiter::new(crate::ntp_server::rate_limit(&settings.ntsratelimit)) {
                Ok(l) => server.client_log_mut().set_limiter(Service::NtsKe, Some(l)),
                Err(e) => tracing::warn!("Invalid ntsratelimit : {e}"),
            }
        }
        let (done_rx, done_tx) = UnixStream::pair().map_err(NtsKeStartError::Random)?;
        for s in [&done_rx, &done_tx] {
            s.set_nonblocking(true).map_err(NtsKeStartError::Random)?;
        }
        Ok(Some(NtsKeService {
            listeners: open_listeners(settings, family),
            setup,
            keys,
            dump_dir,
            interval,
            helpers_wanted: usize::try_from(settings.ntsprocesses)
                .unwrap_or(1)
                .clamp(1, MAX_HELPERS),
            max_per_helper: usize::try_from(settings.maxntsconnections)
                .unwrap_or(1)
                .max(1),
            helpers: Vec::new(),
            done_rx,
            done_tx,
            rng,
            counters: NtsKeCounters::default(),
        }))
    }

    fn start_helpers(&mut self) {
        while self.helpers.len() < self.helpers_wanted {
            let index = self.helpers.len() as u8;
            let started = (|| -> std::io::Result<Helper> {
                let (wake_tx, wake_rx) = UnixStream::pair()?;
                wake_tx.set_nonblocking(true)?;
                wake_rx.set_nonblocking(true)?;
                let (tx, rx) = mpsc::channel();
                let worker = Worker {
                    index,
                    rx,
                    wake: wake_rx,
                    done: self.done_tx.try_clone()?,
                    setup: self.setup.clone(),
                    keys: self.keys.clone(),
                    rng: StdRng::from_rng(&mut self.rng),
                };
                let thread = std::thread::Builder::new()
                    .name(format!("nts-ke-{index}"))
                    .spawn(move || worker.run())?;
                Ok(Helper {
                    tx,
                    wake: wake_tx,
                    active: 0,
                    thread: Some(thread),
                })
            })();
            match started {
                Ok(h) => self.helpers.push(h),
                Err(e) => {
                    tracing::error!("Could not start NTS-KE helper : {e}");
                    break;
                }
            }
        }
    }

    fn send(helper: &Helper, msg: Msg) -> bool {
        if helper.tx.send(msg).is_err() {
            return false;
        }
        // A full wake socket already holds a wake-up: nothing is lost.
        let _ = (&helper.wake).write(&[0]);
        true
    }

    /// Before poll: appends the listeners and the helpers' pipe; returns `timeout_ms`
    /// shortened to the next key rotation (0 when a `rekey` reload is pending).
    pub fn prepare(&mut self, fds: &mut Vec<PollFd>, timeout_ms: i32) -> i32 {
        if self.helpers.is_empty() {
            self.start_helpers();
        }
        fds.push(poll::readable(self.done_rx.as_raw_fd()));
        // The listeners stay in the poll set even while every helper is full: as chronyd
        // does, a client arriving then is accepted and closed at once (`accept`), instead of
        // waiting in the kernel's backlog for SYN retries.
        for l in &self.listeners {
            fds.push(poll::readable(l.as_raw_fd()));
        }
        if RELOAD.load(Ordering::Relaxed) {
            return 0;
        }
        match self.keys.next_rotation() {
            Some(due) => {
                let left = ((due - crate::os::clock::monotonic()).max(0.0) * 1000.0).ceil();
                let ms = left.min(f64::from(i32::MAX)) as i32;
                if timeout_ms < 0 {
                    ms
                } else {
                    timeout_ms.min(ms)
                }
            }
            None => timeout_ms,
        }
    }

    /// After poll: `fds` are the entries [`NtsKeService::prepare`] appended. Counts finished
    /// connections, accepts new ones, rotates or reloads the keys when due.
    pub fn service(&mut self, fds: &[PollFd], responder: &mut CoreResponder) {
        if fds.first().is_some_and(|f| f.revents != 0) {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = (&self.done_rx).read(&mut buf) {
                for &i in buf.get(..n).unwrap_or(&[]) {
                    if let Some(h) = self.helpers.get_mut(usize::from(i)) {
                        h.active = h.active.saturating_sub(1);
                    }
                }
            }
        }
        for i in 0..self.listeners.len() {
            if fds.get(1 + i).is_some_and(|f| f.revents != 0) {
                self.accept(i, responder.server_mut());
            }
        }
        let now = crate::os::clock::monotonic();
        if self.keys.rotate_if_due(&mut self.rng, now) {
            tracing::debug!("Rotated NTS server keys");
            save_keys(self.dump_dir.as_deref(), &self.keys, now);
            self.distribute(responder.server_mut());
        }
        if RELOAD.swap(false, Ordering::Relaxed) && self.interval <= 0.0 {
            if let Some(k) = self
                .dump_dir
                .as_deref()
                .and_then(|d| load_keys(d, now, self.interval))
            {
                self.keys = k;
                self.distribute(responder.server_mut());
            }
        }
    }

    fn distribute(&mut self, server: &mut Server) {
        server.set_nts_keys(Some(self.keys.clone()));
        for h in &self.helpers {
            Self::send(h, Msg::Keys(Box::new(self.keys.clone())));
        }
    }

    fn accept(&mut self, index: usize, server: &mut Server) {
        for _ in 0..ACCEPTS_PER_WAKE {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("Could not accept NTS-KE connection : {e}");
                    return;
                }
            };
            // A dual-stack socket reports IPv4 clients as mapped addresses.
            let peer = match peer.ip() {
                IpAddr::V6(a) => match a.to_ipv4_mapped() {
                    Some(v4) => SocketAddr::new(IpAddr::V4(v4), peer.port()),
                    None => peer,
                },
                IpAddr::V4(_) => peer,
            };
            let now = crate::os::clock::monotonic();
            if !server.access().allowed(peer.ip()) {
                tracing::debug!("Rejected NTS-KE connection from {peer} (access denied)");
                self.counters.denied += 1;
                continue;
            }
            if !server.check_service(peer, Service::NtsKe, now) {
                tracing::debug!("Rejected NTS-KE connection from {peer} (rate limited)");
                self.counters.rate_limited += 1;
                continue;
            }
            // Every helper at `maxntsconnections`: dropping `stream` closes the connection
            // now, as chronyd does; the client sees EOF and retries later.
            let Some(helper) = self
                .helpers
                .iter_mut()
                .filter(|h| h.active < self.max_per_helper)
                .min_by_key(|h| h.active)
            else {
                self.counters.full += 1;
                tracing::debug!("Rejected NTS-KE connection from {peer} (too many connections)");
                continue;
            };
            // Accepted sockets do not inherit O_NONBLOCK on Linux.
            if let Err(e) = stream.set_nonblocking(true) {
                tracing::debug!("Could not make NTS-KE connection non-blocking : {e}");
                continue;
            }
            if Self::send(helper, Msg::Conn(stream, peer, now)) {
                helper.active += 1;
                self.counters.accepted += 1;
            }
        }
    }
}

impl Drop for NtsKeService {
    fn drop(&mut self) {
        let c = self.counters;
        tracing::info!(
            "NTS-KE connections accepted {} denied {} rate-limited {} refused-full {}",
            c.accepted,
            c.denied,
            c.rate_limited,
            c.full
        );
        for h in &self.helpers {
            Self::send(h, Msg::Stop);
        }
        for h in &mut self.helpers {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Loads `dir/ntskeys`; `None` (with a message) when missing or unusable.
fn load_keys(dir: &std::path::Path, now: f64, interval: f64) -> Option<ServerKeys> {
    let path = dump::path(dir);
    match dump::read(dir) {
        Ok(dump::Loaded::Missing) => {
            if interval <= 0.0 {
                tracing::warn!("Could not open {} : no such file", path.display());
            }
            None
        }
        Ok(dump::Loaded::Text {
            text,
            world_readable,
        }) => {
            if world_readable {
                tracing::warn!(
                    "{} is accessible by other users: anyone able to read it can decrypt NTS cookies",
                    path.display()
                );
            }
            match ServerKeys::load(&text, now, interval) {
                Ok(k) => {
                    tracing::info!("Loaded NTS server keys from {}", path.display());
                    Some(k)
                }
                Err(e) => {
                    tracing::warn!("Could not load {} : {e}", path.display());
                    None
                }
            }
        }
        Err(e) => {
            tracing::warn!("Could not open {} : {e}", path.display());
            None
        }
    }
}

/// Writes the dump when `ntsdumpdir` is set.
fn save_keys(dir: Option<&std::path::Path>, keys: &ServerKeys, now: f64) {
    let Some(dir) = dir else {
        return;
    };
    if let Err(e) = dump::write(dir, &keys.dump(now)) {
        tracing::error!("Could not save {} : {e}", dump::path(dir).display());
    }
}

/// Before poll, for the scheduler: see [`NtsKeService::prepare`].
pub fn prepare(service: &mut Option<NtsKeService>, fds: &mut Vec<PollFd>, timeout_ms: i32) -> i32 {
    match service.as_mut() {
        Some(s) => s.prepare(fds, timeout_ms),
        None => timeout_ms,
    }
}

/// After poll, for the scheduler: see [`NtsKeService::service`].
pub fn service(service: &mut Option<NtsKeService>, fds: &[PollFd], responder: &mut CoreResponder) {
    if let Some(s) = service.as_mut() {
        s.service(fds, responder);
    }
}
