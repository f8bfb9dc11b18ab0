//! gnomond as an authenticated client of a real chronyd 4.3 server (`-x`, under noclock,
//! loopback, own ports): with a symmetric key (`server ... key 1` + `keyfile`, MD5 and SHA256)
//! it synchronises and chronyd counts its requests as authenticated, while a wrong key never
//! synchronises; over NTS (`nts`, `ntsport`, `ntstrustedcerts` as a file or as a directory in
//! a `certset`, `nosystemcert`) with chronyd's self-signed certificate it synchronises, and
//! with a certificate it does not trust it never does and sends nothing chronyd would accept
//! (no fallback to unauthenticated NTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const MD5_KEY: &str = "HEX:6B2F0C9E3A51D84407E1C2B9A3F05D6E";
const SHA256_KEY: &str = "HEX:0F1E2D3C4B5A69788796A5B4C3D2E1F000112233445566778899AABBCCDDEEFF";
const OTHER_KEY: &str = "HEX:11111111111111111111111111111111";

/// A TCP and UDP port free on 127.0.0.1.
fn free_tcp_port() -> u16 {
    loop {
        let p = free_udp_port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Makes `dir` and its files world-readable (chronyd reads them; without `-u root` it would
/// read them as `_chrony`).
fn world_readable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// A self-signed P-256 certificate for `localhost`/127.0.0.1 in `dir`: (cert, key).
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let out = run_bounded(
        Command::new(require_tool("openssl"))
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-addext"])
            .args(["subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "openssl: {out:?}");
    (cert, key)
}

/// A chronyd server on 127.0.0.1 (`local stratum 5`) with `extra` directives.
struct Server {
    chronyd: Chronyd,
    port: u16,
    /// chronyd's Unix command socket (`serverstats` is refused over UDP).
    socket: PathBuf,
    _socket_dir: TempDir,
}

impl Server {
    fn start(extra: &str) -> Server {
        let port = free_udp_port();
        // chronyd wants its socket directory private to its user.
        let socket_dir = TempDir::new("auth-client-sock");
        std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let socket = socket_dir.join("chronyd.sock");
        let chronyd = Chronyd::start(&format!(
            "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 5\n\
             cmdport 0\nbindcmdaddress {}\n{extra}",
            socket.display()
        ));
        wait_answers(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
            "chronyd",
        );
        Server {
            chronyd,
            port,
            socket,
            _socket_dir: socket_dir,
        }
    }

    /// chronyd's `serverstats` "Authenticated NTP packets" (MAC or NTS requests it verified).
    fn authenticated_packets(&self) -> u64 {
        self.serverstat("Authenticated NTP packets")
    }

    /// The `serverstats` line starting with `label`.
    fn serverstat(&self, label: &str) -> u64 {
        let out = run_bounded(
            Command::new(require_tool("chronyc"))
                .args(["-n", "-h"])
                .arg(&self.socket)
                .arg("serverstats"),
            Duration::from_secs(5),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no serverstats from chronyd:\n{text}{out:?}"))
    }
}

/// A gnomond client polling 127.0.0.1 every 0.25 s with `options` on its `server` line.
fn client(server_port: u16, options: &str, extra: &str) -> Daemon {
    Daemon::start(&format!(
        "server 127.0.0.1 port {server_port} {options} iburst minpoll -2 maxpoll -2\n\
         allow 127.0.0.1\n{extra}"
    ))
}

/// Waits until gnomond's `sources` shows `^*` and its `tracking` a stratum of 6 (chronyd's
/// 5 plus one); panics with both daemons' logs otherwise.
fn assert_synchronises(d: &Daemon, s: &Server, what: &str) {
    let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(30));
    assert!(
        ok,
        "gnomond did not select chronyd ({what}):\n{listing}\n--- gnomond\n{}\n--- chronyd\n{}",
        d.stderr(),
        s.chronyd.output()
    );
    let tracking = chronyc_tracking(d.cmdport);
    assert_eq!(
        tracking_value(&tracking, "Stratum"),
        Some(6.0),
        "{tracking}"
    );
    assert!(
        s.authenticated_packets() > 0,
        "chronyd saw no authenticated request ({what})"
    );
}

/// Watches gnomond for `limit`: it must never select a source nor report a stratum.
fn assert_never_synchronises(d: &Daemon, limit: Duration, what: &str) {
    let (ok, listing) = wait_selected(d.cmdport, limit);
    assert!(!ok, "selected ({what}):\n{listing}\n{}", d.stderr());
    let tracking = chronyc_tracking(d.cmdport);
    assert_eq!(
        tracking_value(&tracking, "Stratum"),
        Some(0.0),
        "{tracking}"
    );
}

fn keyed_synchronises(key_type: &str, key: &str) {
    let dir = TempDir::new("auth-client-keys");
    std::fs::write(dir.join("server.keys"), format!("1 {key_type} {key}\n")).unwrap();
    std::fs::write(dir.join("client.keys"), format!("1 {key_type} {key}\n")).unwrap();
    world_readable(dir.path());
    let s = Server::start(&format!("keyfile {}", dir.join("server.keys").display()));
    let d = client(
        s.port,
        "key 1",
        &format!("keyfile {}", dir.join("client.keys").display()),
    );
    assert_synchronises(&d, &s, key_type);
}

#[test]
fn md5_keyed_gnomond_synchronises_to_chronyd() {
    keyed_synchronises("MD5", MD5_KEY);
}

#[test]
fn sha256_keyed_gnomond_synchronises_to_chronyd() {
    keyed_synchronises("SHA256", SHA256_KEY);
}

#[test]
fn wrong_key_never_synchronises() {
    let dir = TempDir::new("auth-client-wrongkey");
    std::fs::write(dir.join("server.keys"), format!("1 MD5 {MD5_KEY}\n")).unwrap();
    // Same ID, other material: chronyd cannot verify the requests, gnomond not the replies.
    std::fs::write(dir.join("client.keys"), format!("1 MD5 {OTHER_KEY}\n")).unwrap();
    world_readable(dir.path());
    let s = Server::start(&format!("keyfile {}", dir.join("server.keys").display()));
    let d = client(
        s.port,
        "key 1",
        &format!("keyfile {}", dir.join("client.keys").display()),
    );
    assert_never_synchronises(&d, Duration::from_secs(8), "wrong key");
    assert_eq!(s.authenticated_packets(), 0);
}

/// A chronyd NTS server with `cert`/`key`; its NTS-KE port once it accepts connections.
fn nts_server(cert: &Path, key: &Path, dump: &Path) -> (Server, u16) {
    nts_server_extra(cert, key, dump, "")
}

/// [`nts_server`] with more directives.
fn nts_server_extra(cert: &Path, key: &Path, dump: &Path, extra: &str) -> (Server, u16) {
    let ntsport = free_tcp_port();
    let s = Server::start(&format!(
        "ntsport {ntsport}\nntsservercert {}\nntsserverkey {}\nntsdumpdir {}\n{extra}",
        cert.display(),
        key.display(),
        dump.display()
    ));
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", ntsport)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "chronyd's NTS-KE port did not open:\n{}",
            s.chronyd.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (s, ntsport)
}

#[test]
fn nts_gnomond_synchronises_to_chronyd_with_trusted_certificate() {
    let dir = TempDir::new("auth-client-nts");
    let (cert, key) = make_cert(dir.path(), "server");
    world_readable(dir.path());
    let (s, ntsport) = nts_server(&cert, &key, dir.path());
    let d = client(
        s.port,
        &format!("nts ntsport {ntsport}"),
        &format!("ntstrustedcerts {}\nnosystemcert", cert.display()),
    );
    assert_synchronises(&d, &s, "NTS");
}

#[test]
fn nts_certset_from_a_directory_is_used() {
    let dir = TempDir::new("auth-client-ntsset");
    let (cert, key) = make_cert(dir.path(), "server");
    let trusted = dir.join("trusted");
    std::fs::create_dir(&trusted).unwrap();
    std::fs::copy(&cert, trusted.join("server.pem")).unwrap();
    world_readable(dir.path());
    let (s, ntsport) = nts_server(&cert, &key, dir.path());
    // Set 0 is empty (nosystemcert): only set 3 trusts chronyd's certificate.
    let d = client(
        s.port,
        &format!("nts ntsport {ntsport} certset 3"),
        &format!("ntstrustedcerts 3 {}\nnosystemcert", trusted.display()),
    );
    assert_synchronises(&d, &s, "NTS certset 3");
}

#[test]
fn nts_untrusted_certificate_never_synchronises() {
    let dir = TempDir::new("auth-client-ntsbad");
    let (cert, key) = make_cert(dir.path(), "server");
    let (other, _) = make_cert(dir.path(), "other");
    world_readable(dir.path());
    let (s, ntsport) = nts_server(&cert, &key, dir.path());
    let before = s.serverstat("NTP packets received");
    let d = client(
        s.port,
        &format!("nts ntsport {ntsport}"),
        &format!("ntstrustedcerts {}\nnosystemcert", other.display()),
    );
    assert_never_synchronises(&d, Duration::from_secs(8), "untrusted certificate");
    // No fallback to unauthenticated NTP: gnomond sent chronyd no NTP packet at all.
    assert_eq!(s.serverstat("NTP packets received"), before);
    let log = d.stderr();
    assert!(log.contains("NTS-KE session with 127.0.0.1"), "{log}");
}

#[test]
fn nts_cookies_saved_at_exit_spare_the_next_key_exchange() {
    let dir = TempDir::new("auth-client-ntsdump");
    let (cert, key) = make_cert(dir.path(), "server");
    world_readable(dir.path());
    let dump = TempDir::new("auth-client-ntsdump-client");
    let (s, ntsport) = nts_server(&cert, &key, dir.path());
    let extra = format!(
        "ntstrustedcerts {}\nnosystemcert\nntsdumpdir {}",
        cert.display(),
        dump.path().display()
    );
    let mut d = client(s.port, &format!("nts ntsport {ntsport}"), &extra);
    assert_synchronises(&d, &s, "NTS before restart");
    let handshakes = s.serverstat("NTS-KE connections accepted");
    // The readiness probe of nts_server() counts as one connection too.
    assert!(handshakes >= 1);
    d.terminate();
    let saved = dump.join("127.0.0.1.nts");
    let mode = std::fs::metadata(&saved)
        .unwrap_or_else(|e| panic!("no {}: {e}\n{}", saved.display(), d.stderr()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(d);

    let d = client(s.port, &format!("nts ntsport {ntsport}"), &extra);
    assert_synchronises(&d, &s, "NTS after restart");
    // The saved cookies served the new run: no second key exchange, and the file is gone so
    // that they are never sent twice.
    assert_eq!(s.serverstat("NTS-KE connections accepted"), handshakes);
    assert!(!saved.exists());
}

#[test]
fn rekey_gives_the_client_the_corrected_key() {
    let dir = TempDir::new("auth-client-rekey");
    std::fs::write(dir.join("server.keys"), format!("1 SHA256 {SHA256_KEY}\n")).unwrap();
    let client_keys = dir.join("client.keys");
    std::fs::write(&client_keys, format!("1 SHA256 {OTHER_KEY}\n")).unwrap();
    world_readable(dir.path());
    let s = Server::start(&format!("keyfile {}", dir.join("server.keys").display()));
    let d = client(
        s.port,
        "key 1",
        &format!("keyfile {}", client_keys.display()),
    );
    assert_never_synchronises(&d, Duration::from_secs(3), "wrong key before rekey");
    std::fs::write(&client_keys, format!("1 SHA256 {SHA256_KEY}\n")).unwrap();
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .arg("-h")
            .arg(&d.socket)
            .arg("rekey"),
        Duration::from_secs(5),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("200 OK"),
        "{out:?}"
    );
    assert_synchronises(&d, &s, "after rekey");
}

#[test]
fn nts_source_named_by_host_name_synchronises_in_a_namespace() {
    // A host name is resolved (resolver thread) and checked against the certificate's DNS
    // name; in a private namespace no lookup can leave the machine.
    let ns = Netns::new();
    in_netns(&ns, || {
        let dir = TempDir::new("auth-client-ntsname");
        let (cert, key) = make_cert(dir.path(), "server");
        world_readable(dir.path());
        let (s, ntsport) = nts_server_extra(&cert, &key, dir.path(), "bindaddress ::1\nallow ::1");
        let d = Daemon::start(&format!(
            "server localhost port {} nts ntsport {ntsport} iburst minpoll -2 maxpoll -2\n\
             allow 127.0.0.1\nntstrustedcerts {}\nnosystemcert",
            s.port,
            cert.display()
        ));
        assert_synchronises(&d, &s, "NTS to localhost");
    });
}
