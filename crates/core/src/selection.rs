//! Source selection: which sources are truechimers, which one is the synchronisation source and
//! how the good ones are combined into one reference estimate.
//!
//! Follows chrony's selection (chrony.conf `maxdistance`, `maxjitter`, `minsources`,
//! `combinelimit`, `reselectdist`, `stratumweight`, source options `prefer`, `noselect`,
//! `trust`, `require`) and RFC 5905 §11.2.1's intersection: every selectable source gives an
//! interval `offset ± root distance`; the region covered by the most intervals must be covered
//! by more than half of the sources ("no majority" otherwise), and sources missing it are
//! falsetickers. Sources with `trust` are intersected among themselves first, so only another
//! trusted source can make them falsetickers. The selected source is the truechimer with the
//! smallest distance plus `stratumweight` per stratum, with `reselectdist` of hysteresis; the
//! truechimers within `combinelimit` × its distance and with a compatible frequency are
//! averaged with weights 1/distance. `local ... orphan` holds back the orphan group's members
//! first (see [`orphan`]). Every round also says why each source stands where it does
//! (chronyc `selectdata`'s states, see [`status`]).

pub mod orphan;
pub mod status;

pub use orphan::Orphan;
pub use status::SelectStatus;

use crate::local_clock::LeapState;
use crate::reports::SourceState;

/// Selection directives (chrony defaults in [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectionConfig {
    /// `maxdistance`: largest root distance of a selectable source, seconds.
    pub max_distance: f64,
    /// `maxjitter`: largest standard deviation of a selectable source, seconds.
    pub max_jitter: f64,
    /// `minsources`: truechimers needed before the clock is updated.
    pub min_sources: usize,
    /// `combinelimit`: distance ratio within which sources are combined.
    pub combine_limit: f64,
    /// `reselectdist`: distance penalty of sources other than the current one, seconds.
    pub reselect_dist: f64,
    /// `stratumweight`: distance added per stratum, seconds.
    pub stratum_weight: f64,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        SelectionConfig {
            max_distance: 3.0,
            max_jitter: 1.0,
            min_sources: 1,
            combine_limit: 3.0,
            reselect_dist: 1e-4,
            stratum_weight: 1e-3,
        }
    }
}

/// `authselectmode` (chrony.conf): default selection options for authenticated and
/// unauthenticated NTP sources. Sources with `noselect` are counted as neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthSelectMode {
    /// Unauthenticated sources get `noselect`.
    Require,
    /// Unauthenticated sources get `noselect` when at least one source is authenticated.
    Prefer,
    /// With both kinds present, authenticated sources get `require` and `trust` (default).
    #[default]
    Mix,
    /// Only the configured options.
    Ignore,
}

impl AuthSelectMode {
    /// Parses the directive's argument.
    pub fn from_name(name: &str) -> Option<AuthSelectMode> {
        match name {
            "require" => Some(AuthSelectMode::Require),
            "prefer" => Some(AuthSelectMode::Prefer),
            "mix" => Some(AuthSelectMode::Mix),
            "ignore" => Some(AuthSelectMode::Ignore),
            _ => None,
        }
    }

    /// The options a source selects with: `configured` adjusted for whether it is
    /// `authenticated` and whether any (selectable-configured) authenticated and
    /// unauthenticated sources exist.
    pub fn adjust(
        self,
        configured: SelectOptions,
        authenticated: bool,
        any_authenticated: bool,
        any_unauthenticated: bool,
    ) -> SelectOptions {
        if configured.noselect {
            return configured;
        }
        let mut o = configured;
        match self {
            AuthSelectMode::Require if !authenticated => o.noselect = true,
            AuthSelectMode::Prefer if !authenticated && any_authenticated => o.noselect = true,
            AuthSelectMode::Mix if authenticated && any_unauthenticated => {
                o.require = true;
                o.trust = true;
            }
            _ => {}
        }
        o
    }
}

