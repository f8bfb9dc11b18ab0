//! Authentication of associations: symmetric keys (catalogue cases 12–15) and NTS (cases
//! 15, 21, 22, 32), against the server module of this crate.

use super::*;
use crate::auth::{Key, KeyStore, KeyType, MAX_DIGEST_LEN};
use crate::nts::{ServerKeys, SessionKeys};
use crate::nts_client::{NtsKeOutcome, NtsSource, MIN_KE_BACKOFF};
use crate::server::{ReferenceInfo, Reply, Server, ServerConfig};
use gnomon_wire::Packet;
use rand::rngs::StdRng;
use rand::SeedableRng;

const T0: f64 = 1_780_000_000.0;

const KEYS: &str = "\
1 MD5 HEX:00112233445566778899AABBCCDDEEFF
2 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233
3 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
";

fn keys() -> KeyStore {
    KeyStore::parse(KEYS).0
}

fn remote() -> SocketAddr {
    "127.0.0.1:123".parse().unwrap()
}

fn keyed(kind: SourceKind, id: u32) -> Association {
    let cfg = SourceConfig {
        kind,
        ..SourceConfig::default()
    };
    let mut a = Association::new(remote(), cfg, T0, 7);
    a.set_auth(AuthState::Symmetric {
        id,
        key: keys().get(id).cloned(),
    });
    a
}

fn send(a: &mut Association) -> (Transmit, f64) {
    let t = a.next_timeout().unwrap();
    (a.on_timer(t, t).expect("request due"), t)
}

/// A server reply header to `req` (server 0.1 s ahead, 10 ms each way).
fn reply_header(req: &[u8], t1: f64, mode: Mode) -> (Vec<u8>, f64) {
    let q = Header::decode(req).unwrap();
    let t2 = t1 + 0.01 + 0.1;
    let t3 = t2 + 1e-5;
    let h = Header {
        leap: LeapIndicator::NoWarning,
        version: q.version,
        mode,
        stratum: 2,
        poll: q.poll,
        precision: -20,
        root_delay: NtpShort::from_seconds(0.001),
        root_dispersion: NtpShort::from_seconds(1e-4),
        reference_id: 0x0A00_0001,
        reference_timestamp: NtpTimestamp::from_unix_f64(t2 - 10.0),
        origin_timestamp: q.transmit_timestamp,
        receive_timestamp: NtpTimestamp::from_unix_f64(t2),
        transmit_timestamp: NtpTimestamp::from_unix_f64(t3),
    };
    (h.to_bytes().to_vec(), t3 - 0.1 + 0.01)
}

fn sign(mut p: Vec<u8>, key: &Key, id: u32) -> Vec<u8> {
    let mut d = [0u8; MAX_DIGEST_LEN];
    let n = key.sign(&p, 4, &mut d);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&d[..n]);
    p
}

#[test]
fn keyed_request_carries_a_mac_the_server_verifies() {
    let mut a = keyed(SourceKind::Server, 3);
    let (tx, _) = send(&mut a);
    let bytes = tx.bytes();
    let p = Packet::decode(&bytes).unwrap();
    let mac = p.mac.unwrap();
    assert_eq!(mac.key_id, 3);
    // SHA256 truncated to 20 octets in NTPv4.
    assert_eq!(mac.digest.len(), 20);
    let key = keys().get(3).unwrap().clone();
    assert!(key.verify(p.authenticated_part(&bytes), 4, mac.digest));
}

#[test]
fn missing_key_sends_nothing() {
    let mut a = keyed(SourceKind::Server, 9);
    let t = a.next_timeout().unwrap();
    assert!(a.on_timer(t, t).is_none());
}

