//! Engine-level authentication: keyed sources, `authselectmode`, and the NTS key-exchange
//! hand-off to the daemon.

use super::*;
use crate::association::{Rejection, SourceAuth};
use crate::auth::{KeyStore, MAX_DIGEST_LEN};
use crate::local_clock::TestClock;
use crate::nts_client::{NtsKeClientError, NtsSource, NtsTrust, SavedSession};
use crate::reports::SourceState;
use crate::selection::AuthSelectMode;
use gnomon_wire::{Header, NtpTimestamp};

const T0: f64 = 1_780_000_000.0;
const KEYS: &str = "1 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233\n";

pub(super) fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 123))
}

/// A server reply to `req`, signed with key 1 when `sign`.
pub(super) fn answer(req: &[u8], t1: f64, sign: bool) -> (Vec<u8>, f64) {
    let q = Header::decode(req).unwrap();
    let t2 = t1 + 0.001;
    let h = super::tests::reply_header(
        &q,
        q.transmit_timestamp,
        t2,
        NtpTimestamp::from_unix_f64(t2),
        -20,
    );
    let mut p = h.to_bytes().to_vec();
    if sign {
        let keys = KeyStore::parse(KEYS).0;
        let mut d = [0u8; MAX_DIGEST_LEN];
        let n = keys.get(1).unwrap().sign(&p, 4, &mut d);
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&d[..n]);
    }
    (p, t1 + 0.002)
}

fn iburst() -> SourceConfig {
    SourceConfig {
        iburst: true,
        ..SourceConfig::default()
    }
}

/// Runs for `secs`, every source answered (the keyed one with MACs).
fn run(e: &mut Engine, c: &mut TestClock, secs: f64, signed: SourceId) {
    let end = c.now + secs;
    while let Some(t) = e.poll_timeout() {
        let t = t.max(c.now);
        if t > end {
            break;
        }
        c.now = t;
        for a in e.handle_timeout(t, c) {
            if let Action::Send(id, tx) = a {
                let bytes = tx.bytes();
                let (rep, rx) = answer(&bytes, t, id == signed);
                c.now = rx;
                e.handle_packet(id, rx, &rep, None, false, c);
            }
        }
    }
}

fn two_sources(mode: AuthSelectMode) -> (Engine, TestClock, SourceId, SourceId) {
    let mut e = Engine::new(EngineConfig::default());
    e.set_keys(KeyStore::parse(KEYS).0);
    e.set_auth_select_mode(mode);
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let keyed = e.add_source_auth(
        addr(1),
        iburst(),
        &SourceAuth {
            key: Some(1),
            nts: None,
        },
        T0,
    );
    let plain = e.add_source(addr(2), iburst(), T0);
    run(&mut e, &mut c, 60.0, keyed);
    (e, c, keyed, plain)
}

fn state(e: &Engine, c: &TestClock, id: SourceId) -> SourceState {
    e.sources(c.now, c)
        .into_iter()
        .find(|(i, _)| *i == id)
        .unwrap()
        .1
        .state
}

#[test]
fn keyed_source_synchronises_with_signed_replies() {
    let (e, c, keyed, _) = two_sources(AuthSelectMode::Ignore);
    assert!(e.association(keyed).unwrap().stats().len() >= 3);
    assert_eq!(
        e.association(keyed)
            .unwrap()
            .rejected(Rejection::AuthFailed),
        0
    );
    assert!(e.reference().is_synchronised());
    let _ = c;
}

#[test]
fn authselectmode_require_and_prefer_exclude_unauthenticated_sources() {
    for mode in [AuthSelectMode::Require, AuthSelectMode::Prefer] {
        let (e, c, keyed, plain) = two_sources(mode);
        assert!(e.association(plain).unwrap().stats().len() >= 3);
        // noselect: shown as unselectable, never combined.
        assert_eq!(state(&e, &c, plain), SourceState::Unselectable);
        assert_eq!(state(&e, &c, keyed), SourceState::Selected);
    }
}

#[test]
fn authselectmode_require_never_selects_an_unauthenticated_source_alone() {
    let mut e = Engine::new(EngineConfig::default());
    e.set_auth_select_mode(AuthSelectMode::Require);
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let plain = e.add_source(addr(2), iburst(), T0);
    run(&mut e, &mut c, 60.0, SourceId(u32::MAX));
    assert!(e.association(plain).unwrap().stats().len() >= 3);
    assert!(!e.reference().is_synchronised());
}

