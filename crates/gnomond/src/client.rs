//! The NTP client side of gnomond: drives the sans-IO synchronisation engine
//! (`gnomon_core::association::Engine`) from the daemon's single poll(2) loop, as chronyd's
//! `ntp_io`/`ntp_core` pair does.
//!
//! * Every client request leaves from a fresh UDP socket on a kernel-chosen ephemeral port
//!   (RFC 9109 port randomisation); the socket is kept only until the next request of the same
//!   source, so late or spoofed replies to older requests find no socket, and a reply is only
//!   accepted from the address the request went to. Symmetric peers send and receive on the
//!   NTP port, as chronyd's peers do ([`peers`]).
//! * Receive times are the kernel's SO_TIMESTAMPNS stamps (the OS layer's `RxBatch`), moved to
//!   the driven clock's time base with the driver's correction.
//! * Names are resolved on a helper thread ([`resolver`]) that reports through a socket pair in
//!   the poll set; numeric addresses never go to it.
//! * The engine's next deadline becomes the poll timeout; engine events become chronyd's log
//!   messages; its `tracking`/`sources` reports are shared with the command server and metrics
//!   ([`reports`]); while synchronised the NTP server serves the engine's stratum, reference
//!   ID, root delay and dispersion.
//! * `driftfile` loaded at start and written atomically every hour and at exit ([`driftfile`]);
//!   `-q`/`-Q` one-shot modes with chronyd's messages and exit codes.

pub mod auth;
// ---- control: chronyc's source and clock commands (commands.rs) ----
pub mod commands;
pub mod config;
pub mod driftfile;
pub mod nts_dump;
pub mod nts_ke;
pub mod peers;
pub mod reports;
pub mod resolver;
pub mod trust;
// ---- kernel transmit timestamps (tx_stamps.rs) ----
pub mod tx_stamps;

pub use reports::ClientReports;

use crate::clock::DaemonClock;
use crate::ntp_server::CoreResponder;
use crate::os::net::{RxBatch, TxBatch, UdpSocket};
use crate::os::poll::{self, PollFd, POLLERR, POLLIN};
use config::SourcePlan;
use gnomon_conf::Settings;
use gnomon_core::association::{Action, Engine, Event, ExitReason, OneShot, PoolId, SourceId};
use gnomon_core::local_clock::LeapState;
use gnomon_core::server::ReferenceInfo;
use gnomon_wire::{LeapIndicator, NtpTimestamp};
use reports::{Snapshot, SourceRow};
use resolver::{Resolver, Token};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;

/// How long `-q`/`-Q` wait for a measurement without `-t`, seconds: chronyd 4.3 gives up
/// about 11 s after start when its iburst sources do not answer.
pub const ONE_SHOT_DEFAULT_LIMIT: f64 = 11.0;

/// Datagrams read from one source socket per wake-up.
const READS_PER_WAKE: usize = 4;

/// What a descriptor appended to the poll set belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Polled {
    Resolver,
    Source(SourceId),
    /// NTS-KE helper results (auth.rs).
    NtsKe,
    /// A peer's socket on the NTP port (peers.rs).
    Peer(SocketAddr),
}

/// One source's socket.
#[derive(Debug)]
struct SourceSocket {
    socket: UdpSocket,
    remote: SocketAddr,
}