#[test]
fn case12_corrupted_mac_leaves_the_association_unchanged() {
    for id in [1u32, 2, 3] {
        let key = keys().get(id).unwrap().clone();
        let mut a = keyed(SourceKind::Server, id);
        let (tx, t1) = send(&mut a);
        let (h, rx) = reply_header(&tx.payload, t1, Mode::Server);
        let good = sign(h, &key, id);
        let mut bad = Vec::new();
        // Every digest octet flipped in turn.
        for i in 52..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x01;
            bad.push(b);
        }
        // Another key ID.
        let mut b = good.clone();
        b[48..52].copy_from_slice(&(id + 10).to_be_bytes());
        bad.push(b);
        // Digest truncated to 4·k octets.
        for k in 0..(good.len() - 52) / 4 {
            bad.push(good[..52 + 4 * k].to_vec());
        }
        // No MAC, crypto-NAK.
        bad.push(good[..48].to_vec());
        let mut nak = good[..48].to_vec();
        nak.extend_from_slice(&[0; 4]);
        bad.push(nak);
        for b in &bad {
            let before = format!("{:?}", (a.pending, a.last_rx_xmt, a.reach, a.stats.len()));
            assert_eq!(
                a.on_packet(rx, b, None, true),
                RxOutcome::Rejected(Rejection::AuthFailed)
            );
            let after = format!("{:?}", (a.pending, a.last_rx_xmt, a.reach, a.stats.len()));
            assert_eq!(before, after);
        }
        assert_eq!(a.rejected(Rejection::AuthFailed), bad.len() as u64);
        // The genuine reply still works afterwards.
        assert!(matches!(
            a.on_packet(rx, &good, None, false),
            RxOutcome::Sample(_)
        ));
    }
}

#[test]
fn case13_reply_signed_with_another_known_key_is_rejected() {
    for kind in [SourceKind::Server, SourceKind::Peer] {
        let mut a = keyed(kind, 1);
        let (tx, t1) = send(&mut a);
        let mode = if kind == SourceKind::Peer {
            Mode::SymmetricPassive
        } else {
            Mode::Server
        };
        let (h, rx) = reply_header(&tx.payload, t1, mode);
        let other = keys().get(2).unwrap().clone();
        let skeleton = sign(h.clone(), &other, 2);
        assert_eq!(
            a.on_packet(rx, &skeleton, None, true),
            RxOutcome::Rejected(Rejection::AuthFailed)
        );
        let own = keys().get(1).unwrap().clone();
        assert!(matches!(
            a.on_packet(rx, &sign(h, &own, 1), None, false),
            RxOutcome::Sample(_)
        ));
    }
}

#[test]
fn case14_unauthenticated_spoof_does_not_touch_a_keyed_peer() {
    let mut a = keyed(SourceKind::Peer, 1);
    let (tx, t1) = send(&mut a);
    let (h, rx) = reply_header(&tx.payload, t1, Mode::SymmetricActive);
    let before = (a.peer_org, a.peer_rec, a.pending.map(|p| p.wire_tx));
    for i in 0..20u64 {
        let mut spoof = Header::decode(&h).unwrap();
        spoof.transmit_timestamp = NtpTimestamp(0x1234_5678_0000_0000 + i);
        spoof.origin_timestamp = NtpTimestamp(i);
        assert_eq!(
            a.on_packet(rx, &spoof.to_bytes(), None, true),
            RxOutcome::Rejected(Rejection::AuthFailed)
        );
    }
    assert_eq!(
        before,
        (a.peer_org, a.peer_rec, a.pending.map(|p| p.wire_tx))
    );
    let own = keys().get(1).unwrap().clone();
    assert!(matches!(
        a.on_packet(rx, &sign(h, &own, 1), None, false),
        RxOutcome::Sample(_)
    ));
}

#[test]
fn case15_replayed_authenticated_reply_is_rejected() {
    let key = keys().get(1).unwrap().clone();
    let mut a = keyed(SourceKind::Server, 1);
    let (tx, t1) = send(&mut a);
    let (h, rx) = reply_header(&tx.payload, t1, Mode::Server);
    let r = sign(h, &key, 1);
    assert!(matches!(
        a.on_packet(rx, &r, None, false),
        RxOutcome::Sample(_)
    ));
    assert!(matches!(
        a.on_packet(rx + 1.0, &r, None, false),
        RxOutcome::Rejected(Rejection::Duplicate | Rejection::Bogus)
    ));
    send(&mut a);
    assert!(matches!(
        a.on_packet(rx + 70.0, &r, None, false),
        RxOutcome::Rejected(Rejection::Duplicate | Rejection::Bogus)
    ));
}

