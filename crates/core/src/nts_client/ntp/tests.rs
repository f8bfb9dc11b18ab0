//! Client-side NTS extension fields: request layout and response checks (catalogue cases
//! 18–22, 32).

use gnomon_wire::extension::encode_extension_field_min;
use gnomon_wire::nts::FIELD_NTS_COOKIE_PLACEHOLDER;
use gnomon_wire::{LeapIndicator, Mode, NtpTimestamp};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

fn keys() -> SessionKeys {
    SessionKeys {
        c2s: [0x5a; 32],
        s2c: [0xa5; 32],
    }
}

fn session(cookies: usize) -> NtsSession {
    let c: Vec<Vec<u8>> = (0..cookies).map(|i| vec![i as u8 + 1; 100]).collect();
    NtsSession::new(keys(), &c)
}

fn header() -> [u8; Header::LEN] {
    Header {
        leap: LeapIndicator::NoWarning,
        version: 4,
        mode: Mode::Server,
        stratum: 2,
        transmit_timestamp: NtpTimestamp(0x1234),
        ..Header::default()
    }
    .to_bytes()
}

fn field(t: u16, v: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; v.len() + 64];
    let n = encode_extension_field_min(&mut b, t, v, 16).unwrap();
    b.truncate(n);
    b
}

/// Builds a response: header, `fields` in clear, then an Authenticator over them sealing
/// `encrypted` with `key`, then `after`.
fn response(fields: &[Vec<u8>], encrypted: &[u8], key: &[u8; 32], after: &[Vec<u8>]) -> Vec<u8> {
    let mut p = header().to_vec();
    for f in fields {
        p.extend_from_slice(f);
    }
    let nonce = [9u8; 16];
    let ct = Aes128Siv::new(key.into())
        .encrypt([&p[..], &nonce[..]], encrypted)
        .unwrap();
    let mut a = vec![0u8; ct.len() + 64];
    let n = encode_nts_authenticator(&mut a, &nonce, &ct, usize::MAX).unwrap();
    p.extend_from_slice(&a[..n]);
    for f in after {
        p.extend_from_slice(f);
    }
    p
}

fn cookie_fields(n: usize, len: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| field(FIELD_NTS_COOKIE, &vec![0x70 + i as u8; len]))
        .collect()
}

fn request(s: &mut NtsSession) -> (Vec<u8>, [u8; UID_LEN]) {
    let mut rng = StdRng::seed_from_u64(1);
    s.build_request(&header(), &mut rng).unwrap()
}

#[test]
fn request_has_fresh_uid_one_cookie_placeholders_and_a_last_authenticator() {
    let mut s = session(3);
    let mut rng = StdRng::seed_from_u64(4);
    let (req, uid) = s.build_request(&header(), &mut rng).unwrap();
    let (_, uid2) = s.build_request(&header(), &mut rng).unwrap();
    assert_ne!(uid, uid2, "fresh per request");
    let p = Packet::decode(&req).unwrap();
    let types: Vec<u16> = p.extensions.iter().map(|f| f.field_type).collect();
    // 3 cookies: one used, two left, so five placeholders to come back to eight.
    assert_eq!(types[0], FIELD_NTS_UNIQUE_IDENTIFIER);
    assert_eq!(types[1], FIELD_NTS_COOKIE);
    assert_eq!(
        types[2..7],
        [FIELD_NTS_COOKIE_PLACEHOLDER; 5],
        "placeholders"
    );
    assert_eq!(types[7], FIELD_NTS_AUTHENTICATOR);
    assert_eq!(types.len(), 8);
    let u = p.extensions.find(FIELD_NTS_UNIQUE_IDENTIFIER).unwrap();
    assert_eq!(u.value, uid);
    for f in p.extensions.iter() {
        if f.field_type == FIELD_NTS_COOKIE_PLACEHOLDER {
            assert_eq!(f.value.len(), 100);
        }
    }
    // The Authenticator verifies with C2S over everything before it.
    let auth_at = req.len() - p.extensions.iter().last().unwrap().wire_len();
    let a = NtsAuthenticator::decode(p.extensions.iter().last().unwrap().value).unwrap();
    assert_eq!(a.nonce.len(), 16);
    assert!(Aes128Siv::new(&keys().c2s.into())
        .decrypt([&req[..auth_at], a.nonce], a.ciphertext)
        .is_ok());
    assert_eq!(s.jar().len(), 1);
    s.build_request(&header(), &mut rng).unwrap();
    assert!(s.build_request(&header(), &mut rng).is_none(), "jar empty");
}

