use super::*;
use crate::local_clock::TestClock;

fn comb(offset: f64, frequency: f64, skew: f64) -> Combined {
    Combined {
        selected: 0,
        offset,
        offset_sd: 1e-5,
        frequency,
        skew,
        root_delay: 2e-3,
        root_dispersion: 1e-3,
        stratum: 1,
        reference_id: 0xC000_0201,
        leap: LeapState::Normal,
        combined: 1,
    }
}

#[test]
fn first_update_takes_source_frequency_and_slews_offset() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock::default();
    // We gain 100 ppm on the source and are 50 ms ahead.
    let u = r.update(1000.0, &comb(0.05, 100e-6, 1e-6), &mut c).unwrap();
    assert_eq!(u.action, UpdateAction::Slewed(0.05));
    assert!((c.freq_ppm + 100.0).abs() < 0.01, "{}", c.freq_ppm);
    assert_eq!(c.slews.len(), 1);
    assert!((c.slews[0].0 + 0.05).abs() < 1e-12);
    let ch = u.change.unwrap();
    assert!((ch.doffset + 0.05).abs() < 1e-12);
    assert!((ch.dfreq + 100e-6).abs() < 1e-8);
    assert!(r.is_synchronised());
    assert_eq!(r.stratum(), 2);
    let t = r.tracking(1000.0, &c);
    assert_eq!(t.reference_id, 0xC000_0201);
    assert_eq!(t.leap_status, LeapStatus::Normal);
    assert!((t.frequency_ppm - 100.0).abs() < 0.01);
    assert!((t.last_offset - 0.05).abs() < 1e-12);
}

#[test]
fn skew_above_maxupdateskew_leaves_frequency_alone() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock {
        freq_ppm: 12.0,
        ..Default::default()
    };
    let u = r
        .update(10.0, &comb(0.001, 50e-6, 2000e-6), &mut c)
        .unwrap();
    assert_eq!(c.freq_ppm, 12.0);
    assert_eq!(u.change.unwrap().dfreq, 0.0);
}

#[test]
fn frequency_is_clamped_to_maxdrift() {
    let mut r = Reference::new(ReferenceConfig {
        max_drift_ppm: 100.0,
        ..Default::default()
    });
    let mut c = TestClock::default();
    r.update(10.0, &comb(0.0, 500e-6, 1e-6), &mut c).unwrap();
    assert_eq!(c.freq_ppm, -100.0);
}

#[test]
fn negative_or_nan_maxdrift_from_config_limits_without_panicking() {
    for (max, expect) in [(-100.0, -100.0), (f64::NAN, -500.0)] {
        let mut r = Reference::new(ReferenceConfig {
            max_drift_ppm: max,
            ..Default::default()
        });
        let mut c = TestClock::default();
        r.update(10.0, &comb(0.0, 500e-6, 1e-6), &mut c).unwrap();
        assert!((c.freq_ppm - expect).abs() < 0.01, "{max}: {}", c.freq_ppm);
        r.load_drift(-300.0, 1.0, &mut c).unwrap();
        assert!(c.freq_ppm.is_finite());
    }
}

#[test]
fn makestep_steps_only_within_limit_updates() {
    let mut r = Reference::new(ReferenceConfig {
        makestep: Some((1.0, 2)),
        ..Default::default()
    });
    let mut c = TestClock::default();
    let u = r.update(0.0, &comb(5.0, 0.0, 1e-6), &mut c).unwrap();
    assert_eq!(u.action, UpdateAction::Stepped(5.0));
    assert_eq!(c.steps, vec![-5.0]);
    r.update(64.0, &comb(0.5, 0.0, 1e-6), &mut c).unwrap();
    // Third update: beyond the limit, a large offset is slewed.
    let u = r.update(128.0, &comb(3.0, 0.0, 1e-6), &mut c).unwrap();
    assert_eq!(u.action, UpdateAction::Slewed(3.0));
    assert_eq!(c.steps.len(), 1);
}

