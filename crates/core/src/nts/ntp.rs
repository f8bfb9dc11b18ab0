//! NTS extension fields on the server side of NTPv4 (RFC 8915 §5).
//!
//! Request checks, in order (chrony's `NNS_CheckRequestAuth` and catalogue cases 23–24):
//! exactly one Unique Identifier of at least 32 octets, exactly one Cookie, placeholders whose
//! length equals the cookie field's, and an Authenticator that is the last field, parses, and
//! meets the nonce requirement; otherwise the request is dropped. Then the cookie is opened
//! with the server keys and the Authenticator verified with its C2S key over every octet
//! before the Authenticator field; if either fails, the answer is an NTS NAK (§5.7).
//!
//! Response (§5.7): header, the Unique Identifier echoed, then an Authenticator whose
//! ciphertext (S2C key, fresh 16-octet nonce, associated data = everything before the field)
//! carries min(1 + placeholders, 8) new cookies, fewer if they would make the response longer
//! than the request, and additional padding that makes the response exactly as long as the
//! request. An NTS NAK is a KoD NTSN header plus the Unique Identifier only.

use aes_siv::siv::Aes128Siv;
use aes_siv::KeyInit;
use gnomon_wire::extension::{encode_extension_field, ExtensionFields};
use gnomon_wire::nts::{
    nts_authenticator_len, NtsAuthenticator, FIELD_NTS_AUTHENTICATOR, FIELD_NTS_COOKIE,
    FIELD_NTS_COOKIE_PLACEHOLDER, FIELD_NTS_UNIQUE_IDENTIFIER, MIN_UNIQUE_IDENTIFIER_LEN,
};
use gnomon_wire::Header;
use rand::RngCore;
use zeroize::Zeroizing;

use super::cookie::{ServerKeys, SessionKeys, COOKIE_LEN};

/// Most cookies sent in one response (RFC 8915 §5.7 and ntpd-rs's CPU fix).
pub const MAX_RESPONSE_COOKIES: usize = 8;
/// Kiss code of an NTS NAK.
pub const KISS_NTSN: u32 = u32::from_be_bytes(*b"NTSN");
/// Nonce length of our responses.
const RESPONSE_NONCE_LEN: usize = 16;
/// AES-SIV tag length.
const TAG_LEN: usize = 16;
/// Wire length of one cookie field.
const COOKIE_FIELD_LEN: usize = 4 + COOKIE_LEN;

/// True if any field of the request is an NTS field.
pub fn has_nts_fields(fields: &ExtensionFields<'_>) -> bool {
    fields.iter().any(|f| {
        matches!(
            f.field_type,
            FIELD_NTS_UNIQUE_IDENTIFIER
                | FIELD_NTS_COOKIE
                | FIELD_NTS_COOKIE_PLACEHOLDER
                | FIELD_NTS_AUTHENTICATOR
        )
    })
}

/// Why an NTS request gets no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtsDrop {
    /// No Unique Identifier, two of them, or one shorter than 32 octets.
    UniqueIdentifier,
    /// No Cookie or more than one.
    Cookie,
    /// A placeholder whose length differs from the cookie's.
    Placeholder,
    /// No Authenticator, not the last field, malformed, or too short a nonce.
    Authenticator,
}

/// A request whose cookie opened and whose Authenticator verified.
#[derive(Debug)]
pub struct NtsRequest {
    /// Where the Unique Identifier field (header included) sits in the request.
    uid: std::ops::Range<usize>,
    /// The keys from the cookie.
    keys: SessionKeys,
    /// Valid placeholders.
    placeholders: usize,
}

/// What to do with a request carrying NTS fields.
#[derive(Debug)]
pub enum NtsVerdict {
    /// Answer with [`seal_response`].
    Serve(NtsRequest),
    /// Answer with an NTS NAK ([`write_nak`]); the Unique Identifier field is
    /// `request[uid]`.
    Nak {
        /// The Unique Identifier field's place in the request.
        uid: std::ops::Range<usize>,
    },
    /// No answer.
    Drop(NtsDrop),
}

