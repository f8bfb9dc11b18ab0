//! NTS client (RFC 8915): the NTS-KE client handshake ([`ke`]), the cookie jar
//! ([`cookie_jar`]), NTS extension fields in requests and responses ([`ntp`]), and the per-source
//! key-exchange schedule ([`NtsState`]) the association drives.
//!
//! Schedule, as chrony behaves: a source with `nts` sends no NTP request until a key exchange
//! gave it keys and cookies, and never falls back to unauthenticated NTP. It asks for a new key
//! exchange when it has no session, when the jar is empty (cookies used up by requests without
//! answers) or after an NTS NAK answering its request. Exchanges are spaced by a back-off that
//! starts at 16 s and doubles after every exchange not followed by an authentic response, up
//! to 2^19 s (catalogue cases 21, 22, 29), so spoofed NAKs cannot cause a key-exchange storm.

pub mod cookie_jar;
pub mod ke;
pub mod ntp;

pub use cookie_jar::CookieJar;
pub use ke::{NtsKeClient, NtsKeClientError, NtsKeOutcome, NtsTrust, NtsTrustError};
pub use ntp::{NtsCheck, NtsRejection, NtsSession};

use std::net::IpAddr;

/// First key-exchange back-off, seconds.
pub const MIN_KE_BACKOFF: f64 = 16.0;
/// Longest key-exchange back-off, seconds (2^19).
pub const MAX_KE_BACKOFF: f64 = 524_288.0;

/// The NTS options of a `server`/`pool` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtsSource {
    /// Name the certificate must be valid for (the directive's host name or address).
    pub server_name: String,
    /// `ntsport` (default 4460).
    pub ke_port: u16,
}

impl NtsSource {
    /// `nts` on `server_name` with the default NTS-KE port.
    pub fn new(server_name: &str) -> NtsSource {
        NtsSource {
            server_name: server_name.to_string(),
            ke_port: gnomon_wire::nts_ke::NTS_KE_PORT,
        }
    }
}

/// A key exchange the daemon must run: connect TCP to `addr` and drive an [`NtsKeClient`]
/// (from [`crate::association::Engine::nts_ke_client`]), which verifies the certificate for
/// `server_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtsKeRequest {
    /// Name the certificate must be valid for (the directive's name; a pool's name for its
    /// members, as chrony does).
    pub server_name: String,
    /// NTS-KE port.
    pub port: u16,
    /// Where to connect: the source's original address with the NTS-KE port (not a fresh
    /// lookup of `server_name`, so pool members each key with their own server).
    pub addr: std::net::SocketAddr,
}

/// Key-exchange schedule and session of one NTS source.
#[derive(Debug, Clone)]
pub struct NtsState {
    source: NtsSource,
    session: Option<NtsSession>,
    running: bool,
    nak: bool,
    next_ke: f64,
    backoff: f64,
    /// Address of the key-exchange server (the source's address before any negotiation).
    ke_ip: Option<IpAddr>,
}

impl NtsState {
    /// A source that needs its first key exchange, allowed from `now`.
    pub fn new(source: NtsSource, now: f64) -> NtsState {
        NtsState {
            source,
            session: None,
            running: false,
            nak: false,
            next_ke: now,
            backoff: MIN_KE_BACKOFF,
            ke_ip: None,
        }
    }

    /// The configuration.
    pub fn source(&self) -> &NtsSource {
        &self.source
    }

    /// True when requests can be built (keys and at least one cookie, no NAK pending).
    pub fn is_ready(&self) -> bool {
        !self.nak && self.session.as_ref().is_some_and(|s| !s.jar().is_empty())
    }

    /// When a key exchange is wanted and not running: the earliest time it may start.
    pub fn ke_due(&self) -> Option<f64> {
        (!self.running && !self.is_ready()).then_some(self.next_ke)
    }

    /// At `now`, starts a key exchange with the server at `ip` (kept from the first call) if
    /// one is due; the back-off doubles.
    pub fn start_ke(&mut self, now: f64, ip: IpAddr) -> Option<NtsKeRequest> {
        if self.ke_due().is_none_or(|t| now < t) {
            return None;
        }
        self.running = true;
        self.next_ke = now + self.backoff;
        self.backoff = (self.backoff * 2.0).min(MAX_KE_BACKOFF);
        let ip = *self.ke_ip.get_or_insert(ip);
        Some(NtsKeRequest {
            server_name: self.source.server_name.clone(),
            port: self.source.ke_port,
            addr: std::net::SocketAddr::new(ip, self.source.ke_port),
        })
    }

    /// True while a key exchange is out with the daemon.
    pub fn ke_running(&self) -> bool {
        self.running
    }

    /// The end of a key exchange: a new session on success (old cookies dropped).
    pub fn finish_ke(&mut self, outcome: Option<NtsKeOutcome>) {
        self.running = false;
        if let Some(o) = outcome {
            self.session = Some(NtsSession::new(o.keys.clone(), &o.cookies));
            self.nak = false;
        }
    }

    /// The session, when ready.
    pub fn session_mut(&mut self) -> Option<&mut NtsSession> {
        if self.nak {
            return None;
        }
        self.session.as_mut()
    }

    /// An authentic response arrived: the back-off starts again from its minimum.
    pub fn authentic_response(&mut self) {
        self.backoff = MIN_KE_BACKOFF;
    }

    /// An NTS NAK answered our request: drop the cookies, re-key when the back-off allows.
    pub fn nak(&mut self) {
        self.nak = true;
        if let Some(s) = &mut self.session {
            s.clear_cookies();
        }
    }

    /// Cookies left.
    pub fn cookies(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.jar().len())
    }
}

/// The NTP address after a key exchange: the Server record's address (an IP literal, or
/// `resolved` for a name the daemon looked up), else the current one; the Port record's
/// port, else the current one.
pub fn negotiated_addr(
    current: std::net::SocketAddr,
    outcome: &NtsKeOutcome,
    resolved: Option<IpAddr>,
) -> std::net::SocketAddr {
    let ip = match &outcome.ntp_server {
        Some(name) => name
            .parse::<IpAddr>()
            .ok()
            .or(resolved)
            .unwrap_or(current.ip()),
        None => current.ip(),
    };
    std::net::SocketAddr::new(ip, outcome.ntp_port.unwrap_or(current.port()))
}
