//! One NTP measurement ([`Sample`]) and the median filter of the `filter N` source option.
//!
//! Follows chrony's behaviour (chrony.conf `filter`): samples collected over N polls are reduced
//! to one, which suppresses network jitter at the cost of a slower response. The reduction keeps
//! the half of the samples with the shortest round-trip delay (they carry the least queueing
//! noise, RFC 5905 §10's "minimum delay" idea) and takes their median offset. The dispersion of
//! the result grows by the spread of the kept offsets so the selection sees the real uncertainty.
//!
//! Sign convention (as chrony's `sources`/`sourcestats`): `offset` is positive when the local
//! clock is ahead of the source; the correction to apply is `-offset`.

use crate::local_clock::LeapState;

/// One offset measurement of a source, in the local (cooked) time frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Local time of the measurement (seconds since the Unix epoch, cooked).
    pub time: f64,
    /// Local clock minus source clock, seconds (positive: we are fast).
    pub offset: f64,
    /// Round-trip delay to the source, seconds.
    pub peer_delay: f64,
    /// Dispersion of this measurement (precision, timestamp errors, skew), seconds.
    pub peer_dispersion: f64,
    /// Root delay of the source plus our `peer_delay`, seconds.
    pub root_delay: f64,
    /// Root dispersion of the source plus our `peer_dispersion`, seconds.
    pub root_dispersion: f64,
    /// Stratum of the source (1 = primary).
    pub stratum: u8,
    /// Leap-second warning announced by the source.
    pub leap: LeapState,
}

impl Sample {
    /// Half the round-trip delay plus the dispersion: the error bound of this measurement alone.
    pub fn peer_distance(&self) -> f64 {
        self.peer_delay / 2.0 + self.peer_dispersion
    }

    /// RFC 5905 root synchronisation distance: half the root delay plus the root dispersion.
    pub fn root_distance(&self) -> f64 {
        self.root_delay / 2.0 + self.root_dispersion
    }

    /// Rewrites the sample as if the local clock had been corrected by `doffset` seconds (moved
    /// forward) at `when` and its frequency changed by `dfreq` (dimensionless, positive = faster),
    /// extrapolated to the sample's time. Keeps old samples consistent with the new clock.
    pub fn apply_clock_change(&mut self, when: f64, dfreq: f64, doffset: f64) {
        let shift = doffset + dfreq * (self.time - when);
        self.offset += shift;
        self.time += shift;
    }
}

/// Why [`SampleFilter::new`] refused a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterError {
    /// `filter` accepts 1 to [`MAX_FILTER_LENGTH`] samples.
    LengthOutOfRange(usize),
}

impl core::fmt::Display for FilterError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FilterError::LengthOutOfRange(n) => {
                write!(f, "filter length {n} out of range 1-{MAX_FILTER_LENGTH}")
            }
        }
    }
}

impl std::error::Error for FilterError {}

/// Largest accepted `filter N` (chrony bounds the buffer likewise).
pub const MAX_FILTER_LENGTH: usize = 128;

/// Median filter over N consecutive samples (`filter N`).
#[derive(Debug, Clone)]
pub struct SampleFilter {
    length: usize,
    buffer: Vec<Sample>,
}

impl SampleFilter {
    /// A filter that emits one sample for every `length` accumulated.
    pub fn new(length: usize) -> Result<Self, FilterError> {
        if length == 0 || length > MAX_FILTER_LENGTH {
            return Err(FilterError::LengthOutOfRange(length));
        }
        Ok(SampleFilter {
            length,
            buffer: Vec::with_capacity(length),
        })
    }

    /// Number of samples waiting in the filter.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Drops the pending samples (after a clock step or when the source is reset).
    pub fn clear(&mut self) {
        self.buffer.clear();
    }

    /// Keeps pending samples consistent with a clock correction (see [`Sample::apply_clock_change`]).
    pub fn apply_clock_change(&mut self, when: f64, dfreq: f64, doffset: f64) {
        for s in &mut self.buffer {
            s.apply_clock_change(when, dfreq, doffset);
        }
    }

    /// Moves pending sample times by `delta` seconds (leap second), offsets unchanged.
    pub fn shift_times(&mut self, delta: f64) {
        for s in &mut self.buffer {
            s.time += delta;
        }
    }

