//! One NTP association (a `server`, `pool` member or `peer` source): the poll state machine,
//! request construction and the validation of replies, sans-IO.
//!
//! Behaviour followed:
//! * RFC 5905 §8 packet tests as chrony numbers them for `ntpdata`: 1 duplicate, 2 bogus
//!   (origin ≠ our transmit), 3 invalid (zero timestamps); 5 authentication (`key`/`nts`,
//!   [`auth`], checked before the packet can change anything), 6 unsynchronised server (leap 3 / stratum ≥ 16 / reference time after
//!   transmit), 7 root distance ≥ 16 s; and chrony's A `maxdelay`, B `maxdelayratio`, C
//!   `maxdelaydevratio`, D synchronisation loop. Tests 1–3 drop the packet; 5–7 make it
//!   reach the source but give no sample; A–D only reject the sample.
//! * Client requests carry only a random transmit timestamp (RFC 9109 / data minimisation:
//!   origin, receive and reference timestamps are zero), sent from a fresh random source port
//!   per request (the transmit asks the daemon for one). The real send time stays local.
//!   With `xleave` (interleaved.rs, RFC 9769) origin and receive carry the interleaved
//!   mode's echo and cookie, and a response may measure the previous exchange.
//! * Kiss-o'-Death: RATE is honoured (poll interval raised) only when the KoD answers our
//!   outstanding request (test 2 passed); DENY and RSTR without authentication are recorded
//!   and not acted on; a KoD that does not answer our request is dropped as bogus.
//! * Poll interval between `minpoll` and `maxpoll`, adapted towards `polltarget` samples in the
//!   regression; `iburst` (4–8 requests 2 s apart at start and when going online), `burst`
//!   (the same at every poll), `presend` (an extra request before polls of 2^P s or more);
//!   the 8-bit reachability register shifts at every poll.
//! * Symmetric peers (mode 1): packets carry real timestamps; every received peer packet
//!   updates the origin/receive pair echoed in our next packet; samples come from replies whose
//!   origin is our last transmit.
//! * chrony's measurement options ([`SourceConfig`]): `offset` and `asymmetry` correct the
//!   measured offset, `mindelay` fixes the minimum delay of that correction and of tests B/C,
//!   `maxdelayquant` replaces test C by a delay quantile, `copy` skips test D, `auto_offline`
//!   takes the source offline when a send fails, `maxunreach` keeps an unreachable source
//!   selectable for that many polls.

mod auth;
#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod security_tests;
// ---- source options: `maxdelayquant` (delay_quantile.rs) ----
mod delay_quantile;
pub mod engine;
// ---- control: `ntpdata` records (ntp_data.rs) ----
pub mod ntp_data;
mod source_config;
#[cfg(test)]
mod tests;
// ---- kernel transmit timestamps (tx_stamp.rs) ----
mod tx_stamp;
// ---- interleaved client mode, `xleave` (interleaved.rs) ----
mod interleaved;

pub use auth::AuthState;
pub use engine::{Action, Engine, EngineConfig, Event, ExitReason, OneShot, PoolId, SourceId};
pub use engine::{AuthReport, RejectedMeasurement, SelectReport, SourceSetting};
pub use ntp_data::NtpDataReport;
pub use source_config::{SourceAuth, SourceConfig, SourceKind};
pub use tx_stamp::TxStampOutcome;

use std::net::SocketAddr;

use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::local_clock::LeapState;
use crate::reports::{SourceMode, SourceReport, SourceState};
use crate::sample_filter::{Sample, SampleFilter};
use crate::source_stats::SourceStats;

/// What our own packets say about us (used in symmetric mode, where the peer may follow us).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LocalState {
    /// Our stratum (0 = unsynchronised).
    pub stratum: u8,
    /// Our leap warning; `None` when unsynchronised (leap bits 3).
    pub leap: Option<LeapState>,
    /// Our root delay, seconds.
    pub root_delay: f64,
    /// Our root dispersion, seconds.
    pub root_dispersion: f64,
    /// Our reference ID.
    pub reference_id: u32,
    /// Time of our last clock update (local, cooked).
    pub reference_time: f64,
}

/// A request for the daemon to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub remote: SocketAddr,
    /// The packet.
    pub payload: [u8; Header::LEN],
    /// Client requests go out from a fresh socket with a random port (RFC 9109); peer packets
    /// from the NTP server socket.
    pub fresh_port: bool,
    /// Octets sent right after `payload`: the MAC of a keyed source or the NTS extension
    /// fields; empty without authentication. The datagram is `payload ‖ trailer`.
    pub trailer: Vec<u8>,
}

