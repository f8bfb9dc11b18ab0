//! Interop: a real chronyd 4.3 (`-x`, under `noclock`) as NTS client of this crate's server
//! half. The test plays the daemon: one thread accepts NTS-KE connections on loopback and
//! drives [`NtsKeSession`], another answers NTP on loopback with [`Server::handle_request`]
//! plus [`Server::finalize`]. chronyd, trusting only a self-signed certificate made with
//! `openssl` here, must complete NTS-KE, get authenticated responses and select the source;
//! with MD5 and SHA256 keys likewise; with an untrusted certificate or a wrong key it must
//! never select it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gnomon_core::access::AccessRule;
use gnomon_core::auth::KeyStore;
use gnomon_core::nts::{NtsKeServerSetup, NtsKeSession, ServerKeys};
use gnomon_core::server::{ReferenceInfo, Reply, Server, ServerConfig};
use gnomon_wire::NtpTimestamp;
use rand::rngs::StdRng;
use rand::SeedableRng;

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
        .wrapping_mul(2_654_435_761)
        .wrapping_add(salt);
    for i in 0..2000u32 {
        let p = 20000 + (base.wrapping_add(i * 37) % 40000) as u16;
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port");
}

/// Stops the helper threads, kills chronyd and removes the directory, even on failure.
struct Guard {
    child: Option<Child>,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now_ntp() -> NtpTimestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    NtpTimestamp::from_unix(d.as_secs() as i64, d.subsec_nanos())
}

fn ke_thread(
    listener: TcpListener,
    setup: NtsKeServerSetup,
    keys: ServerKeys,
    stop: Arc<AtomicBool>,
) {
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(11);
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let now = || start.elapsed().as_secs_f64();
        let mut session = NtsKeSession::new(&setup, now()).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            if session.check_deadline(now()).is_err() {
                break;
            }
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => break,
            };
            let result = session.read_tls(&buf[..n], now(), &keys, &setup, &mut rng);
            let mut out = Vec::new();
            session.write_tls(&mut out);
            if stream.write_all(&out).is_err() || result.is_err() || session.is_done() {
                break;
            }
        }
    }
}

fn ntp_thread(socket: UdpSocket, mut server: Server, stop: Arc<AtomicBool>) -> Server {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let reference = ReferenceInfo::local(8, now_ntp(), -20);
    let mut buf = [0u8; 2048];
    let mut out = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let rx = now_ntp();
        let reply = server.handle_request(
            &buf[..n],
            from,
            rx,
            start.elapsed().as_secs_f64(),
            &reference,
            &mut out,
        );
        match reply {
            Reply::Send { len } => {
                server.finalize(&mut out[..len], now_ntp());
                let _ = socket.send_to(&out[..len], from);
            }
            Reply::Kod { len } => {
                let _ = socket.send_to(&out[..len], from);
            }
            Reply::Drop(_) => {}
        }
    }
    server
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn self_signed(dir: &Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}-key.pem")))
        .arg("-out")
        .arg(dir.join(format!("{name}-cert.pem")))
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    (
        std::fs::read(dir.join(format!("{name}-cert.pem"))).unwrap(),
        std::fs::read(dir.join(format!("{name}-key.pem"))).unwrap(),
    )
}

struct Outcome {
    selected: bool,
    log: String,
    stats: gnomon_core::server::ServerStats,
}

