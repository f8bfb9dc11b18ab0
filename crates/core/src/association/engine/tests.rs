use super::*;
use crate::local_clock::TestClock;
use crate::reference::LocalConfig;
use crate::reports::LeapStatus;
use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};

const T0: f64 = 1_780_000_000.0;

fn server() -> SocketAddr {
    "192.0.2.7:123".parse().unwrap()
}

/// The engine test modules' stratum-1 server ("GPS") answering `q`: received at `rx` (Unix
/// seconds), transmit time `tx`, `origin` as given (the request's transmit field for a basic
/// reply), precision `precision`, reference time a second before `rx`.
pub(super) fn reply_header(
    q: &Header,
    origin: NtpTimestamp,
    rx: f64,
    tx: NtpTimestamp,
    precision: i8,
) -> Header {
    Header {
        leap: LeapIndicator::NoWarning,
        version: 4,
        mode: Mode::Server,
        stratum: 1,
        poll: q.poll,
        precision,
        root_dispersion: NtpShort::from_seconds(1e-4),
        reference_id: 0x4750_5300,
        reference_timestamp: NtpTimestamp::from_unix_f64(rx - 1.0),
        origin_timestamp: origin,
        receive_timestamp: NtpTimestamp::from_unix_f64(rx),
        transmit_timestamp: tx,
        ..Default::default()
    }
}

/// Answers a request as a perfect server `ahead` seconds ahead of the test clock, 1 ms away.
fn answer(req: &[u8; 48], t1: f64, ahead: f64) -> ([u8; 48], f64) {
    let q = Header::decode(req).unwrap();
    let t2 = t1 + 0.001 + ahead;
    let h = reply_header(
        &q,
        q.transmit_timestamp,
        t2,
        NtpTimestamp::from_unix_f64(t2),
        -20,
    );
    (h.to_bytes(), t1 + 0.002)
}

/// Runs the engine until `end`, the server answering when `reply` says so.
fn drive(
    e: &mut Engine,
    c: &mut TestClock,
    end: f64,
    ahead: f64,
    reply: impl Fn(f64) -> bool,
) -> Vec<Action> {
    let mut log = Vec::new();
    while let Some(t) = e.poll_timeout() {
        let t = t.max(c.now);
        if t > end {
            break;
        }
        c.now = t;
        let actions = e.handle_timeout(t, c);
        for a in actions {
            if let Action::Send(id, tx) = &a {
                if reply(t) {
                    let (rep, rx) = answer(&tx.payload, t, ahead);
                    c.now = rx;
                    log.extend(e.handle_packet(*id, rx, &rep, None, false, c));
                }
            }
            log.push(a);
        }
    }
    log
}

fn iburst() -> SourceConfig {
    SourceConfig {
        iburst: true,
        ..Default::default()
    }
}

#[test]
fn engine_synchronises_to_a_server_and_reports_tracking() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    e.add_source(server(), iburst(), T0);
    let log = drive(&mut e, &mut c, T0 + 10.0, 0.05, |_| true);
    assert!(log
        .iter()
        .any(|a| *a == Action::Log(Event::Selected(server()))));
    // We are 50 ms behind the server: the correction slews us forward.
    assert!((c.remaining - 0.05).abs() < 1e-3, "{}", c.remaining);
    let t = e.tracking(c.now, &c);
    assert_eq!(t.stratum, 2);
    assert_eq!(t.reference_addr, Some(server()));
    assert_eq!(t.leap_status, LeapStatus::Normal);
    let rows = e.sources(c.now, &c);
    assert_eq!(rows[0].1.state, SourceState::Selected);
    assert_eq!(rows[0].1.reach, 0o17);
    let stats = e.source_stats(c.now, &c);
    assert!(stats[0].2.samples >= 3);
}

#[test]
fn lost_source_makes_reference_unsynchronised() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    e.add_source(server(), iburst(), T0);
    drive(&mut e, &mut c, T0 + 10.0, 0.0, |_| true);
    assert!(e.reference().is_synchronised());
    let log = drive(&mut e, &mut c, T0 + 2000.0, 0.0, |_| false);
    assert!(!e.reference().is_synchronised());
    assert!(log.iter().any(|a| matches!(
        a,
        Action::Log(Event::CannotSynchronise(NoSelection::NoSelectableSources))
    )));
    assert_eq!(
        e.tracking(c.now, &c).leap_status,
        LeapStatus::Unsynchronised
    );
}