impl std::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The trailer can hold an NTS cookie: only its length is shown (catalogue case 32).
        f.debug_struct("Transmit")
            .field("remote", &self.remote)
            .field("payload", &self.payload)
            .field("fresh_port", &self.fresh_port)
            .field("trailer_len", &self.trailer.len())
            .finish()
    }
}

impl Transmit {
    /// The whole datagram to send.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Header::LEN + self.trailer.len());
        v.extend_from_slice(&self.payload);
        v.extend_from_slice(&self.trailer);
        v
    }
}

/// Why a received packet gave no sample (the counted reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a decodable NTP header / wrong mode or version.
    Malformed,
    /// Test 1: duplicate of the last packet.
    Duplicate,
    /// Test 2: does not answer our outstanding request (spoofed, stale or a stranger's KoD).
    Bogus,
    /// Test 3: a needed timestamp is zero.
    ZeroTimestamp,
    /// Test 6: the server is unsynchronised.
    Unsynchronised,
    /// Test 7: root distance too large.
    RootDistance,
    /// Test A: delay above `maxdelay` (or negative).
    MaxDelay,
    /// Test B: delay above `maxdelayratio` × minimum.
    MaxDelayRatio,
    /// Test C: delay too far above the minimum relative to the jitter.
    MaxDelayDevRatio,
    /// Test D: the server is synchronised to us.
    SyncLoop,
    /// A Kiss-o'-Death RATE (honoured).
    KissRate,
    /// A Kiss-o'-Death DENY/RSTR (recorded only, unauthenticated).
    KissDenyIgnored,
    /// Other kiss codes.
    KissOther,
    /// The reply to a presend request (warm-up only).
    Presend,
    /// Accepted, but held by the `filter` option.
    Filtered,
    /// Test 5: no valid MAC by the configured key, or failed NTS verification.
    AuthFailed,
    /// An NTS NAK answering our request (a new key exchange is scheduled).
    NtsNak,
}

/// Number of [`Rejection`] variants.
const REJECTIONS: usize = 17;

/// What a received packet did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RxOutcome {
    /// A new sample was added to the statistics.
    Sample(Sample),
    /// No sample, for this reason.
    Rejected(Rejection),
}

/// Largest root distance of a usable server (RFC 5905 MAXDISP).
const MAX_DISPERSION: f64 = 16.0;
/// Longest interval of burst requests, seconds (chrony's iburst spacing at default polls).
const BURST_INTERVAL: f64 = 2.0;

/// Spacing of `iburst`/`burst` requests at poll exponent `poll`: a quarter of the poll
/// interval, at most [`BURST_INTERVAL`]. Measured on chronyd 4.3 through a relay: 2 s at
/// minpoll 6, 1 s at minpoll 2, 0.25 s at minpoll 0, 1/16 s at minpoll -2.
fn burst_interval(poll: i8) -> f64 {
    (2f64.powi(i32::from(poll)) / 4.0).min(BURST_INTERVAL)
}
/// Presend lead time, seconds.
const PRESEND_LEAD: f64 = 4.0;
/// Samples before a source is selectable (fewer give no frequency estimate).
pub const MIN_SELECT_SAMPLES: usize = 3;
/// Prediction error (in the sample's error bounds) beyond which the regression is restarted
/// and the poll interval shortened.
const SURPRISE_LIMIT: f64 = 4.0;
/// Poll exponent whose sample window (see `on_packet`) shorter polls keep: chrony's minpoll.
const DEFAULT_WINDOW_POLL: i8 = 6;
/// Consecutive `maxdelaydevratio` rejections after which one sample is accepted anyway.
const MAX_DELAY_DEV_REJECTS: u32 = 3;
/// Dispersion added by our own clock precision, seconds.
const LOCAL_PRECISION: f64 = 1e-6;

#[derive(Debug, Clone, Copy)]
struct Pending {
    /// What we put in the transmit field (random for clients).
    wire_tx: NtpTimestamp,
    /// Local cooked time of the send.
    local_tx: f64,
    presend: bool,
    /// NTS Unique Identifier of the request (cleared once answered).
    uid: Option<[u8; crate::nts_client::ntp::UID_LEN]>,
    /// `local_tx` is the kernel's transmit timestamp (tx_stamp.rs).
    kernel_tx: bool,
    /// The clock was stepped since the send: a kernel stamp read now would be on the old
    /// timeline (tx_stamp.rs).
    stepped: bool,
    /// Interleaved mode: the cookie and the exchange the request refers to (interleaved.rs).
    xleave: interleaved::Sent,
}