/// Runs our server half (NTS-KE with `cert` if given, NTP with `keyfile` keys) and chronyd
/// with `source_options` on its `server` line plus `extra` configuration, until chronyd
/// selects the source or `wait` passes.
fn run(
    name: &str,
    cert: Option<(Vec<u8>, Vec<u8>)>,
    keyfile: &str,
    source_options: &str,
    extra: impl Fn(&Path) -> String,
    wait: Duration,
) -> Outcome {
    assert!(
        have("chronyd"),
        "chronyd 4.3 is needed for this interop test"
    );
    assert!(have("openssl"), "openssl is needed for this interop test");
    let stop = Arc::new(AtomicBool::new(false));
    let dir =
        std::env::temp_dir().join(format!("gnomon-auth-interop-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut guard = Guard {
        child: None,
        dir: dir.clone(),
        stop: stop.clone(),
    };
    let ntp_port = free_port(1 + name.len() as u32 * 101);
    let udp = UdpSocket::bind(("127.0.0.1", ntp_port)).unwrap();
    let ke_port = free_port(2 + name.len() as u32 * 211);
    let tcp = TcpListener::bind(("127.0.0.1", ke_port)).unwrap();

    let mut config = ServerConfig::default();
    config
        .access
        .apply(&AccessRule {
            allow: true,
            all: false,
            subnet: None,
        })
        .unwrap();
    let mut server = Server::new(config, 9).unwrap();
    server.set_keys(KeyStore::parse(keyfile).0);
    let ke = cert.map(|(cert, key)| {
        let mut rng = StdRng::seed_from_u64(7);
        let keys = ServerKeys::generate(&mut rng, 0.0, 0.0);
        server.set_nts_keys(Some(keys.clone()));
        let mut setup = NtsKeServerSetup::new(&[(cert, key)], ntp_port).unwrap();
        setup.ntp_server = Some("127.0.0.1".into());
        let stop = stop.clone();
        std::thread::spawn(move || ke_thread(tcp, setup, keys, stop))
    });
    let ntp = {
        let stop = stop.clone();
        std::thread::spawn(move || ntp_thread(udp, server, stop))
    };

    let conf = dir.join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "server localhost port {ntp_port} {source_options} ntsport {ke_port} minpoll 0 maxpoll 0 iburst\n\
             {}\nport 0\ncmdport 0\npidfile {}\n",
            extra(&dir),
            dir.join("chronyd.pid").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(noclock())
        .args(["chronyd", "-x", "-d", "-u", "root", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    guard.child = Some(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + wait;
    let mut log = Vec::new();
    let mut selected = false;
    while Instant::now() < deadline && !selected {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            selected |= line.contains("Selected source");
            log.push(line);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let server = ntp.join().unwrap();
    if let Some(ke) = ke {
        ke.join().unwrap();
    }
    drop(guard);
    Outcome {
        selected,
        log: log.join("\n"),
        stats: server.stats(),
    }
}

const KEYS: &str = "1 MD5 HEX:00112233445566778899AABBCCDDEEFF\n\
                    2 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\n";
const WRONG_KEYS: &str = "1 MD5 HEX:00112233445566778899AABBCCDDEEF0\n\
                    2 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEF0\n";

#[test]
fn chronyd_synchronises_to_our_nts_server_half() {
    let dir = std::env::temp_dir().join(format!("gnomon-auth-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = self_signed(&dir, "good");
    let cert_path = dir.join("good-cert.pem");
    let o = run(
        "nts",
        Some(pair),
        "",
        "nts",
        |_| format!("ntstrustedcerts {}", cert_path.display()),
        Duration::from_secs(40),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        o.selected,
        "chronyd never selected the NTS source:\n{}",
        o.log
    );
    assert!(o.stats.ntp_authenticated >= 1, "{:?}", o.stats);
    assert_eq!(o.stats.auth_failed, 0, "{:?}", o.stats);
}

#[test]
fn chronyd_never_synchronises_with_an_untrusted_certificate() {
    let dir = std::env::temp_dir().join(format!("gnomon-auth-badcert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = self_signed(&dir, "served");
    let _ = self_signed(&dir, "other");
    let other = dir.join("other-cert.pem");
    let o = run(
        "badcert",
        Some(pair),
        "",
        "nts",
        |_| format!("ntstrustedcerts {}", other.display()),
        Duration::from_secs(8),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!o.selected, "{}", o.log);
    assert_eq!(o.stats.ntp_authenticated, 0, "{:?}", o.stats);
}

fn keyed(name: &str, server_keys: &str, key: u32, wait: Duration) -> Outcome {
    run(
        name,
        None,
        server_keys,
        &format!("key {key}"),
        |dir| {
            let path = dir.join("chrony.keys");
            std::fs::write(&path, KEYS).unwrap();
            format!("keyfile {}", path.display())
        },
        wait,
    )
}

#[test]
fn chronyd_synchronises_with_md5_and_sha256_keys() {
    for key in [1, 2] {
        let o = keyed(&format!("key{key}"), KEYS, key, Duration::from_secs(40));
        assert!(o.selected, "key {key}: {}", o.log);
        assert!(o.stats.ntp_authenticated >= 1, "{:?}", o.stats);
        assert_eq!(o.stats.auth_failed, 0, "{:?}", o.stats);
    }
}

#[test]
fn chronyd_never_synchronises_with_a_wrong_key() {
    let o = keyed("wrongkey", WRONG_KEYS, 2, Duration::from_secs(8));
    assert!(!o.selected, "{}", o.log);
    assert_eq!(o.stats.ntp_authenticated, 0, "{:?}", o.stats);
    assert!(o.stats.auth_failed >= 1, "{:?}", o.stats);
}

/// Catalogue cases 25 and 26 with an independent TLS client (`openssl s_client`) over real
/// loopback TCP: TLS 1.3 with ALPN ntske/1 completes, TLS 1.2 and ALPN http/1.1 fail.
#[test]
fn openssl_clients_with_tls12_or_wrong_alpn_are_refused() {
    assert!(have("openssl"), "openssl is needed for this interop test");
    let dir = std::env::temp_dir().join(format!("gnomon-auth-sclient-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let guard = Guard {
        child: None,
        dir: dir.clone(),
        stop: stop.clone(),
    };
    let pair = self_signed(&dir, "s");
    let port = free_port(77);
    let tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let keys = ServerKeys::generate(&mut rng, 0.0, 0.0);
    let setup = NtsKeServerSetup::new(&[pair], 123).unwrap();
    let ke = {
        let stop = stop.clone();
        std::thread::spawn(move || ke_thread(tcp, setup, keys, stop))
    };
    let connect = |args: &[&str]| {
        Command::new("timeout")
            .arg("10")
            .args(["openssl", "s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "localhost"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = connect(&["-tls1_3", "-alpn", "ntske/1"]);
    let ok_text = String::from_utf8_lossy(&ok.stdout).to_string();
    let tls12 = connect(&["-tls1_2", "-alpn", "ntske/1"]);
    let http = connect(&["-tls1_3", "-alpn", "http/1.1"]);
    stop.store(true, Ordering::Relaxed);
    ke.join().unwrap();
    drop(guard);
    assert!(
        ok_text.contains("ALPN protocol: ntske/1") && ok_text.contains("TLSv1.3"),
        "{ok_text}"
    );
    assert!(!tls12.status.success(), "TLS 1.2 accepted");
    let http_text = String::from_utf8_lossy(&http.stdout);
    assert!(
        !http.status.success() || !http_text.contains("ALPN protocol: http/1.1"),
        "{http_text}"
    );
    assert!(!http_text.contains("ALPN protocol: ntske/1"));
}
