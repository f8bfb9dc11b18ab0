//! Tests of the interleaved client mode (interleaved.rs) against a model of an RFC 9769
//! server that writes its transmit time into a response 2^-16 s after its receive time but
//! sends the datagram only 2^-14 s after it (the kernel's stamp, served in interleaved mode).
//! Every time is a sum of binary fractions, so the measurements are exact.

use super::*;
use crate::association::{Rejection, RxOutcome, SourceConfig};
use crate::sample_filter::Sample;
use gnomon_wire::{LeapIndicator, Mode, NtpShort};

const T0: f64 = 1_780_000_000.0;
/// One-way network delay.
const D: f64 = 1.0 / 1024.0;
/// The server's clock is this far ahead of ours (true time = our clock).
const OFF: f64 = 1.0 / 256.0;
/// Receive → transmit timestamp written into a basic response.
const WRITTEN: f64 = 1.0 / 65536.0;
/// Receive → the datagram leaving the server (its kernel transmit stamp).
const LEFT: f64 = 1.0 / 16384.0;

/// The server's view of the one client it serves (chrony's client-log record).
struct Server {
    interleaved: bool,
    /// Receive timestamp and kernel transmit time of its last response.
    saved: Option<(NtpTimestamp, NtpTimestamp)>,
    /// No kernel transmit stamps: the saved transmit time is the one written into the
    /// response (chronyd and gnomond fall back to it).
    daemon_stamps: bool,
}

impl Server {
    fn new(interleaved: bool) -> Server {
        Server {
            interleaved,
            saved: None,
            daemon_stamps: false,
        }
    }

    /// Answers `q` arriving at our time `arrive`; returns the response and when it reaches
    /// us.
    fn answer(&mut self, q: &Header, arrive: f64) -> ([u8; 48], f64) {
        let rx = NtpTimestamp::from_unix_f64(arrive + OFF);
        let kernel_tx = NtpTimestamp::from_unix_f64(arrive + OFF + LEFT);
        let previous = self.saved.filter(|(srx, _)| {
            self.interleaved
                && q.origin_timestamp == *srx
                && q.receive_timestamp != q.transmit_timestamp
        });
        let (origin, transmit) = match previous {
            Some((_, tx)) => (q.receive_timestamp, tx),
            None => (
                q.transmit_timestamp,
                NtpTimestamp::from_unix_f64(arrive + OFF + WRITTEN),
            ),
        };
        let saved_tx = if self.daemon_stamps {
            NtpTimestamp::from_unix_f64(arrive + OFF + WRITTEN)
        } else {
            kernel_tx
        };
        self.saved = Some((rx, saved_tx));
        let h = Header {
            leap: LeapIndicator::NoWarning,
            version: 4,
            mode: Mode::Server,
            stratum: 2,
            poll: q.poll,
            precision: -24,
            root_dispersion: NtpShort::from_seconds(1e-4),
            reference_id: 0x0A00_0001,
            // Updated just before this request arrived (after the previous response left).
            reference_timestamp: NtpTimestamp::from_unix_f64(arrive + OFF - D / 4.0),
            origin_timestamp: origin,
            receive_timestamp: rx,
            transmit_timestamp: transmit,
            ..Default::default()
        };
        (h.to_bytes(), arrive + LEFT + D)
    }
}

fn client() -> Association {
    let cfg = SourceConfig {
        minpoll: 0,
        maxpoll: 0,
        ..SourceConfig::default()
    };
    let mut a = Association::new("192.0.2.1:123".parse().unwrap(), cfg, T0, 11);
    a.set_interleaved(true);
    a
}

/// Sends the next request at the first whole second of our clock after its deadline.
fn send(a: &mut Association) -> (Header, f64) {
    let t = a.next_timeout().unwrap().ceil();
    let tx = a.on_timer(t, t).expect("request due");
    (Header::decode(&tx.payload).unwrap(), t)
}

/// One exchange with the server: what the response did.
fn exchange(a: &mut Association, s: &mut Server) -> RxOutcome {
    let (q, t) = send(a);
    let (rep, rx) = s.answer(&q, t + D);
    a.on_packet(rx, &rep, None, false)
}

fn sample(o: RxOutcome) -> Sample {
    match o {
        RxOutcome::Sample(s) => s,
        other => panic!("no sample: {other:?}"),
    }
}