#[derive(Debug, Clone, Copy)]
struct Burst {
    good_left: u32,
    sends_left: u32,
}

/// One association.
#[derive(Debug, Clone)]
pub struct Association {
    remote: SocketAddr,
    cfg: SourceConfig,
    rng: StdRng,
    poll: i8,
    poll_score: f64,
    reach: u8,
    online: bool,
    next_tx: f64,
    pending: Option<Pending>,
    last_rx_xmt: NtpTimestamp,
    /// The receive timestamp of that last reply (test 1 compares both).
    last_rx_rec: NtpTimestamp,
    burst: Option<Burst>,
    presend_pending: bool,
    stats: SourceStats,
    filter: Option<SampleFilter>,
    last_sample_time: Option<f64>,
    last_measured: f64,
    last_adjusted: f64,
    last_error: f64,
    stratum: u8,
    leap: LeapState,
    reference_id: u32,
    remote_poll: i8,
    peer_org: NtpTimestamp,
    peer_rec: f64,
    state: SourceState,
    local: LocalState,
    counters: [u64; REJECTIONS],
    auth: AuthState,
    unreach_polls: u32,
    polls_sent: u32,
    delay_dev_rejects: u32,
    /// `maxdelayquant` (delay_quantile.rs).
    delay_quantile: Option<delay_quantile::DelayQuantile>,
    /// Interleaved mode, `xleave` (interleaved.rs).
    xleave: interleaved::Xleave,
}

impl Association {
    /// A new association polling `remote`; the first request goes out at `now` (+ a small
    /// random delay to spread sources), unless `offline`. `seed` makes its randomness
    /// reproducible.
    pub fn new(remote: SocketAddr, cfg: SourceConfig, now: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let minpoll = cfg.minpoll.clamp(-7, 24);
        let maxpoll = cfg.maxpoll.clamp(minpoll, 24);
        let cfg = SourceConfig {
            minpoll,
            maxpoll,
            ..cfg
        };
        let jitter: f64 = rng.random_range(0.0..0.2);
        let mut a = Association {
            remote,
            cfg,
            rng,
            poll: minpoll,
            poll_score: 0.0,
            reach: 0,
            online: !cfg.offline,
            next_tx: now + jitter,
            pending: None,
            last_rx_xmt: NtpTimestamp::ZERO,
            last_rx_rec: NtpTimestamp::ZERO,
            burst: None,
            presend_pending: false,
            stats: SourceStats::new(cfg.minsamples, cfg.maxsamples)
                .with_asymmetry(cfg.asymmetry, cfg.mindelay),
            filter: cfg.filter.and_then(|n| SampleFilter::new(n).ok()),
            last_sample_time: None,
            last_measured: 0.0,
            last_adjusted: 0.0,
            last_error: 0.0,
            stratum: 0,
            leap: LeapState::Normal,
            reference_id: 0,
            remote_poll: 0,
            peer_org: NtpTimestamp::ZERO,
            peer_rec: 0.0,
            state: SourceState::Unselectable,
            local: LocalState::default(),
            counters: [0; REJECTIONS],
            auth: AuthState::None,
            unreach_polls: 0,
            polls_sent: 0,
            delay_dev_rejects: 0,
            delay_quantile: cfg.maxdelayquant.map(delay_quantile::DelayQuantile::new),
            xleave: interleaved::Xleave::default(),
        };
        // `xleave` (interleaved.rs): from the first request on.
        a.set_interleaved(cfg.xleave);
        if cfg.iburst && a.online {
            a.start_burst();
        }
        a
    }

    fn start_burst(&mut self) {
        self.burst = Some(Burst {
            good_left: 4,
            sends_left: 8,
        });
    }

    /// The remote address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The options.
    pub fn config(&self) -> &SourceConfig {
        &self.cfg
    }

    /// Statistics of the source.
    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// Mutable statistics (clock changes are applied by the engine).
    pub fn stats_mut(&mut self) -> &mut SourceStats {
        &mut self.stats
    }

    /// Current poll exponent.
    pub fn poll(&self) -> i8 {
        self.poll
    }

    /// Reachability register.
    pub fn reach(&self) -> u8 {
        self.reach
    }

    /// Stratum of the source (after `minstratum`).
    pub fn stratum(&self) -> u8 {
        self.stratum
    }

