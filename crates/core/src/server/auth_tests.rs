//! Authenticated requests: symmetric keys (behaviour measured against chronyd 4.3 on loopback:
//! same key and digest length in the answer; unknown key, wrong digest, wrong digest length,
//! crypto-NAK → no answer) and NTS (RFC 8915 §5, catalogue cases 23, 24 and 33).

use std::net::SocketAddr;

use aes_siv::siv::Aes128Siv;
use aes_siv::KeyInit;
use gnomon_wire::extension::{encode_extension_field, ExtensionFields};
use gnomon_wire::nts::{
    NtsAuthenticator, FIELD_NTS_AUTHENTICATOR, FIELD_NTS_COOKIE, FIELD_NTS_COOKIE_PLACEHOLDER,
    FIELD_NTS_UNIQUE_IDENTIFIER,
};
use gnomon_wire::{
    encode_nts_authenticator, Header, LeapIndicator, Mode, NtpShort, NtpTimestamp, Packet,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::auth::KeyStore;
use crate::nts::{ServerKeys, SessionKeys, COOKIE_LEN};

const RX: NtpTimestamp = NtpTimestamp(0xEEAA_0000_1234_5678);

fn from() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn reference() -> ReferenceInfo {
    ReferenceInfo::local(10, NtpTimestamp(0xEEAA_0000_0000_0000), -25)
}

const KEYS: &str = "\
1 MD5 HEX:00112233445566778899AABBCCDDEEFF
2 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
3 AES128 HEX:7EA62AE64D190114D46D5A082F948EC1
4 SHA512 ASCII:secretsecret
";

fn server() -> Server {
    let mut s = Server::new(super::tests::allow_all_config(), 3).unwrap();
    s.set_keys(KeyStore::parse(KEYS).0);
    s
}

fn header(version: u8, tx: u64) -> Vec<u8> {
    Header {
        leap: LeapIndicator::NoWarning,
        version,
        mode: Mode::Client,
        stratum: 0,
        poll: 6,
        precision: -20,
        root_delay: NtpShort(0),
        root_dispersion: NtpShort(0),
        reference_id: 0,
        reference_timestamp: NtpTimestamp::ZERO,
        origin_timestamp: NtpTimestamp::ZERO,
        receive_timestamp: NtpTimestamp::ZERO,
        transmit_timestamp: NtpTimestamp(tx),
    }
    .to_bytes()
    .to_vec()
}

fn signed(version: u8, id: u32) -> Vec<u8> {
    let mut p = header(version, 0x1111_2222_3333_4444);
    let key = server().keys().get(id).unwrap().clone();
    let mut d = [0u8; 64];
    let n = key.sign(&p, version, &mut d);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&d[..n]);
    p
}

fn handle(s: &mut Server, req: &[u8], out: &mut [u8]) -> Reply {
    s.handle_request(req, from(), RX, 1.0, &reference(), out)
}

#[test]
fn mac_request_is_answered_with_the_same_key_and_length() {
    for (version, id, digest) in [
        (4, 1, 16),
        (4, 2, 20),
        (4, 3, 16),
        (4, 4, 20),
        (3, 2, 32),
        (3, 4, 64),
    ] {
        let mut s = server();
        let req = signed(version, id);
        let mut out = [0u8; 1200];
        let reply = handle(&mut s, &req, &mut out);
        assert_eq!(reply, Reply::Send { len: req.len() }, "v{version} key {id}");
        let resp = &out[..req.len()];
        let p = Packet::decode(resp).unwrap();
        let mac = p.mac.unwrap();
        assert_eq!((mac.key_id, mac.digest.len()), (id, digest));
        assert!(s
            .keys()
            .get(id)
            .unwrap()
            .verify(&resp[..48], version, mac.digest));
        assert_eq!(
            p.header.origin_timestamp,
            NtpTimestamp(0x1111_2222_3333_4444)
        );
        assert_eq!(s.stats().ntp_authenticated, 1);
    }
}