#[test]
fn authentic_response_stores_the_encrypted_cookies() {
    let mut s = session(2);
    let (_, uid) = request(&mut s);
    let r = response(
        &[field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid)],
        &cookie_fields(3, 100),
        &keys().s2c,
        &[],
    );
    assert_eq!(s.check_response(&r, &uid), NtsCheck::Authentic(3));
    assert_eq!(s.jar().len(), 4);
}

#[test]
fn case18_unique_identifier_checks() {
    let mut s = session(2);
    let (_, uid) = request(&mut s);
    let mut other = uid;
    other[7] ^= 1;
    let cases = [
        vec![],
        vec![field(FIELD_NTS_UNIQUE_IDENTIFIER, &other)],
        vec![field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid[..31])],
        vec![
            field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid),
            field(FIELD_NTS_UNIQUE_IDENTIFIER, &other),
        ],
        vec![
            field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid),
            field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid),
        ],
    ];
    for fields in cases {
        let r = response(&fields, &cookie_fields(1, 100), &keys().s2c, &[]);
        assert_eq!(
            s.check_response(&r, &uid),
            NtsCheck::Rejected(NtsRejection::UniqueIdentifier)
        );
    }
    assert_eq!(s.jar().len(), 1, "nothing stored");
}

#[test]
fn case19_extension_field_order_and_content() {
    let mut s = session(2);
    let (_, uid) = request(&mut s);
    let uidf = field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid);
    // Authenticator not last.
    let r = response(
        std::slice::from_ref(&uidf),
        &cookie_fields(1, 100),
        &keys().s2c,
        &[field(0x5000, &[0; 28])],
    );
    assert_eq!(
        s.check_response(&r, &uid),
        NtsCheck::Rejected(NtsRejection::AuthenticatorPlacement)
    );
    // A MAC after it.
    let mut r = response(
        std::slice::from_ref(&uidf),
        &cookie_fields(1, 100),
        &keys().s2c,
        &[],
    );
    r.extend_from_slice(&[0, 0, 0, 1]);
    r.extend_from_slice(&[0; 16]);
    assert!(matches!(s.check_response(&r, &uid), NtsCheck::Rejected(_)));
    // No Authenticator.
    let mut r = header().to_vec();
    r.extend_from_slice(&uidf);
    assert_eq!(
        s.check_response(&r, &uid),
        NtsCheck::Rejected(NtsRejection::AuthenticatorPlacement)
    );
    // Plaintext cookie outside the encrypted part: ignored, not stored.
    let r = response(
        &[uidf.clone(), field(FIELD_NTS_COOKIE, &[0xEE; 100])],
        &[],
        &keys().s2c,
        &[],
    );
    assert_eq!(s.check_response(&r, &uid), NtsCheck::Authentic(0));
    assert_eq!(s.jar().len(), 1);
    // Wrong key (= wrong tag or another AEAD's output), wrong nonce, flipped tag.
    let r = response(
        std::slice::from_ref(&uidf),
        &cookie_fields(1, 100),
        &keys().c2s,
        &[],
    );
    assert_eq!(
        s.check_response(&r, &uid),
        NtsCheck::Rejected(NtsRejection::Authenticator)
    );
    let good = response(
        std::slice::from_ref(&uidf),
        &cookie_fields(1, 100),
        &keys().s2c,
        &[],
    );
    let auth_at = Header::LEN + uidf.len();
    for off in [auth_at + 8, auth_at + 8 + 16, good.len() - 4] {
        let mut r = good.clone();
        r[off] ^= 0x80;
        assert!(
            matches!(s.check_response(&r, &uid), NtsCheck::Rejected(_)),
            "offset {off}"
        );
    }
    // The header is covered too.
    let mut r = good.clone();
    r[47] ^= 1;
    assert_eq!(
        s.check_response(&r, &uid),
        NtsCheck::Rejected(NtsRejection::Authenticator)
    );
    assert_eq!(s.jar().len(), 1);
}

