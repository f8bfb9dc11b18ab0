//! Security catalogue cases 14 and 15, the parts auth_tests.rs leaves out: one response per
//! request, even when several authentic ones arrive (keyed and NTS, chrony's "at most one
//! response is accepted per request"); replays of NTS responses, immediate and after the next
//! poll; and spoofed unauthenticated mode-2 packets (not only mode 1) and packets signed with a
//! wrong key on a keyed symmetric association, which must leave its stored timestamps alone.

use super::*;
use crate::auth::{Key, KeyStore, MAX_DIGEST_LEN};
use crate::nts::{ServerKeys, SessionKeys};
use crate::nts_client::{NtsKeOutcome, NtsSource};
use crate::server::{ReferenceInfo, Reply, Server, ServerConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;

const T0: f64 = 1_780_000_000.0;

const KEYS: &str = "\
1 MD5 HEX:00112233445566778899AABBCCDDEEFF
2 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233
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
    let mut a = Association::new(remote(), cfg, T0, 11);
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

/// A reply header to `req` (server 0.1 s ahead, 10 ms each way), transmitted `extra` seconds
/// after the usual moment; and the local receive time.
fn reply_header(req: &[u8], t1: f64, mode: Mode, extra: f64) -> (Vec<u8>, f64) {
    let q = Header::decode(req).unwrap();
    let t2 = t1 + 0.01 + 0.1;
    let t3 = t2 + 1e-5 + extra;
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

/// The peer state a spoofed packet must not touch (CVE-2015-1853, CVE-2016-9042).
fn peer_state(a: &Association) -> String {
    format!(
        "{:?}",
        (
            a.peer_org,
            a.peer_rec,
            a.pending.map(|p| p.wire_tx),
            a.last_rx_xmt,
            a.reach,
            a.stats.len()
        )
    )
}

#[test]
fn case15_only_the_first_of_two_authentic_replies_to_one_request_is_accepted() {
    let key = keys().get(1).unwrap().clone();
    let mut a = keyed(SourceKind::Server, 1);
    let (tx, t1) = send(&mut a);
    let (h1, rx1) = reply_header(&tx.payload, t1, Mode::Server, 0.0);
    // A second, distinct reply to the same request (transmitted 1 ms later), correctly signed.
    let (h2, rx2) = reply_header(&tx.payload, t1, Mode::Server, 0.001);
    assert_ne!(h1, h2);
    assert!(matches!(
        a.on_packet(rx1, &sign(h1, &key, 1), None, false),
        RxOutcome::Sample(_)
    ));
    let before = peer_state(&a);
    assert!(matches!(
        a.on_packet(rx2, &sign(h2, &key, 1), None, false),
        RxOutcome::Rejected(Rejection::Duplicate | Rejection::Bogus)
    ));
    assert_eq!(before, peer_state(&a));
}

#[test]
fn case14_spoofed_mode_2_and_wrongly_signed_packets_leave_a_keyed_peer_alone() {
    let own = keys().get(1).unwrap().clone();
    let other = keys().get(2).unwrap().clone();
    let mut a = keyed(SourceKind::Peer, 1);
    let (tx, t1) = send(&mut a);
    let (h, rx) = reply_header(&tx.payload, t1, Mode::SymmetricPassive, 0.0);
    let before = peer_state(&a);
    for i in 0..16u64 {
        let mut spoof = Header::decode(&h).unwrap();
        spoof.mode = if i % 2 == 0 {
            Mode::SymmetricPassive
        } else {
            Mode::SymmetricActive
        };
        spoof.transmit_timestamp = NtpTimestamp(0x2345_6789_0000_0000 + i);
        // Half carry our real origin (an on-path copy), half a forged one.
        if i % 4 >= 2 {
            spoof.origin_timestamp = NtpTimestamp(i);
        }
        let plain = spoof.to_bytes().to_vec();
        let wrong_key = sign(plain.clone(), &other, 2);
        let wrong_id = sign(plain.clone(), &own, 2);
        for p in [plain, wrong_key, wrong_id] {
            assert_eq!(
                a.on_packet(rx, &p, None, true),
                RxOutcome::Rejected(Rejection::AuthFailed),
                "spoof {i}"
            );
            assert_eq!(before, peer_state(&a), "spoof {i} changed the peer state");
        }
    }
    // The genuine packet is still accepted (no TEST2 denial of service).
    assert!(matches!(
        a.on_packet(rx, &sign(h, &own, 1), None, false),
        RxOutcome::Sample(_)
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
        let mut rng = StdRng::seed_from_u64(15);
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
            c2s: [0x51; 32],
            s2c: [0x62; 32],
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
            ntp_port: None,
        }
    }

    /// The server's answer to `req`, received at t1 + 10 ms and sent `extra` s later.
    fn answer(&mut self, req: &[u8], t1: f64, extra: f64) -> Option<Vec<u8>> {
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
                self.server.finalize(
                    &mut out[..len],
                    NtpTimestamp::from_unix_f64(t1 + 0.01 + extra),
                );
                Some(out[..len].to_vec())
            }
            Reply::Drop(_) => None,
        }
    }
}