#[test]
fn unknown_key_wrong_digest_and_wrong_length_are_dropped() {
    let mut s = server();
    let mut out = [0u8; 1200];
    let mut unknown = signed(4, 1);
    unknown[48..52].copy_from_slice(&9u32.to_be_bytes());
    let mut wrong = signed(4, 1);
    wrong[60] ^= 1;
    // SHA512 with the full 64 octets in NTPv3 is right; with 20 it is not.
    let mut short = signed(3, 4);
    short.truncate(48 + 4 + 20);
    let mut nak = header(4, 1);
    nak.extend_from_slice(&[0; 4]);
    let mut mssntp = header(3, 1);
    mssntp.extend_from_slice(&1u32.to_be_bytes());
    mssntp.extend_from_slice(&[0; 16]);
    for req in [&unknown, &wrong, &short, &nak, &mssntp] {
        assert_eq!(
            handle(&mut s, req, &mut out),
            Reply::Drop(DropReason::Unauthenticated)
        );
    }
    assert_eq!(s.stats().auth_failed, 5);
    assert_eq!(s.stats().ntp_authenticated, 0);
}

#[test]
fn finalize_patches_transmit_and_recomputes_the_mac() {
    let mut s = server();
    let req = signed(4, 2);
    let mut out = [0u8; 1200];
    let Reply::Send { len } = handle(&mut s, &req, &mut out) else {
        panic!()
    };
    let tx = NtpTimestamp(0xEEAA_0000_5555_0000);
    let mut plain_patch = out[..len].to_vec();
    finalize_transmit(&mut plain_patch, tx);
    assert_eq!(
        plain_patch,
        &out[..len],
        "finalize_transmit leaves MAC'd replies alone"
    );
    s.finalize(&mut out[..len], tx);
    let p = Packet::decode(&out[..len]).unwrap();
    assert_eq!(p.header.transmit_timestamp, tx);
    assert!(s
        .keys()
        .get(2)
        .unwrap()
        .verify(&out[..48], 4, p.mac.unwrap().digest));
}

#[test]
fn small_response_buffer_drops_authenticated_reply() {
    let mut s = server();
    let mut out = [0u8; 60];
    assert_eq!(
        handle(&mut s, &signed(4, 2), &mut out),
        Reply::Drop(DropReason::ResponseBuffer)
    );
}

// ---- NTS ----

fn session() -> SessionKeys {
    SessionKeys {
        c2s: [0x11; 32],
        s2c: [0x22; 32],
    }
}

fn nts_server(rng: &mut StdRng) -> Server {
    let mut s = server();
    s.set_nts_keys(Some(ServerKeys::generate(rng, 0.0, 100.0)));
    s
}

fn field(t: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 4 + body.len().next_multiple_of(4).max(12)];
    let n = encode_extension_field(&mut out, t, body).unwrap();
    out.truncate(n);
    out
}

struct NtsReq {
    /// Origin and receive fields of the header (0: none, as chrony's client sends).
    origin: u64,
    receive: u64,
    uid: Vec<u8>,
    cookie: Vec<u8>,
    placeholders: Vec<usize>,
    extra_cookie: bool,
    with_uid: bool,
    with_auth: bool,
    c2s: [u8; 32],
}

impl NtsReq {
    fn new(cookie: Vec<u8>) -> NtsReq {
        NtsReq {
            origin: 0,
            receive: 0,
            uid: (0..32).collect(),
            cookie,
            placeholders: vec![],
            extra_cookie: false,
            with_uid: true,
            with_auth: true,
            c2s: session().c2s,
        }
    }

