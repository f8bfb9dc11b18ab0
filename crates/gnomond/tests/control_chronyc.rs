//! The real chronyc (Debian's 4.3) against gnomond's command server, over UDP (`-h 127.0.0.1
//! -p PORT`) and over the Unix socket (`-h /path/to.sock`), and against a real chronyd 4.3 in
//! the same state: the same chronyc session must print the same bytes.
//!
//! Time-varying fields are neutralised before comparing: in `clients`, the command interval
//! and "Last" columns (they depend on how fast chronyc ran, and on each daemon's interval
//! estimator); in local-mode `tracking`, the "Ref time" line (when each daemon started).
//! Everything else, counters included, must match exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{free_udp_port, require_tool, run_bounded, Chronyd, Daemon, TempDir};

/// A daemon's command endpoints.
struct Endpoints<'a> {
    port: u16,
    socket: &'a Path,
}

/// Runs `chronyc -n -h HOST [-p PORT] ARGS`; returns (stdout + stderr, exit code).
fn chronyc(host: &str, port: Option<u16>, args: &str) -> (String, i32) {
    let mut cmd = Command::new(require_tool("chronyc"));
    cmd.args(["-n", "-h", host]);
    if let Some(p) = port {
        cmd.args(["-p", &p.to_string()]);
    }
    cmd.args(args.split_whitespace());
    let out = run_bounded(&mut cmd, Duration::from_secs(15));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (text, out.status.code().unwrap_or(-1))
}

fn udp(e: &Endpoints, args: &str) -> (String, i32) {
    chronyc("127.0.0.1", Some(e.port), args)
}

fn unix(e: &Endpoints, args: &str) -> (String, i32) {
    chronyc(e.socket.to_str().unwrap(), None, args)
}

