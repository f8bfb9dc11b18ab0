//! NTS extension fields for NTPv4 (RFC 8915 §5).
//!
//! The field types are constants in [`crate::extension`] (re-exported here). This module adds
//! the inner layout of the NTS Authenticator and Encrypted Extension Fields field (RFC 8915
//! §5.6), the only NTS field with structure of its own:
//!
//! ```text
//! | Nonce Length (16) | Ciphertext Length (16) |
//! | Nonce, zero-padded to a multiple of 4      |
//! | Ciphertext, zero-padded to a multiple of 4 |
//! | Additional Padding                          |
//! ```
//!
//! The lengths exclude the padding. A sender whose nonce is shorter than
//! N_REQ = min(16, N_MAX of the AEAD algorithm), rounded up to a multiple of 4, adds Additional
//! Padding so that nonce and additional padding together take at least N_REQ octets (RFC 8915
//! §5.6; so a server can answer with a nonce of its own choosing without the reply being
//! shorter than the request). We count the nonce with its word padding, since every field
//! boundary is word-aligned.

pub use crate::extension::{
    FIELD_NTS_AUTHENTICATOR, FIELD_NTS_COOKIE, FIELD_NTS_COOKIE_PLACEHOLDER,
    FIELD_NTS_UNIQUE_IDENTIFIER,
};

use crate::error::DecodeError;
use crate::extension::{encode_extension_field_min, MAX_EXTENSION_FIELD_LEN};

/// Minimum size of the Unique Identifier field's body (RFC 8915 §5.3: at least 32 octets).
pub const MIN_UNIQUE_IDENTIFIER_LEN: usize = 32;

/// N_REQ when the AEAD algorithm allows nonces of 16 octets or more (AEAD_AES_SIV_CMAC_256).
pub const DEFAULT_NONCE_REQUIREMENT: usize = 16;

#[inline]
fn pad4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// The parts of an NTS Authenticator and Encrypted Extension Fields body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtsAuthenticator<'a> {
    /// The AEAD nonce (without padding).
    pub nonce: &'a [u8],
    /// The AEAD output: encrypted extension fields and the authentication tag (without padding).
    pub ciphertext: &'a [u8],
    /// Octets after the padded ciphertext.
    pub additional_padding: &'a [u8],
}