#[test]
fn local_reference_takes_over_when_sources_are_lost() {
    let mut e = Engine::new(EngineConfig {
        reference: ReferenceConfig {
            // Small enough for the root distance to pass it within the run.
            local: Some(LocalConfig {
                distance: 1e-3,
                ..LocalConfig::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    });
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    e.add_source(server(), iburst(), T0);
    drive(&mut e, &mut c, T0 + 2000.0, 0.0, |t| t < T0 + 10.0);
    let t = e.tracking(c.now, &c);
    assert_eq!(t.stratum, 10);
    assert_eq!(t.reference_id, crate::reference::LOCAL_REFERENCE_ID);
}

#[test]
fn pool_is_resolved_and_filled_up_to_maxsources() {
    let mut e = Engine::new(EngineConfig::default());
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let pool = e.add_pool("pool.example", SourceConfig::default(), 4);
    assert_eq!(e.poll_timeout(), Some(f64::NEG_INFINITY));
    let actions = e.handle_timeout(T0, &mut c);
    assert!(actions.contains(&Action::Resolve(pool, "pool.example".to_string())));
    let addrs: Vec<SocketAddr> = (1..=6)
        .map(|i| format!("198.51.100.{i}:123").parse().unwrap())
        .collect();
    e.pool_resolved(pool, &addrs, T0);
    assert_eq!(e.sources(T0, &c).len(), 4);
    // Resolving again adds nothing: the pool is full.
    e.pool_resolved(pool, &addrs, T0);
    assert_eq!(e.sources(T0, &c).len(), 4);
}

#[test]
fn maxchange_asks_the_daemon_to_exit() {
    let mut e = Engine::new(EngineConfig {
        reference: ReferenceConfig {
            maxchange: Some((0.1, 0, 0)),
            ..Default::default()
        },
        ..Default::default()
    });
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    e.add_source(server(), iburst(), T0);
    let log = drive(&mut e, &mut c, T0 + 10.0, 5.0, |_| true);
    assert!(log.contains(&Action::Exit(ExitReason::MaxChange)));
    assert!(c.steps.is_empty() && c.slews.is_empty());
    assert!(e.is_finished());
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn one_shot_print_reports_offset_without_touching_clock() {
    let mut e = Engine::new(EngineConfig {
        one_shot: Some((OneShot::Print, 30.0)),
        ..Default::default()
    });
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    e.add_source(server(), iburst(), T0);
    let log = drive(&mut e, &mut c, T0 + 60.0, -0.25, |_| true);
    let offset = log.iter().find_map(|a| match a {
        Action::Log(Event::OneShotOffset { offset, applied }) => Some((*offset, *applied)),
        _ => None,
    });
    let (offset, applied) = offset.unwrap();
    assert!((offset - 0.25).abs() < 1e-3, "{offset}");
    assert!(!applied);
    assert!(log.contains(&Action::Exit(ExitReason::OneShotDone)));
    assert!(c.steps.is_empty() && c.slews.is_empty() && c.freq_ppm == 0.0);
}

// ---- sync: fallbackdrift (begin) ----
#[test]
fn fallback_drift_is_set_once_the_source_is_lost_long_enough() {
    let mut e = Engine::new(EngineConfig::default());
    e.set_fallback_drift(7, 8);
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    e.add_source(server(), iburst(), T0);
    drive(&mut e, &mut c, T0 + 600.0, 0.0, |t| t < T0 + 400.0);
    assert!(e.reference().fallback_drift_active().is_some());
    assert!(!e.reference().is_synchronised());
    // Without the directive nothing happens to the frequency.
    let mut plain = Engine::new(EngineConfig::default());
    let mut c2 = TestClock {
        now: T0,
        ..Default::default()
    };
    plain.add_source(server(), iburst(), T0);
    drive(&mut plain, &mut c2, T0 + 600.0, 0.0, |t| t < T0 + 400.0);
    assert_eq!(plain.reference().fallback_drift_active(), None);
}

/// With every source offline no poll timer runs: the fallback's own deadline must still wake
/// the engine, or `fallbackdrift` would never apply in the very case it exists for.
#[test]
fn fallback_drift_is_due_with_every_source_offline() {
    let mut e = Engine::new(EngineConfig::default());
    e.set_fallback_drift(7, 8);
    let mut c = TestClock {
        now: T0,
        ..Default::default()
    };
    let id = e.add_source(server(), iburst(), T0);
    drive(&mut e, &mut c, T0 + 400.0, 0.0, |_| true);
    assert!(e.reference().updates() > 0, "the clock was never updated");
    e.set_online(id, false, c.now);
    let due = e.poll_timeout().expect("the fallback's deadline");
    assert!(
        due > c.now && due <= c.now + 128.0 + 1.0,
        "{due} vs {}",
        c.now
    );
    drive(&mut e, &mut c, T0 + 700.0, 0.0, |_| true);
    assert!(e.reference().fallback_drift_active().is_some());
    assert!(!e.reference().is_synchronised());
}
// ---- sync: fallbackdrift (end) ----
