//! NTS-KE server tests: record parsing (catalogue case 28), and whole exchanges with a rustls
//! client in memory over a self-signed certificate made with `openssl` (cases 25, 26).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use gnomon_wire::nts_ke::{encode_u16_record, NtsKeMessage, RECORD_NEW_COOKIE};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rustls::pki_types::ServerName;

use super::*;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed P-256 certificate for localhost / 127.0.0.1 and its key, as PEM.
pub(crate) fn self_signed() -> (Vec<u8>, Vec<u8>) {
    self_signed_for("localhost")
}

/// A self-signed P-256 certificate for `host` (and 127.0.0.1) and its key, as PEM.
pub(crate) fn self_signed_for(host: &str) -> (Vec<u8>, Vec<u8>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = TempDir(std::env::temp_dir().join(format!(
        "gnomon-ke-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={host}")])
        .args([
            "-addext",
            &format!("subjectAltName=DNS:{host},IP:127.0.0.1"),
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.0.join("key.pem"))
        .arg("-out")
        .arg(dir.0.join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl must be installed to run NTS-KE tests");
    assert!(status.success());
    (
        std::fs::read(dir.0.join("cert.pem")).unwrap(),
        std::fs::read(dir.0.join("key.pem")).unwrap(),
    )
}

fn request(protocols: &[u16], aeads: Option<&[u16]>) -> Vec<u8> {
    let mut out = vec![0u8; 256];
    let mut n = encode_u16_record(&mut out, true, RECORD_NEXT_PROTOCOL, protocols).unwrap();
    if let Some(a) = aeads {
        n += encode_u16_record(&mut out[n..], true, RECORD_AEAD_ALGORITHM, a).unwrap();
    }
    n += encode_end_of_message(&mut out[n..]).unwrap();
    out.truncate(n);
    out
}

fn parse(bytes: &[u8]) -> KeRequest {
    parse_request(&NtsKeMessage::decode(bytes).unwrap())
}

/// Catalogue case 28: unknown critical record → Error 0; bad requests → Error 1.
#[test]
fn case28_request_records() {
    assert_eq!(parse(&request(&[0], Some(&[15]))), KeRequest::Ntpv4);
    assert_eq!(parse(&request(&[0], Some(&[30, 15]))), KeRequest::Ntpv4);
    assert_eq!(parse(&request(&[0], Some(&[30]))), KeRequest::NoAead);
    assert_eq!(parse(&request(&[1], Some(&[15]))), KeRequest::NoProtocol);
    assert_eq!(
        parse(&request(&[0], None)),
        KeRequest::Error(ERROR_BAD_REQUEST)
    );
    let mut unknown = vec![0u8; 64];
    let mut n = encode_record(&mut unknown, true, 0x1234, b"x").unwrap();
    n += encode_u16_record(&mut unknown[n..], true, RECORD_NEXT_PROTOCOL, &[0]).unwrap();
    n += encode_u16_record(&mut unknown[n..], true, RECORD_AEAD_ALGORITHM, &[15]).unwrap();
    n += encode_end_of_message(&mut unknown[n..]).unwrap();
    assert_eq!(
        parse(&unknown[..n]),
        KeRequest::Error(ERROR_UNRECOGNIZED_CRITICAL_RECORD)
    );
    // The same record without the critical bit is ignored.
    unknown[0] &= 0x7f;
    assert_eq!(parse(&unknown[..n]), KeRequest::Ntpv4);
    // No Next Protocol, a non-critical one, two of them, an odd body, a cookie from the client,
    // a non-critical End of Message.
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let mut b = vec![0u8; 64];
    let k = encode_end_of_message(&mut b).unwrap();
    cases.push(b[..k].to_vec());
    let mut r = request(&[0], Some(&[15]));
    r[0] &= 0x7f;
    cases.push(r);
    let mut r = request(&[0], Some(&[15]));
    let dup = r[..6].to_vec();
    r.splice(0..0, dup);
    cases.push(r);
    let mut b = vec![0u8; 64];
    let mut k = encode_record(&mut b, true, RECORD_NEXT_PROTOCOL, &[0, 0, 0]).unwrap();
    k += encode_end_of_message(&mut b[k..]).unwrap();
    cases.push(b[..k].to_vec());
    let mut r = request(&[0], Some(&[15]));
    let mut c = vec![0u8; 8];
    encode_record(&mut c, false, RECORD_NEW_COOKIE, b"abcd").unwrap();
    r.splice(0..0, c);
    cases.push(r);
    let mut r = request(&[0], Some(&[15]));
    let len = r.len();
    r[len - 4] = 0;
    cases.push(r);
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(parse(c), KeRequest::Error(ERROR_BAD_REQUEST), "case {i}");
    }
}

fn client(setup_cert: &[u8], alpn: &[&[u8]]) -> rustls::ClientConnection {
    client_for(setup_cert, alpn, "localhost")
}

fn client_for(setup_cert: &[u8], alpn: &[&[u8]], host: &str) -> rustls::ClientConnection {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(setup_cert) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(host.to_owned()).unwrap(),
    )
    .unwrap()
}