fn nts_assoc(w: &mut NtsWorld) -> Association {
    let mut a = Association::new(remote(), SourceConfig::default(), T0, 13);
    a.set_auth(AuthState::Nts(Box::new(crate::nts_client::NtsState::new(
        NtsSource::new("localhost"),
        T0,
    ))));
    a.start_nts_ke(T0).unwrap();
    a.finish_nts_ke(Some(w.outcome(8)), None, T0 + 0.5);
    a
}

fn cookies(a: &Association) -> usize {
    match a.auth() {
        AuthState::Nts(n) => n.cookies(),
        _ => panic!("not NTS"),
    }
}

#[test]
fn case15_replayed_nts_responses_are_rejected_now_and_after_the_next_poll() {
    let mut w = NtsWorld::new();
    let mut a = nts_assoc(&mut w);
    let (tx, t1) = send(&mut a);
    let resp = w.answer(&tx.bytes(), t1, 0.0).expect("answered");
    assert!(matches!(
        a.on_packet(t1 + 0.02, &resp, None, false),
        RxOutcome::Sample(_)
    ));
    let jar = cookies(&a);
    // 1 s later: the same octets again.
    assert!(matches!(
        a.on_packet(t1 + 1.0, &resp, None, false),
        RxOutcome::Rejected(_)
    ));
    assert_eq!(cookies(&a), jar, "a replay refilled the jar");
    // After the next request: the old response answers a request no longer outstanding.
    let (tx2, t2) = send(&mut a);
    let before = peer_state(&a);
    assert!(matches!(
        a.on_packet(t2 + 0.02, &resp, None, false),
        RxOutcome::Rejected(_)
    ));
    assert_eq!(before, peer_state(&a));
    // The genuine answer to the new request still works.
    let resp2 = w.answer(&tx2.bytes(), t2, 0.0).expect("answered");
    assert!(matches!(
        a.on_packet(t2 + 0.02, &resp2, None, false),
        RxOutcome::Sample(_)
    ));
}

#[test]
fn case15_only_the_first_of_two_authentic_nts_responses_is_accepted() {
    let mut w = NtsWorld::new();
    let mut a = nts_assoc(&mut w);
    let (tx, t1) = send(&mut a);
    let bytes = tx.bytes();
    // The server answers the same request twice (a duplicated request on the path): both are
    // authentic, with fresh cookies each.
    let first = w.answer(&bytes, t1, 0.0).expect("answered");
    let second = w.answer(&bytes, t1, 0.001).expect("answered");
    assert_ne!(first, second);
    assert!(matches!(
        a.on_packet(t1 + 0.02, &first, None, false),
        RxOutcome::Sample(_)
    ));
    let jar = cookies(&a);
    let before = peer_state(&a);
    assert!(matches!(
        a.on_packet(t1 + 0.021, &second, None, false),
        RxOutcome::Rejected(_)
    ));
    assert_eq!(cookies(&a), jar, "the second response's cookies were taken");
    assert_eq!(before, peer_state(&a));
}
