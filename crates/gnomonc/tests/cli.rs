//! Command-line behaviour that needs no daemon: `lint` exit codes, `check` without an answer,
//! usage errors, and the "cannot open" path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: failures should panic

use std::process::Command;

const GNOMONC: &str = env!("CARGO_BIN_EXE_gnomonc");

fn run(args: &[&str]) -> (String, String, Option<i32>) {
    let o = Command::new(GNOMONC)
        .args(args)
        .output()
        .expect("gnomonc runs");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

fn temp_conf(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gnomonc-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, text).expect("write temp conf");
    p
}

#[test]
fn lint_exit_codes_are_clean_warning_error() {
    let clean = temp_conf(
        "clean.conf",
        "server 192.0.2.1 iburst\ndriftfile /var/lib/chrony/chrony.drift\n",
    );
    let warn = temp_conf(
        "warn.conf",
        "server 192.0.2.1 iburst\nserver 192.0.2.1 iburst\n",
    );
    let bad = temp_conf("bad.conf", "server 192.0.2.1 iburst\nnosuchdirective 1\n");
    let c = run(&["lint", clean.to_str().unwrap_or_default()]);
    let w = run(&["lint", warn.to_str().unwrap_or_default()]);
    let b = run(&["lint", bad.to_str().unwrap_or_default()]);
    for p in [&clean, &warn, &bad] {
        let _ = std::fs::remove_file(p);
    }
    assert_eq!(c.2, Some(0), "{c:?}");
    assert_eq!(c.0, "");
    assert_eq!(w.2, Some(1), "{w:?}");
    assert!(w.0.contains("warning"), "{w:?}");
    assert_eq!(b.2, Some(2), "{b:?}");
    assert!(b.0.contains("error"), "{b:?}");
    assert_eq!(run(&["lint"]).2, Some(2));
}

#[test]
fn check_without_daemon_is_critical() {
    // A loopback port nobody listens on: ECONNREFUSED, like check_ntp_time's "no response".
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port().to_string();
    drop(sock);
    let (out, _, code) = run(&["-h", "127.0.0.1", "-p", &port, "check"]);
    assert_eq!(code, Some(2));
    assert_eq!(out, "NTP CRITICAL: No response from daemon\n");
    let (_, err, code) = run(&["-h", "127.0.0.1", "-p", &port, "check", "-w"]);
    assert_eq!(code, Some(3));
    assert!(err.starts_with("Usage: gnomonc"), "{err}");
}

#[test]
fn unknown_option_and_missing_socket_fail_like_chronyc() {
    let (out, err, code) = run(&["-x"]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "gnomonc: invalid option -- 'x'\n");
    assert!(out.starts_with("Usage: gnomonc [OPTION]... [COMMAND]..."));
    let (_, err, code) = run(&["-h", "/nonexistent-dir/x.sock", "tracking"]);
    assert_eq!(
        (err.as_str(), code),
        ("Could not open connection to daemon\n", Some(1))
    );
    let (out, _, code) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("gnomonc (gnomon) version "));
}

#[test]
fn keygen_lines_have_chronyc_shape() {
    let chronyc = Command::new("chronyc").arg("keygen").output().is_ok();
    assert!(
        chronyc,
        "chronyc 4.3 is required for this test (apt-get install chrony)"
    );
    for args in [
        vec!["keygen"],
        vec!["keygen", "7", "SHA256"],
        vec!["keygen", "9", "MD5", "64"],
        vec!["keygen", "3", "AES128"],
        vec!["keygen", "2", "SHA1", "5000"],
        vec!["keygen", "2", "TIGER"],
        vec!["keygen", "x"],
    ] {
        let a = Command::new("chronyc").args(&args).output().unwrap();
        let (out, err, code) = run(&args);
        let a_out = String::from_utf8_lossy(&a.stdout);
        // Keys are random: compare everything but the hex digits.
        let shape = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_hexdigit() && s.contains("HEX:") {
                        'h'
                    } else {
                        c
                    }
                })
                .collect::<String>()
        };
        let prefix = |s: &str| s.split("HEX:").next().unwrap_or("").to_string();
        assert_eq!(
            (prefix(&a_out), a_out.len()),
            (prefix(&out), out.len()),
            "{args:?}"
        );
        assert_eq!(
            shape(&String::from_utf8_lossy(&a.stderr)),
            shape(&err),
            "{args:?}"
        );
        assert_eq!(a.status.code(), code, "{args:?}");
    }
}
