use super::*;
use crate::association::ntp_data::test_bit;
use crate::association::{EngineConfig, SourceConfig};
use crate::local_clock::TestClock;
use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};

const T0: f64 = 1_780_000_000.0;

fn server() -> SocketAddr {
    "192.0.2.7:123".parse().unwrap()
}

fn clock() -> TestClock {
    TestClock {
        now: T0,
        ..Default::default()
    }
}

/// A perfect server 1 ms away answering `req` sent at `t1`; `delay` is the round trip.
fn answer(req: &[u8; 48], t1: f64, delay: f64) -> ([u8; 48], f64) {
    let q = Header::decode(req).unwrap();
    let t2 = t1 + delay / 2.0;
    let h = Header {
        leap: LeapIndicator::NoWarning,
        version: 4,
        mode: Mode::Server,
        stratum: 2,
        poll: q.poll,
        precision: -20,
        root_dispersion: NtpShort::from_seconds(1e-4),
        reference_id: 0x4750_5300,
        reference_timestamp: NtpTimestamp::from_unix_f64(t2 - 1.0),
        origin_timestamp: q.transmit_timestamp,
        receive_timestamp: NtpTimestamp::from_unix_f64(t2),
        transmit_timestamp: NtpTimestamp::from_unix_f64(t2 + 1e-5),
        ..Default::default()
    };
    (h.to_bytes(), t1 + delay)
}

/// Runs timers until `end`, answering every request with round trip `delay`; returns the
/// number of requests sent.
fn drive(e: &mut Engine, c: &mut TestClock, end: f64, delay: f64) -> usize {
    let mut sent = 0;
    while let Some(t) = e.poll_timeout() {
        let t = t.max(c.now);
        if t > end {
            break;
        }
        c.now = t;
        for a in e.handle_timeout(t, c) {
            if let Action::Send(id, tx) = &a {
                sent += 1;
                let (rep, rx) = answer(&tx.payload, t, delay);
                c.now = rx;
                e.handle_packet(*id, rx, &rep, None, false, c);
            }
        }
    }
    c.now = c.now.max(end);
    sent
}

/// [`drive`] as the daemon's loop does it: offline bursts are ended before every timer.
fn drive_loop(e: &mut Engine, c: &mut TestClock, end: f64, delay: f64) -> usize {
    let mut sent = 0;
    loop {
        e.end_offline_bursts(c.now);
        let Some(t) = e.poll_timeout().map(|t| t.max(c.now)) else {
            break;
        };
        if t > end {
            break;
        }
        sent += drive(e, c, t, delay);
    }
    c.now = c.now.max(end);
    sent
}

fn fast_source() -> SourceConfig {
    SourceConfig {
        iburst: true,
        minpoll: 0,
        maxpoll: 2,
        ..Default::default()
    }
}

#[test]
fn burst_sends_requests_two_seconds_apart_until_enough_are_good() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(
        server(),
        SourceConfig {
            minpoll: 10,
            maxpoll: 10,
            ..Default::default()
        },
        T0,
    );
    // The first poll, then nothing for 1024 s.
    assert_eq!(drive(&mut e, &mut c, T0 + 100.0, 1e-3), 1);
    assert!(e.burst(id, 3, 6, c.now));
    assert!(e.is_bursting(id));
    // Three good answers end the burst: three requests within ~4 s, then quiet again.
    assert_eq!(drive(&mut e, &mut c, T0 + 110.0, 1e-3), 3);
    assert!(!e.is_bursting(id));
    assert_eq!(drive(&mut e, &mut c, T0 + 200.0, 1e-3), 0);
    assert!(!e.burst(SourceId(99), 1, 1, c.now));
}

#[test]
fn burst_on_an_offline_source_polls_then_returns_offline() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    e.set_online(id, false, T0);
    assert!(e.burst(id, 2, 4, T0));
    assert!(e.burst_returns_offline(id));
    assert_eq!(drive_loop(&mut e, &mut c, T0 + 3.0, 1e-3), 2);
    assert!(!e.is_bursting(id));
    assert!(e.association(id).unwrap().next_timeout().is_none());
    assert_eq!(drive_loop(&mut e, &mut c, T0 + 30.0, 1e-3), 0);
}

