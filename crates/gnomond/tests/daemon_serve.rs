//! Serving NTP over loopback: mode 3 over IPv4 and IPv6, access rules, malformed datagrams
//! dropped and counted while service goes on, `-4`, and a burst answered in full.
// Helpers outside #[test] functions panic on a broken environment and read the real clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use support::{client_request, exchange, query, Daemon, Ready};

const WAIT: Duration = Duration::from_secs(2);

fn ntp_seconds(bytes: &[u8]) -> f64 {
    let secs = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    let frac = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
    f64::from(secs) + f64::from(frac) / 4_294_967_296.0
}

fn now_ntp() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    d.as_secs_f64() + 2_208_988_800.0
}

#[test]
fn serves_mode_3_over_ipv4_loopback() {
    let d = Daemon::start("allow 127.0.0.1\nlocal stratum 10");
    let before = now_ntp();
    let reply = query(d.addr_v4(), WAIT).expect("reply");
    let after = now_ntp();
    assert_eq!(reply.len(), 48);
    assert_eq!(reply[0] & 7, 4, "mode 4");
    assert_eq!((reply[0] >> 3) & 7, 4, "version echoed");
    assert_eq!(
        reply[1], 10,
        "local stratum 10 serves stratum 10, as chronyd"
    );
    let rx = ntp_seconds(&reply[32..40]);
    let tx = ntp_seconds(&reply[40..48]);
    assert!(rx <= tx, "rx {rx} tx {tx}");
    assert!(
        rx >= before - 0.01 && tx <= after + 0.01,
        "{before} {rx} {tx} {after}"
    );
}

#[test]
fn serves_mode_3_over_ipv6_loopback() {
    let d = Daemon::start("allow 127.0.0.1\nallow ::1\nlocal stratum 10");
    let reply = query(d.addr_v6(), WAIT).expect("reply over [::1]");
    assert_eq!(reply[0] & 7, 4);
}

#[test]
fn denied_address_gets_nothing() {
    let d = Daemon::start("allow 127.0.0.1\ndeny 127.0.0.2\nlocal stratum 10");
    let sock = UdpSocket::bind("127.0.0.2:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    sock.send_to(&client_request([7; 8]), d.addr_v4()).unwrap();
    let mut buf = [0u8; 128];
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "denied client was answered"
    );
    // IPv6 is not allowed at all here.
    assert!(query(d.addr_v6(), Duration::from_millis(700)).is_none());
    // The allowed address still is.
    assert!(query(d.addr_v4(), WAIT).is_some());
}

#[test]
fn malformed_datagrams_are_dropped_counted_and_service_continues() {
    let mut d = Daemon::start("allow 127.0.0.1\nlocal stratum 10");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut bad_version = client_request([1; 8]);
    bad_version[0] = 0x03; // version 0
    let mut broadcast = client_request([2; 8]);
    broadcast[0] = 0x25; // mode 5
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x23],
        vec![0x23; 47],
        bad_version.to_vec(),
        broadcast.to_vec(),
        vec![0xff; 3000],
    ];
    for g in &garbage {
        sock.send_to(g, d.addr_v4()).unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 128];
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "a malformed datagram was answered"
    );
    assert!(query(d.addr_v4(), WAIT).is_some(), "service stopped");
    assert_eq!(d.terminate().code(), Some(0));
    let log = d.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("NTP packets received"))
        .unwrap_or_else(|| panic!("{log}"));
    let field = |name: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words.iter().position(|w| *w == name).unwrap();
        words[i + 1].parse().unwrap()
    };
    assert!(
        field("malformed") + field("other-dropped") >= garbage.len() as u64,
        "{line}"
    );
    // Not one line per bad packet.
    assert!(log.lines().count() < 20, "{log}");
}

#[test]
fn burst_of_requests_is_answered_in_full() {
    let d = Daemon::start("allow 127.0.0.1\nlocal stratum 10");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    const N: u16 = 200;
    for i in 0..N {
        let mut tx = [0u8; 8];
        tx[6..8].copy_from_slice(&i.to_be_bytes());
        sock.send_to(&client_request(tx), d.addr_v4()).unwrap();
    }
    let mut seen = vec![false; N as usize];
    let mut buf = [0u8; 128];
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        assert_eq!((n, from), (48, d.addr_v4()));
        let i = u16::from_be_bytes([buf[30], buf[31]]) as usize;
        seen[i] = true;
        if seen.iter().all(|s| *s) {
            break;
        }
    }
    assert!(
        seen.iter().all(|s| *s),
        "unanswered: {}",
        seen.iter().filter(|s| !**s).count()
    );
}

#[test]
fn ipv4_only_option_leaves_ipv6_unbound() {
    let d = Daemon::start_with(
        "allow 127.0.0.1\nallow ::1\nlocal stratum 10",
        &["-4"],
        Ready::Answers,
    );
    assert!(query(d.addr_v6(), Duration::from_millis(500)).is_none());
    // The port is free on IPv6.
    assert!(UdpSocket::bind(d.addr_v6()).is_ok());
}

#[test]
fn bindaddress_restricts_the_listening_address() {
    let d = Daemon::start("allow 127.0.0.0/8\nbindaddress 127.0.0.1\nlocal stratum 10");
    let other: SocketAddr = format!("127.0.0.3:{}", d.port).parse().unwrap();
    assert!(exchange(other, &client_request([3; 8]), Duration::from_millis(500)).is_none());
    assert!(query(d.addr_v4(), WAIT).is_some());
}

#[test]
fn null_clock_start_offset_shows_in_timestamps() {
    let d = Daemon::start_with(
        "allow 127.0.0.1\nlocal stratum 10",
        &["-X", "offset=100"],
        Ready::Answers,
    );
    let reply = query(d.addr_v4(), WAIT).unwrap();
    let tx = ntp_seconds(&reply[40..48]);
    let off = tx - now_ntp();
    assert!((off - 100.0).abs() < 1.0, "offset {off}");
}