#[test]
fn case20_hostile_encrypted_cookies() {
    let mut s = session(2);
    let (_, uid) = request(&mut s);
    let uidf = field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid);
    // An NTP extension field's value is its whole padded body, so short cookies arrive padded
    // to a multiple of 4 (the NTS-KE side sees exact lengths: ke tests); cookies longer than
    // 256 octets are discarded.
    let mut enc = Vec::new();
    for len in [257usize, 400] {
        enc.extend(field(FIELD_NTS_COOKIE, &vec![3; len]));
    }
    let r = response(std::slice::from_ref(&uidf), &enc, &keys().s2c, &[]);
    assert_eq!(s.check_response(&r, &uid), NtsCheck::Authentic(0));
    // 4096 octets cannot fit an NTP packet (1024 octets of fields at most): rejected whole.
    let big = field(FIELD_NTS_COOKIE, &[3; 4096]);
    let r = response(std::slice::from_ref(&uidf), &big, &keys().s2c, &[]);
    assert_eq!(
        s.check_response(&r, &uid),
        NtsCheck::Rejected(NtsRejection::Malformed)
    );
    // Twelve cookies: the jar stops at eight.
    let r = response(&[uidf], &cookie_fields(12, 60), &keys().s2c, &[]);
    assert_eq!(s.check_response(&r, &uid), NtsCheck::Authentic(7));
    assert_eq!(s.jar().len(), 8);
    // Garbage as encrypted content.
    let mut s = session(2);
    let (_, uid) = request(&mut s);
    let r = response(
        &[field(FIELD_NTS_UNIQUE_IDENTIFIER, &uid)],
        &[1, 2, 3],
        &keys().s2c,
        &[],
    );
    assert_eq!(
        s.check_response(&r, &uid),
        NtsCheck::Rejected(NtsRejection::EncryptedFields)
    );
}

fn nak(uids: &[&[u8]]) -> Vec<u8> {
    let mut h = Header::decode(&header()).unwrap();
    h.stratum = 0;
    h.reference_id = KISS_NTSN;
    let mut p = h.to_bytes().to_vec();
    for u in uids {
        p.extend(field(FIELD_NTS_UNIQUE_IDENTIFIER, u));
    }
    p
}

#[test]
fn case21_nak_needs_exactly_our_unique_identifier() {
    let mut s = session(2);
    let (_, uid) = request(&mut s);
    let mut other = uid;
    other[0] ^= 1;
    assert_eq!(s.check_response(&nak(&[&uid]), &uid), NtsCheck::Nak);
    assert!(matches!(
        s.check_response(&nak(&[&other]), &uid),
        NtsCheck::Rejected(_)
    ));
    assert!(matches!(
        s.check_response(&nak(&[]), &uid),
        NtsCheck::Rejected(_)
    ));
    assert!(matches!(
        s.check_response(&nak(&[&uid, &other]), &uid),
        NtsCheck::Rejected(_)
    ));
}

#[test]
fn case22_response_without_nts_fields_is_stripped() {
    let mut s = session(2);
    let (_, uid) = request(&mut s);
    assert_eq!(
        s.check_response(&header(), &uid),
        NtsCheck::Rejected(NtsRejection::Stripped)
    );
    assert_eq!(
        s.check_response(&[1, 2, 3], &uid),
        NtsCheck::Rejected(NtsRejection::Malformed)
    );
}

proptest::proptest! {
    #[test]
    fn check_response_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1200)) {
        let mut s = session(2);
        let (_, uid) = request(&mut s);
        let out = s.check_response(&data, &uid);
        proptest::prop_assert!(!matches!(out, NtsCheck::Authentic(_)));
    }
}
