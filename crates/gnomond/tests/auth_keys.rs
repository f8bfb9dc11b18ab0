//! Symmetric-key authentication of gnomond's NTP server (`keyfile`, `rekey`) against a real
//! chronyd client (`server ... key 1`): MD5 and SHA256 keys synchronise it, a wrong key never
//! does and is counted as an authentication failure, and `rekey` makes a corrected key file
//! take effect without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

const MD5_KEY: &str = "HEX:6B2F0C9E3A51D84407E1C2B9A3F05D6E";
const SHA256_KEY: &str = "HEX:0F1E2D3C4B5A69788796A5B4C3D2E1F000112233445566778899AABBCCDDEEFF";
const OTHER_KEY: &str = "HEX:11111111111111111111111111111111";

/// A chronyd polling gnomond every 0.25 s with key 1 of `keyfile`; its UDP command port.
fn keyed_client(gnomond_port: u16, keyfile: &Path) -> (Chronyd, u16) {
    let cmdport = free_udp_port();
    let c = Chronyd::start(&format!(
        "server 127.0.0.1 port {gnomond_port} key 1 iburst minpoll -2 maxpoll -2\n\
         keyfile {}\nport 0\ncmdport {cmdport}\nbindcmdaddress 127.0.0.1",
        keyfile.display()
    ));
    (c, cmdport)
}

fn synchronises_with(key_type: &str, key: &str) {
    let dir = TempDir::new("auth-keys");
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("1 {key_type} {key}\n")).unwrap();
    let d = Daemon::start(&format!(
        "allow 127.0.0.1\nlocal stratum 3\nkeyfile {}",
        keys.display()
    ));
    let (c, cmdport) = keyed_client(d.port, &keys);
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(20));
    assert!(
        ok,
        "chronyd did not select gnomond with a {key_type} key:\n{listing}\n{}\n{}",
        c.output(),
        d.stderr()
    );
}

#[test]
fn md5_keyed_chronyd_synchronises() {
    synchronises_with("MD5", MD5_KEY);
}

#[test]
fn sha256_keyed_chronyd_synchronises() {
    synchronises_with("SHA256", SHA256_KEY);
}

#[test]
fn wrong_key_never_synchronises_and_counts_auth_failures() {
    let dir = TempDir::new("auth-wrong");
    let ours = dir.join("gnomond.keys");
    let theirs = dir.join("chronyd.keys");
    std::fs::write(&ours, format!("1 MD5 {OTHER_KEY}\n")).unwrap();
    std::fs::write(&theirs, format!("1 MD5 {MD5_KEY}\n")).unwrap();
    let metrics_port = free_tcp_port();
    let d = Daemon::start(&format!(
        "allow 127.0.0.1\nlocal stratum 3\nkeyfile {}\nmetricsport {metrics_port}",
        ours.display()
    ));
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let (_c, cmdport) = keyed_client(d.port, &theirs);
    // 8 s is 32 polls, four times what a correct key needs (see the tests above).
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(8));
    assert!(!ok, "selected with a wrong key:\n{listing}");
    let failures = auth_failures(metrics);
    assert!(failures >= 4.0, "auth failures counted: {failures}");
}

#[test]
fn keyfile_warnings_name_line_and_file_and_rekey_reloads() {
    let dir = TempDir::new("auth-rekey");
    let ours = dir.join("gnomond.keys");
    let theirs = dir.join("chronyd.keys");
    // Line 2 is not a key: the warning names it; key 1 is wrong for now.
    std::fs::write(&ours, format!("1 MD5 {OTHER_KEY}\nnot a key line at all\n")).unwrap();
    std::fs::write(&theirs, format!("1 MD5 {MD5_KEY}\n")).unwrap();
    let d = Daemon::start(&format!(
        "allow 127.0.0.1\nlocal stratum 3\nkeyfile {}",
        ours.display()
    ));
    let expected = format!("Could not parse key at line 2 in file {}", ours.display());
    assert!(d.stderr().contains(&expected), "{}", d.stderr());
    let (c, cmdport) = keyed_client(d.port, &theirs);
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(4));
    assert!(!ok, "selected with a wrong key:\n{listing}");

    std::fs::write(&ours, format!("1 MD5 {MD5_KEY}\n")).unwrap();
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
    let (ok, listing) = wait_selected(cmdport, Duration::from_secs(20));
    assert!(
        ok,
        "not selected after rekey:\n{listing}\n{}\n{}",
        c.output(),
        d.stderr()
    );
}
