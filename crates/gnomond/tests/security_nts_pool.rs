//! An NTS pool (`pool NAME nts`) against a real chronyd 4.3 NTS server, in a private network
//! namespace so that the name (`localhost`, which resolves from /etc/hosts without any DNS
//! query; on this machine to 127.0.0.1 only) never leads a lookup off the machine. Every pool member
//! makes its own key exchange with the pool's name as the certificate name, gnomond
//! synchronises, and chronyd counts the requests as authenticated (catalogue case 22 for pool
//! members: no member is ever used unauthenticated); with a certificate it does not trust, no
//! member synchronises and chronyd sees no authenticated request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// A self-signed P-256 certificate for `localhost`, 127.0.0.1 and ::1 in `dir`: (cert, key),
/// readable by anyone (chronyd runs as root here, but keep it simple).
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let out = run_bounded(
        Command::new(require_tool("openssl"))
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-addext"])
            .args([
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "openssl: {out:?}");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in [&cert, &key] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (cert, key)
}

fn free_tcp_port() -> u16 {
    loop {
        let p = free_udp_port();
        if TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("::1", p)).is_ok() {
            return p;
        }
    }
}

/// A chronyd NTS server on 127.0.0.1 and ::1 (`local stratum 5`): it, its NTP port, its
/// NTS-KE port and its Unix command socket (kept in `dir`).
fn nts_server(dir: &Path, cert: &Path, key: &Path) -> (Chronyd, u16, u16, PathBuf) {
    let port = free_udp_port();
    let ntsport = free_tcp_port();
    let sockdir = dir.join("sock");
    std::fs::create_dir(&sockdir).unwrap();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = sockdir.join("chronyd.sock");
    let c = Chronyd::start(&format!(
        "port {port}\nbindaddress 127.0.0.1\nbindaddress ::1\nallow 127.0.0.1\nallow ::1\n\
         local stratum 5\ncmdport 0\nbindcmdaddress {}\nntsport {ntsport}\nntsservercert {}\n\
         ntsserverkey {}\nntsdumpdir {}",
        socket.display(),
        cert.display(),
        key.display(),
        dir.display()
    ));
    wait_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "chronyd",
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", ntsport)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "chronyd's NTS-KE port did not open:\n{}",
            c.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (c, port, ntsport, socket)
}

/// chronyd's `serverstats` line starting with `label`.
fn serverstat(socket: &Path, label: &str) -> u64 {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .args(["-n", "-h"])
            .arg(socket)
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

/// The `^` lines of a `sources` listing.
fn source_lines(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| l.starts_with('^'))
        .map(str::to_string)
        .collect()
}

#[test]
fn nts_pool_members_each_key_exchange_and_synchronise_in_a_namespace() {
    let ns = Netns::new();
    in_netns(&ns, || {
        let dir = TempDir::new("sec-nts-pool");
        let (cert, key) = make_cert(dir.path(), "server");
        let (c, port, ntsport, socket) = nts_server(dir.path(), &cert, &key);
        // The readiness probe counts as an accepted NTS-KE connection: only later ones matter.
        let probes = serverstat(&socket, "NTS-KE connections accepted");
        let d = Daemon::start(&format!(
            "pool localhost port {port} nts ntsport {ntsport} iburst minpoll -2 maxpoll -2 \
             maxsources 2\nallow 127.0.0.1\nntstrustedcerts {}\nnosystemcert",
            cert.display()
        ));
        let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(30));
        assert!(
            ok,
            "NTS pool not selected:\n{listing}\n--- gnomond\n{}\n--- chronyd\n{}",
            d.stderr(),
            c.output()
        );
        // Every address of the name (here /etc/hosts gives 127.0.0.1 only) is a member named
        // by the pool, and each member made its own key exchange.
        let lines = source_lines(&listing);
        assert!(
            !lines.is_empty() && lines.iter().all(|l| l.contains("127.0.0.1")),
            "pool members: {lines:?}"
        );
        assert!(
            d.stderr().contains("(localhost)"),
            "members not named by the pool:\n{}",
            d.stderr()
        );
        let exchanges = serverstat(&socket, "NTS-KE connections accepted") - probes;
        assert!(
            exchanges >= lines.len() as u64,
            "{exchanges} key exchanges for {} members:\n{}",
            lines.len(),
            d.stderr()
        );
        assert!(serverstat(&socket, "Authenticated NTP packets") > 0);
    });
}

#[test]
fn nts_pool_with_an_untrusted_certificate_never_synchronises() {
    let ns = Netns::new();
    in_netns(&ns, || {
        let dir = TempDir::new("sec-nts-pool-bad");
        let (cert, key) = make_cert(dir.path(), "server");
        let (other, _) = make_cert(dir.path(), "other");
        let (c, port, ntsport, socket) = nts_server(dir.path(), &cert, &key);
        // The readiness probes count as received packets: only later ones matter.
        let probes = serverstat(&socket, "NTP packets received");
        let d = Daemon::start(&format!(
            "pool localhost port {port} nts ntsport {ntsport} iburst minpoll -2 maxpoll -2 \
             maxsources 2\nallow 127.0.0.1\nntstrustedcerts {}\nnosystemcert",
            other.display()
        ));
        let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(8));
        assert!(
            !ok,
            "selected with an untrusted certificate:\n{listing}\n{}\n{}",
            d.stderr(),
            c.output()
        );
        // Key exchanges were attempted (so the refusal is the certificate's), yet nothing
        // unauthenticated reached the server.
        assert!(serverstat(&socket, "NTS-KE connections accepted") >= 1);
        assert_eq!(serverstat(&socket, "NTP packets received"), probes);
        assert_eq!(serverstat(&socket, "Authenticated NTP packets"), 0);
    });
}
