//! The engine's side of authentication: the key file, NTS trust roots, `nocerttimecheck`,
//! `authselectmode`, and the NTS key exchanges it asks the daemon to run.
//!
//! What the daemon does for NTS (sans-IO; the engine never touches sockets or clocks):
//! 1. After every [`Engine::handle_timeout`], call [`Engine::take_nts_ke_requests`]. For each
//!    `(id, req)`: connect TCP to `req.addr` (off the NTP path; `req.server_name` is only
//!    for certificate verification), and build the state machine with [`Engine::nts_ke_client`]`(id, mono, wall)`.
//! 2. Loop: send everything [`NtsKeClient::write_tls`] appends; read from the socket and pass
//!    the octets to [`NtsKeClient::read_tls`] (an empty slice when the server closed); stop at
//!    `Ok(Some(outcome))` or `Err(_)`; at [`NtsKeClient::deadline`] call
//!    [`NtsKeClient::check_deadline`]. A connect failure is an error too.
//! 3. Close the connection and call [`Engine::nts_ke_finished`] with the outcome (`None` on
//!    any failure). When the outcome has an `ntp_server` that is a host name, resolve it first
//!    and pass the address as `resolved`.
//! 4. Send datagrams as `Transmit::bytes()` (header + `trailer`), and pass received replies
//!    whole to [`Engine::handle_packet`]: the engine verifies MACs and NTS itself.

use std::net::IpAddr;

use std::net::SocketAddr;

use super::Action;
use super::{candidate, Engine, Pool, PoolId, SourceId};
use crate::association::{AuthReport, AuthState, SourceAuth};
use crate::association::{SourceConfig, SourceKind};
use crate::auth::KeyStore;
use crate::nts_client::ke::DEFAULT_KE_TIMEOUT;
use crate::nts_client::{
    NtsKeClient, NtsKeClientError, NtsKeOutcome, NtsKeRequest, NtsState, NtsTrust, SavedSession,
};
use crate::selection::AuthSelectMode;
use crate::selection::Candidate;

/// chrony's number for AEAD_AES_SIV_CMAC_256 (RFC 5297), the only AEAD the client offers.
const AEAD_AES_SIV_CMAC_256: u16 = 15;
/// Its key length, bits (RFC 5297: two 128-bit AES keys).
const AEAD_AES_SIV_CMAC_256_BITS: u16 = 256;

/// `authdata` of an NTS source as chronyd 4.3 fills it: KeyID is the number of successful
/// key exchanges, Type and KLen are the AEAD's once one gave keys, Last the age of the
/// current session (with `now`), Atmp the exchanges started since the last success, NAK,
/// the cookies held and the length of the next one.
pub(super) fn nts_auth_report(n: &NtsState, now: Option<f64>) -> AuthReport {
    let st = n.auth_status(now.unwrap_or(0.0));
    let small = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
    AuthReport {
        mode: 2,
        key_id: st.key_establishments,
        key_type: if st.has_keys {
            AEAD_AES_SIV_CMAC_256
        } else {
            0
        },
        key_bits: if st.has_keys {
            AEAD_AES_SIV_CMAC_256_BITS
        } else {
            0
        },
        cookies: small(st.cookies),
        ke_attempts: u16::try_from(st.attempts).unwrap_or(u16::MAX),
        // Whole seconds, as chronyd reports them (u32::MAX on the wire means "never").
        last_ke_ago: now
            .and(st.last_ke_ago)
            .map(|a| a.min(f64::from(u32::MAX - 1)) as u32),
        nak: st.nak,
        cookie_len: small(st.next_cookie_len),
    }
}

impl Engine {
    /// Adds a source with `key` or `nts` ([`Engine::add_source`] plus authentication).
    pub fn add_source_auth(
        &mut self,
        remote: SocketAddr,
        cfg: SourceConfig,
        auth: &SourceAuth,
        now: f64,
    ) -> SourceId {
        self.insert(remote, cfg, auth, now, None)
    }