/// Runs client and server in memory until both are quiet; returns the server's result and
/// everything the client read.
fn exchange(
    setup: &NtsKeServerSetup,
    keys: &ServerKeys,
    client: &mut rustls::ClientConnection,
    request: &[u8],
) -> (Result<(), NtsKeError>, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut server = NtsKeSession::new(setup, 0.0).unwrap();
    client.writer().write_all(request).unwrap();
    let mut received = Vec::new();
    for _ in 0..20 {
        let mut to_server = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        if !to_server.is_empty() {
            if let Err(e) = server.read_tls(&to_server, 0.5, keys, setup, &mut rng) {
                return (Err(e), received);
            }
        }
        let mut to_client = Vec::new();
        server.write_tls(&mut to_client);
        if to_server.is_empty() && to_client.is_empty() {
            break;
        }
        let mut slice = &to_client[..];
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
            if let Err(e) = client.process_new_packets() {
                eprintln!("client: {e}");
                return (Ok(()), received);
            }
        }
        let _ = client.reader().read_to_end(&mut received);
    }
    assert!(server.is_done());
    (Ok(()), received)
}

#[test]
fn key_exchange_gives_eight_cookies_sealing_the_exported_keys() {
    let (cert, key) = self_signed();
    let mut setup = NtsKeServerSetup::new(&[(cert.clone(), key)], 11123).unwrap();
    setup.ntp_server = Some("127.0.0.1".into());
    let mut rng = StdRng::seed_from_u64(2);
    let keys = ServerKeys::generate(&mut rng, 0.0, 100.0);
    let mut c = client(&cert, &[ALPN_NTSKE]);
    let (result, received) = exchange(&setup, &keys, &mut c, &request(&[0], Some(&[15])));
    result.unwrap();
    let msg = NtsKeMessage::decode(&received).unwrap();
    let records: Vec<_> = msg.records().collect();
    assert_eq!(
        msg.find(RECORD_NEXT_PROTOCOL).unwrap().body,
        &[0, 0],
        "{records:?}"
    );
    assert_eq!(msg.find(RECORD_AEAD_ALGORITHM).unwrap().body, &[0, 15]);
    assert_eq!(msg.find(RECORD_NTPV4_SERVER).unwrap().body, b"127.0.0.1");
    assert_eq!(msg.find(RECORD_NTPV4_PORT).unwrap().body_u16(), Ok(11123));
    let cookies: Vec<_> = msg
        .records()
        .filter(|r| r.record_type == RECORD_NEW_COOKIE)
        .collect();
    assert_eq!(cookies.len(), KE_COOKIES);
    let client_keys = export_keys(&c).unwrap();
    for cookie in cookies {
        assert_eq!(keys.open(cookie.body), Some(client_keys.clone()));
    }
}

/// Catalogue case 26: a client offering another ALPN protocol fails in the handshake, one
/// offering none is refused after it.
#[test]
fn case26_alpn_other_than_ntske_is_refused() {
    let (cert, key) = self_signed();
    let setup = NtsKeServerSetup::new(&[(cert.clone(), key)], 123).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let keys = ServerKeys::generate(&mut rng, 0.0, 100.0);
    let mut c = client(&cert, &[b"http/1.1"]);
    let (result, received) = exchange(&setup, &keys, &mut c, &request(&[0], Some(&[15])));
    assert!(matches!(result, Err(NtsKeError::Tls(_))), "{result:?}");
    assert!(received.is_empty());
    let mut c = client(&cert, &[]);
    let (result, received) = exchange(&setup, &keys, &mut c, &request(&[0], Some(&[15])));
    assert_eq!(result, Err(NtsKeError::NoAlpn));
    assert!(received.is_empty());
}

