//! Whole-engine scenarios in virtual time, named after chrony's simulation tests, each run with
//! several seeds against its pass limits (see `gnomon_sim::scenario`).

use gnomon_core::association::{Event, ExitReason, OneShot, SourceConfig};
use gnomon_core::local_clock::{ClockDriver, LeapState};
use gnomon_core::reports::SourceState;
use gnomon_sim::clock::ClockParams;
use gnomon_sim::network::SimServer;
use gnomon_sim::runner::{server_addr, ClientSpec, Target, World};
use gnomon_sim::scenario::{self, Outcome, Scenario, START};

const SEEDS: [u64; 3] = [1, 2, 3];

fn run_checked(name: &str) -> Vec<(Scenario, Outcome)> {
    let Some(s) = scenario::by_name(name) else {
        panic!("no scenario {name}");
    };
    SEEDS
        .iter()
        .map(|&seed| {
            let o = scenario::run(&s, seed);
            if let Err(e) = scenario::check(&s, &o) {
                panic!("seed {seed}: {e}");
            }
            (s.clone(), o)
        })
        .collect()
}

#[test]
fn defaults_sync_in_120_to_210_s_within_1ms_rms_300us() {
    for (_, o) in run_checked("defaults") {
        assert!(o.trace.steps.is_empty());
    }
}

#[test]
fn iburst_synchronises_within_30_s() {
    run_checked("iburst");
}

#[test]
fn makestep_steps_large_offset_once() {
    for (_, o) in run_checked("makestep") {
        assert_eq!(o.trace.steps.len(), 1, "{:?}", o.trace.steps);
        assert!((o.trace.steps[0].1 + 100.0).abs() < 0.1);
        assert!(o
            .trace
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Stepped(_))));
    }
}

#[test]
fn two_liars_of_five_are_falsetickers() {
    for (_, o) in run_checked("falsetickers") {
        let states: Vec<SourceState> = o.trace.sources.iter().map(|r| r.state).collect();
        assert_eq!(states[0], SourceState::Falseticker, "{states:?}");
        assert_eq!(states[1], SourceState::Falseticker, "{states:?}");
    }
}

#[test]
fn three_liars_of_five_leave_no_majority_and_no_update() {
    for (_, o) in run_checked("no_majority") {
        assert!(o.trace.steps.is_empty());
        assert_eq!(o.trace.drift.0, 0.0, "frequency never touched");
    }
}

#[test]
fn minsources_not_met_blocks_update_and_met_synchronises() {
    run_checked("minsources");
    run_checked("minsources_met");
}

#[test]
fn packet_loss_30_percent_still_synchronises() {
    run_checked("packet_loss");
}

#[test]
fn intermittent_reachability_keeps_time() {
    run_checked("intermittent");
}

#[test]
fn peer_synchronises_through_symmetric_mode() {
    run_checked("peers");
}

#[test]
fn leap_second_insertion_and_deletion_in_system_step_and_slew_modes() {
    for name in ["leap_insert", "leap_delete", "leap_step", "leap_slew"] {
        for (s, o) in run_checked(name) {
            let leap = scenario::leap_of(&s);
            assert!(
                o.trace
                    .events
                    .iter()
                    .any(|(_, e)| *e == Event::LeapSecond(leap)),
                "{name}: leap not handled"
            );
        }
    }
    assert_ne!(
        scenario::leap_of(&scenario::by_name("leap_delete").unwrap()),
        LeapState::Normal
    );
}

/// The real-daemon benchmark's link (5 ms ± 2 ms, 5 % loss, 1 s polls): chronyd 4.3 selects
/// after its fourth iburst reply 0.25 s apart (1.14 s measured through the relay) and reports a
/// `Last offset` RMS of 28-37 µs there; the engine must select sooner and do at least as well
/// over the seeds (one seed alone varies by half either way).
#[test]
fn relay_link_selects_within_a_second_and_a_half_and_reports_small_last_offsets() {
    for name in ["relay", "relay_drift"] {
        let mut last2 = 0.0;
        let runs = run_checked(name);
        for (s, o) in &runs {
            let f = scenario::tracking_figures(s, o, 60.0);
            let first = f.first_selection.expect("never selected");
            assert!(first < 1.5, "{name} seed {}: selected at {first} s", o.seed);
            assert!(f.last_offset_rms < 60e-6, "{name} seed {}: {f:?}", o.seed);
            assert!(f.true_offset_rms < 150e-6, "{name} seed {}: {f:?}", o.seed);
            last2 += f.last_offset_rms.powi(2);
        }
        let rms = (last2 / runs.len() as f64).sqrt();
        assert!(rms < 35e-6, "{name}: last offset RMS {:.1} us", rms * 1e6);
    }
}