    /// [`Engine::add_pool`] with `key` or `nts` for every member.
    pub fn add_pool_auth(
        &mut self,
        name: &str,
        cfg: SourceConfig,
        auth: &SourceAuth,
        max_sources: usize,
    ) -> PoolId {
        let id = PoolId(self.next_id);
        self.next_id += 1;
        let cfg = SourceConfig {
            kind: SourceKind::PoolMember,
            ..cfg
        };
        self.pools.insert(
            id,
            Pool {
                name: name.to_string(),
                cfg,
                auth: auth.clone(),
                max_sources: max_sources.clamp(1, 16),
                resolving: true,
                members: Vec::new(),
            },
        );
        self.pending_actions
            .push(Action::Resolve(id, name.to_string()));
        id
    }

    /// Selection candidates at `cooked`, with `authselectmode` applied to their options.
    pub(super) fn candidates(&self, cooked: f64) -> Vec<Candidate> {
        let counted = |want: bool| {
            self.sources
                .values()
                .any(|e| !e.assoc.config().select.noselect && e.assoc.is_authenticated() == want)
        };
        let (any_auth, any_unauth) = (counted(true), counted(false));
        let mode = self.auth_select;
        self.sources
            .iter()
            .map(|(id, e)| {
                let mut c = candidate(id.0 as usize, &e.assoc, cooked);
                c.options =
                    mode.adjust(c.options, e.assoc.is_authenticated(), any_auth, any_unauth);
                c
            })
            .collect()
    }
    /// Loads the `keyfile` keys (sources added later look their `key` up here; existing keyed
    /// sources get the new key material).
    pub fn set_keys(&mut self, keys: KeyStore) {
        for e in self.sources.values_mut() {
            if let AuthState::Symmetric { id, .. } = e.assoc.auth() {
                let id = *id;
                e.assoc.set_auth(AuthState::Symmetric {
                    id,
                    key: keys.get(id).cloned(),
                });
            }
        }
        self.keys = keys;
    }

    /// Sets the NTS-KE trust roots.
    pub fn set_nts_trust(&mut self, trust: NtsTrust) {
        self.nts_trust = Some(trust);
    }

    /// `nocerttimecheck N`: certificate validity times are not checked during the first N
    /// clock updates.
    pub fn set_no_cert_time_check(&mut self, updates: u32) {
        self.no_cert_time_check = updates;
    }

    /// `authselectmode`.
    pub fn set_auth_select_mode(&mut self, mode: AuthSelectMode) {
        self.auth_select = mode;
    }

    pub(super) fn auth_state(&self, auth: &SourceAuth, now: f64) -> AuthState {
        if let Some(nts) = &auth.nts {
            return AuthState::Nts(Box::new(NtsState::new(nts.clone(), now)));
        }
        match auth.key {
            Some(id) => AuthState::Symmetric {
                id,
                key: self.keys.get(id).cloned(),
            },
            None => AuthState::None,
        }
    }

    /// Key exchanges to run now (see the module documentation).
    pub fn take_nts_ke_requests(&mut self) -> Vec<(SourceId, NtsKeRequest)> {
        std::mem::take(&mut self.nts_ke_queue)
    }

    /// The NTS-KE state machine for source `id` at monotonic `now_mono` and wall-clock
    /// `now_wall` (Unix seconds, for certificate validity).
    pub fn nts_ke_client(
        &self,
        id: SourceId,
        now_mono: f64,
        now_wall: f64,
    ) -> Result<NtsKeClient, NtsKeClientError> {
        let Some(trust) = &self.nts_trust else {
            return Err(NtsKeClientError::NotConfigured);
        };
        self.nts_ke_client_with(id, trust, now_mono, now_wall)
    }

