//! Kernel transmit timestamps end to end (client/tx_stamps.rs, core association/tx_stamp.rs):
//! gnomond's requests and peer packets take their transmit time from the kernel's software
//! stamp, as chronyd 4.3 does on Linux. `chronyc ntpdata` then says "TX timestamping : Kernel"
//! for gnomond's source as it does for chronyd's own source polling the same upstream, every
//! measurements.log line has `K` in both timestamp columns, and the source synchronises.
//! All daemons run with `-x` under noclock on loopback.

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::*;

/// An upstream `chronyd -x` (`local stratum 8`) on 127.0.0.1; returns it and its port.
fn upstream() -> (Chronyd, u16) {
    let port = free_udp_port();
    let chronyd = Chronyd::start(&format!(
        "port {port}\nallow 127.0.0.0/8\nlocal stratum 8\ncmdport 0"
    ));
    wait_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "upstream chronyd",
    );
    (chronyd, port)
}

/// The data lines of a measurements.log (banner and header lines left out).
fn measurement_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

#[test]
fn client_requests_carry_kernel_transmit_timestamps_like_chronyds() {
    let (_up, port) = upstream();
    let source = format!("server 127.0.0.1 port {port} iburst minpoll -2 maxpoll -2");
    let logs = TempDir::new("txstamp-logs");
    let g = Daemon::start_with(
        &format!(
            "{source}\nlogdir {}\nlog measurements",
            logs.path().display()
        ),
        &[],
        Ready::PidFile,
    );
    let dir = TempDir::new("txstamp-chronyd");
    let socket = dir.join("run/chronyd.sock");
    let _c = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\n{source}",
        socket.display()
    ));
    wait_sources(&g.socket, "^* 127.0.0.1");
    wait_sources(&socket, "^* 127.0.0.1");
    // A few more exchanges after the selection.
    std::thread::sleep(Duration::from_secs(2));
    let ours = chronyc(&g.socket, "ntpdata");
    let theirs = chronyc(&socket, "ntpdata");
    assert_eq!(field(&theirs, "TX timestamping"), "Kernel", "{theirs}");
    for label in ["TX timestamping", "RX timestamping", "Mode", "NTP tests"] {
        assert_eq!(
            field(&ours, label),
            field(&theirs, label),
            "{label}:\n{ours}"
        );
    }
    assert!(count(&ours, "Total good RX") >= 4, "{ours}");
    // The measurement behind it was taken with the kernel's stamp: a loopback round trip
    // has no room for a daemon's send path.
    let delay: f64 = field(&ours, "Peer delay")
        .trim_end_matches(" seconds")
        .parse()
        .unwrap();
    assert!(delay < 0.001, "{ours}");

    // Synchronised to it.
    let tracking = chronyc(&g.socket, "tracking");
    assert_eq!(field(&tracking, "Stratum"), "9", "{tracking}");
    assert_eq!(field(&tracking, "Leap status"), "Normal", "{tracking}");

    // Every measurement (accepted or rejected) says where both stamps came from: K K.
    let lines = measurement_lines(&logs.join("measurements.log"));
    assert!(lines.len() >= 4, "{lines:?}");
    for l in &lines {
        let cols: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(cols[cols.len() - 2..], ["K", "K"], "{l}");
    }
    drop(g);
}

#[test]
fn peer_packets_carry_kernel_transmit_timestamps() {
    let (_up, up_port) = upstream();
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let peer = |port: u16| format!("peer 127.0.0.1 port {port} minpoll -2 maxpoll -2");
    // The leader follows the upstream (on 127.0.0.2, so that the peers' loop test does not
    // take the upstream's address for the peer's) and peers with the follower.
    let _leader = Daemon::start_on_port(
        pa,
        &format!(
            "server 127.0.0.2 port {up_port} iburst minpoll -2 maxpoll -2\n{}",
            peer(pb)
        ),
        &[],
        Ready::PidFile,
    );
    let logs = TempDir::new("txstamp-peer-logs");
    let follower = Daemon::start_on_port(
        pb,
        &format!(
            "{}\nlogdir {}\nlog measurements",
            peer(pa),
            logs.path().display()
        ),
        &[],
        Ready::PidFile,
    );
    wait_sources(&follower.socket, "=* 127.0.0.1");
    let ntpdata = chronyc(&follower.socket, "ntpdata");
    assert_eq!(field(&ntpdata, "Mode"), "Symmetric active", "{ntpdata}");
    assert_eq!(field(&ntpdata, "TX timestamping"), "Kernel", "{ntpdata}");
    assert!(count(&ntpdata, "Total good RX") >= 1, "{ntpdata}");
    let lines = measurement_lines(&logs.join("measurements.log"));
    let good: Vec<&String> = lines.iter().filter(|l| l.contains(" 1111 ")).collect();
    assert!(!good.is_empty(), "{lines:?}");
    for l in good {
        let cols: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(cols[cols.len() - 2..], ["K", "K"], "{l}");
    }
}