    /// Leap warning of the source.
    pub fn leap(&self) -> LeapState {
        self.leap
    }

    /// Reference ID a client of ours sees when we follow this source.
    pub fn reference_id(&self) -> u32 {
        match self.remote.ip() {
            std::net::IpAddr::V4(v4) => u32::from(v4),
            std::net::IpAddr::V6(v6) => gnomon_wire::refid::refid_ipv6(&v6),
        }
    }

    /// How many packets were rejected for `reason`.
    pub fn rejected(&self, reason: Rejection) -> u64 {
        self.counters[reason as usize]
    }

    /// Polls without reply since the last good packet.
    pub fn unreachable_polls(&self) -> u32 {
        self.unreach_polls
    }

    /// Selection state last assigned by the engine.
    pub fn state(&self) -> SourceState {
        self.state
    }

    /// Records the selection state.
    pub fn set_state(&mut self, state: SourceState) {
        self.state = state;
    }

    /// Updates what our symmetric-mode packets announce.
    pub fn set_local_state(&mut self, local: LocalState) {
        self.local = local;
    }

    /// True when selection may consider it.
    pub fn is_selectable(&self) -> bool {
        let need = MIN_SELECT_SAMPLES.min(self.cfg.maxsamples.max(1));
        let need = if self.cfg.maxsamples == 0 {
            MIN_SELECT_SAMPLES
        } else {
            need
        };
        self.reach_usable() && self.stats.len() >= need && self.stratum > 0 && self.stratum < 16
    }

    /// Reachable, or unreachable (no valid reply to the last 8 polls) for fewer than
    /// `maxunreach` polls (chrony 4.8); without the option unreachable is unusable.
    fn reach_usable(&self) -> bool {
        self.reach != 0
            || self
                .cfg
                .maxunreach
                // The last reply's bit leaves the 8-bit register at the 7th unanswered
                // request after it: that poll counts as the first one unreachable.
                .is_some_and(|m| self.unreach_polls.saturating_sub(7) < m)
    }

    /// Local time of the newest sample, if any.
    pub fn last_sample_time(&self) -> Option<f64> {
        self.last_sample_time
    }

    /// A request could not be sent: with `auto_offline` the source goes offline (chrony's
    /// "assumed to have gone offline"), until `online` brings it back.
    pub fn send_failed(&mut self) {
        if self.cfg.auto_offline {
            self.set_online(false, self.next_tx);
        }
    }

    /// Not selectable yet, but starting: reachable with its first samples, or not polled often
    /// enough to know (fewer than 4 requests and no sample yet).
    pub fn is_pending(&self) -> bool {
        if self.is_selectable() || self.cfg.select.noselect || !self.online {
            return false;
        }
        let collecting = self.reach != 0 && (1..MIN_SELECT_SAMPLES).contains(&self.stats.len());
        let unknown = self.polls_sent < 4 && self.last_sample_time.is_none();
        collecting || unknown
    }

    /// Goes online (starting an iburst if configured) or offline.
    pub fn set_online(&mut self, online: bool, now: f64) {
        if online && !self.online {
            self.next_tx = now;
            if self.cfg.iburst {
                self.start_burst();
            }
        }
        if !online {
            self.pending = None;
            self.burst = None;
            // The saved exchange would be measured late, out of date (interleaved.rs).
            self.forget_interleaved();
        }
        self.online = online;
    }

    /// Deadline of the next transmission (raw/daemon time base), if online.
    pub fn next_timeout(&self) -> Option<f64> {
        let ke = match &self.auth {
            AuthState::Nts(n) => n.ke_due(),
            _ => None,
        };
        self.online
            .then(|| ke.map_or(self.next_tx, |k| k.min(self.next_tx)))
    }

    /// Shifts deadlines after the clock was stepped by `step` seconds.
    pub fn shift_deadlines(&mut self, step: f64) {
        self.next_tx += step;
    }

    /// Moves the timeline by `delta` seconds without changing offsets (a leap second that
    /// both our clock and the source's observed); deadlines move too when the driver's time
    /// jumped.
    pub fn shift_times(&mut self, delta: f64, deadlines: bool) {
        self.stats.shift_times(delta);
        if let Some(f) = &mut self.filter {
            f.shift_times(delta);
        }
        if let Some(t) = &mut self.last_sample_time {
            *t += delta;
        }
        if let Some(p) = &mut self.pending {
            p.local_tx += delta;
        }
        self.forget_interleaved(); // interleaved.rs
        if deadlines {
            self.next_tx += delta;
        }
    }

