//! The symmetric-key MAC trailer (RFC 5905 §7.3 and appendix, RFC 7822 §7.5, RFC 8573).
//!
//! ```text
//! | Key Identifier (32) | Message Digest (16..64 octets) |
//! ```
//!
//! The digest covers every octet before the key identifier. chrony accepts digests of 16 (MD5,
//! AES-CMAC) up to 64 octets (SHA512) in NTPv1–v3 packets, but in NTPv4 only 16 or 20 octets, so
//! that extension fields can be told from a MAC (RFC 7822 §7.5); longer hashes are truncated to
//! 160 bits in NTPv4 (chrony 4.3 drops an NTPv4 request carrying a 32-octet SHA256 digest and
//! answers the same request with the digest truncated to 20). A 4-octet trailer holding key
//! identifier 0 is a crypto-NAK (RFC 5905 §7.4).
//!
//! Microsoft's MS-SNTP (used by Samba's ntp_signd) reuses the NTPv3 trailer: a non-zero key
//! identifier followed by 16 zero octets (or, in its extended form, a 68-octet trailer whose
//! bytes after the first 8 are zero) asks the domain controller to sign the reply.

use crate::error::DecodeError;

/// Shortest digest chrony accepts (MD5 and AES-CMAC, 128 bits).
pub const MIN_DIGEST_LEN: usize = 16;
/// Longest digest of a supported hash (SHA512, 512 bits).
pub const MAX_DIGEST_LEN: usize = 64;
/// Longest digest allowed in an NTPv4 packet (RFC 7822 §7.5: 160 bits).
pub const MAX_V4_DIGEST_LEN: usize = 20;
/// Length of a crypto-NAK trailer: a zero key identifier and no digest.
pub const CRYPTO_NAK_LEN: usize = 4;

/// A MAC trailer: key identifier and digest, borrowed from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac<'a> {
    /// Key identifier (chrony's keyfile ID).
    pub key_id: u32,
    /// Message digest; empty for a crypto-NAK. In NTPv1–v3 packets this is everything after the
    /// key identifier, which may be longer than any real digest (authentication then fails).
    pub digest: &'a [u8],
}

/// The two MS-SNTP request forms (Microsoft [MS-SNTP] §2.2.1 and §2.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsSntpRequest {
    /// Authenticator: key identifier + 16 zero octets.
    Authenticator,
    /// Extended authenticator: key identifier + 4 octets of flags/hints + 64 zero octets.
    ExtendedAuthenticator,
}

impl<'a> Mac<'a> {
    /// The crypto-NAK: key identifier 0 and no digest (RFC 5905 §7.4).
    pub const CRYPTO_NAK: Mac<'static> = Mac {
        key_id: 0,
        digest: &[],
    };

    /// True for a crypto-NAK.
    #[inline]
    pub fn is_crypto_nak(&self) -> bool {
        self.key_id == 0 && self.digest.is_empty()
    }

    /// Length of the trailer on the wire.
    #[inline]
    pub fn wire_len(&self) -> usize {
        4 + self.digest.len()
    }

    /// Splits a trailer into key identifier and digest; `None` if shorter than 4 octets.
    pub fn split(trailer: &'a [u8]) -> Option<Mac<'a>> {
        let (id, digest) = trailer.split_first_chunk::<4>()?;
        Some(Mac {
            key_id: u32::from_be_bytes(*id),
            digest,
        })
    }

    /// Recognises an MS-SNTP signing request in an NTPv3 packet's trailer, as chrony does for
    /// its `ntpsigndsocket` support: a non-zero key identifier with a 16-octet all-zero digest,
    /// or a 68-octet digest whose octets after the first 4 are zero.
    pub fn ms_sntp_request(&self, version: u8) -> Option<MsSntpRequest> {
        if version != 3 || self.key_id == 0 {
            return None;
        }
        match self.digest.len() {
            16 if self.digest.iter().all(|&b| b == 0) => Some(MsSntpRequest::Authenticator),
            68 if self
                .digest
                .get(4..)
                .is_some_and(|d| d.iter().all(|&b| b == 0)) =>
            {
                Some(MsSntpRequest::ExtendedAuthenticator)
            }
            _ => None,
        }
    }
}