/// Per-source selection options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SelectOptions {
    /// `prefer`: choose this source over others when it is a truechimer.
    pub prefer: bool,
    /// `noselect`: never select (still measured and shown).
    pub noselect: bool,
    /// `trust`: only another trusted source can reject it.
    pub trust: bool,
    /// `require`: no update unless at least one required source is a truechimer.
    pub require: bool,
}

/// What selection needs to know about a source, at the current time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Caller's identifier, echoed in the result.
    pub id: usize,
    /// Not usable yet but expected to be soon (reachable and collecting its first samples):
    /// it counts towards the majority, so that the first sources to answer cannot outvote
    /// the rest at start.
    pub pending: bool,
    /// False when the source cannot be used at all (unreachable, too few samples, stratum or
    /// leap unusable, synchronisation loop …).
    pub usable: bool,
    /// Estimated offset now (local minus source), seconds.
    pub offset: f64,
    /// Standard error of `offset`, seconds.
    pub offset_sd: f64,
    /// Root distance of the source now, seconds (the half-width of its interval).
    pub root_distance: f64,
    /// Standard deviation of its samples (jitter), seconds.
    pub std_dev: f64,
    /// Residual frequency of the local clock against it (dimensionless).
    pub frequency: f64,
    /// Error bound of `frequency` (dimensionless).
    pub skew: f64,
    /// Root delay of the source plus ours, seconds.
    pub root_delay: f64,
    /// Root dispersion of the source plus ours, seconds.
    pub root_dispersion: f64,
    /// Stratum of the source.
    pub stratum: u8,
    /// Leap warning the source announces.
    pub leap: LeapState,
    /// Reference ID the selected source gives us.
    pub reference_id: u32,
    /// Selection options.
    pub options: SelectOptions,
}

/// Why no reference could be formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSelection {
    /// No source is selectable.
    NoSelectableSources,
    /// The largest agreeing group is not a majority ("Can't synchronise: no majority").
    NoMajority,
    /// Fewer truechimers than `minsources`.
    TooFewSources {
        /// Truechimers found.
        have: usize,
        /// `minsources`.
        need: usize,
    },
    /// Sources with `require` exist but none is a truechimer.
    RequiredSourceMissing,
}

impl core::fmt::Display for NoSelection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NoSelection::NoSelectableSources => {
                write!(f, "Can't synchronise: no selectable sources")
            }
            NoSelection::NoMajority => write!(f, "Can't synchronise: no majority"),
            NoSelection::TooFewSources { have, need } => write!(
                f,
                "Can't synchronise: not enough selectable sources ({have} of {need})"
            ),
            NoSelection::RequiredSourceMissing => {
                write!(f, "Can't synchronise: no required source selectable")
            }
        }
    }
}

/// The combined reference estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    /// `id` of the selected source.
    pub selected: usize,
    /// Combined offset (local minus true), seconds.
    pub offset: f64,
    /// Its standard error, seconds.
    pub offset_sd: f64,
    /// Combined residual frequency (dimensionless).
    pub frequency: f64,
    /// Combined frequency error bound (dimensionless).
    pub skew: f64,
    /// Root delay of the selected source, seconds.
    pub root_delay: f64,
    /// Root dispersion of the selected source, seconds.
    pub root_dispersion: f64,
    /// Stratum of the selected source.
    pub stratum: u8,
    /// Reference ID of the selected source.
    pub reference_id: u32,
    /// Leap warning by majority of the truechimers.
    pub leap: LeapState,
    /// Number of sources combined (including the selected one).
    pub combined: usize,
}

/// Result of one selection round.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// `(id, state)` for every candidate, in input order.
    pub states: Vec<(usize, SourceState)>,
    /// `(id, status)` for every candidate, in input order: why it has its state
    /// (`selectdata`'s finer states, see [`status`]).
    pub status: Vec<(usize, SelectStatus)>,
    /// The reference estimate, or why there is none.
    pub outcome: Result<Combined, NoSelection>,
}