    /// Keeps samples and the last-sample report consistent with a clock change.
    pub fn apply_clock_change(&mut self, when: f64, dfreq: f64, doffset: f64) {
        self.stats.apply_clock_change(when, dfreq, doffset);
        if let Some(f) = &mut self.filter {
            f.apply_clock_change(when, dfreq, doffset);
        }
        if let Some(t) = self.last_sample_time {
            self.last_adjusted += doffset + dfreq * (t - when);
        }
        if let Some(p) = &mut self.pending {
            p.local_tx += doffset;
        }
        self.shift_interleaved(doffset); // interleaved.rs
        self.peer_rec += doffset;
    }

    /// Handles the timer at `now` (daemon time base) with `cooked` the corresponding local
    /// cooked time; returns a packet to send when due.
    pub fn on_timer(&mut self, now: f64, cooked: f64) -> Option<Transmit> {
        if !self.online || now < self.next_tx {
            return None;
        }
        let interval = 2f64.powi(i32::from(self.poll));
        let is_presend = self.presend_pending;
        self.presend_pending = false;
        if is_presend {
            // The warm-up request goes out PRESEND_LEAD before the real one.
            self.next_tx = now + PRESEND_LEAD;
            return self.build_request(cooked, true);
        }
        // Every real request moves the reach register on (chrony shows 17 after an iburst).
        if self.pending.is_some_and(|p| !p.presend) {
            self.unreach_polls = self.unreach_polls.saturating_add(1);
        }
        self.reach <<= 1;
        self.polls_sent = self.polls_sent.saturating_add(1);
        if self.burst.is_none() && self.cfg.burst && self.poll >= 3 {
            // `burst`: up to four requests 2 s apart until one gives a good measurement.
            self.burst = Some(Burst {
                good_left: 1,
                sends_left: 4,
            });
        }
        if let Some(b) = &mut self.burst {
            if b.sends_left == 0 || b.good_left == 0 {
                self.burst = None;
            } else {
                b.sends_left -= 1;
            }
        }
        match self.burst {
            Some(b) if b.sends_left > 0 => self.next_tx = now + burst_interval(self.poll),
            _ => {
                self.burst = None;
                self.next_tx = now + interval;
                if let Some(p) = self.cfg.presend {
                    if self.poll >= p && interval > 2.0 * PRESEND_LEAD {
                        self.next_tx = now + interval - PRESEND_LEAD;
                        self.presend_pending = true;
                    }
                }
            }
        }
        self.build_request(cooked, false)
    }

    fn build_request(&mut self, cooked: f64, presend: bool) -> Option<Transmit> {
        let peer = self.cfg.kind == SourceKind::Peer;
        let wire_tx = if peer {
            NtpTimestamp::from_unix_f64(cooked)
        } else {
            // Random, never zero: the server only echoes it.
            NtpTimestamp(self.rng.random::<u64>() | 1)
        };
        let header = if peer {
            let l = self.local;
            Header {
                leap: match l.leap {
                    None => LeapIndicator::Unsynchronised,
                    Some(LeapState::Normal) => LeapIndicator::NoWarning,
                    Some(LeapState::Insert) => LeapIndicator::InsertSecond,
                    Some(LeapState::Delete) => LeapIndicator::DeleteSecond,
                },
                version: self.cfg.version.clamp(1, 4),
                mode: Mode::SymmetricActive,
                // An unsynchronised peer announces stratum 16, not a kiss (stratum 0).
                stratum: if l.leap.is_none() || l.stratum == 0 {
                    16
                } else {
                    l.stratum
                },
                poll: self.poll,
                precision: -20,
                root_delay: NtpShort::from_seconds(l.root_delay),
                root_dispersion: NtpShort::from_seconds(l.root_dispersion),
                reference_id: l.reference_id,
                reference_timestamp: if l.reference_time > 0.0 {
                    NtpTimestamp::from_unix_f64(l.reference_time)
                } else {
                    NtpTimestamp::ZERO
                },
                origin_timestamp: self.peer_org,
                receive_timestamp: if self.peer_org.is_zero() {
                    NtpTimestamp::ZERO
                } else {
                    NtpTimestamp::from_unix_f64(self.peer_rec)
                },
                transmit_timestamp: wire_tx,
            }
        } else {
            // Data minimisation: nothing but the random transmit timestamp.
            Header {
                leap: LeapIndicator::Unsynchronised,
                version: self.cfg.version.clamp(1, 4),
                mode: Mode::Client,
                poll: self.poll,
                transmit_timestamp: wire_tx,
                ..Header::default()
            }
        };
        let (header, xleave) = self.interleaved_request(header); // interleaved.rs
        let payload = header.to_bytes();
        // Nothing goes out unauthenticated from a keyed or NTS source.
        let (trailer, uid) = self.authenticate_request(&payload)?;
        self.pending = Some(Pending {
            wire_tx,
            local_tx: cooked,
            presend,
            uid,
            kernel_tx: false,
            stepped: false,
            xleave,
        });
        Some(Transmit {
            remote: self.remote,
            payload,
            fresh_port: !peer,
            trailer,
        })
    }