/// Checks the NTS fields of a decoded NTPv4 request (`fields` borrowed from `request`).
pub fn check_request(
    keys: &ServerKeys,
    request: &[u8],
    fields: &ExtensionFields<'_>,
) -> NtsVerdict {
    let mut at = Header::LEN;
    let mut uid = None;
    let mut uids = 0;
    let mut cookie = None;
    let mut cookies = 0;
    let mut placeholders = 0;
    let mut bad_placeholder = false;
    let mut auth = None;
    let mut after_auth = false;
    for f in fields.iter() {
        let range = at..at + f.wire_len();
        at += f.wire_len();
        if auth.is_some() {
            after_auth = true;
        }
        match f.field_type {
            FIELD_NTS_UNIQUE_IDENTIFIER => {
                uids += 1;
                if f.value.len() >= MIN_UNIQUE_IDENTIFIER_LEN {
                    uid = Some(range);
                }
            }
            FIELD_NTS_COOKIE => {
                cookies += 1;
                cookie = Some(f.value);
            }
            FIELD_NTS_COOKIE_PLACEHOLDER => {
                placeholders += 1;
                bad_placeholder |= f.wire_len() != COOKIE_FIELD_LEN;
            }
            FIELD_NTS_AUTHENTICATOR => auth = Some((range.start, f.value)),
            _ => {}
        }
    }
    let (Some(uid), 1) = (uid, uids) else {
        return NtsVerdict::Drop(NtsDrop::UniqueIdentifier);
    };
    let (Some(cookie), 1) = (cookie, cookies) else {
        return NtsVerdict::Drop(NtsDrop::Cookie);
    };
    if bad_placeholder {
        return NtsVerdict::Drop(NtsDrop::Placeholder);
    }
    let Some((auth_start, auth_value)) = auth.filter(|_| !after_auth) else {
        return NtsVerdict::Drop(NtsDrop::Authenticator);
    };
    let Ok(authenticator) = NtsAuthenticator::decode(auth_value) else {
        return NtsVerdict::Drop(NtsDrop::Authenticator);
    };
    if authenticator.nonce.is_empty() || !authenticator.meets_nonce_requirement(usize::MAX) {
        return NtsVerdict::Drop(NtsDrop::Authenticator);
    }
    let Some(session) = keys.open(cookie) else {
        return NtsVerdict::Nak { uid };
    };
    let aad = request.get(..auth_start).unwrap_or_default();
    let mut siv = Aes128Siv::new(&session.c2s.into());
    if siv
        .decrypt([aad, authenticator.nonce], authenticator.ciphertext)
        .map(Zeroizing::new)
        .is_err()
    {
        return NtsVerdict::Nak { uid };
    }
    NtsVerdict::Serve(NtsRequest {
        uid,
        keys: session,
        placeholders,
    })
}

/// Response length for `cookies` cookies after a header and a Unique Identifier field of
/// `uid_len` octets, before additional padding.
fn response_len(uid_len: usize, cookies: usize) -> usize {
    Header::LEN
        + uid_len
        + nts_authenticator_len(
            RESPONSE_NONCE_LEN,
            TAG_LEN + cookies * COOKIE_FIELD_LEN,
            usize::MAX,
        )
}

/// Number of cookies a response to this request carries (0 if none fit).
pub fn response_cookie_count(req: &NtsRequest, request_len: usize) -> usize {
    let uid_len = req.uid.len();
    let mut n = (1 + req.placeholders).min(MAX_RESPONSE_COOKIES);
    while n > 0 && response_len(uid_len, n) > request_len {
        n -= 1;
    }
    n
}

/// Writes the NTS part of the response after the 48-octet header already in `out` and
/// returns the response length, exactly `request.len()`. `None` if `out` is too small or the
/// request too short to carry even one cookie (the caller drops it).
pub fn seal_response(
    server_keys: &ServerKeys,
    req: &NtsRequest,
    request: &[u8],
    out: &mut [u8],
    rng: &mut dyn RngCore,
) -> Option<usize> {
    let total = request.len();
    let cookies = response_cookie_count(req, total);
    if cookies == 0 || out.len() < total {
        return None;
    }
    let uid_field = request.get(req.uid.clone())?;
    let auth_start = Header::LEN + uid_field.len();
    out.get_mut(Header::LEN..auth_start)?
        .copy_from_slice(uid_field);
    // Plaintext: the new cookie fields.
    let mut plain = Zeroizing::new(Vec::with_capacity(cookies * COOKIE_FIELD_LEN));
    plain.resize(cookies * COOKIE_FIELD_LEN, 0);
    for chunk in plain.chunks_exact_mut(COOKIE_FIELD_LEN) {
        let cookie = server_keys.seal(&req.keys, rng);
        encode_extension_field(chunk, FIELD_NTS_COOKIE, &cookie).ok()?;
    }
    let mut nonce = [0u8; RESPONSE_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut siv = Aes128Siv::new(&req.keys.s2c.into());
    let aad = out.get(..auth_start)?;
    let ciphertext = siv.encrypt([aad, &nonce[..]], &plain).ok()?;
    let field = out.get_mut(auth_start..total)?;
    field.fill(0);
    let written =
        gnomon_wire::encode_nts_authenticator(field, &nonce, &ciphertext, usize::MAX).ok()?;
    // Stretch the field with additional padding so the response is as long as the request.
    let field_len = u16::try_from(field.len()).ok()?;
    if written > field.len() {
        return None;
    }
    field
        .get_mut(2..4)?
        .copy_from_slice(&field_len.to_be_bytes());
    Some(total)
}

/// Writes an NTS NAK's Unique Identifier after the KoD NTSN header already in `out`; returns
/// the response length (≤ the request's, since the field is copied from it).
pub fn write_nak(request: &[u8], uid: std::ops::Range<usize>, out: &mut [u8]) -> Option<usize> {
    let field = request.get(uid)?;
    let end = Header::LEN + field.len();
    out.get_mut(Header::LEN..end)?.copy_from_slice(field);
    Some(end)
}
