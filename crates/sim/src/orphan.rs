//! Orphan-mode scenarios (`local stratum 10 orphan`, chrony.conf): two clients peer with each
//! other and both configure the same orphan `local`. While an upstream server answers they both
//! follow it; when it goes away (or was never there) only the client with the smaller
//! reference ID (client 0: its address is the lower) activates its local reference, at stratum
//! 10, and the other follows it at stratum 11 — so the two keep one common time instead of
//! drifting apart on two local references. chronyd 4.3 does the same (two `chronyd -x` on
//! 127.0.0.2/127.0.0.3 peering: .2 shows reference 7F7F0101 stratum 10, .3 reference
//! 7F000002 stratum 11).

use gnomon_core::association::{SourceConfig, SourceKind};
use gnomon_core::reference::{LocalConfig, ReferenceConfig, LOCAL_REFERENCE_ID};
use std::collections::HashMap;
use std::net::IpAddr;

use crate::clock::ClockParams;
use crate::network::{Link, SimServer};
use crate::runner::{node_addr, ClientSpec, Target, World};
use crate::scenario::START;

/// What one client served at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Served {
    /// Stratum (0: unsynchronised).
    pub stratum: u8,
    /// Reference ID.
    pub reference_id: u32,
    /// The local reference is active.
    pub local: bool,
    /// Clock reading minus true time, seconds.
    pub offset: f64,
}

/// The two clients at the end of each phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrphanOutcome {
    /// Just before the upstream server goes away (`None` when there is no upstream).
    pub with_upstream: Option<[Served; 2]>,
    /// At the end of the run.
    pub end: [Served; 2],
}

/// Root distance at which the local reference activates in these scenarios (chrony's
/// `local distance`; small, so the holdover after the upstream loss ends within the run).
pub const DISTANCE: f64 = 0.005;

/// When the upstream server stops answering, seconds from the start.
pub const UPSTREAM_LOST: f64 = 2000.0;

/// Length of a run, seconds.
pub const DURATION: f64 = 8000.0;

fn spec(upstream: bool, other: usize, seed_offset: f64) -> ClientSpec {
    let sc = SourceConfig {
        minpoll: 4,
        maxpoll: 6,
        iburst: true,
        ..SourceConfig::default()
    };
    let peer = SourceConfig {
        kind: SourceKind::Peer,
        ..sc
    };
    let mut sources = vec![(Target::Node(other), peer)];
    if upstream {
        sources.push((Target::Server(0), sc));
    }
    let mut c = ClientSpec {
        clock: ClockParams {
            initial_offset: seed_offset,
            freq_error: 50e-6,
            wander: 1e-9,
            ..Default::default()
        },
        sources,
        ..Default::default()
    };
    c.engine.reference = ReferenceConfig {
        local: Some(LocalConfig {
            distance: DISTANCE,
            orphan: true,
            ..LocalConfig::default()
        }),
        ..Default::default()
    };
    c
}

fn served(w: &World, node: usize) -> Served {
    let (Some(e), Some(c)) = (w.engine(node), w.clock(node)) else {
        return Served {
            stratum: 0,
            reference_id: 0,
            local: false,
            offset: f64::NAN,
        };
    };
    let r = e.reference();
    Served {
        stratum: r.stratum(),
        reference_id: r.reference_id(),
        local: r.local_active(),
        offset: c.reading() - c.true_time(),
    }
}

/// Runs the pair with `seed`; with `upstream`, a server both follow until it stops answering
/// at [`UPSTREAM_LOST`].
pub fn run(upstream: bool, seed: u64) -> OrphanOutcome {
    let servers = if upstream {
        vec![SimServer {
            link: Link {
                outages: vec![(START + UPSTREAM_LOST, START + DURATION + 1.0)],
                ..Default::default()
            },
            ..Default::default()
        }]
    } else {
        Vec::new()
    };
    // Different start offsets: without a common reference they would visibly disagree.
    let clients = vec![spec(upstream, 1, 0.05), spec(upstream, 0, -0.05)];
    let mut w = World::new(START, servers, HashMap::new(), clients, Vec::new(), seed);
    let with_upstream = upstream.then(|| {
        w.run_until(START + UPSTREAM_LOST - 1.0);
        [served(&w, 0), served(&w, 1)]
    });
    w.run_until(START + DURATION);
    OrphanOutcome {
        with_upstream,
        end: [served(&w, 0), served(&w, 1)],
    }
}

/// Reference ID of client `i` (its IPv4 address).
pub fn refid_of(i: usize) -> u32 {
    match node_addr(i).ip() {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(_) => 0,
    }
}

/// Checks an outcome: with the upstream both followed it (stratum 2 or 3, not local); at the
/// end client 0 serves its local reference at stratum 10 and client 1 follows it at stratum
/// 11 within `max_offset` seconds of it.
pub fn check(o: &OrphanOutcome, max_offset: f64) -> Result<(), String> {
    if let Some(before) = o.with_upstream {
        for (i, s) in before.iter().enumerate() {
            if s.local || !(2..=3).contains(&s.stratum) {
                return Err(format!("client {i} before the upstream loss: {s:?}"));
            }
        }
    }
    let [a, b] = o.end;
    if !a.local || a.stratum != 10 || a.reference_id != LOCAL_REFERENCE_ID {
        return Err(format!(
            "client 0 does not serve the local reference: {a:?}"
        ));
    }
    if b.local || b.stratum != 11 || b.reference_id != refid_of(0) {
        return Err(format!("client 1 does not follow client 0: {b:?}"));
    }
    if (a.offset - b.offset).abs() > max_offset {
        return Err(format!(
            "client 1 is {:.3e} s from client 0 (limit {max_offset:.1e})",
            b.offset - a.offset
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_refid_serves_and_the_other_follows_without_upstream() {
        for seed in [1, 2, 3] {
            let o = run(false, seed);
            if let Err(e) = check(&o, 1e-3) {
                panic!("seed {seed}: {e}");
            }
        }
    }

    #[test]
    fn orphan_pair_keeps_a_common_reference_after_the_upstream_is_lost() {
        for seed in [1, 2, 3] {
            let o = run(true, seed);
            if let Err(e) = check(&o, 1e-3) {
                panic!("seed {seed}: {e}");
            }
        }
    }
}
