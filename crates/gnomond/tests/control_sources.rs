//! The real chronyc (Debian's 4.3) driving gnomond's sources at run time: `add`, `delete`,
//! `online`/`offline`, `burst`, `minpoll`/`maxpoll`/`maxdelay`…, `makestep`, `dfreq`/`doffset`,
//! `reselect`, and the reports that show their effect (`sources`, `activity`, `ntpdata`,
//! `selectdata`). Statuses are compared with a real chronyd 4.3 doing the same with the same
//! source; `ntpdata` is compared line by line with chronyd's for the same upstream.
//!
//! Every daemon runs with `-x` under noclock, on loopback only; the upstream is a gnomond in
//! `local stratum 8`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{free_udp_port, require_tool, run_bounded, Chronyd, Daemon, Ready, TempDir};

/// `chronyc -n -h HOST [-p PORT] ARGS`: (stdout + stderr, exit code).
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

/// Over the Unix socket (every command is allowed there).
fn unix(socket: &Path, args: &str) -> (String, i32) {
    chronyc(socket.to_str().unwrap(), None, args)
}

fn upstream() -> Daemon {
    Daemon::start("allow 127.0.0.1\nlocal stratum 8")
}

/// A gnomond polling `upstream` with `options`, plus `extra` directives.
fn client(upstream: &Daemon, options: &str, extra: &str, args: &[&str]) -> Daemon {
    let d = Daemon::start_with(
        &format!("server 127.0.0.1 port {} {options}\n{extra}", upstream.port),
        args,
        Ready::PidFile,
    );
    wait_command(&d.socket);
    d
}

fn wait_command(socket: &Path) {
    for _ in 0..100 {
        if unix(socket, "tracking").1 == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no command answer on {}", socket.display());
}

/// Polls `chronyc sources` until `pred` holds on its text or `limit` passes.
fn wait_sources(socket: &Path, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        last = unix(socket, "sources").0;
        if pred(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("sources never matched:\n{last}");
}

fn selected(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("^* 127.0.0.1"))
}

/// The value of an `ntpdata` line ("Total TX        : 12" → "12").
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_once(": "))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label} in:\n{text}"))
}

/// The words of the `sources` row for `ip`.
fn row<'a>(text: &'a str, ip: &str) -> Vec<&'a str> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.get(1) == Some(&ip))
        .unwrap_or_else(|| panic!("no {ip} in\n{text}"))
}

