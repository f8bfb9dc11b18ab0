//! The synchronisation engine: the set of associations, selection and the reference wired
//! together, sans-IO (architecture rules 2–4, after quinn-proto's shape).
//!
//! The daemon (or the simulator) drives it with three calls, each taking the current time of the
//! clock being disciplined (`now`, seconds since the Unix epoch, as read from the driver) and the
//! driver itself: [`Engine::handle_timeout`] when [`Engine::poll_timeout`] is due,
//! [`Engine::handle_packet`] for every NTP packet from a source, and
//! [`Engine::pool_resolved`] when a name lookup it asked for finishes. Each returns
//! [`Action`]s: packets to send, names to resolve, events to log, or an exit request.
//! Clock corrections go straight through the [`ClockDriver`]. Internally samples live in
//! "cooked" time (raw + the correction still being slewed), as chrony's local clock model does.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Association, RxOutcome, SourceAuth, SourceConfig, SourceKind, Transmit};
use crate::auth::KeyStore;
use crate::local_clock::{cooked_time, ClockDriver, ClockError};
use crate::nts_client::NtsTrust;
use crate::reference::leap_table::LeapTable;
use crate::reference::{ClockChange, Reference, ReferenceConfig, UpdateAction};
use crate::reports::{SourceReport, SourceState, SourceStatsReport, TrackingReport};
use crate::selection::AuthSelectMode;
use crate::selection::{Candidate, NoSelection, SelectionConfig, Selector};

/// Identifier of a source inside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u32);

/// Identifier of a `pool` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(pub u32);

/// chronyd's one-shot modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneShot {
    /// `-q`: set the clock once (step) and exit.
    Set,
    /// `-Q`: print the offset and exit without touching the clock.
    Print,
}

/// Engine configuration.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Selection directives.
    pub selection: SelectionConfig,
    /// Discipline directives.
    pub reference: ReferenceConfig,
    /// `-q` / `-Q`, with the time limit (seconds) after which it gives up.
    pub one_shot: Option<(OneShot, f64)>,
    /// Leap seconds from `leapsectz` or `leapseclist` (override the sources' vote).
    pub leap_table: Option<LeapTable>,
    /// Seed of the engine's RNG (transmit timestamps, start jitter).
    pub seed: u64,
}

/// Something to log (state changes only, so their rate is bounded by the poll rate).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new synchronisation source ("Selected source X").
    Selected(SocketAddr),
    /// Selection failed (logged when the reason changes).
    CannotSynchronise(NoSelection),
    /// "System clock wrong by X seconds, adjustment started" (offset: positive = fast).
    Slewing(f64),
    /// "System clock wrong by X seconds" stepped.
    Stepped(f64),
    /// `maxchange` ignored an update.
    MaxChangeIgnored(f64),
    /// A leap second was handled.
    LeapSecond(crate::local_clock::LeapState),
    /// One-shot result: offset (positive = fast) and whether it was applied.
    OneShotOffset { offset: f64, applied: bool },
    /// A pool member was dropped (unreachable or falseticker) to be replaced.
    PoolSourceReplaced(SocketAddr),
    /// A clock operation failed.
    ClockFailed(ClockError),
}

// ---- statlog: sample record type (begin) ----
/// One accepted sample as it entered the source's statistics, before the clock update it may
/// cause ([`Engine::handle_packet_recorded`]); chronyd's measurements.log and statistics.log
/// lines are written from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRecord {
    /// The source.
    pub source: SourceId,
    /// Its address.
    pub remote: SocketAddr,
    /// A symmetric peer (mode 1) rather than a server (mode 4).
    pub peer: bool,
    /// Our poll interval after the sample, log2 seconds.
    pub local_poll: i8,
    /// The poll field of the response, log2 seconds.
    pub remote_poll: i8,
    /// Poll adaptation score (-1..1: the interval shortens at -1 and lengthens at 1).
    pub poll_score: f64,
    /// Offset as measured from this packet (positive: we are fast), seconds.
    pub measured_offset: f64,
    /// The sample given to the statistics (after `filter`, if configured). Its root delay
    /// and dispersion include the peer delay and dispersion.
    pub sample: crate::sample_filter::Sample,
    /// Reference ID of the server's own source.
    pub reference_id: u32,
    /// The source's regression with this sample.
    pub stats: SourceStatsReport,
    /// Correction the clock still had to apply when the packet arrived, before any update
    /// it caused (as `tracking`'s system time: positive = slow), seconds.
    pub remaining_correction: f64,
    /// Jitter asymmetry the regression used (statistics.log's `Asym`).
    pub jitter_asymmetry: f64,
    /// The sample measured an interleaved exchange (measurements.log's `I`).
    pub interleaved: bool,
}
// ---- statlog (end) ----