    fn build(&self) -> Vec<u8> {
        let mut p = header(4, 0x0102_0304_0506_0708);
        p[24..32].copy_from_slice(&self.origin.to_be_bytes());
        p[32..40].copy_from_slice(&self.receive.to_be_bytes());
        if self.with_uid {
            p.extend(field(FIELD_NTS_UNIQUE_IDENTIFIER, &self.uid));
        }
        p.extend(field(FIELD_NTS_COOKIE, &self.cookie));
        if self.extra_cookie {
            p.extend(field(FIELD_NTS_COOKIE, &self.cookie));
        }
        for &len in &self.placeholders {
            p.extend(field(FIELD_NTS_COOKIE_PLACEHOLDER, &vec![0; len]));
        }
        if self.with_auth {
            let nonce = [7u8; 16];
            let ct = Aes128Siv::new(&self.c2s.into())
                .encrypt([&p[..], &nonce[..]], &[])
                .unwrap();
            let mut f = [0u8; 64];
            let n = encode_nts_authenticator(&mut f, &nonce, &ct, usize::MAX).unwrap();
            p.extend_from_slice(&f[..n]);
        }
        p
    }
}

/// Checks a served NTS response and returns the cookies it carries.
fn open_response(resp: &[u8], req: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(
        resp.len(),
        req.len(),
        "response exactly as long as the request"
    );
    let p = Packet::decode(resp).unwrap();
    let fields: Vec<_> = p.extensions.iter().collect();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0].field_type, FIELD_NTS_UNIQUE_IDENTIFIER);
    assert_eq!(&fields[0].value[..32], &(0..32).collect::<Vec<u8>>()[..]);
    assert_eq!(fields[1].field_type, FIELD_NTS_AUTHENTICATOR);
    let a = NtsAuthenticator::decode(fields[1].value).unwrap();
    let auth_start = 48 + fields[0].wire_len();
    let plain = Aes128Siv::new(&session().s2c.into())
        .decrypt([&resp[..auth_start], a.nonce], a.ciphertext)
        .unwrap();
    let inner = ExtensionFields::parse(&plain).unwrap();
    inner
        .iter()
        .map(|f| {
            assert_eq!(f.field_type, FIELD_NTS_COOKIE);
            f.value.to_vec()
        })
        .collect()
}

#[test]
fn nts_request_is_answered_with_fresh_cookies_sealing_the_same_keys() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut s = nts_server(&mut rng);
    let cookie = s.nts_keys().unwrap().seal(&session(), &mut rng);
    let req = NtsReq::new(cookie.to_vec()).build();
    let mut out = [0u8; 1200];
    assert_eq!(
        handle(&mut s, &req, &mut out),
        Reply::Send { len: req.len() }
    );
    let cookies = open_response(&out[..req.len()], &req);
    assert_eq!(cookies.len(), 1);
    assert_ne!(cookies[0], cookie.to_vec());
    assert_eq!(s.nts_keys().unwrap().open(&cookies[0]), Some(session()));
    assert_eq!(s.stats().ntp_authenticated, 1);
    // The daemon's finalize leaves a sealed NTS response alone.
    let before = out;
    s.finalize(&mut out[..req.len()], NtpTimestamp(5));
    assert_eq!(out, before);
}

#[test]
fn nts_client_echoing_the_sealed_transmit_time_is_answered_in_basic_mode() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut s = nts_server(&mut rng);
    let serve = |s: &mut Server, rng: &mut StdRng, origin: u64, receive: u64| {
        let cookie = s.nts_keys().unwrap().seal(&session(), rng);
        let mut req = NtsReq::new(cookie.to_vec());
        (req.origin, req.receive) = (origin, receive);
        let req = req.build();
        let mut out = [0u8; 1200];
        let served = s.serve(&req, from(), RX, 1.0, &reference(), &mut out);
        assert_eq!(served.reply, Reply::Send { len: req.len() });
        assert!(!served.capture);
        Header::decode(&out[..48]).unwrap()
    };
    let first = serve(&mut s, &mut rng, 0, 0);
    // A sealed reply's transmit time is its receive time.
    assert_eq!(first.transmit_timestamp, first.receive_timestamp);
    // An RFC 5905 client's next request: origin = that transmit time, receive = its own.
    let second = serve(
        &mut s,
        &mut rng,
        first.transmit_timestamp.0,
        0x0BAD_CAFE_0000_0001,
    );
    assert_eq!(second.origin_timestamp, NtpTimestamp(0x0102_0304_0506_0708));
    assert_eq!(s.stats().ntp_interleaved, 0);
}

