//! What gnomond must not answer, checked side by side with the real chronyd given the same
//! configuration: a client outside `allow 127.0.0.1/32` (source 127.0.0.2) gets no bytes, and
//! ntpd's monlist probe (mode 7, MON_GETLIST_1, the CVE-2013-5211 amplifier) gets no bytes.
//! Each check has a positive control (the same socket's ordinary request is answered, where it
//! should be) so it cannot pass by accident. Daemons run with `-x` under noclock on random
//! loopback ports; a missing chronyd fails the test.

// Tests may unwrap, and whole-daemon tests read the real clock to bound their waits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use support::{client_request, free_udp_port, wait_answers, Chronyd, Daemon};

const CONF: &str = "bindaddress 127.0.0.1\nallow 127.0.0.1/32\nlocal stratum 10\ncmdport 0";

/// ntpd's monlist request: LI 0, VN 2, mode 7; implementation 3 (XNTPD), request 42
/// (MON_GETLIST_1), then zeros to 48 bytes.
fn monlist_probe() -> [u8; 48] {
    let mut p = [0u8; 48];
    p[..4].copy_from_slice(&[0x17, 0x00, 0x03, 0x2a]);
    p
}

/// Sends `payload` from `from` to `to` and returns how many bytes came back within `wait`.
fn bytes_back(from: &UdpSocket, to: SocketAddr, payload: &[u8], wait: Duration) -> usize {
    from.set_read_timeout(Some(wait)).unwrap();
    from.send_to(payload, to).unwrap();
    let mut buf = [0u8; 2048];
    let mut total = 0;
    while let Ok((n, _)) = from.recv_from(&mut buf) {
        total += n;
    }
    total
}

fn start_chronyd() -> (Chronyd, SocketAddr) {
    let port = free_udp_port();
    let c = Chronyd::start(&format!("port {port}\n{CONF}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_answers(addr, Duration::from_secs(10), "chronyd");
    (c, addr)
}

#[test]
fn address_outside_allow_gets_no_bytes_like_chronyd() {
    let d = Daemon::start(CONF);
    let (_c, caddr) = start_chronyd();
    let denied = UdpSocket::bind("127.0.0.2:0").unwrap();
    let allowed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let wait = Duration::from_millis(700);
    for (name, server) in [("chronyd", caddr), ("gnomond", d.addr_v4())] {
        let n = bytes_back(&denied, server, &client_request([0x42; 8]), wait);
        assert_eq!(
            n, 0,
            "{name} sent {n} bytes to 127.0.0.2, outside allow 127.0.0.1/32"
        );
        let n = bytes_back(&allowed, server, &client_request([0x43; 8]), wait);
        assert!(
            n >= 48,
            "{name} did not answer the allowed 127.0.0.1 (control)"
        );
    }
}

#[test]
fn monlist_probe_gets_no_bytes_like_chronyd() {
    let d = Daemon::start(CONF);
    let (_c, caddr) = start_chronyd();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let wait = Duration::from_millis(700);
    for (name, server) in [("chronyd", caddr), ("gnomond", d.addr_v4())] {
        let n = bytes_back(&sock, server, &monlist_probe(), wait);
        assert_eq!(n, 0, "{name} answered the monlist probe with {n} bytes");
        // The 8-byte header alone (as some scanners send it) is dropped too.
        let n = bytes_back(&sock, server, &monlist_probe()[..8], wait);
        assert_eq!(n, 0, "{name} answered a short monlist probe with {n} bytes");
        let n = bytes_back(&sock, server, &client_request([0x44; 8]), wait);
        assert!(n >= 48, "{name} did not answer a mode 3 request (control)");
    }
}
