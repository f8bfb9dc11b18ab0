//! Per-source statistics: a weighted linear regression of the measured offsets over time with a
//! runs test, as chrony's `sourcestats` does (the `chronyc sourcestats` columns: NP, NR, Span,
//! Frequency, Freq Skew, Offset, Std Dev).
//!
//! Samples are weighted by the inverse square of their peer distance (half the round-trip delay
//! plus dispersion) relative to the best one, so delayed packets count less. After each new
//! sample the oldest samples are dropped while the residuals of the regression show too few sign
//! runs: a systematic curve in the residuals means the clock's frequency changed and the old
//! points no longer fit a line. At least `minsamples` points are always kept (chrony default 6),
//! at most `maxsamples` (64).

use std::collections::VecDeque;

use crate::reports::SourceStatsReport;
use crate::sample_filter::Sample;

/// Largest number of samples kept per source (chrony's upper bound).
pub const MAX_SAMPLES: usize = 64;
/// chrony's default `minsamples`.
pub const DEFAULT_MIN_SAMPLES: usize = 6;
/// Frequency uncertainty assumed before two samples exist (2000 ppm, chrony's worst case).
pub const WORST_CASE_SKEW: f64 = 2000e-6;
/// Fewest points that give a residual variance.
const MIN_REGRESSION_POINTS: usize = 3;
/// One-sided normal quantile of the runs test (about 5 % false rejections).
const RUNS_Z: f64 = 1.645;
/// Floor of the reported standard deviation and skew, so that weights stay finite.
const MIN_STD_DEV: f64 = 1e-9;
const MIN_SKEW: f64 = 1e-12;

/// The current regression estimate of a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Local time the offset refers to (the newest sample).
    pub ref_time: f64,
    /// Estimated offset (local minus source) at `ref_time`, seconds.
    pub offset: f64,
    /// Standard error of `offset`, seconds.
    pub offset_sd: f64,
    /// Residual frequency of the local clock relative to the source (positive = we gain),
    /// dimensionless.
    pub frequency: f64,
    /// Error bound (one standard error) of `frequency`, dimensionless.
    pub skew: f64,
    /// Standard deviation of the samples around the regression line, seconds.
    pub std_dev: f64,
    /// Number of sign runs in the residuals.
    pub runs: usize,
    /// Time between the oldest and newest sample, seconds.
    pub span: f64,
}

/// Regression state of one source.
#[derive(Debug, Clone)]
pub struct SourceStats {
    samples: VecDeque<Sample>,
    min_samples: usize,
    max_samples: usize,
    estimate: Option<Estimate>,
    /// Slow average of the fits' residual variance (see `weights`), seconds squared.
    scatter: f64,
}

impl SourceStats {
    /// Statistics keeping between `min_samples` and `max_samples` points (0 = defaults).
    /// `max_samples == 1` disables frequency tracking, as chrony's `maxsamples 1`.
    pub fn new(min_samples: usize, max_samples: usize) -> Self {
        let max_samples = match max_samples {
            0 => MAX_SAMPLES,
            n => n.min(MAX_SAMPLES),
        };
        let min_samples = match min_samples {
            0 => DEFAULT_MIN_SAMPLES,
            n => n,
        }
        .min(max_samples);
        SourceStats {
            samples: VecDeque::with_capacity(max_samples),
            min_samples,
            max_samples,
            estimate: None,
            scatter: 0.0,
        }
    }

