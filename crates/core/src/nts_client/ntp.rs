//! NTS extension fields on the client side of NTPv4 (RFC 8915 §5).
//!
//! Request (§5.3–5.6): header, a fresh 32-octet random Unique Identifier, one cookie taken from
//! the jar (never reused), placeholders of the cookie's length so that the reply refills the jar
//! to eight, and a last Authenticator field: AEAD_AES_SIV_CMAC_256 with the C2S key, a fresh
//! 16-octet nonce, no plaintext, associated data = every octet before the field.
//!
//! Response (§5.7, catalogue cases 18, 19, 21, 22): an NTS NAK (stratum 0, kiss code NTSN) is
//! recognised only when it carries exactly one Unique Identifier, ours. Any other response must
//! carry exactly one Unique Identifier field, equal to ours, and an Authenticator that is the
//! last field and verifies with the S2C key over the octets before it; the cookies inside the
//! encrypted part go into the jar (checked, capped at eight); plaintext cookies outside it are
//! ignored. A response without NTS fields is never accepted (no downgrade).

use aes_siv::siv::Aes128Siv;
use aes_siv::KeyInit;
use gnomon_wire::extension::{encode_extension_field, ExtensionFields};
use gnomon_wire::nts::{
    encode_cookie_placeholder, FIELD_NTS_AUTHENTICATOR, FIELD_NTS_COOKIE,
    FIELD_NTS_UNIQUE_IDENTIFIER,
};
use gnomon_wire::{encode_nts_authenticator, Header, NtsAuthenticator, Packet};
use rand::RngCore;

use super::cookie_jar::{CookieJar, MAX_COOKIES};
use crate::nts::ntp::KISS_NTSN;
use crate::nts::SessionKeys;
use zeroize::Zeroizing;

/// Length of our Unique Identifiers.
pub const UID_LEN: usize = 32;
/// Length of our request nonces.
const NONCE_LEN: usize = 16;

/// Why a response failed NTS verification (counted, never acted on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtsRejection {
    /// Not a decodable packet.
    Malformed,
    /// No NTS fields at all (stripped: case 22).
    Stripped,
    /// No Unique Identifier, more than one, or not ours (case 18).
    UniqueIdentifier,
    /// No Authenticator, not last, or malformed (case 19).
    AuthenticatorPlacement,
    /// The Authenticator did not verify (wrong key, nonce, tag or algorithm).
    Authenticator,
    /// The decrypted part is not a list of extension fields.
    EncryptedFields,
}

/// Result of checking a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtsCheck {
    /// Authentic; this many new cookies were stored.
    Authentic(usize),
    /// An NTS NAK answering our request: run NTS-KE again.
    Nak,
    /// Rejected.
    Rejected(NtsRejection),
}

/// Keys and cookies of one NTS association.
#[derive(Debug, Clone)]
pub struct NtsSession {
    keys: SessionKeys,
    jar: CookieJar,
}

impl NtsSession {
    /// A session from a key exchange's keys and cookies.
    pub fn new(keys: SessionKeys, cookies: &[impl AsRef<[u8]>]) -> NtsSession {
        let mut jar = CookieJar::new();
        for c in cookies {
            jar.push(c.as_ref());
        }
        NtsSession { keys, jar }
    }

    /// The cookie jar.
    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    /// The session keys.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// Takes every unused cookie out (to save them).
    pub fn take_cookies(&mut self) -> Vec<Zeroizing<Vec<u8>>> {
        self.jar.drain()
    }

    /// Drops every cookie (NAK).
    pub fn clear_cookies(&mut self) {
        self.jar.clear();
    }

