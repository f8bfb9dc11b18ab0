//! Orphan mode (`local ... orphan`, chrony.conf): sources whose stratum is at or above the
//! local stratum are assumed not to serve real time — they are other members of the orphan
//! group, serving their own local reference or following one. They are ignored unless no
//! other source is selectable and their reference ID is smaller than ours, so that of a group
//! of servers with the same `local` configuration polling one another only the one with the
//! smallest reference ID keeps its local reference active and the others synchronise to it
//! (one stratum below it). When that server stops responding the next smallest takes over once
//! its own local reference activates (`local distance`).

use super::Candidate;
use crate::reports::SourceState;

/// The orphan rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orphan {
    /// `local stratum`: sources at this stratum or above are orphan-group members.
    pub stratum: u8,
    /// Our reference ID (the refid of the address we talk to the group from); `None` while
    /// unknown, when no group member can be smaller than us and all are ignored.
    pub local_refid: Option<u32>,
}

impl Orphan {
    /// The rule for a `local` directive: `None` without `local` or without `orphan`.
    pub fn from_local(local: Option<crate::reference::LocalConfig>) -> Option<Orphan> {
        local.filter(|l| l.orphan).map(|l| Orphan {
            stratum: l.stratum,
            local_refid: None,
        })
    }

    /// True when `c` is a member of the orphan group (by its stratum).
    pub fn is_member(&self, c: &Candidate) -> bool {
        c.stratum >= self.stratum
    }

    /// Marks unselectable the group members selection must not use: all of them when another
    /// source is selectable, otherwise those whose reference ID is not smaller than ours.
    /// `states[i]` belongs to `candidates[i]`. Returns the indices held back (chronyd's `O`
    /// in `selectdata`).
    pub fn hold_back(
        &self,
        candidates: &[Candidate],
        states: &mut [(usize, SourceState)],
    ) -> Vec<usize> {
        let usable = |s: SourceState| matches!(s, SourceState::NotCombined | SourceState::Jittery);
        let other_selectable = candidates
            .iter()
            .zip(states.iter())
            .any(|(c, s)| s.1 == SourceState::NotCombined && !self.is_member(c));
        let mut held = Vec::new();
        for (i, (c, s)) in candidates.iter().zip(states.iter_mut()).enumerate() {
            if !usable(s.1) || !self.is_member(c) {
                continue;
            }
            let smaller = self.local_refid.is_some_and(|ours| c.reference_id < ours);
            if other_selectable || !smaller {
                s.1 = SourceState::Unselectable;
                held.push(i);
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::tests::cand;

    fn member(id: usize, refid: u32, stratum: u8) -> Candidate {
        Candidate {
            reference_id: refid,
            stratum,
            ..cand(id, 0.0, 0.01)
        }
    }

    fn states(cs: &[Candidate]) -> Vec<(usize, SourceState)> {
        cs.iter()
            .map(|c| (c.id, SourceState::NotCombined))
            .collect()
    }

    const US: u32 = 0x7F00_0003;

    fn orphan() -> Orphan {
        Orphan {
            stratum: 10,
            local_refid: Some(US),
        }
    }

    #[test]
    fn member_with_smaller_refid_is_used_when_alone() {
        let cs = [member(0, 0x7F00_0002, 10)];
        let mut st = states(&cs);
        orphan().hold_back(&cs, &mut st);
        assert_eq!(st[0].1, SourceState::NotCombined);
    }

    #[test]
    fn member_with_larger_or_equal_refid_is_ignored() {
        let cs = [member(0, 0x7F00_0004, 10), member(1, US, 11)];
        let mut st = states(&cs);
        orphan().hold_back(&cs, &mut st);
        assert_eq!(st[0].1, SourceState::Unselectable);
        assert_eq!(st[1].1, SourceState::Unselectable);
    }

    #[test]
    fn members_are_ignored_while_a_real_source_is_selectable() {
        let cs = [member(0, 0x7F00_0002, 10), member(1, 0xC000_0201, 2)];
        let mut st = states(&cs);
        orphan().hold_back(&cs, &mut st);
        assert_eq!(st[0].1, SourceState::Unselectable);
        assert_eq!(st[1].1, SourceState::NotCombined);
    }

    #[test]
    fn an_unselectable_real_source_does_not_hold_members_back() {
        let cs = [member(0, 0x7F00_0002, 10), member(1, 0xC000_0201, 2)];
        let mut st = states(&cs);
        st[1].1 = SourceState::Unselectable;
        orphan().hold_back(&cs, &mut st);
        assert_eq!(st[0].1, SourceState::NotCombined);
    }

    #[test]
    fn follower_of_a_member_counts_as_member() {
        // Stratum 11: it follows the group's server; still a member, used only by refid.
        let cs = [member(0, 0x7F00_0001, 11)];
        let mut st = states(&cs);
        orphan().hold_back(&cs, &mut st);
        assert_eq!(st[0].1, SourceState::NotCombined);
    }

    #[test]
    fn selector_follows_the_smaller_member_only_once_it_knows_our_refid() {
        let mut sel = crate::selection::Selector::default();
        sel.set_orphan(Orphan::from_local(Some(crate::reference::LocalConfig {
            orphan: true,
            ..Default::default()
        })));
        let cs = [member(0, 0x7F00_0002, 10), member(1, 0x7F00_0004, 10)];
        assert!(sel.select(&cs).outcome.is_err());
        sel.learn_local_refid(Some(US));
        let out = sel.select(&cs);
        assert_eq!(out.outcome.map(|c| c.selected), Ok(0));
        assert_eq!(out.states[1].1, SourceState::Unselectable);
    }

    #[test]
    fn without_orphan_option_members_are_ordinary_sources() {
        assert_eq!(
            Orphan::from_local(Some(crate::reference::LocalConfig::default())),
            None
        );
    }

    #[test]
    fn unknown_local_refid_ignores_every_member() {
        let cs = [member(0, 1, 10)];
        let mut st = states(&cs);
        Orphan {
            stratum: 10,
            local_refid: None,
        }
        .hold_back(&cs, &mut st);
        assert_eq!(st[0].1, SourceState::Unselectable);
    }
}