/// The exact interleaved measurement: the true offset and the network's round trip.
fn assert_exact(s: &Sample, offset: f64) {
    assert!((s.offset - offset).abs() < 1e-9, "offset {}", s.offset);
    assert!(
        (s.peer_delay - 2.0 * D).abs() < 1e-9,
        "delay {}",
        s.peer_delay
    );
}

/// The basic measurement: the server's written transmit time is early by LEFT − WRITTEN,
/// which shows in the delay and, halved, in the offset.
fn assert_basic(s: &Sample) {
    let early = LEFT - WRITTEN;
    assert!(
        (s.offset - (early / 2.0 - OFF)).abs() < 1e-9,
        "offset {}",
        s.offset
    );
    assert!(
        (s.peer_delay - (2.0 * D + early)).abs() < 1e-9,
        "delay {}",
        s.peer_delay
    );
}

#[test]
fn interleaved_response_measures_the_previous_exchange_exactly() {
    let mut a = client();
    let mut s = Server::new(true);
    // The first request is basic: zero origin and receive.
    let (q1, t1) = send(&mut a);
    assert!(q1.origin_timestamp.is_zero() && q1.receive_timestamp.is_zero());
    let (rep1, rx1) = s.answer(&q1, t1 + D);
    assert_basic(&sample(a.on_packet(rx1, &rep1, None, false)));
    assert_eq!(a.last_interleaved_measurement(), None);
    // The second refers to it: origin = the server's receive timestamp, a random receive
    // field that differs from the transmit field.
    let (q2, t2) = send(&mut a);
    assert_eq!(
        q2.origin_timestamp,
        Header::decode(&rep1).unwrap().receive_timestamp
    );
    assert!(!q2.receive_timestamp.is_zero());
    assert_ne!(q2.receive_timestamp, q2.transmit_timestamp);
    // Its interleaved response measures exchange 1 again: one sample per exchange (test A).
    let (rep2, rx2) = s.answer(&q2, t2 + D);
    assert_eq!(
        a.on_packet(rx2, &rep2, None, false),
        RxOutcome::Rejected(Rejection::MaxDelay)
    );
    assert!(a.last_interleaved_measurement().is_some());
    // From then on every response measures the exchange before it, exactly.
    for _ in 0..5 {
        let o = exchange(&mut a, &mut s);
        let smp = sample(o);
        assert_exact(&smp, -OFF);
        assert!(a.last_interleaved_measurement().is_some());
    }
}

#[test]
fn interleaved_sample_time_is_the_previous_exchange() {
    let mut a = client();
    let mut s = Server::new(true);
    exchange(&mut a, &mut s);
    exchange(&mut a, &mut s);
    let (q, t) = send(&mut a);
    let previous_rx = t - 1.0 + 2.0 * D + LEFT;
    let (rep, rx) = s.answer(&q, t + D);
    let smp = sample(a.on_packet(rx, &rep, None, false));
    assert!((smp.time - (previous_rx - D)).abs() < 1e-9, "{}", smp.time);
    assert_eq!(a.last_sample_time(), Some(smp.time));
}

#[test]
fn server_without_interleaved_mode_gives_basic_samples() {
    let mut a = client();
    let mut s = Server::new(false);
    for _ in 0..6 {
        assert_basic(&sample(exchange(&mut a, &mut s)));
        assert!(a.last_interleaved_measurement().is_none());
    }
}

#[test]
fn source_without_xleave_sends_basic_requests() {
    let mut a = client();
    a.set_interleaved(false);
    let mut s = Server::new(true);
    for _ in 0..3 {
        let (q, t) = send(&mut a);
        assert!(q.origin_timestamp.is_zero() && q.receive_timestamp.is_zero());
        let (rep, rx) = s.answer(&q, t + D);
        assert_basic(&sample(a.on_packet(rx, &rep, None, false)));
    }
}

