//! Run-time control of the engine: what chronyc's commands do to sources and to the clock
//! (`burst`, `minpoll`/`maxpoll`/`maxdelay`/… on a source, `makestep`, `dfreq`/`doffset`,
//! `reselect`, `local`), and the per-source reports they come with (`ntpdata`, `selectdata`).
//!
//! Value handling follows chronyd 4.3 as observed black-box: a poll setting outside −6..24 is
//! ignored (the command still succeeds), raising `minpoll` above `maxpoll` raises `maxpoll`
//! (and the reverse), `maxdelay` is clamped to 0..1000 s, `maxdelaydevratio` to ≥ 0,
//! `minstratum` and `polltarget` are taken as given (within their types).

use std::net::SocketAddr;

use super::{Action, Engine, SourceId};
use crate::association::ntp_data::{Exchange, NtpDataReport};
use crate::association::{AuthState, Burst, RxOutcome, SourceKind, MIN_SELECT_SAMPLES};
use crate::local_clock::{cooked_time, ClockDriver, ClockError, LeapState};
use crate::reference::{ClockChange, LocalConfig};
use crate::reports::SourceState;
use crate::selection::{Orphan, SelectOptions, SelectStatus};

/// Smallest poll exponent a command may set (chrony's limit).
pub const MIN_POLL: i32 = -6;
/// Largest poll exponent a command may set.
pub const MAX_POLL: i32 = 24;
/// Largest `maxdelay` a command may set, seconds.
pub const MAX_MAX_DELAY: f64 = 1000.0;

/// A per-source setting changed at run time (chronyc `minpoll ADDRESS N` and friends).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceSetting {
    /// `minpoll`, log2 seconds.
    MinPoll(i32),
    /// `maxpoll`, log2 seconds.
    MaxPoll(i32),
    /// `minstratum`.
    MinStratum(i32),
    /// `polltarget`.
    PollTarget(i32),
    /// `maxdelay`, seconds.
    MaxDelay(f64),
    /// `maxdelayratio`.
    MaxDelayRatio(f64),
    /// `maxdelaydevratio`.
    MaxDelayDevRatio(f64),
}

impl std::fmt::Display for SourceSetting {
    /// chronyd's wording after "Source ADDRESS new ".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSetting::MinPoll(v) => write!(f, "minpoll {v}"),
            SourceSetting::MaxPoll(v) => write!(f, "maxpoll {v}"),
            SourceSetting::MinStratum(v) => write!(f, "minstratum {v}"),
            SourceSetting::PollTarget(v) => write!(f, "polltarget {v}"),
            SourceSetting::MaxDelay(v) => write!(f, "maxdelay {v:.6}"),
            SourceSetting::MaxDelayRatio(v) => write!(f, "maxdelayratio {v:.6}"),
            SourceSetting::MaxDelayDevRatio(v) => write!(f, "maxdelaydevratio {v:.6}"),
        }
    }
}

/// `selectdata` for one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectReport {
    /// The source.
    pub remote: SocketAddr,
    /// chronyc's state letter (`*`, `+`, `D`, `P`, `W`, `x`, `T`, `O`, `~`, `d`, `N`, `s`,
    /// `M`, `?`).
    pub state: char,
    /// The source authenticates its packets (key or NTS).
    pub authenticated: bool,
    /// Its leap warning (`None`: unsynchronised or unknown).
    pub leap: Option<LeapState>,
    /// Options as configured.
    pub configured: SelectOptions,
    /// Options in effect (after `authselectmode`).
    pub effective: SelectOptions,
    /// Seconds since its last sample (`u32::MAX`: never).
    pub last_sample_ago: u32,
    /// Reselection score: chronyd's starting value, 1, for every source (its reselection
    /// scoring is not modelled).
    pub score: f64,
    /// Low end of its offset interval (offset − root distance), seconds.
    pub lo_limit: f64,
    /// High end of its offset interval, seconds.
    pub hi_limit: f64,
}