/// Catalogue case 24: cookies = min(1 + valid placeholders, 8), response length == request
/// length, a placeholder of the wrong length drops the request, 50 placeholders do not fit
/// an NTP packet at all.
#[test]
fn case24_placeholder_amplification() {
    let mut rng = StdRng::seed_from_u64(2);
    for (k, want) in [(0, 1), (1, 2), (7, 8), (8, 8)] {
        let mut s = nts_server(&mut rng);
        let cookie = s.nts_keys().unwrap().seal(&session(), &mut rng);
        let mut r = NtsReq::new(cookie.to_vec());
        r.placeholders = vec![COOKIE_LEN; k];
        let req = r.build();
        let mut out = [0u8; 1200];
        assert_eq!(
            handle(&mut s, &req, &mut out),
            Reply::Send { len: req.len() },
            "k={k}"
        );
        assert_eq!(open_response(&out[..req.len()], &req).len(), want, "k={k}");
    }
    let mut s = nts_server(&mut rng);
    let cookie = s.nts_keys().unwrap().seal(&session(), &mut rng);
    let mut out = [0u8; 1200];
    for bad in [COOKIE_LEN - 4, COOKIE_LEN + 4, 12] {
        let mut r = NtsReq::new(cookie.to_vec());
        r.placeholders = vec![COOKIE_LEN, bad];
        assert_eq!(
            handle(&mut s, &r.build(), &mut out),
            Reply::Drop(DropReason::Unauthenticated)
        );
    }
    let mut r = NtsReq::new(cookie.to_vec());
    r.placeholders = vec![COOKIE_LEN; 50];
    assert_eq!(
        handle(&mut s, &r.build(), &mut out),
        Reply::Drop(DropReason::BadLength)
    );
}

fn assert_nak(resp: &[u8], req: &[u8]) {
    assert!(resp.len() <= req.len());
    let p = Packet::decode(resp).unwrap();
    assert_eq!(p.header.stratum, 0);
    assert_eq!(p.header.reference_id, u32::from_be_bytes(*b"NTSN"));
    assert_eq!(
        p.header.origin_timestamp,
        NtpTimestamp(0x0102_0304_0506_0708)
    );
    let fields: Vec<_> = p.extensions.iter().collect();
    assert_eq!(fields.len(), 1, "the UID only");
    assert_eq!(fields[0].field_type, FIELD_NTS_UNIQUE_IDENTIFIER);
    assert_eq!(&fields[0].value[..32], &(0..32).collect::<Vec<u8>>()[..]);
    assert!(p.mac.is_none());
}

/// Catalogue case 23: undecryptable, rotated-out and truncated cookies get an NTS NAK with
/// the UID echoed and nothing else; two cookies, no UID or no Authenticator are dropped.
#[test]
fn case23_bad_cookies_get_nak_or_drop() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut s = nts_server(&mut rng);
    let good = s.nts_keys().unwrap().seal(&session(), &mut rng).to_vec();
    let mut out = [0u8; 1200];

    let mut flipped = good.clone();
    flipped[50] ^= 1;
    let truncated = good[..96].to_vec();
    let mut keys = s.nts_keys().unwrap().clone();
    for t in 1..=4 {
        keys.rotate(&mut rng, f64::from(t) * 100.0);
    }
    let mut rotated_server = nts_server(&mut rng);
    rotated_server.set_nts_keys(Some(keys));
    for cookie in [&flipped, &truncated] {
        let req = NtsReq::new(cookie.clone()).build();
        let Reply::Kod { len } = handle(&mut s, &req, &mut out) else {
            panic!("expected NAK")
        };
        assert_nak(&out[..len], &req);
    }
    let req = NtsReq::new(good.clone()).build();
    let Reply::Kod { len } = handle(&mut rotated_server, &req, &mut out) else {
        panic!("expected NAK for a rotated-out key")
    };
    assert_nak(&out[..len], &req);

    // A wrong C2S key (authenticator fails) is also answered with a NAK (RFC 8915 §5.7).
    let mut r = NtsReq::new(good.clone());
    r.c2s = [0x33; 32];
    let req = r.build();
    let Reply::Kod { len } = handle(&mut s, &req, &mut out) else {
        panic!("expected NAK for a bad authenticator")
    };
    assert_nak(&out[..len], &req);

    for edit in [
        |r: &mut NtsReq| r.extra_cookie = true,
        |r: &mut NtsReq| r.with_uid = false,
        |r: &mut NtsReq| r.with_auth = false,
        // A 31-octet UID pads to 32 and cannot be told apart on the wire; 28 can.
        |r: &mut NtsReq| r.uid = vec![1; 28],
    ] {
        let mut r = NtsReq::new(good.clone());
        edit(&mut r);
        assert_eq!(
            handle(&mut s, &r.build(), &mut out),
            Reply::Drop(DropReason::Unauthenticated)
        );
    }
}