#[test]
fn makestep_by_command_counts_its_limit_from_now_and_maxupdateskew_by_command_applies() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock::default();
    // No makestep configured: three updates slew.
    for t in [0.0, 64.0, 128.0] {
        let u = r.update(t, &comb(0.1, 0.0, 1e-6), &mut c).unwrap();
        assert_eq!(u.action, UpdateAction::Slewed(0.1));
    }
    // chronyc `makestep 1 1` after three updates: the next update may step (chronyd counts
    // the limit from the command), the one after may not.
    r.set_makestep(1.0, 1);
    let u = r.update(192.0, &comb(5.0, 0.0, 1e-6), &mut c).unwrap();
    assert_eq!(u.action, UpdateAction::Stepped(5.0));
    let u = r.update(256.0, &comb(5.0, 0.0, 1e-6), &mut c).unwrap();
    assert_eq!(u.action, UpdateAction::Slewed(5.0));
    // A negative limit: always.
    r.set_makestep(1.0, -1);
    let u = r.update(320.0, &comb(5.0, 0.0, 1e-6), &mut c).unwrap();
    assert_eq!(u.action, UpdateAction::Stepped(5.0));
    // `maxupdateskew 1`: a 5 ppm skew no longer moves the frequency; nonsense is ignored.
    r.set_max_update_skew(1.0);
    r.set_max_update_skew(f64::NAN);
    let before = c.freq_ppm;
    let u = r.update(384.0, &comb(0.0, 50e-6, 5e-6), &mut c).unwrap();
    assert_eq!(u.change.unwrap().dfreq, 0.0);
    assert_eq!(c.freq_ppm, before);
}

#[test]
fn maxchange_ignores_then_exits() {
    let mut r = Reference::new(ReferenceConfig {
        maxchange: Some((1.0, 1, 2)),
        ..Default::default()
    });
    let mut c = TestClock::default();
    // The first update is exempt (START = 1).
    assert_eq!(
        r.update(0.0, &comb(5.0, 0.0, 1e-6), &mut c).unwrap().action,
        UpdateAction::Slewed(5.0)
    );
    for _ in 0..2 {
        let u = r.update(64.0, &comb(2.0, 0.0, 1e-6), &mut c).unwrap();
        assert_eq!(u.action, UpdateAction::IgnoredMaxChange(2.0));
        assert!(u.change.is_none());
    }
    let u = r.update(64.0, &comb(2.0, 0.0, 1e-6), &mut c).unwrap();
    assert_eq!(u.action, UpdateAction::ExitMaxChange(2.0));
    assert_eq!(c.slews.len(), 1, "clock untouched by ignored updates");
}

#[test]
fn slew_rate_follows_corrtimeratio_and_maxslewrate() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock::default();
    let noisy = |offset| Combined {
        offset_sd: 1e-3,
        ..comb(offset, 0.0, 1e-6)
    };
    r.update(0.0, &noisy(1e-3), &mut c).unwrap();
    c.remaining = 0.0; // the first slew finished
    r.update(64.0, &noisy(1e-3), &mut c).unwrap();
    // A typical correction (RMS 1 ms, as uncertain as that), interval 64 s, ratio 3: 1 ms
    // over 192 s.
    let (_, rate) = c.slews[1];
    assert!((rate - 1e-3 / 192.0 * 1e6).abs() < 1e-6, "{rate}");
    // The same offset measured ten times more precisely is corrected ten times faster.
    c.remaining = 0.0;
    let precise = Combined {
        offset_sd: 1e-4,
        ..comb(1e-3, 0.0, 1e-6)
    };
    r.update(128.0, &precise, &mut c).unwrap();
    let (_, fast) = c.slews[2];
    assert!((fast / rate - 10.0).abs() < 0.5, "{fast} vs {rate}");
    // Huge offsets are limited by maxslewrate.
    c.remaining = 0.0;
    r.update(192.0, &comb(1e4, 0.0, 1e-6), &mut c).unwrap();
    assert_eq!(c.slews[3].1, 83333.333);
}

#[test]
fn drift_file_round_trips_and_rejects_garbage() {
    let text = format_drift(-12.345678, 0.25);
    assert_eq!(text.len(), 42);
    assert_eq!(parse_drift(&text, 500000.0), Ok((-12.345678, 0.25)));
    assert_eq!(parse_drift("", 500000.0), Err(DriftError::Malformed));
    assert_eq!(
        parse_drift("garbage\n", 500000.0),
        Err(DriftError::Malformed)
    );
    assert_eq!(parse_drift("nan 1\n", 500000.0), Err(DriftError::NotFinite));
    assert_eq!(parse_drift("inf 1\n", 500000.0), Err(DriftError::NotFinite));
    assert_eq!(
        parse_drift("1e9 1\n", 500000.0),
        Err(DriftError::OutOfRange)
    );
    assert_eq!(parse_drift("12.5\n", 500000.0), Err(DriftError::Malformed));
}

