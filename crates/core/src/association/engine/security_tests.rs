//! Security catalogue case 31, the `nocerttimecheck N` half: certificate validity times are
//! skipped only for key exchanges started during the first N clock updates (chrony.conf:
//! "the number of clock updates ... during which the time validity of certificates is not
//! checked"; default 0). An engine with an NTS source makes its key-exchange client against
//! this crate's NTS-KE server presenting an expired certificate, before and after the clock
//! has been updated through a plain source.

use super::*;
use crate::association::SourceAuth;
use crate::local_clock::TestClock;
use crate::nts::{NtsKeServerSetup, NtsKeSession, ServerKeys};
use crate::nts_client::{NtsKeClient, NtsKeClientError, NtsKeOutcome, NtsSource, NtsTrust};
use crate::selection::AuthSelectMode;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rcgen::{date_time_ymd, CertificateParams, KeyPair};

const T0: f64 = 1_780_000_000.0;

// The stratum-1 server of auth_tests, answering unsigned.
use super::auth_tests::{addr, answer};

/// Runs the engine for `secs`, answering the plain source `plain` only.
fn run(e: &mut Engine, c: &mut TestClock, secs: f64, plain: SourceId) {
    let end = c.now + secs;
    while let Some(t) = e.poll_timeout() {
        let t = t.max(c.now);
        if t > end {
            break;
        }
        c.now = t;
        for a in e.handle_timeout(t, c) {
            if let Action::Send(id, tx) = a {
                if id == plain {
                    let (rep, rx) = answer(&tx.bytes(), t, false);
                    c.now = rx;
                    e.handle_packet(id, rx, &rep, None, false, c);
                }
            }
        }
    }
}

/// An NTS-KE server presenting a certificate for `localhost` valid in 2000 only.
struct ExpiredServer {
    setup: NtsKeServerSetup,
    keys: ServerKeys,
    rng: StdRng,
    trust: NtsTrust,
}

impl ExpiredServer {
    fn new() -> ExpiredServer {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2000, 12, 31);
        let kp = KeyPair::generate().unwrap();
        let cert = params.self_signed(&kp).unwrap().pem();
        let setup = NtsKeServerSetup::new(
            &[(cert.clone().into_bytes(), kp.serialize_pem().into_bytes())],
            123,
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(31);
        let keys = ServerKeys::generate(&mut rng, 0.0, 1e6);
        let trust = NtsTrust::new(&[cert.into_bytes()], false).unwrap();
        ExpiredServer {
            setup,
            keys,
            rng,
            trust,
        }
    }

    /// Runs a whole exchange through in-memory buffers.
    fn exchange(&mut self, client: &mut NtsKeClient) -> Result<NtsKeOutcome, NtsKeClientError> {
        let mut session = NtsKeSession::new(&self.setup, 0.0).unwrap();
        for _ in 0..20 {
            let mut c2s = Vec::new();
            client.write_tls(&mut c2s);
            let server_failed = !c2s.is_empty()
                && session
                    .read_tls(&c2s, 0.1, &self.keys, &self.setup, &mut self.rng)
                    .is_err();
            let mut s2c = Vec::new();
            session.write_tls(&mut s2c);
            if !s2c.is_empty() {
                if let Some(o) = client.read_tls(&s2c, 0.2)? {
                    return Ok(o);
                }
            }
            if server_failed || (session.is_done() && !session.wants_write()) {
                return client
                    .read_tls(&[], 0.3)
                    .and_then(|o| o.ok_or(NtsKeClientError::Truncated));
            }
        }
        panic!("exchange did not finish");
    }

    /// Whether the engine's key-exchange client for `id` accepts this server now.
    fn accepted_by(&mut self, e: &Engine, id: SourceId, now: f64) -> bool {
        let mut client = e.nts_ke_client_with(id, &self.trust, now, now).unwrap();
        match self.exchange(&mut client) {
            Ok(o) => {
                assert_eq!(o.cookies.len(), 8);
                true
            }
            Err(NtsKeClientError::Tls(_)) => false,
            Err(other) => panic!("not a certificate failure: {other:?}"),
        }
    }
}

/// An engine (authselectmode ignore) with an NTS source for `localhost` (noselect) and a plain
/// source.
fn engine(no_cert_time_check: Option<u32>) -> (Engine, TestClock, SourceId, SourceId) {
    let mut e = Engine::new(EngineConfig::default());
    e.set_auth_select_mode(AuthSelectMode::Ignore);
    if let Some(n) = no_cert_time_check {
        e.set_no_cert_time_check(n);
    }
    let c = TestClock {
        now: T0,
        ..Default::default()
    };
    // noselect: an NTS source whose key exchange never runs here stays "starting" and would
    // count in the majority's denominator, so the plain source alone could never be chosen.
    let nts = e.add_source_auth(
        addr(1),
        SourceConfig {
            select: crate::selection::SelectOptions {
                noselect: true,
                ..Default::default()
            },
            ..SourceConfig::default()
        },
        &SourceAuth {
            key: None,
            nts: Some(NtsSource::new("localhost")),
        },
        T0,
    );
    let plain = e.add_source(
        addr(2),
        SourceConfig {
            iburst: true,
            ..SourceConfig::default()
        },
        T0,
    );
    (e, c, nts, plain)
}

#[test]
fn case31_certificate_times_are_checked_by_default() {
    let mut server = ExpiredServer::new();
    let (e, c, nts, _) = engine(None);
    assert!(!server.accepted_by(&e, nts, c.now));
}

#[test]
fn case31_nocerttimecheck_skips_time_checks_only_for_the_first_clock_updates() {
    let mut server = ExpiredServer::new();
    let (mut e, mut c, nts, plain) = engine(Some(1));
    // No clock update yet: the expired certificate is accepted (the name is still checked by
    // the client, ke/tests.rs case31_certificate_checks).
    assert!(server.accepted_by(&e, nts, c.now));
    // The plain source updates the clock; from then on the times are checked again.
    run(&mut e, &mut c, 60.0, plain);
    assert!(
        e.reference().is_synchronised(),
        "no clock update happened, the test proves nothing"
    );
    assert!(!server.accepted_by(&e, nts, c.now));
}

#[test]
fn case31_nocerttimecheck_window_counts_updates_not_key_exchanges() {
    let mut server = ExpiredServer::new();
    let (mut e, mut c, nts, plain) = engine(Some(100_000));
    run(&mut e, &mut c, 60.0, plain);
    assert!(e.reference().is_synchronised());
    // Far fewer than 100000 updates so far: still inside the window, however many exchanges.
    for _ in 0..3 {
        assert!(server.accepted_by(&e, nts, c.now));
    }
}
