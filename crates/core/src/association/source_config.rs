//! Options of a `server`, `pool` or `peer` directive as the engine uses them, with chrony's
//! defaults (chrony.conf "server" section). `key` and `nts` are in [`SourceAuth`] (kept out of
//! the `Copy` [`SourceConfig`]). Options not listed here (`xleave`, `extfield`, `certset`,
//! `ipv4`/`ipv6`) are not implemented by the engine yet: the daemon warns about them at start.
//!
//! The measurement corrections follow chrony.conf(5): `offset` is added to the offset
//! measured with the source and `asymmetry` moves it by `ratio` × (delay − minimum delay), both
//! in chrony's sense, checked against chronyd 4.3 (`offset 0.01` makes `chronyc sources` show
//! the source 10 ms *behind*, i.e. our "positive = local ahead" offset goes down by the
//! option); `mindelay` replaces the minimum delay of the buffered samples in that correction and
//! in the `maxdelayratio`/`maxdelaydevratio` tests.

use crate::selection::SelectOptions;

/// Kind of source directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `server` (client mode 3).
    Server,
    /// A member of a `pool` (client mode 3, replaceable).
    PoolMember,
    /// `peer` (symmetric active, mode 1).
    Peer,
}

/// Options of a `server`/`pool`/`peer` directive (chrony defaults in [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceConfig {
    /// Directive kind.
    pub kind: SourceKind,
    /// `minpoll` (log2 s, default 6).
    pub minpoll: i8,
    /// `maxpoll` (log2 s, default 10).
    pub maxpoll: i8,
    /// `iburst`.
    pub iburst: bool,
    /// `burst`.
    pub burst: bool,
    /// `prefer`, `noselect`, `trust`, `require`.
    pub select: SelectOptions,
    /// `offline`: start without polling.
    pub offline: bool,
    /// `presend P`.
    pub presend: Option<i8>,
    /// `minstratum`.
    pub minstratum: u8,
    /// `polltarget` (default 8).
    pub polltarget: u32,
    /// `maxdelay` seconds (default 3).
    pub maxdelay: f64,
    /// `maxdelayratio` (default off).
    pub maxdelayratio: Option<f64>,
    /// `maxdelaydevratio` (default 10).
    pub maxdelaydevratio: f64,
    /// `version` of requests (default 4).
    pub version: u8,
    /// `filter N`.
    pub filter: Option<usize>,
    /// `minsamples` (0 = default).
    pub minsamples: usize,
    /// `maxsamples` (0 = default).
    pub maxsamples: usize,
    /// `offset`: correction added to the measured offset in chrony's sense, seconds.
    pub offset: f64,
    /// `asymmetry` between -0.5 and +0.5; `None` when not configured (chrony then estimates
    /// it; gnomon applies no correction).
    pub asymmetry: Option<f64>,
    /// `mindelay`: fixed minimum round-trip delay, seconds.
    pub mindelay: Option<f64>,
    /// `maxdelayquant`: largest accepted delay as this quantile (0.05-0.95) of the recent
    /// delays; replaces the `maxdelaydevratio` test.
    pub maxdelayquant: Option<f64>,
    /// `copy`: serve the source's reference ID and stratum when it is the synchronisation
    /// source, and skip the synchronisation-loop test for it.
    pub copy: bool,
    /// `auto_offline`: go offline when sending a request fails.
    pub auto_offline: bool,
    /// `maxunreach` (chrony 4.8): polls for which an unreachable source may stay selectable;
    /// `None` keeps RFC 5905's rule (unreachable sources are not selectable).
    pub maxunreach: Option<u32>,
    /// `xleave`: ask the server for interleaved responses (RFC 9769 client/server mode,
    /// association/interleaved.rs); symmetric peers stay basic.
    pub xleave: bool,
}

impl SourceConfig {
    /// The minimum delay of the corrections and delay tests: `mindelay` when configured,
    /// otherwise `measured` (the smallest delay of the buffered samples).
    pub fn min_delay(&self, measured: Option<f64>) -> Option<f64> {
        self.mindelay.or(measured)
    }

    /// `offset` (gnomon's sign: positive = we are ahead of the source) after the `offset` and
    /// `asymmetry` corrections, for a sample with round-trip `delay` when the minimum delay is
    /// `min_delay` (`None`: no asymmetry correction yet).
    pub fn corrected_offset(&self, offset: f64, delay: f64, min_delay: Option<f64>) -> f64 {
        let asym = match (self.asymmetry, min_delay) {
            (Some(a), Some(min)) => a * (delay - min).max(0.0),
            _ => 0.0,
        };
        // chrony adds both corrections to an offset counted the other way round.
        offset - self.offset - asym
    }
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: SourceKind::Server,
            minpoll: 6,
            maxpoll: 10,
            iburst: false,
            burst: false,
            select: SelectOptions::default(),
            offline: false,
            presend: None,
            minstratum: 0,
            polltarget: 8,
            maxdelay: 3.0,
            maxdelayratio: None,
            maxdelaydevratio: 10.0,
            version: 4,
            filter: None,
            minsamples: 0,
            maxsamples: 0,
            offset: 0.0,
            asymmetry: None,
            mindelay: None,
            maxdelayquant: None,
            copy: false,
            auto_offline: false,
            maxunreach: None,
            xleave: false,
        }
    }
}

/// Authentication options of a directive: `key N`, or `nts` with `ntsport`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceAuth {
    /// `key N`.
    pub key: Option<u32>,
    /// `nts` (server/pool only).
    pub nts: Option<crate::nts_client::NtsSource>,
}
