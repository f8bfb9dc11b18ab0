use super::*;

fn addr() -> SocketAddr {
    "192.0.2.1:123".parse().unwrap()
}

const T0: f64 = 1_780_000_000.0;

/// A server reply to `req`, with the server's clock `server_ahead` seconds ahead of ours and
/// `one_way` seconds of delay each way; sent `rx_at` is when we receive it (our clock).
fn reply(req: &[u8; 48], t1: f64, one_way: f64, server_ahead: f64) -> ([u8; 48], f64) {
    let q = Header::decode(req).unwrap();
    let t2 = t1 + one_way + server_ahead;
    let t3 = t2 + 1e-5;
    let h = Header {
        leap: LeapIndicator::NoWarning,
        version: 4,
        mode: Mode::Server,
        stratum: 1,
        poll: q.poll,
        precision: -20,
        root_delay: NtpShort::from_seconds(0.0),
        root_dispersion: NtpShort::from_seconds(1e-4),
        reference_id: u32::from_be_bytes(*b"GPS\0"),
        reference_timestamp: NtpTimestamp::from_unix_f64(t2 - 10.0),
        origin_timestamp: q.transmit_timestamp,
        receive_timestamp: NtpTimestamp::from_unix_f64(t2),
        transmit_timestamp: NtpTimestamp::from_unix_f64(t3),
    };
    (h.to_bytes(), t3 - server_ahead + one_way)
}

fn with(req: &[u8; 48], f: impl FnOnce(&mut Header)) -> [u8; 48] {
    let mut h = Header::decode(req).unwrap();
    f(&mut h);
    h.to_bytes()
}

fn client() -> Association {
    Association::new(addr(), SourceConfig::default(), T0, 1)
}

fn send(a: &mut Association) -> ([u8; 48], f64) {
    let t = a.next_timeout().unwrap();
    let tx = a.on_timer(t, t).expect("request due");
    (tx.payload, t)
}

#[test]
fn client_request_is_minimal_with_random_transmit_timestamp() {
    let mut a = client();
    let (req, first) = send(&mut a);
    let h = Header::decode(&req).unwrap();
    assert_eq!(h.mode, Mode::Client);
    assert_eq!(h.version, 4);
    assert!(h.origin_timestamp.is_zero());
    assert!(h.receive_timestamp.is_zero());
    assert!(h.reference_timestamp.is_zero());
    let t = a.next_timeout().unwrap();
    assert!((t - first - 64.0).abs() < 1e-9);
    let tx2 = a.on_timer(t, t).unwrap();
    assert!(tx2.fresh_port);
    let h2 = Header::decode(&tx2.payload).unwrap();
    assert_ne!(h.transmit_timestamp, h2.transmit_timestamp);
    // Not our clock: far from the send time.
    assert!(
        h.transmit_timestamp
            .diff_seconds(NtpTimestamp::from_unix_f64(t))
            .abs()
            > 1.0
    );
}

#[test]
fn good_reply_gives_offset_and_delay() {
    let mut a = client();
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.25);
    match a.on_packet(rx, &rep, None, false) {
        RxOutcome::Sample(s) => {
            assert!((s.offset + 0.25).abs() < 1e-6, "{}", s.offset);
            assert!((s.peer_delay - 0.02).abs() < 1e-6, "{}", s.peer_delay);
            assert_eq!(s.stratum, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.reach(), 1);
    assert_eq!(a.stats().len(), 1);
}

#[test]
fn spoofed_duplicate_truncated_replies_are_dropped_and_counted() {
    let mut a = client();
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.0);
    let spoofed = with(&rep, |h| h.origin_timestamp = NtpTimestamp(12345));
    assert_eq!(
        a.on_packet(rx, &spoofed, None, false),
        RxOutcome::Rejected(Rejection::Bogus)
    );
    assert_eq!(
        a.on_packet(rx, &rep[..40], None, false),
        RxOutcome::Rejected(Rejection::Malformed)
    );
    assert!(matches!(
        a.on_packet(rx, &rep, None, false),
        RxOutcome::Sample(_)
    ));
    // The same reply again: duplicate.
    assert_eq!(
        a.on_packet(rx, &rep, None, false),
        RxOutcome::Rejected(Rejection::Duplicate)
    );
    assert_eq!(a.rejected(Rejection::Bogus), 1);
    assert_eq!(a.rejected(Rejection::Malformed), 1);
    assert_eq!(a.rejected(Rejection::Duplicate), 1);
    assert_eq!(a.stats().len(), 1);
}