/// Polls `activity` until it contains `want` (40 s at most: a running iburst, 2 s per
/// request, ends first).
fn wait_activity(socket: &Path, want: &str) {
    let start = Instant::now();
    loop {
        let text = unix(socket, "activity").0;
        if text.contains(want) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "{text}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A counter line of `ntpdata`.
fn n(text: &str, label: &str) -> u64 {
    field(text, label).parse().unwrap()
}

fn total_tx(socket: &Path) -> u64 {
    field(&unix(socket, "ntpdata 127.0.0.1").0, "Total TX")
        .parse()
        .unwrap()
}

#[test]
fn add_selects_the_new_source_and_delete_removes_it() {
    let up = upstream();
    let g = Daemon::start_with("", &[], Ready::PidFile);
    wait_command(&g.socket);
    let add = format!(
        "add server 127.0.0.1 port {} minpoll -2 maxpoll 0 iburst",
        up.port
    );
    assert_eq!(unix(&g.socket, &add), ("200 OK\n".into(), 0));
    assert_eq!(
        unix(&g.socket, &add),
        ("511 Source already present\n".into(), 1)
    );
    wait_sources(&g.socket, Duration::from_secs(20), selected);
    assert_eq!(
        unix(&g.socket, "sourcename 127.0.0.1").0,
        "127.0.0.1\n",
        "the name it was added with"
    );
    assert_eq!(unix(&g.socket, "delete 127.0.0.1"), ("200 OK\n".into(), 0));
    let after = unix(&g.socket, "sources").0;
    assert!(!after.contains("127.0.0.1"), "{after}");
    assert_eq!(
        unix(&g.socket, "delete 127.0.0.1"),
        ("503 No such source\n".into(), 1)
    );
    assert!(unix(&g.socket, "activity").0.contains("0 sources online"));
}

#[test]
fn add_pool_and_peer_take_chronycs_options() {
    let up = upstream();
    let g = Daemon::start_with("", &[], Ready::PidFile);
    wait_command(&g.socket);
    // A pool given as an address resolves to itself (no DNS query leaves).
    let pool = format!(
        "add pool 127.0.0.1 port {} minpoll -1 maxpoll -1 iburst",
        up.port
    );
    assert_eq!(unix(&g.socket, &pool), ("200 OK\n".into(), 0));
    let text = wait_sources(&g.socket, Duration::from_secs(20), selected);
    assert_eq!(
        row(&text, "127.0.0.1")[..4],
        ["^*", "127.0.0.1", "8", "-1"],
        "{text}"
    );
    assert_eq!(
        unix(&g.socket, "add peer 127.0.0.2 minpoll 3 offline"),
        ("200 OK\n".into(), 0)
    );
    let text = wait_sources(&g.socket, Duration::from_secs(5), |t| {
        t.contains("=? 127.0.0.2")
    });
    assert_eq!(
        row(&text, "127.0.0.2")[..6],
        ["=?", "127.0.0.2", "0", "3", "0", "-"],
        "{text}"
    );
    // Once the pool member's iburst is over.
    wait_activity(&g.socket, "\n1 sources online\n1 sources offline\n0 ");
}

/// The commands whose reply is only a status, on gnomond and on chronyd with the same
/// source: the same status lines and exit codes, in order.
#[test]
fn source_command_statuses_match_chronyd() {
    let up = upstream();
    let options = "iburst minpoll -2 maxpoll 0";
    let g = client(&up, options, "", &[]);
    let dir = TempDir::new("chronyd-sources");
    let socket = dir.join("run/chronyd.sock");
    let _c = Chronyd::start(&format!(
        "port 0\ncmdport {}\nbindcmdaddress {}\nserver 127.0.0.1 port {} {options}",
        free_udp_port(),
        socket.display(),
        up.port
    ));
    wait_command(&socket);
    wait_sources(&g.socket, Duration::from_secs(20), selected);
    wait_sources(&socket, Duration::from_secs(20), selected);
    let session = |s: &Path| {
        let mut log = String::new();
        for c in [
            "burst 2/4",
            "burst 2/4 127.0.0.1",
            "burst 2/4 127.0.0.2",
            "burst 2/4 10.0.0.0/8",
            "burst 1/1 127.0.0.0/8",
            "offline 127.0.0.2",
            "offline 10.0.0.0/8",
            "offline",
            "online 127.0.0.1",
            "onoffline",
            "minpoll 127.0.0.1 2",
            "minpoll 127.0.0.2 2",
            "minpoll 127.0.0.1 99",
            "maxpoll 127.0.0.1 -3",
            "maxpoll 127.0.0.1 0",
            "maxdelay 127.0.0.1 0.5",
            "maxdelay 127.0.0.1 -1",
            "maxdelay 127.0.0.1 3",
            "maxdelayratio 127.0.0.1 2",
            "maxdelaydevratio 127.0.0.1 -2",
            "maxdelaydevratio 127.0.0.1 10",
            "minstratum 127.0.0.1 3",
            "polltarget 127.0.0.1 10",
            "polltarget 127.0.0.2 10",
            "reselect",
            "refresh",
            "delete 127.0.0.2",
            "add server 127.0.0.1",
            "add server 127.0.0.3 minpoll 1 offline",
            "add peer 127.0.0.4 offline",
            "delete 127.0.0.3",
            "delete 127.0.0.4",
            "delete 127.0.0.4",
            "dfreq 0.1",
            "doffset 0.001",
            "sources -a",
        ] {
            let (text, code) = unix(s, c);
            // `sources` values differ between daemons: compare the rows' addresses only.
            let text = if c.starts_with("sources") {
                text.lines()
                    .filter_map(|l| l.split_whitespace().nth(1))
                    .filter(|w| w.starts_with("127."))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                text
            };
            log.push_str(&format!("== {c} (exit {code})\n{text}\n"));
        }
        log
    };
    let ours = session(&g.socket);
    let theirs = session(&socket);
    assert_eq!(ours, theirs);
    // Both end with the one source polling normally once the bursts (whose spacing differs)
    // are over.
    for s in [&g.socket, &socket] {
        wait_activity(s, "\n1 sources online\n0 sources offline\n0 ");
    }
}

#[test]
fn offline_stops_polling_and_online_resumes() {
    let up = upstream();
    // No iburst: `offline` then takes effect at once (a running burst would finish first).
    let g = client(&up, "minpoll -2 maxpoll -2", "", &[]);
    wait_sources(&g.socket, Duration::from_secs(20), selected);
    assert_eq!(
        unix(&g.socket, "offline 127.0.0.0/8"),
        ("200 OK\n".into(), 0)
    );
    // Once the start-up iburst, if still running, is over (chronyd's "burst (return to
    // offline)").
    wait_activity(&g.socket, "\n0 sources online\n1 sources offline\n0 ");
    let before = total_tx(&g.socket);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(total_tx(&g.socket), before, "no request while offline");
    // A burst polls an offline source, which then goes back offline (chronyd's "burst
    // (return to offline)"). At 0.25 s polls the burst's requests are 1/16 s apart, so the
    // burst can be over before `activity` answers: Total TX read after `activity` tells
    // whether the burst was still running then (fewer than its 4 requests sent), when
    // `activity` must show it; a burst already over is tried again, a few times.
    let mut burst_seen = false;
    let mut before = before;
    for attempt in 1..=5 {
        assert_eq!(unix(&g.socket, "burst 4/4"), ("200 OK\n".into(), 0));
        let activity = unix(&g.socket, "activity").0;
        let sent = total_tx(&g.socket) - before;
        burst_seen = activity.contains("1 sources doing burst (return to offline)");
        assert!(
            burst_seen || sent >= 4,
            "burst running ({sent} of 4 sent) but not in activity:\n{activity}"
        );
        wait_activity(&g.socket, "\n0 sources online\n1 sources offline\n0 ");
        let after_burst = total_tx(&g.socket);
        assert!(after_burst >= before + 4, "the burst's requests");
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(total_tx(&g.socket), after_burst, "offline again");
        before = after_burst;
        if burst_seen {
            break;
        }
        println!("note: burst {attempt} was over before `activity` answered");
    }
    assert!(
        burst_seen,
        "every burst was over before `activity` answered (machine too slow to see one)"
    );
    assert_eq!(unix(&g.socket, "online"), ("200 OK\n".into(), 0));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        total_tx(&g.socket) >= before + 2,
        "polling every 0.25 s again"
    );
    let log = g.stderr();
    assert!(
        log.contains("Source 127.0.0.1 offline") && log.contains("Source 127.0.0.1 online"),
        "{log}"
    );
}

#[test]
fn burst_sends_extra_requests_between_polls() {
    let up = upstream();
    // 16 s polls: after the iburst nothing is sent for a while, except the burst.
    let g = client(&up, "iburst minpoll 4 maxpoll 4", "", &[]);
    wait_sources(&g.socket, Duration::from_secs(30), selected);
    std::thread::sleep(Duration::from_millis(500));
    let before = total_tx(&g.socket);
    assert_eq!(unix(&g.socket, "burst 3/3"), ("200 OK\n".into(), 0));
    let burst_started = Instant::now();
    let activity = unix(&g.socket, "activity").0;
    // The burst ends with its third request (2 s apart): if fewer were sent after `activity`
    // answered, the burst was running when it did (the usual case by far).
    let sent = total_tx(&g.socket) - before;
    if sent < 3 {
        assert!(
            activity.contains("1 sources doing burst (return to online)"),
            "burst running ({sent} of 3 sent) but not in activity:\n{activity}"
        );
    } else {
        println!("note: the burst was over before `activity` answered:\n{activity}");
    }
    // Three requests 2 s apart: polled until a deadline well past the 4 s they take, which
    // still ends before the next regular poll (16 s) could make up the count.
    let mut after = total_tx(&g.socket);
    while after < before + 3 && burst_started.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(250));
        after = total_tx(&g.socket);
    }
    assert!(after >= before + 3, "{before} -> {after}");
    // Back online once the burst is over.
    wait_activity(&g.socket, "\n1 sources online\n");
}

