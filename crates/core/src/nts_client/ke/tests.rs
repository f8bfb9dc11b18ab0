//! The NTS-KE client against this crate's NTS-KE server over in-memory buffers, with
//! certificates made by `rcgen` in the test (catalogue cases 25–27, 29, 31), then NTS-protected
//! NTP between an association and the server module.

use std::sync::Arc;

use gnomon_wire::nts_ke::{encode_record, encode_u16_record};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rcgen::{date_time_ymd, CertificateParams, KeyPair};

use super::*;
use crate::nts::{NtsKeServerSetup, NtsKeSession, ServerKeys};

/// 2026-11-22, inside the validity of the generated certificates.
const NOW_WALL: f64 = 1_795_300_000.0;

struct Cert {
    cert_pem: String,
    key_pem: String,
}

fn cert(names: &[&str], not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Cert {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    let kp = KeyPair::generate().unwrap();
    let c = params.self_signed(&kp).unwrap();
    Cert {
        cert_pem: c.pem(),
        key_pem: kp.serialize_pem(),
    }
}

fn good_cert() -> Cert {
    cert(&["localhost", "127.0.0.1"], (2020, 1, 1), (2040, 1, 1))
}

fn trust(c: &Cert) -> NtsTrust {
    NtsTrust::new(&[c.cert_pem.clone().into_bytes()], false).unwrap()
}

struct KeServer {
    setup: NtsKeServerSetup,
    keys: ServerKeys,
    rng: StdRng,
}

impl KeServer {
    fn new(c: &Cert, ntp_port: u16) -> KeServer {
        let mut rng = StdRng::seed_from_u64(11);
        let setup = NtsKeServerSetup::new(
            &[(
                c.cert_pem.clone().into_bytes(),
                c.key_pem.clone().into_bytes(),
            )],
            ntp_port,
        )
        .unwrap();
        let keys = ServerKeys::generate(&mut rng, 0.0, 1e6);
        KeServer { setup, keys, rng }
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
}

fn client_for(trust: &NtsTrust, name: &str, check_time: bool) -> NtsKeClient {
    NtsKeClient::new(trust, name, NOW_WALL, check_time, 0.0, DEFAULT_KE_TIMEOUT).unwrap()
}

#[test]
fn key_exchange_with_the_server_gives_keys_cookies_and_port() {
    let c = good_cert();
    let mut server = KeServer::new(&c, 11123);
    let mut client = client_for(&trust(&c), "localhost", true);
    let o = server.exchange(&mut client).unwrap();
    assert_eq!(o.cookies.len(), 8);
    assert_eq!(o.ntp_port, Some(11123));
    // Both ends exported the same keys: the server's cookies seal exactly ours.
    for cookie in &o.cookies {
        assert_eq!(server.keys.open(cookie), Some(o.keys.clone()));
    }
    // Keys and cookies stay out of debug output (case 32).
    let dbg = format!("{o:?}");
    assert!(!dbg.contains(&format!("{:?}", &o.cookies[0][..4])));
    assert!(!dbg.contains("c2s"));
}

#[test]
fn ip_address_server_names_are_verified_too() {
    let c = good_cert();
    let mut server = KeServer::new(&c, 123);
    let mut client = client_for(&trust(&c), "127.0.0.1", true);
    let o = server.exchange(&mut client).unwrap();
    assert_eq!(o.ntp_port, None);
}

#[test]
fn end_to_end_key_exchange_then_nts_ntp_with_the_server_module() {
    use crate::association::{Association, AuthState, RxOutcome, SourceConfig};
    use crate::server::{ReferenceInfo, Reply, Server, ServerConfig};
    use gnomon_wire::NtpTimestamp;

    let c = good_cert();
    let mut ke = KeServer::new(&c, 123);
    let mut client = client_for(&trust(&c), "localhost", true);
    let outcome = ke.exchange(&mut client).unwrap();

    let mut config = ServerConfig::default();
    config
        .access
        .apply(&crate::access::AccessRule {
            allow: true,
            all: false,
            subnet: None,
        })
        .unwrap();
    let mut server = Server::new(config, 1).unwrap();
    server.set_nts_keys(Some(ke.keys.clone()));

    let t0 = NOW_WALL;
    let mut a = Association::new(
        "127.0.0.1:123".parse().unwrap(),
        SourceConfig::default(),
        t0,
        3,
    );
    a.set_auth(AuthState::Nts(Box::new(super::super::NtsState::new(
        super::super::NtsSource::new("localhost"),
        t0,
    ))));
    let req = a.start_nts_ke(t0).unwrap();
    assert_eq!(req.port, 4460);
    a.finish_nts_ke(Some(outcome), None, t0);
    let mut samples = 0;
    for _ in 0..4 {
        let t = a.next_timeout().unwrap();
        let tx = a.on_timer(t, t).unwrap();
        let mut out = [0u8; 2048];
        let rx = NtpTimestamp::from_unix_f64(t + 0.005);
        let reference = ReferenceInfo::local(2, NtpTimestamp::from_unix_f64(t - 5.0), -20);
        let Reply::Send { len } = server.handle_request(
            &tx.bytes(),
            "127.0.0.1:5000".parse().unwrap(),
            rx,
            1.0,
            &reference,
            &mut out,
        ) else {
            panic!("not answered");
        };
        server.finalize(&mut out[..len], rx);
        assert_eq!(len, tx.bytes().len(), "response as long as the request");
        if let RxOutcome::Sample(s) = a.on_packet(t + 0.01, &out[..len], None, false) {
            assert!(s.offset.abs() < 0.01);
            samples += 1;
        }
    }
    assert_eq!(samples, 4);
}

#[test]
fn case31_certificate_checks() {
    let good = good_cert();
    let t = trust(&good);
    // Wrong SAN.
    let mut s = KeServer::new(&good, 123);
    let mut c = client_for(&t, "ntp.example.org", true);
    assert!(matches!(s.exchange(&mut c), Err(NtsKeClientError::Tls(_))));
    // Self-signed by someone else (untrusted).
    let other = good_cert();
    let mut s = KeServer::new(&other, 123);
    let mut c = client_for(&t, "localhost", true);
    assert!(matches!(s.exchange(&mut c), Err(NtsKeClientError::Tls(_))));
    // Expired and not yet valid: rejected with time checks, accepted without (nocerttimecheck),
    // where the name is still checked.
    for (nb, na) in [((2000, 1, 1), (2001, 1, 1)), ((2035, 1, 1), (2036, 1, 1))] {
        let bad = cert(&["localhost"], nb, na);
        let tb = trust(&bad);
        let mut s = KeServer::new(&bad, 123);
        let mut c = client_for(&tb, "localhost", true);
        assert!(matches!(s.exchange(&mut c), Err(NtsKeClientError::Tls(_))));
        let mut c = client_for(&tb, "localhost", false);
        assert!(s.exchange(&mut c).is_ok());
        let mut c = client_for(&tb, "other.example", false);
        assert!(s.exchange(&mut c).is_err());
    }
}

#[test]
fn validity_midpoint_reads_the_certificate_dates() {
    let c = cert(&["localhost"], (2000, 1, 1), (2000, 1, 3));
    let der = CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap();
    assert_eq!(validity_midpoint(&der), Some(946_684_800 + 86_400));
    assert_eq!(validity_midpoint(&[0x30, 0x03, 0x30, 0x01]), None);
}

// ---- `ntstrustedcerts` certificates presented directly with the CA flag (chrony accepts) ----

/// A self-signed certificate with basicConstraints CA:TRUE, what plain `openssl req -x509`
/// makes; signed by `issuer` when given.
fn ca_cert(
    names: &[&str],
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
    issuer: Option<(&rcgen::Certificate, &KeyPair)>,
) -> (Cert, rcgen::Certificate, KeyPair) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    let kp = KeyPair::generate().unwrap();
    let c = match issuer {
        Some((ic, ik)) => params.signed_by(&kp, ic, ik).unwrap(),
        None => params.self_signed(&kp).unwrap(),
    };
    let cert = Cert {
        cert_pem: c.pem(),
        key_pem: kp.serialize_pem(),
    };
    (cert, c, kp)
}

fn good_ca_cert() -> Cert {
    ca_cert(
        &["localhost", "127.0.0.1"],
        (2020, 1, 1),
        (2040, 1, 1),
        None,
    )
    .0
}

fn tls_error(r: Result<NtsKeOutcome, NtsKeClientError>) -> String {
    match r {
        Err(NtsKeClientError::Tls(e)) => e,
        r => panic!("expected a TLS error, got {r:?}"),
    }
}

#[test]
fn trusted_ca_certificate_used_as_server_certificate_is_accepted() {
    let c = good_ca_cert();
    let mut server = KeServer::new(&c, 123);
    for name in ["localhost", "127.0.0.1"] {
        for check_time in [true, false] {
            let mut client = client_for(&trust(&c), name, check_time);
            let o = server.exchange(&mut client).unwrap();
            assert_eq!(o.cookies.len(), 8);
            assert_eq!(server.keys.open(&o.cookies[0]), Some(o.keys.clone()));
        }
    }
}

#[test]
fn ca_certificate_used_as_server_certificate_fails_unless_it_is_trusted_itself() {
    let c = good_ca_cert();
    let mut server = KeServer::new(&c, 123);
    // Another self-signed CA certificate is trusted, not this one.
    let mut client = client_for(&trust(&good_ca_cert()), "localhost", true);
    let e = tls_error(server.exchange(&mut client));
    assert!(e.contains("CaUsedAsEndEntity"), "{e}");
    // Issued by a trusted CA but not itself listed: webpki's rule stands.
    let (root, root_cert, root_key) = ca_cert(&["root"], (2020, 1, 1), (2040, 1, 1), None);
    let (leaf, _, _) = ca_cert(
        &["localhost"],
        (2020, 1, 1),
        (2040, 1, 1),
        Some((&root_cert, &root_key)),
    );
    let mut server = KeServer::new(&leaf, 123);
    let mut client = client_for(&trust(&root), "localhost", true);
    let e = tls_error(server.exchange(&mut client));
    assert!(e.contains("CaUsedAsEndEntity"), "{e}");
}

#[test]
fn trusted_ca_certificate_for_another_name_is_rejected() {
    let c = good_ca_cert();
    let mut server = KeServer::new(&c, 123);
    for check_time in [true, false] {
        let mut client = client_for(&trust(&c), "ntp.example.org", check_time);
        let e = tls_error(server.exchange(&mut client));
        assert!(e.contains("not valid for name"), "{e}");
    }
}

#[test]
fn trusted_ca_certificate_validity_is_checked_unless_nocerttimecheck() {
    for (nb, na) in [((2000, 1, 1), (2001, 1, 1)), ((2035, 1, 1), (2036, 1, 1))] {
        let (c, _, _) = ca_cert(&["localhost"], nb, na, None);
        let mut server = KeServer::new(&c, 123);
        let mut client = client_for(&trust(&c), "localhost", true);
        let e = tls_error(server.exchange(&mut client));
        assert!(e.contains("expired") || e.contains("not valid yet"), "{e}");
        let mut client = client_for(&trust(&c), "localhost", false);
        assert!(server.exchange(&mut client).is_ok());
        let mut client = client_for(&trust(&c), "other.example", false);
        assert!(server.exchange(&mut client).is_err());
    }
}

#[test]
fn trusted_ca_certificate_with_a_foreign_key_fails_the_handshake_signature() {
    let c = good_ca_cert();
    let impostor = good_ca_cert();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()];
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(impostor.key_pem.as_bytes()).unwrap();
    let signer = provider.key_provider.load_private_key(key).unwrap();
    // `CertifiedKey::new` does not check that the key matches the certificate.
    let certified = rustls::sign::CertifiedKey::new(chain, signer);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    cfg.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    let mut server = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
    let mut client = client_for(&trust(&c), "localhost", true);
    let e = tls_error(
        run_raw(&mut server, &mut client).and_then(|o| o.ok_or(NtsKeClientError::Truncated)),
    );
    assert!(e.contains("BadSignature"), "{e}");
}