#[test]
fn set_keys_after_adding_gives_the_key_to_the_source() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let id = e.add_source_auth(
        addr(1),
        iburst(),
        &SourceAuth {
            key: Some(1),
            nts: None,
        },
        T0,
    );
    // No key yet: nothing is sent.
    let t = e.poll_timeout().unwrap();
    c.now = t;
    assert!(!e
        .handle_timeout(t, &mut c)
        .iter()
        .any(|a| matches!(a, Action::Send(..))));
    e.set_keys(KeyStore::parse(KEYS).0);
    run(&mut e, &mut c, 30.0, id);
    assert!(e.association(id).unwrap().stats().len() >= 3);
}

#[test]
fn nts_source_asks_the_daemon_for_a_key_exchange_and_backs_off() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let id = e.add_source_auth(
        addr(1),
        iburst(),
        &SourceAuth {
            key: None,
            nts: Some(NtsSource::new("ntp.example.org")),
        },
        T0,
    );
    let t = e.poll_timeout().unwrap();
    assert!(t <= T0);
    c.now = T0;
    let actions = e.handle_timeout(T0, &mut c);
    assert!(!actions.iter().any(|a| matches!(a, Action::Send(..))));
    let reqs = e.take_nts_ke_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0, id);
    assert_eq!(reqs[0].1.server_name, "ntp.example.org");
    assert_eq!(reqs[0].1.port, 4460);
    // Without trust roots no client can be built.
    assert!(e.nts_ke_client(id, T0, T0).is_err());
    let pem = rcgen::generate_simple_self_signed(vec!["ntp.example.org".into()])
        .unwrap()
        .cert
        .pem();
    e.set_nts_trust(NtsTrust::new(&[pem.into_bytes()], false).unwrap());
    let mut ke = e.nts_ke_client(id, T0, T0).unwrap();
    let mut hello = Vec::new();
    assert!(ke.write_tls(&mut hello) > 0);
    // The exchange failed: the next one comes after the back-off, polls in between send
    // nothing.
    e.nts_ke_finished(id, None, None, T0 + 1.0);
    let mut kes = 0;
    while let Some(t) = e.poll_timeout() {
        if t > T0 + 100.0 {
            break;
        }
        c.now = t.max(c.now);
        let a = e.handle_timeout(c.now, &mut c);
        assert!(!a.iter().any(|a| matches!(a, Action::Send(..))));
        kes += e.take_nts_ke_requests().len();
        for (i, _) in e.take_nts_ke_requests() {
            e.nts_ke_finished(i, None, None, c.now);
        }
        e.nts_ke_finished(id, None, None, c.now);
    }
    // 16 s, then 32 s, then 64 s after: two more within 100 s.
    assert_eq!(kes, 2);
}

#[test]
fn engine_nts_flow_from_key_exchange_to_synchronisation() {
    use crate::nts::{ServerKeys, SessionKeys};
    use crate::nts_client::NtsKeOutcome;
    use crate::server::{ReferenceInfo, Reply, Server, ServerConfig};
    use rand::SeedableRng;

    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut config = ServerConfig::default();
    config
        .access
        .apply(&crate::access::AccessRule {
            allow: true,
            all: false,
            subnet: None,
        })
        .unwrap();
    let mut server = Server::new(config, 4).unwrap();
    let server_keys = ServerKeys::generate(&mut rng, 0.0, 1e6);
    server.set_nts_keys(Some(server_keys.clone()));
    let session = SessionKeys {
        c2s: [7; 32],
        s2c: [8; 32],
    };

    let mut e = Engine::new(EngineConfig::default());
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let id = e.add_source_auth(
        addr(1),
        iburst(),
        &SourceAuth {
            key: None,
            nts: Some(NtsSource::new("ntp.example.org")),
        },
        T0,
    );
    let end = T0 + 60.0;
    let mut sent = 0;
    while let Some(t) = e.poll_timeout() {
        let t = t.max(c.now);
        if t > end {
            break;
        }
        c.now = t;
        let actions = e.handle_timeout(t, &mut c);
        for (sid, req) in e.take_nts_ke_requests() {
            assert_eq!(req.addr, SocketAddr::from(([192, 0, 2, 1], 4460)));
            let cookies = (0..8)
                .map(|_| zeroize::Zeroizing::new(server_keys.seal(&session, &mut rng).to_vec()))
                .collect();
            let outcome = NtsKeOutcome {
                keys: session.clone(),
                cookies,
                ntp_server: None,
                ntp_port: None,
            };
            e.nts_ke_finished(sid, Some(outcome), None, t);
        }
        for a in actions {
            let Action::Send(sid, tx) = a else { continue };
            sent += 1;
            let mut out = [0u8; 2048];
            let rx = NtpTimestamp::from_unix_f64(t + 0.001);
            let reference = ReferenceInfo::local(2, NtpTimestamp::from_unix_f64(t - 1.0), -20);
            let bytes = tx.bytes();
            let Reply::Send { len } = server.handle_request(
                &bytes,
                "192.0.2.99:40000".parse().unwrap(),
                rx,
                1.0,
                &reference,
                &mut out,
            ) else {
                panic!("not answered");
            };
            server.finalize(&mut out[..len], rx);
            c.now = t + 0.002;
            // `authenticated` false: the engine verifies NTS itself.
            e.handle_packet(sid, c.now, &out[..len], None, false, &mut c);
        }
    }
    assert!(sent >= 4);
    let a = e.association(id).unwrap();
    assert!(a.stats().len() >= 3);
    assert_eq!(a.rejected(Rejection::AuthFailed), 0);
    assert!(e.reference().is_synchronised());
}

