//! The gnomon-bench binary end to end: `bare` + `probe` + `load` on loopback, and a short
//! `server` run against the real chronyd and the bare responder (no performance assertions:
//! only that every reply is valid and the report has its rows). chronyd missing is a failure.

// Tests may unwrap, and bound their waits with the real clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::net::UdpSocket;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gnomon-bench"))
}

fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn probe_and_load_against_the_bare_responder() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut bare = bench()
        .args(["bare", "--listen", &addr, "--max-seconds", "20"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut probed = None;
    for _ in 0..50 {
        let out = run(
            bench().args(["probe", &addr, "--timeout-ms", "200"]),
            Duration::from_secs(5),
        );
        if out.status.success() {
            probed = Some(String::from_utf8(out.stdout).unwrap());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let load = run(
        bench().args([
            "load",
            "--target",
            &addr,
            "--duration",
            "1",
            "--count",
            "20000",
            "--sockets",
            "4",
        ]),
        Duration::from_secs(10),
    );
    let _ = bare.kill();
    let _ = bare.wait();
    let probed = probed.expect("probe never got a reply");
    assert!(probed.contains("stratum         : 10"), "{probed}");
    assert!(probed.contains("offset          :"), "{probed}");
    let text = String::from_utf8_lossy(&load.stdout);
    assert!(load.status.success(), "{text}");
    assert!(text.contains(" invalid 0 "), "{text}");
}

#[test]
fn load_refuses_a_non_loopback_target() {
    let out = run(
        bench().args(["load", "--target", "192.0.2.1:123", "--duration", "1"]),
        Duration::from_secs(5),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn server_run_compares_chronyd_and_bare_with_every_reply_valid() {
    assert!(
        std::path::Path::new("/usr/sbin/chronyd").is_file(),
        "chronyd is not installed: run shared/tools/install-peers.sh"
    );
    // Normal scheduling here: a test must not take CPUs away from the rest of the suite.
    let out = run(
        bench().args([
            "server",
            "--servers",
            "chronyd,bare",
            "--reps",
            "1",
            "--duration",
            "1",
            "--fifo",
            "0",
            "--nice",
            "0",
        ]),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    for row in ["chronyd ", "bare "] {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row}row:\n{text}"));
        assert!(line.trim_end().ends_with(" 0"), "invalid replies: {line}");
    }
    assert!(text.contains("bare/chronyd: responses/s"), "{text}");
}

#[test]
fn sync_refuses_bad_options_before_starting_anything() {
    for (args, why) in [
        (&["--scenario", "lossy"][..], "--scenario"),
        (&["--duration", "10", "--settle", "10"][..], "--settle"),
        (&["--runs", "0"][..], "--runs"),
        (
            &["--gnomond", "/nonexistent/gnomond"][..],
            "gnomond not found",
        ),
        (&["--jitter", "1"][..], "unknown option --jitter"),
    ] {
        let out = run(bench().arg("sync").args(args), Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} started a run");
    }
}

/// The whole `sync` pipeline (upstream, relays, both clients, tracking, served time, report,
/// clean-up) in a few seconds, with chronyd standing in for gnomond (this crate's tests cannot
/// count on a gnomond binary; chronyd reads the same configuration). No figure is asserted.
#[test]
fn sync_runs_both_clients_through_relays_and_cleans_up() {
    assert!(
        std::path::Path::new("/usr/sbin/chronyd").is_file(),
        "chronyd is not installed: run shared/tools/install-peers.sh"
    );
    let mut child = bench()
        .args([
            "sync",
            "--scenario",
            "clean",
            "--duration",
            "6",
            "--settle",
            "3",
        ])
        .args(["--gnomond", "/usr/sbin/chronyd", "--trace"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Bounded: the run is 6 s plus at most 40 s of start-up waits; its output fits the pipes.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        // Overdue: SIGTERM first, which the bench catches to stop its daemons and remove its
        // files; SIGKILL only if that does not end it (its daemons die with it then).
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let grace = Instant::now();
        while child.try_wait().unwrap().is_none() && grace.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    for line in [
        "clean: relays: 0 ms one-way delay",
        "clean: chronyd 4.3: first sync ",
        "clean: gnomond: first sync ",
        "clean: gnomond/chronyd: first sync ",
        "clean: gnomond served time vs CLOCK_REALTIME after 3 s: n ",
        "clean: relay to chronyd 4.3: up ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line}:\n{text}");
    }
    let trace = |l: &str| l.starts_with("clean ") && l.contains(" us served ");
    assert!(text.lines().any(trace), "no trace line:\n{text}");
    let prefix = format!("gnomon-bench-sync-{pid}-");
    let left = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix));
    assert!(!left, "temporary directory left behind");
}
