//! Interop: this crate's client half against a real chronyd 4.3 server (`-x`, under
//! `noclock`, loopback only). The test plays the daemon: it connects to chronyd's NTS-KE port
//! with a `TcpStream` and drives [`NtsKeClient`], then sends the association's NTS requests
//! over a `UdpSocket` and feeds the answers back; likewise for a symmetric key. chronyd's
//! certificate is a self-signed one made with `rcgen` here (or, for the case of a CA
//! certificate used directly, with plain `openssl req -x509`) and trusted through
//! `ntstrustedcerts` semantics ([`NtsTrust`] from its PEM).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gnomon_core::association::{Association, AuthState, Rejection, RxOutcome, SourceConfig};
use gnomon_core::auth::KeyStore;
use gnomon_core::nts_client::{NtsKeClient, NtsKeOutcome, NtsSource, NtsState, NtsTrust};

fn noclock() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/noclock");
    if repo.exists() {
        repo
    } else {
        PathBuf::from("/work/shared/tools/noclock")
    }
}

fn free_port(salt: u32) -> u16 {
    let base = std::process::id()
        .wrapping_mul(2_246_822_519)
        .wrapping_add(salt.wrapping_mul(7919));
    for i in 0..2000u32 {
        let p = 20000 + (base.wrapping_add(i * 53) % 40000) as u16;
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port");
}

fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Kills chronyd and removes the directory, even when the test fails.
struct Guard {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Chronyd {
    guard: Guard,
    cert_pem: String,
    ntp_port: u16,
    ke_port: u16,
}

const KEYS: &str = "1 MD5 HEX:00112233445566778899AABBCCDDEEFF\n\
                    2 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233\n";

/// How chronyd's certificate is made.
enum CertKind {
    /// `rcgen`'s simple self-signed end-entity certificate for `localhost`.
    Rcgen,
    /// Plain `openssl req -x509` (P-256, CN and SAN `localhost`): basicConstraints CA:TRUE.
    OpensslReqX509,
}

fn chronyd(name: &str) -> Chronyd {
    chronyd_with(name, CertKind::Rcgen)
}

fn chronyd_with(name: &str, kind: CertKind) -> Chronyd {
    let dir = std::env::temp_dir().join(format!("gnomon-ntsclient-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut guard = Guard {
        child: None,
        dir: dir.clone(),
    };
    match kind {
        CertKind::Rcgen => {
            let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
            std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
        }
        CertKind::OpensslReqX509 => {
            let status = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "30",
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost",
                    "-keyout",
                ])
                .arg(dir.join("key.pem"))
                .arg("-out")
                .arg(dir.join("cert.pem"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl is needed for this interop test");
            assert!(status.success(), "openssl req failed");
        }
    }
    let cert_pem = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    std::fs::write(dir.join("keys"), KEYS).unwrap();
    let ntp_port = free_port(name.len() as u32 * 3 + 1);
    let ke_port = free_port(name.len() as u32 * 5 + 2);
    let conf = dir.join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "port {ntp_port}\nntsport {ke_port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\n\
             local stratum 8\ncmdport 0\nntsservercert {d}/cert.pem\nntsserverkey {d}/key.pem\n\
             ntsdumpdir {d}\nkeyfile {d}/keys\npidfile {d}/chronyd.pid\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(noclock())
        .args(["chronyd", "-x", "-d", "-u", "root", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chronyd 4.3 and noclock are needed for this interop test");
    guard.child = Some(child);
    // Wait until the NTS-KE port accepts connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", ke_port)).is_err() {
        assert!(Instant::now() < deadline, "chronyd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Chronyd {
        guard,
        cert_pem,
        ntp_port,
        ke_port,
    }
}

/// Plays the daemon's part of one key exchange.
fn key_exchange(c: &Chronyd, trust: &NtsTrust) -> Result<NtsKeOutcome, String> {
    key_exchange_as(c, trust, "localhost")
}

/// One key exchange expecting the certificate to be valid for `name`.
fn key_exchange_as(c: &Chronyd, trust: &NtsTrust, name: &str) -> Result<NtsKeOutcome, String> {
    let start = Instant::now();
    let mono = || start.elapsed().as_secs_f64();
    let mut ke =
        NtsKeClient::new(trust, name, wall(), true, mono(), 10.0).map_err(|e| e.to_string())?;
    let mut stream = TcpStream::connect(("127.0.0.1", c.ke_port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let mut out = Vec::new();
        ke.write_tls(&mut out);
        if !out.is_empty() {
            stream.write_all(&out).map_err(|e| e.to_string())?;
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                ke.check_deadline(mono()).map_err(|e| e.to_string())?;
                continue;
            }
            Err(_) => 0,
        };
        if let Some(o) = ke.read_tls(&buf[..n], mono()).map_err(|e| e.to_string())? {
            return Ok(o);
        }
    }
}

/// Polls `a` a few times over UDP; returns the outcomes.
fn exchange(a: &mut Association, n: usize) -> Vec<RxOutcome> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let mut sent = 0;
    for _ in 0..3 * n {
        if sent == n {
            break;
        }
        let t = wall();
        let Some(tx) = a.on_timer(a.next_timeout().unwrap().max(t), t) else {
            continue;
        };
        sent += 1;
        sock.send_to(&tx.bytes(), tx.remote).unwrap();
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        out.push(a.on_packet(wall(), &buf[..len], None, false));
    }
    out
}

#[test]
fn nts_key_exchange_and_authenticated_ntp_with_chronyd() {
    let c = chronyd("nts");
    let trust = NtsTrust::new(&[c.cert_pem.clone().into_bytes()], false).unwrap();
    let o = key_exchange(&c, &trust).unwrap();
    assert_eq!(o.cookies.len(), 8);
    assert_eq!(
        o.ntp_port,
        Some(c.ntp_port),
        "chronyd announces its NTP port"
    );

    let remote: SocketAddr = ([127, 0, 0, 1], 123).into();
    let t = wall();
    let mut a = Association::new(remote, SourceConfig::default(), t, 1);
    a.set_auth(AuthState::Nts(Box::new(NtsState::new(
        NtsSource::new("localhost"),
        t,
    ))));
    assert!(a.start_nts_ke(t).is_some());
    a.finish_nts_ke(Some(o), None, t);
    assert_eq!(a.remote().port(), c.ntp_port);
    let results = exchange(&mut a, 4);
    let samples = results
        .iter()
        .filter(|r| matches!(r, RxOutcome::Sample(_)))
        .count();
    assert!(samples >= 3, "{results:?}");
    assert_eq!(a.rejected(Rejection::AuthFailed), 0);
    match a.auth() {
        AuthState::Nts(n) => assert_eq!(n.cookies(), 8, "jar refilled by chronyd"),
        _ => unreachable!(),
    }
    drop(c.guard);
}

#[test]
fn nts_key_exchange_fails_against_an_untrusted_certificate() {
    let c = chronyd("untrusted");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let trust = NtsTrust::new(&[other.cert.pem().into_bytes()], false).unwrap();
    let e = key_exchange(&c, &trust).unwrap_err();
    assert!(e.contains("TLS"), "{e}");
}

#[test]
fn nts_key_exchange_with_chronyd_serving_a_trusted_openssl_req_x509_ca_certificate() {
    // chronyd (GnuTLS) accepts such a certificate when it is in `ntstrustedcerts`; so do we.
    let c = chronyd_with("opensslca", CertKind::OpensslReqX509);
    let trust = NtsTrust::new(&[c.cert_pem.clone().into_bytes()], false).unwrap();
    let o = key_exchange(&c, &trust).unwrap();
    assert_eq!(o.cookies.len(), 8);
    assert_eq!(o.ntp_port, Some(c.ntp_port));
    // Still only for its own name, and only when it is trusted itself.
    let e = key_exchange_as(&c, &trust, "ntp.example.org").unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let untrusted = NtsTrust::new(&[other.cert.pem().into_bytes()], false).unwrap();
    let e = key_exchange(&c, &untrusted).unwrap_err();
    assert!(e.contains("CaUsedAsEndEntity"), "{e}");
    drop(c.guard);
}

#[test]
fn symmetric_key_exchange_with_chronyd_and_wrong_key_rejected() {
    let c = chronyd("key");
    let keys = KeyStore::parse(KEYS).0;
    let remote: SocketAddr = ([127, 0, 0, 1], c.ntp_port).into();
    for id in [1u32, 2] {
        let mut a = Association::new(remote, SourceConfig::default(), wall(), 2);
        a.set_auth(AuthState::Symmetric {
            id,
            key: keys.get(id).cloned(),
        });
        let r = exchange(&mut a, 3);
        assert!(
            r.iter()
                .filter(|r| matches!(r, RxOutcome::Sample(_)))
                .count()
                >= 2,
            "key {id}: {r:?}"
        );
    }
    // Our key 1 differs from chronyd's: no reply is accepted.
    let wrong = KeyStore::parse("1 MD5 HEX:00112233445566778899AABBCCDDEEF0\n").0;
    let mut a = Association::new(remote, SourceConfig::default(), wall(), 3);
    a.set_auth(AuthState::Symmetric {
        id: 1,
        key: wrong.get(1).cloned(),
    });
    let r = exchange(&mut a, 2);
    assert!(
        !r.iter().any(|r| matches!(r, RxOutcome::Sample(_))),
        "{r:?}"
    );
}