#[test]
fn nts_fields_without_nts_keys_are_not_served() {
    let mut rng = StdRng::seed_from_u64(4);
    let keys = ServerKeys::generate(&mut rng, 0.0, 1.0);
    let req = NtsReq::new(keys.seal(&session(), &mut rng).to_vec()).build();
    let mut s = server();
    let mut out = [0u8; 1200];
    assert_eq!(
        handle(&mut s, &req, &mut out),
        Reply::Drop(DropReason::NtsNotServed)
    );
}

proptest! {
    /// Catalogue case 33 for NTS: any mutation of a valid NTS request gives at most one
    /// response no longer than the request, and no panic.
    #[test]
    fn case33_mutated_nts_requests_never_amplify(
        placeholders in 0usize..9,
        flips in proptest::collection::vec((0usize..1200, any::<u8>()), 0..4),
        cut in 0usize..64,
    ) {
        let mut rng = StdRng::seed_from_u64(5);
        let mut s = nts_server(&mut rng);
        let cookie = s.nts_keys().unwrap().seal(&session(), &mut rng);
        let mut r = NtsReq::new(cookie.to_vec());
        r.placeholders = vec![COOKIE_LEN; placeholders];
        let mut req = r.build();
        for (at, x) in flips {
            let i = at % req.len();
            req[i] ^= x;
        }
        let keep = req.len() - (cut * 4).min(req.len() - 48);
        req.truncate(keep);
        let mut out = vec![0u8; req.len()];
        match handle(&mut s, &req, &mut out) {
            Reply::Send { len } | Reply::Kod { len } => prop_assert!(len <= req.len()),
            Reply::Drop(_) => {}
        }
    }

    #[test]
    fn random_trailers_with_keys_never_amplify(body in proptest::collection::vec(any::<u8>(), 0..200), v in 1u8..5) {
        let mut s = server();
        let mut req = header(v, 9);
        req.extend_from_slice(&body[..body.len() / 4 * 4]);
        let mut out = vec![0u8; req.len()];
        match handle(&mut s, &req, &mut out) {
            Reply::Send { len } | Reply::Kod { len } => prop_assert!(len <= req.len()),
            Reply::Drop(_) => {}
        }
    }
}

/// chronyd 4.3 loads key ID 0 and answers a request MAC'd with it (measured); only the
/// 4-octet trailer without a digest is a crypto-NAK.
#[test]
fn key_id_zero_works_like_any_other_key() {
    let mut s = server();
    s.set_keys(KeyStore::parse("0 MD5 HEX:00112233445566778899AABBCCDDEEFF\n").0);
    let mut req = header(4, 5);
    let mut d = [0u8; 64];
    let n = s.keys().get(0).unwrap().sign(&req, 4, &mut d);
    req.extend_from_slice(&0u32.to_be_bytes());
    req.extend_from_slice(&d[..n]);
    let mut out = [0u8; 200];
    assert_eq!(handle(&mut s, &req, &mut out), Reply::Send { len: 68 });
    let mut nak = header(4, 5);
    nak.extend_from_slice(&[0; 4]);
    assert_eq!(
        handle(&mut s, &nak, &mut out),
        Reply::Drop(DropReason::Unauthenticated)
    );
}