    /// Adds a sample; returns the filtered sample once `length` samples were collected.
    pub fn accumulate(&mut self, sample: Sample) -> Option<Sample> {
        self.buffer.push(sample);
        if self.buffer.len() < self.length {
            return None;
        }
        let out = reduce(&mut self.buffer);
        self.buffer.clear();
        out
    }
}

/// Reduces a non-empty set of samples to one: the shortest-delay half, median offset.
fn reduce(samples: &mut [Sample]) -> Option<Sample> {
    let last = *samples.last()?;
    if samples.len() == 1 {
        return Some(last);
    }
    samples.sort_by(|a, b| a.peer_delay.total_cmp(&b.peer_delay));
    let keep = samples.len().div_ceil(2);
    let kept = &mut samples[..keep];
    kept.sort_by(|a, b| a.offset.total_cmp(&b.offset));
    let n = kept.len();
    let median = if n % 2 == 1 {
        kept[n / 2].offset
    } else {
        (kept[n / 2 - 1].offset + kept[n / 2].offset) / 2.0
    };
    let mean_time = kept.iter().map(|s| s.time).sum::<f64>() / n as f64;
    let mean_delay = kept.iter().map(|s| s.peer_delay).sum::<f64>() / n as f64;
    let spread = kept
        .iter()
        .map(|s| (s.offset - median).powi(2))
        .sum::<f64>()
        .sqrt()
        / (n as f64).sqrt();
    let max_disp = kept.iter().map(|s| s.peer_dispersion).fold(0.0, f64::max);
    let max_root_disp = kept.iter().map(|s| s.root_dispersion).fold(0.0, f64::max);
    let min_root_delay = kept
        .iter()
        .map(|s| s.root_delay)
        .fold(f64::INFINITY, f64::min);
    Some(Sample {
        time: mean_time,
        offset: median,
        peer_delay: mean_delay,
        peer_dispersion: max_disp + spread,
        root_delay: min_root_delay,
        root_dispersion: max_root_disp + spread,
        stratum: last.stratum,
        leap: last.leap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(time: f64, offset: f64, delay: f64) -> Sample {
        Sample {
            time,
            offset,
            peer_delay: delay,
            peer_dispersion: 1e-6,
            root_delay: delay,
            root_dispersion: 1e-6,
            stratum: 2,
            leap: LeapState::Normal,
        }
    }

    #[test]
    fn filter_rejects_zero_and_huge_lengths() {
        assert_eq!(
            SampleFilter::new(0).unwrap_err(),
            FilterError::LengthOutOfRange(0)
        );
        assert!(SampleFilter::new(MAX_FILTER_LENGTH + 1).is_err());
        assert!(SampleFilter::new(1).is_ok());
    }

    #[test]
    fn filter_of_one_passes_samples_through() {
        let mut f = SampleFilter::new(1).unwrap();
        let a = s(1.0, 0.5, 0.01);
        assert_eq!(f.accumulate(a), Some(a));
    }

    #[test]
    fn filter_emits_once_per_length_and_ignores_delayed_outlier() {
        let mut f = SampleFilter::new(4).unwrap();
        assert!(f.accumulate(s(0.0, 0.001, 0.010)).is_none());
        // A delayed packet with a wild offset: must not move the result.
        assert!(f.accumulate(s(1.0, 0.300, 0.900)).is_none());
        assert!(f.accumulate(s(2.0, 0.002, 0.011)).is_none());
        assert_eq!(f.pending(), 3);
        let out = f.accumulate(s(3.0, 0.050, 0.500)).unwrap();
        assert!((out.offset - 0.0015).abs() < 1e-12, "{}", out.offset);
        assert!((out.time - 1.0).abs() < 1e-12);
        assert_eq!(f.pending(), 0);
        assert!(out.peer_dispersion > 1e-6);
    }

    #[test]
    fn clock_change_shifts_offset_by_step_and_frequency() {
        let mut a = s(100.0, 0.01, 0.01);
        a.apply_clock_change(200.0, 1e-6, -0.01);
        // -0.01 step, and 1 ppm over -100 s = -1e-4.
        assert!((a.offset - (0.01 - 0.01 - 1e-4)).abs() < 1e-12);
    }
}