/// A request that never ends (no End of Message) and grows past 16384 octets fails the
/// session; a silent peer fails at the deadline.
#[test]
fn overlong_request_and_deadline_fail_the_session() {
    let (cert, key) = self_signed();
    let setup = NtsKeServerSetup::new(&[(cert.clone(), key)], 123).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let keys = ServerKeys::generate(&mut rng, 0.0, 100.0);
    let mut big = vec![0u8; 20000];
    let mut n = 0;
    while n + 1004 < big.len() {
        n += encode_record(&mut big[n..], false, 0x0100, &[0; 1000]).unwrap();
    }
    big.truncate(n);
    let mut c = client(&cert, &[ALPN_NTSKE]);
    let (result, _) = exchange(&setup, &keys, &mut c, &big);
    assert_eq!(result, Err(NtsKeError::RequestTooLong));

    let s = NtsKeSession::new(&setup, 10.0).unwrap();
    assert_eq!(s.check_deadline(11.9), Ok(()));
    assert_eq!(s.check_deadline(12.1), Err(NtsKeError::Timeout));
    let mut s = NtsKeSession::new(&setup, 10.0).unwrap();
    assert_eq!(
        s.read_tls(&[22, 3, 1], 13.0, &keys, &setup, &mut rng),
        Err(NtsKeError::Timeout)
    );
    let mut s = NtsKeSession::new(&setup, 10.0).unwrap();
    assert_eq!(
        s.read_tls(&[], 10.5, &keys, &setup, &mut rng),
        Err(NtsKeError::Truncated)
    );
}

/// Several `ntsservercert`/`ntsserverkey` pairs: SNI picks the matching one, anything else
/// the first.
#[test]
fn sni_selects_among_several_certificates() {
    let alpha = self_signed_for("alpha.test");
    let beta = self_signed_for("beta.test");
    let setup = NtsKeServerSetup::new(&[alpha.clone(), beta.clone()], 123).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let keys = ServerKeys::generate(&mut rng, 0.0, 100.0);
    for (trusted, host) in [
        (&beta.0, "beta.test"),
        (&alpha.0, "alpha.test"),
        (&alpha.0, "127.0.0.1"),
    ] {
        let mut c = client_for(trusted, &[ALPN_NTSKE], host);
        let (result, received) = exchange(&setup, &keys, &mut c, &request(&[0], Some(&[15])));
        result.unwrap();
        assert!(NtsKeMessage::decode(&received).is_ok(), "{host}");
    }
    // A client trusting beta but asking for alpha gets alpha's certificate and fails.
    let mut c = client_for(&beta.0, &[ALPN_NTSKE], "alpha.test");
    let (_, received) = exchange(&setup, &keys, &mut c, &request(&[0], Some(&[15])));
    assert!(received.is_empty());
    // A key that does not match its certificate is refused at setup.
    assert!(matches!(
        NtsKeServerSetup::new(&[(alpha.0, beta.1)], 123),
        Err(NtsKeSetupError::Tls(_))
    ));
}

#[test]
fn setup_rejects_missing_or_bad_pem() {
    assert_eq!(
        NtsKeServerSetup::new(&[], 123).unwrap_err(),
        NtsKeSetupError::NoCertificate
    );
    assert_eq!(
        NtsKeServerSetup::new(&[(b"junk".to_vec(), b"junk".to_vec())], 123).unwrap_err(),
        NtsKeSetupError::BadCertificate
    );
    let (cert, _) = self_signed();
    assert_eq!(
        NtsKeServerSetup::new(&[(cert, b"junk".to_vec())], 123).unwrap_err(),
        NtsKeSetupError::BadPrivateKey
    );
}

proptest! {
    /// Case 28 (fuzz): any byte string either fails to decode as a message or parses to a
    /// verdict, and the response never holds more than eight cookies.
    #[test]
    fn case28_request_parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = NtsKeMessage::decode(&bytes) {
            let _ = parse_request(&m);
        }
    }

    /// Garbage TLS bytes never panic the session.
    #[test]
    fn garbage_tls_input_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 1..600)) {
        thread_local! {
            static SETUP: (NtsKeServerSetup, ServerKeys) = {
                let (cert, key) = self_signed();
                let mut rng = StdRng::seed_from_u64(5);
                (NtsKeServerSetup::new(&[(cert, key)], 123).unwrap(), ServerKeys::generate(&mut rng, 0.0, 1.0))
            };
        }
        SETUP.with(|(setup, keys)| {
            let mut rng = StdRng::seed_from_u64(6);
            let mut s = NtsKeSession::new(setup, 0.0).unwrap();
            let _ = s.read_tls(&bytes, 0.1, keys, setup, &mut rng);
            let mut out = Vec::new();
            s.write_tls(&mut out);
        });
    }
}
