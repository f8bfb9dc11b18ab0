//! Options of a `server`, `pool` or `peer` directive as the engine uses them, with chrony's
//! defaults (chrony.conf "server" section). `key` and `nts` are in [`SourceAuth`] (kept out of
//! the `Copy` [`SourceConfig`]). Options not listed here (`xleave`,
//! `maxdelayquant`, `mindelay`, `asymmetry`, `offset`, `copy`, `extfield`, `certset`,
//! `maxunreach`, `auto_offline`, `ipv4`/`ipv6`) are not implemented by the engine yet: the
//! daemon warns about them at start.

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