#[test]
fn zero_timestamps_and_unsynchronised_server_give_no_sample() {
    let mut a = client();
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.0);
    let zero = with(&rep, |h| h.receive_timestamp = NtpTimestamp::ZERO);
    assert_eq!(
        a.on_packet(rx, &zero, None, false),
        RxOutcome::Rejected(Rejection::ZeroTimestamp)
    );
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.0);
    let unsync = with(&rep, |h| h.leap = LeapIndicator::Unsynchronised);
    assert_eq!(
        a.on_packet(rx, &unsync, None, false),
        RxOutcome::Rejected(Rejection::Unsynchronised)
    );
    assert_eq!(
        a.reach() & 1,
        1,
        "an unsynchronised server is still reachable"
    );
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.0);
    let far = with(&rep, |h| h.root_dispersion = NtpShort::from_seconds(20.0));
    assert_eq!(
        a.on_packet(rx, &far, None, false),
        RxOutcome::Rejected(Rejection::RootDistance)
    );
    assert!(a.stats().is_empty());
}

#[test]
fn kod_rate_honoured_only_when_it_answers_our_request() {
    let mut a = client();
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.0);
    let kod = |r: &[u8; 48], origin: Option<NtpTimestamp>| {
        with(r, |h| {
            h.stratum = 0;
            h.reference_id = gnomon_wire::refid::KISS_RATE;
            if let Some(o) = origin {
                h.origin_timestamp = o;
            }
        })
    };
    let stranger = kod(&rep, Some(NtpTimestamp(99)));
    assert_eq!(
        a.on_packet(rx, &stranger, None, false),
        RxOutcome::Rejected(Rejection::Bogus)
    );
    assert_eq!(a.poll(), 6);
    assert_eq!(
        a.on_packet(rx, &kod(&rep, None), None, false),
        RxOutcome::Rejected(Rejection::KissRate)
    );
    assert_eq!(a.poll(), 7);
}

#[test]
fn unauthenticated_deny_is_recorded_not_acted_on() {
    let mut a = client();
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.0);
    let deny = with(&rep, |h| {
        h.stratum = 0;
        h.reference_id = gnomon_wire::refid::KISS_DENY;
    });
    assert_eq!(
        a.on_packet(rx, &deny, None, false),
        RxOutcome::Rejected(Rejection::KissDenyIgnored)
    );
    assert!(a.next_timeout().is_some(), "still polling");
    assert_eq!(a.rejected(Rejection::KissDenyIgnored), 1);
}

#[test]
fn maxdelay_and_sync_loop_reject_the_sample() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            maxdelay: 0.1,
            ..Default::default()
        },
        T0,
        2,
    );
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.2, 0.0);
    assert_eq!(
        a.on_packet(rx, &rep, None, false),
        RxOutcome::Rejected(Rejection::MaxDelay)
    );
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.01, 0.0);
    let looped = with(&rep, |h| {
        h.stratum = 3;
        h.reference_id = 0x0A00_0001;
    });
    assert_eq!(
        a.on_packet(rx, &looped, Some(0x0A00_0001), false),
        RxOutcome::Rejected(Rejection::SyncLoop)
    );
}

#[test]
fn iburst_sends_quickly_then_polls_normally_and_reach_fills() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            iburst: true,
            ..Default::default()
        },
        T0,
        3,
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let (req, t1) = send(&mut a);
        times.push(t1);
        let (rep, rx) = reply(&req, t1, 0.001, 0.0);
        assert!(matches!(
            a.on_packet(rx, &rep, None, false),
            RxOutcome::Sample(_)
        ));
    }
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[..3].iter().all(|g| (g - 2.0).abs() < 1e-9), "{gaps:?}");
    assert!((gaps[3] - 64.0).abs() < 1e-9, "{gaps:?}");
    assert_eq!(a.reach(), 0o37);
    assert!(a.is_selectable());
}

#[test]
fn missed_replies_shift_reach_and_count_unreachable_polls() {
    let mut a = client();
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.001, 0.0);
    a.on_packet(rx, &rep, None, false);
    for _ in 0..8 {
        send(&mut a);
    }
    assert_eq!(a.reach(), 0);
    assert_eq!(a.unreachable_polls(), 7);
}

