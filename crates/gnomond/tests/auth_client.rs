//! gnomond as an authenticated client of a real chronyd 4.3 server (`-x`, under noclock,
//! loopback, own ports): with a symmetric key (`server ... key 1` + `keyfile`, MD5 and SHA256)
//! it synchronises and chronyd counts its requests as authenticated, while a wrong key never
//! synchronises; over NTS (`nts`, `ntsport`, `ntstrustedcerts` as a file or as a directory in
//! a `certset`, `nosystemcert`) with chronyd's self-signed certificate it synchronises, and
//! with a certificate it does not trust it never does and sends nothing chronyd would accept
//! (no fallback to unauthenticated NTP). `chronyc authdata` shows, column by column, what
//! chronyd 4.3 shows as an NTS client of the same server; `add server ... nts certset N`
//! by chronyc uses the set and `ntsrefresh`; and a second source at an address already
//! used (another port) is refused as chronyd refuses it, in the file and by `add`.
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
    // As chronyd's authdata after such a restart: the saved session's one key
    // establishment, no attempt since, and its age kept.
    let row = authdata_row(&d.socket);
    assert_eq!(
        (row[1].as_str(), row[2].as_str(), row[6].as_str()),
        ("NTS", "1", "0"),
        "{row:?}"
    );
    assert_ne!(row[5], "-", "{row:?}");
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

