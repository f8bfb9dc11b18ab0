//! The PID file: written with our PID, refused when a live process holds it, replaced when
//! stale, never followed through a symbolic link, removed on a clean SIGTERM exit.
// Helpers outside #[test] functions panic on a broken environment and read the real clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use support::{run_gnomond, Daemon, Ready, TempDir};

fn conf_args(pidfile: &std::path::Path) -> Vec<String> {
    vec![
        "-x".into(),
        "-d".into(),
        "-u".into(),
        "root".into(),
        "-t".into(),
        "5".into(),
        format!("pidfile {}", pidfile.display()),
        format!("port {}", support::free_udp_port()),
        "allow 127.0.0.1".into(),
    ]
}

#[test]
fn pidfile_holds_pid_and_is_removed_on_sigterm() {
    let mut d = Daemon::start("allow 127.0.0.1");
    let content = std::fs::read_to_string(&d.pidfile).unwrap();
    assert_eq!(content, format!("{}\n", d.pid()));
    let status = d.terminate();
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert!(!d.pidfile.exists());
    assert!(d.stderr().contains("gnomond exiting"), "{}", d.stderr());
}

#[test]
fn sigint_and_sighup_also_exit_cleanly() {
    for sig in ["INT", "HUP", "QUIT"] {
        let mut d = Daemon::start("allow 127.0.0.1");
        d.signal(sig);
        let status = d.wait_exit(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(status.code(), Some(0), "SIG{sig}: {}", d.stderr());
        assert!(!d.pidfile.exists());
    }
}

#[test]
fn live_pidfile_is_refused_with_chronyd_wording() {
    let d = Daemon::start("allow 127.0.0.1");
    let args = conf_args(&d.pidfile);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run_gnomond(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Fatal error : Another gnomond may already be running (pid={}), check {}",
            d.pid(),
            d.pidfile.display()
        )),
        "{err}"
    );
    // The running daemon's file is untouched.
    assert_eq!(
        std::fs::read_to_string(&d.pidfile).unwrap(),
        format!("{}\n", d.pid())
    );
}

#[test]
fn stale_pidfile_is_replaced() {
    let dir = TempDir::new("pid-stale");
    let pidfile = dir.join("g.pid");
    // A PID far above pid_max cannot belong to a live process.
    std::fs::write(&pidfile, "99999999\n").unwrap();
    // The later `pidfile` line overrides the harness's own.
    let d = Daemon::start_with(
        &format!("allow 127.0.0.1\npidfile {}", pidfile.display()),
        &[],
        Ready::Answers,
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", d.pid())
    );
}

#[test]
fn symlinked_pidfile_is_refused() {
    let dir = TempDir::new("pid-link");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let pidfile = dir.join("g.pid");
    std::os::unix::fs::symlink(&victim, &pidfile).unwrap();
    let args = conf_args(&pidfile);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run_gnomond(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to follow a symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}
