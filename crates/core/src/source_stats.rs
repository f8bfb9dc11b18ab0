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
//!
//! Without an `asymmetry` option the asymmetry of the path's jitter is estimated fit after fit
//! ([`asymmetry`], as chronyd does); once trusted, every offset is corrected by the estimate
//! times its delay in excess of the minimum before the regression, which then describes what
//! the quickest round trips measure. The samples themselves keep the measured offsets.

use std::collections::VecDeque;

use crate::reports::SourceStatsReport;
use crate::sample_filter::Sample;

pub mod asymmetry;
pub use asymmetry::{JitterAsymmetry, MAX_ASYMMETRY};

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
    /// The samples dropped last, oldest first, at most as many as are held: they lengthen
    /// the asymmetry fit, as chronyd keeps dropped samples for its runs test.
    dropped: VecDeque<Sample>,
    /// Configured or estimated jitter asymmetry.
    asymmetry: JitterAsymmetry,
    /// `mindelay`: the delay the asymmetry correction counts the excess from, when set.
    fixed_min_delay: Option<f64>,
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
            dropped: VecDeque::new(),
            asymmetry: JitterAsymmetry::new(None),
            fixed_min_delay: None,
        }
    }

    /// The source's `asymmetry` option (`None`: estimate it) and `mindelay` (`None`: count
    /// excess delays from the smallest held). A configured ratio is only reported here: the
    /// association applies it to each measurement.
    pub fn with_asymmetry(mut self, configured: Option<f64>, mindelay: Option<f64>) -> Self {
        self.asymmetry = JitterAsymmetry::new(configured);
        self.fixed_min_delay = mindelay.filter(|d| d.is_finite() && *d > 0.0);
        self
    }

    /// The jitter asymmetry in force (`ntpdata`'s "Jitter asymmetry", statistics.log's
    /// `Asym`): the configured one, or the trusted estimate, or 0. Before the first sample
    /// (and after [`SourceStats::clear`]) it is 0 even when configured, as chronyd 4.3 shows
    /// it (`asymmetry 0.3`: "+0.00" until a sample arrives, then "+0.30").
    pub fn jitter_asymmetry(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.asymmetry.ratio()
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
        self.dropped.clear();
        self.asymmetry.reset();
    }

    /// Moves the `n` oldest samples to `dropped`, which keeps at most as many as remain.
    fn drop_oldest(&mut self, n: usize) {
        let n = n.min(self.samples.len());
        self.dropped.extend(self.samples.drain(..n));
        let excess = self.dropped.len().saturating_sub(self.samples.len());
        self.dropped.drain(..excess);
    }

    /// Keeps only the newest `keep` samples (at least `minsamples`) and recomputes the
    /// estimate: used when a new sample shows the model no longer predicts the clock.
    pub fn discard_old(&mut self, keep: usize) {
        let keep = keep.max(self.min_samples).max(1);
        if self.samples.len() > keep {
            let n = self.samples.len() - keep;
            self.drop_oldest(n);
            self.regress(false);
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
            self.drop_oldest(1);
        }
        self.samples.push_back(sample);
        self.regress(true);
        true
    }

    /// Keeps the samples and the estimate consistent with a local clock correction: the clock
    /// moved forward by `doffset` at `when` and its frequency rose by `dfreq` (dimensionless).
    pub fn apply_clock_change(&mut self, when: f64, dfreq: f64, doffset: f64) {
        for s in self.samples.iter_mut().chain(self.dropped.iter_mut()) {
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
        for s in self.samples.iter_mut().chain(self.dropped.iter_mut()) {
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

    /// The delay excess delays are counted from: `mindelay`, or the smallest of the held and
    /// recently dropped samples.
    fn asymmetry_min_delay(&self) -> f64 {
        self.fixed_min_delay.unwrap_or_else(|| {
            self.samples
                .iter()
                .chain(&self.dropped)
                .map(|s| s.peer_delay)
                .fold(f64::INFINITY, f64::min)
        })
    }

    /// A new fit of the asymmetry over the held and recently dropped samples; returns the
    /// estimated ratio to correct the offsets with (0 when configured or not trusted).
    fn update_asymmetry(&mut self) -> f64 {
        if self.asymmetry.configured().is_some() {
            return 0.0;
        }
        let Some(last) = self.samples.back().map(|s| s.time) else {
            self.asymmetry.reset();
            return 0.0;
        };
        let min = self.asymmetry_min_delay();
        let all = || self.dropped.iter().chain(&self.samples);
        // Times from the newest sample: small numbers, no precision lost to the epoch.
        let times: Vec<f64> = all().map(|s| s.time - last).collect();
        let excess: Vec<f64> = all().map(|s| excess_delay(s.peer_delay, min)).collect();
        let offsets: Vec<f64> = all().map(|s| s.offset).collect();
        self.asymmetry.update(&times, &excess, &offsets)
    }

    /// Fits the held samples. `new_sample`: a sample was just added, so the asymmetry is fit
    /// again (chronyd fits it once per sample; dropping samples reuses the current ratio).
    fn regress(&mut self, new_sample: bool) {
        let ratio = if new_sample {
            self.update_asymmetry()
        } else {
            self.asymmetry.estimated()
        };
        // The offsets the regression sees: moved to what the quickest round trip would have
        // measured, as a configured `asymmetry` moves each measurement.
        let offsets: Vec<f64> = if ratio == 0.0 {
            self.samples.iter().map(|s| s.offset).collect()
        } else {
            let min = self.asymmetry_min_delay();
            self.samples
                .iter()
                .map(|s| s.offset - ratio * excess_delay(s.peer_delay, min))
                .collect()
        };
        let n = self.samples.len();
        let Some(last) = self.samples.back().copied() else {
            self.estimate = None;
            return;
        };
        let first = self.samples[0];
        let (first_offset, last_offset) = (offsets[0], offsets[n - 1]);
        if n == 1 || self.max_samples == 1 {
            // One point: no frequency information; chrony treats the skew as the worst case.
            let disp = last.peer_distance().max(MIN_STD_DEV);
            self.estimate = Some(Estimate {
                ref_time: last.time,
                offset: last_offset,
                offset_sd: disp,
                frequency: 0.0,
                skew: WORST_CASE_SKEW,
                std_dev: disp,
                runs: 1,
                span: 0.0,
            });
            if self.max_samples == 1 {
                self.drop_oldest(n - 1);
            }
            return;
        }
        if n == 2 {
            let span = last.time - first.time;
            let (frequency, skew) = if span > 0.0 {
                (
                    (last_offset - first_offset) / span,
                    ((first.peer_distance() + last.peer_distance()) / span)
                        .clamp(MIN_SKEW, WORST_CASE_SKEW),
                )
            } else {
                (0.0, WORST_CASE_SKEW)
            };
            let sd = ((last_offset - first_offset).abs() / 2.0)
                .max(last.peer_distance())
                .max(MIN_STD_DEV);
            self.estimate = Some(Estimate {
                ref_time: last.time,
                offset: last_offset,
                offset_sd: sd,
                frequency,
                skew,
                std_dev: sd,
                runs: usize::from(first_offset != last_offset) + 1,
                span,
            });
            return;
        }

        let min_used = self.min_samples.max(MIN_REGRESSION_POINTS).min(n);
        let weights = self.weights();
        let latest_start = n - min_used;
        let mut chosen = None;
        for start in 0..=latest_start {
            let fit = fit_line(&self.samples, &offsets, &weights, start, last.time);
            if fit.runs >= critical_runs(n - start) {
                chosen = Some((start, fit));
                break;
            }
        }
        let (start, fit) = chosen.unwrap_or_else(|| {
            (
                latest_start,
                fit_line(&self.samples, &offsets, &weights, latest_start, last.time),
            )
        });
        self.drop_oldest(start);
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

/// Round-trip delay `delay` in excess of `min`; delays under a configured `mindelay` count by
/// how far they fall short, as chronyd mirrors them about it.
fn excess_delay(delay: f64, min: f64) -> f64 {
    (delay - min).abs()
}

/// Weighted least squares of `offsets` (one per sample) over (time - ref_time) for samples
/// `start..`.
fn fit_line(
    samples: &VecDeque<Sample>,
    offsets: &[f64],
    weights: &[f64],
    start: usize,
    ref_time: f64,
) -> Fit {
    let pts = samples.iter().zip(offsets).zip(weights).skip(start);
    let n = samples.len() - start;
    let (mut sw, mut swx, mut swy) = (0.0, 0.0, 0.0);
    for ((s, &y), &w) in pts.clone() {
        let x = s.time - ref_time;
        sw += w;
        swx += w * x;
        swy += w * y;
    }
    let (mx, my) = (swx / sw, swy / sw);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for ((s, &y), &w) in pts.clone() {
        let dx = s.time - ref_time - mx;
        sxx += w * dx * dx;
        sxy += w * dx * (y - my);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let (mut ssr, mut runs, mut prev_sign) = (0.0, 0usize, 0i8);
    for ((s, &y), &w) in pts {
        let r = y - intercept - slope * (s.time - ref_time);
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

    /// 64 samples of a clock 1 ms ahead, polled every 64 s, whose requests wait an
    /// exponentially distributed 1 ms in queues (replies never do): each measures the offset
    /// minus half its excess delay.
    /// Returns the last sample.
    fn request_jittered(st: &mut SourceStats) -> Sample {
        let mut last = sample(0.0, 0.0);
        for i in 0..64 {
            let u = (0.5 + 0.5 * noise(i + 300)).max(1e-9);
            let excess = -1e-3 * u.ln();
            last = sample(64.0 * i as f64, 1e-3 - excess / 2.0);
            last.peer_delay = 0.010 + excess;
            st.accumulate(last);
        }
        last
    }

    #[test]
    fn estimated_asymmetry_corrects_offsets_before_the_regression() {
        let mut st = SourceStats::new(0, 0);
        let last = request_jittered(&mut st);
        assert!(
            (st.jitter_asymmetry() + 0.5).abs() < 0.01,
            "{}",
            st.jitter_asymmetry()
        );
        let corrected = st.estimate().unwrap().offset - 1e-3;
        // `asymmetry 0.0`: no estimate; weighting the quickest samples most is all that
        // keeps the error down.
        let mut off = SourceStats::new(0, 0).with_asymmetry(Some(0.0), None);
        request_jittered(&mut off);
        assert_eq!(off.jitter_asymmetry(), 0.0);
        let uncorrected = off.estimate().unwrap().offset - 1e-3;
        // Corrected to what the quickest round trip measured: its own excess over the true
        // minimum (0.010 s) is the error left.
        let quickest = (0..64)
            .map(|i| -1e-3 * (0.5 + 0.5 * noise(i + 300)).max(1e-9).ln())
            .fold(f64::INFINITY, f64::min);
        assert!(
            (corrected + quickest / 2.0).abs() < 1e-6,
            "{corrected} {quickest}"
        );
        assert!(uncorrected < -5e-5, "{uncorrected}");
        assert!(corrected.abs() * 5.0 < uncorrected.abs());
        // The samples keep what was measured.
        assert_eq!(st.last_sample(), Some(&last));
    }

    #[test]
    fn configured_asymmetry_is_reported_and_not_applied_twice() {
        let mut st = SourceStats::new(0, 0).with_asymmetry(Some(-0.5), None);
        let mut plain = SourceStats::new(0, 0).with_asymmetry(Some(0.0), None);
        // Shown once a sample has arrived, as chronyd does.
        assert_eq!(st.jitter_asymmetry(), 0.0);
        request_jittered(&mut st);
        request_jittered(&mut plain);
        assert_eq!(st.jitter_asymmetry(), -0.5);
        assert_eq!(st.estimate(), plain.estimate());
        st.clear();
        assert_eq!(st.jitter_asymmetry(), 0.0);
    }

    #[test]
    fn clear_forgets_the_estimate_and_bad_options_mean_estimate() {
        let mut st = SourceStats::new(0, 0).with_asymmetry(Some(f64::NAN), Some(f64::NAN));
        request_jittered(&mut st);
        assert!(st.jitter_asymmetry() < -0.45);
        st.clear();
        assert_eq!(st.jitter_asymmetry(), 0.0);
        // Out of order, not finite: refused, nothing changes.
        request_jittered(&mut st);
        let before = *st.estimate().unwrap();
        assert!(!st.accumulate(sample(f64::NAN, 0.0)));
        let mut s = sample(1e6, 0.0);
        s.peer_delay = f64::INFINITY;
        assert!(!st.accumulate(s));
        assert_eq!(*st.estimate().unwrap(), before);
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