/// Selection with memory of the current synchronisation source (for `reselectdist`).
#[derive(Debug, Clone, Default)]
pub struct Selector {
    config: SelectionConfig,
    current: Option<usize>,
    orphan: Option<Orphan>,
    /// Our reference ID as the sources see it, learnt whether or not orphan mode is on, so
    /// that orphan mode switched on at run time (`local ... orphan`) knows it at once.
    local_refid: Option<u32>,
    /// The last round's statuses, in candidate order (for `selectdata`).
    last_status: Vec<(usize, SelectStatus)>,
}

impl Selector {
    /// chronyc `reselectdist DISTANCE` at run time.
    pub fn set_reselect_distance(&mut self, distance: f64) {
        if distance.is_finite() && distance >= 0.0 {
            self.config.reselect_dist = distance;
        }
    }

    /// A selector with the given directives.
    pub fn new(config: SelectionConfig) -> Self {
        Selector {
            config,
            ..Selector::default()
        }
    }

    /// `local ... orphan`: the orphan rule applied before every selection (`None`: off).
    /// Can change at run time (chronyc `local`); a rule without a reference ID takes the one
    /// already learnt.
    pub fn set_orphan(&mut self, orphan: Option<Orphan>) {
        self.orphan = orphan.map(|o| Orphan {
            local_refid: o.local_refid.or(self.local_refid),
            ..o
        });
    }

    /// The orphan rule in force.
    pub fn orphan(&self) -> Option<Orphan> {
        self.orphan
    }

    /// Records our reference ID as a source sees it (the refid of the local address a packet
    /// came in on), for the orphan rule's comparison; `None` (not known) keeps the last one.
    pub fn learn_local_refid(&mut self, local_refid: Option<u32>) {
        let Some(r) = local_refid else {
            return;
        };
        self.local_refid = Some(r);
        if let Some(o) = self.orphan.as_mut() {
            o.local_refid = Some(r);
        }
    }

    /// The directives.
    pub fn config(&self) -> &SelectionConfig {
        &self.config
    }

    /// `id` of the current synchronisation source.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The status candidate `id` had after the last round (`None`: not in it).
    pub fn last_status(&self, id: usize) -> Option<SelectStatus> {
        // Candidates come in source order (increasing ids): a binary search, with a scan for
        // callers that pass them otherwise.
        match self.last_status.binary_search_by_key(&id, |s| s.0) {
            Ok(i) => self.last_status.get(i).map(|s| s.1),
            Err(_) => self.last_status.iter().find(|s| s.0 == id).map(|s| s.1),
        }
    }

    /// Runs one selection over `candidates`.
    pub fn select(&mut self, candidates: &[Candidate]) -> Selection {
        let (states, status, outcome) = self.run(candidates);
        let status: Vec<(usize, SelectStatus)> = states
            .iter()
            .zip(status)
            .map(|(s, st)| (s.0, st.settle(s.1)))
            .collect();
        self.last_status.clone_from(&status);
        if outcome.is_err() {
            self.current = None;
        }
        Selection {
            states,
            status,
            outcome,
        }
    }

