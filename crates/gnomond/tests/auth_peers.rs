//! Keyed symmetric peers between gnomond and a real `chronyd -x` 4.3 (under noclock, loopback,
//! own ports): `peer ... key N` on both sides with the same `keyfile` entry (MD5 and SHA256).
//! In each test one daemon polls an upstream chronyd (`local stratum 8`, on 127.0.0.3) and
//! peers with the other, which has nothing but the keyed peer; the follower must select the
//! peer (`=*`), and both sides must report the exchange as authenticated in `chronyc ntpdata`
//! ("Authenticated   : Yes", chronyd's wording, which gnomond reproduces). With different key
//! material under the same ID (catalogue case 13 for a peer association) the follower never
//! selects the peer and both sides count authentication failures instead.
//!
//! No daemon has `allow`, so the follower can only synchronise through the symmetric exchange
//! (see sync_peers.rs, which covers the unauthenticated pairings).

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// How long a follower may take to select its peer.
const SYNC_LIMIT: Duration = Duration::from_secs(30);
/// How long a mismatched pair is watched for a (wrong) selection.
const MISMATCH_WATCH: Duration = Duration::from_secs(8);
/// Address of the upstream server.
const UPSTREAM: [u8; 4] = [127, 0, 0, 3];

const MD5_KEY: &str = "HEX:6B2F0C9E3A51D84407E1C2B9A3F05D6E";
const SHA256_KEY: &str = "HEX:0F1E2D3C4B5A69788796A5B4C3D2E1F000112233445566778899AABBCCDDEEFF";
const OTHER_MD5_KEY: &str = "HEX:11111111111111111111111111111111";

fn upstream() -> (Chronyd, u16) {
    let port = free_udp_port();
    let chronyd = Chronyd::start(&format!(
        "port {port}\nbindaddress 127.0.0.3\nallow 127.0.0.0/8\nlocal stratum 8\ncmdport 0"
    ));
    wait_answers(
        SocketAddr::from((UPSTREAM, port)),
        Duration::from_secs(10),
        "upstream chronyd",
    );
    (chronyd, port)
}

/// Writes a key file with key 1 of `kind` and material `key`, readable by anyone (chronyd
/// runs as root here, but the directory is shared with gnomond's own files).
fn keyfile(dir: &Path, name: &str, kind: &str, key: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("1 {kind} {key}\n")).unwrap();
    path.display().to_string()
}

/// A gnomond on NTP port `port` (no `allow`) with `keyfile` and the given source lines.
fn gnomond(port: u16, keys: &str, sources: &str, start: &str) -> Daemon {
    Daemon::start_with(
        &format!("port {port}\nkeyfile {keys}\n{sources}\nmakestep 0.001 -1"),
        &["-X", start],
        Ready::PidFile,
    )
}

/// A chronyd on NTP port `port` (no `allow`) with `keyfile` and the given source lines;
/// returns it and its UDP command port.
fn chronyd(port: u16, keys: &str, sources: &str) -> (Chronyd, u16) {
    let cmdport = free_udp_port();
    let c = Chronyd::start(&format!(
        "port {port}\ncmdport {cmdport}\nkeyfile {keys}\n{sources}\nmakestep 0.001 -1"
    ));
    (c, cmdport)
}

fn keyed_peer_line(port: u16) -> String {
    format!("peer 127.0.0.1 port {port} key 1 minpoll -2 maxpoll -2")
}

fn server_line(port: u16) -> String {
    format!("server 127.0.0.3 port {port} minpoll -2 maxpoll -2 iburst")
}

/// `chronyc -n -h 127.0.0.1 -p CMDPORT ntpdata` (all sources).
fn chronyc_ntpdata(cmdport: u16) -> String {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .args(["-n", "-h", "127.0.0.1", "-p"])
            .arg(cmdport.to_string())
            .arg("ntpdata"),
        Duration::from_secs(5),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `ntpdata` block of the peer at 127.0.0.1 (the upstream is at 127.0.0.3).
fn peer_block(ntpdata: &str) -> Option<String> {
    ntpdata
        .split("\n\n")
        .find(|b| {
            b.lines()
                .any(|l| l.starts_with("Remote address") && l.contains(": 127.0.0.1 "))
        })
        .map(str::to_string)
}

/// The value after the colon of line `label` in an ntpdata block.
fn field<'a>(block: &'a str, label: &str) -> Option<&'a str> {
    block
        .lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

fn first_number(v: &str) -> Option<u64> {
    v.split_whitespace().next()?.parse().ok()
}