/// Why the daemon should exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// `maxchange` limit reached (chronyd exits with status 1).
    MaxChange,
    /// One-shot mode done.
    OneShotDone,
    /// One-shot mode without a measurement ("No suitable source").
    OneShotNoMeasurement,
}

impl ExitReason {
    /// chronyd's exit status.
    pub fn exit_code(self) -> i32 {
        match self {
            ExitReason::OneShotDone => 0,
            ExitReason::MaxChange | ExitReason::OneShotNoMeasurement => 1,
        }
    }
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a packet for a source.
    Send(SourceId, Transmit),
    /// Resolve a pool name (off the NTP path) and call [`Engine::pool_resolved`].
    Resolve(PoolId, String),
    /// Log an event.
    Log(Event),
    /// Exit with [`ExitReason::exit_code`].
    Exit(ExitReason),
}

#[derive(Debug, Clone)]
struct Pool {
    name: String,
    cfg: SourceConfig,
    auth: SourceAuth,
    max_sources: usize,
    resolving: bool,
    members: Vec<SourceId>,
}

#[derive(Debug, Clone)]
struct Entry {
    assoc: Association,
    pool: Option<PoolId>,
    falseticker_rounds: u32,
}

/// Polls without a reply after which a pool member is replaced.
const POOL_UNREACH_POLLS: u32 = 8;
/// Selection rounds as a falseticker after which a pool member is replaced.
const POOL_FALSETICKER_ROUNDS: u32 = 8;

/// The engine.
#[derive(Debug)]
pub struct Engine {
    sources: source_table::SourceTable,
    pools: BTreeMap<PoolId, Pool>,
    next_id: u32,
    selector: Selector,
    reference: Reference,
    leap_table: Option<LeapTable>,
    one_shot: Option<(OneShot, f64)>,
    start: Option<f64>,
    finished: bool,
    rng: StdRng,
    last_no_selection: Option<NoSelection>,
    pending_actions: Vec<Action>,
    /// Key exchanges for the daemon ([`Engine::take_nts_ke_requests`]).
    nts_ke_queue: Vec<(SourceId, crate::nts_client::NtsKeRequest)>,
    /// Pending leap instant (cooked) and the raw time it was computed at.
    leap_at: Option<(f64, f64)>,
    /// `keyfile` keys.
    keys: KeyStore,
    /// NTS-KE trust roots (`ntstrustedcerts`, system store).
    nts_trust: Option<NtsTrust>,
    /// `nocerttimecheck`: clock updates during which certificate times are not checked.
    no_cert_time_check: u32,
    /// Clock updates so far.
    clock_updates: u32,
    /// `authselectmode`.
    auth_select: AuthSelectMode,
    // ---- control: per-source `ntpdata` records (control.rs) ----
    ntp_data: BTreeMap<SourceId, super::ntp_data::NtpDataLog>,
    /// Sources polled for a `burst` that go back offline after it (control.rs).
    offline_bursts: std::collections::BTreeSet<SourceId>,
}

impl Engine {
    /// A new engine with no sources.
    pub fn new(cfg: EngineConfig) -> Self {
        Engine {
            sources: source_table::SourceTable::default(),
            pools: BTreeMap::new(),
            next_id: 0,
            // ---- sync: `local ... orphan` (selection/orphan.rs) ----
            selector: {
                let mut s = Selector::new(cfg.selection);
                s.set_orphan(crate::selection::Orphan::from_local(cfg.reference.local));
                s
            },
            reference: Reference::new(cfg.reference),
            leap_table: cfg.leap_table,
            one_shot: cfg.one_shot,
            start: None,
            finished: false,
            rng: StdRng::seed_from_u64(cfg.seed),
            last_no_selection: None,
            pending_actions: Vec::new(),
            nts_ke_queue: Vec::new(),
            leap_at: None,
            keys: KeyStore::new(),
            nts_trust: None,
            no_cert_time_check: 0,
            clock_updates: 0,
            auth_select: AuthSelectMode::default(),
            ntp_data: BTreeMap::new(),
            offline_bursts: std::collections::BTreeSet::new(),
        }
    }