#[test]
fn drift_file_trailing_words_and_missing_newline_are_accepted_like_chronyd() {
    // chronyd 4.3 -x -d: "Frequency 12.500 +/- 0.100 ppm read from ..." for both files.
    assert_eq!(parse_drift("12.5 0.1", 500000.0), Ok((12.5, 0.1)));
    assert_eq!(parse_drift("12.5 0.1 extra\n", 500000.0), Ok((12.5, 0.1)));
    assert_eq!(parse_drift("1.0 2.0 3.0\n", 500000.0), Ok((1.0, 2.0)));
}

#[test]
fn drift_is_the_gain_rate_and_load_compensates_it() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock::default();
    // The clock gains 30 ppm: the driver slows it by 30 ppm.
    r.load_drift(30.0, 0.1, &mut c).unwrap();
    assert_eq!(c.freq_ppm, -30.0);
    let (f, s) = r.drift(&c);
    assert_eq!(f, 30.0);
    assert!((s - 0.1).abs() < 1e-9);
}

#[test]
fn leap_days_are_last_days_of_june_and_december() {
    assert!(is_leap_day(1_483_228_799.0)); // 2016-12-31 23:59:59
    assert!(!is_leap_day(1_483_228_800.0)); // 2017-01-01
    assert!(is_leap_day(1_435_708_799.0 - 3600.0)); // 2015-06-30
    assert!(!is_leap_day(1_435_708_799.0 - 86400.0)); // 2015-06-29
}

#[test]
fn leap_insert_system_mode_arms_kernel_and_adjusts_model() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock::default();
    let day_end = 1_483_228_800.0;
    let mut cb = comb(0.0, 0.0, 1e-6);
    cb.leap = LeapState::Insert;
    r.update(day_end - 7200.0, &cb, &mut c).unwrap();
    assert_eq!(r.next_leap_event(day_end - 7200.0), Some(day_end));
    r.arm_leap(day_end - 7200.0, &mut c).unwrap();
    assert_eq!(c.leap, LeapState::Insert);
    let ch = r.apply_leap(day_end, &mut c).unwrap().unwrap();
    assert_eq!(ch.doffset, -1.0);
    assert!(c.steps.is_empty(), "the kernel steps in system mode");
    assert_eq!(c.leap, LeapState::Normal);
}

#[test]
fn leap_step_and_slew_modes_correct_the_clock() {
    let day_end = 1_483_228_800.0;
    for (mode, steps, slews) in [(LeapMode::Step, 1, 1), (LeapMode::Slew, 0, 2)] {
        let mut r = Reference::new(ReferenceConfig {
            leap_mode: mode,
            ..Default::default()
        });
        let mut c = TestClock::default();
        let mut cb = comb(0.0, 0.0, 1e-6);
        cb.leap = LeapState::Delete;
        r.update(day_end - 7200.0, &cb, &mut c).unwrap();
        assert_eq!(r.next_leap_event(day_end - 7200.0), Some(day_end - 1.0));
        r.arm_leap(day_end - 7200.0, &mut c).unwrap();
        assert_eq!(c.leap, LeapState::Normal, "kernel not armed in {mode:?}");
        let ch = r.apply_leap(day_end - 1.0, &mut c).unwrap().unwrap();
        assert_eq!(ch.doffset, 1.0);
        assert_eq!(c.steps.len(), steps);
        assert_eq!(c.slews.len(), slews);
    }
}

#[test]
fn leap_ignored_outside_leap_day() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock::default();
    let mut cb = comb(0.0, 0.0, 1e-6);
    cb.leap = LeapState::Insert;
    r.update(1_483_228_800.0 - 5.0 * 86400.0, &cb, &mut c)
        .unwrap();
    assert_eq!(r.next_leap_event(1_483_228_800.0 - 5.0 * 86400.0), None);
}

#[test]
fn local_mode_takes_over_when_sources_are_lost() {
    let mut r = Reference::new(ReferenceConfig {
        local: Some(LocalConfig::default()),
        ..Default::default()
    });
    let mut c = TestClock::default();
    r.unsynchronise(5.0, &mut c).unwrap();
    assert!(r.is_synchronised());
    assert_eq!(r.stratum(), 10);
    assert_eq!(r.tracking(5.0, &c).reference_id, LOCAL_REFERENCE_ID);
    let mut plain = Reference::new(ReferenceConfig::default());
    plain.update(0.0, &comb(0.0, 0.0, 1e-6), &mut c).unwrap();
    plain.unsynchronise(5.0, &mut c).unwrap();
    assert!(!plain.is_synchronised());
    let t = plain.tracking(5.0, &c);
    assert_eq!(t.leap_status, LeapStatus::Unsynchronised);
    assert_eq!(t.stratum, 0);
    assert!(!c.sync.unwrap().0);
}