#[test]
fn offline_during_a_burst_waits_for_its_end() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(
        server(),
        SourceConfig {
            minpoll: 10,
            maxpoll: 10,
            ..Default::default()
        },
        T0,
    );
    drive_loop(&mut e, &mut c, T0 + 10.0, 1e-3);
    e.burst(id, 2, 2, c.now);
    e.set_online_commanded(id, false, c.now);
    assert!(e.burst_returns_offline(id));
    assert_eq!(drive_loop(&mut e, &mut c, T0 + 20.0, 1e-3), 2);
    assert!(e.association(id).unwrap().next_timeout().is_none());
    // And `online` brings it back.
    e.set_online_commanded(id, true, c.now);
    assert!(e.association(id).unwrap().next_timeout().is_some());
}

#[test]
fn minpoll_above_maxpoll_raises_maxpoll_and_out_of_range_is_ignored() {
    let mut e = Engine::new(EngineConfig::default());
    let id = e.add_source(server(), fast_source(), T0);
    assert_eq!(
        e.modify_source(id, SourceSetting::MinPoll(4)),
        Some(vec![SourceSetting::MinPoll(4), SourceSetting::MaxPoll(4)])
    );
    let cfg = *e.association(id).unwrap().config();
    assert_eq!((cfg.minpoll, cfg.maxpoll), (4, 4));
    assert_eq!(e.association(id).unwrap().poll(), 4);
    assert_eq!(
        e.modify_source(id, SourceSetting::MinPoll(99)),
        Some(vec![])
    );
    assert_eq!(
        e.modify_source(id, SourceSetting::MaxPoll(-9)),
        Some(vec![])
    );
    assert_eq!(
        e.modify_source(id, SourceSetting::MaxPoll(-3)),
        Some(vec![SourceSetting::MaxPoll(-3), SourceSetting::MinPoll(-3)])
    );
    assert_eq!(
        e.modify_source(SourceId(7), SourceSetting::MinPoll(4)),
        None
    );
}

#[test]
fn delay_limits_are_clamped_like_chronyds() {
    let mut e = Engine::new(EngineConfig::default());
    let id = e.add_source(server(), fast_source(), T0);
    assert_eq!(
        e.modify_source(id, SourceSetting::MaxDelay(1e9)),
        Some(vec![SourceSetting::MaxDelay(1000.0)])
    );
    assert_eq!(
        e.modify_source(id, SourceSetting::MaxDelay(-1.0)),
        Some(vec![SourceSetting::MaxDelay(0.0)])
    );
    assert_eq!(
        e.modify_source(id, SourceSetting::MaxDelayDevRatio(-2.0)),
        Some(vec![SourceSetting::MaxDelayDevRatio(0.0)])
    );
    e.modify_source(id, SourceSetting::MinStratum(99));
    assert_eq!(e.association(id).unwrap().config().minstratum, 99);
    assert_eq!(
        SourceSetting::MaxDelay(0.5).to_string(),
        "maxdelay 0.500000"
    );
}

#[test]
fn maxdelay_set_at_run_time_rejects_later_samples_in_ntpdata() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    drive(&mut e, &mut c, T0 + 20.0, 0.01);
    let before = e.ntp_data(id).unwrap();
    assert_eq!(before.tests, test_bit::ALL);
    assert_eq!(before.total_rx, before.total_tx);
    assert!(before.total_good > 0);
    assert!((before.peer_delay - 0.01).abs() < 1e-4);
    assert_eq!(before.stratum, 2);
    e.modify_source(id, SourceSetting::MaxDelay(0.001));
    drive(&mut e, &mut c, T0 + 40.0, 0.01);
    let after = e.ntp_data(id).unwrap();
    assert_eq!(after.tests, test_bit::ALL & !test_bit::MAX_DELAY);
    assert!(after.total_good < after.total_valid);
    assert_eq!(after.total_tx, after.total_rx);
}

#[test]
fn ntpdata_shows_the_configured_jitter_asymmetry_once_a_sample_exists() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let cfg = SourceConfig {
        asymmetry: Some(0.3),
        ..fast_source()
    };
    let id = e.add_source(server(), cfg, T0);
    // chronyd 4.3 (`asymmetry 0.3`): +0.00 before the first sample, +0.30 after.
    assert_eq!(e.ntp_data(id).unwrap().jitter_asymmetry, 0.0);
    drive(&mut e, &mut c, T0 + 10.0, 0.01);
    assert!((e.ntp_data(id).unwrap().jitter_asymmetry - 0.3).abs() < 1e-12);
}

