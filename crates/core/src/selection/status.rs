//! Why each source ended a selection round where it did: chronyc `selectdata`'s state column
//! (chronyc(1), "S"), finer than the `sources` state ([`SourceState`]).
//!
//! chronyd 4.3 as observed black-box with `chronyd -x` clients of loopback servers: the
//! non-`prefer` sources beside a selected `prefer` one show `P` (`sources`: `-`); with a
//! `trust` source, the others whose interval does not lie inside the trusted sources'
//! agreement show `T` (`sources`: `?`); `minsources` above the truechimers, or a `require`
//! source missing, leaves the truechimers in `W` (`-`); orphan-group members held back show
//! `O` (`?`); a root distance above `maxdistance` shows `d` (`?`). The states chronyd reports
//! for causes the selection does not know (`N` noselect, `s` unsynchronised, `M` too few
//! samples) are left to the caller ([`SelectStatus::Unusable`]). chronyd's transient `w`,
//! `S` and `U` were never seen in those runs and are not produced.

use crate::reports::SourceState;

/// A source's standing after a selection round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectStatus {
    /// Not usable before selection looks at it (unreachable, noselect, too few samples …):
    /// the caller knows which (`N`, `s`, `M`).
    Unusable,
    /// `d`: root distance above `maxdistance`.
    TooFar,
    /// `~`: jitter above `maxjitter`.
    Jittery,
    /// `O`: a member of the orphan group held back (stratum at or above `local stratum`).
    Orphan,
    /// `T`: does not fully agree with the `trust` sources.
    Untrusted,
    /// `x`: a falseticker.
    Falseticker,
    /// `W`: a truechimer waiting for other sources (`minsources`, a `require` source).
    Waiting,
    /// `P`: a truechimer passed over for a `prefer` source.
    NotPreferred,
    /// `D`: a truechimer too far from the selected source to be combined.
    Distant,
    /// `+`: combined with the selected source.
    Combined,
    /// `*`: the selected source.
    Selected,
}

impl SelectStatus {
    /// chronyc's letter; `None` for [`SelectStatus::Unusable`], which the caller refines.
    pub fn letter(self) -> Option<char> {
        Some(match self {
            SelectStatus::Unusable => return None,
            SelectStatus::TooFar => 'd',
            SelectStatus::Jittery => '~',
            SelectStatus::Orphan => 'O',
            SelectStatus::Untrusted => 'T',
            SelectStatus::Falseticker => 'x',
            SelectStatus::Waiting => 'W',
            SelectStatus::NotPreferred => 'P',
            SelectStatus::Distant => 'D',
            SelectStatus::Combined => '+',
            SelectStatus::Selected => '*',
        })
    }