#[test]
fn certset_trust_builds_the_client_only_for_nts_sources() {
    let mut e = Engine::new(EngineConfig::default());
    let nts = e.add_source_auth(
        addr(1),
        iburst(),
        &SourceAuth {
            key: None,
            nts: Some(NtsSource::new("ntp.example.org")),
        },
        T0,
    );
    let keyed = e.add_source_auth(
        addr(2),
        iburst(),
        &SourceAuth {
            key: Some(1),
            nts: None,
        },
        T0,
    );
    let pem = rcgen::generate_simple_self_signed(vec!["ntp.example.org".into()])
        .unwrap()
        .cert
        .pem();
    let trust = NtsTrust::new(&[pem.into_bytes()], false).unwrap();
    // No engine-wide roots: the caller's set is used.
    let mut ke = e.nts_ke_client_with(nts, &trust, T0, T0).unwrap();
    assert_eq!(
        ke.deadline(),
        T0 + crate::nts_client::ke::DEFAULT_KE_TIMEOUT
    );
    let mut hello = Vec::new();
    assert!(ke.write_tls(&mut hello) > 0);
    assert!(matches!(
        e.nts_ke_client_with(keyed, &trust, T0, T0),
        Err(NtsKeClientError::NotConfigured)
    ));
    assert!(matches!(
        e.nts_ke_client_with(SourceId(99), &trust, T0, T0),
        Err(NtsKeClientError::NotConfigured)
    ));
}

#[test]
fn saved_nts_session_is_restored_without_a_key_exchange() {
    use crate::nts::SessionKeys;
    use crate::nts_client::NtsKeOutcome;
    let auth = SourceAuth {
        key: None,
        nts: Some(NtsSource::new("ntp.example.org")),
    };
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let mut e = Engine::new(EngineConfig::default());
    let id = e.add_source_auth(addr(1), iburst(), &auth, T0);
    e.handle_timeout(T0, &mut c);
    assert_eq!(e.take_nts_ke_requests().len(), 1);
    let outcome = NtsKeOutcome {
        keys: SessionKeys {
            c2s: [3; 32],
            s2c: [4; 32],
        },
        cookies: vec![zeroize::Zeroizing::new(vec![9u8; 64]); 8],
        ntp_server: Some("192.0.2.9".into()),
        ntp_port: Some(1123),
    };
    e.nts_ke_finished(id, Some(outcome), None, T0 + 1.0);
    let saved = e.take_nts_sessions();
    assert_eq!(saved.len(), 1);
    let s = &saved[0].1;
    assert_eq!(s.ntp_addr, SocketAddr::from(([192, 0, 2, 9], 1123)));
    assert_eq!((s.ke_ip, s.cookies.len()), (addr(1).ip(), 8));
    // Taken out: a second save finds nothing.
    assert!(e.take_nts_sessions().is_empty());

    // A restarted engine: the saved session serves the first request, no key exchange.
    let mut e = Engine::new(EngineConfig::default());
    let id = e.add_source_auth(addr(1), iburst(), &auth, T0 + 100.0);
    assert_eq!(e.nts_sources_awaiting_keys(), vec![(id, addr(1).ip())]);
    let other = SavedSession {
        server_name: "other.example".into(),
        ..s.clone()
    };
    assert!(!e.restore_nts_session(id, &other, T0 + 100.0));
    assert!(e.restore_nts_session(id, s, T0 + 100.0));
    assert!(e.nts_sources_awaiting_keys().is_empty());
    c.now = T0 + 100.0;
    let actions = e.handle_timeout(c.now, &mut c);
    assert!(e.take_nts_ke_requests().is_empty());
    let sent: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(_, tx) => Some(tx),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].remote, s.ntp_addr);
    // Unique Identifier, cookie and authenticator follow the header.
    assert!(sent[0].trailer.len() > 64 + 36);
}
