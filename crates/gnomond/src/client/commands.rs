//! chronyc's commands on sources and on the clock, carried out on the engine: the command
//! server answers them from the report snapshot and queues them ([`super::reports`]); the
//! client runs the queue before its next poll, then refreshes the snapshot, so the next
//! request sees the change. Log lines are chronyd's ("Source 192.0.2.1 offline",
//! "Source 192.0.2.1 new minpoll 4", "Accumulated delta offset of …").
//!
//! `add` takes chronyc 4.3's option fields (ADD_SOURCE) through the same translation as the
//! configuration file's `server`/`pool`/`peer` lines (config.rs); names are resolved by the
//! resolver thread, never on the loop. `reload sources` reads the configuration again as the
//! daemon's command line names it, and compares the `sourcedir` sources with those it has:
//! lines that disappeared are removed, new ones added, unchanged ones keep their state.

use super::config::{self, SourcePlan};
use super::reports::{SourceCommand, SourceDetail};
use super::resolver::{Resolver, Token};
use super::Client;
use crate::clock::DaemonClock;
use gnomon_cmdmon::{add_flags, AddSource, SourceType};
use gnomon_conf::{Settings, SourceKind as ConfKind, SourceSpec};
use gnomon_core::association::{PoolId, SourceId};
use std::net::{IpAddr, SocketAddr};

/// The configuration-file form of an ADD_SOURCE request: chronyc sends every option, with
/// chrony's defaults for those not given (out-of-range values mean "default").
pub fn add_spec(a: &AddSource, name: &str) -> (ConfKind, SourceSpec) {
    let kind = match a.source_type {
        SourceType::Server => ConfKind::Server,
        SourceType::Pool => ConfKind::Pool,
        SourceType::Peer => ConfKind::Peer,
    };
    let flag = |f: u32| a.flags & f != 0;
    let mut s = SourceSpec::new(name);
    s.port = u16::try_from(a.port).unwrap_or(123);
    s.minpoll = a.minpoll;
    s.maxpoll = a.maxpoll;
    s.presend = (-7..=24)
        .contains(&a.presend_minpoll)
        .then_some(a.presend_minpoll);
    s.minstratum = i32::try_from(a.min_stratum).unwrap_or(0);
    s.polltarget = i32::try_from(a.poll_target).unwrap_or(8);
    s.version = i32::try_from(a.version)
        .ok()
        .filter(|v| (1..=4).contains(v));
    s.maxsources = i32::try_from(a.max_sources).unwrap_or(4);
    s.minsamples = (a.min_samples >= 0).then_some(a.min_samples);
    s.maxsamples = (a.max_samples >= 0).then_some(a.max_samples);
    s.key = (a.authkey != 0).then_some(a.authkey);
    s.ntsport = u16::try_from(a.nts_port).unwrap_or(4460);
    s.certset = (a.cert_set != 0).then_some(a.cert_set);
    s.maxdelay = a.max_delay;
    s.maxdelayratio = a.max_delay_ratio;
    s.maxdelaydevratio = a.max_delay_dev_ratio;
    s.mindelay = a.min_delay;
    s.asymmetry = a.asymmetry;
    s.offset = a.offset;
    s.filter = (a.filter_length > 0).then_some(a.filter_length);
    s.maxdelayquant = a.max_delay_quant;
    s.maxunreach = (a.max_unreach > 0).then_some(a.max_unreach);
    s.offline = !flag(add_flags::ONLINE);
    s.auto_offline = flag(add_flags::AUTOOFFLINE);
    s.iburst = flag(add_flags::IBURST);
    s.prefer = flag(add_flags::PREFER);
    s.noselect = flag(add_flags::NOSELECT);
    s.trust = flag(add_flags::TRUST);
    s.require = flag(add_flags::REQUIRE);
    s.xleave = flag(add_flags::INTERLEAVED);
    s.burst = flag(add_flags::BURST);
    s.nts = flag(add_flags::NTS);
    s.copy = flag(add_flags::COPY);
    (kind, s)
}

