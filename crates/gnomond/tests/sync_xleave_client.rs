//! Interleaved client/server mode, client side (core association/interleaved.rs; `xleave`
//! reaches it through the source's configuration): gnomond configured `server … xleave` measures with interleaved responses
//! from a chronyd 4.3 server and from a gnomond server, as a chronyd client of the same server
//! does: `chronyc ntpdata` says "Interleaved : Yes", every packet test passes, the delay is the
//! kernel-stamped loopback round trip, and the source is selected and synchronises. Every
//! daemon runs with `-x` under noclock on loopback, on its own ports.

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

fn seconds(text: &str, label: &str) -> f64 {
    field(text, label)
        .trim_end_matches(" seconds")
        .parse()
        .unwrap()
}

/// The client line of both daemons, polling `ip`:`port` every second.
fn source_line(ip: &str, port: u16, options: &str) -> String {
    format!("server {ip} port {port} iburst minpoll 0 maxpoll 0 {options}")
}

/// A gnomond client of `ip`:`port` (it also serves loopback, which the harness's readiness
/// test needs).
fn gnomond_client(ip: &str, port: u16, options: &str) -> Daemon {
    Daemon::start(&format!(
        "{}\nallow 127.0.0.1",
        source_line(ip, port, options)
    ))
}

/// A chronyd client with only a Unix command socket, in a directory of its own.
struct ChronydClient {
    /// Killed first (fields drop in order), then its directory goes.
    _chronyd: Chronyd,
    _dir: TempDir,
    socket: PathBuf,
}

fn chronyd_client(port: u16, options: &str) -> ChronydClient {
    let dir = TempDir::new("xleave-chronyd-client");
    let socket = dir.join("run/chronyd.sock");
    let chronyd = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\n{}",
        socket.display(),
        source_line("127.0.0.1", port, options)
    ));
    ChronydClient {
        _chronyd: chronyd,
        _dir: dir,
        socket,
    }
}

/// Waits until the client at `socket` selected 127.0.0.1, lets it poll `polls` more times
/// (one a second) and returns its `ntpdata`.
fn ntpdata_after_sync(socket: &Path, polls: u64) -> String {
    wait_sources(socket, "^* 127.0.0.1");
    std::thread::sleep(Duration::from_secs(polls));
    chronyc(socket, "ntpdata")
}

/// What an interleaved client of a stratum-8 loopback server reports once synchronised.
fn assert_interleaved_and_synchronised(socket: &Path, who: &str) -> String {
    let ntpdata = ntpdata_after_sync(socket, 4);
    assert_eq!(field(&ntpdata, "Interleaved"), "Yes", "{who}:\n{ntpdata}");
    assert_eq!(field(&ntpdata, "Mode"), "Server", "{who}:\n{ntpdata}");
    assert_eq!(field(&ntpdata, "Stratum"), "8", "{who}:\n{ntpdata}");
    assert_eq!(
        field(&ntpdata, "NTP tests"),
        "111 111 1111",
        "{who}:\n{ntpdata}"
    );
    assert_eq!(
        field(&ntpdata, "TX timestamping"),
        "Kernel",
        "{who}:\n{ntpdata}"
    );
    assert!(count(&ntpdata, "Total good RX") >= 4, "{who}:\n{ntpdata}");
    // Kernel stamps at both ends of a loopback round trip.
    assert!(seconds(&ntpdata, "Peer delay") < 0.001, "{who}:\n{ntpdata}");
    let tracking = chronyc(socket, "tracking");
    assert_eq!(field(&tracking, "Stratum"), "9", "{who}:\n{tracking}");
    assert_eq!(
        field(&tracking, "Leap status"),
        "Normal",
        "{who}:\n{tracking}"
    );
    // Still interleaved after more polls (each response refers to the one before).
    std::thread::sleep(Duration::from_secs(2));
    let later = chronyc(socket, "ntpdata");
    assert_eq!(field(&later, "Interleaved"), "Yes", "{who}:\n{later}");
    assert!(
        count(&later, "Total good RX") > count(&ntpdata, "Total good RX"),
        "{who}:\n{later}"
    );
    ntpdata
}

#[test]
fn gnomond_xleave_client_of_chronyd_is_interleaved_as_chronyd_is() {
    let port = free_udp_port();
    let server_dir = TempDir::new("xleave-chronyd-server");
    let server_socket = server_dir.join("run/chronyd.sock");
    let _server = Chronyd::start(&format!(
        "port {port}\nallow 127.0.0.0/8\nlocal stratum 8\ncmdport 0\nbindcmdaddress {}",
        server_socket.display()
    ));
    wait_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "chronyd server",
    );
    let mut gnomond = gnomond_client("127.0.0.1", port, "xleave");
    let reference = chronyd_client(port, "xleave");
    assert_interleaved_and_synchronised(&gnomond.socket, "gnomond");
    assert_interleaved_and_synchronised(&reference.socket, "chronyd");
    // chronyd saw interleaved requests from both clients.
    let stats = chronyc(&server_socket, "serverstats");
    assert!(count(&stats, "Interleaved NTP packets") >= 8, "{stats}");
    gnomond.terminate();
    let log = gnomond.stderr();
    assert!(!log.contains("option xleave"), "{log}");
}

#[test]
fn gnomond_xleave_client_of_gnomond_is_interleaved_and_a_basic_one_is_not() {
    let mut server = Daemon::start("allow 127.0.0.0/8\nallow ::1\nlocal stratum 8");
    let client = gnomond_client("127.0.0.1", server.port, "xleave");
    // The basic client polls over IPv6, so its requests come from another address: gnomond's
    // server keeps interleaved state per client address (server/interleaved.rs), and a basic
    // client on the same address resets it at every request (chronyd 4.3 serves two clients
    // on one address in interleaved mode: the test above).
    let basic = gnomond_client("::1", server.port, "");
    assert_interleaved_and_synchronised(&client.socket, "gnomond");
    // Without `xleave` the same server answers in basic mode.
    let ntpdata = chronyc(&basic.socket, "ntpdata");
    assert_eq!(field(&ntpdata, "Interleaved"), "No", "{ntpdata}");
    // (Its last packet may have failed a delay test on a busy machine: basic loopback delays
    // include the scheduling of both daemons.)
    assert!(count(&ntpdata, "Total good RX") >= 3, "{ntpdata}");
    // The server recognised the interleaved requests.
    let stats = chronyc(&server.socket, "serverstats");
    assert!(count(&stats, "Interleaved NTP packets") >= 4, "{stats}");
    drop(client);
    drop(basic);
    server.terminate();
}