#[test]
fn poll_and_delay_settings_apply_and_log_like_chronyd() {
    let up = upstream();
    let g = client(&up, "iburst minpoll -2 maxpoll 0", "", &[]);
    wait_sources(&g.socket, Duration::from_secs(20), selected);
    for c in [
        "minpoll 127.0.0.1 2",
        "maxpoll 127.0.0.1 -1",
        "minpoll 127.0.0.1 99",
        "maxdelay 127.0.0.1 1e9",
        "maxdelaydevratio 127.0.0.1 -2",
        "minstratum 127.0.0.1 3",
    ] {
        assert_eq!(unix(&g.socket, c), ("200 OK\n".into(), 0), "{c}");
    }
    let log = g.stderr();
    for line in [
        "Source 127.0.0.1 new minpoll 2\n",
        "Source 127.0.0.1 new maxpoll 2\n",
        "Source 127.0.0.1 new maxpoll -1\n",
        "Source 127.0.0.1 new minpoll -1\n",
        "Source 127.0.0.1 new maxdelay 1000.000000\n",
        "Source 127.0.0.1 new maxdelaydevratio 0.000000\n",
        "Source 127.0.0.1 new minstratum 3\n",
    ] {
        assert!(log.contains(line), "{line} not in\n{log}");
    }
    assert!(!log.contains("minpoll 99"), "{log}");
    assert_eq!(
        unix(&g.socket, "maxdelaydevratio 127.0.0.1 10"),
        ("200 OK\n".into(), 0)
    );
    // The poll interval follows the new range at once.
    wait_sources(&g.socket, Duration::from_secs(5), |t| {
        t.lines().any(|l| {
            l.split_whitespace()
                .take(4)
                .eq(["^*", "127.0.0.1", "8", "-1"])
        })
    });
    // A delay limit below every measured delay: the next packets fail test A.
    assert_eq!(
        unix(&g.socket, "maxdelay 127.0.0.1 1e-9"),
        ("200 OK\n".into(), 0)
    );
    let start = Instant::now();
    loop {
        let nd = unix(&g.socket, "ntpdata 127.0.0.1").0;
        if field(&nd, "NTP tests") == "111 111 0111" {
            assert!(n(&nd, "Total good RX") < n(&nd, "Total valid RX"), "{nd}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{nd}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn makestep_steps_the_null_clocks_remaining_correction() {
    let up = upstream();
    // The null clock starts 0.5 s ahead; without `makestep` in the configuration the engine
    // slews it, which takes minutes.
    let g = client(
        &up,
        "iburst minpoll -2 maxpoll -2",
        "allow 127.0.0.1",
        &["-X", "offset=0.5"],
    );
    let start = Instant::now();
    let system_time = |g: &Daemon| {
        let t = unix(&g.socket, "tracking").0;
        support::tracking_value(&t, "System time").unwrap_or(0.0)
    };
    while system_time(&g).abs() < 0.1 {
        assert!(start.elapsed() < Duration::from_secs(20), "never slewing");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(unix(&g.socket, "makestep"), ("200 OK\n".into(), 0));
    assert!(system_time(&g).abs() < 0.01, "{}", system_time(&g));
    // And the served time is right at once.
    let offset = support::served_offset(g.addr_v4(), 3).unwrap();
    assert!(offset.abs() < 0.05, "{offset}");
    assert!(g.stderr().contains("System clock was stepped by"));
}

#[test]
fn dfreq_and_doffset_move_frequency_and_pending_correction() {
    let up = upstream();
    // 4 s polls: no clock update comes between a command and the report that checks it.
    let g = client(&up, "iburst minpoll 2 maxpoll 2", "", &[]);
    wait_sources(&g.socket, Duration::from_secs(30), selected);
    // Just after a sample.
    let start = Instant::now();
    while row(&unix(&g.socket, "sources").0, "127.0.0.1")[5] != "0"
        && start.elapsed().as_secs() < 10
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let freq = |g: &Daemon| {
        let t = unix(&g.socket, "tracking").0;
        support::tracking_value(&t, "Frequency").unwrap()
    };
    let before = freq(&g);
    assert_eq!(unix(&g.socket, "dfreq 40"), ("200 OK\n".into(), 0));
    let after = freq(&g);
    assert!((after - before - 40.0).abs() < 5.0, "{before} -> {after}");
    assert_eq!(unix(&g.socket, "doffset 0.2"), ("200 OK\n".into(), 0));
    // The source's last sample is re-expressed against the corrected clock: about -200 ms.
    let text = unix(&g.socket, "sources").0;
    let last = row(&text, "127.0.0.1")[6];
    assert!(
        ["-199ms[", "-200ms[", "-201ms["]
            .iter()
            .any(|v| last.starts_with(v)),
        "{text}"
    );
    let log = g.stderr();
    assert!(log.contains("Accumulated delta freq of 40.000ppm"), "{log}");
    assert!(
        log.contains("Accumulated delta offset of 0.200000 seconds"),
        "{log}"
    );
}

#[test]
fn selectdata_shows_states_and_options() {
    let up = upstream();
    let g = client(
        &up,
        "iburst minpoll -2 maxpoll -2 prefer",
        &format!(
            "server 127.0.0.2 port {} minpoll -2 maxpoll -2 noselect",
            free_udp_port()
        ),
        &[],
    );
    wait_sources(&g.socket, Duration::from_secs(20), selected);
    let (text, code) = unix(&g.socket, "selectdata");
    assert_eq!(code, 0, "{text}");
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{text}");
    let start = |state: &str, ip: &str, opts: &str| format!("{state} {ip:<25} N {opts} {opts}");
    assert!(
        rows[0].starts_with(&start("*", "127.0.0.1", "-P---")),
        "{text}"
    );
    assert!(rows[0].ends_with(" N"), "{text}");
    assert!(
        rows[1].starts_with(&start("N", "127.0.0.2", "N----")),
        "{text}"
    );
    assert!(rows[1].ends_with(" ?"), "{text}");
    assert_eq!(unix(&g.socket, "reselect"), ("200 OK\n".into(), 0));
    assert!(unix(&g.socket, "selectdata").0.contains("* 127.0.0.1"));
}

/// `ntpdata` for the same upstream on chronyd and gnomond: the same lines, and the same
/// values where they do not depend on timing (both take kernel transmit and receive
/// timestamps). The counters and measurements depend on each daemon's history.
#[test]
fn ntpdata_has_chronyds_lines_and_values_for_the_same_upstream() {
    let up = upstream();
    let options = "iburst minpoll 0 maxpoll 0";
    let g = client(&up, options, "", &[]);
    let dir = TempDir::new("chronyd-ntpdata");
    let socket = dir.join("run/chronyd.sock");
    let _c = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\nserver 127.0.0.1 port {} {options}",
        socket.display(),
        up.port
    ));
    wait_command(&socket);
    wait_sources(&g.socket, Duration::from_secs(20), selected);
    wait_sources(&socket, Duration::from_secs(20), selected);
    let ours = unix(&g.socket, "ntpdata").0;
    let theirs = unix(&socket, "ntpdata").0;
    let labels = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split(':').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(labels(&ours), labels(&theirs), "{ours}\n{theirs}");
    for label in [
        "Remote address",
        "Remote port",
        "Local address",
        "Leap status",
        "Version",
        "Mode",
        "Stratum",
        "Poll interval",
        "Precision",
        "Root delay",
        "Root dispersion",
        "Reference ID",
        "Jitter asymmetry",
        "NTP tests",
        "Interleaved",
        "Authenticated",
        "TX timestamping",
        "RX timestamping",
    ] {
        assert_eq!(field(&ours, label), field(&theirs, label), "{label}");
    }
    assert!(n(&ours, "Total TX") >= n(&ours, "Total RX"));
    assert!(n(&ours, "Total valid RX") >= n(&ours, "Total good RX"));
    // Selected: at least three samples went into its statistics.
    assert!(n(&ours, "Total good RX") >= 3, "{ours}");
}

/// Sources not heard from yet (offline), one with a symmetric key: `sources`, `authdata`,
/// `selectdata` and `ntpdata` print the same bytes for gnomond and chronyd.
#[test]
fn unanswered_and_keyed_sources_print_chronyds_bytes() {
    let dir = TempDir::new("keys");
    let keys = dir.join("keys");
    std::fs::write(
        &keys,
        "1 SHA256 HEX:0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20\n",
    )
    .unwrap();
    let conf = format!(
        "keyfile {}\nserver 127.0.0.9 key 1 offline\nserver 127.0.0.10 minpoll 4 offline",
        keys.display()
    );
    let g = Daemon::start_with(&conf, &[], Ready::PidFile);
    wait_command(&g.socket);
    let socket = dir.join("run/chronyd.sock");
    let _c = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\n{conf}",
        socket.display()
    ));
    wait_command(&socket);
    for c in [
        "sources",
        "authdata",
        "selectdata",
        "ntpdata 127.0.0.9",
        "ntpdata 127.0.0.10",
        "activity",
    ] {
        assert_eq!(unix(&g.socket, c), unix(&socket, c), "{c}");
    }
}

