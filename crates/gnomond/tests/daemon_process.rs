//! Process behaviour: detaching unless -n/-d (the parent exits 0 once the daemon serves, or 1
//! with the daemon's fatal message), `-l FILE`, `-t SECONDS`, and dropping root to `-u USER`.

// Helpers outside #[test] functions panic on a broken environment and read the real clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};
use support::{free_udp_port, query, run_gnomond, Daemon, Ready, TempDir};

/// Kills a detached daemon (found through its PID file) on drop.
struct Detached {
    pid: Option<u32>,
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn detaches_and_the_parent_exits_0_once_serving() {
    let dir = TempDir::new("detach");
    let port = free_udp_port();
    let pidfile = dir.join("g.pid");
    let log = dir.join("g.log");
    let out = run_gnomond(&[
        "-x",
        "-u",
        "root",
        "-l",
        log.to_str().unwrap(),
        &format!("pidfile {}", pidfile.display()),
        &format!("port {port}"),
        "allow 127.0.0.1",
        "local stratum 10",
    ]);
    let pid: Option<u32> = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let mut guard = Detached { pid };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = pid.expect("the daemon wrote its PID file before the parent exited");
    assert!(query(([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_some());
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while process_exists(pid) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_exists(pid));
    guard.pid = None;
    assert!(!pidfile.exists());
    // -l FILE: timestamped lines in the file.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Z gnomond version"), "{text}");
    assert!(text.contains("Z gnomond exiting"), "{text}");
}

#[test]
fn detached_start_failure_is_reported_by_the_parent() {
    let dir = TempDir::new("detach-fail");
    let victim = dir.join("victim");
    std::fs::write(&victim, "x").unwrap();
    let pidfile = dir.join("g.pid");
    std::os::unix::fs::symlink(&victim, &pidfile).unwrap();
    let out = run_gnomond(&[
        "-x",
        "-u",
        "root",
        &format!("pidfile {}", pidfile.display()),
        &format!("port {}", free_udp_port()),
        "allow 127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to follow a symbolic link"), "{err}");
}

#[test]
fn time_limit_ends_the_daemon_cleanly() {
    let dir = TempDir::new("timeout");
    let pidfile = dir.join("g.pid");
    let start = Instant::now();
    let out = run_gnomond(&[
        "-x",
        "-d",
        "-u",
        "root",
        "-t",
        "1",
        &format!("pidfile {}", pidfile.display()),
        &format!("port {}", free_udp_port()),
        "allow 127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(!pidfile.exists());
}

#[test]
fn drops_root_to_the_configured_user() {
    let d = Daemon::start_with(
        "allow 127.0.0.1\nlocal stratum 10",
        &["-u", "nobody"],
        Ready::Answers,
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == nobody),
        "{uid_line}"
    );
    let cap_eff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(cap_eff.ends_with("0000000000000000"), "{cap_eff}");
}

#[test]
fn unknown_user_is_fatal() {
    let out = run_gnomond(&[
        "-x",
        "-d",
        "-u",
        "no-such-user-gnomond",
        "pidfile /tmp/gnomond-test-never-created.pid",
        "port 0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Fatal error : Could not get user/group ID of no-such-user-gnomond"));
}