#[test]
fn offline_source_does_not_poll_until_online() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            offline: true,
            ..Default::default()
        },
        T0,
        4,
    );
    assert_eq!(a.next_timeout(), None);
    a.set_online(true, T0 + 5.0);
    assert_eq!(a.next_timeout(), Some(T0 + 5.0));
}

#[test]
fn peer_packets_echo_the_peer_timestamps() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            kind: SourceKind::Peer,
            ..Default::default()
        },
        T0,
        5,
    );
    let (p1, t1) = send(&mut a);
    let h1 = Header::decode(&p1).unwrap();
    assert_eq!(h1.mode, Mode::SymmetricActive);
    assert!((h1.transmit_timestamp.to_unix_f64(T0 as i64) - t1).abs() < 1e-6);
    // The peer answers (its clock 0.1 s ahead) with its own transmit time.
    let t2 = t1 + 0.005 + 0.1;
    let t3 = t2 + 0.001;
    let h = Header {
        mode: Mode::SymmetricPassive,
        version: 4,
        stratum: 2,
        poll: 6,
        precision: -20,
        reference_timestamp: NtpTimestamp::from_unix_f64(t2 - 5.0),
        origin_timestamp: h1.transmit_timestamp,
        receive_timestamp: NtpTimestamp::from_unix_f64(t2),
        transmit_timestamp: NtpTimestamp::from_unix_f64(t3),
        ..Default::default()
    };
    let rx = t3 - 0.1 + 0.005;
    match a.on_packet(rx, &h.to_bytes(), None, false) {
        RxOutcome::Sample(s) => assert!((s.offset + 0.1).abs() < 1e-6, "{}", s.offset),
        other => panic!("{other:?}"),
    }
    let (p2, _) = send(&mut a);
    let h2 = Header::decode(&p2).unwrap();
    assert_eq!(h2.origin_timestamp, h.transmit_timestamp);
    assert!((h2.receive_timestamp.to_unix_f64(T0 as i64) - rx).abs() < 1e-6);
}

#[test]
fn presend_sends_a_warm_up_request_whose_reply_is_not_a_sample() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            presend: Some(6),
            ..Default::default()
        },
        T0,
        6,
    );
    let (req, t1) = send(&mut a);
    let (rep, rx) = reply(&req, t1, 0.001, 0.0);
    assert!(matches!(
        a.on_packet(rx, &rep, None, false),
        RxOutcome::Sample(_)
    ));
    // The next transmission is the presend, 4 s before the poll.
    let (pre, tp) = send(&mut a);
    assert!((tp - t1 - 60.0).abs() < 1e-9, "{}", tp - t1);
    let (rep, rx) = reply(&pre, tp, 0.001, 0.0);
    assert_eq!(
        a.on_packet(rx, &rep, None, false),
        RxOutcome::Rejected(Rejection::Presend)
    );
    let (_, tn) = send(&mut a);
    assert!((tn - t1 - 64.0).abs() < 1e-9, "{}", tn - t1);
}

#[test]
fn burst_repeats_requests_until_a_good_reply_at_every_poll() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            burst: true,
            ..Default::default()
        },
        T0,
        7,
    );
    // First poll: the reply is lost, the burst retries 2 s later and gets one.
    let (_, t1) = send(&mut a);
    let (req, t2) = send(&mut a);
    assert!((t2 - t1 - 2.0).abs() < 1e-9);
    let (rep, rx) = reply(&req, t2, 0.001, 0.0);
    assert!(matches!(
        a.on_packet(rx, &rep, None, false),
        RxOutcome::Sample(_)
    ));
    // Next poll one interval after the request that succeeded; a good reply ends that burst
    // at once.
    let (req, t3) = send(&mut a);
    assert!((t3 - t2 - 64.0).abs() < 1e-9, "{}", t3 - t2);
    let (rep, rx) = reply(&req, t3, 0.001, 0.0);
    a.on_packet(rx, &rep, None, false);
    let (_, t4) = send(&mut a);
    assert!((t4 - t3 - 64.0).abs() < 1e-9, "{}", t4 - t3);
}