/// A packet that passed tests 1–3 and failed a later one, for measurements.log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RejectedMeasurement {
    /// The source.
    pub remote: SocketAddr,
    /// A symmetric peer.
    pub peer: bool,
    /// Our poll interval, log2 seconds.
    pub local_poll: i8,
    /// Poll adaptation score.
    pub poll_score: f64,
    /// The packet's fields, its tests and the measurement computed from it.
    pub report: NtpDataReport,
}

/// `authdata` for one source (the parts the engine knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthReport {
    /// 0 none, 1 symmetric key, 2 NTS (chrony's numbers).
    pub mode: u16,
    /// The key ID (symmetric keys).
    pub key_id: u32,
    /// chrony's algorithm number (1 MD5 … 9 SHA3-512, 13 AES128, 14 AES256, 15
    /// AEAD-AES-SIV-CMAC-256); 0 when no key is loaded.
    pub key_type: u16,
    /// Key length in bits.
    pub key_bits: u16,
    /// NTS cookies held.
    pub cookies: u16,
    /// NTS: key exchanges started since the last successful one.
    pub ke_attempts: u16,
    /// NTS: seconds since the current session's key exchange (`None`: none yet, or not
    /// asked with a time: see `Engine::auth_report_at`).
    pub last_ke_ago: Option<u32>,
    /// NTS: a NAK was received and no key exchange succeeded since.
    pub nak: bool,
    /// NTS: length of the cookie the next request carries, octets.
    pub cookie_len: u16,
}

/// chrony's number for a key type (the `Type` column of `authdata`).
fn key_type_code(t: crate::auth::KeyType) -> u16 {
    use crate::auth::KeyType as K;
    match t {
        K::Md5 => 1,
        K::Sha1 => 2,
        K::Sha256 => 3,
        K::Sha384 => 4,
        K::Sha512 => 5,
        K::Sha3_224 => 6,
        K::Sha3_256 => 7,
        K::Sha3_384 => 8,
        K::Sha3_512 => 9,
        K::Aes128 => 13,
        K::Aes256 => 14,
    }
}

impl Engine {
    /// `burst GOOD/TOTAL` on a source: up to `total` requests 2 s apart, the first now,
    /// until `good` of them gave a measurement; then back to normal polling, or offline for
    /// a source that was offline (chronyd's "burst (return to offline)"). Returns false for
    /// an unknown source.
    pub fn burst(&mut self, id: SourceId, good: u32, total: u32, now: f64) -> bool {
        let Some(e) = self.sources.get_mut(&id) else {
            return false;
        };
        if good == 0 || total == 0 {
            return true;
        }
        let a = &mut e.assoc;
        if !a.online {
            a.online = true;
            self.offline_bursts.insert(id);
        }
        a.burst = Some(Burst {
            good_left: good,
            sends_left: total,
        });
        a.next_tx = a.next_tx.min(now);
        true
    }

    /// `online`/`offline` on a source. Going offline during a burst lets the burst finish
    /// first, as chronyd does.
    pub fn set_online_commanded(&mut self, id: SourceId, online: bool, now: f64) {
        let bursting = self.is_bursting(id);
        if online {
            self.offline_bursts.remove(&id);
            if !bursting {
                self.set_online(id, true, now);
            }
        } else if bursting {
            self.offline_bursts.insert(id);
        } else {
            self.set_online(id, false, now);
        }
    }

    /// Takes the sources whose burst ended back offline (call once per loop turn).
    pub fn end_offline_bursts(&mut self, now: f64) {
        if self.offline_bursts.is_empty() {
            return;
        }
        let done: Vec<SourceId> = self
            .offline_bursts
            .iter()
            .copied()
            .filter(|id| !self.is_bursting(*id))
            .collect();
        for id in done {
            self.offline_bursts.remove(&id);
            self.set_online(id, false, now);
        }
    }

