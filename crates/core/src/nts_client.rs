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
//!
//! `ntsrefresh` (chrony.conf: the maximum interval between key exchanges, default four
//! weeks): a session older than that asks for a new key exchange; the old session keeps
//! authenticating requests until the new one arrives, so a refresh costs no poll.

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
/// chrony's default `ntsrefresh`, seconds (four weeks).
pub const DEFAULT_NTS_REFRESH: u32 = 2_419_200;

/// The NTS options of a `server`/`pool` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtsSource {
    /// Name the certificate must be valid for (the directive's host name or address).
    pub server_name: String,
    /// `ntsport` (default 4460).
    pub ke_port: u16,
    /// `ntsrefresh`: the age, seconds, at which a session is renewed by a new key exchange.
    pub refresh: u32,
    /// `certset`: the trust set (chrony's `ntstrustedcerts` set ID) the certificate is
    /// verified against. Carried with the source, so two directives with the same name and
    /// different sets each keep their own.
    pub certset: u32,
}

impl NtsSource {
    /// `nts` on `server_name` with the default NTS-KE port.
    pub fn new(server_name: &str) -> NtsSource {
        NtsSource {
            server_name: server_name.to_string(),
            ke_port: gnomon_wire::nts_ke::NTS_KE_PORT,
            refresh: DEFAULT_NTS_REFRESH,
            certset: 0,
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
    /// The source's `certset`: the trust set the certificate is verified against.
    pub certset: u32,
    /// Where to connect: the source's original address with the NTS-KE port (not a fresh
    /// lookup of `server_name`, so pool members each key with their own server).
    pub addr: std::net::SocketAddr,
}

/// A session saved across restarts (chrony's `ntsdumpdir` client files): keys, unused
/// cookies, the NTP address the key exchange negotiated and when that exchange started.
#[derive(Debug, Clone)]
pub struct SavedSession {
    /// The certificate name of the key exchange.
    pub server_name: String,
    /// The key-exchange server's address (names the file).
    pub ke_ip: IpAddr,
    /// Where NTP requests go.
    pub ntp_addr: std::net::SocketAddr,
    /// Start of the key exchange (daemon time base, Unix seconds): the session's age.
    pub started: f64,
    /// Successful key exchanges with this source so far (`authdata`'s KeyID, which chronyd
    /// keeps across restarts with the cookies).
    pub key_establishments: u32,
    /// AEAD keys.
    pub keys: crate::nts::SessionKeys,
    /// Unused cookies, oldest first.
    pub cookies: Vec<zeroize::Zeroizing<Vec<u8>>>,
}

impl SavedSession {
    /// True when the saved key exchange started after `now` (same time base): such a session
    /// must not be restored, as its age would read negative and its `ntsrefresh` re-key would
    /// be postponed by the difference.
    pub fn started_after(&self, now: f64) -> bool {
        // NaN or infinite (never produced by the daemon's parser) is refused too.
        !self.started.is_finite() || self.started > now
    }
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
    /// When the running key exchange started.
    ke_started: f64,
    /// When the key exchange of the current session started (its age counts from there).
    session_start: f64,
    /// Successful key exchanges (a restored session counts as one): `authdata`'s KeyID.
    ke_successes: u32,
    /// Key exchanges started since the last successful one: `authdata`'s Atmp.
    ke_attempts: u32,
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
            ke_started: now,
            session_start: now,
            ke_successes: 0,
            ke_attempts: 0,
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

    /// When a key exchange is wanted and not running: the earliest time it may start (for a
    /// working session, when it reaches the `ntsrefresh` age, not before the back-off).
    pub fn ke_due(&self) -> Option<f64> {
        if self.running {
            return None;
        }
        if !self.is_ready() {
            return Some(self.next_ke);
        }
        let refresh = self.session_start + f64::from(self.source.refresh.max(1));
        Some(refresh.max(self.next_ke))
    }

    /// At `now`, starts a key exchange with the server at `ip` (kept from the first call) if
    /// one is due; the back-off doubles.
    pub fn start_ke(&mut self, now: f64, ip: IpAddr) -> Option<NtsKeRequest> {
        if self.ke_due().is_none_or(|t| now < t) {
            return None;
        }
        self.running = true;
        self.ke_started = now;
        self.ke_attempts = self.ke_attempts.saturating_add(1);
        self.next_ke = now + self.backoff;
        self.backoff = (self.backoff * 2.0).min(MAX_KE_BACKOFF);
        let ip = *self.ke_ip.get_or_insert(ip);
        Some(NtsKeRequest {
            server_name: self.source.server_name.clone(),
            port: self.source.ke_port,
            certset: self.source.certset,
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
            self.session_start = self.ke_started;
            self.ke_successes = self.ke_successes.saturating_add(1);
            self.ke_attempts = 0;
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

    /// Takes the session out to save it (`ntp_addr`: where requests go now); `None` without
    /// a usable session. The cookies leave the jar, so none is ever sent after being saved.
    pub fn take_saved(&mut self, ntp_addr: std::net::SocketAddr) -> Option<SavedSession> {
        if !self.is_ready() {
            return None;
        }
        let ke_ip = self.ke_ip?;
        let session = self.session.as_mut()?;
        Some(SavedSession {
            server_name: self.source.server_name.clone(),
            ke_ip,
            ntp_addr,
            started: self.session_start,
            key_establishments: self.ke_successes,
            keys: session.keys().clone(),
            cookies: session.take_cookies(),
        })
    }

    /// After a session was installed from `saved` (through the key-exchange result path):
    /// its age and key-exchange server are the saved ones. A saved start later than the
    /// installation (a clock that went back, or a tampered file) is not believed: the
    /// session counts from the installation, so `ntsrefresh` is never postponed. The daemon
    /// rejects such files before this ([`SavedSession::started_after`]).
    pub fn restored(&mut self, saved: &SavedSession) {
        // `session_start` was just set to the start of the installing "exchange", which is
        // never later than now.
        self.session_start = saved.started.min(self.session_start);
        self.ke_ip = Some(saved.ke_ip);
        // The installed session was established at least once.
        self.ke_successes = saved.key_establishments.max(1);
    }

    /// Cookies left.
    pub fn cookies(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.jar().len())
    }

    /// What `authdata` shows for this source at `now` (chronyc's columns, as chronyd 4.3
    /// fills them for an NTS source).
    pub fn auth_status(&self, now: f64) -> NtsAuthStatus {
        NtsAuthStatus {
            key_establishments: self.ke_successes,
            attempts: self.ke_attempts,
            has_keys: self.session.is_some(),
            last_ke_ago: self
                .session
                .as_ref()
                .map(|_| (now - self.session_start).max(0.0)),
            nak: self.nak,
            cookies: self.cookies(),
            next_cookie_len: self
                .session
                .as_ref()
                .and_then(|s| s.jar().next_len())
                .unwrap_or(0),
        }
    }
}

/// The key-exchange and cookie state `authdata` reports for an NTS source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NtsAuthStatus {
    /// Successful key exchanges so far (a session restored from `ntsdumpdir` counts as one):
    /// chronyc's KeyID column for NTS.
    pub key_establishments: u32,
    /// Key exchanges started since the last successful one, the running one included (Atmp).
    pub attempts: u32,
    /// A key exchange gave keys (Type and KLen are the AEAD's, else 0).
    pub has_keys: bool,
    /// Seconds since the key exchange of the current session started (Last); `None` before
    /// the first.
    pub last_ke_ago: Option<f64>,
    /// An NTS NAK answered a request and no key exchange has succeeded since (NAK).
    pub nak: bool,
    /// Cookies held (Cook).
    pub cookies: usize,
    /// Length, octets, of the cookie the next request will carry; 0 with none (CLen).
    pub next_cookie_len: usize,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nts::SessionKeys;

    fn outcome() -> NtsKeOutcome {
        NtsKeOutcome {
            keys: SessionKeys {
                c2s: [1; 32],
                s2c: [2; 32],
            },
            cookies: vec![Zeroizing::new(vec![7u8; 100]); 8],
            ntp_server: None,
            ntp_port: None,
        }
    }

    use zeroize::Zeroizing;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn session_is_refreshed_after_ntsrefresh_and_kept_meanwhile() {
        let src = NtsSource {
            refresh: 1000,
            ..NtsSource::new("localhost")
        };
        let mut s = NtsState::new(src, 0.0);
        assert!(s.start_ke(0.0, IP).is_some());
        s.finish_ke(Some(outcome()));
        assert!(s.is_ready());
        // Due at the refresh age, counted from the start of the exchange.
        assert_eq!(s.ke_due(), Some(1000.0));
        assert!(s.start_ke(999.0, IP).is_none());
        assert!(s.start_ke(1000.0, IP).is_some());
        // The old session still authenticates while the new exchange runs.
        assert!(s.is_ready() && s.ke_due().is_none());
        s.finish_ke(Some(outcome()));
        assert_eq!(s.ke_due(), Some(2000.0));
    }

    #[test]
    fn failed_refresh_keeps_the_session_and_retries_after_the_back_off() {
        let src = NtsSource {
            refresh: 100,
            ..NtsSource::new("localhost")
        };
        let mut s = NtsState::new(src, 0.0);
        s.start_ke(0.0, IP);
        s.finish_ke(Some(outcome()));
        s.authentic_response();
        assert!(s.start_ke(100.0, IP).is_some());
        s.finish_ke(None);
        assert!(s.is_ready());
        assert_eq!(s.ke_due(), Some(100.0 + MIN_KE_BACKOFF));
    }

    #[test]
    fn saved_session_leaves_the_jar_and_keeps_its_age() {
        let mut s = NtsState::new(NtsSource::new("localhost"), 0.0);
        assert!(s.take_saved("127.0.0.1:123".parse().unwrap()).is_none());
        s.start_ke(10.0, IP);
        s.finish_ke(Some(outcome()));
        let saved = s.take_saved("127.0.0.1:123".parse().unwrap()).unwrap();
        assert_eq!(saved.cookies.len(), 8);
        assert_eq!((saved.ke_ip, saved.started), (IP, 10.0));
        assert_eq!(saved.key_establishments, 1);
        // Nothing left to send: the saved cookies are never used here again.
        assert!(!s.is_ready());
        let mut t = NtsState::new(NtsSource::new("localhost"), 500.0);
        t.finish_ke(Some(NtsKeOutcome {
            keys: saved.keys.clone(),
            cookies: saved.cookies.clone(),
            ntp_server: None,
            ntp_port: None,
        }));
        t.restored(&SavedSession {
            key_establishments: 3,
            ..saved.clone()
        });
        assert!(t.is_ready());
        assert_eq!(t.auth_status(10.0).key_establishments, 3);
        assert_eq!(t.ke_due(), Some(10.0 + f64::from(DEFAULT_NTS_REFRESH)));
    }

    #[test]
    fn auth_status_counts_key_exchanges_attempts_and_cookies_as_authdata_shows_them() {
        let mut s = NtsState::new(NtsSource::new("localhost"), 0.0);
        let st = s.auth_status(3.0);
        assert_eq!(
            (st.key_establishments, st.attempts, st.has_keys),
            (0, 0, false)
        );
        assert_eq!(
            (st.last_ke_ago, st.cookies, st.next_cookie_len),
            (None, 0, 0)
        );
        // A failed exchange is one attempt; so is the running one.
        s.start_ke(0.0, IP);
        s.finish_ke(None);
        assert_eq!(s.auth_status(1.0).attempts, 1);
        s.start_ke(MIN_KE_BACKOFF, IP);
        assert_eq!(s.auth_status(MIN_KE_BACKOFF).attempts, 2);
        s.finish_ke(Some(outcome()));
        let st = s.auth_status(MIN_KE_BACKOFF + 5.0);
        assert_eq!(
            (st.key_establishments, st.attempts, st.has_keys),
            (1, 0, true)
        );
        assert_eq!(st.last_ke_ago, Some(5.0));
        assert_eq!((st.cookies, st.next_cookie_len, st.nak), (8, 100, false));
        // A NAK empties the jar; the keys stay until the next exchange.
        s.nak();
        let st = s.auth_status(MIN_KE_BACKOFF + 6.0);
        assert_eq!((st.nak, st.cookies, st.next_cookie_len), (true, 0, 0));
        assert!(st.has_keys);
        s.start_ke(100.0, IP);
        s.finish_ke(Some(outcome()));
        let st = s.auth_status(100.0);
        assert_eq!((st.key_establishments, st.nak, st.cookies), (2, false, 8));
    }

    #[test]
    fn key_exchange_request_carries_the_sources_certset() {
        let src = NtsSource {
            certset: 3,
            ..NtsSource::new("ntp.example")
        };
        let mut s = NtsState::new(src, 0.0);
        let req = s.start_ke(0.0, IP).unwrap();
        assert_eq!((req.certset, req.server_name.as_str()), (3, "ntp.example"));
        let mut d = NtsState::new(NtsSource::new("ntp.example"), 0.0);
        assert_eq!(d.start_ke(0.0, IP).unwrap().certset, 0);
    }

    #[test]
    fn restored_session_from_the_future_does_not_postpone_the_refresh() {
        let mut s = NtsState::new(NtsSource::new("localhost"), 0.0);
        s.start_ke(10.0, IP);
        s.finish_ke(Some(outcome()));
        let mut saved = s.take_saved("127.0.0.1:123".parse().unwrap()).unwrap();
        saved.started = 1.0e12;
        assert!(saved.started_after(500.0));
        assert!(!saved.started_after(1.0e12));
        saved.started = f64::NAN;
        assert!(saved.started_after(500.0));
        saved.started = 1.0e12;
        let mut t = NtsState::new(NtsSource::new("localhost"), 500.0);
        t.finish_ke(Some(outcome()));
        t.restored(&saved);
        assert!(t.is_ready());
        assert_eq!(t.ke_due(), Some(500.0 + f64::from(DEFAULT_NTS_REFRESH)));
        assert_eq!(t.auth_status(600.0).last_ke_ago, Some(100.0));
    }

    #[test]
    fn default_refresh_is_four_weeks() {
        let mut s = NtsState::new(NtsSource::new("localhost"), 5.0);
        s.start_ke(5.0, IP);
        s.finish_ke(Some(outcome()));
        assert_eq!(s.ke_due(), Some(5.0 + f64::from(DEFAULT_NTS_REFRESH)));
    }
}