#[test]
fn local_reference_waits_for_the_root_distance_to_pass_its_distance() {
    let mut r = Reference::new(ReferenceConfig {
        local: Some(LocalConfig {
            distance: 0.01,
            ..LocalConfig::default()
        }),
        ..Default::default()
    });
    let mut c = TestClock::default();
    r.update(0.0, &comb(0.0, 0.0, 1e-6), &mut c).unwrap();
    // Root distance: 1 ms delay/2 + 1.01 ms dispersion, growing by ~2 ppm (skew + 1 ppm).
    r.unsynchronise(10.0, &mut c).unwrap();
    assert!(!r.local_active());
    assert_eq!(r.stratum(), 2);
    assert_eq!(r.reference_id(), 0xC000_0201);
    let still = 3000.0;
    assert!(r.root_distance_at(still) < 0.01);
    r.unsynchronise(still, &mut c).unwrap();
    assert!(!r.local_active());
    let past = 10_000.0;
    assert!(r.root_distance_at(past) > 0.01);
    r.unsynchronise(past, &mut c).unwrap();
    assert!(r.local_active());
    assert_eq!(r.stratum(), 10);
    assert_eq!(r.reference_id(), LOCAL_REFERENCE_ID);
    // A new update from a source ends local mode.
    r.update(past + 1.0, &comb(0.0, 0.0, 1e-6), &mut c).unwrap();
    assert!(!r.local_active());
    assert_eq!(r.stratum(), 2);
}

#[test]
fn local_reference_is_active_at_once_when_never_synchronised() {
    let mut r = Reference::new(ReferenceConfig {
        local: Some(LocalConfig {
            distance: 100.0,
            ..LocalConfig::default()
        }),
        ..Default::default()
    });
    let mut c = TestClock::default();
    r.unsynchronise(0.0, &mut c).unwrap();
    assert!(r.local_active());
    assert_eq!(r.stratum(), 10);
}

proptest::proptest! {
    #[test]
    fn drift_parser_is_total(text in ".{0,64}") {
        if let Ok((f, s)) = parse_drift(&text, 500_000.0) {
            proptest::prop_assert!(f.is_finite() && s.is_finite() && s >= 0.0);
        }
    }

    #[test]
    fn leap_table_parsers_are_total(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = leap_table::LeapTable::parse_tzif(&data);
        let mut tz = b"TZif2".to_vec();
        tz.extend_from_slice(&data);
        let _ = leap_table::LeapTable::parse_tzif(&tz);
        let _ = leap_table::LeapTable::parse_leap_seconds_list(&String::from_utf8_lossy(&data));
    }
}

#[test]
fn fallback_drift_sets_the_long_term_frequency_and_unsynchronises() {
    let mut r = Reference::new(ReferenceConfig::default());
    r.set_fallback_drift(4, 5);
    let mut c = TestClock::default();
    // A minute of updates finding us 20 ppm fast, then one that measures 60 ppm.
    for i in 0..60 {
        let f = if i == 0 { 20e-6 } else { 0.0 };
        r.update(1000.0 + f64::from(i), &comb(0.0, f, 1e-9), &mut c)
            .unwrap();
    }
    r.update(1060.0, &comb(0.0, 40e-6, 1e-9), &mut c).unwrap();
    assert!((c.freq_ppm + 60.0).abs() < 0.1, "{}", c.freq_ppm);
    assert_eq!(r.apply_fallback_drift(1070.0, &mut c).unwrap(), None);
    assert!(r.is_synchronised());
    let ch = r.apply_fallback_drift(1076.0, &mut c).unwrap().unwrap();
    // Back to the 20 ppm the clock kept for a minute, not the last 60.
    assert!((c.freq_ppm + 20.0).abs() < 0.5, "{}", c.freq_ppm);
    assert!((ch.dfreq - 40e-6).abs() < 1e-6, "{}", ch.dfreq);
    assert_eq!(ch.doffset, 0.0);
    assert!(!r.is_synchronised());
    assert_eq!(r.fallback_drift_active(), Some(0));
    assert_eq!(r.stratum(), 0);
}

#[test]
fn without_fallbackdrift_the_frequency_stays() {
    let mut r = Reference::new(ReferenceConfig::default());
    let mut c = TestClock::default();
    r.update(1000.0, &comb(0.0, 20e-6, 1e-9), &mut c).unwrap();
    assert_eq!(r.apply_fallback_drift(1e9, &mut c).unwrap(), None);
    r.set_fallback_drift(0, 19);
    assert_eq!(r.apply_fallback_drift(1e9, &mut c).unwrap(), None);
    assert!(r.is_synchronised());
}