/// The `authdata` row of 127.0.0.1 (`chronyc -n -h SOCKET authdata`), split into its columns:
/// Name, Mode, KeyID, Type, KLen, Last, Atmp, NAK, Cook, CLen.
fn authdata_row(socket: &Path) -> Vec<String> {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .args(["-n", "-h"])
            .arg(socket)
            .arg("authdata"),
        Duration::from_secs(5),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("127.0.0.1"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_else(|| panic!("no authdata row:\n{text}{out:?}"))
}

/// `chronyc -h SOCKET COMMAND...`, its standard output.
fn chronyc_at(socket: &Path, args: &[&str]) -> String {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .arg("-h")
            .arg(socket)
            .args(args),
        Duration::from_secs(5),
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits up to `limit` until the `authdata` row of `socket` satisfies `ok`; the last row.
fn wait_authdata(socket: &Path, limit: Duration, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    let start = Instant::now();
    loop {
        let row = authdata_row(socket);
        if ok(&row) || start.elapsed() > limit {
            return row;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// chronyc's Last column in seconds (`-` is `None`; m, h, d, y suffixes).
fn last_seconds(col: &str) -> Option<u64> {
    let (digits, unit) = match col.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&col[..i], c),
        _ => (col, 's'),
    };
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'm' => n * 60,
        'h' => n * 3600,
        'd' => n * 86_400,
        'y' => n * 31_536_000,
        _ => n,
    })
}

#[test]
fn nts_authdata_shows_what_chronyd_shows_for_the_same_server() {
    let dir = TempDir::new("auth-client-ntsauthdata");
    let (cert, key) = make_cert(dir.path(), "server");
    world_readable(dir.path());
    let (s, ntsport) = nts_server(&cert, &key, dir.path());
    // chronyd 4.3 as an NTS client of the same server, for its own authdata.
    let sock_dir = TempDir::new("auth-client-ntsauthdata-sock");
    std::fs::set_permissions(sock_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let chronyd_sock = sock_dir.join("client.sock");
    let reference = Chronyd::start(&format!(
        "server 127.0.0.1 port {} nts ntsport {ntsport} iburst minpoll -2 maxpoll -2\n\
         port 0\ncmdport 0\nbindcmdaddress {}\nntstrustedcerts {}\nnosystemcert",
        s.port,
        chronyd_sock.display(),
        cert.display()
    ));
    let d = client(
        s.port,
        &format!("nts ntsport {ntsport}"),
        &format!("ntstrustedcerts {}\nnosystemcert", cert.display()),
    );
    let started = Instant::now();
    assert_synchronises(&d, &s, "NTS for authdata");
    // Both after one key exchange, with a full jar (polling every 0.25 s, each answer
    // brings a cookie back).
    let settled = |r: &[String]| r.len() == 10 && r[2] == "1" && r[8] == "8";
    let theirs = wait_authdata(&chronyd_sock, Duration::from_secs(20), settled);
    let ours = wait_authdata(&d.socket, Duration::from_secs(10), settled);
    assert!(
        settled(&theirs),
        "chronyd: {theirs:?}\n{}",
        reference.output()
    );
    assert!(settled(&ours), "gnomond: {ours:?}\n{}", d.stderr());
    // Mode, KeyID (one key establishment), Type (AEAD 15), KLen, Atmp (none since the
    // success), NAK, Cook and CLen (the server's cookie length) are the same.
    for (i, column) in ["Mode", "KeyID", "Type", "KLen"].iter().enumerate() {
        assert_eq!(
            ours[i + 1],
            theirs[i + 1],
            "{column}: {ours:?} vs {theirs:?}"
        );
    }
    for (i, column) in ["Atmp", "NAK", "Cook", "CLen"].iter().enumerate() {
        assert_eq!(
            ours[i + 6],
            theirs[i + 6],
            "{column}: {ours:?} vs {theirs:?}"
        );
    }
    assert_eq!(&ours[1..5], ["NTS", "1", "15", "256"], "{ours:?}");
    assert_ne!(ours[9], "0", "{ours:?}");
    // Last: the key exchange was made during this test.
    let last = last_seconds(&ours[5]).unwrap_or_else(|| panic!("Last: {ours:?}"));
    assert!(last <= started.elapsed().as_secs() + 1, "{ours:?}");
}

#[test]
fn nts_authdata_counts_failed_key_exchange_attempts() {
    // Nothing listens on the NTS-KE port: every attempt fails, none succeeds.
    let s = Server::start("");
    let ke_port = free_tcp_port();
    let dir = TempDir::new("auth-client-ntsatmp");
    let (cert, _) = make_cert(dir.path(), "server");
    let d = client(
        s.port,
        &format!("nts ntsport {ke_port}"),
        &format!("ntstrustedcerts {}\nnosystemcert", cert.display()),
    );
    let row = wait_authdata(&d.socket, Duration::from_secs(5), |r| {
        r.len() == 10 && r[6] != "0"
    });
    // As chronyd 4.3: KeyID 0, no AEAD, Last `-`, the attempt counted, no cookie.
    assert_eq!(
        row[1..],
        ["NTS", "0", "0", "0", "-", "1", "0", "0", "0"],
        "{row:?}"
    );
}

#[test]
fn nts_source_added_by_chronyc_uses_its_certset_and_ntsrefresh() {
    let dir = TempDir::new("auth-client-ntsadd");
    let (cert, key) = make_cert(dir.path(), "server");
    let trusted = dir.join("trusted");
    std::fs::create_dir(&trusted).unwrap();
    std::fs::copy(&cert, trusted.join("server.pem")).unwrap();
    world_readable(dir.path());
    let (s, ntsport) = nts_server(&cert, &key, dir.path());
    // No source at start; set 0 is empty (nosystemcert), only set 2 trusts the server; the
    // shortest refresh makes a second key exchange due as soon as the back-off allows.
    let d = Daemon::start(&format!(
        "allow 127.0.0.1\nntstrustedcerts 2 {}\nnosystemcert\nntsrefresh 1",
        trusted.display()
    ));
    let port = s.port.to_string();
    let ke = ntsport.to_string();
    let reply = chronyc_at(
        &d.socket,
        &[
            "add",
            "server",
            "127.0.0.1",
            "port",
            &port,
            "nts",
            "ntsport",
            &ke,
            "certset",
            "2",
            "iburst",
            "minpoll",
            "-2",
            "maxpoll",
            "-2",
        ],
    );
    assert!(reply.contains("200 OK"), "{reply}");
    assert_synchronises(&d, &s, "NTS source added with certset 2");
    // ntsrefresh reached the added source: a second key establishment follows the first
    // once the minimum key-exchange interval (16 s) has passed.
    let row = wait_authdata(&d.socket, Duration::from_secs(30), |r| {
        r.len() == 10 && r[2].parse::<u32>().is_ok_and(|n| n >= 2)
    });
    assert!(
        row[2].parse::<u32>().is_ok_and(|n| n >= 2),
        "no refresh: {row:?}\n{}",
        d.stderr()
    );
}

#[test]
fn second_source_at_the_same_address_is_refused_as_chronyd_does() {
    let s = Server::start("");
    let other = free_udp_port();
    // chronyd 4.3 logs "Could not add source 127.0.0.1" for the second line (whatever its
    // port) and runs with the first.
    let d = Daemon::start(&format!(
        "server 127.0.0.1 port {} iburst minpoll -2 maxpoll -2\n\
         server 127.0.0.1 port {other} iburst\nallow 127.0.0.1",
        s.port
    ));
    let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(20));
    assert!(ok, "{listing}\n{}", d.stderr());
    assert_eq!(
        listing.lines().filter(|l| l.contains("127.0.0.1")).count(),
        1,
        "{listing}"
    );
    assert!(
        d.stderr().contains("Could not add source 127.0.0.1"),
        "{}",
        d.stderr()
    );
    // `add` of the same address on another port: 511, as chronyd answers.
    let third = free_udp_port().to_string();
    let reply = chronyc_at(&d.socket, &["add", "server", "127.0.0.1", "port", &third]);
    assert!(reply.contains("511 Source already present"), "{reply}");
}