#[test]
fn driftfile_restart_starts_with_known_frequency() {
    run_checked("driftfile");
}

#[test]
fn maxchange_ignores_then_exits_without_stepping() {
    for (_, o) in run_checked("maxchange") {
        let ignored = o
            .trace
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::MaxChangeIgnored(_)))
            .count();
        assert_eq!(ignored, 2);
        assert_eq!(o.trace.exit.map(|e| e.1.exit_code()), Some(1));
    }
}

#[test]
fn large_wander_within_chrony_limits() {
    run_checked("large_wander");
}

#[test]
fn wan_three_servers_10ms_delay() {
    run_checked("wan");
}

#[test]
fn pool_replaces_dead_and_lying_members() {
    for (_, o) in run_checked("pool") {
        assert!(o
            .trace
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::PoolSourceReplaced(_))));
        assert!(o.trace.sources.len() <= 4);
    }
}

#[test]
fn forged_packets_are_counted_and_change_nothing() {
    for (_, o) in run_checked("hostile") {
        assert!(o.trace.bogus_rejected > 1000, "{}", o.trace.bogus_rejected);
        // A stranger's RATE kiss never slowed the polling down.
        assert_eq!(o.trace.rate_kisses_honoured, 0);
        assert!(o.trace.steps.is_empty());
    }
}

fn one_shot_world(mode: OneShot, reachable: bool) -> World {
    let mut server = SimServer::default();
    if !reachable {
        server.link.outages = vec![(0.0, f64::INFINITY)];
    }
    let mut spec = ClientSpec {
        clock: ClockParams {
            initial_offset: 0.5,
            ..Default::default()
        },
        sources: vec![(
            Target::Server(0),
            SourceConfig {
                iburst: true,
                ..Default::default()
            },
        )],
        ..Default::default()
    };
    spec.engine.one_shot = Some((mode, 30.0));
    World::new(
        START,
        vec![server],
        Default::default(),
        vec![spec],
        Vec::new(),
        9,
    )
}

#[test]
fn one_shot_set_steps_once_and_exits_0() {
    let mut w = one_shot_world(OneShot::Set, true);
    w.run_until(START + 60.0);
    let clock = w.clock(0).unwrap();
    assert!((clock.reading() - w.now()).abs() < 1e-3);
    assert_eq!(clock.steps().len(), 1);
    let t = w.finish().remove(0);
    assert_eq!(t.exit.map(|e| e.1), Some(ExitReason::OneShotDone));
    assert!(t
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::OneShotOffset { applied: true, .. })));
}

#[test]
fn one_shot_print_leaves_clock_alone() {
    let mut w = one_shot_world(OneShot::Print, true);
    w.run_until(START + 60.0);
    let clock = w.clock(0).unwrap();
    assert!(clock.steps().is_empty());
    assert_eq!(clock.frequency_ppm(), 0.0);
    let t = w.finish().remove(0);
    let offset = t.events.iter().find_map(|(_, e)| match e {
        Event::OneShotOffset {
            offset,
            applied: false,
        } => Some(*offset),
        _ => None,
    });
    assert!((offset.unwrap() - 0.5).abs() < 1e-3, "{offset:?}");
    assert_eq!(t.exit.map(|e| e.1.exit_code()), Some(0));
}

#[test]
fn one_shot_without_measurement_exits_1() {
    let mut w = one_shot_world(OneShot::Set, false);
    w.run_until(START + 60.0);
    let t = w.finish().remove(0);
    assert_eq!(t.exit.map(|e| e.1), Some(ExitReason::OneShotNoMeasurement));
    assert_eq!(t.exit.map(|e| e.1.exit_code()), Some(1));
    assert!(t.steps.is_empty());
    let _ = server_addr(0);
}