/// `clients` rows with the command interval and last-hit columns masked.
fn mask_clients(text: &str) -> String {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 10 && f[0].parse::<std::net::IpAddr>().is_ok() {
                format!(
                    "{} {} {} {} {} {} {} {} * *",
                    f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn mask_ref_time(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("Ref time (UTC)") {
                "Ref time (UTC)  : *"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The session run against both daemons: every monitoring command over UDP, then over the
/// Unix socket the commands whose answer does not depend on the synchronisation engine.
fn session(e: &Endpoints) -> String {
    let mut log = String::new();
    let mut run = |label: &str, (text, code): (String, i32)| {
        log.push_str(&format!("== {label} (exit {code})\n{text}"));
    };
    for c in [
        "tracking",
        "sources",
        "sources -v",
        "sourcestats",
        "sourcestats -v",
        "activity",
        "selectdata",
        "authdata",
        "ntpdata",
        "serverstats",
        "clients",
        "allow 10.0.0.0/8",
        "shutdown",
    ] {
        run(&format!("udp {c}"), udp(e, c));
    }
    // Malformed datagrams: which get a reply (and its bytes) and which count as command
    // packets (checked by the `serverstats` and `clients` below) must match chronyd.
    run("udp malformed", (malformed(e.port), 0));
    for c in [
        "serverstats",
        "accheck 127.0.0.1",
        "accheck 10.1.1.1",
        "cmdaccheck 127.0.0.1",
        "allow 10.0.0.0/8",
        "accheck 10.1.1.1",
        "deny 10.1.0.0/16",
        "accheck 10.1.1.1",
        "allow 10.0.0.0/40",
        "cmdallow 192.0.2.0/24",
        "cmdaccheck 192.0.2.7",
        // Not `makestep`: chronyd -x cannot step its clock (500), gnomond -x steps its null
        // clock (control_sources.rs checks it).
        "makestep 0.1 3",
        "burst 5/10",
        "online",
        "offline",
        "onoffline",
        "delete 192.0.2.1",
        "maxpoll 192.0.2.1 10",
        "minpoll 192.0.2.1 99",
        "maxdelay 192.0.2.1 0.1",
        "polltarget 192.0.2.1 5",
        "ntpdata 192.0.2.1",
        "sourcename 192.0.2.1",
        "reselect",
        "refresh",
        "reload sources",
        "reset sources",
        "dump",
        "cyclelogs",
        "rekey",
        "writertc",
        "rtcdata",
        "trimrtc",
        "smoothing",
        "smoothtime reset",
        "manual list",
        "manual delete 0",
        "waitsync 1",
        "clients -k",
        "clients -p 100000",
        "serverstats",
    ] {
        run(&format!("unix {c}"), unix(e, c));
    }
    let (clients, code) = unix(e, "clients");
    run("unix clients", (mask_clients(&clients), code));
    let (clients, code) = unix(e, "clients -r");
    run("unix clients -r", (mask_clients(&clients), code));
    let (clients, code) = unix(e, "clients");
    run("unix clients after -r", (mask_clients(&clients), code));
    log
}

/// Sends malformed requests over UDP; returns the replies received, in hex, one per line.
fn malformed(port: u16) -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let header = |version: u8, pkt_type: u8, res: u8, command: u8, len: usize| {
        let mut p = vec![version, pkt_type, res, 0, 0, command, 0, 0, 0, 0, 0, 0x42];
        p.resize(len, 0);
        p
    };
    let mut out = String::new();
    for (what, pkt) in [
        ("short", header(6, 1, 0, 33, 20)),
        ("reply type", header(6, 2, 0, 33, 104)),
        ("reserved", header(6, 1, 1, 33, 104)),
        ("oversized", header(6, 1, 0, 33, 900)),
        ("version 4", header(4, 1, 0, 33, 104)),
        ("version 5", header(5, 1, 0, 33, 104)),
        ("truncated tracking", header(6, 1, 0, 33, 60)),
        ("unknown command", header(6, 1, 0, 250, 104)),
        ("logon", header(6, 1, 0, 10, 104)),
    ] {
        s.send_to(&pkt, ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 2048];
        let reply = match s.recv(&mut buf) {
            Ok(n) => buf[..n].iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => "no reply".to_string(),
        };
        out.push_str(&format!("{what}: {reply}\n"));
    }
    out
}

/// A real chronyd with the same NTP and command configuration as a gnomond, and the socket
/// directory it lives in.
fn chronyd_like(extra: &str) -> (Chronyd, u16, TempDir) {
    let dir = TempDir::new("chronyd-sock");
    let port = free_udp_port();
    let cmdport = free_udp_port();
    let socket = dir.join("run/chronyd.sock");
    let chronyd = Chronyd::start(&format!(
        "port {port}\ncmdport {cmdport}\nbindcmdaddress {}\n{extra}",
        socket.display()
    ));
    (chronyd, cmdport, dir)
}

/// Waits until `tracking` works over UDP (the daemon is up).
fn wait_command(port: u16) {
    for _ in 0..100 {
        if chronyc("127.0.0.1", Some(port), "tracking").1 == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no command answer on port {port}");
}

#[test]
fn chronyc_session_prints_the_same_bytes_as_against_chronyd_when_unsynchronised() {
    let conf = "allow 127.0.0.1";
    // Readiness by PID file and command, not by NTP queries, so that neither daemon has seen
    // NTP traffic.
    let gnomond = Daemon::start_with(conf, &[], support::Ready::PidFile);
    let (_chronyd, cmdport, dir) = chronyd_like(conf);
    wait_command(gnomond.cmdport);
    wait_command(cmdport);
    let g = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    let socket = dir.join("run/chronyd.sock");
    let c = Endpoints {
        port: cmdport,
        socket: &socket,
    };
    // Equalise the command counters: either may have needed more probes to come up.
    let probes_c = count_probes(&c);
    let probes_g = count_probes(&g);
    for _ in probes_g..probes_c {
        udp(&g, "tracking");
    }
    for _ in probes_c..probes_g {
        udp(&c, "tracking");
    }
    let ours = session(&g);
    let theirs = session(&c);
    for (a, b) in ours.lines().zip(theirs.lines()) {
        assert_eq!(a, b, "\n--- gnomond:\n{ours}\n--- chronyd:\n{theirs}");
    }
    assert_eq!(ours, theirs);
    // And the session really talked to both daemons over both transports.
    assert!(ours.contains("== unix cmdaccheck 192.0.2.7 (exit 0)\n208 Access allowed"));
    assert!(ours.contains("Command packets received   : "));
    assert!(!ours.contains("506 Cannot talk"), "{ours}");
    assert!(
        ours.contains("short: no reply\nreply type: no reply\n"),
        "{ours}"
    );
    assert!(ours.contains("version 5: 0602"), "{ours}");
    // The session contained privileged commands over UDP: refused, nothing changed.
    assert!(ours.contains("== udp allow 10.0.0.0/8 (exit 1)\n501 Not authorised"));
    assert!(ours.contains("== udp shutdown (exit 1)\n501 Not authorised"));
}

/// Command packets received so far (over the Unix socket, which itself counts one).
fn count_probes(e: &Endpoints) -> u64 {
    let (text, code) = unix(e, "serverstats");
    assert_eq!(code, 0, "{text}");
    text.lines()
        .find(|l| l.starts_with("Command packets received"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn local_mode_tracking_matches_chronyd_but_for_the_reference_time() {
    let conf = "allow 127.0.0.1\nlocal stratum 8";
    let gnomond = Daemon::start(conf);
    let (_chronyd, cmdport, _dir) = chronyd_like(conf);
    wait_command(cmdport);
    let g = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    let (ours, code) = udp(&g, "tracking");
    assert_eq!(code, 0);
    let (theirs, _) = chronyc("127.0.0.1", Some(cmdport), "tracking");
    assert_eq!(mask_ref_time(&ours), mask_ref_time(&theirs));
    assert!(ours.starts_with("Reference ID    : 7F7F0101 ()\nStratum         : 8\n"));
    assert!(!ours.contains("1970"), "reference time is set: {ours}");
}

#[test]
fn run_time_local_changes_what_ntp_clients_are_served() {
    let gnomond = Daemon::start("allow 127.0.0.1");
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    let stratum = || support::query(gnomond.addr_v4(), Duration::from_secs(2)).unwrap()[1];
    assert_eq!(stratum(), 0);
    assert_eq!(
        udp(&e, "local stratum 4"),
        ("501 Not authorised\n".into(), 1)
    );
    assert_eq!(stratum(), 0);
    assert_eq!(unix(&e, "local stratum 4"), ("200 OK\n".into(), 0));
    assert_eq!(stratum(), 4);
    let (t, _) = unix(&e, "tracking");
    assert!(t.contains("Stratum         : 4\n"), "{t}");
    assert_eq!(unix(&e, "local off"), ("200 OK\n".into(), 0));
    assert_eq!(stratum(), 0);
}

#[test]
fn run_time_allow_and_deny_change_who_is_served() {
    let gnomond = Daemon::start("allow 127.0.0.1\nbindaddress 0.0.0.0");
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    assert!(support::query(gnomond.addr_v4(), Duration::from_secs(2)).is_some());
    assert_eq!(unix(&e, "deny 127.0.0.1"), ("200 OK\n".into(), 0));
    assert!(support::query(gnomond.addr_v4(), Duration::from_millis(500)).is_none());
    assert_eq!(
        unix(&e, "accheck 127.0.0.1"),
        ("209 Access denied\n".into(), 0)
    );
    assert_eq!(unix(&e, "allow 127.0.0.1"), ("200 OK\n".into(), 0));
    assert!(support::query(gnomond.addr_v4(), Duration::from_secs(2)).is_some());
}

#[test]
fn engine_commands_answer_chronyds_failure_statuses() {
    let gnomond = Daemon::start("allow 127.0.0.1");
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    // Commands that succeed with no sources (`add`, `makestep`, `dfreq`, `doffset`) are in
    // control_sources.rs.
    for (c, want) in [
        ("settime 10:00", "505 Facility not enabled in daemon\n"),
        ("manual on", "505 Facility not enabled in daemon\n"),
        ("burst 2/4 192.0.2.1", "503 No such source\n"),
        ("maxpoll 192.0.2.1 99", "503 No such source\n"),
        ("maxupdateskew -1", "502 Invalid command\n"),
    ] {
        assert_eq!(unix(&e, c), (want.to_string(), 1), "{c}");
    }
}

#[test]
fn shutdown_over_the_socket_stops_gnomond_and_removes_socket_and_pidfile() {
    let mut gnomond = Daemon::start("allow 127.0.0.1");
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    assert_eq!(unix(&e, "shutdown"), ("200 OK\n".into(), 0));
    let status = gnomond
        .wait_exit(Duration::from_secs(10))
        .expect("still running");
    assert!(status.success(), "{status}");
    assert!(!gnomond.socket.exists());
    assert!(!gnomond.pidfile.exists());
    assert!(gnomond.stderr().contains("Received shutdown command"));
}

#[test]
fn cyclelogs_reopens_the_log_file() {
    let dir = TempDir::new("cyclelogs");
    let log = dir.join("gnomond.log");
    let mut gnomond = Daemon::start_foreground("allow 127.0.0.1", &["-l", log.to_str().unwrap()]);
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    let rotated = dir.join("gnomond.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    assert_eq!(unix(&e, "cyclelogs"), ("200 OK\n".into(), 0));
    assert_eq!(unix(&e, "shutdown"), ("200 OK\n".into(), 0));
    gnomond
        .wait_exit(Duration::from_secs(10))
        .expect("still running");
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(old.contains("starting"), "{old}");
    assert!(new.contains("gnomond exiting"), "{new}");
    assert!(!old.contains("gnomond exiting"), "{old}");
}

#[test]
fn clients_reports_command_hits_and_reset_zeroes_them() {
    let gnomond = Daemon::start("allow 127.0.0.1");
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    for _ in 0..5 {
        assert_eq!(udp(&e, "tracking").1, 0);
    }
    let (text, code) = unix(&e, "clients");
    assert_eq!(code, 0, "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("127.0.0.1"))
        .unwrap_or_else(|| panic!("{text}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    // NTP: the harness's readiness probes; Cmd: our five.
    assert!(f[1].parse::<u32>().unwrap() >= 1, "{row}");
    assert_eq!(f[6], "5", "{row}");
    unix(&e, "clients -r");
    let (text, _) = unix(&e, "clients");
    let row = text.lines().find(|l| l.starts_with("127.0.0.1")).unwrap();
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((f[1], f[6]), ("0", "0"), "{row}");
}

#[test]
fn socket_directory_rules_are_chronyds() {
    let dir = TempDir::new("sockdir");
    // A directory others can read: refused, and the daemon runs without the socket.
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let gnomond = Daemon::start(&format!(
        "allow 127.0.0.1\nbindcmdaddress {}/s.sock",
        open.display()
    ));
    let err = gnomond.stderr();
    assert!(
        err.contains(&format!("Wrong permissions on {}", open.display())),
        "{err}"
    );
    assert!(err.contains("Disabled command socket"), "{err}");
    assert!(!open.join("s.sock").exists());
    drop(gnomond);
    // A regular file at the socket path is never unlinked.
    let private = dir.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o750)).unwrap();
    let file = private.join("s.sock");
    std::fs::write(&file, "data").unwrap();
    let gnomond = Daemon::start(&format!(
        "allow 127.0.0.1\nbindcmdaddress {}",
        file.display()
    ));
    assert!(
        gnomond.stderr().contains("is not a socket"),
        "{}",
        gnomond.stderr()
    );
    drop(gnomond);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
    // `bindcmdaddress /` disables the socket, `cmdport 0` the UDP port.
    let gnomond = Daemon::start("allow 127.0.0.1\nbindcmdaddress /\ncmdport 0");
    assert!(!gnomond.socket.exists());
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    assert_eq!(udp(&e, "tracking").0, "506 Cannot talk to daemon\n");
}

/// xorshift32: reproducible garbage.
fn xorshift(seed: &mut u32) -> u32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    *seed
}

/// Sends `count` garbage datagrams (half with a plausible v6 request header, each with a
/// unique sequence number, which replies echo at offset 16) through `send`, collecting replies
/// with `recv`; every reply must
/// echo a sequence we sent in a datagram at least as long.
fn garbage_round(
    mut send: impl FnMut(&[u8]),
    mut recv: impl FnMut(&mut [u8]) -> Option<usize>,
    seed: u32,
    count: u32,
) -> usize {
    let mut seed = seed;
    let mut sent = std::collections::HashMap::new();
    let mut replies = 0;
    let mut buf = [0u8; 2048];
    for i in 0..count {
        let len = (xorshift(&mut seed) % 1000) as usize;
        let mut pkt: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
        if len >= 12 {
            if i % 2 == 0 {
                let code = (xorshift(&mut seed) % 80) as u8;
                // Never a valid SHUTDOWN: the daemon must stay up for the check below.
                let code = if code == 62 { 61 } else { code };
                pkt[..6].copy_from_slice(&[6, 1, 0, 0, 0, code]);
            }
            pkt[8..12].copy_from_slice(&i.to_be_bytes());
            sent.insert(i, len);
        }
        send(&pkt);
        if i % 32 == 31 {
            std::thread::sleep(Duration::from_millis(20));
            while let Some(n) = recv(&mut buf) {
                let seq = u32::from_be_bytes(buf[16..20].try_into().unwrap());
                let len = sent.get(&seq).copied().unwrap_or(0);
                assert!(
                    n >= 28 && n <= len,
                    "reply of {n} bytes to a {len}-byte datagram"
                );
                replies += 1;
            }
        }
    }
    replies
}

#[test]
fn garbage_datagrams_are_dropped_or_answered_never_longer_than_sent() {
    let gnomond = Daemon::start("allow 127.0.0.1");
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    // UDP.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_nonblocking(true).unwrap();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], gnomond.cmdport));
    let udp_replies = garbage_round(
        |p| {
            let _ = client.send_to(p, to);
        },
        |b| client.recv(b).ok(),
        0x1234_5678,
        1500,
    );
    // Unix socket, from a client socket bound in our own directory.
    let dir = TempDir::new("garbage");
    let client = std::os::unix::net::UnixDatagram::bind(dir.join("c.sock")).unwrap();
    client.set_nonblocking(true).unwrap();
    let unix_replies = garbage_round(
        |p| {
            let _ = client.send_to(p, &gnomond.socket);
        },
        |b| client.recv(b).ok(),
        0x9abc_def0,
        1500,
    );
    assert!(
        udp_replies > 0 && unix_replies > 0,
        "{udp_replies} {unix_replies}"
    );
    // Still alive and answering.
    assert_eq!(udp(&e, "tracking").1, 0);
    assert_eq!(unix(&e, "serverstats").1, 0);
}

/// One raw request from `from` to `to`; the reply's status, or `None` when nothing came back.
fn raw_status(from: &str, to: std::net::SocketAddr, req: &gnomon_cmdmon::Request) -> Option<u16> {
    let s = std::net::UdpSocket::bind((from, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s.send_to(&gnomon_cmdmon::encode_request(req, 0, 7), to)
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.recv(&mut buf).ok()?;
    Some(
        gnomon_cmdmon::decode_reply(&buf[..n])
            .unwrap()
            .status
            .code(),
    )
}

#[test]
fn cmdallow_cmdratelimit_and_ipv6_over_udp() {
    let gnomond = Daemon::start("allow 127.0.0.1\ncmdratelimit interval 4 burst 1");
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], gnomond.cmdport));
    let tracking = gnomon_cmdmon::Request::Tracking;
    // 127.0.0.2 is not localhost: dropped until `cmdallow`.
    assert_eq!(raw_status("127.0.0.2", to, &tracking), None);
    assert_eq!(unix(&e, "cmdallow 127.0.0.2"), ("200 OK\n".into(), 0));
    assert_eq!(raw_status("127.0.0.2", to, &tracking), Some(0));
    // A flood from it is rate limited (burst 1, one per 16 s); localhost never is.
    let answered = (0..10)
        .filter(|_| raw_status("127.0.0.2", to, &tracking).is_some())
        .count();
    assert!(answered < 10, "{answered}");
    for _ in 0..10 {
        assert_eq!(raw_status("127.0.0.1", to, &tracking), Some(0));
    }
    let (stats, _) = unix(&e, "serverstats");
    let dropped = stats
        .lines()
        .find(|l| l.starts_with("Command packets dropped"))
        .unwrap();
    assert_ne!(dropped, "Command packets dropped    : 0", "{stats}");
    // `cmddeny` shuts it out again; the default UDP socket on ::1 answers too.
    assert_eq!(unix(&e, "cmddeny 127.0.0.2"), ("200 OK\n".into(), 0));
    assert_eq!(
        unix(&e, "cmdaccheck 127.0.0.2"),
        ("209 Access denied\n".into(), 0)
    );
    let (t, code) = chronyc("::1", Some(gnomond.cmdport), "tracking");
    assert_eq!(code, 0, "{t}");
    assert!(t.starts_with("Reference ID    : 00000000 ()"), "{t}");
}

#[test]
fn run_time_allow_opens_the_ntp_socket_and_deny_all_closes_it() {
    // No `allow`: no NTP socket at start, as chronyd.
    let gnomond = Daemon::start_with("bindaddress 127.0.0.1", &[], support::Ready::PidFile);
    wait_command(gnomond.cmdport);
    let e = Endpoints {
        port: gnomond.cmdport,
        socket: &gnomond.socket,
    };
    let answers = || support::query(gnomond.addr_v4(), Duration::from_millis(500)).is_some();
    let bound = || std::net::UdpSocket::bind(gnomond.addr_v4()).is_err();
    assert!(!answers() && !bound());
    assert_eq!(unix(&e, "allow 127.0.0.1"), ("200 OK\n".into(), 0));
    assert!(answers() && bound());
    assert_eq!(unix(&e, "deny all"), ("200 OK\n".into(), 0));
    assert!(!answers() && !bound());
    assert_eq!(unix(&e, "allow 127.0.0.1"), ("200 OK\n".into(), 0));
    assert!(answers());
}