#[test]
fn filter_option_emits_one_sample_per_n_replies() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            filter: Some(3),
            ..Default::default()
        },
        T0,
        8,
    );
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let (req, t) = send(&mut a);
        let (rep, rx) = reply(&req, t, 0.001, 0.0);
        outcomes.push(a.on_packet(rx, &rep, None, false));
    }
    assert_eq!(outcomes[0], RxOutcome::Rejected(Rejection::Filtered));
    assert_eq!(outcomes[1], RxOutcome::Rejected(Rejection::Filtered));
    assert!(matches!(outcomes[2], RxOutcome::Sample(_)));
    assert_eq!(a.stats().len(), 1);
}

#[test]
fn version_and_minstratum_options_apply() {
    let mut a = Association::new(
        addr(),
        SourceConfig {
            version: 3,
            minstratum: 4,
            ..Default::default()
        },
        T0,
        9,
    );
    let (req, t) = send(&mut a);
    assert_eq!(Header::decode(&req).unwrap().version, 3);
    let (rep, rx) = reply(&req, t, 0.001, 0.0);
    let rep = with(&rep, |h| h.version = 3);
    assert!(matches!(
        a.on_packet(rx, &rep, None, false),
        RxOutcome::Sample(_)
    ));
    assert_eq!(a.stratum(), 4);
}

proptest::proptest! {
    /// Whatever arrives, the association never panics, and nothing but a reply to our own
    /// request can give a sample.
    #[test]
    fn arbitrary_packets_never_panic_nor_give_samples(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let mut a = client();
        let (_, t1) = send(&mut a);
        let out = a.on_packet(t1 + 0.01, &data, None, false);
        proptest::prop_assert!(!matches!(out, RxOutcome::Sample(_)));
        proptest::prop_assert!(a.stats().is_empty());
    }
}

proptest::proptest! {
    /// Replies that pass the origin check but carry any leap, stratum, poll, precision, root
    /// delay/dispersion, reference ID and receive/transmit timestamps, over several exchanges
    /// (so the filter and regression see them): never a panic, and every sample and report
    /// value stays finite.
    #[test]
    fn replies_with_arbitrary_header_fields_never_panic_nor_give_non_finite_values(
        fields in proptest::collection::vec(
            (0u8..4, 0u8..20, proptest::prelude::any::<i8>(),
             proptest::prelude::any::<i8>(), 0u32..0x2_0000, 0u32..0x2_0000, -3e9f64..3e9, -1.0f64..1.0, 0.0f64..2.0,
             proptest::prelude::any::<bool>()),
            1..12,
        )
    ) {
        let mut a = client();
        for (leap, stratum, poll, precision, rd, rdisp, ahead, turn, wait, near) in fields {
            let (req, t1) = send(&mut a);
            // Half the replies come from a server near our time (they reach the filter and
            // the regression), half from anywhere in the NTP era.
            let ahead = if near { ahead * 1e-9 } else { ahead };
            let (rep, rx) = reply(&req, t1, 0.01, 0.0);
            let t2 = NtpTimestamp::from_unix_f64(t1 + 0.01 + ahead);
            let t3 = NtpTimestamp::from_unix_f64(t1 + 0.01 + ahead + turn * 1e-3);
            let rep = with(&rep, |h| {
                h.leap = match leap {
                    0 => LeapIndicator::NoWarning,
                    1 => LeapIndicator::InsertSecond,
                    2 => LeapIndicator::DeleteSecond,
                    _ => LeapIndicator::Unsynchronised,
                };
                h.stratum = stratum;
                h.poll = poll;
                h.precision = precision;
                h.root_delay = NtpShort(rd);
                h.root_dispersion = NtpShort(rdisp);
                h.receive_timestamp = t2;
                h.transmit_timestamp = t3;
            });
            if let RxOutcome::Sample(s) = a.on_packet(rx + wait, &rep, None, false) {
                proptest::prop_assert!(s.offset.is_finite() && s.peer_delay.is_finite());
                proptest::prop_assert!(s.root_delay.is_finite() && s.root_dispersion.is_finite());
            }
            let r = a.report(rx + wait);
            proptest::prop_assert!(r.adjusted_offset.is_finite() && r.error.is_finite());
            if let Some(e) = a.stats().estimate() {
                proptest::prop_assert!(e.offset.is_finite() && e.frequency.is_finite());
                proptest::prop_assert!(e.skew.is_finite() && e.offset_sd.is_finite());
            }
        }
    }
}

// ---- source options: offset, asymmetry, mindelay, maxdelayquant, copy, auto_offline,
// maxunreach (source_config.rs, delay_quantile.rs) ----