    /// Whether a source's burst returns it offline (for `activity`).
    pub fn burst_returns_offline(&self, id: SourceId) -> bool {
        self.offline_bursts.contains(&id) && self.is_bursting(id)
    }

    /// Every source, in order.
    pub fn source_ids(&self) -> impl Iterator<Item = SourceId> + '_ {
        self.sources.keys().copied()
    }

    /// `refresh`: asks for a new lookup of every pool that is not full (its unreachable
    /// members are replaced by the engine on its own after 8 polls).
    pub fn refresh_pools(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        for (id, p) in self.pools.iter_mut() {
            if !p.resolving && p.members.len() < p.max_sources {
                p.resolving = true;
                out.push(Action::Resolve(*id, p.name.clone()));
            }
        }
        out
    }

    /// Removes a `pool` and its members (`reload sources` dropping a sourcedir line).
    /// Returns false for an unknown pool.
    pub fn remove_pool(&mut self, pool: super::PoolId) -> bool {
        let Some(p) = self.pools.remove(&pool) else {
            return false;
        };
        for id in p.members {
            self.sources.remove(&id);
        }
        self.pending_actions
            .retain(|a| !matches!(a, Action::Resolve(id, _) if *id == pool));
        true
    }

    /// Whether a source is in a burst (for `activity`).
    pub fn is_bursting(&self, id: SourceId) -> bool {
        self.sources
            .get(&id)
            .is_some_and(|e| e.assoc.burst.is_some())
    }

    /// Changes a setting of a source; returns the settings that changed, in chronyd's log
    /// order (a `minpoll` above `maxpoll` also moves `maxpoll`), or `None` for an unknown
    /// source. An out-of-range poll is ignored (empty list), as chronyd does.
    pub fn modify_source(
        &mut self,
        id: SourceId,
        setting: SourceSetting,
    ) -> Option<Vec<SourceSetting>> {
        let e = self.sources.get_mut(&id)?;
        let a = &mut e.assoc;
        let mut changed = Vec::new();
        let poll_ok = |v: i32| (MIN_POLL..=MAX_POLL).contains(&v);
        match setting {
            SourceSetting::MinPoll(v) if poll_ok(v) => {
                a.cfg.minpoll = v as i8;
                changed.push(SourceSetting::MinPoll(v));
                if i32::from(a.cfg.maxpoll) < v {
                    a.cfg.maxpoll = v as i8;
                    changed.push(SourceSetting::MaxPoll(v));
                }
            }
            SourceSetting::MaxPoll(v) if poll_ok(v) => {
                a.cfg.maxpoll = v as i8;
                changed.push(SourceSetting::MaxPoll(v));
                if i32::from(a.cfg.minpoll) > v {
                    a.cfg.minpoll = v as i8;
                    changed.push(SourceSetting::MinPoll(v));
                }
            }
            SourceSetting::MinPoll(_) | SourceSetting::MaxPoll(_) => {}
            SourceSetting::MinStratum(v) => {
                let v = v.clamp(0, i32::from(u8::MAX));
                a.cfg.minstratum = v as u8;
                changed.push(SourceSetting::MinStratum(v));
            }
            SourceSetting::PollTarget(v) => {
                let v = v.max(0);
                a.cfg.polltarget = v as u32;
                changed.push(SourceSetting::PollTarget(v));
            }
            SourceSetting::MaxDelay(v) => {
                let v = if v.is_nan() {
                    0.0
                } else {
                    v.clamp(0.0, MAX_MAX_DELAY)
                };
                a.cfg.maxdelay = v;
                changed.push(SourceSetting::MaxDelay(v));
            }
            SourceSetting::MaxDelayRatio(v) => {
                let v = if v.is_nan() { 0.0 } else { v.max(0.0) };
                a.cfg.maxdelayratio = (v > 0.0).then_some(v);
                changed.push(SourceSetting::MaxDelayRatio(v));
            }
            SourceSetting::MaxDelayDevRatio(v) => {
                let v = if v.is_nan() { 0.0 } else { v.max(0.0) };
                a.cfg.maxdelaydevratio = v;
                changed.push(SourceSetting::MaxDelayDevRatio(v));
            }
        }
        a.poll = a.poll.clamp(a.cfg.minpoll, a.cfg.maxpoll);
        Some(changed)
    }

    /// `makestep`: steps the clock by the correction still being slewed, at once. Cooked time
    /// (what samples are stamped with) does not move; the raw time base and every deadline
    /// jump by the step. Returns the step (positive: the clock moved forward).
    pub fn make_step(&mut self, clock: &mut dyn ClockDriver) -> Result<f64, ClockError> {
        let step = clock.remaining_offset();
        clock.accrue_offset(-step)?;
        if let Err(e) = clock.step(step) {
            // Put the slew back: nothing changed.
            clock.accrue_offset(step)?;
            return Err(e);
        }
        for e in self.sources.values_mut() {
            e.assoc.shift_deadlines(step);
        }
        if let Some(s) = &mut self.start {
            *s += step;
        }
        Ok(step)
    }

    /// chronyc `local ...`/`local off` at run time, as if `local` had been configured so: the
    /// orphan rule selection applies from the next round on (with the reference ID already
    /// learnt) and the reference's fallback (`stratum`, `distance`) is the commanded one
    /// ([`crate::reference::Reference::set_local`]).
    pub fn set_local(
        &mut self,
        local: Option<LocalConfig>,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        self.selector.set_orphan(Orphan::from_local(local));
        self.reference.set_local(local, clock)
    }

    /// chronyc `makestep THRESHOLD LIMIT`, `maxupdateskew SKEW`, `reselectdist DISTANCE` at
    /// run time: the reference's and selection's settings, as the directives set them (the
    /// makestep limit counted from now, as chronyd counts it).
    pub fn set_makestep(&mut self, threshold: f64, limit: i64) {
        self.reference.set_makestep(threshold, limit);
    }

    /// See [`Engine::set_makestep`].
    pub fn set_max_update_skew(&mut self, ppm: f64) {
        self.reference.set_max_update_skew(ppm);
    }

    /// See [`Engine::set_makestep`].
    pub fn set_reselect_distance(&mut self, distance: f64) {
        self.selector.set_reselect_distance(distance);
    }

    /// `doffset OFFSET`: slews the clock by −`offset` seconds (chronyd's sign: a positive
    /// value says the clock is fast), keeping the sources' samples consistent.
    pub fn adjust_offset(
        &mut self,
        offset: f64,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        let when = cooked_time(clock, now);
        clock.accrue_offset(-offset)?;
        self.apply_change(
            ClockChange {
                when,
                dfreq: 0.0,
                doffset: -offset,
            },
            false,
        );
        Ok(())
    }

    /// `dfreq PPM`: changes the frequency correction by −`ppm` (chronyd's sign: `tracking`'s
    /// frequency error grows by `ppm`).
    pub fn adjust_frequency(
        &mut self,
        ppm: f64,
        now: f64,
        clock: &mut dyn ClockDriver,
    ) -> Result<(), ClockError> {
        let when = cooked_time(clock, now);
        let old = clock.frequency_ppm();
        clock.set_frequency_ppm(old - ppm)?;
        self.apply_change(
            ClockChange {
                when,
                dfreq: -ppm * 1e-6,
                doffset: 0.0,
            },
            false,
        );
        Ok(())
    }

    /// `reselect`: runs source selection again now (states, synchronisation source), without
    /// a new sample, so the clock is not updated.
    pub fn reselect(&mut self, now: f64, clock: &mut dyn ClockDriver) -> Vec<Action> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        let cooked = cooked_time(clock, now);
        // Forget the last failure so that its reason is logged again, as chronyd does.
        self.last_no_selection = None;
        self.select_and_update(None, cooked, clock, &mut out);
        out
    }

    /// `reset sources`: drops every source's measurements and runs selection, which then
    /// finds nothing to use: the reference becomes unsynchronised (or falls back to `local`)
    /// until new samples come.
    pub fn reset_sources(&mut self, now: f64, clock: &mut dyn ClockDriver) -> Vec<Action> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        for e in self.sources.values_mut() {
            let a = &mut e.assoc;
            a.stats.clear();
            a.filter = a
                .cfg
                .filter
                .and_then(|n| crate::sample_filter::SampleFilter::new(n).ok());
            a.state = SourceState::Unselectable;
        }
        let cooked = cooked_time(clock, now);
        self.last_no_selection = None;
        self.select_and_update(None, cooked, clock, &mut out);
        out
    }

    /// Records a packet from source `id` for `ntpdata` (called with every packet the
    /// association handled); `sent` is the transmit time of the request that was
    /// outstanding, `received` the packet's receive time (local cooked).
    pub(super) fn note_packet(
        &mut self,
        id: SourceId,
        data: &[u8],
        outcome: &RxOutcome,
        sent: Option<f64>,
        received: f64,
    ) {
        let Some(e) = self.sources.get(&id) else {
            return;
        };
        let keyed = !matches!(e.assoc.auth, AuthState::None);
        let exchange = sent.map(|sent| Exchange { sent, received });
        self.ntp_data
            .entry(id)
            .or_default()
            .record(data, outcome, keyed, exchange);
        // Sources removed since (pool replacements, `delete`) leave nothing behind.
        if self.ntp_data.len() > self.sources.len() {
            let live = &self.sources;
            self.ntp_data.retain(|k, _| live.contains_key(k));
        }
    }

    /// The packet [`Engine::handle_packet_recorded`] just handled from `id`, when it passed
    /// tests 1–3 but gave no sample (chronyd writes a measurements.log line for it too).
    pub fn rejected_measurement(&self, id: SourceId) -> Option<RejectedMeasurement> {
        let e = self.sources.get(&id)?;
        let report = self.ntp_data.get(&id)?.last_rejected()?;
        Some(RejectedMeasurement {
            remote: e.assoc.remote(),
            peer: e.assoc.cfg.kind == SourceKind::Peer,
            local_poll: e.assoc.poll,
            poll_score: e.assoc.poll_score,
            report,
        })
    }

    /// `authdata` for source `id`: the mode, and for a symmetric key its ID, type and
    /// length; for NTS the key-exchange and cookie state (auth.rs), without the age of the
    /// last key exchange, which `Engine::auth_report_at` adds.
    pub fn auth_report(&self, id: SourceId) -> Option<AuthReport> {
        let e = self.sources.get(&id)?;
        Some(match &e.assoc.auth {
            AuthState::None => AuthReport::default(),
            AuthState::Symmetric { id, key } => AuthReport {
                mode: 1,
                key_id: *id,
                key_type: key.as_ref().map_or(0, |k| key_type_code(k.key_type())),
                key_bits: key
                    .as_ref()
                    .map_or(0, |k| u16::try_from(k.bits()).unwrap_or(u16::MAX)),
                ..AuthReport::default()
            },
            AuthState::Nts(n) => super::auth::nts_auth_report(n, None),
        })
    }

    /// `ntpdata` for source `id`; `None` for an unknown source or a reference clock.
    pub fn ntp_data(&self, id: SourceId) -> Option<NtpDataReport> {
        let e = self.sources.get(&id)?;
        let log = self.ntp_data.get(&id).copied().unwrap_or_default();
        // Nothing heard yet: every field zero (mode "Invalid", tests 000 000 0000), as
        // chronyd reports such a source.
        // The jitter asymmetry in use (configured or estimated: source_stats/asymmetry.rs).
        Some(NtpDataReport {
            jitter_asymmetry: e.assoc.stats().jitter_asymmetry(),
            ..log.report(e.assoc.polls_sent)
        })
    }

    /// `selectdata` rows at `now`, in source order.
    pub fn select_data(&self, now: f64, clock: &dyn ClockDriver) -> Vec<(SourceId, SelectReport)> {
        let cooked = cooked_time(clock, now);
        let candidates = self.candidates(cooked);
        let selection_ran = self.last_no_selection.is_some() || self.selector.current().is_some();
        // The candidates are in source order: paired, not searched (10,000 sources).
        let mut candidates = candidates.iter().peekable();
        self.sources
            .iter()
            .map(|(id, e)| {
                let a = &e.assoc;
                let c = candidates.next_if(|c| c.id == id.0 as usize);
                let effective = c.map_or(a.cfg.select, |c| c.options);
                // The reason the last selection recorded (`P`, `T`, `W`, `O`, `d` …), else
                // what the source's own state tells.
                let recorded = self
                    .selector
                    .last_status(id.0 as usize)
                    .and_then(SelectStatus::letter);
                let state = match (recorded, a.state) {
                    (Some(letter), _) => letter,
                    (None, state) => Self::plain_state_letter(state, a, effective, selection_ran),
                };
                let (lo, hi) = match c {
                    // chronyd shows no interval for a noselect or unsynchronised source.
                    Some(c) if !a.stats.is_empty() && !matches!(state, 'N' | 's') => {
                        (c.offset - c.root_distance, c.offset + c.root_distance)
                    }
                    _ => (0.0, 0.0),
                };
                let report = a.report(cooked);
                let rep = SelectReport {
                    remote: a.remote(),
                    state,
                    authenticated: !matches!(a.auth, AuthState::None),
                    leap: (a.reach != 0 && !a.stats.is_empty()).then_some(a.leap),
                    configured: a.cfg.select,
                    effective,
                    // chronyd shows 0 for a source without samples.
                    last_sample_ago: if report.last_rx == u32::MAX {
                        0
                    } else {
                        report.last_rx
                    },
                    score: 1.0,
                    lo_limit: lo,
                    hi_limit: hi,
                };
                (*id, rep)
            })
            .collect()
    }

    /// `selectdata`'s letter from a source's `sources` state alone, for a source the last
    /// selection recorded no reason for (added since) or could not judge (unusable).
    fn plain_state_letter(
        state: SourceState,
        a: &crate::association::Association,
        effective: SelectOptions,
        selection_ran: bool,
    ) -> char {
        match state {
            SourceState::Selected => '*',
            SourceState::Combined => '+',
            // Selectable but too far from the best to be combined: chronyd's `D` (checked
            // with `combinelimit 0`).
            SourceState::NotCombined => 'D',
            SourceState::Falseticker => 'x',
            SourceState::Jittery => '~',
            SourceState::Unselectable if effective.noselect => 'N',
            // Before the first selection every source is "missing samples", as chronyd's.
            SourceState::Unselectable if !selection_ran => 'M',
            // Never heard from, or its server is unsynchronised: its leap status is unknown
            // (chronyd's `s`).
            SourceState::Unselectable if !(1..16).contains(&a.stratum) => 's',
            SourceState::Unselectable if a.stats.len() < MIN_SELECT_SAMPLES => 'M',
            SourceState::Unselectable => '?',
        }
    }

    // --- selection.log (gnomond statlog): fractional sample ages ---
    /// Seconds since each source's last sample at `now`, in source order (`None`: never),
    /// for selection.log's `Last sample` column (`select_data` rounds it to whole seconds).
    pub fn last_sample_ages(
        &self,
        now: f64,
        clock: &dyn ClockDriver,
    ) -> Vec<(SourceId, Option<f64>)> {
        let cooked = cooked_time(clock, now);
        self.sources
            .iter()
            .map(|(id, e)| {
                (
                    *id,
                    e.assoc.last_sample_time().map(|t| (cooked - t).max(0.0)),
                )
            })
            .collect()
    }
    // --- end selection.log ---
}

#[cfg(test)]
mod tests;
