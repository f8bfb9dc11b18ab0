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
use std::os::unix::fs::PermissionsExt;
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
/// `authselectmode ignore`: in the default `mix` mode a keyed source is required, so the
/// leader, whose keyed peer is an unsynchronised follower, would never select its upstream.
fn gnomond(port: u16, keys: &str, sources: &str, start: &str) -> Daemon {
    Daemon::start_with(
        &format!(
            "port {port}\nkeyfile {keys}\n{sources}\nmakestep 0.001 -1\nauthselectmode ignore"
        ),
        &["-X", start],
        Ready::PidFile,
    )
}

/// A chronyd on NTP port `port` (no `allow`) with `keyfile` and the given source lines (and
/// `authselectmode ignore`, as for gnomond); returns it, its UDP command port and its Unix
/// command socket (`ntpdata` is refused over UDP).
fn chronyd(dir: &Path, port: u16, keys: &str, sources: &str) -> (Chronyd, u16, String) {
    let cmdport = free_udp_port();
    // chronyd wants the socket's directory private (it disables the socket otherwise).
    let sockdir = dir.join(format!("chronyd-{port}"));
    std::fs::create_dir(&sockdir).unwrap();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = sockdir.join("chronyd.sock").display().to_string();
    let c = Chronyd::start(&format!(
        "port {port}\ncmdport {cmdport}\nbindcmdaddress {socket}\nkeyfile {keys}\n{sources}\n\
         makestep 0.001 -1\nauthselectmode ignore"
    ));
    (c, cmdport, socket)
}

fn keyed_peer_line(port: u16) -> String {
    format!("peer 127.0.0.1 port {port} key 1 minpoll -2 maxpoll -2")
}

fn server_line(port: u16) -> String {
    format!("server 127.0.0.3 port {port} minpoll -2 maxpoll -2 iburst")
}