    /// One round: the `sources` states, the reasons (`status[i]` for `candidates[i]`, before
    /// the outcome states settle them) and the outcome.
    fn run(&mut self, candidates: &[Candidate]) -> Round {
        let cfg = self.config;
        let (mut states, mut status): (Vec<(usize, SourceState)>, Vec<SelectStatus>) = candidates
            .iter()
            .map(|c| {
                if !c.usable
                    || c.options.noselect
                    || !c.offset.is_finite()
                    || c.root_distance.is_nan()
                {
                    ((c.id, SourceState::Unselectable), SelectStatus::Unusable)
                } else if c.root_distance > cfg.max_distance {
                    ((c.id, SourceState::Unselectable), SelectStatus::TooFar)
                } else if c.std_dev.is_nan() || c.std_dev > cfg.max_jitter {
                    ((c.id, SourceState::Jittery), SelectStatus::Jittery)
                } else {
                    ((c.id, SourceState::NotCombined), SelectStatus::Distant)
                }
            })
            .unzip();
        if let Some(orphan) = self.orphan {
            for i in orphan.hold_back(candidates, &mut states) {
                if status[i] == SelectStatus::Distant {
                    status[i] = SelectStatus::Orphan;
                }
            }
        }
        let selectable: Vec<usize> = (0..candidates.len())
            .filter(|&i| states[i].1 == SourceState::NotCombined)
            .collect();
        if selectable.is_empty() {
            return (states, status, Err(NoSelection::NoSelectableSources));
        }

        // Sources still starting count in the majority's denominator.
        let voters = selectable.len()
            + candidates
                .iter()
                .filter(|c| c.pending && !c.options.noselect)
                .count();
        let trusted: Vec<usize> = selectable
            .iter()
            .copied()
            .filter(|&i| candidates[i].options.trust)
            .collect();
        let trusted_region = if trusted.is_empty() {
            None
        } else {
            best_region(candidates, &trusted).filter(|r| 2 * r.depth > trusted.len())
        };
        let region = if !trusted.is_empty() {
            trusted_region.or_else(|| {
                best_region(candidates, &selectable).filter(|r| 2 * r.depth > selectable.len())
            })
        } else {
            best_region(candidates, &selectable).filter(|r| 2 * r.depth > voters)
        };
        let Some(region) = region else {
            for &i in &selectable {
                states[i].1 = SourceState::Falseticker;
            }
            return (states, status, Err(NoSelection::NoMajority));
        };
        let mut truechimers = Vec::new();
        for &i in &selectable {
            let c = &candidates[i];
            let (low, high) = (c.offset - c.root_distance, c.offset + c.root_distance);
            if high < region.low || low > region.high {
                states[i].1 = SourceState::Falseticker;
            } else if trusted_region.is_some()
                && !c.options.trust
                && (low < region.low || high > region.high)
            {
                // chronyd's `T`: with trusted sources agreeing, another source is used only
                // when its whole interval lies inside their agreement (a wide trusted source
                // keeps narrow ones; narrow trusted ones reject the wider rest).
                states[i].1 = SourceState::Unselectable;
                status[i] = SelectStatus::Untrusted;
            } else {
                truechimers.push(i);
            }
        }

        let any_required = candidates.iter().any(|c| c.options.require);
        let missing = if any_required && !truechimers.iter().any(|&i| candidates[i].options.require)
        {
            Some(NoSelection::RequiredSourceMissing)
        } else if truechimers.len() < cfg.min_sources {
            Some(NoSelection::TooFewSources {
                have: truechimers.len(),
                need: cfg.min_sources,
            })
        } else {
            None
        };
        if let Some(reason) = missing {
            for &i in &truechimers {
                status[i] = SelectStatus::Waiting;
            }
            return (states, status, Err(reason));
        }

        // Prefer sources restrict the choice when any is a truechimer.
        let pool: Vec<usize> = if truechimers.iter().any(|&i| candidates[i].options.prefer) {
            for &i in &truechimers {
                if !candidates[i].options.prefer {
                    status[i] = SelectStatus::NotPreferred;
                }
            }
            truechimers
                .iter()
                .copied()
                .filter(|&i| candidates[i].options.prefer)
                .collect()
        } else {
            truechimers.clone()
        };
        let score = |i: usize| {
            let c = &candidates[i];
            let mut s = c.root_distance + cfg.stratum_weight * f64::from(c.stratum);
            if self.current != Some(c.id) {
                s += cfg.reselect_dist;
            }
            s
        };
        let Some(best) = pool
            .iter()
            .copied()
            .min_by(|&a, &b| score(a).total_cmp(&score(b)))
        else {
            return (states, status, Err(NoSelection::NoSelectableSources));
        };
        let sel = &candidates[best];
        self.current = Some(sel.id);
        states[best].1 = SourceState::Selected;

        let combined = combine(
            candidates,
            &truechimers,
            best,
            cfg.combine_limit,
            &mut states,
        );
        let leap = leap_vote(candidates, &truechimers);
        (states, status, Ok(Combined { leap, ..combined }))
    }
}