/// The address requests to `remote` leave from (what the routing table picks; no packet is
/// sent), for `ntpdata`'s "Local address".
pub fn local_address(remote: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = match remote {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    let s = std::net::UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    s.connect(SocketAddr::new(remote, 123)).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

/// The sources read from `sourcedir` files, with their index in the client's plans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceDir {
    active: Vec<(ConfKind, SourceSpec, usize)>,
    /// Plans removed by `reload sources`: a lookup still running for one is dropped.
    removed: std::collections::BTreeSet<usize>,
}

impl SourceDir {
    /// The `sourcedir` sources of the configuration the client starts with (the client's
    /// plans are the settings' sources, in order).
    pub fn from_settings(settings: &Settings) -> SourceDir {
        SourceDir {
            active: settings
                .sources
                .iter()
                .enumerate()
                .filter(|(_, s)| s.from_sourcedir)
                .map(|(i, s)| (s.kind, s.spec.clone(), i))
                .collect(),
            removed: std::collections::BTreeSet::new(),
        }
    }
}

/// The command-line options the daemon started with, its `-f` file made absolute before
/// the daemon detached (daemonising changes the working directory to `/`).
static STARTED_WITH: std::sync::OnceLock<crate::cli::Options> = std::sync::OnceLock::new();

/// Remembers `opts` for `reload sources`; call before daemonising.
pub fn remember_options(opts: &crate::cli::Options) {
    let mut opts = opts.clone();
    if let Some(file) = &opts.config_file {
        if let Ok(abs) = std::path::Path::new(file).canonicalize() {
            opts.config_file = Some(abs.to_string_lossy().into_owned());
        }
    }
    let _ = STARTED_WITH.set(opts);
}

/// Whether the `makestep` command can step the clock: not under `-x` (chronyd's null driver
/// cannot step), unless `-X` gave gnomond's null clock an artificial error to simulate a
/// clock that can; always when not running as a daemon (tests drive the client directly).
pub fn clock_can_step() -> bool {
    STARTED_WITH
        .get()
        .is_none_or(|o| !o.no_clock || o.null_clock != Default::default())
}

/// The configuration as the daemon's command line names it, read again.
fn reread_settings() -> Result<Settings, String> {
    let Some(opts) = STARTED_WITH.get() else {
        return Err("not running as a daemon".to_string());
    };
    crate::daemon::load_config(opts)
        .map(|c| Settings::from_config(&c))
        .map_err(|e| e.chrony_message())
}

fn count(v: Option<i32>) -> usize {
    v.map_or(0, |n| usize::try_from(n.max(0)).unwrap_or(0))
}

impl Client {
    /// Runs the commands the command server queued (before the loop polls again).
    pub(super) fn run_commands<C: DaemonClock>(&mut self, clock: &mut C) {
        let queued = std::mem::take(&mut *self.commands.borrow_mut());
        if queued.is_empty() {
            // Sources that were offline before a `burst` go back offline after it.
            self.engine.end_offline_bursts(clock.read());
            return;
        }
        let mut actions = Vec::new();
        for command in queued {
            let now = clock.read();
            match command {
                SourceCommand::SetOnline(ips, online) => {
                    for id in self.ids(&ips) {
                        let was = self.nominally_online(id);
                        self.engine.set_online_commanded(id, online, now);
                        if was != online {
                            let ip = self.ip_of(id);
                            let word = if online { "online" } else { "offline" };
                            tracing::info!("Source {ip} {word}");
                        }
                    }
                }
                SourceCommand::OnOffline => {
                    // chronyc(1): online when a request can be sent, i.e. the routing table
                    // has a route to the source (a connect(2) of a UDP socket; nothing sent).
                    let all: Vec<SourceId> = self.engine.source_ids().collect();
                    for id in all {
                        let was = self.nominally_online(id);
                        let Some(remote) = self.engine.association(id).map(|a| a.remote()) else {
                            continue;
                        };
                        let online = local_address(remote.ip()).is_some();
                        if was != online {
                            self.engine.set_online_commanded(id, online, now);
                            let word = if online { "online" } else { "offline" };
                            tracing::info!("Source {} {word}", self.ip_of(id));
                        }
                    }
                }
                SourceCommand::Burst(ips, good, total) => {
                    for id in self.ids(&ips) {
                        self.engine.burst(id, good, total, now);
                    }
                }
                SourceCommand::Modify(ip, setting) => {
                    for id in self.ids(&[ip]) {
                        for done in self.engine.modify_source(id, setting).unwrap_or_default() {
                            tracing::info!("Source {ip} new {done}");
                        }
                    }
                }
                SourceCommand::Add(a) => self.add_commanded(&a, now),
                SourceCommand::Delete(ip) => {
                    for id in self.ids(&[ip]) {
                        self.forget_source(id);
                    }
                }
                SourceCommand::SetLocal(local) => {
                    if let Err(e) = self.engine.set_local(local, clock) {
                        tracing::warn!("local: {e}");
                    }
                }
                SourceCommand::SetParam(p) => match p {
                    crate::reports::EngineParam::Makestep(threshold, limit) => {
                        self.engine.set_makestep(threshold, i64::from(limit))
                    }
                    crate::reports::EngineParam::MaxUpdateSkew(ppm) => {
                        self.engine.set_max_update_skew(ppm)
                    }
                    crate::reports::EngineParam::ReselectDistance(d) => {
                        self.engine.set_reselect_distance(d)
                    }
                },
                SourceCommand::MakeStep => match self.engine.make_step(clock) {
                    Ok(step) => tracing::info!("System clock was stepped by {step:.6} seconds"),
                    Err(e) => tracing::warn!("Could not step system clock : {e}"),
                },
                SourceCommand::Dfreq(ppm) => match self.engine.adjust_frequency(ppm, now, clock) {
                    Ok(()) => tracing::info!("Accumulated delta freq of {ppm:.3}ppm"),
                    Err(e) => tracing::warn!("Could not change frequency : {e}"),
                },
                SourceCommand::Doffset(offset) => {
                    match self.engine.adjust_offset(offset, now, clock) {
                        Ok(()) => {
                            tracing::info!("Accumulated delta offset of {offset:.6} seconds")
                        }
                        Err(e) => tracing::warn!("Could not adjust offset : {e}"),
                    }
                }
                SourceCommand::Reselect => actions.extend(self.engine.reselect(now, clock)),
                SourceCommand::Refresh => {
                    self.resolve_names_again();
                    actions.extend(self.engine.refresh_pools());
                }
                SourceCommand::ResetSources => {
                    actions.extend(self.engine.reset_sources(now, clock))
                }
                SourceCommand::ReloadSources => match reread_settings() {
                    Ok(fresh) => self.reload_sources(&fresh, now),
                    Err(e) => tracing::warn!("Could not reload sources : {e}"),
                },
            }
        }
        for a in actions {
            self.act(a);
        }
        self.refresh(clock);
    }

    /// Removes source `id` with everything the client keeps for it: its name, its socket and,
    /// for a peer, its socket on the NTP port (peers.rs).
    fn forget_source(&mut self, id: SourceId) {
        if let Some(remote) = self.engine.association(id).map(|a| a.remote()) {
            self.peers.close(remote);
        }
        self.engine.remove_source(id);
        self.names.remove(&id);
        self.sockets.remove(&id);
    }

    /// The engine's sources at these addresses: one pass over the sources whatever the number
    /// of addresses (`offline` with a mask can name every one of 10,000 sources).
    fn ids(&self, ips: &[IpAddr]) -> Vec<SourceId> {
        let wanted: std::collections::HashSet<&IpAddr> = ips.iter().collect();
        self.engine
            .source_ids()
            .filter(|id| {
                self.engine
                    .association(*id)
                    .is_some_and(|a| wanted.contains(&a.remote().ip()))
            })
            .collect()
    }

    /// Adds the source at `addr` unless a source already has its IP address (whatever the
    /// port): chronyd 4.3 then logs "Could not add source ADDRESS" and goes on without it, for
    /// a configuration line as for `add` (which chronyc sees answered 511 already).
    pub(super) fn add_unless_present(
        &mut self,
        addr: SocketAddr,
        plan: &SourcePlan,
        now: f64,
    ) -> Option<SourceId> {
        if !self.ids(&[addr.ip()]).is_empty() {
            tracing::error!("Could not add source {}", addr.ip());
            return None;
        }
        let id = self.engine.add_source_auth(addr, plan.cfg, &plan.auth, now);
        self.names.insert(id, plan.host.clone());
        Some(id)
    }

    /// Online, or in a burst that returns online.
    fn nominally_online(&self, id: SourceId) -> bool {
        self.engine
            .association(id)
            .is_some_and(|a| a.next_timeout().is_some())
            && !self.engine.burst_returns_offline(id)
    }

    fn ip_of(&self, id: SourceId) -> String {
        self.engine
            .association(id)
            .map_or_else(String::new, |a| a.remote().ip().to_string())
    }

    fn add_commanded(&mut self, a: &AddSource, now: f64) {
        let Ok(name) = std::str::from_utf8(&a.name) else {
            return;
        };
        let (kind, spec) = add_spec(a, name);
        self.add_spec(kind, &spec, None, now);
    }

    /// Adds a source as a configuration line would; `settings` gives the global
    /// `minsamples`/`maxsamples` for a line without its own. Returns its plan index.
    fn add_spec(
        &mut self,
        kind: ConfKind,
        spec: &SourceSpec,
        settings: Option<&Settings>,
        now: f64,
    ) -> usize {
        let mut cfg = config::source_config(kind, spec);
        if let Some(s) = settings {
            if spec.minsamples.is_none() {
                cfg.minsamples = count(s.minsamples);
            }
            if spec.maxsamples.is_none() {
                cfg.maxsamples = count(s.maxsamples);
            }
        }
        let plan = SourcePlan {
            host: spec.host.clone(),
            port: spec.port,
            pool_max: (kind == ConfKind::Pool)
                .then(|| usize::try_from(spec.maxsources.clamp(1, 16)).unwrap_or(4)),
            cfg,
            auth: self.auth.plan_auth(kind, spec),
            certset: spec.certset.unwrap_or(0),
        };
        for option in config::unsupported_options(kind, spec) {
            tracing::warn!(
                "option {option} of {} is not implemented yet; it has no effect",
                spec.host
            );
        }
        let index = self.plans.len();
        let numeric = plan.host.parse::<IpAddr>().ok();
        if (plan.pool_max.is_some() || numeric.is_none()) && self.resolver.is_none() {
            match Resolver::start() {
                Ok(r) => self.resolver = Some(r),
                Err(e) => tracing::error!("Could not start name resolver : {e}"),
            }
        }
        if let Some(max) = plan.pool_max {
            let id = self
                .engine
                .add_pool_auth(&plan.host, plan.cfg, &plan.auth, max);
            self.pool_ports.insert(id, (plan.port, plan.host.clone()));
        } else if let Some(ip) = numeric {
            self.add_unless_present(SocketAddr::new(ip, plan.port), &plan, now);
        } else if let Some(r) = self.resolver.as_mut() {
            r.resolve(Token::Source(index), &plan.host, plan.port);
        }
        self.plans.push(plan);
        index
    }

    /// `refresh`: asks the resolver again for every `server`/`peer` given by name (the
    /// answers go through [`Client::source_resolved`]).
    fn resolve_names_again(&mut self) {
        let named: Vec<(usize, String, u16)> = self
            .plans
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                p.pool_max.is_none()
                    && p.host.parse::<IpAddr>().is_err()
                    && !self.sourcedir.removed.contains(i)
            })
            .map(|(i, p)| (i, p.host.clone(), p.port))
            .collect();
        if let Some(r) = self.resolver.as_mut() {
            for (i, host, port) in named {
                r.resolve(Token::Source(i), &host, port);
            }
        }
    }

    /// The sources plan `index` gave (by its name or address and port).
    fn plan_sources(&self, plan: &SourcePlan) -> Vec<SourceId> {
        self.engine
            .source_ids()
            .filter(|id| {
                self.names.get(id) == Some(&plan.host)
                    && self
                        .engine
                        .association(*id)
                        .is_some_and(|a| a.remote().port() == plan.port)
            })
            .collect()
    }

    /// A lookup for plan `index` gave `addr`: adds its source, keeps it when a `refresh`
    /// gave the same address, replaces it when the address changed; nothing for a plan
    /// `reload sources` removed meanwhile.
    pub(super) fn source_resolved(&mut self, index: usize, addr: SocketAddr, now: f64) {
        if self.sourcedir.removed.contains(&index) {
            return;
        }
        let Some(plan) = self.plans.get(index).cloned() else {
            return;
        };
        let existing = self.plan_sources(&plan);
        if existing.iter().any(|id| {
            self.engine
                .association(*id)
                .is_some_and(|a| a.remote() == addr)
        }) {
            return;
        }
        // Another source has that address: chronyd 4.3 drops the name without a word.
        if self
            .ids(&[addr.ip()])
            .iter()
            .any(|id| !existing.contains(id))
        {
            return;
        }
        for id in existing {
            tracing::info!("Source {} replaced with {}", self.ip_of(id), addr.ip());
            self.forget_source(id);
        }
        let id = self.engine.add_source_auth(addr, plan.cfg, &plan.auth, now);
        self.names.insert(id, plan.host);
    }

    /// Removes what plan `index` added (a pool with its members, or the source(s) its
    /// name or address gave).
    fn remove_plan(&mut self, index: usize) {
        let Some(plan) = self.plans.get(index).cloned() else {
            return;
        };
        self.sourcedir.removed.insert(index);
        if plan.pool_max.is_some() {
            let pools: Vec<PoolId> = self
                .pool_ports
                .iter()
                .filter(|(_, (port, host))| *port == plan.port && *host == plan.host)
                .map(|(id, _)| *id)
                .collect();
            for pool in pools {
                self.engine.remove_pool(pool);
                self.pool_ports.remove(&pool);
            }
            return;
        }
        for id in self.plan_sources(&plan) {
            self.forget_source(id);
        }
    }

    /// `reload sources` with the configuration read again.
    fn reload_sources(&mut self, fresh: &Settings, now: f64) {
        let wanted: Vec<(ConfKind, SourceSpec)> = fresh
            .sources
            .iter()
            .filter(|s| s.from_sourcedir)
            .map(|s| (s.kind, s.spec.clone()))
            .collect();
        let mut keep = Vec::new();
        for (kind, spec, index) in std::mem::take(&mut self.sourcedir.active) {
            if wanted.iter().any(|(k, s)| *k == kind && *s == spec) {
                keep.push((kind, spec, index));
            } else {
                self.remove_plan(index);
            }
        }
        for (kind, spec) in wanted {
            if !keep.iter().any(|(k, s, _)| *k == kind && *s == spec) {
                let index = self.add_spec(kind, &spec, Some(fresh), now);
                keep.push((kind, spec, index));
            }
        }
        self.sourcedir.active = keep;
    }

    /// Per-source details for `ntpdata`, `selectdata` and `activity`, in the order of the
    /// snapshot's sources (called by `refresh`).
    pub(super) fn refresh_details<C: DaemonClock>(&mut self, now: f64, clock: &mut C) {
        let details = self
            .engine
            .select_data(now, clock)
            .into_iter()
            .map(|(id, select)| SourceDetail {
                ntp: self.engine.ntp_data(id),
                remote_port: select.remote.port(),
                select: Some(select),
                bursting: self.engine.is_bursting(id),
                auth: self.engine.auth_report_at(id, now),
                burst_returns_offline: self.engine.burst_returns_offline(id),
                local_ip: None,
            })
            .collect();
        let mut shared = self.shared.borrow_mut();
        let by_ip = shared
            .sources
            .iter()
            .enumerate()
            // Reversed so that the first source with an address wins, as a scan would.
            .rev()
            .map(|(i, r)| (r.report.addr.ip(), i))
            .collect();
        shared.details = super::reports::Details {
            rows: details,
            by_ip,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_request_maps_to_the_configuration_options() {
        let a = AddSource {
            source_type: SourceType::Server,
            name: b"192.0.2.1".to_vec(),
            port: 1123,
            minpoll: 2,
            maxpoll: 4,
            presend_minpoll: 100,
            min_stratum: 0,
            poll_target: 8,
            version: 4,
            max_sources: 4,
            min_samples: -1,
            max_samples: -1,
            authkey: 0,
            nts_port: 4460,
            max_delay: 3.0,
            max_delay_ratio: 0.0,
            max_delay_dev_ratio: 10.0,
            min_delay: 0.0,
            asymmetry: 1.0,
            offset: 0.0,
            flags: add_flags::ONLINE | add_flags::IBURST | add_flags::PREFER,
            filter_length: 0,
            cert_set: 0,
            max_delay_quant: 0.0,
            max_unreach: 0,
        };
        let (kind, s) = add_spec(&a, "192.0.2.1");
        assert_eq!(kind, ConfKind::Server);
        assert_eq!((s.port, s.minpoll, s.maxpoll), (1123, 2, 4));
        assert!(s.iburst && s.prefer && !s.offline && !s.noselect);
        assert_eq!(
            (s.presend, s.minsamples, s.key, s.filter),
            (None, None, None, None)
        );
        let offline = AddSource {
            flags: 0,
            authkey: 7,
            ..a
        };
        let (_, s) = add_spec(&offline, "x");
        assert!(s.offline);
        assert_eq!(s.key, Some(7));
    }

    fn client(lines: &[&str]) -> Client {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let config = gnomon_conf::load_lines(&lines).unwrap();
        let settings = Settings::from_config(&config);
        Client::new(&settings, None, None, 7, false).unwrap().0
    }

    fn remotes(c: &Client) -> Vec<SocketAddr> {
        c.engine
            .source_ids()
            .filter_map(|id| c.engine.association(id).map(|a| a.remote()))
            .collect()
    }

    #[test]
    fn a_lookup_adds_keeps_or_replaces_the_named_source() {
        let mut c = client(&["server 127.0.0.1 port 10123 offline"]);
        // A named plan (never given to the resolver here: no DNS query leaves).
        c.plans.push(SourcePlan {
            host: "ntp.test".into(),
            port: 123,
            pool_max: None,
            cfg: gnomon_core::association::SourceConfig {
                offline: true,
                ..Default::default()
            },
            auth: Default::default(),
            certset: 0,
        });
        let a: SocketAddr = "127.0.0.5:123".parse().unwrap();
        let b: SocketAddr = "127.0.0.6:123".parse().unwrap();
        c.source_resolved(0, "127.0.0.1:10123".parse().unwrap(), 0.0);
        c.source_resolved(1, a, 0.0);
        assert_eq!(remotes(&c), ["127.0.0.1:10123".parse().unwrap(), a]);
        // `refresh` giving the same address keeps the source.
        let before: Vec<SourceId> = c.engine.source_ids().collect();
        c.source_resolved(1, a, 1.0);
        assert_eq!(c.engine.source_ids().collect::<Vec<_>>(), before);
        // A new address replaces it.
        c.source_resolved(1, b, 2.0);
        assert_eq!(remotes(&c), ["127.0.0.1:10123".parse().unwrap(), b]);
        // Removed by `reload sources`: a late lookup adds nothing.
        c.remove_plan(1);
        c.source_resolved(1, a, 3.0);
        assert_eq!(remotes(&c), ["127.0.0.1:10123".parse().unwrap()]);
    }

    #[test]
    fn loopback_requests_leave_from_loopback() {
        assert_eq!(
            local_address("127.0.0.1".parse().unwrap()),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