    fn reject(&mut self, r: Rejection) -> RxOutcome {
        self.counters[r as usize] = self.counters[r as usize].saturating_add(1);
        RxOutcome::Rejected(r)
    }

    /// Handles a packet from the remote received at local cooked time `rx`. `local_refid` is
    /// the reference ID clients see for us (test D); `authenticated` says whether the caller
    /// verified a MAC/NTS (test 5 is the caller's).
    pub fn on_packet(
        &mut self,
        rx: f64,
        data: &[u8],
        local_refid: Option<u32>,
        authenticated: bool,
    ) -> RxOutcome {
        let Ok(h) = Header::decode(data) else {
            return self.reject(Rejection::Malformed);
        };
        let peer = self.cfg.kind == SourceKind::Peer;
        let mode_ok = if peer {
            matches!(h.mode, Mode::SymmetricActive | Mode::SymmetricPassive)
        } else {
            h.mode == Mode::Server
        };
        if !mode_ok || !(1..=4).contains(&h.version) {
            return self.reject(Rejection::Malformed);
        }
        // Test 1: duplicate — the same receive and transmit timestamps as the last reply (as
        // chronyd's test 1). The transmit field alone is not enough: an interleaved reply
        // carries the transmit time of the previous reply, which a server without kernel
        // transmit stamps wrote into that reply too.
        if !h.transmit_timestamp.is_zero()
            && h.transmit_timestamp == self.last_rx_xmt
            && h.receive_timestamp == self.last_rx_rec
        {
            return self.reject(Rejection::Duplicate);
        }
        // Test 2: must answer our outstanding request (basic, or interleaved.rs's cookie).
        let answers = self.pending.is_some_and(|p| {
            !h.origin_timestamp.is_zero()
                && (p.wire_tx == h.origin_timestamp || p.xleave.answered_by(h.origin_timestamp))
        });
        // Test 5 before anything can change: unauthenticated packets never touch a keyed or
        // NTS association.
        let authenticated = match self.authenticate_reply(data, answers, authenticated) {
            auth::AuthVerdict::Pass(a) => a,
            auth::AuthVerdict::Reject(r) => return self.reject(r),
            auth::AuthVerdict::Nak => return self.reject(Rejection::NtsNak),
        };
        if peer && !h.transmit_timestamp.is_zero() {
            // Any peer packet is also its poll of us: remember what to echo.
            self.peer_org = h.transmit_timestamp;
            self.peer_rec = rx;
        }
        if !answers {
            return self.reject(Rejection::Bogus);
        }
        let Some(pending) = self.pending.take() else {
            return self.reject(Rejection::Bogus);
        };
        self.last_rx_xmt = h.transmit_timestamp;
        self.last_rx_rec = h.receive_timestamp;
        // Until this reply is measured (interleaved.rs), it is no interleaved measurement: a
        // kiss or a zero timestamp must not show the previous exchange as its own.
        self.forget_interleaved_measurement();
        // Test 3: timestamps present.
        if h.receive_timestamp.is_zero() || h.transmit_timestamp.is_zero() {
            return self.reject(Rejection::ZeroTimestamp);
        }
        if h.stratum == 0 {
            return self.handle_kiss(&h, authenticated);
        }
        // The timestamps measured: this exchange's, or the previous one's (interleaved.rs).
        let measured = self.interleaved_exchange(&pending, &h, rx);
        // From here the source has answered: it is reachable.
        self.reach |= 1;
        self.unreach_polls = 0;
        self.remote_poll = h.poll;
        if let Some(b) = &mut self.burst {
            b.good_left = b.good_left.saturating_sub(1);
            if b.good_left == 0 {
                // Enough good replies: back to normal polling, one interval after this burst.
                self.burst = None;
                self.next_tx += 2f64.powi(i32::from(self.poll)) - burst_interval(self.poll);
            }
        }
        // Test 6: server synchronised.
        let ref_after_xmt = measured.remote_latest.diff_seconds(h.reference_timestamp) < 0.0;
        if h.leap == LeapIndicator::Unsynchronised || h.stratum >= 16 || ref_after_xmt {
            return self.reject(Rejection::Unsynchronised);
        }
        // Test 7: root distance.
        let root_delay = h.root_delay.to_seconds();
        let root_disp = h.root_dispersion.to_seconds();
        if root_delay / 2.0 + root_disp >= MAX_DISPERSION {
            return self.reject(Rejection::RootDistance);
        }
        if pending.presend {
            return self.reject(Rejection::Presend);
        }

        // On-wire calculation (RFC 5905 §8): T1 our send, T2 server receive, T3 server send,
        // T4 our receive; T2/T3 are differenced against T1 in NTP fixed point.
        // In interleaved mode all four are the previous exchange's (interleaved.rs).
        let (t1, rx) = (measured.local_tx, measured.local_rx);
        let t1n = NtpTimestamp::from_unix_f64(t1);
        let t2 = measured.remote_rx.diff_seconds(t1n);
        let t3 = measured.remote_tx.diff_seconds(t1n);
        let t4 = rx - t1;
        let delay = (t4 - (t3 - t2)).max(0.0);
        // Positive: we are ahead of the server; `offset`/`asymmetry` corrections applied.
        let min_delay = self.cfg.min_delay(self.stats.min_delay());
        let offset = self
            .cfg
            .corrected_offset((t4 - t3 - t2) / 2.0, delay, min_delay);
        let stratum = h.stratum.max(self.cfg.minstratum);
        self.stratum = stratum;
        self.leap = match h.leap {
            LeapIndicator::InsertSecond => LeapState::Insert,
            LeapIndicator::DeleteSecond => LeapState::Delete,
            _ => LeapState::Normal,
        };
        self.reference_id = h.reference_id;

        // Test A: maxdelay (also catches nonsense round trips).
        let raw_delay = t4 - (t3 - t2);
        // An exchange measured twice (interleaved.rs) fails it too, as in chronyd.
        if raw_delay.is_nan() || raw_delay < -1e-6 || delay > self.cfg.maxdelay || measured.repeated
        {
            return self.reject(Rejection::MaxDelay);
        }
        // Test B / C (against `mindelay` when configured); `maxdelayquant` replaces C.
        if self
            .cfg
            .maxdelayratio
            .is_some_and(|r| min_delay.is_some_and(|m| m > 0.0 && delay > r * m))
        {
            return self.reject(Rejection::MaxDelayRatio);
        }
        if let Some(q) = &mut self.delay_quantile {
            if q.exceeded(delay) {
                return self.reject(Rejection::MaxDelayDevRatio);
            }
        } else {
            // The statistics test against their own minimum: shift the delay so that it
            // is compared with `mindelay` instead.
            let tested = match (self.cfg.mindelay, self.stats.min_delay()) {
                (Some(fixed), Some(held)) => delay - fixed + held,
                _ => delay,
            };
            // A standard deviation estimated from few, lucky samples can shut every later
            // sample out: after a few rejections in a row one sample is let through.
            if self.delay_dev_rejects < MAX_DELAY_DEV_REJECTS
                && self
                    .stats
                    .delay_dev_ratio_exceeded(tested, self.cfg.maxdelaydevratio, rx)
            {
                self.delay_dev_rejects += 1;
                return self.reject(Rejection::MaxDelayDevRatio);
            }
            self.delay_dev_rejects = 0;
        }
        // Test D: the server follows us (`copy`: the configuration excludes a loop).
        if !self.cfg.copy && local_refid.is_some_and(|r| r == h.reference_id) && stratum > 1 {
            return self.reject(Rejection::SyncLoop);
        }

        // Our precision, the server's, and PHI (15 ppm) over the round trip (RFC 5905 §8).
        let peer_disp =
            LOCAL_PRECISION + 2f64.powi(i32::from(h.precision.clamp(-30, 0))) + 15e-6 * t4.abs();
        let sample = Sample {
            time: rx - delay / 2.0,
            offset,
            peer_delay: delay,
            peer_dispersion: peer_disp,
            root_delay: root_delay + delay,
            root_dispersion: root_disp + peer_disp,
            stratum,
            leap: self.leap,
        };
        self.last_sample_time = Some(sample.time);
        self.last_measured = offset;
        self.last_adjusted = offset;
        self.last_error = sample.root_distance();
        let sample = match &mut self.filter {
            Some(f) => match f.accumulate(sample) {
                Some(s) => s,
                None => return self.reject(Rejection::Filtered),
            },
            None => sample,
        };
        // How surprising the sample is against the regression's prediction (in standard
        // deviations): a clock wandering faster than the poll interval can follow shows up
        // here first.
        let surprise = match (self.stats.predict(sample.time), self.stats.estimate()) {
            (Some((pred, sd)), Some(_)) if self.stats.len() >= MIN_SELECT_SAMPLES => {
                // Scaled by the measurement's own error bound, not by the regression's
                // residuals, which a wandering clock inflates.
                let scale = (sd + sample.peer_distance()).max(1e-9);
                (sample.offset - pred).abs() / scale
            }
            _ => 0.0,
        };
        if !self.stats.accumulate(sample) {
            return self.reject(Rejection::Malformed);
        }
        if surprise > SURPRISE_LIMIT {
            // The regression no longer describes the clock: start again from recent samples.
            self.stats.discard_old(0);
        }
        // A clock's frequency wanders: a line through samples older than twice `polltarget`
        // poll intervals describes an average, not the current frequency. Below the default
        // minpoll the window stays that of minpoll 6: over a minute the wander is far below the
        // measurement noise, and cutting a 1 s poll's line to 16 s made it 4 times noisier.
        let interval = 2f64.powi(i32::from(self.poll.max(DEFAULT_WINDOW_POLL)));
        let horizon = 2.0 * f64::from(self.cfg.polltarget.max(1)) * interval;
        self.stats.discard_before(sample.time - horizon);
        self.adapt_poll(surprise);
        RxOutcome::Sample(sample)
    }