/// Waits until the peer line of `sources` is selected (`=*`); returns the last listing.
fn wait_peer_selected(cmdport: u16) -> Result<(), String> {
    let start = Instant::now();
    let mut sources = String::new();
    while start.elapsed() < SYNC_LIMIT {
        sources = chronyc_sources(cmdport);
        if sources.lines().any(|l| l.starts_with("=*")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(sources)
}

/// Waits until the peer's ntpdata says the exchange is authenticated and valid packets keep
/// arriving; returns the last block otherwise.
fn wait_peer_authenticated(cmdport: u16) -> Result<String, String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < SYNC_LIMIT {
        let all = chronyc_ntpdata(cmdport);
        if let Some(b) = peer_block(&all) {
            let auth = field(&b, "Authenticated") == Some("Yes");
            let mode = field(&b, "Mode").unwrap_or_default().starts_with("Symmetric");
            let valid = field(&b, "Total valid RX")
                .and_then(first_number)
                .unwrap_or(0);
            if auth && mode && valid >= 2 {
                return Ok(b);
            }
            last = b;
        } else {
            last = all;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(last)
}

/// Runs a keyed pairing: `leader_is_gnomond` picks which side has the upstream.
fn keyed_pair(kind: &str, key: &str, leader_is_gnomond: bool) {
    let (up, up_port) = upstream();
    let dir = TempDir::new("auth-peers");
    let keys = keyfile(dir.path(), "peer.keys", kind, key);
    let (pg, pc) = (free_udp_port(), free_udp_port());
    let upstream_line = |yes: bool| {
        if yes {
            format!("{}\n", server_line(up_port))
        } else {
            String::new()
        }
    };
    let (c, c_cmd) = chronyd(
        pc,
        &keys,
        &format!("{}{}", upstream_line(!leader_is_gnomond), keyed_peer_line(pg)),
    );
    let g = gnomond(
        pg,
        &keys,
        &format!("{}{}", upstream_line(leader_is_gnomond), keyed_peer_line(pc)),
        "offset=0.2,freq=20",
    );
    let (follower, follower_name) = if leader_is_gnomond {
        (c_cmd, "chronyd")
    } else {
        (g.cmdport, "gnomond")
    };
    if let Err(last) = wait_peer_selected(follower) {
        panic!(
            "{follower_name} did not select its keyed {kind} peer:\n{last}\n\
             gnomond ntpdata:\n{}\nchronyd ntpdata:\n{}\ngnomond:\n{}\nchronyd:\n{}",
            chronyc_ntpdata(g.cmdport),
            chronyc_ntpdata(c_cmd),
            g.stderr(),
            c.output()
        );
    }
    for (cmd, name) in [(c_cmd, "chronyd"), (g.cmdport, "gnomond")] {
        if let Err(last) = wait_peer_authenticated(cmd) {
            panic!(
                "{name} does not authenticate its {kind} peer:\n{last}\n\
                 gnomond:\n{}\nchronyd:\n{}",
                g.stderr(),
                c.output()
            );
        }
    }
    drop(up);
}

#[test]
fn chronyd_follows_a_gnomond_peer_with_an_md5_key() {
    keyed_pair("MD5", MD5_KEY, true);
}

#[test]
fn gnomond_follows_a_chronyd_peer_with_a_sha256_key() {
    keyed_pair("SHA256", SHA256_KEY, false);
}

#[test]
fn chronyd_follows_a_gnomond_peer_with_a_sha256_key() {
    keyed_pair("SHA256", SHA256_KEY, true);
}

#[test]
fn gnomond_follows_a_chronyd_peer_with_an_md5_key() {
    keyed_pair("MD5", MD5_KEY, false);
}

/// Catalogue case 13 for a peer association: the same key ID with other material on the
/// other side. Neither follower direction ever selects, and gnomond counts the failures.
#[test]
fn peers_with_mismatched_keys_never_synchronise() {
    let (up, up_port) = upstream();
    let dir = TempDir::new("auth-peers-bad");
    let gkeys = keyfile(dir.path(), "g.keys", "MD5", MD5_KEY);
    let ckeys = keyfile(dir.path(), "c.keys", "MD5", OTHER_MD5_KEY);
    let (pg, pc) = (free_udp_port(), free_udp_port());
    // gnomond leads (it has the upstream); chronyd can follow only through the peer.
    let (c, c_cmd) = chronyd(pc, &ckeys, &keyed_peer_line(pg));
    let g = gnomond(
        pg,
        &gkeys,
        &format!("{}\n{}", server_line(up_port), keyed_peer_line(pc)),
        "offset=0.2,freq=20",
    );
    let start = Instant::now();
    let mut seen_traffic = false;
    while start.elapsed() < MISMATCH_WATCH {
        let cs = chronyc_sources(c_cmd);
        assert!(
            !cs.lines().any(|l| l.starts_with("=*") || l.starts_with("=+")),
            "chronyd selected a peer signed with another key:\n{cs}\n{}",
            c.output()
        );
        let gs = chronyc_sources(g.cmdport);
        let peer = gs
            .lines()
            .find(|l| l.starts_with('=') && !l.starts_with("=="))
            .unwrap_or_default()
            .to_string();
        assert!(
            !(peer.starts_with("=*") || peer.starts_with("=+")),
            "gnomond selected a peer signed with another key:\n{gs}"
        );
        // Both sides did receive the other's packets: the failure is the MAC, not silence.
        let block = peer_block(&chronyc_ntpdata(g.cmdport)).unwrap_or_default();
        let rx = field(&block, "Total RX").and_then(first_number).unwrap_or(0);
        let valid = field(&block, "Total valid RX")
            .and_then(first_number)
            .unwrap_or(0);
        assert_eq!(valid, 0, "gnomond accepted a badly signed packet:\n{block}");
        if rx >= 2 {
            seen_traffic = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        seen_traffic,
        "gnomond never received its peer's packets, so the test proves nothing:\n{}\n{}",
        chronyc_ntpdata(g.cmdport),
        g.stderr()
    );
    drop(up);
}