/// `reload sources`: lines removed from the `sourcedir` files go, new ones come, unchanged
/// ones keep polling without a restart (their reach register survives).
#[test]
fn reload_sources_applies_the_sourcedir_changes() {
    let up = upstream();
    let dir = TempDir::new("sourcedir");
    let sources = dir.join("sources.d");
    std::fs::create_dir(&sources).unwrap();
    let kept = format!(
        "server 127.0.0.1 port {} iburst minpoll -2 maxpoll -2\n",
        up.port
    );
    std::fs::write(
        sources.join("a.sources"),
        format!("{kept}server 127.0.0.12 offline\n"),
    )
    .unwrap();
    let g = Daemon::start_with(
        &format!("sourcedir {}", sources.display()),
        &[],
        Ready::PidFile,
    );
    wait_command(&g.socket);
    wait_sources(&g.socket, Duration::from_secs(20), |t| {
        t.lines()
            .any(|l| l.starts_with("^* 127.0.0.1 ") && l.contains(" 377 "))
    });
    std::fs::write(sources.join("a.sources"), &kept).unwrap();
    std::fs::write(sources.join("b.sources"), "peer 127.0.0.13 offline\n").unwrap();
    assert_eq!(unix(&g.socket, "reload sources"), ("200 OK\n".into(), 0));
    let text = unix(&g.socket, "sources").0;
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(
        rows[0][..5],
        ["^*", "127.0.0.1", "8", "-2", "377"],
        "{text}"
    );
    assert_eq!(rows[1][..2], ["=?", "127.0.0.13"], "{text}");
    // Removing every file removes every sourcedir source.
    std::fs::remove_file(sources.join("a.sources")).unwrap();
    std::fs::remove_file(sources.join("b.sources")).unwrap();
    assert_eq!(unix(&g.socket, "reload sources"), ("200 OK\n".into(), 0));
    assert_eq!(unix(&g.socket, "sources").0.lines().count(), 2);
}

