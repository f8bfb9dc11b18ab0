//! `server` options end to end, each side by side with a real `chronyd -x` given the same line
//! (chrony.conf(5) meanings; the engine's unit tests are in gnomon-core):
//! * `offset 0.01`: both list the source 10 ms behind (`chronyc sources` last sample);
//! * `copy`: both serve their source's stratum and reference ID instead of stratum + 1 and
//!   the source's address;
//! * `auto_offline`: in a private network namespace where 127.0.0.2 and 127.0.0.3 have
//!   `unreachable` routes, every send to them fails at once (EHOSTUNREACH, nothing is sent);
//!   the source with the option goes offline, the one without stays online
//!   (`chronyc activity`).
//!
//! The upstream is a `chronyd -x` with `local stratum 8` on 127.0.0.1.

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;

fn upstream() -> (Chronyd, u16) {
    let port = free_udp_port();
    let chronyd = Chronyd::start(&format!(
        "port {port}\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0"
    ));
    wait_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "upstream chronyd",
    );
    (chronyd, port)
}

/// A chronyd client serving on its own port, with a UDP command port; returns it, its NTP
/// port and its command port.
fn chronyd_client(sources: &str) -> (Chronyd, u16, u16) {
    let (port, cmdport) = (free_udp_port(), free_udp_port());
    let c = Chronyd::start(&format!(
        "port {port}\ncmdport {cmdport}\nallow 127.0.0.1\n{sources}"
    ));
    (c, port, cmdport)
}