/// A raw rustls server with the given ALPN list, for ALPN failures.
fn raw_server(c: &Cert, alpn: Vec<Vec<u8>>) -> rustls::ServerConnection {
    let chain = vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    cfg.alpn_protocols = alpn;
    rustls::ServerConnection::new(Arc::new(cfg)).unwrap()
}

fn run_raw(
    server: &mut rustls::ServerConnection,
    client: &mut NtsKeClient,
) -> Result<Option<NtsKeOutcome>, NtsKeClientError> {
    for _ in 0..10 {
        let mut c2s = Vec::new();
        client.write_tls(&mut c2s);
        let mut rd = &c2s[..];
        while !rd.is_empty() {
            if server.read_tls(&mut rd).is_err() {
                break;
            }
            if server.process_new_packets().is_err() {
                break;
            }
        }
        let mut s2c = Vec::new();
        while server.wants_write() {
            if server.write_tls(&mut s2c).unwrap_or(0) == 0 {
                break;
            }
        }
        if !s2c.is_empty() {
            client.read_tls(&s2c, 0.1)?;
        }
    }
    client.read_tls(&[], 0.2)
}

#[test]
fn case26_server_without_ntske_alpn_fails() {
    let c = good_cert();
    let t = trust(&c);
    let mut s = raw_server(&c, vec![]);
    let mut cl = client_for(&t, "localhost", true);
    assert_eq!(
        run_raw(&mut s, &mut cl).unwrap_err(),
        NtsKeClientError::Alpn
    );
    let mut s = raw_server(&c, vec![b"ntske/2".to_vec(), b"http/1.1".to_vec()]);
    let mut cl = client_for(&t, "localhost", true);
    assert!(matches!(
        run_raw(&mut s, &mut cl),
        Err(NtsKeClientError::Tls(_))
    ));
}