fn with_cfg(cfg: SourceConfig) -> Association {
    Association::new(addr(), cfg, T0, 1)
}

/// A reply with `out` seconds of delay to the server and `back` seconds back.
fn reply_asym(req: &[u8; 48], t1: f64, out: f64, back: f64, ahead: f64) -> ([u8; 48], f64) {
    let (rep, _) = reply(req, t1, out, ahead);
    let t3 = t1 + out + ahead + 1e-5;
    (rep, t3 - ahead + back)
}

fn sample_offset(a: &mut Association, out: f64, back: f64, ahead: f64) -> RxOutcome {
    let (req, t1) = send(a);
    let (rep, rx) = reply_asym(&req, t1, out, back, ahead);
    a.on_packet(rx, &rep, None, false)
}

#[test]
fn offset_option_moves_the_measured_offset_like_chronyd() {
    let mut plain = client();
    let mut shifted = with_cfg(SourceConfig {
        offset: 0.01,
        ..Default::default()
    });
    let (RxOutcome::Sample(p), RxOutcome::Sample(s)) = (
        sample_offset(&mut plain, 0.01, 0.01, 0.25),
        sample_offset(&mut shifted, 0.01, 0.01, 0.25),
    ) else {
        panic!("no samples");
    };
    // chronyd 4.3 with `offset 0.01` shows the source 10 ms further behind us.
    assert!(
        (s.offset - (p.offset - 0.01)).abs() < 1e-9,
        "{} {}",
        p.offset,
        s.offset
    );
    assert_eq!(shifted.report(T0 + 10.0).measured_offset, s.offset);
}

#[test]
fn asymmetry_removes_the_extra_delay_on_the_jittery_path() {
    // All the jitter on the way to the server (asymmetry -0.5): 4 ms extra outbound.
    let cfg = SourceConfig {
        asymmetry: Some(-0.5),
        mindelay: Some(0.02),
        ..Default::default()
    };
    let mut a = with_cfg(cfg);
    let RxOutcome::Sample(s) = sample_offset(&mut a, 0.014, 0.01, 0.25) else {
        panic!("no sample");
    };
    assert!((s.offset + 0.25).abs() < 1e-6, "{}", s.offset);
    // Without the option the extra delay shows up as half of it in the offset.
    let RxOutcome::Sample(s) = sample_offset(&mut client(), 0.014, 0.01, 0.25) else {
        panic!("no sample");
    };
    assert!((s.offset + 0.252).abs() < 1e-6, "{}", s.offset);
}

#[test]
fn asymmetry_uses_the_buffered_minimum_without_mindelay() {
    let mut a = with_cfg(SourceConfig {
        asymmetry: Some(0.5),
        ..Default::default()
    });
    // First sample: no minimum yet, no correction; it becomes the minimum (20 ms).
    let RxOutcome::Sample(s) = sample_offset(&mut a, 0.01, 0.01, 0.0) else {
        panic!("no sample");
    };
    assert!(s.offset.abs() < 1e-6);
    // 6 ms extra on the way back, all jitter there (asymmetry +0.5): corrected to zero.
    let RxOutcome::Sample(s) = sample_offset(&mut a, 0.01, 0.016, 0.0) else {
        panic!("no sample");
    };
    assert!(s.offset.abs() < 1e-6, "{}", s.offset);
}

#[test]
fn mindelay_replaces_the_minimum_in_the_delay_ratio_test() {
    let cfg = SourceConfig {
        maxdelayratio: Some(1.5),
        ..Default::default()
    };
    // No buffered minimum: the ratio test cannot apply to a first sample...
    assert!(matches!(
        sample_offset(&mut with_cfg(cfg), 0.01, 0.01, 0.0),
        RxOutcome::Sample(_)
    ));
    // ...but a fixed 10 ms minimum rejects a 20 ms round trip.
    let mut a = with_cfg(SourceConfig {
        mindelay: Some(0.01),
        ..cfg
    });
    assert_eq!(
        sample_offset(&mut a, 0.01, 0.01, 0.0),
        RxOutcome::Rejected(Rejection::MaxDelayRatio)
    );
    assert!(matches!(
        sample_offset(&mut a, 0.007, 0.007, 0.0),
        RxOutcome::Sample(_)
    ));
}

