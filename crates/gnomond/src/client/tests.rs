//! Client tests over loopback: a minimal NTP server thread answers the client's requests, and
//! the client (with a null clock started off by a known offset) is driven like the scheduler
//! drives it.

// Tests bound their loops with the real clock.
#![allow(clippy::disallowed_methods)]

use super::*;
use crate::clock::{NullClock, NullClockStart, OsTime};
use gnomon_wire::{Header, Mode};
use std::net::UdpSocket as StdSocket;
use std::time::Duration;

/// Answers up to `n` client requests with the host's clock, stratum 1.
fn server(n: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<u16>>) {
    let sock = StdSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut ports = Vec::new();
        let mut buf = [0u8; 512];
        for _ in 0..n {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            let rx = crate::os::clock::realtime().as_f64();
            let req = Header::decode(&buf[..len]).unwrap();
            // Data minimisation: only the transmit timestamp is set.
            assert!(req.origin_timestamp.is_zero() && req.receive_timestamp.is_zero());
            ports.push(from.port());
            let reply = Header {
                leap: LeapIndicator::NoWarning,
                version: 4,
                mode: Mode::Server,
                stratum: 1,
                poll: req.poll,
                precision: -20,
                reference_id: 0x4750_5300,
                reference_timestamp: NtpTimestamp::from_unix_f64(rx - 1.0),
                origin_timestamp: req.transmit_timestamp,
                receive_timestamp: NtpTimestamp::from_unix_f64(rx),
                transmit_timestamp: NtpTimestamp::from_unix_f64(
                    crate::os::clock::realtime().as_f64(),
                ),
                ..Header::default()
            };
            sock.send_to(&reply.to_bytes(), from).unwrap();
        }
        ports
    });
    (addr, h)
}

fn settings(lines: &[String]) -> Settings {
    Settings::from_config(&gnomon_conf::load_lines(lines).unwrap())
}

/// Runs the client's loop turns like the scheduler until `done` or `limit`.
fn drive(
    client: &mut Client,
    clock: &mut NullClock<OsTime>,
    responder: &mut CoreResponder,
    limit: Duration,
    done: &mut dyn FnMut(&Client) -> bool,
) -> Option<i32> {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        let mut fds = Vec::new();
        let t = client.prepare(&mut fds, 200, clock);
        crate::os::poll::wait(&mut fds, t.clamp(0, 200)).unwrap();
        if let Some(code) = client.service(&fds, clock, responder) {
            return Some(code);
        }
        if done(client) {
            break;
        }
    }
    None
}

#[test]
fn print_once_measures_the_null_clock_offset_and_exits_zero() {
    let (addr, h) = server(3);
    let s = settings(&[format!(
        "server 127.0.0.1 port {} iburst minpoll -4 maxpoll -4",
        addr.port()
    )]);
    let (mut client, _reports) = Client::new(&s, Some(OneShot::Print), Some(10), 1, false).unwrap();
    let start = NullClockStart {
        offset: 0.25,
        freq_ppm: 0.0,
    };
    let mut clock = NullClock::new(OsTime, start);
    let mut responder = CoreResponder::new(&s, 1, false).unwrap();
    let code = drive(
        &mut client,
        &mut clock,
        &mut responder,
        Duration::from_secs(15),
        &mut |_| false,
    );
    assert_eq!(code, Some(0));
    // -Q never touches the clock.
    assert!((clock.correction() - 0.25).abs() < 1e-3);
    let ports = h.join().unwrap();
    // A fresh random source port per request (RFC 9109).
    assert_eq!(ports.len(), 3);
    assert!(ports.windows(2).all(|w| w[0] != w[1]), "{ports:?}");
}

#[test]
fn one_shot_without_answer_exits_one_at_the_limit() {
    // A bound socket that never answers.
    let silent = StdSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let s = settings(&[format!("server 127.0.0.1 port {port} iburst")]);
    let (mut client, _r) = Client::new(&s, Some(OneShot::Print), Some(1), 2, false).unwrap();
    let mut clock = NullClock::new(OsTime, NullClockStart::default());
    let mut responder = CoreResponder::new(&s, 1, false).unwrap();
    let code = drive(
        &mut client,
        &mut clock,
        &mut responder,
        Duration::from_secs(5),
        &mut |_| false,
    );
    assert_eq!(code, Some(1));
}

#[test]
fn continuous_mode_corrects_the_offset_and_serves_the_engine_reference() {
    let (addr, _h) = server(40);
    let s = settings(&[
        format!(
            "server 127.0.0.1 port {} iburst minpoll -4 maxpoll -4",
            addr.port()
        ),
        "makestep 0.1 3".to_string(),
    ]);
    let (mut client, reports) = Client::new(&s, None, None, 3, false).unwrap();
    let mut clock = NullClock::new(
        OsTime,
        NullClockStart {
            offset: 0.3,
            freq_ppm: 0.0,
        },
    );
    let mut responder = CoreResponder::new(&s, 1, false).unwrap();
    drive(
        &mut client,
        &mut clock,
        &mut responder,
        Duration::from_secs(8),
        &mut |c| c.engine.reference().is_synchronised() && c.shared.borrow().sources.len() == 1,
    );
    assert!(reports.0.borrow().synchronised);
    // makestep removed the 0.3 s error.
    assert!(clock.correction().abs() < 0.01, "{}", clock.correction());
    let served = responder.reference_at(NtpTimestamp::from_unix_f64(1.8e9), 0.0);
    assert_eq!((served.stratum, served.synchronised), (2, true));
    use crate::reports::SourceReports;
    assert_eq!(reports.n_sources(), 1);
    assert_eq!(reports.tracking().map(|t| t.stratum), Some(2));
}

#[test]
fn pool_name_is_resolved_off_the_loop_and_its_member_polled() {
    // "localhost" comes from /etc/hosts: no DNS traffic.
    let (addr, h) = server(3);
    let s = settings(&[format!(
        "pool localhost port {} iburst minpoll -4 maxpoll -4 maxsources 1",
        addr.port()
    )]);
    let (mut client, reports) = Client::new(&s, Some(OneShot::Print), Some(10), 4, false).unwrap();
    let mut clock = NullClock::new(OsTime, NullClockStart::default());
    let mut responder = CoreResponder::new(&s, 1, false).unwrap();
    let code = drive(
        &mut client,
        &mut clock,
        &mut responder,
        Duration::from_secs(15),
        &mut |_| false,
    );
    assert_eq!(code, Some(0));
    assert_eq!(h.join().unwrap().len(), 3);
    use crate::reports::SourceReports;
    assert_eq!(reports.n_sources(), 1);
    let name = reports.source_name(&gnomon_cmdmon::Addr::V4("127.0.0.1".parse().unwrap()));
    assert_eq!(name.unwrap(), b"localhost");
}