#[test]
fn case25_tls12_only_server_fails() {
    let c = good_cert();
    let chain = vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    cfg.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    let mut s = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
    let mut cl = client_for(&trust(&c), "localhost", true);
    assert!(matches!(
        run_raw(&mut s, &mut cl),
        Err(NtsKeClientError::Tls(_))
    ));
}

#[test]
fn case29_deadline_truncation_and_garbage() {
    let c = good_cert();
    let t = trust(&c);
    let mut cl = client_for(&t, "localhost", true);
    assert!(cl.check_deadline(DEFAULT_KE_TIMEOUT - 0.1).is_ok());
    const { assert!(DEFAULT_KE_TIMEOUT <= 16.0) };
    assert_eq!(
        cl.read_tls(b"x", DEFAULT_KE_TIMEOUT + 0.1).unwrap_err(),
        NtsKeClientError::Timeout
    );
    // Closed right after the ClientHello (RST / refused look the same to the state machine).
    let mut cl = client_for(&t, "localhost", true);
    let mut hello = Vec::new();
    assert!(cl.write_tls(&mut hello) > 0);
    assert_eq!(
        cl.read_tls(&[], 0.5).unwrap_err(),
        NtsKeClientError::Truncated
    );
    // Garbage instead of TLS.
    let mut cl = client_for(&t, "localhost", true);
    assert!(matches!(
        cl.read_tls(b"HTTP/1.1 400 Bad Request\r\n\r\n", 0.5),
        Err(NtsKeClientError::Tls(_))
    ));
    // Unusable server names.
    assert_eq!(
        NtsKeClient::new(&t, "bad name!", NOW_WALL, true, 0.0, 1.0).unwrap_err(),
        NtsKeClientError::BadServerName
    );
}

