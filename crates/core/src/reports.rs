//! The engine's reports as plain structs, one per chronyc report (`tracking`, `sources`,
//! `sourcestats`; layouts in features.md §3.2–3.4). The same struct feeds the text layout, CSV,
//! the cmdmon reply and metrics; formatting lives with the consumers.
//!
//! Units are those of the chronyc columns: seconds and ppm, offsets with chrony's signs.

use crate::local_clock::LeapState;

/// Leap status line of `tracking` ("Normal", "Insert second", "Delete second",
/// "Not synchronised").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeapStatus {
    /// No leap second pending.
    Normal,
    /// A second is inserted at the end of the day.
    InsertSecond,
    /// A second is deleted at the end of the day.
    DeleteSecond,
    /// The clock is not synchronised.
    #[default]
    Unsynchronised,
}

impl LeapStatus {
    /// From the synchronised flag and the leap state.
    pub fn from_state(synchronised: bool, leap: LeapState) -> Self {
        match (synchronised, leap) {
            (false, _) => LeapStatus::Unsynchronised,
            (true, LeapState::Normal) => LeapStatus::Normal,
            (true, LeapState::Insert) => LeapStatus::InsertSecond,
            (true, LeapState::Delete) => LeapStatus::DeleteSecond,
        }
    }
}

/// `chronyc tracking`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrackingReport {
    /// Reference ID (`%08X`); 0 when unsynchronised, 0x7F7F0101 in local mode.
    pub reference_id: u32,
    /// Address of the selected source, when it is an NTP source.
    pub reference_addr: Option<std::net::SocketAddr>,
    /// Our stratum (0 when unsynchronised).
    pub stratum: u8,
    /// Time of the last clock update (seconds since the Unix epoch; 0 when never).
    pub ref_time: f64,
    /// Correction still to be applied: positive = the clock is slow of NTP time (`O` format).
    pub system_time: f64,
    /// Offset of the last update (positive = the clock was fast), seconds.
    pub last_offset: f64,
    /// Long-term RMS of the update offsets, seconds.
    pub rms_offset: f64,
    /// Frequency error of the undisciplined clock, ppm (positive = fast; the negated
    /// correction the engine applies), as chrony's "Frequency" line.
    pub frequency_ppm: f64,
    /// Residual frequency of the selected source, ppm.
    pub residual_freq_ppm: f64,
    /// Error bound of the frequency, ppm.
    pub skew_ppm: f64,
    /// Root delay to the primary reference, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds.
    pub root_dispersion: f64,
    /// Average interval between the last clock updates, seconds.
    pub update_interval: f64,
    /// The leap status line.
    pub leap_status: LeapStatus,
}

/// Mode column of `sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMode {
    /// `^` client/server.
    Server,
    /// `=` symmetric peer.
    Peer,
    /// `#` reference clock.
    RefClock,
}

/// State column of `sources` (chrony's wire numbers 0–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// `*` the current synchronisation source.
    Selected,
    /// `?` not selectable (unreachable, too few samples, too far, noselect …).
    Unselectable,
    /// `x` a falseticker.
    Falseticker,
    /// `~` too variable (jitter above maxjitter).
    Jittery,
    /// `+` combined with the selected source.
    Combined,
    /// `-` selectable but not combined.
    NotCombined,
}

impl SourceState {
    /// The character chronyc prints.
    pub fn symbol(self) -> char {
        match self {
            SourceState::Selected => '*',
            SourceState::Unselectable => '?',
            SourceState::Falseticker => 'x',
            SourceState::Jittery => '~',
            SourceState::Combined => '+',
            SourceState::NotCombined => '-',
        }
    }

    /// chrony's wire code (RPY_SD_ST_*).
    pub fn code(self) -> u16 {
        match self {
            SourceState::Selected => 0,
            SourceState::Unselectable => 1,
            SourceState::Falseticker => 2,
            SourceState::Jittery => 3,
            SourceState::Combined => 4,
            SourceState::NotCombined => 5,
        }
    }
}

/// One row of `chronyc sources`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceReport {
    /// The source's address.
    pub addr: std::net::SocketAddr,
    /// Mode column.
    pub mode: SourceMode,
    /// State column.
    pub state: SourceState,
    /// Stratum of the source.
    pub stratum: u8,
    /// Current poll interval, log2 seconds.
    pub poll: i8,
    /// Reachability register (8 bits).
    pub reach: u8,
    /// Seconds since the last good sample (u32::MAX = never).
    pub last_rx: u32,
    /// Offset of the last sample corrected for later clock adjustments (positive = we are
    /// fast), seconds.
    pub adjusted_offset: f64,
    /// Offset of the last sample as measured, seconds.
    pub measured_offset: f64,
    /// Error margin of the last sample, seconds.
    pub error: f64,
}

/// One row of `chronyc sourcestats`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SourceStatsReport {
    /// NP: samples held.
    pub samples: u32,
    /// NR: runs of residual signs.
    pub runs: u32,
    /// Span of the samples, seconds.
    pub span_seconds: u32,
    /// Residual frequency, ppm.
    pub frequency_ppm: f64,
    /// Frequency skew, ppm.
    pub skew_ppm: f64,
    /// Estimated offset now, seconds.
    pub offset: f64,
    /// Standard deviation of the samples, seconds.
    pub std_dev: f64,
    /// Error of the offset estimate (on the wire, not printed), seconds.
    pub est_offset_err: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_state_symbols_match_chronyc_legend() {
        let all = [
            SourceState::Selected,
            SourceState::Unselectable,
            SourceState::Falseticker,
            SourceState::Jittery,
            SourceState::Combined,
            SourceState::NotCombined,
        ];
        let s: String = all.iter().map(|s| s.symbol()).collect();
        assert_eq!(s, "*?x~+-");
        let codes: Vec<u16> = all.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn leap_status_is_unsynchronised_without_sync() {
        assert_eq!(
            LeapStatus::from_state(false, LeapState::Insert),
            LeapStatus::Unsynchronised
        );
        assert_eq!(
            LeapStatus::from_state(true, LeapState::Delete),
            LeapStatus::DeleteSecond
        );
    }
}
