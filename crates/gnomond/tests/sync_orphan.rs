//! Orphan mode end to end on loopback (`local stratum 10 orphan`, chrony.conf): two servers
//! with the same `local` line peer with each other and nothing else. Only the one with the
//! smaller reference ID (127.0.0.2) keeps its local reference active (`tracking`: reference ID
//! 7F7F0101, stratum 10); the other (127.0.0.3) selects it (`=*`) and follows it at stratum 11
//! with its address as reference ID. chronyd 4.3 behaves so (two `chronyd -x` set up like
//! this show exactly these `tracking` figures), and the pair works with one daemon of each
//! kind in either role.

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};
use support::*;

/// How long the pair may take to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(40);

/// The orphan-mode lines of a member on `ip` (NTP port `port`) peering with `other_ip`'s
/// `other_port`.
fn member_conf(ip: &str, port: u16, other_ip: &str, other_port: u16) -> String {
    format!(
        "port {port}\nbindaddress {ip}\nallow 127.0.0.0/8\n\
         peer {other_ip} port {other_port} minpoll -2 maxpoll -2\n\
         local stratum 10 orphan\nmakestep 0.001 -1"
    )
}

fn gnomond(ip: &str, port: u16, other_ip: &str, other_port: u16, start: &str) -> Daemon {
    Daemon::start_with(
        &member_conf(ip, port, other_ip, other_port),
        &["-X", start],
        Ready::PidFile,
    )
}

fn chronyd(ip: &str, port: u16, other_ip: &str, other_port: u16) -> (Chronyd, u16) {
    let cmdport = free_udp_port();
    let c = Chronyd::start(&format!(
        "cmdport {cmdport}\n{}",
        member_conf(ip, port, other_ip, other_port)
    ));
    (c, cmdport)
}

fn reference_id(tracking: &str) -> Option<&str> {
    tracking
        .lines()
        .find(|l| l.starts_with("Reference ID"))?
        .split(':')
        .nth(1)?
        .split_whitespace()
        .next()
}

/// Waits until the daemon on `leader_cmd` serves its local reference (7F7F0101, stratum 10)
/// and the one on `follower_cmd` has selected its peer and follows it (7F000002, stratum 11);
/// on failure returns what both showed last.
fn wait_orphan_pair(leader_cmd: u16, follower_cmd: u16) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < SETTLE_LIMIT {
        let (lt, ft) = (chronyc_tracking(leader_cmd), chronyc_tracking(follower_cmd));
        let fs = chronyc_sources(follower_cmd);
        let leader_local =
            reference_id(&lt) == Some("7F7F0101") && tracking_value(&lt, "Stratum") == Some(10.0);
        let follows = reference_id(&ft) == Some("7F000002")
            && tracking_value(&ft, "Stratum") == Some(11.0)
            && fs.lines().any(|l| l.starts_with("=*"));
        if leader_local && follows {
            return Ok(());
        }
        last = format!("leader:\n{lt}\nfollower:\n{ft}\n{fs}");
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(last)
}

/// After settling, the leader must keep its local reference for a few more seconds: it never
/// takes its follower (stratum 11, larger reference ID) as a source.
fn leader_stays_local(leader_cmd: u16) -> Result<(), String> {
    for _ in 0..6 {
        let t = chronyc_tracking(leader_cmd);
        if reference_id(&t) != Some("7F7F0101") {
            return Err(t);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

#[test]
fn two_gnomond_in_orphan_mode_agree_on_the_smaller_refid() {
    let (p2, p3) = (free_udp_port(), free_udp_port());
    let a = gnomond("127.0.0.2", p2, "127.0.0.3", p3, "offset=0.2,freq=20");
    let b = gnomond("127.0.0.3", p3, "127.0.0.2", p2, "offset=-0.3,freq=-30");
    if let Err(last) = wait_orphan_pair(a.cmdport, b.cmdport) {
        panic!(
            "no orphan leader/follower pair:\n{last}\n127.0.0.2:\n{}\n127.0.0.3:\n{}",
            a.stderr(),
            b.stderr()
        );
    }
    if let Err(t) = leader_stays_local(a.cmdport) {
        panic!("the leader left its local reference:\n{t}");
    }
}

#[test]
fn chronyd_follows_an_orphan_gnomond_with_the_smaller_refid() {
    let (p2, p3) = (free_udp_port(), free_udp_port());
    let g = gnomond("127.0.0.2", p2, "127.0.0.3", p3, "offset=0.2,freq=20");
    let (c, c_cmd) = chronyd("127.0.0.3", p3, "127.0.0.2", p2);
    if let Err(last) = wait_orphan_pair(g.cmdport, c_cmd) {
        panic!(
            "chronyd does not follow gnomond:\n{last}\ngnomond:\n{}\nchronyd:\n{}",
            g.stderr(),
            c.output()
        );
    }
    if let Err(t) = leader_stays_local(g.cmdport) {
        panic!("gnomond left its local reference:\n{t}");
    }
}

#[test]
fn orphan_gnomond_follows_chronyd_with_the_smaller_refid() {
    let (p2, p3) = (free_udp_port(), free_udp_port());
    let (c, c_cmd) = chronyd("127.0.0.2", p2, "127.0.0.3", p3);
    let g = gnomond("127.0.0.3", p3, "127.0.0.2", p2, "offset=-0.3,freq=-30");
    if let Err(last) = wait_orphan_pair(c_cmd, g.cmdport) {
        panic!(
            "gnomond does not follow chronyd:\n{last}\ngnomond:\n{}\nchronyd:\n{}",
            g.stderr(),
            c.output()
        );
    }
    if let Err(t) = leader_stays_local(c_cmd) {
        panic!("chronyd left its local reference:\n{t}");
    }
}