#[test]
fn trust_roots_must_be_certificates() {
    assert_eq!(
        NtsTrust::new(&[b"not a pem".to_vec()], false).unwrap_err(),
        NtsTrustError::BadCertificate(0)
    );
    assert_eq!(
        NtsTrust::new(&[], false).unwrap_err(),
        NtsTrustError::NoTrustRoots
    );
}

// ---- case 27: records from the server ----

fn keys() -> SessionKeys {
    SessionKeys {
        c2s: [1; 32],
        s2c: [2; 32],
    }
}

#[derive(Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn new() -> Msg {
        Msg(Vec::new())
    }
    fn rec(mut self, critical: bool, t: u16, body: &[u8]) -> Msg {
        let mut b = vec![0u8; 4 + body.len()];
        let n = encode_record(&mut b, critical, t, body).unwrap();
        self.0.extend_from_slice(&b[..n]);
        self
    }
    fn u16(mut self, critical: bool, t: u16, v: &[u16]) -> Msg {
        let mut b = vec![0u8; 4 + 2 * v.len()];
        let n = encode_u16_record(&mut b, critical, t, v).unwrap();
        self.0.extend_from_slice(&b[..n]);
        self
    }
    fn proto(self) -> Msg {
        self.u16(true, RECORD_NEXT_PROTOCOL, &[0])
    }
    fn aead(self) -> Msg {
        self.u16(true, RECORD_AEAD_ALGORITHM, &[15])
    }
    fn cookies(mut self, n: usize, len: usize) -> Msg {
        for i in 0..n {
            self = self.rec(false, RECORD_NEW_COOKIE, &vec![i as u8; len]);
        }
        self
    }
    fn end(self) -> Msg {
        self.rec(true, RECORD_END_OF_MESSAGE, &[])
    }
    fn parse(&self) -> Result<NtsKeOutcome, NtsKeClientError> {
        let m = NtsKeMessage::decode(&self.0).unwrap();
        parse_response(&m, keys())
    }
}