// ---- NTS ----

struct NtsWorld {
    server: Server,
    rng: StdRng,
    session: SessionKeys,
}

impl NtsWorld {
    fn new() -> NtsWorld {
        let mut rng = StdRng::seed_from_u64(5);
        let mut config = ServerConfig::default();
        config
            .access
            .apply(&crate::access::AccessRule {
                allow: true,
                all: false,
                subnet: None,
            })
            .unwrap();
        let mut server = Server::new(config, 3).unwrap();
        server.set_nts_keys(Some(ServerKeys::generate(&mut rng, 0.0, 1e6)));
        let session = SessionKeys {
            c2s: [0x31; 32],
            s2c: [0x42; 32],
        };
        NtsWorld {
            server,
            rng,
            session,
        }
    }

    fn outcome(&mut self, n: usize) -> NtsKeOutcome {
        let keys = self.server.nts_keys().unwrap();
        let cookies = (0..n)
            .map(|_| zeroize::Zeroizing::new(keys.seal(&self.session, &mut self.rng).to_vec()))
            .collect();
        NtsKeOutcome {
            keys: self.session.clone(),
            cookies,
            ntp_server: None,
            ntp_port: Some(1123),
        }
    }

    /// The server's answer to `req`, received at t1 + 20 ms.
    fn answer(&mut self, req: &[u8], t1: f64) -> Option<Vec<u8>> {
        let mut out = [0u8; 2048];
        let rx = NtpTimestamp::from_unix_f64(t1 + 0.01);
        let reference = ReferenceInfo::local(3, NtpTimestamp::from_unix_f64(t1 - 10.0), -20);
        match self.server.handle_request(
            req,
            "127.0.0.1:40000".parse().unwrap(),
            rx,
            1.0,
            &reference,
            &mut out,
        ) {
            Reply::Send { len } | Reply::Kod { len } => {
                self.server
                    .finalize(&mut out[..len], NtpTimestamp::from_unix_f64(t1 + 0.01));
                Some(out[..len].to_vec())
            }
            Reply::Drop(_) => None,
        }
    }
}

fn nts_assoc() -> Association {
    let mut a = Association::new(remote(), SourceConfig::default(), T0, 9);
    a.set_auth(AuthState::Nts(Box::new(crate::nts_client::NtsState::new(
        NtsSource::new("localhost"),
        T0,
    ))));
    a
}

fn nts(a: &Association) -> &crate::nts_client::NtsState {
    match a.auth() {
        AuthState::Nts(n) => n,
        _ => panic!("not NTS"),
    }
}

#[test]
fn case22_nts_source_sends_nothing_before_key_exchange_and_never_falls_back() {
    let mut a = nts_assoc();
    for _ in 0..5 {
        let t = a.next_timeout().unwrap();
        assert!(a.on_timer(t, t).is_none(), "no unauthenticated request");
    }
    // The key exchange is asked for once, then spaced by the back-off.
    let req = a.start_nts_ke(T0).expect("key exchange");
    assert_eq!((req.server_name.as_str(), req.port), ("localhost", 4460));
    assert!(a.start_nts_ke(T0 + 1.0).is_none(), "one at a time");
    a.finish_nts_ke(None, None, T0 + 2.0);
    assert!(a.start_nts_ke(T0 + 3.0).is_none(), "back-off");
    assert!(a.start_nts_ke(T0 + MIN_KE_BACKOFF).is_some());
}

#[test]
fn nts_exchange_with_the_server_gives_samples_and_refills_the_jar() {
    let mut w = NtsWorld::new();
    let mut a = nts_assoc();
    a.start_nts_ke(T0).unwrap();
    a.finish_nts_ke(Some(w.outcome(8)), None, T0 + 0.5);
    // Port record followed.
    assert_eq!(a.remote().port(), 1123);
    let mut samples = 0;
    for _ in 0..6 {
        let (tx, t1) = send(&mut a);
        let bytes = tx.bytes();
        assert!(bytes.len() > 48 + 100, "UID, cookie and Authenticator");
        let resp = w.answer(&bytes, t1).expect("answered");
        if let RxOutcome::Sample(s) = a.on_packet(t1 + 0.02, &resp, None, false) {
            assert!(s.peer_delay < 0.05);
            samples += 1;
        }
        assert_eq!(nts(&a).cookies(), 8, "jar stays full");
    }
    assert!(samples >= 5);
    assert_eq!(a.rejected(Rejection::AuthFailed), 0);
}

