//! NTS extension fields on the client side of NTPv4 (RFC 8915 §5.7), for associations: the
//! request (Unique Identifier, Cookie, Placeholders, Authenticator over everything before it)
//! and the response check (catalogue cases 18, 19, 21): the Unique Identifier must match and
//! no other one may contradict it, the Authenticator must verify with the S2C key, and only
//! cookies inside the encrypted part count. A KoD NTSN carrying our Unique Identifier is an
//! NTS NAK, reported as such without authentication (it cannot be authenticated).

use aes_siv::siv::Aes128Siv;
use aes_siv::KeyInit;
use gnomon_wire::extension::{encode_extension_field, ExtensionFields};
use gnomon_wire::nts::{
    encode_cookie_placeholder, NtsAuthenticator, FIELD_NTS_AUTHENTICATOR, FIELD_NTS_COOKIE,
    FIELD_NTS_UNIQUE_IDENTIFIER,
};
use gnomon_wire::{encode_nts_authenticator, Header, Packet};
use zeroize::Zeroizing;

use super::cookie::SessionKeys;
use super::ntp::KISS_NTSN;

/// Unique Identifier length we send.
pub const UID_LEN: usize = 32;

/// Why a request could not be built or a response was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtsClientError {
    /// The output buffer is too small or the cookie too large.
    Buffer,
    /// The response does not decode.
    Malformed,
    /// No Unique Identifier equal to ours, or one that differs.
    UniqueIdentifier,
    /// No Authenticator, or it does not verify.
    Authenticator,
}

impl std::fmt::Display for NtsClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NtsClientError::Buffer => "NTS request does not fit",
            NtsClientError::Malformed => "malformed NTS response",
            NtsClientError::UniqueIdentifier => "NTS response with a wrong unique identifier",
            NtsClientError::Authenticator => "NTS response failed authentication",
        })
    }
}

impl std::error::Error for NtsClientError {}

fn rest(n: usize, out: &mut [u8]) -> Result<&mut [u8], NtsClientError> {
    out.get_mut(n..).ok_or(NtsClientError::Buffer)
}

/// Writes a request: `header`, then the NTS fields; returns its length.
pub fn build_request(
    out: &mut [u8],
    header: &Header,
    uid: &[u8; UID_LEN],
    cookie: &[u8],
    placeholders: usize,
    keys: &SessionKeys,
    nonce: &[u8; 16],
) -> Result<usize, NtsClientError> {
    let e = |_| NtsClientError::Buffer;
    let head = out.get_mut(..Header::LEN).ok_or(NtsClientError::Buffer)?;
    header.encode_to_slice(head).map_err(e)?;
    let mut n = Header::LEN;
    n += encode_extension_field(rest(n, out)?, FIELD_NTS_UNIQUE_IDENTIFIER, uid).map_err(e)?;
    n += encode_extension_field(rest(n, out)?, FIELD_NTS_COOKIE, cookie).map_err(e)?;
    for _ in 0..placeholders {
        n += encode_cookie_placeholder(rest(n, out)?, cookie.len()).map_err(e)?;
    }
    let aad = out.get(..n).ok_or(NtsClientError::Buffer)?;
    let ct = Aes128Siv::new(&keys.c2s.into())
        .encrypt([aad, &nonce[..]], &[])
        .map_err(|_| NtsClientError::Buffer)?;
    n += encode_nts_authenticator(rest(n, out)?, nonce, &ct, usize::MAX).map_err(e)?;
    Ok(n)
}

/// A checked response.
#[derive(Debug)]
pub enum NtsResponse {
    /// Authenticated; the new cookies from its encrypted part.
    Authenticated(Vec<Zeroizing<Vec<u8>>>),
    /// A KoD NTSN with our Unique Identifier.
    Nak,
}