fn base() -> Msg {
    Msg::new().proto().aead()
}

#[test]
fn case27_records_from_the_server() {
    use NtsKeClientError as E;
    assert_eq!(
        base().cookies(2, 100).end().parse().unwrap().cookies.len(),
        2
    );
    // Unknown critical record fails; the same without the critical bit is ignored.
    assert_eq!(
        base()
            .rec(true, 0x4000, b"x")
            .cookies(1, 100)
            .end()
            .parse()
            .unwrap_err(),
        E::UnknownCriticalRecord(0x4000)
    );
    assert!(base()
        .rec(false, 0x4000, b"x")
        .cookies(1, 100)
        .end()
        .parse()
        .is_ok());
    // Record body > 256 octets.
    assert_eq!(
        base()
            .rec(false, 0x4000, &[0; 257])
            .cookies(1, 100)
            .end()
            .parse()
            .unwrap_err(),
        E::Malformed
    );
    // Next Protocol missing, not critical, wrong length or value.
    assert_eq!(
        Msg::new().aead().cookies(1, 100).end().parse().unwrap_err(),
        E::NextProtocol
    );
    for bad in [
        Msg::new().u16(false, RECORD_NEXT_PROTOCOL, &[0]),
        Msg::new().rec(true, RECORD_NEXT_PROTOCOL, &[0]),
        Msg::new().u16(true, RECORD_NEXT_PROTOCOL, &[1]),
        Msg::new().u16(true, RECORD_NEXT_PROTOCOL, &[0, 0]),
    ] {
        assert_eq!(
            bad.aead().cookies(1, 100).end().parse().unwrap_err(),
            E::NextProtocol
        );
    }
    // AEAD missing or not offered.
    assert_eq!(
        Msg::new()
            .proto()
            .cookies(1, 100)
            .end()
            .parse()
            .unwrap_err(),
        E::Aead
    );
    assert_eq!(
        Msg::new()
            .proto()
            .u16(true, RECORD_AEAD_ALGORITHM, &[30])
            .cookies(1, 100)
            .end()
            .parse()
            .unwrap_err(),
        E::Aead
    );
    // Error and Warning records.
    assert_eq!(
        base()
            .u16(true, RECORD_ERROR, &[1])
            .end()
            .parse()
            .unwrap_err(),
        E::ServerError(1)
    );
    assert_eq!(
        base()
            .u16(true, RECORD_WARNING, &[7])
            .cookies(1, 100)
            .end()
            .parse()
            .unwrap_err(),
        E::ServerWarning(7)
    );
    // Server names: space, non-printable, too long; valid ones kept.
    for bad in [&b"ntp example"[..], b"ntp\x01", &[b'a'; 256][..], b""] {
        assert_eq!(
            base()
                .rec(true, RECORD_NTPV4_SERVER, bad)
                .cookies(1, 100)
                .end()
                .parse()
                .unwrap_err(),
            E::ServerRecord
        );
    }
    let o = base()
        .rec(true, RECORD_NTPV4_SERVER, b"ntp.example.org")
        .u16(true, RECORD_NTPV4_PORT, &[1234])
        .cookies(1, 100)
        .end()
        .parse()
        .unwrap();
    assert_eq!(
        (o.ntp_server.as_deref(), o.ntp_port),
        (Some("ntp.example.org"), Some(1234))
    );
    // Port length ≠ 2.
    for bad in [&[1u8][..], &[0, 1, 2]] {
        assert_eq!(
            base()
                .rec(true, RECORD_NTPV4_PORT, bad)
                .cookies(1, 100)
                .end()
                .parse()
                .unwrap_err(),
            E::PortRecord
        );
    }
    // Zero cookies, or only malformed ones.
    assert_eq!(base().end().parse().unwrap_err(), E::NoCookies);
    assert_eq!(
        base().cookies(3, 5).end().parse().unwrap_err(),
        E::NoCookies
    );
    // 100 cookies: eight kept.
    assert_eq!(
        base()
            .cookies(100, 100)
            .end()
            .parse()
            .unwrap()
            .cookies
            .len(),
        8
    );
    // End of Message not critical.
    let m = base()
        .cookies(1, 100)
        .rec(false, RECORD_END_OF_MESSAGE, &[]);
    assert_eq!(m.parse().unwrap_err(), E::Malformed);
}