/// Writes a MAC trailer at the start of `out` and returns its length (4 + digest). The digest
/// must be a multiple of 4 octets (NTP packets are word-aligned) and at most 64; an empty
/// digest with key identifier 0 is a crypto-NAK.
pub fn encode_mac(out: &mut [u8], key_id: u32, digest: &[u8]) -> Result<usize, DecodeError> {
    if digest.len() > MAX_DIGEST_LEN || digest.len() % 4 != 0 {
        return Err(DecodeError::BadDigestLength { len: digest.len() });
    }
    let total = 4 + digest.len();
    let available = out.len();
    let Some(dst) = out.get_mut(..total) else {
        return Err(DecodeError::BufferTooSmall {
            needed: total,
            available,
        });
    };
    let (id, rest) = dst.split_at_mut(4);
    id.copy_from_slice(&key_id.to_be_bytes());
    rest.copy_from_slice(digest);
    Ok(total)
}

/// Writes a crypto-NAK (4 zero octets) at the start of `out`.
pub fn encode_crypto_nak(out: &mut [u8]) -> Result<usize, DecodeError> {
    encode_mac(out, 0, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_writes_key_id_big_endian_then_digest() {
        let mut out = [0u8; 24];
        let n = encode_mac(&mut out, 0x0102_0304, &[0xaa; 20]).unwrap();
        assert_eq!(n, 24);
        assert_eq!(&out[..4], &[1, 2, 3, 4]);
        assert_eq!(&out[4..], &[0xaa; 20]);
        assert_eq!(
            Mac::split(&out),
            Some(Mac {
                key_id: 0x0102_0304,
                digest: &[0xaa; 20]
            })
        );
    }

    #[test]
    fn encode_rejects_unaligned_or_oversized_digest() {
        let mut out = [0u8; 128];
        assert_eq!(
            encode_mac(&mut out, 1, &[0; 18]),
            Err(DecodeError::BadDigestLength { len: 18 })
        );
        assert_eq!(
            encode_mac(&mut out, 1, &[0; 68]),
            Err(DecodeError::BadDigestLength { len: 68 })
        );
        assert_eq!(encode_mac(&mut out, 1, &[0; 64]), Ok(68));
        let mut small = [0u8; 10];
        assert_eq!(
            encode_mac(&mut small, 1, &[0; 16]),
            Err(DecodeError::BufferTooSmall {
                needed: 20,
                available: 10
            })
        );
    }

    #[test]
    fn crypto_nak_is_four_zero_octets() {
        let mut out = [0xffu8; 8];
        assert_eq!(encode_crypto_nak(&mut out), Ok(4));
        assert_eq!(&out[..4], &[0; 4]);
        assert!(Mac::split(&out[..4]).unwrap().is_crypto_nak());
        assert!(!Mac {
            key_id: 1,
            digest: &[]
        }
        .is_crypto_nak());
    }

    #[test]
    fn split_needs_four_octets() {
        assert_eq!(Mac::split(&[0, 0, 1]), None);
    }

    #[test]
    fn ms_sntp_requests_are_recognised_only_in_ntpv3() {
        let zero16 = [0u8; 16];
        let mac = Mac {
            key_id: 7,
            digest: &zero16,
        };
        assert_eq!(mac.ms_sntp_request(3), Some(MsSntpRequest::Authenticator));
        assert_eq!(mac.ms_sntp_request(4), None);
        let nonzero = Mac {
            key_id: 7,
            digest: &[1; 16],
        };
        assert_eq!(nonzero.ms_sntp_request(3), None);
        let zero_id = Mac {
            key_id: 0,
            digest: &zero16,
        };
        assert_eq!(zero_id.ms_sntp_request(3), None);
        let mut ext = [0u8; 68];
        ext[..4].copy_from_slice(&[1, 2, 3, 4]);
        let ext_mac = Mac {
            key_id: 7,
            digest: &ext,
        };
        assert_eq!(
            ext_mac.ms_sntp_request(3),
            Some(MsSntpRequest::ExtendedAuthenticator)
        );
        ext[10] = 1;
        let ext_bad = Mac {
            key_id: 7,
            digest: &ext,
        };
        assert_eq!(ext_bad.ms_sntp_request(3), None);
    }
}
