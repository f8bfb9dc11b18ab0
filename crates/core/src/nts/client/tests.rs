//! Client-side tests: the cookie jar (cases 20, 32), NTS-KE response judging (case 27) and a
//! whole exchange against this crate's server in memory.

use gnomon_wire::nts_ke::{encode_record, ERROR_BAD_REQUEST};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::nts::ke::tests::self_signed;
use crate::nts::{NtsKeServerSetup, NtsKeSession, ServerKeys};

#[test]
fn case32_jar_never_hands_out_a_cookie_twice_and_holds_eight() {
    let mut jar = CookieJar::new();
    for i in 0..12u8 {
        let added = jar.add(&[i; 100]);
        assert_eq!(added, i < 8);
    }
    assert_eq!(jar.placeholders_wanted(), 0);
    let mut seen = Vec::new();
    while let Some(c) = jar.take() {
        assert!(!seen.iter().any(|s: &Vec<u8>| s[..] == c[..]));
        seen.push(c.to_vec());
    }
    assert_eq!(seen.len(), 8);
    assert!(jar.is_empty());
    assert_eq!(jar.placeholders_wanted(), 7);
}

#[test]
fn case20_hostile_cookie_lengths_are_refused() {
    let mut jar = CookieJar::new();
    assert!(!jar.add(&[]));
    assert!(jar.add(&[1]));
    assert!(jar.add(&[2; 3]));
    assert!(jar.add(&[3; 256]));
    assert!(!jar.add(&[4; 257]));
    assert!(!jar.add(&[5; 4096]));
    assert_eq!(jar.len(), 3);
    assert!(!format!("{jar:?}").contains("1, "));
}

struct Msg(Vec<u8>);

impl Msg {
    fn new() -> Msg {
        Msg(Vec::new())
    }
    fn rec(mut self, critical: bool, t: u16, body: &[u8]) -> Msg {
        let mut b = vec![0u8; 4 + body.len()];
        encode_record(&mut b, critical, t, body).unwrap();
        self.0.extend(b);
        self
    }
    fn good() -> Msg {
        Msg::new()
            .rec(true, RECORD_NEXT_PROTOCOL, &[0, 0])
            .rec(true, RECORD_AEAD_ALGORITHM, &[0, 15])
            .rec(false, RECORD_NEW_COOKIE, &[9; 100])
    }
    fn end(self) -> Vec<u8> {
        self.rec(true, RECORD_END_OF_MESSAGE, &[]).0
    }
}

fn judge(bytes: &[u8]) -> Result<KeResponse, KeClientError> {
    parse_ke_response(&NtsKeMessage::decode(bytes).map_err(|_| KeClientError::Malformed)?)
}