    fn handle_kiss(&mut self, h: &Header, authenticated: bool) -> RxOutcome {
        match h.reference_id {
            gnomon_wire::refid::KISS_RATE => {
                // Slow down: at least one step, and no faster than the server asks.
                self.poll = (self.poll + 1)
                    .max(h.poll)
                    .clamp(self.cfg.minpoll, self.cfg.maxpoll);
                self.burst = None;
                self.reject(Rejection::KissRate)
            }
            gnomon_wire::refid::KISS_DENY | gnomon_wire::refid::KISS_RSTR => {
                if authenticated {
                    // An authenticated refusal stops polling (chrony takes the source offline).
                    self.online = false;
                }
                self.reject(Rejection::KissDenyIgnored)
            }
            _ => self.reject(Rejection::KissOther),
        }
    }

    /// chrony-like adaptation: lengthen the poll while the regression holds at least
    /// `polltarget` samples and predicts new samples well; shorten it when the runs test keeps
    /// few samples or a sample lands far from the prediction (the clock wanders faster than
    /// the interval can follow).
    fn adapt_poll(&mut self, surprise: f64) {
        if self.burst.is_some() {
            return;
        }
        let n = self.stats.len() as f64;
        let target = f64::from(self.cfg.polltarget.max(1));
        if surprise > SURPRISE_LIMIT / 2.0 {
            self.poll_score -= 1.0;
        } else if n < target / 2.0 {
            self.poll_score -= 0.5;
        } else if n >= target && surprise < SURPRISE_LIMIT / 4.0 {
            // Slow to lengthen, quick to shorten: four well-predicted samples per step.
            self.poll_score += 0.25;
        }
        if self.poll_score >= 1.0 {
            self.poll_score = 0.0;
            self.poll = (self.poll + 1).min(self.cfg.maxpoll);
        } else if self.poll_score <= -1.0 {
            self.poll_score = 0.0;
            self.poll = (self.poll - 1).max(self.cfg.minpoll);
        }
    }

    /// The `sources` row at cooked local time `now`.
    pub fn report(&self, now: f64) -> SourceReport {
        SourceReport {
            addr: self.remote,
            mode: if self.cfg.kind == SourceKind::Peer {
                SourceMode::Peer
            } else {
                SourceMode::Server
            },
            state: self.state,
            stratum: self.stratum,
            poll: self.poll,
            reach: self.reach,
            last_rx: self.last_sample_time.map_or(u32::MAX, |t| {
                (now - t).clamp(0.0, u32::MAX as f64 - 1.0) as u32
            }),
            adjusted_offset: self.last_adjusted,
            measured_offset: self.last_measured,
            error: self.last_error,
        }
    }
}