/// The client state owned by the poll loop.
#[derive(Debug)]
pub struct Client {
    engine: Engine,
    plans: Vec<SourcePlan>,
    names: BTreeMap<SourceId, String>,
    pool_ports: BTreeMap<PoolId, (u16, String)>,
    resolver: Option<Resolver>,
    sockets: BTreeMap<SourceId, SourceSocket>,
    rx: RxBatch,
    tx: TxBatch,
    polled: Vec<Polled>,
    drift_path: Option<PathBuf>,
    drift_interval: f64,
    next_drift_save: f64,
    last_drift: Option<(f64, f64)>,
    max_drift: f64,
    shared: Rc<RefCell<Snapshot>>,
    one_shot: Option<OneShot>,
    timeout_given: bool,
    started: bool,
    exit: Option<i32>,
    /// `logdir` + `log tracking measurements statistics` (statlog.rs).
    statlog: Option<crate::statlog::StatLogs>,
    /// Commands queued by the command server (commands.rs).
    commands: reports::CommandQueue,
    /// The `sourcedir` sources, for `reload sources` (commands.rs).
    sourcedir: commands::SourceDir,
    /// Keys, `authselectmode`, NTS trust and key exchanges (auth.rs).
    auth: auth::ClientAuth,
    /// Peers' sockets on the NTP port (peers.rs).
    peers: peers::PeerSockets,
    /// Kernel transmit timestamps read and not yet given to the engine (tx_stamps.rs).
    tx_stamps: tx_stamps::TxStamps,
}