#[test]
fn make_step_steps_the_pending_slew_and_keeps_cooked_time() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    drive(&mut e, &mut c, T0 + 5.0, 1e-3);
    c.remaining = 0.25;
    let cooked = cooked_time(&c, c.now);
    let deadline = e.association(id).unwrap().next_timeout().unwrap();
    assert_eq!(e.make_step(&mut c), Ok(0.25));
    assert_eq!(c.steps, vec![0.25]);
    assert_eq!(c.remaining, 0.0);
    assert!((cooked_time(&c, c.now) - cooked).abs() < 1e-9);
    let moved = e.association(id).unwrap().next_timeout().unwrap();
    assert!((moved - deadline - 0.25).abs() < 1e-9);
}

#[test]
fn doffset_and_dfreq_use_chronyds_signs() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    e.add_source(server(), fast_source(), T0);
    e.adjust_offset(0.01, c.now, &mut c).unwrap();
    // A positive doffset says the clock is fast: it is slewed back.
    assert_eq!(c.remaining, -0.01);
    e.adjust_frequency(5.0, c.now, &mut c).unwrap();
    assert_eq!(c.freq_ppm, -5.0);
}

#[test]
fn doffset_moves_the_sources_last_sample_with_the_clock() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    drive(&mut e, &mut c, T0 + 10.0, 1e-3);
    let now = c.now;
    let before = e.sources(now, &c)[0].1.adjusted_offset;
    e.adjust_offset(0.01, now, &mut c).unwrap();
    let after = e
        .sources(now, &c)
        .into_iter()
        .find(|(i, _)| *i == id)
        .unwrap()
        .1
        .adjusted_offset;
    assert!((after - before + 0.01).abs() < 1e-6, "{before} {after}");
}

#[test]
fn selectdata_marks_the_selected_source_and_its_interval() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    let noselect = e.add_source(
        "192.0.2.8:123".parse().unwrap(),
        SourceConfig {
            select: SelectOptions {
                noselect: true,
                ..Default::default()
            },
            ..fast_source()
        },
        T0,
    );
    drive(&mut e, &mut c, T0 + 20.0, 1e-3);
    let rows = e.select_data(c.now, &c);
    let (_, best) = rows.iter().find(|(i, _)| *i == id).unwrap();
    assert_eq!(best.state, '*');
    assert!(best.lo_limit < best.hi_limit);
    assert_eq!(best.leap, Some(LeapState::Normal));
    let (_, n) = rows.iter().find(|(i, _)| *i == noselect).unwrap();
    assert_eq!(n.state, 'N');
    assert!(n.configured.noselect && n.effective.noselect);
    // chronyd shows no interval for a noselect source.
    assert_eq!((n.lo_limit, n.hi_limit), (0.0, 0.0));
}

#[test]
fn local_orphan_by_command_holds_back_group_members_until_turned_off() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    // The test server answers at stratum 2: a member of a stratum-2 orphan group.
    let id = e.add_source(server(), fast_source(), T0);
    drive(&mut e, &mut c, T0 + 20.0, 1e-3);
    let state = |e: &Engine, c: &TestClock| e.select_data(c.now, c)[0].1.state;
    assert_eq!(state(&e, &c), '*');
    e.set_local(
        Some(LocalConfig {
            stratum: 2,
            distance: 0.0,
            orphan: true,
        }),
        &mut c,
    )
    .unwrap();
    e.reselect(c.now, &mut c);
    assert_eq!(state(&e, &c), 'O');
    assert_eq!(e.selector.current(), None);
    // `local` without `orphan`, then `local off`: an ordinary source again.
    e.set_local(
        Some(LocalConfig {
            stratum: 2,
            ..LocalConfig::default()
        }),
        &mut c,
    )
    .unwrap();
    e.reselect(c.now, &mut c);
    assert_eq!(state(&e, &c), '*');
    e.set_local(
        Some(LocalConfig {
            stratum: 3,
            distance: 1.0,
            orphan: true,
        }),
        &mut c,
    )
    .unwrap();
    e.reselect(c.now, &mut c);
    assert_eq!(
        state(&e, &c),
        '*',
        "stratum 2 is below an orphan stratum of 3"
    );
    e.set_local(None, &mut c).unwrap();
    e.reselect(c.now, &mut c);
    assert_eq!(e.selector.current(), Some(id.0 as usize));
}