/// What one round gives before its statuses settle: states, reasons, outcome.
type Round = (
    Vec<(usize, SourceState)>,
    Vec<SelectStatus>,
    Result<Combined, NoSelection>,
);

#[derive(Debug, Clone, Copy)]
struct Region {
    low: f64,
    high: f64,
    depth: usize,
}

/// The region covered by the most intervals (Marzullo's sweep), among `members`.
fn best_region(candidates: &[Candidate], members: &[usize]) -> Option<Region> {
    // (position, +1 start / -1 end); starts sort before ends at equal positions so touching
    // intervals count as overlapping.
    let mut edges: Vec<(f64, i32)> = Vec::with_capacity(members.len() * 2);
    for &i in members {
        let c = &candidates[i];
        edges.push((c.offset - c.root_distance, 1));
        edges.push((c.offset + c.root_distance, -1));
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    let (mut depth, mut best) = (0i32, None::<Region>);
    for (k, &(pos, kind)) in edges.iter().enumerate() {
        depth += kind;
        if kind == 1 && best.is_none_or(|b| depth as usize > b.depth) {
            let high = edges[k + 1..]
                .iter()
                .find(|e| e.1 == -1)
                .map_or(pos, |e| e.0);
            best = Some(Region {
                low: pos,
                high,
                depth: depth as usize,
            });
        }
    }
    best
}

fn combine(
    candidates: &[Candidate],
    truechimers: &[usize],
    best: usize,
    limit: f64,
    states: &mut [(usize, SourceState)],
) -> Combined {
    let sel = &candidates[best];
    let (mut w_sum, mut off_sum, mut sd_sum) = (0.0, 0.0, 0.0);
    let (mut fw_sum, mut f_sum) = (0.0, 0.0);
    let mut count = 0;
    for &i in truechimers {
        let c = &candidates[i];
        let close_freq = (c.frequency - sel.frequency).abs()
            <= limit * (c.skew.powi(2) + sel.skew.powi(2)).sqrt();
        let ok = i == best
            || (c.root_distance <= limit * sel.root_distance
                && close_freq
                && (!sel.options.prefer || c.options.prefer));
        if !ok {
            continue;
        }
        if i != best {
            states[i].1 = SourceState::Combined;
        }
        count += 1;
        let w = 1.0 / c.root_distance.max(1e-9);
        w_sum += w;
        off_sum += w * c.offset;
        sd_sum += w * c.offset_sd.powi(2);
        let fw = 1.0 / c.skew.max(1e-12).powi(2);
        fw_sum += fw;
        f_sum += fw * c.frequency;
    }
    Combined {
        selected: sel.id,
        offset: off_sum / w_sum,
        offset_sd: (sd_sum / w_sum).sqrt(),
        frequency: f_sum / fw_sum,
        skew: (1.0 / fw_sum).sqrt(),
        root_delay: sel.root_delay,
        root_dispersion: sel.root_dispersion,
        stratum: sel.stratum,
        reference_id: sel.reference_id,
        leap: sel.leap,
        combined: count,
    }
}

/// Leap warning announced by more than half of the truechimers.
fn leap_vote(candidates: &[Candidate], truechimers: &[usize]) -> LeapState {
    let n = truechimers.len();
    let count = |l: LeapState| {
        truechimers
            .iter()
            .filter(|&&i| candidates[i].leap == l)
            .count()
    };
    if 2 * count(LeapState::Insert) > n {
        LeapState::Insert
    } else if 2 * count(LeapState::Delete) > n {
        LeapState::Delete
    } else {
        LeapState::Normal
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn cand(id: usize, offset: f64, dist: f64) -> Candidate {
        Candidate {
            id,
            pending: false,
            usable: true,
            offset,
            offset_sd: dist / 10.0,
            root_distance: dist,
            std_dev: dist / 10.0,
            frequency: 0.0,
            skew: 1e-7,
            root_delay: dist,
            root_dispersion: dist / 2.0,
            stratum: 2,
            leap: LeapState::Normal,
            reference_id: id as u32,
            options: SelectOptions::default(),
        }
    }

    fn state(sel: &Selection, id: usize) -> SourceState {
        sel.states.iter().find(|s| s.0 == id).unwrap().1
    }

    #[test]
    fn two_liars_among_five_are_falsetickers() {
        let mut s = Selector::default();
        let c = [
            cand(0, 0.001, 0.01),
            cand(1, -0.002, 0.01),
            cand(2, 0.0, 0.012),
            cand(3, 0.5, 0.01),
            cand(4, -0.7, 0.01),
        ];
        let r = s.select(&c);
        let comb = r.outcome.unwrap();
        assert_eq!(state(&r, 3), SourceState::Falseticker);
        assert_eq!(state(&r, 4), SourceState::Falseticker);
        assert!(comb.offset.abs() < 0.003);
        assert_eq!(comb.combined, 3);
    }

    #[test]
    fn three_liars_among_five_leave_no_majority() {
        let mut s = Selector::default();
        let c = [
            cand(0, 0.0, 0.01),
            cand(1, 0.001, 0.01),
            cand(2, 0.3, 0.01),
            cand(3, 0.6, 0.01),
            cand(4, -0.9, 0.01),
        ];
        let r = s.select(&c);
        assert_eq!(r.outcome, Err(NoSelection::NoMajority));
        assert_eq!(
            NoSelection::NoMajority.to_string(),
            "Can't synchronise: no majority"
        );
    }

    #[test]
    fn pending_sources_count_towards_the_majority() {
        let mut s = Selector::default();
        let mut p1 = cand(2, 0.0, 0.01);
        p1.usable = false;
        p1.pending = true;
        let p2 = Candidate { id: 3, ..p1 };
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.01), p1, p2]);
        assert_eq!(r.outcome, Err(NoSelection::NoMajority));
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.01), p1]);
        assert!(r.outcome.is_ok());
    }

    #[test]
    fn distance_and_jitter_limits_make_sources_unusable() {
        let mut s = Selector::default();
        let mut jittery = cand(1, 0.0, 0.01);
        jittery.std_dev = 2.0;
        let r = s.select(&[cand(0, 0.0, 4.0), jittery]);
        assert_eq!(state(&r, 0), SourceState::Unselectable);
        assert_eq!(state(&r, 1), SourceState::Jittery);
        assert_eq!(r.outcome, Err(NoSelection::NoSelectableSources));
    }

    #[test]
    fn minsources_blocks_update() {
        let mut s = Selector::new(SelectionConfig {
            min_sources: 3,
            ..Default::default()
        });
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.01)]);
        assert_eq!(
            r.outcome,
            Err(NoSelection::TooFewSources { have: 2, need: 3 })
        );
    }

    #[test]
    fn prefer_wins_over_shorter_distance_and_noselect_never_selected() {
        let mut s = Selector::default();
        let mut p = cand(1, 0.0, 0.02);
        p.options.prefer = true;
        let mut n = cand(2, 0.0, 0.001);
        n.options.noselect = true;
        let r = s.select(&[cand(0, 0.0, 0.01), p, n]);
        assert_eq!(r.outcome.unwrap().selected, 1);
        assert_eq!(state(&r, 2), SourceState::Unselectable);
        // A non-prefer source is not combined with a prefer one.
        assert_eq!(state(&r, 0), SourceState::NotCombined);
    }

    #[test]
    fn trusted_source_survives_disagreeing_majority_of_untrusted() {
        let mut s = Selector::default();
        let mut t = cand(0, 0.0, 0.01);
        t.options.trust = true;
        let r = s.select(&[t, cand(1, 0.5, 0.01), cand(2, 0.5, 0.01)]);
        let comb = r.outcome.unwrap();
        assert_eq!(comb.selected, 0);
        assert_eq!(state(&r, 1), SourceState::Falseticker);
    }

    #[test]
    fn require_without_required_truechimer_blocks_update() {
        let mut s = Selector::default();
        let mut q = cand(2, 0.9, 0.01);
        q.options.require = true;
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.01), q]);
        assert_eq!(r.outcome, Err(NoSelection::RequiredSourceMissing));
    }

    #[test]
    fn reselectdist_keeps_current_source_against_slightly_better_one() {
        let mut s = Selector::default();
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.0100001)]);
        assert_eq!(r.outcome.unwrap().selected, 0);
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.00995)]);
        assert_eq!(r.outcome.unwrap().selected, 0, "within reselectdist");
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.0098)]);
        assert_eq!(r.outcome.unwrap().selected, 1);
    }

    #[test]
    fn reselectdist_by_command_changes_the_hysteresis() {
        let mut s = Selector::default();
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.0100001)]);
        assert_eq!(r.outcome.unwrap().selected, 0);
        // chronyc `reselectdist 0`: a slightly better source now wins; nonsense is ignored.
        s.set_reselect_distance(0.0);
        s.set_reselect_distance(f64::NAN);
        s.set_reselect_distance(-1.0);
        let r = s.select(&[cand(0, 0.0, 0.01), cand(1, 0.0, 0.00995)]);
        assert_eq!(r.outcome.unwrap().selected, 1);
    }

    #[test]
    fn combining_weights_by_inverse_distance_and_limit() {
        let mut s = Selector::default();
        let r = s.select(&[cand(0, 0.003, 0.01), cand(1, 0.0, 0.02), cand(2, 0.0, 0.05)]);
        let comb = r.outcome.unwrap();
        assert_eq!(comb.selected, 0);
        assert_eq!(state(&r, 1), SourceState::Combined);
        assert_eq!(
            state(&r, 2),
            SourceState::NotCombined,
            "beyond combinelimit"
        );
        assert!((comb.offset - 0.002).abs() < 1e-12, "{}", comb.offset);
    }

    #[test]
    fn leap_is_taken_by_majority() {
        let mut s = Selector::default();
        let mut a = cand(0, 0.0, 0.01);
        a.leap = LeapState::Insert;
        let mut b = cand(1, 0.0, 0.01);
        b.leap = LeapState::Insert;
        let r = s.select(&[a, b, cand(2, 0.0, 0.01)]);
        assert_eq!(r.outcome.unwrap().leap, LeapState::Insert);
        let r = s.select(&[a, cand(1, 0.0, 0.01), cand(2, 0.0, 0.01)]);
        assert_eq!(r.outcome.unwrap().leap, LeapState::Normal);
    }

    #[test]
    fn authselectmode_adjusts_options_as_chrony_documents() {
        let plain = SelectOptions::default();
        let noselect = SelectOptions {
            noselect: true,
            ..plain
        };
        let m = AuthSelectMode::from_name;
        assert_eq!(m("mix"), Some(AuthSelectMode::default()));
        assert_eq!(m("Mix"), None);
        // require: unauthenticated sources get noselect, even alone.
        assert!(
            m("require")
                .unwrap()
                .adjust(plain, false, false, true)
                .noselect
        );
        assert!(
            !m("require")
                .unwrap()
                .adjust(plain, true, true, true)
                .noselect
        );
        // prefer: only when an authenticated source exists.
        assert!(
            !m("prefer")
                .unwrap()
                .adjust(plain, false, false, true)
                .noselect
        );
        assert!(
            m("prefer")
                .unwrap()
                .adjust(plain, false, true, true)
                .noselect
        );
        // mix: authenticated sources get require and trust when both kinds exist.
        let o = m("mix").unwrap().adjust(plain, true, true, true);
        assert!(o.require && o.trust && !o.noselect);
        assert_eq!(m("mix").unwrap().adjust(plain, true, true, false), plain);
        assert_eq!(m("mix").unwrap().adjust(plain, false, true, true), plain);
        // ignore: untouched; noselect sources always keep their own options.
        assert_eq!(m("ignore").unwrap().adjust(plain, false, true, true), plain);
        assert_eq!(
            m("mix").unwrap().adjust(noselect, true, true, true),
            noselect
        );
    }
}
