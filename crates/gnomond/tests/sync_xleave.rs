//! Interleaved client/server mode, server side (core server/interleaved.rs, responder.rs):
//! a chronyd 4.3 client configured `server … xleave` gets interleaved responses from gnomond,
//! carrying the kernel transmit timestamp of gnomond's previous response to it, exactly as it
//! gets them from a chronyd server: its `chronyc ntpdata` says "Interleaved : Yes" and it
//! synchronises. A chronyd client without `xleave` is answered in basic mode. Every daemon
//! runs with `-x` under noclock on loopback, on its own ports.

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

/// A chronyd client with only a Unix command socket, in a directory of its own.
struct Client {
    /// Killed first (fields drop in order), then its directory goes.
    _chronyd: Chronyd,
    _dir: TempDir,
    socket: PathBuf,
}

/// Starts a chronyd client of 127.0.0.1:`port` with `options` after the source.
fn chronyd_client(port: u16, options: &str) -> Client {
    let dir = TempDir::new("xleave-client");
    let socket = dir.join("run/chronyd.sock");
    let chronyd = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\nserver 127.0.0.1 port {port} iburst minpoll -2 maxpoll -2 {options}",
        socket.display()
    ));
    Client {
        _chronyd: chronyd,
        _dir: dir,
        socket,
    }
}

/// Waits until the client selected its source, lets it poll `polls` more times (4 per second
/// at minpoll -2), and returns its `ntpdata`.
fn ntpdata_after_sync(socket: &Path, polls: u64) -> String {
    wait_sources(socket, "^* 127.0.0.1");
    std::thread::sleep(Duration::from_millis(250 * polls));
    chronyc(socket, "ntpdata")
}

/// The reference: chronyd as the server of the same chronyd client configuration.
#[test]
fn chronyd_server_answers_an_xleave_client_interleaved() {
    let port = free_udp_port();
    let _server = Chronyd::start(&format!(
        "port {port}\nallow 127.0.0.0/8\nlocal stratum 8\ncmdport 0"
    ));
    wait_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "chronyd server",
    );
    let client = chronyd_client(port, "xleave");
    let socket = &client.socket;
    let ntpdata = ntpdata_after_sync(socket, 8);
    assert_eq!(field(&ntpdata, "Interleaved"), "Yes", "{ntpdata}");
    assert_eq!(field(&ntpdata, "Mode"), "Server", "{ntpdata}");
    assert_eq!(field(&ntpdata, "Stratum"), "8", "{ntpdata}");
}

#[test]
fn gnomond_answers_an_xleave_chronyd_client_interleaved_and_it_synchronises() {
    let mut server = Daemon::start("allow 127.0.0.0/8\nlocal stratum 8");
    let client = chronyd_client(server.port, "xleave");
    let socket = &client.socket;
    let ntpdata = ntpdata_after_sync(socket, 8);
    assert_eq!(field(&ntpdata, "Interleaved"), "Yes", "{ntpdata}");
    assert_eq!(field(&ntpdata, "Mode"), "Server", "{ntpdata}");
    assert_eq!(field(&ntpdata, "Stratum"), "8", "{ntpdata}");
    assert_eq!(field(&ntpdata, "NTP tests"), "111 111 1111", "{ntpdata}");
    assert!(count(&ntpdata, "Total good RX") >= 4, "{ntpdata}");
    // The interleaved measurement is a loopback round trip with kernel stamps at both ends.
    let delay: f64 = field(&ntpdata, "Peer delay")
        .trim_end_matches(" seconds")
        .parse()
        .unwrap();
    assert!(delay < 0.001, "{ntpdata}");

    // Synchronised to gnomond, a stratum below it.
    let tracking = chronyc(socket, "tracking");
    assert_eq!(field(&tracking, "Stratum"), "9", "{tracking}");
    assert_eq!(field(&tracking, "Leap status"), "Normal", "{tracking}");
    // Still interleaved after more polls (each response refers to the one before).
    std::thread::sleep(Duration::from_secs(2));
    let later = chronyc(socket, "ntpdata");
    assert_eq!(field(&later, "Interleaved"), "Yes", "{later}");
    assert!(
        count(&later, "Total good RX") > count(&ntpdata, "Total good RX"),
        "{later}"
    );
    // gnomond recognised the interleaved requests (chronyd's "Interleaved NTP packets").
    let stats = chronyc(&server.socket, "serverstats");
    assert!(count(&stats, "Interleaved NTP packets") >= 4, "{stats}");
    // And served kernel transmit stamps: its exit summary counts the stamps it asked for
    // (one per reply to this client), read back and saved for the next interleaved reply.
    drop(client);
    server.terminate();
    let log = server.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("kernel TX timestamps requested"))
        .unwrap_or_else(|| panic!("no interleaved summary in:\n{log}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').parse().ok())
        .collect();
    let [_, requested, read, used] = numbers[numbers.len().saturating_sub(4)..] else {
        panic!("{line}");
    };
    assert!(used >= 4 && used <= read && read <= requested, "{line}");
}

#[test]
fn gnomond_answers_a_chronyd_client_without_xleave_in_basic_mode() {
    let server = Daemon::start("allow 127.0.0.0/8\nlocal stratum 8");
    let client = chronyd_client(server.port, "");
    let socket = &client.socket;
    let ntpdata = ntpdata_after_sync(socket, 8);
    assert_eq!(field(&ntpdata, "Interleaved"), "No", "{ntpdata}");
    assert_eq!(field(&ntpdata, "NTP tests"), "111 111 1111", "{ntpdata}");
    let tracking = chronyc(socket, "tracking");
    assert_eq!(field(&tracking, "Stratum"), "9", "{tracking}");
    let stats = chronyc(&server.socket, "serverstats");
    assert_eq!(count(&stats, "Interleaved NTP packets"), 0, "{stats}");
    assert!(count(&stats, "NTP packets received") >= 4, "{stats}");
}
