//! gnomond as an NTS server (`ntsservercert`, `ntsserverkey`, `ntsport`, `ntsdumpdir`,
//! `maxntsconnections`) for a real chronyd NTS client: it synchronises with a trusted
//! certificate and never with an untrusted one; cookie keys are dumped 0600 and reloaded, so
//! cookies issued before a restart still work after it; silent TCP clients holding every
//! NTS-KE slot cost neither NTP service nor later handshakes more than the 2 s deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// The gnomond configuration serving NTS-KE on `ntsport` with `cert`/`key`.
fn nts_conf(ntsport: u16, cert: &Path, key: &Path, extra: &str) -> String {
    format!(
        "allow 127.0.0.1\nlocal stratum 3\nntsport {ntsport}\nntsservercert {}\n\
         ntsserverkey {}\n{extra}",
        cert.display(),
        key.display()
    )
}

/// A chronyd NTS client of localhost:`port` (NTS-KE on `ntsport`) trusting `trusted`.
fn nts_client(port: u16, ntsport: u16, trusted: &Path, poll: i32) -> (Chronyd, u16) {
    let cmdport = free_udp_port();
    let c = Chronyd::start(&format!(
        "server localhost port {port} nts ntsport {ntsport} iburst minpoll {poll} maxpoll {poll}\n\
         ntstrustedcerts {}\nport 0\ncmdport {cmdport}\nbindcmdaddress 127.0.0.1",
        trusted.display()
    ));
    (c, cmdport)
}

/// "Authenticated NTP packets" from `chronyc serverstats` on gnomond's command socket.
fn authenticated_packets(d: &Daemon) -> u64 {
    serverstats_value(d, "Authenticated NTP packets")
}

/// One counter of `chronyc serverstats` on gnomond's command socket.
fn serverstats_value(d: &Daemon, label: &str) -> u64 {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .arg("-h")
            .arg(&d.socket)
            .arg("serverstats"),
        Duration::from_secs(5),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(label)?.split(':').nth(1))
        .unwrap_or_else(|| panic!("no {label} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn nts_chronyd_synchronises_with_trusted_certificate() {
    let dir = TempDir::new("nts-ok");
    let (cert, key) = make_cert(dir.path(), "server");
    let ntsport = free_tcp_port();
    let d = Daemon::start(&nts_conf(ntsport, &cert, &key, ""));
    let (c, cmdport) = nts_client(d.port, ntsport, &cert, -2);
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(20));
    assert!(
        ok,
        "chronyd did not select gnomond over NTS:\n{listing}\n{}\n{}",
        c.output(),
        d.stderr()
    );
    assert!(authenticated_packets(&d) > 0, "{}", d.stderr());
    // chronyd made at least one key exchange with us; none was rate limited.
    assert!(serverstats_value(&d, "NTS-KE connections accepted") >= 1);
    assert_eq!(serverstats_value(&d, "NTS-KE connections dropped"), 0);
}

#[test]
fn nts_chronyd_never_synchronises_with_untrusted_certificate() {
    let dir = TempDir::new("nts-untrusted");
    let (cert, key) = make_cert(dir.path(), "server");
    let (other, _) = make_cert(dir.path(), "other");
    let ntsport = free_tcp_port();
    let d = Daemon::start(&nts_conf(ntsport, &cert, &key, ""));
    let (c, cmdport) = nts_client(d.port, ntsport, &other, -2);
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(8));
    assert!(!ok, "selected with an untrusted certificate:\n{listing}");
    assert_eq!(authenticated_packets(&d), 0, "{}", c.output());
}