#[test]
fn case22_stripped_or_tampered_nts_responses_are_never_accepted() {
    let mut w = NtsWorld::new();
    let mut a = nts_assoc();
    a.start_nts_ke(T0).unwrap();
    a.finish_nts_ke(Some(w.outcome(8)), None, T0);
    let (tx, t1) = send(&mut a);
    let resp = w.answer(&tx.bytes(), t1).unwrap();
    let stripped = resp[..48].to_vec();
    assert_eq!(
        a.on_packet(t1 + 0.02, &stripped, None, true),
        RxOutcome::Rejected(Rejection::AuthFailed)
    );
    let mut tampered = resp.clone();
    tampered[44] ^= 1; // transmit timestamp, covered by the Authenticator
    assert_eq!(
        a.on_packet(t1 + 0.02, &tampered, None, true),
        RxOutcome::Rejected(Rejection::AuthFailed)
    );
    assert!(matches!(
        a.on_packet(t1 + 0.02, &resp, None, false),
        RxOutcome::Sample(_) | RxOutcome::Rejected(Rejection::Presend)
    ));
    // Replayed: its Unique Identifier is spent (and it would refill no cookie).
    let cookies = nts(&a).cookies();
    assert!(matches!(
        a.on_packet(t1 + 1.0, &resp, None, false),
        RxOutcome::Rejected(_)
    ));
    assert_eq!(nts(&a).cookies(), cookies);
}

#[test]
fn case32_cookies_are_never_reused_and_exhaustion_triggers_key_exchange() {
    let mut w = NtsWorld::new();
    let mut a = nts_assoc();
    a.start_nts_ke(T0).unwrap();
    a.finish_nts_ke(Some(w.outcome(8)), None, T0);
    let mut sent_cookies = Vec::new();
    for _ in 0..8 {
        let (tx, _) = send(&mut a);
        let bytes = tx.bytes();
        let p = Packet::decode(&bytes).unwrap();
        let c = p
            .extensions
            .find(gnomon_wire::nts::FIELD_NTS_COOKIE)
            .unwrap()
            .value
            .to_vec();
        assert!(!sent_cookies.contains(&c), "cookie reused");
        sent_cookies.push(c);
    }
    // Eight unanswered requests: the jar is empty, no request goes out, a KE is due.
    let t = a.next_timeout().unwrap();
    assert!(a.on_timer(t, t).is_none());
    assert!(a.start_nts_ke(t).is_some());
}