    /// [`Engine::nts_ke_client`] verifying the server against `trust` instead of the roots of
    /// [`Engine::set_nts_trust`] (chrony's `certset`: the daemon keeps one root set per ID).
    pub fn nts_ke_client_with(
        &self,
        id: SourceId,
        trust: &NtsTrust,
        now_mono: f64,
        now_wall: f64,
    ) -> Result<NtsKeClient, NtsKeClientError> {
        let Some(e) = self.sources.get(&id) else {
            return Err(NtsKeClientError::NotConfigured);
        };
        let AuthState::Nts(nts) = e.assoc.auth() else {
            return Err(NtsKeClientError::NotConfigured);
        };
        let check_time = self.clock_updates >= self.no_cert_time_check;
        NtsKeClient::new(
            trust,
            &nts.source().server_name,
            now_wall,
            check_time,
            now_mono,
            DEFAULT_KE_TIMEOUT,
        )
    }

    /// Takes the NTS sessions out to save them (chrony's `ntsdumpdir`, at exit); their
    /// cookies are never used by this engine afterwards.
    pub fn take_nts_sessions(&mut self) -> Vec<(SourceId, SavedSession)> {
        let mut out = Vec::new();
        for (id, e) in self.sources.iter_mut() {
            let remote = e.assoc.remote();
            if let Some(saved) = e.assoc.nts_mut().and_then(|n| n.take_saved(remote)) {
                out.push((*id, saved));
            }
        }
        out
    }

    /// NTS sources with no session and no key exchange running, with the address their key
    /// exchange would go to (where a saved session may be looked up).
    pub fn nts_sources_awaiting_keys(&self) -> Vec<(SourceId, IpAddr)> {
        self.sources
            .iter()
            .filter_map(|(id, e)| match e.assoc.auth() {
                AuthState::Nts(n) if !n.is_ready() && !n.ke_running() && n.cookies() == 0 => {
                    Some((*id, e.assoc.remote().ip()))
                }
                _ => None,
            })
            .collect()
    }

    /// Installs a saved session in NTS source `id` at `now`, as if its key exchange had just
    /// given those keys and cookies (requests go to the saved NTP address from `now`); the
    /// session keeps its saved age for `ntsrefresh`. False, and no change, when `id` is not an
    /// NTS source for the same server name, or `saved` has no cookie.
    pub fn restore_nts_session(&mut self, id: SourceId, saved: &SavedSession, now: f64) -> bool {
        let Some(e) = self.sources.get_mut(&id) else {
            return false;
        };
        let same = matches!(e.assoc.auth(), AuthState::Nts(n)
            if n.source().server_name == saved.server_name && !n.ke_running());
        if !same || saved.cookies.is_empty() {
            return false;
        }
        let outcome = NtsKeOutcome {
            keys: saved.keys.clone(),
            cookies: saved.cookies.clone(),
            ntp_server: Some(saved.ntp_addr.ip().to_string()),
            ntp_port: Some(saved.ntp_addr.port()),
        };
        e.assoc.finish_nts_ke(Some(outcome), None, now);
        if let Some(n) = e.assoc.nts_mut() {
            n.restored(saved);
        }
        true
    }

    /// [`Engine::auth_report`] with, for an NTS source, the seconds since its session's key
    /// exchange at `now` (chronyc's Last column).
    pub fn auth_report_at(&self, id: SourceId, now: f64) -> Option<AuthReport> {
        let e = self.sources.get(&id)?;
        match e.assoc.auth() {
            AuthState::Nts(n) => Some(nts_auth_report(n, Some(now))),
            _ => self.auth_report(id),
        }
    }

    /// Result of a key exchange for `id` (`None`: failed; the source retries after its
    /// back-off). `resolved` is the address of a Server record that names a host.
    pub fn nts_ke_finished(
        &mut self,
        id: SourceId,
        outcome: Option<NtsKeOutcome>,
        resolved: Option<IpAddr>,
        now: f64,
    ) {
        if let Some(e) = self.sources.get_mut(&id) {
            e.assoc.finish_nts_ke(outcome, resolved, now);
        }
    }
}