/// Why the client could not start.
#[derive(Debug)]
pub enum ClientError {
    /// The resolver thread or its pipe could not be created.
    Resolver(std::io::Error),
    /// The NTS-KE helper threads or their pipe could not be created.
    NtsKe(std::io::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Resolver(e) => write!(f, "Could not start name resolver : {e}"),
            ClientError::NtsKe(e) => write!(f, "Could not start NTS-KE helper : {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

fn wildcard(remote: SocketAddr) -> SocketAddr {
    let ip = match remote {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// The one-shot mode of `-q`/`-Q`.
pub fn one_shot_mode(letter: Option<char>) -> Option<OneShot> {
    match letter {
        Some('q') => Some(OneShot::Set),
        Some('Q') => Some(OneShot::Print),
        _ => None,
    }
}

impl Client {
    /// Builds the engine from the settings (sources are added on the first loop turn).
    /// `one_shot` is `-q`/`-Q`, `timeout` is `-t` (the one-shot limit), `clock_control` is
    /// false under `-x` (for the statistics logs' wording). Returns the client and the reports
    /// handle for the command server.
    pub fn new(
        settings: &Settings,
        one_shot: Option<OneShot>,
        timeout: Option<i32>,
        seed: u64,
        clock_control: bool,
    ) -> Result<(Client, ClientReports), ClientError> {
        let limit = timeout
            .filter(|t| *t >= 0)
            .map_or(ONE_SHOT_DEFAULT_LIMIT, f64::from);
        let mut cfg = config::engine_config(settings, one_shot.map(|m| (m, limit)), seed);
        cfg.leap_table = config::load_leap_table(settings, std::path::Path::new(config::ZONEINFO));
        for src in &settings.sources {
            for option in config::unsupported_options(src.kind, &src.spec) {
                tracing::warn!(
                    "{}: option {option} of {} is not implemented yet; it has no effect",
                    src.location,
                    src.spec.host
                );
            }
        }
        let plans = config::source_plans(settings);
        let needs_resolver = plans
            .iter()
            .any(|p| p.pool_max.is_some() || p.host.parse::<IpAddr>().is_err());
        let resolver = if needs_resolver {
            Some(Resolver::start().map_err(ClientError::Resolver)?)
        } else {
            None
        };
        let shared = Rc::new(RefCell::new(Snapshot::default()));
        let drift_interval = settings
            .driftfile_interval
            .filter(|i| *i > 0)
            .map_or(driftfile::DEFAULT_INTERVAL, f64::from);
        let statlog = if one_shot.is_some() {
            None
        } else {
            let logs = crate::statlog::StatLogs::open(
                crate::statlog::StatLogSettings::from_settings(settings, clock_control),
            );
            logs.map_err(|e| tracing::error!("{e}")).ok()
        };
        let mut engine = Engine::new(cfg);
        if let Some((min, max)) = settings.fallbackdrift {
            engine.set_fallback_drift(min, max);
        }
        let auth =
            auth::ClientAuth::new(settings, &plans, &mut engine).map_err(ClientError::NtsKe)?;
        // Peers' sockets on the NTP port (peers.rs), opened before privileges are dropped.
        let mut peer_sockets = peers::PeerSockets::new(match one_shot {
            None => peers::ServerPort::from_settings(settings),
            Some(_) => peers::ServerPort::default(),
        });
        for p in plans
            .iter()
            .filter(|p| p.cfg.kind == gnomon_core::association::SourceKind::Peer)
        {
            if let Ok(ip) = p.host.parse::<IpAddr>() {
                peer_sockets.open(SocketAddr::new(ip, p.port));
            }
        }
        let client = Client {
            engine,
            plans,
            names: BTreeMap::new(),
            pool_ports: BTreeMap::new(),
            resolver,
            sockets: BTreeMap::new(),
            rx: RxBatch::new(),
            tx: TxBatch::new(),
            polled: Vec::new(),
            // One-shot runs neither read nor write the drift file.
            drift_path: settings.driftfile.clone().filter(|_| one_shot.is_none()),
            max_drift: settings.maxdrift,
            drift_interval,
            next_drift_save: crate::os::clock::monotonic() + drift_interval,
            last_drift: None,
            shared: shared.clone(),
            commands: reports::CommandQueue::default(),
            sourcedir: commands::SourceDir::from_settings(settings),
            one_shot,
            timeout_given: timeout.is_some_and(|t| t >= 0),
            started: false,
            exit: None,
            statlog,
            auth,
            peers: peer_sockets,
            tx_stamps: tx_stamps::TxStamps::default(),
        };
        let commands = client.commands.clone();
        Ok((client, ClientReports(shared, commands)))
    }

    /// Loads the drift file into the clock, adds the sources with a numeric address and asks
    /// the resolver for the others (done on the first loop turn, when the clock exists).
    fn start<C: DaemonClock>(&mut self, clock: &mut C) {
        self.started = true;
        if let Some(path) = &self.drift_path {
            match driftfile::load(path, self.max_drift) {
                Ok(Some((freq, skew))) => match self.engine.load_drift(freq, skew, clock) {
                    Ok(()) => {
                        tracing::debug!(
                            "Frequency {freq:.3} +/- {skew:.3} ppm read from {}",
                            path.display()
                        );
                        self.last_drift = Some((freq, skew));
                    }
                    Err(e) => {
                        tracing::warn!("Could not set frequency from {} : {e}", path.display())
                    }
                },
                Ok(None) => {}
                Err(e) => tracing::warn!("Could not read {} : {e} (ignored)", path.display()),
            }
        }
        let now = clock.read();
        let plans = self.plans.clone();
        for (i, plan) in plans.iter().enumerate() {
            if let Some(max) = plan.pool_max {
                let id = self
                    .engine
                    .add_pool_auth(&plan.host, plan.cfg, &plan.auth, max);
                self.pool_ports.insert(id, (plan.port, plan.host.clone()));
            } else if let Ok(ip) = plan.host.parse::<IpAddr>() {
                // A second source at the same IP address is skipped (commands.rs).
                self.add_unless_present(SocketAddr::new(ip, plan.port), plan, now);
            } else if let Some(r) = self.resolver.as_mut() {
                r.resolve(Token::Source(i), &plan.host, plan.port);
            }
        }
        // NTS sessions saved at the last exit (auth.rs), before any key exchange starts.
        self.restore_sessions(now);
        // The engine's clock (and a one-shot time limit) starts now.
        let actions = self.engine.handle_timeout(now, clock);
        for a in actions {
            self.act(a);
        }
        self.start_key_exchanges(clock);
        self.refresh(clock);
    }

    /// Appends the client's descriptors to `fds` and returns `timeout_ms` shortened to the
    /// engine's next deadline.
    pub fn prepare<C: DaemonClock>(
        &mut self,
        fds: &mut Vec<PollFd>,
        timeout_ms: i32,
        clock: &mut C,
    ) -> i32 {
        if !self.started {
            self.start(clock);
        }
        // commands.rs: what the command server queued since the last turn.
        self.run_commands(clock);
        self.polled.clear();
        if let Some(r) = &self.resolver {
            fds.push(poll::readable(r.fd()));
            self.polled.push(Polled::Resolver);
        }
        if let Some(fd) = self.auth.fd() {
            fds.push(poll::readable(fd));
            self.polled.push(Polled::NtsKe);
        }
        for (id, s) in &self.sockets {
            fds.push(poll::readable(s.socket.fd()));
            self.polled.push(Polled::Source(*id));
        }
        for (remote, fd) in self.peers.fds() {
            fds.push(poll::readable(fd));
            self.polled.push(Polled::Peer(remote));
        }
        let mut wait = self.engine.poll_timeout().map(|t| t - clock.read());
        if self.drift_path.is_some() {
            let d = self.next_drift_save - crate::os::clock::monotonic();
            wait = Some(wait.map_or(d, |w| w.min(d)));
        }
        match wait {
            None => timeout_ms,
            Some(w) => {
                // Round up so the wake-up is never just before the deadline.
                let ms = (w * 1000.0).ceil().clamp(0.0, f64::from(i32::MAX)) as i32;
                if timeout_ms < 0 || ms < timeout_ms {
                    ms
                } else {
                    timeout_ms
                }
            }
        }
    }

    /// After poll: `fds` are the entries [`Client::prepare`] appended. Handles lookups,
    /// replies and due timers; returns the exit status once the engine asks to exit.
    pub fn service<C: DaemonClock>(
        &mut self,
        fds: &[PollFd],
        clock: &mut C,
        responder: &mut CoreResponder,
    ) -> Option<i32> {
        let mut actions = Vec::new();
        let mut busy = false;
        for (target, fd) in self.polled.clone().iter().zip(fds) {
            if fd.revents & (POLLIN | POLLERR) == 0 {
                continue;
            }
            busy = true;
            match target {
                Polled::Resolver => self.take_lookups(clock),
                Polled::Source(id) => self.receive(*id, clock, &mut actions),
                Polled::NtsKe => self.take_key_exchanges(clock),
                Polled::Peer(remote) => self.receive_peer(*remote, clock, &mut actions),
            }
        }
        self.reload_keys();
        let now = clock.read();
        self.restore_sessions(now);
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            actions.extend(self.engine.handle_timeout(now, clock));
            busy = true;
        }
        // Actions may queue more (a pool lookup after a replacement): bounded rounds.
        for _ in 0..4 {
            if actions.is_empty() {
                break;
            }
            for a in std::mem::take(&mut actions) {
                self.act(a);
            }
            if self
                .engine
                .poll_timeout()
                .is_some_and(|t| t == f64::NEG_INFINITY)
            {
                let now = clock.read();
                actions.extend(self.engine.handle_timeout(now, clock));
            }
        }
        // tx_stamps.rs: stamps of the requests just sent reach the engine now.
        self.apply_tx_stamps(clock);
        // Key exchanges the timers asked for go to the helper threads.
        self.start_key_exchanges(clock);
        if self.drift_path.is_some() && crate::os::clock::monotonic() >= self.next_drift_save {
            self.next_drift_save = crate::os::clock::monotonic() + self.drift_interval;
            self.save_drift(clock);
        }
        if busy {
            if let Some(logs) = self.statlog.as_mut() {
                let now = clock.read();
                logs.observe(now, &self.engine, now, clock);
            }
            self.refresh(clock);
        }
        // Every wake-up, before the NTP sockets are served: the root dispersion served grows
        // with the time since the last update.
        responder.set_synchronised(self.served_reference(clock));
        self.exit
    }

    fn take_lookups<C: DaemonClock>(&mut self, clock: &mut C) {
        let Some(r) = self.resolver.as_mut() else {
            return;
        };
        let done = r.take();
        let now = clock.read();
        for res in done {
            match res.token {
                Token::Source(i) => {
                    match res.addrs.first() {
                        // commands.rs: added, or kept/replaced after a `refresh`.
                        Some(addr) => self.source_resolved(i, *addr, now),
                        None => tracing::warn!("Could not resolve address of {}", res.name),
                    }
                }
                Token::Pool(pool) => {
                    if res.addrs.is_empty() {
                        tracing::warn!("Could not resolve address of {}", res.name);
                    }
                    self.engine.pool_resolved(pool, &res.addrs, now);
                    for (id, _) in self.engine.sources(now, clock) {
                        self.names.entry(id).or_insert_with(|| res.name.clone());
                    }
                }
            }
        }
    }

    fn receive<C: DaemonClock>(&mut self, id: SourceId, clock: &mut C, actions: &mut Vec<Action>) {
        // tx_stamps.rs: the request's kernel transmit stamp before its reply (also POLLERR).
        self.take_tx_stamps(id, clock);
        for _ in 0..READS_PER_WAKE {
            let Some(s) = self.sockets.get(&id) else {
                return;
            };
            let n = match self.rx.recv(&s.socket) {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!("Could not receive from {} : {e}", s.remote);
                    return;
                }
            };
            if n == 0 {
                return;
            }
            let remote = s.remote;
            for i in 0..n {
                let Some(d) = self.rx.get(i) else {
                    continue;
                };
                // A connected socket would filter this; ours are not, so check the sender.
                if d.from != remote || d.truncated {
                    continue;
                }
                let rx = match d.rx {
                    Some(ts) => ts.as_f64() + clock.correction(),
                    None => clock.read(),
                };
                // sync: `local ... orphan` compares refids with our address (selection/orphan.rs).
                self.engine.learn_local_refid(d.local.map(|p| match p {
                    crate::os::net::PacketInfo::V4 { addr, .. } => u32::from_be_bytes(addr),
                    crate::os::net::PacketInfo::V6 { addr, .. } => {
                        gnomon_wire::refid::refid_ipv6(&std::net::Ipv6Addr::from(addr))
                    }
                }));
                let data = d.data.to_vec();
                let stamp = if d.rx.is_some() {
                    crate::statlog::format::StampSource::Kernel
                } else {
                    crate::statlog::format::StampSource::Daemon
                };
                let (more, record) = self
                    .engine
                    .handle_packet_recorded(id, rx, &data, None, false, clock);
                actions.extend(more);
                if let (Some(logs), Some(rec)) = (self.statlog.as_mut(), record) {
                    let tx = tx_stamps::stamp_source(&self.engine, id);
                    logs.record_sample(rx, &rec, tx, stamp);
                } else if let Some(logs) = self.statlog.as_mut() {
                    // statlog.rs: chronyd logs rejected measurements too.
                    if let Some(m) = self.engine.rejected_measurement(id) {
                        logs.record_rejected(rx, &m, stamp);
                    }
                }
            }
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Send(id, tx) => {
                // Peers send from the NTP port (peers.rs).
                if !tx.fresh_port && self.send_peer(id, &tx) {
                    return;
                }
                let reuse =
                    !tx.fresh_port && self.sockets.get(&id).is_some_and(|s| s.remote == tx.remote);
                if !reuse {
                    // Dropping the old socket discards anything still addressed to it.
                    self.sockets.remove(&id);
                    // tx_stamps.rs: with kernel transmit timestamps.
                    match tx_stamps::bind(wildcard(tx.remote)) {
                        Ok(socket) => {
                            self.sockets.insert(
                                id,
                                SourceSocket {
                                    socket,
                                    remote: tx.remote,
                                },
                            );
                        }
                        Err(e) => {
                            tracing::debug!("Could not open socket for {} : {e}", tx.remote);
                            self.engine.send_failed(id); // `auto_offline`
                            return;
                        }
                    }
                }
                let Some(s) = self.sockets.get(&id) else {
                    return;
                };
                if let Some(slot) = self.tx.slot() {
                    // The header plus the MAC or NTS extension fields.
                    let datagram = tx.bytes();
                    let len = datagram.len().min(slot.len());
                    slot[..len].copy_from_slice(&datagram[..len]);
                    self.tx.commit(len, tx.remote, None, false);
                    let (_, failed) = self.tx.send(&s.socket);
                    self.tx_stamps.collect(id, &s.socket); // tx_stamps.rs
                    if failed > 0 {
                        tracing::debug!("Could not send to {}", tx.remote);
                        self.engine.send_failed(id); // `auto_offline`
                    }
                }
            }
            Action::Resolve(pool, name) => {
                let port = self.pool_ports.get(&pool).map_or(123, |p| p.0);
                if let Some(r) = self.resolver.as_mut() {
                    r.resolve(Token::Pool(pool), &name, port);
                }
            }
            Action::Log(event) => {
                // statlog.rs: slews are warned about per `logchange`; steps are noted.
                if !self.statlog.as_mut().is_some_and(|l| l.takes_event(&event)) {
                    self.log(event)
                }
            }
            Action::Exit(reason) => {
                match reason {
                    ExitReason::OneShotNoMeasurement if self.timeout_given => {
                        tracing::info!("Timeout reached")
                    }
                    ExitReason::OneShotNoMeasurement => {
                        tracing::info!("No suitable source for synchronisation")
                    }
                    ExitReason::MaxChange => {}
                    ExitReason::OneShotDone => {}
                }
                self.exit = Some(reason.exit_code());
            }
        }
    }

    fn name_of(&self, addr: SocketAddr) -> String {
        let ip = addr.ip().to_string();
        let name = self
            .engine
            .source_by_addr(addr)
            .and_then(|id| self.names.get(&id));
        match name {
            Some(n) if *n != ip => format!("{ip} ({n})"),
            _ => ip,
        }
    }

    fn log(&self, event: Event) {
        match event {
            // A one-shot run prints only its result, as chronyd's.
            Event::Selected(_) | Event::CannotSynchronise(_) if self.one_shot.is_some() => {}
            Event::Selected(addr) => tracing::info!("Selected source {}", self.name_of(addr)),
            Event::CannotSynchronise(reason) => tracing::info!("{reason}"),
            Event::Slewing(offset) => tracing::warn!(
                "System clock wrong by {:.6} seconds, adjustment started",
                -offset
            ),
            Event::Stepped(offset) => {
                tracing::warn!("System clock wrong by {:.6} seconds", -offset);
                tracing::info!("System clock was stepped by {:.6} seconds", -offset);
            }
            Event::MaxChangeIgnored(offset) => tracing::warn!(
                "Adjustment of {:.3} seconds exceeds the allowed maximum, update ignored",
                -offset
            ),
            Event::LeapSecond(LeapState::Insert) => tracing::info!("Leap second inserted"),
            Event::LeapSecond(LeapState::Delete) => tracing::info!("Leap second deleted"),
            Event::LeapSecond(LeapState::Normal) => {}
            Event::OneShotOffset { offset, applied } => tracing::info!(
                "System clock wrong by {:.6} seconds ({})",
                -offset,
                if applied { "step" } else { "ignored" }
            ),
            Event::PoolSourceReplaced(addr) => {
                tracing::info!("Source {} replaced", self.name_of(addr))
            }
            Event::ClockFailed(e) => tracing::error!("{e}"),
        }
    }

    /// Rebuilds the shared report snapshot and remembers the drift to save.
    fn refresh<C: DaemonClock>(&mut self, clock: &mut C) {
        let now = clock.read();
        let stats: BTreeMap<SourceId, _> = self
            .engine
            .source_stats(now, clock)
            .into_iter()
            .map(|(id, _, s)| (id, s))
            .collect();
        let sources = self
            .engine
            .sources(now, clock)
            .into_iter()
            .map(|(id, report)| {
                let assoc = self.engine.association(id);
                SourceRow {
                    name: self
                        .names
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| report.addr.ip().to_string()),
                    stats: stats.get(&id).copied().unwrap_or_default(),
                    ref_id: assoc.map_or(0, |a| a.reference_id()),
                    online: assoc.is_some_and(|a| a.next_timeout().is_some()),
                    report,
                }
            })
            .collect();
        let unresolved = self.resolver.as_ref().map_or(0, Resolver::in_flight);
        *self.shared.borrow_mut() = Snapshot {
            tracking: self.engine.tracking(now, clock),
            sources,
            unresolved,
            // sync: in local mode `tracking` is the NTP server's local reference (ntp_server.rs).
            synchronised: self.engine.reference().is_synchronised()
                && !self.engine.reference().local_active(),
            details: Default::default(),
        };
        // commands.rs: `ntpdata`, `selectdata` and `activity` details.
        self.refresh_details(now, clock);
        if self.engine.reference().updates() > 0 {
            self.last_drift = Some(self.engine.drift(clock));
        }
    }

    /// What the NTP server serves while the engine is synchronised; `None` lets the server
    /// fall back to `local` or unsynchronised.
    fn served_reference<C: DaemonClock>(&self, clock: &mut C) -> Option<ReferenceInfo> {
        // sync: the engine's local mode (`local distance`/`orphan`) is served by the server.
        if !self.engine.reference().is_synchronised()
            || self.engine.reference().local_active()
            || self.one_shot.is_some()
        {
            return None;
        }
        let now = clock.read();
        let l = self.engine.local_state_at(now, clock);
        let leap = l.leap?;
        Some(ReferenceInfo {
            leap: match leap {
                LeapState::Normal => LeapIndicator::NoWarning,
                LeapState::Insert => LeapIndicator::InsertSecond,
                LeapState::Delete => LeapIndicator::DeleteSecond,
            },
            stratum: l.stratum,
            reference_id: l.reference_id,
            reference_time: NtpTimestamp::from_unix_f64(l.reference_time),
            root_delay: l.root_delay,
            root_dispersion: l.root_dispersion,
            // The server keeps its own measured precision.
            precision: 0,
            synchronised: true,
        })
    }

    fn save_drift<C: DaemonClock>(&mut self, clock: &mut C) {
        if self.engine.reference().updates() > 0 {
            self.last_drift = Some(self.engine.drift(clock));
        }
        self.write_drift();
    }

    fn write_drift(&self) {
        let (Some(path), Some((freq, skew))) = (&self.drift_path, self.last_drift) else {
            return;
        };
        if let Err(e) = driftfile::save(path, freq, skew) {
            tracing::warn!("Could not write {} : {e}", path.display());
        }
    }
}

impl Drop for Client {
    /// chronyd writes the drift file when it exits.
    fn drop(&mut self) {
        self.write_drift();
        self.save_sessions();
    }
}

/// The scheduler's hook before poll (nothing without a client).
pub fn prepare<C: DaemonClock>(
    client: &mut Option<Client>,
    fds: &mut Vec<PollFd>,
    timeout_ms: i32,
    clock: &mut C,
) -> i32 {
    match client.as_mut() {
        Some(c) => c.prepare(fds, timeout_ms, clock),
        None => timeout_ms,
    }
}

/// The scheduler's hook after poll: the exit status once the engine asks to exit.
pub fn service<C: DaemonClock>(
    client: &mut Option<Client>,
    fds: &[PollFd],
    clock: &mut C,
    responder: &mut CoreResponder,
) -> Option<i32> {
    client
        .as_mut()
        .and_then(|c| c.service(fds, clock, responder))
}

#[cfg(test)]
mod tests;