#[test]
fn maxdelayquant_keeps_only_the_low_delays() {
    let mut a = with_cfg(SourceConfig {
        maxdelayquant: Some(0.5),
        ..Default::default()
    });
    for one_way in [0.010, 0.012, 0.011, 0.013] {
        assert!(matches!(
            sample_offset(&mut a, one_way, one_way, 0.0),
            RxOutcome::Sample(_)
        ));
    }
    // Median of 20, 22, 24, 26 ms: 22 ms. 25 ms is over it, 21 ms under.
    assert_eq!(
        sample_offset(&mut a, 0.0125, 0.0125, 0.0),
        RxOutcome::Rejected(Rejection::MaxDelayDevRatio)
    );
    assert!(matches!(
        sample_offset(&mut a, 0.0105, 0.0105, 0.0),
        RxOutcome::Sample(_)
    ));
}

#[test]
fn copy_skips_the_synchronisation_loop_test() {
    let gps = u32::from_be_bytes(*b"GPS\0");
    let run = |cfg: SourceConfig| {
        let mut a = with_cfg(cfg);
        let (req, t1) = send(&mut a);
        let (rep, rx) = reply(&req, t1, 0.01, 0.0);
        let rep = with(&rep, |h| h.stratum = 3);
        a.on_packet(rx, &rep, Some(gps), false)
    };
    assert_eq!(
        run(SourceConfig::default()),
        RxOutcome::Rejected(Rejection::SyncLoop)
    );
    assert!(matches!(
        run(SourceConfig {
            copy: true,
            ..Default::default()
        }),
        RxOutcome::Sample(_)
    ));
}

#[test]
fn auto_offline_stops_polling_after_a_failed_send() {
    let mut plain = client();
    send(&mut plain);
    plain.send_failed();
    assert!(plain.next_timeout().is_some());
    let mut a = with_cfg(SourceConfig {
        auto_offline: true,
        ..Default::default()
    });
    send(&mut a);
    a.send_failed();
    assert_eq!(a.next_timeout(), None);
    // `online` brings it back.
    a.set_online(true, T0 + 2.0);
    assert_eq!(a.next_timeout(), Some(T0 + 2.0));
}

/// Polls answered until the source is selectable, then unanswered; how many polls it stays
/// selectable after its reachability register reaches zero.
fn selectable_polls_while_unreachable(cfg: SourceConfig) -> usize {
    let mut a = with_cfg(cfg);
    for _ in 0..4 {
        let (req, t1) = send(&mut a);
        let (rep, rx) = reply(&req, t1, 0.01, 0.0);
        a.on_packet(rx, &rep, None, false);
    }
    assert!(a.is_selectable());
    let mut count = 0;
    for _ in 0..40 {
        send(&mut a);
        if a.reach() == 0 && a.is_selectable() {
            count += 1;
        }
    }
    count
}

#[test]
fn maxunreach_bounds_selection_of_an_unreachable_source() {
    assert_eq!(
        selectable_polls_while_unreachable(SourceConfig::default()),
        0
    );
    let limited = |n| SourceConfig {
        maxunreach: Some(n),
        ..Default::default()
    };
    assert_eq!(selectable_polls_while_unreachable(limited(0)), 0);
    assert_eq!(selectable_polls_while_unreachable(limited(3)), 3);
}

// ---- sync: iburst spacing at short polls (begin) ----
#[test]
fn iburst_spacing_is_a_quarter_of_a_short_poll_as_chronyd() {
    for (minpoll, spacing) in [(0i8, 0.25), (2, 1.0), (-2, 0.0625)] {
        let mut a = Association::new(
            addr(),
            SourceConfig {
                iburst: true,
                minpoll,
                maxpoll: minpoll,
                ..Default::default()
            },
            T0,
            3,
        );
        let mut times = Vec::new();
        for _ in 0..5 {
            let (req, t1) = send(&mut a);
            times.push(t1);
            let (rep, rx) = reply(&req, t1, 0.001, 0.0);
            a.on_packet(rx, &rep, None, false);
        }
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps[..3].iter().all(|g| (g - spacing).abs() < 1e-9),
            "minpoll {minpoll}: {gaps:?}"
        );
        let poll = 2f64.powi(i32::from(minpoll));
        assert!((gaps[3] - poll).abs() < 1e-9, "minpoll {minpoll}: {gaps:?}");
        // Selectable after the third reply, well within a second at minpoll 0.
        assert!(a.is_selectable());
    }
}
// ---- sync: iburst spacing at short polls (end) ----
