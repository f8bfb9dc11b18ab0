//! Symmetric peers end to end on loopback (client/peers.rs): gnomond sends its mode-1
//! packets from its NTP port, as chronyd does, so two `peer` lines naming each other's port
//! pair up, between two gnomond and between gnomond and a real `chronyd -x`.
//!
//! No daemon in these tests has `allow`: nobody answers a stranger's mode 1 in passive mode,
//! so the follower can only synchronise through the symmetric exchange itself (each side's
//! packets echoing the other's transmit timestamp). In each test one daemon polls an upstream
//! `chronyd -x` (`local stratum 8`) and peers with a follower that has nothing but the peer:
//! the follower must select the peer (`=*`) and be synchronised at stratum 10, and the daemon
//! with the upstream must see the follower as a reachable peer (`=` with a non-zero reach)
//! that it never uses: the follower announces the leader's address as its reference ID, the
//! synchronisation-loop test (chrony's test D) rejects its samples, as chronyd does.
//!
//! The upstream listens on 127.0.0.3, the peers on 127.0.0.1: chronyd refuses two sources
//! with the same address, and takes a peer whose reference ID is its own address (the
//! leader's, were the upstream on 127.0.0.1 too) for a synchronisation loop.

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;

/// How long a follower may take to select its peer and synchronise.
const SYNC_LIMIT: Duration = Duration::from_secs(30);

/// Address of the upstream server.
const UPSTREAM: [u8; 4] = [127, 0, 0, 3];

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

/// A gnomond on NTP port `port` (no `allow`) with the given source lines.
fn gnomond(port: u16, sources: &str, start: &str) -> Daemon {
    Daemon::start_with(
        &format!("port {port}\n{sources}\nmakestep 0.001 -1"),
        &["-X", start],
        Ready::PidFile,
    )
}

/// A chronyd on NTP port `port` (no `allow`) with the given source lines; returns it and its
/// UDP command port.
fn chronyd(port: u16, sources: &str) -> (Chronyd, u16) {
    let cmdport = free_udp_port();
    let c = Chronyd::start(&format!(
        "port {port}\ncmdport {cmdport}\n{sources}\nmakestep 0.001 -1"
    ));
    (c, cmdport)
}

fn peer_line(port: u16) -> String {
    format!("peer 127.0.0.1 port {port} minpoll -2 maxpoll -2")
}

fn server_line(port: u16) -> String {
    format!("server 127.0.0.3 port {port} minpoll -2 maxpoll -2 iburst")
}

/// Waits until `sources` (a `chronyc sources` listing) has the peer selected and `tracking`
/// says stratum 10; returns the last listing and tracking on failure.
fn wait_follows(cmdport: u16) -> Result<(), String> {
    let start = Instant::now();
    let (mut sources, mut tracking) = (String::new(), String::new());
    while start.elapsed() < SYNC_LIMIT {
        sources = chronyc_sources(cmdport);
        tracking = chronyc_tracking(cmdport);
        let selected = sources.lines().any(|l| l.starts_with("=*"));
        if selected && tracking_value(&tracking, "Stratum") == Some(10.0) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("{sources}\n{tracking}"))
}

/// The first peer (`=`) line of a `sources` listing.
fn peer_line_of(sources: &str) -> Option<&str> {
    sources
        .lines()
        .find(|l| l.starts_with('=') && !l.starts_with("=="))
}

/// The reach column of the first peer line.
fn peer_reach(sources: &str) -> Option<u32> {
    u32::from_str_radix(peer_line_of(sources)?.split_whitespace().nth(4)?, 8).ok()
}

/// Waits until the leader reaches its follower, then checks for a few seconds that it keeps
/// it unusable (`?`: no sample passes the loop test; `x`) while the follower is synchronised
/// to the leader.
fn wait_peer_reachable(cmdport: u16) -> Result<(), String> {
    let start = Instant::now();
    let mut sources = String::new();
    while start.elapsed() < SYNC_LIMIT {
        sources = chronyc_sources(cmdport);
        if peer_reach(&sources).is_some_and(|r| r != 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if peer_reach(&sources).is_none_or(|r| r == 0) {
        return Err(sources);
    }
    for _ in 0..6 {
        sources = chronyc_sources(cmdport);
        let line = peer_line_of(&sources).unwrap_or_default();
        if !(line.starts_with("=?") || line.starts_with("=x")) {
            return Err(format!("the leader uses its follower:\n{sources}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

#[test]
fn two_gnomond_peers_synchronise_through_symmetric_mode() {
    let (up, up_port) = upstream();
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = gnomond(
        pa,
        &format!("{}\n{}", server_line(up_port), peer_line(pb)),
        "offset=0.2,freq=20",
    );
    let b = gnomond(pb, &peer_line(pa), "offset=-0.3,freq=-30");
    if let Err(last) = wait_follows(b.cmdport) {
        panic!(
            "follower did not select its peer:\n{last}\nleader:\n{}\nfollower:\n{}",
            a.stderr(),
            b.stderr()
        );
    }
    if let Err(last) = wait_peer_reachable(a.cmdport) {
        panic!("leader does not reach its peer:\n{last}\n{}", a.stderr());
    }
    drop(up);
}

#[test]
fn chronyd_follows_a_gnomond_peer() {
    let (up, up_port) = upstream();
    let (pg, pc) = (free_udp_port(), free_udp_port());
    let g = gnomond(
        pg,
        &format!("{}\n{}", server_line(up_port), peer_line(pc)),
        "offset=0.2,freq=20",
    );
    let (c, c_cmd) = chronyd(pc, &peer_line(pg));
    if let Err(last) = wait_follows(c_cmd) {
        panic!(
            "chronyd did not select its gnomond peer:\n{last}\ngnomond:\n{}\nchronyd:\n{}",
            g.stderr(),
            c.output()
        );
    }
    if let Err(last) = wait_peer_reachable(g.cmdport) {
        panic!(
            "gnomond does not reach its chronyd peer:\n{last}\n{}",
            g.stderr()
        );
    }
    drop(up);
}

#[test]
fn gnomond_follows_a_chronyd_peer() {
    let (up, up_port) = upstream();
    let (pg, pc) = (free_udp_port(), free_udp_port());
    let (c, c_cmd) = chronyd(pc, &format!("{}\n{}", server_line(up_port), peer_line(pg)));
    let g = gnomond(pg, &peer_line(pc), "offset=-0.3,freq=-30");
    if let Err(last) = wait_follows(g.cmdport) {
        panic!(
            "gnomond did not select its chronyd peer:\n{last}\ngnomond:\n{}\nchronyd:\n{}",
            g.stderr(),
            c.output()
        );
    }
    if let Err(last) = wait_peer_reachable(c_cmd) {
        panic!(
            "chronyd does not reach its gnomond peer:\n{last}\n{}",
            c.output()
        );
    }
    drop(up);
}
