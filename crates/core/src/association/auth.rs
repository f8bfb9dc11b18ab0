//! Authentication of one association: symmetric keys (`key N`) and NTS (`nts`).
//!
//! Requests of a keyed source carry key N's MAC (truncated in NTPv4 as chrony does,
//! [`crate::auth::Key::sign`]); a reply is accepted only with a MAC by the same key ID that
//! verifies (compared in constant time) — a reply signed with another key the client also holds
//! is rejected (no "skeleton key", CVE-2016-1567, catalogue case 13). A source whose key is not
//! in the key file sends nothing. NTS sources send only NTS-protected requests
//! ([`crate::nts_client`]). Every check runs before the packet can touch the association: an
//! unauthenticated packet, a crypto-NAK or an NTS NAK never changes its timestamps or state
//! (cases 12, 14), beyond an NTS NAK answering our request scheduling a new key exchange.

use gnomon_wire::{Header, Packet};
use zeroize::Zeroizing;

use super::{Association, Rejection};
use crate::auth::{Key, MAX_DIGEST_LEN};
use crate::nts_client::ntp::UID_LEN;
use crate::nts_client::{NtsCheck, NtsState};

/// How an association authenticates.
#[derive(Debug, Clone, Default)]
pub enum AuthState {
    /// No authentication configured.
    #[default]
    None,
    /// `key id`; `key` is `None` when the key file lacks it.
    Symmetric {
        /// Configured key ID.
        id: u32,
        /// The key, if loaded.
        key: Option<Key>,
    },
    /// `nts`.
    Nts(Box<NtsState>),
}

/// Result of the authentication step on a reply.
pub(super) enum AuthVerdict {
    /// Passed (or nothing configured: `authenticated` as the caller said).
    Pass(bool),
    /// Rejected before touching the association.
    Reject(Rejection),
    /// NTS NAK answering our request.
    Nak,
}

impl Association {
    /// Configures authentication (done by the engine when the source is added).
    pub fn set_auth(&mut self, auth: AuthState) {
        self.auth = auth;
    }

    /// The authentication state.
    pub fn auth(&self) -> &AuthState {
        &self.auth
    }

    /// Mutable NTS state (the engine feeds key-exchange results through it).
    pub fn nts_mut(&mut self) -> Option<&mut NtsState> {
        match &mut self.auth {
            AuthState::Nts(n) => Some(n),
            _ => None,
        }
    }

    /// True when configured with `key` or `nts` (chrony's "authenticated source").
    pub fn is_authenticated(&self) -> bool {
        !matches!(self.auth, AuthState::None)
    }

    /// Completes the 48-octet request: the trailer (MAC or NTS fields) and the NTS Unique
    /// Identifier. `None` when nothing may be sent (missing key, no NTS cookie).
    pub(super) fn authenticate_request(
        &mut self,
        header: &[u8; Header::LEN],
    ) -> Option<(Vec<u8>, Option<[u8; UID_LEN]>)> {
        let version = self.cfg.version.clamp(1, 4);
        match &mut self.auth {
            AuthState::None => Some((Vec::new(), None)),
            AuthState::Symmetric { id, key } => {
                let key = key.as_ref()?;
                let mut digest = Zeroizing::new([0u8; MAX_DIGEST_LEN]);
                let n = key.sign(header, version, &mut digest);
                let mut trailer = id.to_be_bytes().to_vec();
                trailer.extend_from_slice(&digest[..n]);
                Some((trailer, None))
            }
            AuthState::Nts(nts) => {
                let session = nts.session_mut()?;
                let (packet, uid) = session.build_request(header, &mut self.rng)?;
                Some((packet.get(Header::LEN..)?.to_vec(), Some(uid)))
            }
        }
    }

    /// Authenticates a reply before any other test; `answers` says whether its origin
    /// timestamp matches our outstanding request (an NTS NAK must answer it).
    pub(super) fn authenticate_reply(
        &mut self,
        data: &[u8],
        answers: bool,
        authenticated: bool,
    ) -> AuthVerdict {
        match &mut self.auth {
            AuthState::None => AuthVerdict::Pass(authenticated),
            AuthState::Symmetric { id, key } => {
                let (Ok(packet), Some(key)) = (Packet::decode(data), key.as_ref()) else {
                    return AuthVerdict::Reject(Rejection::AuthFailed);
                };
                let ok = packet.mac.is_some_and(|m| {
                    !m.is_crypto_nak()
                        && m.key_id == *id
                        && key.verify(
                            packet.authenticated_part(data),
                            packet.header.version,
                            m.digest,
                        )
                });
                if ok {
                    AuthVerdict::Pass(true)
                } else {
                    AuthVerdict::Reject(Rejection::AuthFailed)
                }
            }
            AuthState::Nts(nts) => {
                let uid = self.pending.and_then(|p| p.uid);
                let (Some(uid), Some(session)) = (uid, nts.session_mut()) else {
                    return AuthVerdict::Reject(Rejection::AuthFailed);
                };
                match session.check_response(data, &uid) {
                    NtsCheck::Authentic(_) => {
                        nts.authentic_response();
                        // One response per Unique Identifier: a replay now fails (case 15)
                        // and cannot refill the jar with cookies already used.
                        if let Some(p) = &mut self.pending {
                            p.uid = None;
                        }
                        AuthVerdict::Pass(true)
                    }
                    NtsCheck::Nak if answers => {
                        nts.nak();
                        AuthVerdict::Nak
                    }
                    NtsCheck::Nak | NtsCheck::Rejected(_) => {
                        AuthVerdict::Reject(Rejection::AuthFailed)
                    }
                }
            }
        }
    }
}

impl Association {
    /// At `now`, starts the NTS key exchange the source needs, if due (online sources only).
    pub fn start_nts_ke(&mut self, now: f64) -> Option<crate::nts_client::NtsKeRequest> {
        if !self.online {
            return None;
        }
        let ip = self.remote.ip();
        self.nts_mut()?.start_ke(now, ip)
    }

    /// The end of a key exchange started by [`Association::start_nts_ke`]. On success the
    /// NTP address follows the Server/Port records (`resolved`: the daemon's lookup of a
    /// Server record that is a name) and the next request goes out at `now`.
    pub fn finish_nts_ke(
        &mut self,
        outcome: Option<crate::nts_client::NtsKeOutcome>,
        resolved: Option<std::net::IpAddr>,
        now: f64,
    ) {
        let remote = self.remote;
        let Some(nts) = self.nts_mut() else {
            return;
        };
        let ok = outcome.is_some();
        let addr = outcome
            .as_ref()
            .map(|o| crate::nts_client::negotiated_addr(remote, o, resolved));
        nts.finish_ke(outcome);
        if let (true, Some(addr)) = (ok, addr) {
            self.remote = addr;
            self.pending = None;
            self.next_tx = self.next_tx.min(now);
        }
    }
}