    /// Number of samples held (NP).
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The newest sample.
    pub fn last_sample(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The current estimate (after at least one sample).
    pub fn estimate(&self) -> Option<&Estimate> {
        self.estimate.as_ref()
    }

    /// Forgets every sample (after `reset sources` or a clock step beyond the model).
    pub fn clear(&mut self) {
        self.samples.clear();
        self.estimate = None;
        self.scatter = 0.0;
    }

    /// Keeps only the newest `keep` samples (at least `minsamples`) and recomputes the
    /// estimate: used when a new sample shows the model no longer predicts the clock.
    pub fn discard_old(&mut self, keep: usize) {
        let keep = keep.max(self.min_samples).max(1);
        if self.samples.len() > keep {
            let n = self.samples.len() - keep;
            self.samples.drain(..n);
            self.regress();
        }
    }

    /// Drops samples older than local time `oldest` (keeping at least `minsamples`).
    pub fn discard_before(&mut self, oldest: f64) {
        let old = self.samples.iter().take_while(|s| s.time < oldest).count();
        let keep = self.samples.len() - old;
        if old > 0 {
            self.discard_old(keep);
        }
    }

    /// Smallest round-trip delay among the held samples.
    pub fn min_delay(&self) -> Option<f64> {
        self.samples.iter().map(|s| s.peer_delay).reduce(f64::min)
    }

    /// chrony's `maxdelayratio` test: true when `delay` exceeds `ratio` × the minimum delay.
    pub fn delay_ratio_exceeded(&self, delay: f64, ratio: f64) -> bool {
        match self.min_delay() {
            Some(min) if min > 0.0 => delay > ratio * min,
            _ => false,
        }
    }

    /// chrony's `maxdelaydevratio` test at local time `now`: true when the delay's increase
    /// over the minimum is larger than `ratio` times the offset uncertainty (the samples'
    /// standard deviation, grown by the skew since the newest sample). Only applied with at
    /// least `minsamples` points: a deviation from fewer is too unreliable.
    pub fn delay_dev_ratio_exceeded(&self, delay: f64, ratio: f64, now: f64) -> bool {
        let (Some(min), Some(est)) = (self.min_delay(), self.estimate.as_ref()) else {
            return false;
        };
        if self.samples.len() < self.min_samples.max(MIN_REGRESSION_POINTS + 1) {
            return false;
        }
        let drift = est.skew * (now - est.ref_time).max(0.0);
        let sd = (est.std_dev * est.std_dev + drift * drift).sqrt();
        delay - min > ratio * sd.max(MIN_STD_DEV)
    }

    /// Adds a sample and recomputes the estimate. Samples must arrive in time order; an older
    /// sample than the newest one is refused (returns false).
    pub fn accumulate(&mut self, sample: Sample) -> bool {
        let valid = sample.time.is_finite()
            && sample.offset.is_finite()
            && sample.peer_delay.is_finite()
            && sample.peer_dispersion.is_finite();
        if !valid || self.samples.back().is_some_and(|l| sample.time < l.time) {
            return false;
        }
        if self.samples.len() == self.max_samples {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        self.regress();
        true
    }

    /// Keeps the samples and the estimate consistent with a local clock correction: the clock
    /// moved forward by `doffset` at `when` and its frequency rose by `dfreq` (dimensionless).
    pub fn apply_clock_change(&mut self, when: f64, dfreq: f64, doffset: f64) {
        for s in &mut self.samples {
            s.apply_clock_change(when, dfreq, doffset);
        }
        if let Some(e) = &mut self.estimate {
            let shift = doffset + dfreq * (e.ref_time - when);
            e.offset += shift;
            e.ref_time += shift;
            e.frequency += dfreq;
        }
    }

    /// Moves sample times by `delta` seconds, offsets unchanged (a leap second seen by both
    /// clocks).
    pub fn shift_times(&mut self, delta: f64) {
        for s in &mut self.samples {
            s.time += delta;
        }
        if let Some(e) = &mut self.estimate {
            e.ref_time += delta;
        }
    }

    /// Predicted offset (local minus source) at local time `now`, and its standard error.
    pub fn predict(&self, now: f64) -> Option<(f64, f64)> {
        let e = self.estimate.as_ref()?;
        let dt = now - e.ref_time;
        let offset = e.offset + e.frequency * dt;
        let sd = (e.offset_sd.powi(2) + (e.skew * dt).powi(2)).sqrt();
        Some((offset, sd))
    }

    /// The `sourcestats` row at local time `now` (offset extrapolated to `now`).
    pub fn report(&self, now: f64) -> SourceStatsReport {
        let (offset, est_offset_err) = self.predict(now).unwrap_or((0.0, 0.0));
        let e = self.estimate;
        SourceStatsReport {
            samples: self.samples.len() as u32,
            runs: e.map_or(0, |e| e.runs as u32),
            span_seconds: e.map_or(0, |e| e.span.max(0.0).round() as u32),
            frequency_ppm: e.map_or(0.0, |e| e.frequency * 1e6),
            skew_ppm: e.map_or(0.0, |e| e.skew * 1e6),
            offset,
            std_dev: e.map_or(0.0, |e| e.std_dev),
            est_offset_err,
        }
    }

    fn regress(&mut self) {
        let n = self.samples.len();
        let Some(last) = self.samples.back().copied() else {
            self.estimate = None;
            return;
        };
        let first = self.samples[0];
        if n == 1 || self.max_samples == 1 {
            // One point: no frequency information; chrony treats the skew as the worst case.
            let disp = last.peer_distance().max(MIN_STD_DEV);
            self.estimate = Some(Estimate {
                ref_time: last.time,
                offset: last.offset,
                offset_sd: disp,
                frequency: 0.0,
                skew: WORST_CASE_SKEW,
                std_dev: disp,
                runs: 1,
                span: 0.0,
            });
            if self.max_samples == 1 {
                self.samples.drain(..n - 1);
            }
            return;
        }
        if n == 2 {
            let span = last.time - first.time;
            let (frequency, skew) = if span > 0.0 {
                (
                    (last.offset - first.offset) / span,
                    ((first.peer_distance() + last.peer_distance()) / span)
                        .clamp(MIN_SKEW, WORST_CASE_SKEW),
                )
            } else {
                (0.0, WORST_CASE_SKEW)
            };
            let sd = ((last.offset - first.offset).abs() / 2.0)
                .max(last.peer_distance())
                .max(MIN_STD_DEV);
            self.estimate = Some(Estimate {
                ref_time: last.time,
                offset: last.offset,
                offset_sd: sd,
                frequency,
                skew,
                std_dev: sd,
                runs: usize::from(first.offset != last.offset) + 1,
                span,
            });
            return;
        }

        let min_used = self.min_samples.max(MIN_REGRESSION_POINTS).min(n);
        let weights = self.weights();
        let latest_start = n - min_used;
        let mut chosen = None;
        for start in 0..=latest_start {
            let fit = fit_line(&self.samples, &weights, start, last.time);
            if fit.runs >= critical_runs(n - start) {
                chosen = Some((start, fit));
                break;
            }
        }
        let (start, fit) = chosen.unwrap_or_else(|| {
            (
                latest_start,
                fit_line(&self.samples, &weights, latest_start, last.time),
            )
        });
        self.samples.drain(..start);
        let v = fit.std_dev * fit.std_dev;
        self.scatter = if self.scatter > 0.0 {
            self.scatter + SCATTER_GAIN * (v - self.scatter)
        } else {
            v
        };
        let span = last.time - self.samples[0].time;
        self.estimate = Some(Estimate {
            ref_time: last.time,
            offset: fit.intercept,
            offset_sd: fit.intercept_sd,
            frequency: fit.slope,
            skew: fit.slope_sd.clamp(MIN_SKEW, WORST_CASE_SKEW),
            std_dev: fit.std_dev.max(MIN_STD_DEV),
            runs: fit.runs,
            span,
        });
    }

    /// Weights from each sample's excess delay over the smallest held: see [`delay_weights`].
    /// The scatter the delays may explain is a slow average of the past fits' (`scatter`):
    /// taken from the last fit alone, the weights fed back into themselves and the estimate
    /// swung between two states at every update (seen on loopback as Last offsets alternating
    /// in sign).
    fn weights(&self) -> Vec<f64> {
        let delays: Vec<f64> = self.samples.iter().map(|s| s.peer_delay).collect();
        let disp: Vec<f64> = self.samples.iter().map(|s| s.peer_dispersion).collect();
        delay_weights(&delays, &disp, self.scatter.sqrt())
    }
}

/// Share of each new fit's residual variance in the slow average the weights use.
const SCATTER_GAIN: f64 = 0.3;

/// Fraction of the median excess delay below which no sample's error is assumed to fall.
const EXCESS_FLOOR_FRACTION: f64 = 0.05;

/// Inverse-variance weights of samples from their round-trip delays, normalised so that the
/// best sample has weight 1.
///
/// Queueing adds delay to one direction or the other: a sample whose round trip exceeds the
/// shortest held by `x` carries an offset error of up to `x/2`, and with the extra delay split
/// at random between the two directions its variance is about `x²/12`. To that adds a part
/// every sample shares, the floor: what the delays do not explain of the last fit's scatter
/// (`scatter`: a wandering clock or a noisy server make it large, and then the weights even
/// out), and never less than a small fraction of the median excess (the quickest sample's own
/// distance from the true minimum) or the samples' dispersion.
fn delay_weights(delays: &[f64], dispersions: &[f64], scatter: f64) -> Vec<f64> {
    let min = delays.iter().copied().fold(f64::INFINITY, f64::min);
    let mut var: Vec<f64> = delays
        .iter()
        .map(|d| (d - min).max(0.0).powi(2) / 12.0)
        .collect();
    if var.is_empty() {
        return var;
    }
    let mut excess: Vec<f64> = delays.iter().map(|d| (d - min).max(0.0)).collect();
    excess.sort_by(f64::total_cmp);
    let median = excess[excess.len() / 2];
    let explained = var.iter().sum::<f64>() / var.len() as f64;
    let min_disp = dispersions.iter().copied().fold(f64::INFINITY, f64::min);
    let floor2 = (scatter * scatter - explained)
        .max((EXCESS_FLOOR_FRACTION * median).powi(2))
        .max(min_disp * min_disp)
        .max(MIN_STD_DEV * MIN_STD_DEV);
    for v in &mut var {
        *v = floor2 / (floor2 + *v);
    }
    var
}

struct Fit {
    intercept: f64,
    intercept_sd: f64,
    slope: f64,
    slope_sd: f64,
    std_dev: f64,
    runs: usize,
}

/// Weighted least squares of offset over (time - ref_time) for samples `start..`.
fn fit_line(samples: &VecDeque<Sample>, weights: &[f64], start: usize, ref_time: f64) -> Fit {
    let pts = samples.iter().zip(weights).skip(start);
    let n = samples.len() - start;
    let (mut sw, mut swx, mut swy) = (0.0, 0.0, 0.0);
    for (s, &w) in pts.clone() {
        let x = s.time - ref_time;
        sw += w;
        swx += w * x;
        swy += w * s.offset;
    }
    let (mx, my) = (swx / sw, swy / sw);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (s, &w) in pts.clone() {
        let dx = s.time - ref_time - mx;
        sxx += w * dx * dx;
        sxy += w * dx * (s.offset - my);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let (mut ssr, mut runs, mut prev_sign) = (0.0, 0usize, 0i8);
    for (s, &w) in pts {
        let r = s.offset - intercept - slope * (s.time - ref_time);
        ssr += w * r * r;
        let sign = if r >= 0.0 { 1 } else { -1 };
        if sign != prev_sign {
            runs += 1;
            prev_sign = sign;
        }
    }
    // Weights are relative to the best sample: scale the variance to an average sample.
    let variance = ssr / (n as f64 - 2.0).max(1.0) * (n as f64 / sw);
    let var_unit = ssr / (n as f64 - 2.0).max(1.0);
    let slope_var = if sxx > 0.0 { var_unit / sxx } else { 0.0 };
    let intercept_var = var_unit * (1.0 / sw + mx * mx / sxx.max(f64::MIN_POSITIVE));
    // With few points the residual variance is itself uncertain (one degree of freedom for
    // three points), so a lucky fit must not look precise: the standard errors are widened
    // by Student's t over the normal quantile, a factor that tends to 1 as points accumulate.
    let t = student_t95(n.saturating_sub(2)) / 1.96;
    Fit {
        intercept,
        intercept_sd: t * intercept_var.max(0.0).sqrt(),
        slope,
        slope_sd: t * slope_var.max(0.0).sqrt(),
        std_dev: variance.max(0.0).sqrt(),
        runs,
    }
}

/// Two-sided 95 % quantile of Student's t distribution for `dof` degrees of freedom.
fn student_t95(dof: usize) -> f64 {
    const TABLE: [f64; 10] = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23];
    match dof {
        0 => TABLE[0],
        d if d <= TABLE.len() => TABLE[d - 1],
        d if d <= 20 => 2.09 + (2.23 - 2.09) * (20 - d) as f64 / 10.0,
        d if d <= 60 => 2.0 + (2.09 - 2.0) * (60 - d) as f64 / 40.0,
        _ => 1.96,
    }
}

/// Fewest sign runs that `n` residuals of a good fit show (normal approximation of the runs
/// distribution: mean (n+1)/2, variance (n-1)/4).
fn critical_runs(n: usize) -> usize {
    let n = n as f64;
    let crit = (n + 1.0) / 2.0 - RUNS_Z * ((n - 1.0) / 4.0).sqrt();
    crit.round().max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_clock::LeapState;

    fn sample(time: f64, offset: f64) -> Sample {
        Sample {
            time,
            offset,
            peer_delay: 1e-3,
            peer_dispersion: 1e-6,
            root_delay: 1e-3,
            root_dispersion: 1e-6,
            stratum: 1,
            leap: LeapState::Normal,
        }
    }

    /// Deterministic pseudo-noise in [-1, 1] without an RNG dependency.
    fn noise(i: usize) -> f64 {
        let x = (i as f64 * 12.9898).sin() * 43758.5453;
        (x - x.floor()) * 2.0 - 1.0
    }

    #[test]
    fn regression_recovers_offset_and_frequency_of_a_line() {
        let mut st = SourceStats::new(0, 0);
        for i in 0..20 {
            let t = 1000.0 + 64.0 * i as f64;
            st.accumulate(sample(t, 0.01 + 5e-6 * (t - 1000.0) + 1e-5 * noise(i)));
        }
        let e = *st.estimate().unwrap();
        assert!((e.frequency - 5e-6).abs() < 1e-7, "{}", e.frequency);
        let expected = 0.01 + 5e-6 * (e.ref_time - 1000.0);
        assert!(
            (e.offset - expected).abs() < 2e-5,
            "{} {}",
            e.offset,
            expected
        );
        assert!(e.std_dev > 1e-6 && e.std_dev < 2e-5, "{}", e.std_dev);
        assert!(e.skew > 0.0 && e.skew < 1e-7);
        assert_eq!(st.len(), 20);
        assert!((e.span - 64.0 * 19.0).abs() < 1e-9);
    }

    #[test]
    fn frequency_change_drops_old_samples_by_runs_test() {
        let mut st = SourceStats::new(0, 0);
        // 30 samples at +10 ppm, then 20 at -10 ppm: a kink the runs test must cut away.
        let mut off = 0.0;
        for i in 0..50 {
            let slope = if i < 30 { 10e-6 } else { -10e-6 };
            off += slope * 16.0;
            st.accumulate(sample(16.0 * i as f64, off + 1e-6 * noise(i)));
        }
        let e = *st.estimate().unwrap();
        assert!(st.len() < 35, "old samples kept: {}", st.len());
        assert!((e.frequency + 10e-6).abs() < 1e-6, "{}", e.frequency);
    }

    #[test]
    fn one_sample_has_worst_case_skew_and_two_give_a_slope() {
        let mut st = SourceStats::new(0, 0);
        st.accumulate(sample(0.0, 0.1));
        assert_eq!(st.estimate().unwrap().skew, WORST_CASE_SKEW);
        st.accumulate(sample(100.0, 0.1 + 100.0 * 1e-4));
        let e = st.estimate().unwrap();
        assert!((e.frequency - 1e-4).abs() < 1e-12);
        assert!(e.skew < WORST_CASE_SKEW);
    }

    #[test]
    fn sample_limit_and_out_of_order_and_nan_refused() {
        let mut st = SourceStats::new(4, 8);
        for i in 0..20 {
            st.accumulate(sample(i as f64, 1e-3 * noise(i)));
        }
        assert!(st.len() <= 8);
        assert!(!st.accumulate(sample(5.0, 0.0)));
        assert!(!st.accumulate(sample(f64::NAN, 0.0)));
        assert!(!st.accumulate(sample(30.0, f64::INFINITY)));
    }

    #[test]
    fn clock_change_moves_estimate_with_samples() {
        let mut st = SourceStats::new(0, 0);
        for i in 0..10 {
            st.accumulate(sample(10.0 * i as f64, 0.05 + 2e-5 * 10.0 * i as f64));
        }
        let (before, _) = st.predict(100.0).unwrap();
        // Correct the clock by the predicted offset and the frequency.
        st.apply_clock_change(100.0, -2e-5, -before);
        let (after, _) = st.predict(100.0).unwrap();
        assert!(after.abs() < 1e-9, "{after}");
        assert!(st.estimate().unwrap().frequency.abs() < 1e-12);
    }

    #[test]
    fn delay_tests_compare_with_minimum_delay() {
        let mut st = SourceStats::new(0, 0);
        for i in 0..8 {
            st.accumulate(sample(i as f64, 1e-5 * noise(i)));
        }
        assert!(st.delay_ratio_exceeded(3.1e-3, 3.0));
        assert!(!st.delay_ratio_exceeded(2.9e-3, 3.0));
        assert!(st.delay_dev_ratio_exceeded(1.0, 10.0, 8.0));
        assert!(!st.delay_dev_ratio_exceeded(1e-3, 10.0, 8.0));
    }

    #[test]
    fn delayed_samples_weigh_less_unless_the_scatter_is_not_from_delay() {
        let disp = [1e-6; 4];
        // Round trips 10, 10.2, 12 and 14 ms: the quickest count most.
        let w = delay_weights(&[0.010, 0.0102, 0.012, 0.014], &disp, 0.0);
        assert_eq!(w[0], 1.0);
        assert!(w[1] > w[2] && w[2] > w[3], "{w:?}");
        assert!(w[3] < 0.05, "{w:?}");
        // A fit scattered by 5 ms (a wandering clock) dwarfs the delay differences: the
        // weights even out.
        let w = delay_weights(&[0.010, 0.0102, 0.012, 0.014], &disp, 5e-3);
        assert!(w.iter().all(|&x| x > 0.9), "{w:?}");
        // Equal delays: equal weights.
        assert!(delay_weights(&[0.01; 3], &disp, 0.0)
            .iter()
            .all(|&x| x == 1.0));
        assert!(delay_weights(&[], &[], 0.0).is_empty());
    }

    #[test]
    fn regression_follows_the_quick_samples_when_delays_vary() {
        let mut st = SourceStats::new(0, 0);
        // The true offset is 0; a sample's error is up to half its excess delay, signed
        // like the pseudo-noise.
        for i in 0..64 {
            let excess = 2e-3 * (0.5 + 0.5 * noise(i + 100));
            let mut s = sample(i as f64, 0.5 * excess * noise(i));
            s.peer_delay = 0.010 + excess;
            st.accumulate(s);
        }
        let e = *st.estimate().unwrap();
        assert!(e.offset.abs() < 1.5e-4, "{}", e.offset);
        assert!(e.frequency.abs() < 5e-6, "{}", e.frequency);
    }

    #[test]
    fn report_has_sourcestats_columns() {
        let mut st = SourceStats::new(0, 0);
        for i in 0..10 {
            st.accumulate(sample(64.0 * i as f64, 1e-6 * noise(i)));
        }
        let r = st.report(64.0 * 9.0);
        assert_eq!(r.samples, 10);
        assert!(r.runs >= 1);
        assert_eq!(r.span_seconds, 576);
        assert!(r.std_dev > 0.0);
    }
}