impl<'a> NtsAuthenticator<'a> {
    /// Parses the value of a `0x0404` extension field (everything after the 4-octet field
    /// header). Fails if the announced lengths, with their padding, do not fit.
    pub fn decode(value: &'a [u8]) -> Result<NtsAuthenticator<'a>, DecodeError> {
        let Some((&[n0, n1, c0, c1], rest)) = value.split_first_chunk::<4>() else {
            return Err(DecodeError::BadNtsAuthenticator);
        };
        let nonce_len = usize::from(u16::from_be_bytes([n0, n1]));
        let ct_len = usize::from(u16::from_be_bytes([c0, c1]));
        let ct_start = pad4(nonce_len);
        let ct_end = ct_start + pad4(ct_len);
        let (Some(nonce), Some(ciphertext), Some(additional_padding)) = (
            rest.get(..nonce_len),
            rest.get(ct_start..ct_start + ct_len),
            rest.get(ct_end..),
        ) else {
            return Err(DecodeError::BadNtsAuthenticator);
        };
        Ok(NtsAuthenticator {
            nonce,
            ciphertext,
            additional_padding,
        })
    }

    /// True when the nonce (with its word padding) plus the additional padding take at least
    /// N_REQ = min(16, `aead_max_nonce_len`) rounded up to 4 octets (RFC 8915 §5.6).
    pub fn meets_nonce_requirement(&self, aead_max_nonce_len: usize) -> bool {
        let n_req = pad4(aead_max_nonce_len.min(DEFAULT_NONCE_REQUIREMENT));
        pad4(self.nonce.len()) + self.additional_padding.len() >= n_req
    }
}

/// Length of the whole `0x0404` field (header included) that [`encode_nts_authenticator`]
/// writes for these sizes.
pub fn nts_authenticator_len(
    nonce_len: usize,
    ciphertext_len: usize,
    aead_max_nonce_len: usize,
) -> usize {
    let n_req = pad4(aead_max_nonce_len.min(DEFAULT_NONCE_REQUIREMENT));
    let nonce_region = pad4(nonce_len).max(n_req);
    (4 + 4 + nonce_region + pad4(ciphertext_len)).max(16)
}

/// Writes a complete NTS Authenticator and Encrypted Extension Fields field (type 0x0404,
/// RFC 8915 §5.6) at the start of `out`, adding the additional padding RFC 8915 §5.6 requires
/// for `aead_max_nonce_len` (pass `usize::MAX` for AEAD_AES_SIV_CMAC_256, 12 for
/// AEAD_AES_128_GCM_SIV). Returns the field's length.
pub fn encode_nts_authenticator(
    out: &mut [u8],
    nonce: &[u8],
    ciphertext: &[u8],
    aead_max_nonce_len: usize,
) -> Result<usize, DecodeError> {
    let total = nts_authenticator_len(nonce.len(), ciphertext.len(), aead_max_nonce_len);
    let (Ok(nonce_len), Ok(ct_len), true) = (
        u16::try_from(nonce.len()),
        u16::try_from(ciphertext.len()),
        total <= MAX_EXTENSION_FIELD_LEN,
    ) else {
        return Err(DecodeError::ExtensionTooLong {
            len: nonce.len().saturating_add(ciphertext.len()),
        });
    };
    let available = out.len();
    let Some(dst) = out.get_mut(..total) else {
        return Err(DecodeError::BufferTooSmall {
            needed: total,
            available,
        });
    };
    // Header with the final length and an all-zero body, then the parts in place.
    encode_extension_field_min(dst, FIELD_NTS_AUTHENTICATOR, &[], total)?;
    let body = dst.get_mut(4..).unwrap_or_default();
    body[..2].copy_from_slice(&nonce_len.to_be_bytes());
    body[2..4].copy_from_slice(&ct_len.to_be_bytes());
    body[4..4 + nonce.len()].copy_from_slice(nonce);
    let ct_start = 4 + pad4(nonce.len());
    body[ct_start..ct_start + ciphertext.len()].copy_from_slice(ciphertext);
    Ok(total)
}

/// Writes a Cookie Placeholder field (RFC 8915 §5.5) whose body is `cookie_len` zero octets
/// (padded), so the request is as long as the response carrying a new cookie.
pub fn encode_cookie_placeholder(out: &mut [u8], cookie_len: usize) -> Result<usize, DecodeError> {
    encode_extension_field_min(
        out,
        FIELD_NTS_COOKIE_PLACEHOLDER,
        &[],
        cookie_len.saturating_add(4),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::ExtensionFields;

    #[test]
    fn siv_authenticator_pads_nonce_region_to_16() {
        let mut out = [0xeeu8; 128];
        // A 12-byte nonce with AES-SIV-CMAC needs 4 octets of additional padding.
        let n = encode_nts_authenticator(&mut out, &[1; 12], &[2; 16], usize::MAX).unwrap();
        assert_eq!(n, 4 + 4 + 16 + 16);
        let fields = ExtensionFields::parse(&out[..n]).unwrap();
        let f = fields.find(FIELD_NTS_AUTHENTICATOR).unwrap();
        let a = NtsAuthenticator::decode(f.value).unwrap();
        assert_eq!(a.nonce, &[1; 12]);
        assert_eq!(a.ciphertext, &[2; 16]);
        // The ciphertext follows the word-padded nonce; the 4 extra octets come last.
        assert_eq!(a.additional_padding, &[0; 4]);
        assert!(a.meets_nonce_requirement(usize::MAX));
        assert_eq!(&out[8 + 12..8 + 12 + 16], &[2; 16]);
    }

    #[test]
    fn odd_lengths_are_padded_to_words() {
        let mut out = [0u8; 128];
        let n = encode_nts_authenticator(&mut out, &[1; 17], &[2; 21], usize::MAX).unwrap();
        assert_eq!(n, 4 + 4 + 20 + 24);
        let a = NtsAuthenticator::decode(&out[4..n]).unwrap();
        assert_eq!(a.nonce, &[1; 17]);
        assert_eq!(a.ciphertext, &[2; 21]);
        assert!(a.additional_padding.is_empty());
        assert!(a.meets_nonce_requirement(usize::MAX));
        // Padding octets are zero.
        assert_eq!(&out[4 + 4 + 17..4 + 4 + 20], &[0, 0, 0]);
        assert_eq!(&out[4 + 4 + 20 + 21..n], &[0, 0, 0]);
    }

    #[test]
    fn gcm_siv_nonce_of_12_needs_no_extra_padding() {
        assert_eq!(nts_authenticator_len(12, 32, 12), 4 + 4 + 12 + 32);
        assert_eq!(nts_authenticator_len(12, 32, usize::MAX), 4 + 4 + 16 + 32);
    }

    #[test]
    fn decode_rejects_lengths_past_the_end() {
        assert_eq!(
            NtsAuthenticator::decode(&[0, 16, 0]),
            Err(DecodeError::BadNtsAuthenticator)
        );
        let mut v = vec![0u8, 16, 0, 16];
        v.extend([0u8; 31]);
        assert_eq!(
            NtsAuthenticator::decode(&v),
            Err(DecodeError::BadNtsAuthenticator)
        );
        v.push(0);
        assert!(NtsAuthenticator::decode(&v).is_ok());
    }

    #[test]
    fn short_nonce_without_padding_fails_requirement() {
        // nonce 8, ciphertext 16, no additional padding: 8 < 16.
        let mut v = vec![0u8, 8, 0, 16];
        v.extend([0u8; 24]);
        let a = NtsAuthenticator::decode(&v).unwrap();
        assert!(!a.meets_nonce_requirement(usize::MAX));
        assert!(a.meets_nonce_requirement(8));
        v.extend([0u8; 8]);
        let a = NtsAuthenticator::decode(&v).unwrap();
        assert_eq!(a.additional_padding.len(), 8);
        assert!(a.meets_nonce_requirement(usize::MAX));
    }

    #[test]
    fn cookie_placeholder_matches_cookie_size() {
        let mut out = [0xffu8; 200];
        assert_eq!(encode_cookie_placeholder(&mut out, 100), Ok(104));
        assert_eq!(&out[..4], &[0x03, 0x04, 0, 104]);
        assert!(out[4..104].iter().all(|&b| b == 0));
        assert_eq!(encode_cookie_placeholder(&mut out, 5), Ok(16));
    }

    #[test]
    fn oversized_parts_are_rejected() {
        let big = vec![0u8; 70000];
        let mut out = vec![0u8; 140000];
        assert!(matches!(
            encode_nts_authenticator(&mut out, &[0; 16], &big, usize::MAX),
            Err(DecodeError::ExtensionTooLong { .. })
        ));
        let mut small = [0u8; 20];
        assert!(matches!(
            encode_nts_authenticator(&mut small, &[0; 16], &[0; 16], usize::MAX),
            Err(DecodeError::BufferTooSmall { .. })
        ));
    }
}