#[test]
fn case21_nts_nak_schedules_one_key_exchange_and_spoofed_naks_are_ignored() {
    let mut w = NtsWorld::new();
    let mut a = nts_assoc();
    a.start_nts_ke(T0).unwrap();
    a.finish_nts_ke(Some(w.outcome(8)), None, T0);
    let (tx, t1) = send(&mut a);
    let bytes = tx.bytes();
    let p = Packet::decode(&bytes).unwrap();
    let uid = p
        .extensions
        .find(gnomon_wire::nts::FIELD_NTS_UNIQUE_IDENTIFIER)
        .unwrap();
    let nak_with = |uid: &[u8]| {
        let mut h = Header::decode(&bytes).unwrap();
        h.mode = Mode::Server;
        h.stratum = 0;
        h.reference_id = u32::from_be_bytes(*b"NTSN");
        h.origin_timestamp = h.transmit_timestamp;
        h.receive_timestamp = NtpTimestamp::from_unix_f64(t1);
        h.transmit_timestamp = NtpTimestamp::from_unix_f64(t1);
        let mut v = h.to_bytes().to_vec();
        let mut f = [0u8; 36];
        gnomon_wire::extension::encode_extension_field(
            &mut f,
            gnomon_wire::nts::FIELD_NTS_UNIQUE_IDENTIFIER,
            uid,
        )
        .unwrap();
        v.extend_from_slice(&f);
        v
    };
    // A flood of NAKs with wrong UIDs: ignored, no key exchange.
    for i in 0..100u8 {
        let mut wrong = uid.value.to_vec();
        wrong[0] ^= i.wrapping_add(1);
        assert_eq!(
            a.on_packet(t1 + 0.02, &nak_with(&wrong), None, false),
            RxOutcome::Rejected(Rejection::AuthFailed)
        );
    }
    assert!(nts(&a).is_ready());
    assert!(a.start_nts_ke(t1).is_none());
    // The real one: KE scheduled (after the back-off of the first exchange), source kept.
    assert_eq!(
        a.on_packet(t1 + 0.02, &nak_with(uid.value), None, false),
        RxOutcome::Rejected(Rejection::NtsNak)
    );
    assert!(!nts(&a).is_ready());
    assert!(a.start_nts_ke(T0 + MIN_KE_BACKOFF - 1.0).is_none());
    let req = a.start_nts_ke(T0 + MIN_KE_BACKOFF).unwrap();
    // Re-keying goes to the original server's NTS-KE port, not the negotiated NTP port.
    assert_eq!(a.remote().port(), 1123);
    assert_eq!(req.addr, "127.0.0.1:4460".parse().unwrap());
    // A failed exchange doubles the back-off.
    a.finish_nts_ke(None, None, T0 + MIN_KE_BACKOFF);
    assert!(a.start_nts_ke(T0 + 2.0 * MIN_KE_BACKOFF).is_none());
    assert!(a.start_nts_ke(T0 + 3.0 * MIN_KE_BACKOFF).is_some());
}

proptest::proptest! {
    #[test]
    fn nts_association_never_panics_on_reply_bytes(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1200)
    ) {
        let mut w = NtsWorld::new();
        let mut a = nts_assoc();
        a.start_nts_ke(T0).unwrap();
        a.finish_nts_ke(Some(w.outcome(2)), None, T0);
        let (_, t1) = send(&mut a);
        let out = a.on_packet(t1 + 0.01, &data, None, true);
        proptest::prop_assert!(!matches!(out, RxOutcome::Sample(_)));
    }

    #[test]
    fn keyed_association_never_panics_on_reply_bytes(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)
    ) {
        let mut a = keyed(SourceKind::Server, 1);
        let (_, t1) = send(&mut a);
        let out = a.on_packet(t1 + 0.01, &data, None, true);
        proptest::prop_assert!(!matches!(out, RxOutcome::Sample(_)));
    }
}

#[test]
fn key_type_is_used_for_the_wire_length() {
    // AES-CMAC keys sign with 16 octets.
    let k = Key::new(5, KeyType::Aes128, vec![7; 16]).unwrap();
    let mut a = keyed(SourceKind::Server, 5);
    a.set_auth(AuthState::Symmetric {
        id: 5,
        key: Some(k),
    });
    let (tx, _) = send(&mut a);
    assert_eq!(tx.trailer.len(), 4 + 16);
}

#[test]
fn case32_debug_output_of_an_nts_association_shows_no_keys_or_cookies() {
    let mut w = NtsWorld::new();
    let mut a = nts_assoc();
    a.start_nts_ke(T0).unwrap();
    let outcome = w.outcome(8);
    let cookie_hex: String = outcome.cookies[0][20..28]
        .iter()
        .map(|b| format!("{b}, "))
        .collect();
    a.finish_nts_ke(Some(outcome), None, T0);
    let (tx, _) = send(&mut a);
    let dbg = format!("{a:?} {tx:?}");
    assert!(!dbg.contains(&cookie_hex[..cookie_hex.len() - 2]));
    // 0x31 = 49 (C2S), 0x42 = 66 (S2C) repeated.
    assert!(!dbg.contains("49, 49, 49"));
    assert!(!dbg.contains("66, 66, 66"));
    let keyed = keyed(SourceKind::Server, 1);
    assert!(!format!("{keyed:?}").contains("material"));
}