#[test]
fn nts_keys_are_dumped_0600_and_reloaded_after_restart() {
    let dir = TempDir::new("nts-dump");
    let (cert, key) = make_cert(dir.path(), "server");
    let dump_dir = dir.join("dump");
    let ntsport = free_tcp_port();
    let dump = format!("ntsdumpdir {}", dump_dir.display());
    let mut d1 = Daemon::start(&nts_conf(ntsport, &cert, &key, &dump));
    let ntskeys = dump_dir.join("ntskeys");
    let mode = std::fs::metadata(&ntskeys).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "ntskeys mode {mode:o}");
    let saved = std::fs::read_to_string(&ntskeys).unwrap();
    assert!(saved.starts_with("NKS0\n15 "), "{saved}");
    assert_eq!(saved.lines().count(), 6, "{saved}");

    // Poll every second: a restart then costs the client only a couple of its 8 cookies.
    let (c, cmdport) = nts_client(d1.port, ntsport, &cert, 0);
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(20));
    assert!(ok, "not selected:\n{listing}\n{}", c.output());
    let port = d1.port;
    d1.terminate();

    // The restarted daemon offers no NTS-KE at all (its ntsport is closed): the client can
    // only keep authenticating with the cookies the first daemon issued.
    let closed = free_tcp_port();
    // Same NTP port as before (the later `port` wins): the harness's own port is unused, so
    // readiness is the PID file, then the first answer on the old port.
    let d2 = Daemon::start_with(
        &nts_conf(closed, &cert, &key, &format!("port {port}\n{dump}")),
        &[],
        Ready::PidFile,
    );
    wait_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "restarted gnomond",
    );
    assert!(
        d2.stderr().contains("Loaded NTS server keys"),
        "{}",
        d2.stderr()
    );
    assert_eq!(std::fs::read_to_string(&ntskeys).unwrap(), saved);
    let start = Instant::now();
    let mut authenticated = 0;
    while start.elapsed() < Duration::from_secs(10) && authenticated < 3 {
        std::thread::sleep(Duration::from_millis(500));
        authenticated = authenticated_packets(&d2);
    }
    assert!(
        authenticated >= 3,
        "restarted daemon authenticated {authenticated} requests:\n{}\n{}",
        c.output(),
        d2.stderr()
    );
}

#[test]
fn silent_nts_ke_clients_hold_neither_ntp_nor_later_handshakes() {
    let dir = TempDir::new("nts-silent");
    let (cert, key) = make_cert(dir.path(), "server");
    let ntsport = free_tcp_port();
    let d = Daemon::start(&nts_conf(ntsport, &cert, &key, "maxntsconnections 3"));
    let ke: SocketAddr = ([127, 0, 0, 1], ntsport).into();
    // Fill every slot with clients that never say anything.
    let opened = Instant::now();
    let mut silent: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect_timeout(&ke, Duration::from_secs(2)).unwrap())
        .collect();
    // NTP is served meanwhile, promptly.
    for i in 0..10 {
        assert!(
            query(d.addr_v4(), Duration::from_millis(500)).is_some(),
            "NTP query {i} unanswered while NTS-KE is full"
        );
    }
    // A real client arriving while every slot is held is accepted and closed at once (as
    // chronyd does when full) and retries; it gets through once a deadline frees a slot.
    let (c, cmdport) = nts_client(d.port, ntsport, &cert, -2);
    // The server closes each silent connection at its 2 s deadline.
    for s in &mut silent {
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let mut b = [0u8; 16];
        let r = s.read(&mut b);
        assert!(
            matches!(r, Ok(0))
                || r.as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "silent connection not closed: {r:?}"
        );
    }
    let held = opened.elapsed();
    assert!(
        held >= Duration::from_millis(1500) && held < Duration::from_secs(5),
        "silent connections held {held:?}"
    );
    // Another round of silent clients while the real one synchronises.
    let _more: Vec<TcpStream> = (0..3)
        .filter_map(|_| TcpStream::connect_timeout(&ke, Duration::from_secs(2)).ok())
        .collect();
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(20));
    assert!(
        ok,
        "not selected with silent NTS-KE clients:\n{listing}\n{}\n{}",
        c.output(),
        d.stderr()
    );
    for i in 0..5 {
        assert!(
            query(d.addr_v4(), Duration::from_millis(500)).is_some(),
            "NTP query {i} unanswered"
        );
    }
}