    /// Builds a request from `header` (48 octets); returns the packet and its Unique
    /// Identifier, or `None` when the jar is empty (run NTS-KE).
    pub fn build_request(
        &mut self,
        header: &[u8; Header::LEN],
        rng: &mut dyn RngCore,
    ) -> Option<(Vec<u8>, [u8; UID_LEN])> {
        let cookie = self.jar.take()?;
        let mut uid = [0u8; UID_LEN];
        rng.fill_bytes(&mut uid);
        let placeholders = MAX_COOKIES.saturating_sub(1 + self.jar.len());
        let cookie_field = (cookie.len() + 4 + 3) & !3;
        let auth_len = 4 + 4 + NONCE_LEN + 16;
        let mut out =
            vec![0u8; Header::LEN + 36 + cookie_field * (1 + placeholders) + auth_len + 16];
        out[..Header::LEN].copy_from_slice(header);
        let mut n = Header::LEN;
        n += encode_extension_field(&mut out[n..], FIELD_NTS_UNIQUE_IDENTIFIER, &uid).ok()?;
        n += encode_extension_field(&mut out[n..], FIELD_NTS_COOKIE, &cookie).ok()?;
        for _ in 0..placeholders {
            n += encode_cookie_placeholder(&mut out[n..], cookie.len()).ok()?;
        }
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut siv = Aes128Siv::new(&self.keys.c2s.into());
        let tag = siv.encrypt([&out[..n], &nonce[..]], &[]).ok()?;
        n += encode_nts_authenticator(&mut out[n..], &nonce, &tag, usize::MAX).ok()?;
        out.truncate(n);
        Some((out, uid))
    }

    /// Checks a response to the request whose Unique Identifier was `uid`.
    pub fn check_response(&mut self, data: &[u8], uid: &[u8; UID_LEN]) -> NtsCheck {
        let Ok(packet) = Packet::decode(data) else {
            return NtsCheck::Rejected(NtsRejection::Malformed);
        };
        let mut at = Header::LEN;
        let mut uids = 0;
        let mut uid_ok = false;
        let mut auth = None;
        let mut after_auth = false;
        let mut any_nts = false;
        for f in packet.extensions.iter() {
            let start = at;
            at += f.wire_len();
            if auth.is_some() {
                after_auth = true;
            }
            match f.field_type {
                FIELD_NTS_UNIQUE_IDENTIFIER => {
                    any_nts = true;
                    uids += 1;
                    uid_ok = f.value == uid.as_slice();
                }
                FIELD_NTS_AUTHENTICATOR => {
                    any_nts = true;
                    auth = Some((start, f.value));
                }
                // Plaintext cookies outside the encrypted part are ignored (case 19).
                _ => {}
            }
        }
        if !any_nts {
            return NtsCheck::Rejected(NtsRejection::Stripped);
        }
        if uids != 1 || !uid_ok {
            return NtsCheck::Rejected(NtsRejection::UniqueIdentifier);
        }
        let h = packet.header;
        if h.stratum == 0 && h.reference_id == KISS_NTSN {
            return NtsCheck::Nak;
        }
        // A MAC trailer after the Authenticator counts as "bytes after it".
        let (Some((auth_start, value)), false, None) = (auth, after_auth, packet.mac) else {
            return NtsCheck::Rejected(NtsRejection::AuthenticatorPlacement);
        };
        let Ok(a) = NtsAuthenticator::decode(value) else {
            return NtsCheck::Rejected(NtsRejection::AuthenticatorPlacement);
        };
        if a.nonce.is_empty() {
            return NtsCheck::Rejected(NtsRejection::Authenticator);
        }
        let aad = data.get(..auth_start).unwrap_or_default();
        let mut siv = Aes128Siv::new(&self.keys.s2c.into());
        let Ok(plain) = siv.decrypt([aad, a.nonce], a.ciphertext) else {
            return NtsCheck::Rejected(NtsRejection::Authenticator);
        };
        let plain = zeroize::Zeroizing::new(plain);
        let Ok(fields) = ExtensionFields::parse(&plain) else {
            return NtsCheck::Rejected(NtsRejection::EncryptedFields);
        };
        let mut added = 0;
        for f in fields.iter() {
            if f.field_type == FIELD_NTS_COOKIE && self.jar.push(f.value) {
                added += 1;
            }
        }
        NtsCheck::Authentic(added)
    }
}

#[cfg(test)]
mod tests;