#[test]
fn local_by_command_sets_the_fallback_stratum_and_local_off_leaves_local_mode() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let local = |stratum| {
        Some(LocalConfig {
            stratum,
            distance: 0.0,
            orphan: false,
        })
    };
    // Not synchronised, nothing configured: `local stratum 7` makes the engine's fallback
    // serve stratum 7 as soon as selection finds nothing (here at once: no sources).
    e.set_local(local(7), &mut c).unwrap();
    e.reselect(c.now, &mut c);
    assert!(e.reference().local_active());
    assert_eq!(e.reference().stratum(), 7);
    // A new stratum while local is active is served at once.
    e.set_local(local(9), &mut c).unwrap();
    assert_eq!(e.reference().stratum(), 9);
    // `local off`: unsynchronised, and it stays so.
    e.set_local(None, &mut c).unwrap();
    assert!(!e.reference().local_active());
    assert!(!e.reference().is_synchronised());
    e.reselect(c.now, &mut c);
    assert!(!e.reference().is_synchronised());
    assert_eq!(c.sync.map(|s| s.0), Some(false));
}

#[test]
fn reselect_after_noselect_by_options_drops_the_source() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    drive(&mut e, &mut c, T0 + 20.0, 1e-3);
    assert_eq!(e.selector.current(), Some(id.0 as usize));
    e.sources.get_mut(&id).unwrap().assoc.cfg.select.noselect = true;
    e.reselect(c.now, &mut c);
    assert_eq!(e.selector.current(), None);
}

#[test]
fn auth_report_names_the_symmetric_key_and_its_length() {
    use crate::association::SourceAuth;
    use crate::auth::{Key, KeyStore, KeyType};
    let mut e = Engine::new(EngineConfig::default());
    let mut keys = KeyStore::new();
    keys.insert(Key::new(1, KeyType::Sha256, vec![7; 32]).unwrap());
    e.set_keys(keys);
    let keyed = e.add_source_auth(
        server(),
        fast_source(),
        &SourceAuth {
            key: Some(1),
            nts: None,
        },
        T0,
    );
    let missing = e.add_source_auth(
        "192.0.2.8:123".parse().unwrap(),
        fast_source(),
        &SourceAuth {
            key: Some(2),
            nts: None,
        },
        T0,
    );
    let plain = e.add_source("192.0.2.9:123".parse().unwrap(), fast_source(), T0);
    let r = e.auth_report(keyed).unwrap();
    assert_eq!((r.mode, r.key_id, r.key_type, r.key_bits), (1, 1, 3, 256));
    let r = e.auth_report(missing).unwrap();
    assert_eq!((r.mode, r.key_id, r.key_type, r.key_bits), (1, 2, 0, 0));
    assert_eq!(e.auth_report(plain), Some(AuthReport::default()));
    assert_eq!(e.auth_report(SourceId(99)), None);
}

#[test]
fn sources_are_missing_samples_until_selection_first_runs() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    e.set_online(id, false, T0);
    assert_eq!(e.select_data(T0, &c)[0].1.state, 'M');
    assert_eq!(e.ntp_data(id).unwrap(), NtpDataReport::default());
    e.reselect(T0, &mut c);
    // Selection ran: never heard from, its leap status is unknown.
    assert_eq!(e.select_data(T0, &c)[0].1.state, 's');
    assert_eq!(e.select_data(T0, &c)[0].1.last_sample_ago, 0);
}

#[test]
fn removing_a_pool_removes_its_members_and_its_lookup() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let pool = e.add_pool("pool.example", fast_source(), 2);
    let other = e.add_source("192.0.2.9:123".parse().unwrap(), fast_source(), T0);
    e.pool_resolved(
        pool,
        &[
            "192.0.2.1:123".parse().unwrap(),
            "192.0.2.2:123".parse().unwrap(),
        ],
        T0,
    );
    assert_eq!(e.source_ids().count(), 3);
    assert!(e.remove_pool(pool));
    assert_eq!(e.source_ids().collect::<Vec<_>>(), vec![other]);
    assert!(!e.remove_pool(pool));
    assert!(e
        .handle_timeout(T0, &mut c)
        .iter()
        .all(|a| !matches!(a, Action::Resolve(..))));
}

#[test]
fn reset_sources_drops_measurements_and_synchronisation() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = clock();
    let id = e.add_source(server(), fast_source(), T0);
    drive(&mut e, &mut c, T0 + 20.0, 1e-3);
    assert!(e.reference().is_synchronised());
    let actions = e.reset_sources(c.now, &mut c);
    assert!(!e.reference().is_synchronised());
    assert!(e.association(id).unwrap().stats().is_empty());
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Log(super::super::Event::CannotSynchronise(_)))));
    // New samples bring it back.
    drive(&mut e, &mut c, T0 + 40.0, 1e-3);
    assert!(e.reference().is_synchronised());
}