/// `reset sources` drops the measurements: no samples and no synchronisation right after,
/// then the source is selected again from new samples.
#[test]
fn reset_sources_starts_measuring_again() {
    let up = upstream();
    let g = client(&up, "iburst minpoll 1 maxpoll 1", "", &[]);
    wait_sources(&g.socket, Duration::from_secs(30), selected);
    assert_eq!(unix(&g.socket, "reset sources"), ("200 OK\n".into(), 0));
    let stats = unix(&g.socket, "sourcestats").0;
    let first: Vec<&str> = stats
        .lines()
        .nth(2)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(first[..3], ["127.0.0.1", "0", "0"], "{stats}");
    let tracking = unix(&g.socket, "tracking").0;
    assert!(
        tracking.contains("Leap status     : Not synchronised"),
        "{tracking}"
    );
    wait_sources(&g.socket, Duration::from_secs(30), selected);
}

/// Two equal upstreams and `combinelimit 0`: one is selected, the other not combined. The
/// state columns of `sources` and `selectdata` are chronyd's (`^-` and `D`).
#[test]
fn selectdata_state_of_a_source_not_combined_is_chronyds() {
    let a = upstream();
    // Sources are told apart by address (chronyd refuses a second one at the same address).
    let b = Daemon::start_with(
        "allow 127.0.0.0/8\nlocal stratum 8\nbindaddress 127.0.0.2",
        &[],
        Ready::PidFile,
    );
    let conf = format!(
        "server 127.0.0.1 port {} iburst minpoll -2 maxpoll -2\n\
         server 127.0.0.2 port {} iburst minpoll -2 maxpoll -2\ncombinelimit 0",
        a.port, b.port
    );
    let g = Daemon::start_with(&conf, &[], Ready::PidFile);
    let dir = TempDir::new("chronyd-combine");
    let socket = dir.join("run/chronyd.sock");
    let _c = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\n{conf}",
        socket.display()
    ));
    wait_command(&g.socket);
    wait_command(&socket);
    let states = |s: &Path, cmd: &str| -> Vec<String> {
        unix(s, cmd)
            .0
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    for s in [&g.socket, &socket] {
        wait_sources(s, Duration::from_secs(20), |t| {
            t.contains("^* 127.0.0.") && t.contains("^- 127.0.0.")
        });
        let mut sel = states(s, "selectdata");
        sel.sort();
        assert_eq!(sel, ["*", "D"], "{}", unix(s, "selectdata").0);
    }
}