#[test]
fn replayed_or_spoofed_interleaved_responses_are_rejected() {
    let mut a = client();
    let mut s = Server::new(true);
    exchange(&mut a, &mut s);
    exchange(&mut a, &mut s);
    let (q, t) = send(&mut a);
    let (rep, rx) = s.answer(&q, t + D);
    sample(a.on_packet(rx, &rep, None, false));
    // The same response again: test 1.
    assert_eq!(
        a.on_packet(rx + 0.01, &rep, None, false),
        RxOutcome::Rejected(Rejection::Duplicate)
    );
    // Replayed to the next request, with a new transmit field so that test 1 passes: the
    // cookie changed, test 2 fails.
    let (q2, t2) = send(&mut a);
    let mut replay = Header::decode(&rep).unwrap();
    replay.transmit_timestamp = NtpTimestamp(replay.transmit_timestamp.0 + 1);
    assert_eq!(
        a.on_packet(t2 + 0.01, &replay.to_bytes(), None, false),
        RxOutcome::Rejected(Rejection::Bogus)
    );
    // A forger who saw the request echoes its origin field (the server's receive timestamp
    // it can read off the wire): not a value we accept as an origin.
    let (good, rx2) = s.answer(&q2, t2 + D);
    let mut forged = Header::decode(&good).unwrap();
    forged.origin_timestamp = q2.origin_timestamp;
    assert_eq!(
        a.on_packet(t2 + 0.02, &forged.to_bytes(), None, false),
        RxOutcome::Rejected(Rejection::Bogus)
    );
    // The genuine answer is still taken (the rejected ones changed nothing).
    assert_eq!(
        Header::decode(&good).unwrap().origin_timestamp,
        q2.receive_timestamp
    );
    assert_exact(&sample(a.on_packet(rx2, &good, None, false)), -OFF);
}

#[test]
fn lost_response_falls_back_to_basic_and_recovers() {
    let mut a = client();
    let mut s = Server::new(true);
    for _ in 0..3 {
        exchange(&mut a, &mut s);
    }
    // The server answers, the response is lost: its state moves on, ours does not.
    let (q, t) = send(&mut a);
    let _lost = s.answer(&q, t + D);
    // Our next origin is no longer its last receive timestamp: a basic response, measured
    // as a basic sample (not mixed with the saved exchange).
    let o = exchange(&mut a, &mut s);
    assert_basic(&sample(o));
    assert!(a.last_interleaved_measurement().is_none());
    // Then interleaved again: the exchange measured in basic mode gives no second sample,
    // the next one is exact.
    assert_eq!(
        exchange(&mut a, &mut s),
        RxOutcome::Rejected(Rejection::MaxDelay)
    );
    assert_exact(&sample(exchange(&mut a, &mut s)), -OFF);
}

#[test]
fn lost_request_keeps_the_interleaved_mode() {
    let mut a = client();
    let mut s = Server::new(true);
    for _ in 0..3 {
        exchange(&mut a, &mut s);
    }
    // The request is lost: the server never saw it and still holds the exchange before.
    let (lost, _) = send(&mut a);
    let (q, t) = send(&mut a);
    assert_eq!(q.origin_timestamp, lost.origin_timestamp);
    let (rep, rx) = s.answer(&q, t + D);
    assert_eq!(
        Header::decode(&rep).unwrap().origin_timestamp,
        q.receive_timestamp
    );
    assert_exact(&sample(a.on_packet(rx, &rep, None, false)), -OFF);
    assert_exact(&sample(exchange(&mut a, &mut s)), -OFF);
}

#[test]
fn too_many_missed_responses_send_a_basic_request() {
    let mut a = client();
    let mut s = Server::new(true);
    exchange(&mut a, &mut s);
    for _ in 0..MAX_MISSED {
        let (q, _) = send(&mut a);
        assert!(!q.origin_timestamp.is_zero());
    }
    let (q, t) = send(&mut a);
    assert!(q.origin_timestamp.is_zero() && q.receive_timestamp.is_zero());
    let (rep, rx) = s.answer(&q, t + D);
    assert_basic(&sample(a.on_packet(rx, &rep, None, false)));
    // And interleaved requests again after that response.
    let (q, _) = send(&mut a);
    assert!(!q.origin_timestamp.is_zero());
}