    /// Adds a source polled at `remote` (a `server` or `peer`).
    pub fn add_source(&mut self, remote: SocketAddr, cfg: SourceConfig, now: f64) -> SourceId {
        self.insert(remote, cfg, &SourceAuth::default(), now, None)
    }

    fn insert(
        &mut self,
        remote: SocketAddr,
        cfg: SourceConfig,
        auth: &SourceAuth,
        now: f64,
        pool: Option<PoolId>,
    ) -> SourceId {
        let id = SourceId(self.next_id);
        self.next_id += 1;
        let seed = self.rng.random::<u64>();
        let mut assoc = Association::new(remote, cfg, now, seed);
        assoc.set_auth(self.auth_state(auth, now));
        self.sources.insert(
            id,
            Entry {
                assoc,
                pool,
                falseticker_rounds: 0,
            },
        );
        id
    }

    /// Adds a `pool NAME` with `maxsources`; the engine asks for resolution through
    /// [`Action::Resolve`] on the next call.
    pub fn add_pool(&mut self, name: &str, cfg: SourceConfig, max_sources: usize) -> PoolId {
        self.add_pool_auth(name, cfg, &SourceAuth::default(), max_sources)
    }

    /// Result of a pool lookup: adds new addresses up to `maxsources`.
    pub fn pool_resolved(&mut self, pool: PoolId, addrs: &[SocketAddr], now: f64) {
        let Some(p) = self.pools.get(&pool) else {
            return;
        };
        let cfg = p.cfg;
        let auth = p.auth.clone();
        let mut have = p.members.len();
        let max = p.max_sources;
        let mut added = Vec::new();
        for &addr in addrs {
            if have >= max {
                break;
            }
            if self.sources.values().any(|e| e.assoc.remote() == addr) {
                continue;
            }
            added.push(self.insert(addr, cfg, &auth, now, Some(pool)));
            have += 1;
        }
        if let Some(p) = self.pools.get_mut(&pool) {
            p.members.extend(added);
            p.resolving = false;
        }
    }

    /// Removes a source.
    pub fn remove_source(&mut self, id: SourceId) -> bool {
        for p in self.pools.values_mut() {
            p.members.retain(|m| *m != id);
        }
        self.sources.remove(&id).is_some()
    }

    /// Sets a source online or offline (`chronyc online/offline`).
    pub fn set_online(&mut self, id: SourceId, online: bool, now: f64) {
        if let Some(e) = self.sources.get_mut(&id) {
            e.assoc.set_online(online, now);
        }
    }

    /// The source polling `remote` (for packets that arrive on a shared socket, e.g. peers).
    pub fn source_by_addr(&self, remote: SocketAddr) -> Option<SourceId> {
        self.sources
            .iter()
            .find(|(_, e)| e.assoc.remote() == remote)
            .map(|(id, _)| *id)
    }

    /// Packets rejected for `reason` over all sources (the daemon's counters and rate-limited
    /// logging read these).
    pub fn rejected_total(&self, reason: super::Rejection) -> u64 {
        self.sources
            .values()
            .map(|e| e.assoc.rejected(reason))
            .sum()
    }

    /// A source's association (read-only).
    pub fn association(&self, id: SourceId) -> Option<&Association> {
        self.sources.get(&id).map(|e| &e.assoc)
    }

    /// True once the engine asked to exit (one-shot done, maxchange).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The reference (read-only).
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    // ---- sync: fallbackdrift (begin) ----
    /// `fallbackdrift MIN MAX` (log2 seconds; 0 disables), see `reference::fallback_drift`.
    pub fn set_fallback_drift(&mut self, min_log2: i32, max_log2: i32) {
        self.reference.set_fallback_drift(min_log2, max_log2);
    }
    // ---- sync: fallbackdrift (end) ----
    // ---- sync: orphan mode (selection/orphan.rs) ----
    /// Our reference ID as seen on a socket whose packets do not go through
    /// [`Engine::handle_packet`] with one (the daemon's wildcard client sockets): the refid of
    /// the local address a reply arrived on, for `local ... orphan`'s comparison only.
    pub fn learn_local_refid(&mut self, refid: Option<u32>) {
        self.selector.learn_local_refid(refid);
    }