/// `chronyc -n -h SOCKET ntpdata` (all sources) over a Unix command socket.
fn chronyc_ntpdata(socket: &str) -> String {
    let out = run_bounded(
        Command::new(require_tool("chronyc")).args(["-n", "-h", socket, "ntpdata"]),
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
fn wait_peer_authenticated(socket: &str) -> Result<String, String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < SYNC_LIMIT {
        let all = chronyc_ntpdata(socket);
        if let Some(b) = peer_block(&all) {
            let auth = field(&b, "Authenticated") == Some("Yes");
            let mode = field(&b, "Mode")
                .unwrap_or_default()
                .starts_with("Symmetric");
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
    let (c, c_cmd, c_sock) = chronyd(
        dir.path(),
        pc,
        &keys,
        &format!(
            "{}{}",
            upstream_line(!leader_is_gnomond),
            keyed_peer_line(pg)
        ),
    );
    let g = gnomond(
        pg,
        &keys,
        &format!(
            "{}{}",
            upstream_line(leader_is_gnomond),
            keyed_peer_line(pc)
        ),
        "offset=0.2,freq=20",
    );
    let g_sock = g.socket.display().to_string();
    let (follower, follower_name) = if leader_is_gnomond {
        (c_cmd, "chronyd")
    } else {
        (g.cmdport, "gnomond")
    };
    if let Err(last) = wait_peer_selected(follower) {
        panic!(
            "{follower_name} did not select its keyed {kind} peer:\n{last}\n\
             gnomond ntpdata:\n{}\nchronyd ntpdata:\n{}\ngnomond:\n{}\nchronyd:\n{}",
            chronyc_ntpdata(&g_sock),
            chronyc_ntpdata(&c_sock),
            g.stderr(),
            c.output()
        );
    }
    for (sock, name) in [(&c_sock, "chronyd"), (&g_sock, "gnomond")] {
        if let Err(last) = wait_peer_authenticated(sock) {
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
/// other side. Neither side ever selects or takes a sample from the other, though packets
/// flow both ways.
#[test]
fn peers_with_mismatched_keys_never_synchronise() {
    mismatched_keys(false);
}

/// As above, and gnomond's `ntpdata` counts the badly signed packets as chronyd does: not
/// valid (chronyd 4.3 counts packets passing tests 1–3 and 5 as valid RX; an unsynchronised
/// server's answers, failing test 6, still count: checked with chronyd against chronyd).
#[test]
fn ntpdata_counts_badly_signed_peer_packets_as_invalid_like_chronyd() {
    mismatched_keys(true);
}

/// Catalogue case 13 (skeleton key, CVE-2016-1567) for a peer association: gnomond knows keys
/// 1 and 2 and peers with key 1; chronyd signs its packets with key 2, which gnomond has too.
/// gnomond must take only key 1 from this peer.
#[test]
fn peer_signing_with_another_known_key_is_rejected() {
    let dir = TempDir::new("auth-peers-skel");
    let gkeys = dir.join("g.keys");
    std::fs::write(&gkeys, format!("1 MD5 {MD5_KEY}\n2 MD5 {OTHER_MD5_KEY}\n")).unwrap();
    let ckeys = dir.join("c.keys");
    std::fs::write(&ckeys, format!("2 MD5 {OTHER_MD5_KEY}\n")).unwrap();
    let (pg, pc) = (free_udp_port(), free_udp_port());
    let c_peer = format!("peer 127.0.0.1 port {pg} key 2 minpoll -2 maxpoll -2");
    let c = chronyd(dir.path(), pc, &ckeys.display().to_string(), &c_peer);
    let g = gnomond(
        pg,
        &gkeys.display().to_string(),
        &keyed_peer_line(pc),
        "offset=0.2,freq=20",
    );
    watch_mismatch(&g, c, false);
}

fn mismatched_keys(strict_ntpdata: bool) {
    let (up, up_port) = upstream();
    let dir = TempDir::new("auth-peers-bad");
    let gkeys = keyfile(dir.path(), "g.keys", "MD5", MD5_KEY);
    let ckeys = keyfile(dir.path(), "c.keys", "MD5", OTHER_MD5_KEY);
    let (pg, pc) = (free_udp_port(), free_udp_port());
    // gnomond leads (it has the upstream); chronyd can follow only through the peer.
    let c = chronyd(dir.path(), pc, &ckeys, &keyed_peer_line(pg));
    let g = gnomond(
        pg,
        &gkeys,
        &format!("{}\n{}", server_line(up_port), keyed_peer_line(pc)),
        "offset=0.2,freq=20",
    );
    watch_mismatch(&g, c, strict_ntpdata);
    drop(up);
}

/// Watches a pair whose keys do not match: neither side selects or samples the other, while
/// gnomond does receive the peer's packets (so the rejection is the MAC, not silence).
fn watch_mismatch(g: &Daemon, (c, c_cmd, c_sock): (Chronyd, u16, String), strict_ntpdata: bool) {
    let start = Instant::now();
    let g_sock = g.socket.display().to_string();
    let mut seen_traffic = false;
    while start.elapsed() < MISMATCH_WATCH {
        let cs = chronyc_sources(c_cmd);
        assert!(
            !cs.lines()
                .any(|l| l.starts_with("=*") || l.starts_with("=+")),
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
        let block = peer_block(&chronyc_ntpdata(&g_sock)).unwrap_or_default();
        let rx = field(&block, "Total RX")
            .and_then(first_number)
            .unwrap_or(0);
        let valid = field(&block, "Total valid RX")
            .and_then(first_number)
            .unwrap_or(0);
        let good = field(&block, "Total good RX")
            .and_then(first_number)
            .unwrap_or(0);
        assert_eq!(good, 0, "gnomond used a badly signed packet:\n{block}");
        assert_ne!(field(&block, "Authenticated"), Some("Yes"), "{block}");
        if strict_ntpdata {
            // chronyd 4.3 counts a packet failing test 5 as neither valid nor shown (its own
            // ntpdata of the same exchange: "Total valid RX : 0", tests 000 000 0000).
            assert_eq!(
                valid, 0,
                "gnomond counts a badly signed packet as valid:\n{block}"
            );
        }
        let cblock = peer_block(&chronyc_ntpdata(&c_sock)).unwrap_or_default();
        let cgood = field(&cblock, "Total good RX")
            .and_then(first_number)
            .unwrap_or(0);
        assert_eq!(cgood, 0, "chronyd used a badly signed packet:\n{cblock}");
        if rx >= 2 {
            seen_traffic = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        seen_traffic,
        "gnomond never received its peer's packets, so the test proves nothing:\n{}\n{}",
        chronyc_ntpdata(&g_sock),
        g.stderr()
    );
}