#[test]
fn clock_change_between_exchanges_keeps_the_saved_timestamps_consistent() {
    let mut a = client();
    let mut s = Server::new(true);
    for _ in 0..3 {
        exchange(&mut a, &mut s);
    }
    // Our clock is stepped 1/4 s forward between exchanges: the saved T1/T4 move with it.
    let (q, t) = send(&mut a);
    let (rep, rx) = s.answer(&q, t + D);
    sample(a.on_packet(rx, &rep, None, false));
    let step = 0.25;
    a.apply_clock_change(rx + 0.1, 0.0, step);
    // Our clock now reads true time + step: sends at our time t mean true time t − step.
    let (q, t) = send(&mut a);
    let (rep, rx) = s.answer(&q, t - step + D);
    let smp = sample(a.on_packet(rx + step, &rep, None, false));
    assert_exact(&smp, step - OFF);
    // A change while a request is out moves the exchange it refers to as well.
    let (q, t) = send(&mut a);
    a.apply_clock_change(t + 1e-3, 0.0, -step);
    let (rep, rx) = s.answer(&q, t - step + D);
    let smp = sample(a.on_packet(rx, &rep, None, false));
    assert_exact(&smp, -OFF);
}

#[test]
fn leap_second_forgets_the_saved_exchange() {
    let mut a = client();
    let mut s = Server::new(true);
    for _ in 0..3 {
        exchange(&mut a, &mut s);
    }
    // A leap second both clocks observed, while a request is out: the server's timestamps of
    // the exchange it refers to are on the other side of the leap, so its interleaved answer
    // measures nothing (test A) and is not mixed with this exchange's timestamps.
    let (q, t) = send(&mut a);
    assert!(!q.origin_timestamp.is_zero());
    a.shift_times(-1.0, true);
    let (rep, rx) = s.answer(&q, t + D);
    assert_eq!(
        a.on_packet(rx - 1.0, &rep, None, false),
        RxOutcome::Rejected(Rejection::MaxDelay)
    );
    assert!(a.last_interleaved_measurement().is_some());
    // Its own exchange is saved as usual: interleaved again at once.
    let (q, _) = send(&mut a);
    assert!(!q.origin_timestamp.is_zero());
    // With nothing outstanding, the next request is basic.
    let mut b = client();
    let mut s = Server::new(true);
    for _ in 0..3 {
        exchange(&mut b, &mut s);
    }
    b.shift_times(-1.0, true);
    let (q, _) = send(&mut b);
    assert!(q.origin_timestamp.is_zero() && q.receive_timestamp.is_zero());
}

#[test]
fn going_offline_forgets_the_saved_exchange() {
    let mut a = client();
    let mut s = Server::new(true);
    for _ in 0..3 {
        exchange(&mut a, &mut s);
    }
    let t = a.next_timeout().unwrap();
    a.set_online(false, t);
    a.set_online(true, t + 3600.0);
    // An hour later the first request is basic, and so is its measurement.
    let (q, t) = send(&mut a);
    assert!(q.origin_timestamp.is_zero() && q.receive_timestamp.is_zero());
    let (rep, rx) = s.answer(&q, t + D);
    assert_basic(&sample(a.on_packet(rx, &rep, None, false)));
    assert!(a.is_interleaved());
}

#[test]
fn peers_are_never_interleaved() {
    let cfg = SourceConfig {
        kind: SourceKind::Peer,
        ..SourceConfig::default()
    };
    let mut a = Association::new("192.0.2.1:123".parse().unwrap(), cfg, T0, 3);
    a.set_interleaved(true);
    assert!(!a.is_interleaved());
    assert!(client().is_interleaved());
}

#[test]
fn server_without_kernel_transmit_stamps_still_answers_interleaved() {
    // Its interleaved reply carries the transmit time it also wrote into the previous basic
    // reply: test 1 must compare the receive timestamps too, or every interleaved reply
    // would be a "duplicate" and the mode would never start.
    let mut a = client();
    let mut s = Server::new(true);
    s.daemon_stamps = true;
    let outcomes: Vec<RxOutcome> = (0..6).map(|_| exchange(&mut a, &mut s)).collect();
    assert!(
        outcomes
            .iter()
            .all(|o| *o != RxOutcome::Rejected(Rejection::Duplicate)),
        "{outcomes:?}"
    );
    assert!(a.last_interleaved_measurement().is_some(), "{outcomes:?}");
    assert!(matches!(outcomes[5], RxOutcome::Sample(_)), "{outcomes:?}");
}