/// Checks a response to a request sent with `uid` and `keys`.
pub fn check_response(
    response: &[u8],
    uid: &[u8; UID_LEN],
    keys: &SessionKeys,
) -> Result<NtsResponse, NtsClientError> {
    let packet = Packet::decode(response).map_err(|_| NtsClientError::Malformed)?;
    let mut uid_ok = false;
    let mut at = Header::LEN;
    let mut auth = None;
    for f in packet.extensions.iter() {
        match f.field_type {
            FIELD_NTS_UNIQUE_IDENTIFIER => {
                if f.value.get(..UID_LEN) != Some(&uid[..])
                    || f.value[UID_LEN..].iter().any(|&b| b != 0)
                {
                    return Err(NtsClientError::UniqueIdentifier);
                }
                uid_ok = true;
            }
            FIELD_NTS_AUTHENTICATOR if auth.is_none() => auth = Some((at, f.value)),
            _ => {}
        }
        at += f.wire_len();
    }
    if !uid_ok {
        return Err(NtsClientError::UniqueIdentifier);
    }
    let h = packet.header;
    if h.stratum == 0 && h.reference_id == KISS_NTSN {
        return Ok(NtsResponse::Nak);
    }
    let (start, value) = auth.ok_or(NtsClientError::Authenticator)?;
    let a = NtsAuthenticator::decode(value).map_err(|_| NtsClientError::Authenticator)?;
    let aad = response.get(..start).ok_or(NtsClientError::Malformed)?;
    let plain = Zeroizing::new(
        Aes128Siv::new(&keys.s2c.into())
            .decrypt([aad, a.nonce], a.ciphertext)
            .map_err(|_| NtsClientError::Authenticator)?,
    );
    let inner = ExtensionFields::parse(&plain).map_err(|_| NtsClientError::Malformed)?;
    let cookies = inner
        .iter()
        .filter(|f| f.field_type == FIELD_NTS_COOKIE)
        .map(|f| Zeroizing::new(f.value.to_vec()))
        .collect();
    Ok(NtsResponse::Authenticated(cookies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessRule;
    use crate::nts::ServerKeys;
    use crate::server::{ReferenceInfo, Reply, Server, ServerConfig};
    use gnomon_wire::{LeapIndicator, Mode, NtpShort, NtpTimestamp};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn header() -> Header {
        Header {
            leap: LeapIndicator::NoWarning,
            version: 4,
            mode: Mode::Client,
            stratum: 0,
            poll: 4,
            precision: -20,
            root_delay: NtpShort(0),
            root_dispersion: NtpShort(0),
            reference_id: 0,
            reference_timestamp: NtpTimestamp::ZERO,
            origin_timestamp: NtpTimestamp::ZERO,
            receive_timestamp: NtpTimestamp::ZERO,
            transmit_timestamp: NtpTimestamp(42),
        }
    }

    fn server(keys: ServerKeys) -> Server {
        let mut config = ServerConfig::default();
        config
            .access
            .apply(&AccessRule {
                allow: true,
                all: false,
                subnet: None,
            })
            .unwrap();
        let mut s = Server::new(config, 1).unwrap();
        s.set_nts_keys(Some(keys));
        s
    }

    fn exchange(s: &mut Server, req: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 1200];
        let reference = ReferenceInfo::local(3, NtpTimestamp(1), -20);
        match s.handle_request(
            req,
            "127.0.0.1:999".parse().unwrap(),
            NtpTimestamp(7),
            0.0,
            &reference,
            &mut out,
        ) {
            Reply::Send { len } | Reply::Kod { len } => out[..len].to_vec(),
            Reply::Drop(r) => panic!("dropped: {r:?}"),
        }
    }

    #[test]
    fn round_trip_with_our_server_refills_cookies() {
        let mut rng = StdRng::seed_from_u64(1);
        let sk = ServerKeys::generate(&mut rng, 0.0, 10.0);
        let keys = SessionKeys {
            c2s: [5; 32],
            s2c: [6; 32],
        };
        let cookie = sk.seal(&keys, &mut rng);
        let mut s = server(sk.clone());
        let uid = [9u8; UID_LEN];
        let mut req = [0u8; 1200];
        let n = build_request(&mut req, &header(), &uid, &cookie, 3, &keys, &[1; 16]).unwrap();
        let resp = exchange(&mut s, &req[..n]);
        assert_eq!(resp.len(), n);
        let NtsResponse::Authenticated(cookies) = check_response(&resp, &uid, &keys).unwrap()
        else {
            panic!("expected authenticated")
        };
        assert_eq!(cookies.len(), 4);
        for c in &cookies {
            assert_eq!(sk.open(c), Some(keys.clone()));
        }
        // Case 18: another UID, or a wrong S2C key, is rejected.
        assert_eq!(
            check_response(&resp, &[8; UID_LEN], &keys).unwrap_err(),
            NtsClientError::UniqueIdentifier
        );
        let wrong = SessionKeys {
            c2s: [5; 32],
            s2c: [7; 32],
        };
        assert_eq!(
            check_response(&resp, &uid, &wrong).unwrap_err(),
            NtsClientError::Authenticator
        );
        // Case 22: the fields stripped → rejected.
        assert_eq!(
            check_response(&resp[..48], &uid, &keys).unwrap_err(),
            NtsClientError::UniqueIdentifier
        );
    }

    #[test]
    fn case21_nak_with_our_uid_is_reported() {
        let mut rng = StdRng::seed_from_u64(2);
        let sk = ServerKeys::generate(&mut rng, 0.0, 10.0);
        let keys = SessionKeys {
            c2s: [5; 32],
            s2c: [6; 32],
        };
        let mut cookie = sk.seal(&keys, &mut rng);
        cookie[40] ^= 1;
        let mut s = server(sk);
        let uid = [3u8; UID_LEN];
        let mut req = [0u8; 1200];
        let n = build_request(&mut req, &header(), &uid, &cookie, 0, &keys, &[1; 16]).unwrap();
        let resp = exchange(&mut s, &req[..n]);
        assert!(matches!(
            check_response(&resp, &uid, &keys),
            Ok(NtsResponse::Nak)
        ));
        assert_eq!(
            check_response(&resp, &[4; UID_LEN], &keys).unwrap_err(),
            NtsClientError::UniqueIdentifier
        );
    }
}