#[test]
fn rotated_keys_are_dumped_and_clients_follow_them() {
    let dir = TempDir::new("nts-rotate");
    let (cert, key) = make_cert(dir.path(), "server");
    let dump_dir = dir.join("dump");
    let ntsport = free_tcp_port();
    let d = Daemon::start(&nts_conf(
        ntsport,
        &cert,
        &key,
        &format!("ntsdumpdir {}\nntsrotate 1", dump_dir.display()),
    ));
    let ntskeys = dump_dir.join("ntskeys");
    let first = std::fs::read_to_string(&ntskeys).unwrap();
    let (c, cmdport) = nts_client(d.port, ntsport, &cert, -2);
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(20));
    assert!(ok, "not selected:\n{listing}\n{}", c.output());
    // Several rotations later every key of the first dump is gone, yet the client, whose
    // cookies come sealed with the current key in each response, still authenticates.
    std::thread::sleep(Duration::from_secs(6));
    let now = std::fs::read_to_string(&ntskeys).unwrap();
    let ids = |t: &str| -> Vec<String> {
        t.lines()
            .skip(2)
            .filter_map(|l| l.split(' ').next().map(String::from))
            .collect()
    };
    assert!(
        ids(&first).iter().all(|id| !ids(&now).contains(id)),
        "keys not rotated:\n{first}\n{now}"
    );
    let mode = std::fs::metadata(&ntskeys).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = authenticated_packets(&d);
    std::thread::sleep(Duration::from_secs(2));
    let after = authenticated_packets(&d);
    assert!(
        after >= before + 4,
        "authenticated {before} then {after}:\n{}\n{}",
        c.output(),
        d.stderr()
    );
    assert!(chronyc_sources(cmdport)
        .lines()
        .any(|l| l.starts_with("^*")));
}

#[test]
fn rekey_reloads_externally_managed_nts_keys() {
    let dir = TempDir::new("nts-rekey");
    let (cert, key) = make_cert(dir.path(), "server");
    // Two key sets, as another server with rotation enabled would dump them.
    let mut sets = Vec::new();
    for name in ["a", "b"] {
        let dump_dir = dir.join(name);
        let d = Daemon::start(&nts_conf(
            free_tcp_port(),
            &cert,
            &key,
            &format!("ntsdumpdir {}", dump_dir.display()),
        ));
        drop(d);
        sets.push(std::fs::read_to_string(dump_dir.join("ntskeys")).unwrap());
    }
    assert_ne!(sets[0], sets[1]);
    let managed = dir.join("managed");
    std::fs::create_dir_all(&managed).unwrap();
    let write_keys = |text: &str| {
        let p = managed.join("ntskeys");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write_keys(&sets[0]);
    let ntsport = free_tcp_port();
    let metrics_port = free_tcp_port();
    let d = Daemon::start(&nts_conf(
        ntsport,
        &cert,
        &key,
        &format!(
            "ntsdumpdir {}\nntsrotate 0\nmetricsport {metrics_port}",
            managed.display()
        ),
    ));
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    assert!(
        d.stderr().contains("Loaded NTS server keys"),
        "{}",
        d.stderr()
    );
    let (c, cmdport) = nts_client(d.port, ntsport, &cert, -2);
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(20));
    assert!(ok, "not selected:\n{listing}\n{}", c.output());
    // With rotation off the daemon never rewrites the managed file.
    assert_eq!(
        std::fs::read_to_string(managed.join("ntskeys")).unwrap(),
        sets[0]
    );
    assert_eq!(auth_failures(metrics), 0.0);

    // New keys from the key manager, then `rekey`: the client's cookies (sealed with the old
    // keys) now fail and are answered with NAKs.
    write_keys(&sets[1]);
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .arg("-h")
            .arg(&d.socket)
            .arg("rekey"),
        Duration::from_secs(5),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("200 OK"),
        "rekey: {out:?}"
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) && auth_failures(metrics) == 0.0 {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        auth_failures(metrics) > 0.0,
        "old cookies still accepted after rekey:\n{}",
        d.stderr()
    );
}
