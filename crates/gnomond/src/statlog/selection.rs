//! The entries of one `selection.log` round: every source's state, options, reachability,
//! score, sample age and offset interval after a source selection, in the order chronyd 4.3
//! writes them.
//!
//! Observed black-box with chronyd 4.3 (`log selection`, three to five loopback sources):
//! * a round is written at every selection, and each sample triggers one;
//! * the sources found unselectable before the interval search (`N`, `s`, `M`, `~`, `x`,
//!   ...) come first, in source order, then the selectable ones (`*`, `+`, `D`), again in
//!   source order (so `*` is not always last: `* 127.0.0.1` precedes `D 127.0.0.2`);
//! * `noselect` (`N`) and unsynchronised (`s`) sources show 0 for the sample age and the
//!   interval; a source with samples shows them even while it is still `M`; one without
//!   any sample shows zeros whatever its reachability.
//!
//! chronyd's reselection score (always 1.00 in every captured line of these runs) is not
//! modelled by the engine, and states it does not distinguish (`w`, `W`, `S`, `P`, `T`, `U`,
//! `d`, `O`) show as the nearest state the engine reports.

use gnomon_core::association::Engine;
use gnomon_core::local_clock::ClockDriver;

use super::format::SelectionLine;

/// States of sources chronyd counts as selectable (written after the others).
fn selectable(state: char) -> bool {
    matches!(state, '*' | '+' | 'D' | 'W' | 'P' | 'U')
}

/// State letters of sources chronyd logs without a sample age or interval.
fn without_values(state: char) -> bool {
    matches!(state, 'N' | 's')
}

/// The entries of a selection round at driver time `now`, in chronyd's order.
pub fn round(engine: &Engine, now: f64, clock: &dyn ClockDriver) -> Vec<SelectionLine> {
    let select = engine.select_data(now, clock);
    let sources = engine.sources(now, clock);
    let ages = engine.last_sample_ages(now, clock);
    // All three list the sources in the same (source) order; look up by id all the same,
    // so a mismatch can only cost a value, never a wrong pairing.
    let reach_of = |i: usize, id| {
        sources
            .get(i)
            .filter(|(sid, _)| *sid == id)
            .or_else(|| sources.iter().find(|(sid, _)| *sid == id))
            .map_or(0, |(_, s)| s.reach)
    };
    let age_of = |i: usize, id| {
        ages.get(i)
            .filter(|(sid, _)| *sid == id)
            .or_else(|| ages.iter().find(|(sid, _)| *sid == id))
            .and_then(|(_, a)| *a)
    };
    let lines: Vec<SelectionLine> = select
        .iter()
        .enumerate()
        .map(|(i, (id, r))| {
            let age = age_of(i, *id);
            let shown = !without_values(r.state) && age.is_some();
            SelectionLine {
                addr: r.remote.ip(),
                state: r.state,
                options: r.effective,
                reach: reach_of(i, *id),
                score: r.score,
                last_sample: if shown { age.unwrap_or(0.0) } else { 0.0 },
                lo_limit: if shown { r.lo_limit } else { 0.0 },
                hi_limit: if shown { r.hi_limit } else { 0.0 },
            }
        })
        .collect();
    let (first, then): (Vec<_>, Vec<_>) = lines.into_iter().partition(|l| !selectable(l.state));
    first.into_iter().chain(then).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unselectable_states_are_written_before_selectable_ones() {
        for s in ['N', 's', 'M', '~', 'x', '?', 'd', 'w', 'S', 'O', 'T'] {
            assert!(!selectable(s), "{s}");
        }
        for s in ['*', '+', 'D'] {
            assert!(selectable(s), "{s}");
        }
    }

    #[test]
    fn noselect_and_unsynchronised_sources_show_no_values() {
        assert!(without_values('N') && without_values('s'));
        assert!(!without_values('M') && !without_values('*') && !without_values('x'));
    }
}