/// Seconds of a `chronyc sources` offset such as `-9998us` or `+3568ns`.
fn seconds(text: &str) -> Option<f64> {
    let units = [("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0)];
    let (num, scale) = units
        .iter()
        .find_map(|(u, k)| text.strip_suffix(u).map(|n| (n, *k)))?;
    Some(num.trim_start_matches('+').parse::<f64>().ok()? * scale)
}

/// The adjusted offset of the last sample of the first source in a `sources` listing.
fn last_sample(sources: &str) -> Option<f64> {
    let line = sources.lines().find(|l| l.starts_with('^'))?;
    let (_, after) = line
        .split_once(" 377 ")
        .or_else(|| line.split_once(" 17 "))?;
    let field = after.split_whitespace().nth(1)?;
    let (adjusted, _) = field.split_once('[').unwrap_or((field, ""));
    seconds(adjusted)
}

/// Waits for a last sample whose reach is 377 (eight answered polls) and returns it.
fn wait_sample(cmdport: u16) -> Result<f64, String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        last = chronyc_sources(cmdport);
        if last.contains(" 377 ") {
            if let Some(o) = last_sample(&last) {
                return Ok(o);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

#[test]
fn offset_option_moves_the_source_like_chronyd() {
    let (up, up_port) = upstream();
    let line =
        format!("server 127.0.0.1 port {up_port} minpoll -2 maxpoll -2 noselect offset 0.01");
    let g = Daemon::start(&format!("{line}\nallow 127.0.0.1"));
    let (c, _, c_cmd) = chronyd_client(&line);
    let theirs = wait_sample(c_cmd).unwrap_or_else(|l| panic!("chronyd:\n{l}\n{}", c.output()));
    let ours = wait_sample(g.cmdport).unwrap_or_else(|l| panic!("gnomond:\n{l}\n{}", g.stderr()));
    // Loopback offsets are microseconds: both show the 10 ms correction, in the same sense.
    assert!((theirs + 0.01).abs() < 1e-3, "chronyd {theirs}");
    assert!((ours + 0.01).abs() < 1e-3, "gnomond {ours}");
    drop(up);
}

/// Stratum and reference ID served by `server` once it answers synchronised (stratum 1..15).
fn served_identity(server: SocketAddr) -> Option<(u8, u32)> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(r) = query(server, Duration::from_millis(300)) {
            if (1..16).contains(&r[1]) && r[0] >> 6 != 3 {
                return Some((r[1], u32::from_be_bytes(r[12..16].try_into().unwrap())));
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

#[test]
fn copy_serves_the_source_stratum_and_reference_id_like_chronyd() {
    let (up, up_port) = upstream();
    let line = |copy: &str| {
        format!("server 127.0.0.1 port {up_port} minpoll -2 maxpoll -2 iburst {copy}\nmakestep 0.001 -1")
    };
    let plain = Daemon::start(&format!("{}\nallow 127.0.0.1", line("")));
    let copied = Daemon::start(&format!("{}\nallow 127.0.0.1", line("copy")));
    let (c, c_port, _) = chronyd_client(&line("copy"));
    let theirs = served_identity(SocketAddr::from(([127, 0, 0, 1], c_port)))
        .unwrap_or_else(|| panic!("chronyd never synchronised:\n{}", c.output()));
    // chronyd's own `local stratum 8` reference ID, 127.127.1.1, and its stratum.
    assert_eq!(theirs, (8, 0x7F7F_0101));
    let ours = served_identity(copied.addr_v4())
        .unwrap_or_else(|| panic!("gnomond never synchronised:\n{}", copied.stderr()));
    assert_eq!(ours, theirs);
    let without = served_identity(plain.addr_v4())
        .unwrap_or_else(|| panic!("gnomond never synchronised:\n{}", plain.stderr()));
    assert_eq!(without, (9, 0x7F00_0001));
    drop(up);
}

/// `chronyc -h SOCKET activity` (Unix command socket) as text.
fn activity(socket: &std::path::Path) -> String {
    let out = run_bounded(
        std::process::Command::new(require_tool("chronyc"))
            .args(["-n", "-h"])
            .arg(socket)
            .arg("activity"),
        Duration::from_secs(5),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `activity` until it reports one source online and one offline.
fn wait_one_offline(socket: &std::path::Path) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        last = activity(socket);
        if last.contains("1 sources online") && last.contains("1 sources offline") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

#[test]
fn auto_offline_source_goes_offline_when_sends_fail_like_chronyd() {
    let ns = Netns::new();
    // Sends to 127.0.0.2 and 127.0.0.3 fail at once (EHOSTUNREACH); loopback works.
    for host in ["127.0.0.2/32", "127.0.0.3/32"] {
        let route = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "ip",
                "route",
                "add",
                "unreachable",
                host,
            ])
            .args(["table", "local"])
            .status()
            .unwrap();
        assert!(route.success());
    }
    in_netns(&ns, || {
        let sources = "server 127.0.0.2 port 9 minpoll -2 maxpoll -2 auto_offline\n\
                       server 127.0.0.3 port 9 minpoll -2 maxpoll -2";
        let g = Daemon::start_with(sources, &[], Ready::PidFile);
        let dir = TempDir::new("auto-offline");
        let run = dir.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let sock = run.join("chronyd.sock");
        let c = Chronyd::start(&format!(
            "port 0\ncmdport 0\nbindcmdaddress {}\n{sources}",
            sock.display()
        ));
        wait_one_offline(&sock).unwrap_or_else(|l| panic!("chronyd:\n{l}\n{}", c.output()));
        wait_one_offline(&g.socket).unwrap_or_else(|l| panic!("gnomond:\n{l}\n{}", g.stderr()));
    });
}

/// `chronyc -h SOCKET COMMAND` (Unix command socket): its standard output.
fn chronyc_on(socket: &std::path::Path, command: &str) -> String {
    let out = run_bounded(
        std::process::Command::new(require_tool("chronyc"))
            .args(["-n", "-h"])
            .arg(socket)
            .arg(command),
        Duration::from_secs(5),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// chronyc(1) `onoffline`: a source is online when a route to it exists. In a namespace
/// where 127.0.0.2 is `unreachable`, both daemons start with both sources online and, after
/// `onoffline`, show one online and one offline.
#[test]
fn onoffline_takes_sources_without_a_route_offline_like_chronyd() {
    let ns = Netns::new();
    let route = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "ip",
            "route",
            "add",
            "unreachable",
        ])
        .args(["127.0.0.2/32", "table", "local"])
        .status()
        .unwrap();
    assert!(route.success());
    in_netns(&ns, || {
        let sources = "server 127.0.0.2 port 9 minpoll 6\nserver 127.0.0.1 port 9 minpoll 6";
        let g = Daemon::start_with(sources, &[], Ready::PidFile);
        let dir = TempDir::new("onoffline");
        let run = dir.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let sock = run.join("chronyd.sock");
        let c = Chronyd::start(&format!(
            "port 0\ncmdport 0\nbindcmdaddress {}\n{sources}",
            sock.display()
        ));
        for (name, socket, log) in [
            ("chronyd", &sock, c.output()),
            ("gnomond", &g.socket, g.stderr()),
        ] {
            let start = Instant::now();
            let mut before = activity(socket);
            while !before.contains("2 sources online") && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(200));
                before = activity(socket);
            }
            assert!(
                before.contains("2 sources online"),
                "{name} before:\n{before}\n{log}"
            );
            let reply = chronyc_on(socket, "onoffline");
            assert!(reply.contains("200 OK"), "{name}: {reply}");
            wait_one_offline(socket).unwrap_or_else(|l| panic!("{name}:\n{l}\n{log}"));
        }
    });
}