#[test]
fn case27_response_longer_than_16384_octets_fails() {
    // Fed as plaintext through a real session: the server sends a huge response.
    let c = good_cert();
    let t = trust(&c);
    let mut server = raw_server(&c, vec![ALPN_NTSKE.to_vec()]);
    let mut client = client_for(&t, "localhost", true);
    // Handshake.
    let mut result = Ok(None);
    for round in 0..6 {
        let mut c2s = Vec::new();
        client.write_tls(&mut c2s);
        let mut rd = &c2s[..];
        while !rd.is_empty() && server.read_tls(&mut rd).is_ok() {
            server.process_new_packets().unwrap();
        }
        if round == 2 {
            // Records without End of Message, 17000 octets in all.
            let big = Msg::new().cookies(170, 96);
            server.writer().write_all(&big.0).unwrap();
        }
        let mut s2c = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut s2c).unwrap();
        }
        if !s2c.is_empty() {
            result = client.read_tls(&s2c, 0.1);
            if result.is_err() {
                break;
            }
        }
    }
    assert_eq!(result.unwrap_err(), NtsKeClientError::ResponseTooLong);
}

#[test]
fn request_offers_ntpv4_and_aes_siv_cmac_256() {
    let r = request();
    let m = NtsKeMessage::decode(&r).unwrap();
    let recs: Vec<_> = m.records().collect();
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.critical));
    assert_eq!(recs[0].record_type, RECORD_NEXT_PROTOCOL);
    assert_eq!(recs[0].body, [0, 0]);
    assert_eq!(recs[1].record_type, RECORD_AEAD_ALGORITHM);
    assert_eq!(recs[1].body, [0, 15]);
}

proptest::proptest! {
    #[test]
    fn client_never_panics_on_server_bytes(
        chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..4)
    ) {
        let c = good_cert();
        let mut cl = client_for(&trust(&c), "localhost", true);
        let mut out = Vec::new();
        cl.write_tls(&mut out);
        for ch in &chunks {
            if cl.read_tls(ch, 0.1).is_err() {
                break;
            }
        }
    }

    #[test]
    fn response_parser_is_total(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        if let Ok(m) = NtsKeMessage::decode(&data) {
            let _ = parse_response(&m, keys());
        }
    }
}