    /// What we announce about ourselves at cooked local time `now` (symmetric packets; the
    /// server module can answer clients from the same values).
    pub fn local_state(&self, now: f64) -> super::LocalState {
        let r = &self.reference;
        if !r.is_synchronised() {
            return super::LocalState::default();
        }
        // `copy` (source_options.rs): the source's reference ID and stratum.
        let (reference_id, stratum) = self
            .copied_reference()
            .unwrap_or((r.reference_id(), r.stratum()));
        super::LocalState {
            stratum,
            leap: Some(r.leap()),
            root_delay: r.root_delay(),
            root_dispersion: r.root_dispersion_at(now),
            reference_id,
            reference_time: r.ref_time(),
        }
    }

    /// [`Engine::local_state`] at the driver's time `now` (what the server module answers
    /// clients with: stratum, leap, root delay/dispersion, reference ID and time).
    pub fn local_state_at(&self, now: f64, clock: &dyn ClockDriver) -> super::LocalState {
        self.local_state(cooked_time(clock, now))
    }

    /// Earliest deadline (daemon time base) at which [`Engine::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<f64> {
        if self.finished {
            return None;
        }
        let mut t = self.sources.earliest_timeout();
        if let Some((at, _)) = self.leap_at {
            // Cooked and raw differ by the slew in progress, at most a few milliseconds
            // around a leap; the handler checks the cooked time itself.
            t = Some(t.map_or(at, |x| x.min(at)));
        }
        if let (Some((_, limit)), Some(start)) = (self.one_shot, self.start) {
            t = Some(t.map_or(start + limit, |x| x.min(start + limit)));
        }
        // ---- sync: fallbackdrift: due even when every source is offline ----
        if let Some(at) = self.reference.fallback_drift_deadline() {
            t = Some(t.map_or(at, |x| x.min(at)));
        }
        if !self.pending_actions.is_empty() {
            // Queued actions (a pool to resolve): due immediately.
            return Some(f64::NEG_INFINITY);
        }
        t
    }

    /// Handles due timers at `now`.
    pub fn handle_timeout(&mut self, now: f64, clock: &mut dyn ClockDriver) -> Vec<Action> {
        let mut out = std::mem::take(&mut self.pending_actions);
        if self.finished {
            return out;
        }
        let start = *self.start.get_or_insert(now);
        let cooked = cooked_time(clock, now);
        let local = self.local_state(cooked);
        let mut polled = false;
        for (id, e) in self.sources.iter_mut() {
            if let Some(req) = e.assoc.start_nts_ke(now) {
                self.nts_ke_queue.push((*id, req));
            }
            e.assoc.set_local_state(local);
            if let Some(tx) = e.assoc.on_timer(now, cooked) {
                out.push(Action::Send(*id, tx));
                polled = true;
            }
        }
        if polled {
            // Reachability moved: re-run selection so that lost sources stop being used (and
            // the reference falls back to unsynchronised or local mode).
            self.select_and_update(None, cooked, clock, &mut out);
        }
        self.handle_leap(cooked, clock, &mut out);
        // ---- sync: `local distance` (reference.rs) ----
        if let Err(e) = self.reference.check_local_distance(cooked, clock) {
            out.push(Action::Log(Event::ClockFailed(e)));
        }
        // ---- sync: fallbackdrift (begin) ----
        match self.reference.apply_fallback_drift(cooked, clock) {
            Ok(Some(change)) => self.apply_change(change, false),
            Ok(None) => {}
            Err(e) => out.push(Action::Log(Event::ClockFailed(e))),
        }
        // ---- sync: fallbackdrift (end) ----
        if let Some((_, limit)) = self.one_shot {
            if now >= start + limit {
                self.finished = true;
                out.push(Action::Exit(ExitReason::OneShotNoMeasurement));
            }
        }
        self.replace_pool_members(&mut out);
        out
    }

    fn handle_leap(&mut self, cooked: f64, clock: &mut dyn ClockDriver, out: &mut Vec<Action>) {
        if let Some(table) = &self.leap_table {
            self.reference.set_leap_from_table(table.leap_today(cooked));
        }
        if let Err(e) = self.reference.arm_leap(cooked, clock) {
            out.push(Action::Log(Event::ClockFailed(e)));
        }
        // Remember the leap instant while it is still the leap day: the timer that handles
        // it runs after midnight.
        if let Some(at) = self.reference.next_leap_event(cooked) {
            self.leap_at = Some((at, cooked - clock.remaining_offset()));
        }
        let Some((at, _)) = self.leap_at else {
            return;
        };
        if cooked < at {
            return;
        }
        self.leap_at = None;
        let leap = self.reference.leap();
        match self.reference.apply_leap(cooked, clock) {
            Ok(Some(change)) => {
                // Our clock and the sources' clocks both left the leap second behind, so the
                // measured offsets are unchanged; only the timeline moved (and with it the
                // deadlines when the driver's time jumped).
                let raw_jumped = matches!(
                    self.reference.config().leap_mode,
                    crate::reference::LeapMode::Step | crate::reference::LeapMode::System
                );
                for e in self.sources.values_mut() {
                    e.assoc.shift_times(change.doffset, raw_jumped);
                }
                out.push(Action::Log(Event::LeapSecond(leap)));
            }
            Ok(None) => {}
            Err(e) => out.push(Action::Log(Event::ClockFailed(e))),
        }
    }

    // ---- statlog: sample records for `log measurements statistics` (begin) ----
    /// Handles a packet from source `id` received at `now` (the receive timestamp, daemon time
    /// base). `local_refid` is the reference ID of the local address (synchronisation-loop
    /// test); `authenticated` whether a MAC/NTS check passed.
    pub fn handle_packet(
        &mut self,
        id: SourceId,
        now: f64,
        data: &[u8],
        local_refid: Option<u32>,
        authenticated: bool,
        clock: &mut dyn ClockDriver,
    ) -> Vec<Action> {
        self.handle_packet_recorded(id, now, data, local_refid, authenticated, clock)
            .0
    }

    /// [`Engine::handle_packet`], also returning what an accepted sample looked like before it
    /// moved the clock (chronyd's measurements.log and statistics.log are written from these
    /// values: after the update the regression is re-expressed against the corrected clock).
    pub fn handle_packet_recorded(
        &mut self,
        id: SourceId,
        now: f64,
        data: &[u8],
        local_refid: Option<u32>,
        authenticated: bool,
        clock: &mut dyn ClockDriver,
    ) -> (Vec<Action>, Option<SampleRecord>) {
        let mut out = Vec::new();
        if self.finished {
            return (out, None);
        }
        // ---- sync: orphan mode compares reference IDs with ours (selection/orphan.rs) ----
        self.selector.learn_local_refid(local_refid);
        let cooked = cooked_time(clock, now);
        let Some(e) = self.sources.get_mut(&id) else {
            return (out, None);
        };
        // Rejections are counted per source (`Association::rejected`), not logged.
        // ---- control: `ntpdata` sees every packet (control.rs) ----
        let sent = e.assoc.pending.map(|p| p.local_tx);
        let kernel_tx = e.assoc.transmit_from_kernel(); // tx_stamp.rs
        let outcome = e.assoc.on_packet(cooked, data, local_refid, authenticated);
        self.note_packet(id, data, &outcome, sent, cooked);
        self.note_tx_source(id, kernel_tx);
        self.note_interleaved(id); // interleaved.rs
        let (RxOutcome::Sample(sample), Some(e)) = (outcome, self.sources.get(&id)) else {
            return (out, None);
        };
        let a = &e.assoc;
        let record = SampleRecord {
            source: id,
            remote: a.remote(),
            peer: a.config().kind == SourceKind::Peer,
            local_poll: a.poll,
            remote_poll: a.remote_poll,
            poll_score: a.poll_score,
            measured_offset: a.last_measured,
            sample,
            // The server's reference ID (the accessor gives the one we would announce).
            reference_id: a.reference_id,
            stats: a.stats().report(cooked),
            remaining_correction: clock.remaining_offset(),
            jitter_asymmetry: a.stats().jitter_asymmetry(),
            interleaved: a.last_interleaved_measurement().is_some(),
        };
        self.select_and_update(Some(id), cooked, clock, &mut out);
        (out, Some(record))
    }
    // ---- statlog (end) ----

    /// Runs selection and, when the source that just gave a sample (`from`) is the
    /// synchronisation source, updates the clock. Without a new sample only the states and
    /// the synchronised status are refreshed.
    fn select_and_update(
        &mut self,
        from: Option<SourceId>,
        cooked: f64,
        clock: &mut dyn ClockDriver,
        out: &mut Vec<Action>,
    ) {
        let mut candidates = self.candidates(cooked);
        self.limit_unreachable(&mut candidates); // `maxunreach` (source_options.rs)
        let previous = self.selector.current();
        let selection = self.selector.select(&candidates);
        for (id, state) in &selection.states {
            if let Some(e) = self.sources.get_mut(&SourceId(*id as u32)) {
                e.assoc.set_state(*state);
                if *state != SourceState::Falseticker {
                    e.falseticker_rounds = 0;
                } else if from.is_some() {
                    e.falseticker_rounds += 1;
                }
            }
        }
        let comb = match selection.outcome {
            Ok(c) => c,
            Err(reason) => {
                if self.last_no_selection != Some(reason) {
                    out.push(Action::Log(Event::CannotSynchronise(reason)));
                    self.last_no_selection = Some(reason);
                }
                if let Err(e) = self.reference.unsynchronise(cooked, clock) {
                    out.push(Action::Log(Event::ClockFailed(e)));
                }
                return;
            }
        };
        self.last_no_selection = None;
        let selected = SourceId(comb.selected as u32);
        if previous != Some(comb.selected) {
            if let Some(e) = self.sources.get(&selected) {
                out.push(Action::Log(Event::Selected(e.assoc.remote())));
            }
        }
        let Some(from) = from else {
            return;
        };
        if previous == Some(comb.selected) && selected != from {
            // Only a new sample of the synchronisation source moves the clock.
            return;
        }

        if let Some((mode, _)) = self.one_shot {
            self.finish_one_shot(mode, comb.offset, cooked, clock, out);
            return;
        }
        if let Some(table) = &self.leap_table {
            let leap = table.leap_today(cooked);
            let comb = crate::selection::Combined { leap, ..comb };
            self.update_reference(&comb, cooked, clock, out);
        } else {
            self.update_reference(&comb, cooked, clock, out);
        }
    }

    fn update_reference(
        &mut self,
        comb: &crate::selection::Combined,
        cooked: f64,
        clock: &mut dyn ClockDriver,
        out: &mut Vec<Action>,
    ) {
        match self.reference.update(cooked, comb, clock) {
            Ok(u) => {
                self.clock_updates = self.clock_updates.saturating_add(1);
                match u.action {
                    UpdateAction::Stepped(o) => out.push(Action::Log(Event::Stepped(o))),
                    UpdateAction::Slewed(o) => {
                        if o.abs() > 1.0 {
                            out.push(Action::Log(Event::Slewing(o)));
                        }
                    }
                    UpdateAction::IgnoredMaxChange(o) => {
                        out.push(Action::Log(Event::MaxChangeIgnored(o)))
                    }
                    UpdateAction::ExitMaxChange(_) => {
                        self.finished = true;
                        out.push(Action::Exit(ExitReason::MaxChange));
                    }
                }
                if let Some(change) = u.change {
                    self.apply_change(change, matches!(u.action, UpdateAction::Stepped(_)));
                }
                if let Err(e) = self.reference.report_sync_status(cooked, clock) {
                    out.push(Action::Log(Event::ClockFailed(e)));
                }
            }
            Err(e) => out.push(Action::Log(Event::ClockFailed(e))),
        }
    }

    fn finish_one_shot(
        &mut self,
        mode: OneShot,
        offset: f64,
        cooked: f64,
        clock: &mut dyn ClockDriver,
        out: &mut Vec<Action>,
    ) {
        let mut applied = false;
        if mode == OneShot::Set {
            match clock.step(-offset) {
                Ok(()) => {
                    applied = true;
                    self.apply_change(
                        ClockChange {
                            when: cooked,
                            dfreq: 0.0,
                            doffset: -offset,
                        },
                        true,
                    );
                }
                Err(e) => out.push(Action::Log(Event::ClockFailed(e))),
            }
        }
        out.push(Action::Log(Event::OneShotOffset { offset, applied }));
        self.finished = true;
        out.push(Action::Exit(ExitReason::OneShotDone));
    }

    /// Applies a clock change to every source; `raw_jumped` when the driver's time stepped
    /// (deadlines move with it).
    fn apply_change(&mut self, change: ClockChange, raw_jumped: bool) {
        for e in self.sources.values_mut() {
            e.assoc
                .apply_clock_change(change.when, change.dfreq, change.doffset);
            if raw_jumped {
                e.assoc.shift_deadlines(change.doffset);
                e.assoc.refuse_kernel_transmit(); // tx_stamp.rs
            }
        }
        if raw_jumped {
            if let Some(s) = &mut self.start {
                *s += change.doffset;
            }
        }
    }

    /// Drops unreachable or falseticking pool members and asks for replacements.
    fn replace_pool_members(&mut self, out: &mut Vec<Action>) {
        let bad: Vec<SourceId> = self
            .sources
            .iter()
            .filter(|(_, e)| {
                e.pool.is_some()
                    && (e.assoc.unreachable_polls() >= POOL_UNREACH_POLLS
                        || e.falseticker_rounds >= POOL_FALSETICKER_ROUNDS)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in bad {
            let Some(e) = self.sources.remove(&id) else {
                continue;
            };
            out.push(Action::Log(Event::PoolSourceReplaced(e.assoc.remote())));
            if let Some(pid) = e.pool {
                if let Some(p) = self.pools.get_mut(&pid) {
                    p.members.retain(|m| *m != id);
                    if !p.resolving {
                        p.resolving = true;
                        out.push(Action::Resolve(pid, p.name.clone()));
                    }
                }
            }
        }
    }

    /// `tracking` at `now`.
    pub fn tracking(&self, now: f64, clock: &dyn ClockDriver) -> TrackingReport {
        let cooked = cooked_time(clock, now);
        let mut t = self.reference.tracking(cooked, clock);
        if self.reference.is_synchronised() {
            t.reference_addr = self
                .selector
                .current()
                .and_then(|i| self.sources.get(&SourceId(i as u32)))
                .map(|e| e.assoc.remote());
            // `copy` (source_options.rs).
            if let Some((id, stratum)) = self.copied_reference() {
                (t.reference_id, t.stratum) = (id, stratum);
            }
        }
        t
    }

    /// `sources` rows at `now`.
    pub fn sources(&self, now: f64, clock: &dyn ClockDriver) -> Vec<(SourceId, SourceReport)> {
        let cooked = cooked_time(clock, now);
        self.sources
            .iter()
            .map(|(id, e)| (*id, e.assoc.report(cooked)))
            .collect()
    }

    /// `sourcestats` rows at `now`.
    pub fn source_stats(
        &self,
        now: f64,
        clock: &dyn ClockDriver,
    ) -> Vec<(SourceId, SocketAddr, SourceStatsReport)> {
        let cooked = cooked_time(clock, now);
        self.sources
            .iter()
            .map(|(id, e)| (*id, e.assoc.remote(), e.assoc.stats().report(cooked)))
            .collect()
    }

    /// Drift to save in the drift file: (frequency ppm, skew ppm).
    pub fn drift(&self, clock: &dyn ClockDriver) -> (f64, f64) {
        self.reference.drift(clock)
    }

    /// Loads a drift file value at start.
    pub fn load_drift(
        &mut self,
        freq_ppm: f64,
        skew_ppm: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        self.reference.load_drift(freq_ppm, skew_ppm, clock)
    }
}

/// Selection view of an association at cooked time `now`.
fn candidate(id: usize, a: &Association, now: f64) -> Candidate {
    let stats = a.stats();
    let (offset, offset_sd) = stats.predict(now).unwrap_or((0.0, 0.0));
    let est = stats.estimate();
    let last = stats.last_sample();
    let std_dev = est.map_or(0.0, |e| e.std_dev);
    let (root_delay, root_dispersion) = last.map_or((0.0, 0.0), |s| {
        let age = (now - s.time).max(0.0);
        (s.root_delay, s.root_dispersion + age * 1e-6)
    });
    Candidate {
        id,
        pending: a.is_pending(),
        usable: a.is_selectable(),
        offset,
        offset_sd,
        root_distance: root_delay / 2.0 + root_dispersion + std_dev + offset_sd,
        std_dev,
        frequency: est.map_or(0.0, |e| e.frequency),
        skew: est.map_or(crate::source_stats::WORST_CASE_SKEW, |e| e.skew),
        root_delay,
        root_dispersion,
        stratum: a.stratum(),
        leap: a.leap(),
        reference_id: a.reference_id(),
        options: a.config().select,
    }
}

mod auth;
#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod security_tests;
// ---- source options: copy, auto_offline, maxunreach ----
mod source_options;
mod source_table;
// ---- control: chronyc's commands on sources and the clock ----
mod control;
pub use control::{AuthReport, RejectedMeasurement, SelectReport, SourceSetting};
#[cfg(test)]
mod tests;
// ---- kernel transmit timestamps (tx_stamp.rs) ----
mod tx_stamp;
// ---- interleaved client mode, `xleave` (interleaved.rs) ----
mod interleaved;
