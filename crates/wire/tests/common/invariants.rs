//! Invariants of the decoders, checked on arbitrary input. Shared by the stable property tests
//! (`tests/properties.rs`) and the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs` include this
//! file by path), so both always check the same things.

// Each includer uses only some of the checks.
#![allow(dead_code)]

use gnomon_wire::nts_ke::{NtsKeMessage, NtsKeRecords, RECORD_END_OF_MESSAGE};
use gnomon_wire::{DecodeError, Header, NtsAuthenticator, Packet};

/// `Packet::decode` on any bytes: never panics; on success the packet accounts for every
/// input octet, re-encodes to the identical bytes and obeys the RFC 7822 / chrony layout rules;
/// on failure the error names a condition that really holds.
pub fn check_packet(buf: &[u8]) {
    match Packet::decode(buf) {
        Ok(p) => {
            assert!(buf.len() >= Header::LEN && buf.len() <= Packet::MAX_LEN);
            assert_eq!(buf.len() % 4, 0);
            assert!((1..=4).contains(&p.header.version));
            assert_eq!(Header::decode(buf), Ok(p.header));
            assert_eq!(p.wire_len(), buf.len());

            let mut out = vec![0u8; buf.len()];
            assert_eq!(p.encode(&mut out), Ok(buf.len()));
            assert_eq!(out, buf);
            assert_eq!(Packet::decode(&out), Ok(p));
            if !buf.is_empty() {
                assert!(p.encode(&mut out[..buf.len() - 1]).is_err());
            }

            let mut total = 0;
            let mut last = 0;
            for f in p.extensions.iter() {
                let len = f.wire_len();
                assert!(len >= 16 && len % 4 == 0);
                total += len;
                last = len;
            }
            assert_eq!(total, p.extensions.wire_len());
            assert_eq!(
                p.authenticated_part(buf).len(),
                Header::LEN + p.extensions.wire_len()
            );
            if p.header.version < 4 {
                assert!(p.extensions.is_empty());
                assert_eq!(p.mac.is_some(), buf.len() > Header::LEN);
            }
            if p.header.version == 4 {
                match p.mac {
                    Some(m) if m.is_crypto_nak() => assert_eq!(buf.len(), Header::LEN + 4),
                    Some(m) => assert!(m.digest.len() == 16 || m.digest.len() == 20),
                    // RFC 7822 §7.5: without a MAC the last field is at least 28 octets.
                    None if total > 0 => assert!(last >= 28),
                    None => assert_eq!(buf.len(), Header::LEN),
                }
            }
        }
        Err(DecodeError::ShortHeader { len }) => assert!(len < Header::LEN && len == buf.len()),
        Err(DecodeError::UnalignedLength { len }) => assert!(len % 4 != 0),
        Err(DecodeError::PacketTooLong { len }) => assert!(len > Packet::MAX_LEN),
        Err(DecodeError::UnsupportedVersion { version }) => {
            assert!(version == 0 || version > 4);
            assert_eq!(Header::decode(buf).map(|h| h.version), Ok(version));
        }
        Err(DecodeError::InvalidTrailer { offset })
        | Err(DecodeError::BadExtensionLength { offset, .. }) => {
            assert!(offset >= Header::LEN && offset < buf.len() && offset % 4 == 0);
        }
        Err(e) => panic!("unexpected packet error {e:?}"),
    }
    // The header alone decodes from any 48 octets and re-encodes exactly.
    if let Ok(h) = Header::decode(buf) {
        assert_eq!(&h.to_bytes()[..], &buf[..Header::LEN]);
    }
}

/// NTS-KE record decoding on any bytes: never panics; records tile the input; a decoded
/// message ends at its first End of Message record and re-encodes to the same octets.
pub fn check_nts_ke(buf: &[u8]) {
    let mut covered = 0;
    let mut first_eom_end = None;
    for item in NtsKeRecords::new(buf) {
        match item {
            Ok(r) => {
                covered += r.wire_len();
                if r.record_type == RECORD_END_OF_MESSAGE && first_eom_end.is_none() {
                    first_eom_end = Some(covered);
                }
            }
            Err(DecodeError::TruncatedRecord { offset }) => {
                assert_eq!(offset, covered);
                covered = buf.len();
            }
            Err(e) => panic!("unexpected record error {e:?}"),
        }
    }
    assert_eq!(covered, buf.len());

    match NtsKeMessage::decode(buf) {
        Ok(msg) => {
            assert_eq!(Some(msg.wire_len()), first_eom_end);
            let mut out = vec![0u8; msg.wire_len()];
            let mut n = 0;
            let mut eoms = 0;
            for r in msg.records() {
                n += r.encode(&mut out[n..]).expect("record re-encodes");
                eoms += usize::from(r.is_end_of_message());
            }
            assert_eq!(eoms, 1);
            assert_eq!(&out[..n], msg.as_bytes());
            assert_eq!(msg.as_bytes(), &buf[..msg.wire_len()]);
        }
        Err(DecodeError::NoEndOfMessage { len }) => {
            assert_eq!(len, buf.len());
            assert_eq!(first_eom_end, None);
        }
        Err(DecodeError::TruncatedRecord { .. }) => assert_eq!(first_eom_end, None),
        Err(e) => panic!("unexpected message error {e:?}"),
    }

    // The same bytes read as an NTS authenticator body.
    if let Ok(a) = NtsAuthenticator::decode(buf) {
        assert!(4 + a.nonce.len() + a.ciphertext.len() + a.additional_padding.len() <= buf.len());
        assert_eq!(
            &buf[..4],
            &[
                (a.nonce.len() >> 8) as u8,
                a.nonce.len() as u8,
                (a.ciphertext.len() >> 8) as u8,
                a.ciphertext.len() as u8
            ]
        );
    }
}