/// Catalogue case 27, each record fault on its own.
#[test]
fn case27_server_records_are_judged() {
    let ok = judge(&Msg::good().end()).unwrap();
    assert_eq!(ok.cookies.len(), 1);
    assert_eq!((ok.server, ok.port), (None, None));
    let cases: Vec<(Vec<u8>, KeClientError)> = vec![
        (
            Msg::good().rec(true, 0x4000, b"x").end(),
            KeClientError::UnknownCritical(0x4000),
        ),
        (Msg::good().0, KeClientError::Malformed),
        (
            Msg::new()
                .rec(true, RECORD_AEAD_ALGORITHM, &[0, 15])
                .rec(false, RECORD_NEW_COOKIE, &[9; 100])
                .end(),
            KeClientError::BadNextProtocol,
        ),
        (
            Msg::new()
                .rec(false, RECORD_NEXT_PROTOCOL, &[0, 0])
                .rec(true, RECORD_AEAD_ALGORITHM, &[0, 15])
                .rec(false, RECORD_NEW_COOKIE, &[9; 100])
                .end(),
            KeClientError::BadNextProtocol,
        ),
        (
            Msg::new()
                .rec(true, RECORD_NEXT_PROTOCOL, &[0, 0, 0, 1])
                .rec(true, RECORD_AEAD_ALGORITHM, &[0, 15])
                .rec(false, RECORD_NEW_COOKIE, &[9; 100])
                .end(),
            KeClientError::BadNextProtocol,
        ),
        (
            Msg::new()
                .rec(true, RECORD_NEXT_PROTOCOL, &[0, 1])
                .rec(true, RECORD_AEAD_ALGORITHM, &[0, 15])
                .rec(false, RECORD_NEW_COOKIE, &[9; 100])
                .end(),
            KeClientError::BadNextProtocol,
        ),
        (
            Msg::new()
                .rec(true, RECORD_NEXT_PROTOCOL, &[0, 0])
                .rec(true, RECORD_AEAD_ALGORITHM, &[0, 30])
                .rec(false, RECORD_NEW_COOKIE, &[9; 100])
                .end(),
            KeClientError::BadAead,
        ),
        (
            Msg::good().rec(true, RECORD_ERROR, &[0, 1]).end(),
            KeClientError::ServerError(ERROR_BAD_REQUEST),
        ),
        (
            Msg::good().rec(true, RECORD_WARNING, &[0, 7]).end(),
            KeClientError::ServerWarning(7),
        ),
        (
            Msg::good().rec(true, RECORD_NTPV4_SERVER, b"a b").end(),
            KeClientError::BadServer,
        ),
        (
            Msg::good().rec(true, RECORD_NTPV4_SERVER, b"a\x01b").end(),
            KeClientError::BadServer,
        ),
        (
            Msg::good()
                .rec(true, RECORD_NTPV4_SERVER, &[b'a'; 256])
                .end(),
            KeClientError::BadServer,
        ),
        (
            Msg::good().rec(true, RECORD_NTPV4_PORT, &[0, 1, 2]).end(),
            KeClientError::BadPort,
        ),
        (
            Msg::new()
                .rec(true, RECORD_NEXT_PROTOCOL, &[0, 0])
                .rec(true, RECORD_AEAD_ALGORITHM, &[0, 15])
                .end(),
            KeClientError::NoCookies,
        ),
    ];
    for (i, (bytes, want)) in cases.into_iter().enumerate() {
        assert_eq!(judge(&bytes).unwrap_err(), want, "case {i}");
    }
    // The unknown record without the critical bit is ignored; 100 cookies keep 8.
    assert!(judge(&Msg::good().rec(false, 0x4000, b"x").end()).is_ok());
    let mut many = Msg::good();
    for _ in 0..100 {
        many = many.rec(false, RECORD_NEW_COOKIE, &[1; 100]);
    }
    assert_eq!(judge(&many.end()).unwrap().cookies.len(), MAX_COOKIES);
}

#[test]
fn client_and_server_agree_on_keys_and_cookies() {
    let (cert, key) = self_signed();
    let mut setup = NtsKeServerSetup::new(&[(cert.clone(), key)], 4123).unwrap();
    setup.ntp_server = Some("127.0.0.1".into());
    let mut rng = StdRng::seed_from_u64(1);
    let keys = ServerKeys::generate(&mut rng, 0.0, 100.0);
    let config = tls_client_config(&[cert], &[]).unwrap();
    let mut client = KeClientSession::new(config, "localhost", 0.0, 5.0).unwrap();
    let mut server = NtsKeSession::new(&setup, 0.0).unwrap();
    let mut done = None;
    for _ in 0..10 {
        let mut c2s = Vec::new();
        client.write_tls(&mut c2s);
        if !c2s.is_empty() {
            server.read_tls(&c2s, 0.1, &keys, &setup, &mut rng).unwrap();
        }
        let mut s2c = Vec::new();
        server.write_tls(&mut s2c);
        if !s2c.is_empty() {
            if let Some(r) = client.read_tls(&s2c, 0.1).unwrap() {
                done = Some(r);
                break;
            }
        }
    }
    let (mut response, session) = done.expect("exchange completes");
    assert_eq!(response.server.as_deref(), Some("127.0.0.1"));
    assert_eq!(response.port, Some(4123));
    assert_eq!(response.cookies.len(), 8);
    while let Some(c) = response.cookies.take() {
        assert_eq!(keys.open(&c), Some(session.clone()));
    }
    // A client that trusts another certificate fails.
    let (other, _) = self_signed();
    let config = tls_client_config(&[other], &[]).unwrap();
    let mut client = KeClientSession::new(config, "localhost", 0.0, 5.0).unwrap();
    let mut server = NtsKeSession::new(&setup, 0.0).unwrap();
    let mut c2s = Vec::new();
    client.write_tls(&mut c2s);
    server.read_tls(&c2s, 0.1, &keys, &setup, &mut rng).unwrap();
    let mut s2c = Vec::new();
    server.write_tls(&mut s2c);
    assert!(matches!(
        client.read_tls(&s2c, 0.1),
        Err(KeClientError::Tls(_))
    ));
    assert_eq!(
        KeClientSession::new(tls_client_config(&[], &[]).unwrap(), "localhost", 0.0, 1.0)
            .unwrap()
            .read_tls(b"x", 2.0)
            .unwrap_err(),
        KeClientError::Timeout
    );
}