    /// The status a source's final `sources` state implies unless selection recorded a more
    /// specific reason: the outcome states win (a source marked waiting and then selected is
    /// selected).
    pub(crate) fn settle(self, state: SourceState) -> SelectStatus {
        match state {
            SourceState::Selected => SelectStatus::Selected,
            SourceState::Combined => SelectStatus::Combined,
            SourceState::Falseticker => SelectStatus::Falseticker,
            SourceState::Jittery => SelectStatus::Jittery,
            SourceState::NotCombined | SourceState::Unselectable => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::tests::cand;
    use crate::selection::{Candidate, NoSelection, SelectionConfig, Selector};

    fn status(sel: &crate::selection::Selection, id: usize) -> SelectStatus {
        sel.status.iter().find(|s| s.0 == id).unwrap().1
    }

    #[test]
    fn non_prefer_truechimers_are_passed_over_as_p() {
        let mut s = Selector::default();
        let mut p = cand(1, 0.0, 0.02);
        p.options.prefer = true;
        let r = s.select(&[cand(0, 0.0, 0.01), p, cand(2, 0.0, 0.01)]);
        assert_eq!(r.outcome.unwrap().selected, 1);
        assert_eq!(status(&r, 0), SelectStatus::NotPreferred);
        assert_eq!(status(&r, 2), SelectStatus::NotPreferred);
        assert_eq!(r.states[0].1, SourceState::NotCombined, "`-` in sources");
        assert_eq!(s.last_status(0), Some(SelectStatus::NotPreferred));
        assert_eq!(s.last_status(1), Some(SelectStatus::Selected));
        assert_eq!(s.last_status(7), None);
    }

    #[test]
    fn untrusted_sources_outside_the_trusted_interval_are_t() {
        // Narrow trusted source: the wider others overlap it but are not inside it.
        let mut s = Selector::default();
        let mut t = cand(1, 0.0, 0.001);
        t.options.trust = true;
        let r = s.select(&[cand(0, 0.0, 0.01), t, cand(2, 0.0005, 0.01)]);
        assert_eq!(r.outcome.unwrap().selected, 1);
        assert_eq!(status(&r, 0), SelectStatus::Untrusted);
        assert_eq!(status(&r, 2), SelectStatus::Untrusted);
        assert_eq!(r.states[0].1, SourceState::Unselectable, "`?` in sources");
        // A wide trusted source keeps the narrow ones inside it (chronyd selects them).
        let mut wide = cand(1, 0.0, 0.05);
        wide.options.trust = true;
        let r = s.select(&[cand(0, 0.001, 0.001), wide, cand(2, 0.0, 0.001)]);
        assert!(matches!(r.outcome, Ok(c) if c.selected != 1));
        assert_eq!(status(&r, 1), SelectStatus::Distant);
        // One not overlapping at all is a falseticker.
        let r = s.select(&[cand(0, 0.5, 0.001), wide]);
        assert_eq!(status(&r, 0), SelectStatus::Falseticker);
    }

    #[test]
    fn truechimers_short_of_minsources_or_a_required_source_wait_as_w() {
        let mut s = Selector::new(SelectionConfig {
            min_sources: 3,
            ..Default::default()
        });
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.01)]);
        assert!(matches!(r.outcome, Err(NoSelection::TooFewSources { .. })));
        assert_eq!(status(&r, 0), SelectStatus::Waiting);
        assert_eq!(r.states[0].1, SourceState::NotCombined, "`-` in sources");
        let mut s = Selector::default();
        let mut required = Candidate {
            usable: false,
            ..cand(2, 0.0, 0.01)
        };
        required.options.require = true;
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.01), required]);
        assert_eq!(r.outcome, Err(NoSelection::RequiredSourceMissing));
        assert_eq!(status(&r, 1), SelectStatus::Waiting);
        assert_eq!(status(&r, 2), SelectStatus::Unusable);
    }

    #[test]
    fn orphan_members_held_back_are_o_and_far_sources_d() {
        let mut s = Selector::new(SelectionConfig {
            max_distance: 0.5,
            ..Default::default()
        });
        s.set_orphan(Some(crate::selection::Orphan {
            stratum: 3,
            local_refid: None,
        }));
        let member = Candidate {
            stratum: 3,
            ..cand(1, 0.0, 0.01)
        };
        let r = s.select(&[cand(0, 0.0, 0.01), member, cand(2, 0.0, 0.9)]);
        assert_eq!(status(&r, 0), SelectStatus::Selected);
        assert_eq!(status(&r, 1), SelectStatus::Orphan);
        assert_eq!(status(&r, 2), SelectStatus::TooFar);
        assert_eq!(r.states[1].1, SourceState::Unselectable);
        assert_eq!(r.states[2].1, SourceState::Unselectable);
    }

    #[test]
    fn orphan_rule_set_at_run_time_uses_the_refid_learnt_before() {
        let mut s = Selector::default();
        s.learn_local_refid(Some(0x7F00_0003));
        s.set_orphan(Some(crate::selection::Orphan {
            stratum: 10,
            local_refid: None,
        }));
        assert_eq!(s.orphan().and_then(|o| o.local_refid), Some(0x7F00_0003));
        let smaller = Candidate {
            stratum: 10,
            reference_id: 0x7F00_0002,
            ..cand(0, 0.0, 0.01)
        };
        assert_eq!(s.select(&[smaller]).outcome.map(|c| c.selected), Ok(0));
        s.set_orphan(None);
        assert_eq!(s.orphan(), None);
    }

    #[test]
    fn letters_are_chronycs() {
        let all = [
            (SelectStatus::TooFar, 'd'),
            (SelectStatus::Jittery, '~'),
            (SelectStatus::Orphan, 'O'),
            (SelectStatus::Untrusted, 'T'),
            (SelectStatus::Falseticker, 'x'),
            (SelectStatus::Waiting, 'W'),
            (SelectStatus::NotPreferred, 'P'),
            (SelectStatus::Distant, 'D'),
            (SelectStatus::Combined, '+'),
            (SelectStatus::Selected, '*'),
        ];
        for (s, c) in all {
            assert_eq!(s.letter(), Some(c));
        }
        assert_eq!(SelectStatus::Unusable.letter(), None);
    }

    #[test]
    fn outcome_states_override_recorded_reasons() {
        let w = SelectStatus::Waiting;
        assert_eq!(w.settle(SourceState::Selected), SelectStatus::Selected);
        assert_eq!(w.settle(SourceState::Combined), SelectStatus::Combined);
        assert_eq!(w.settle(SourceState::NotCombined), w);
        assert_eq!(
            SelectStatus::Orphan.settle(SourceState::Unselectable),
            SelectStatus::Orphan
        );
    }
}
