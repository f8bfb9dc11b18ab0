//! Jitter asymmetry of the path to a source: the share of the round trip's variation that falls
//! on one direction, estimated automatically as chronyd does when a source has no `asymmetry`
//! option (chrony.conf(5), `asymmetry`; shown by `chronyc ntpdata` as "Jitter asymmetry" and
//! in statistics.log's `Asym` column).
//!
//! When queueing delays only one direction of an exchange, a round trip that took `x` longer
//! than the quickest moved the measured offset (local minus source) by half of that: by `−x/2`
//! when the request waited (the server's timestamps are late), by `+x/2` when the reply did.
//! Offsets then carry a term `a·x` with `a` between −0.5 and +0.5, the man page's convention
//! ("a negative value means the delay of packets sent to the source is more variable than the
//! delay of packets sent from the source back"). Correcting every offset by `−a·x` moves it to
//! what the quickest round trip would have measured, as the configured option does.
//!
//! Behaviour matched (chronyd 4.x's per-source statistics; the formulation here is ours):
//! * `a` is the coefficient of the excess delay in an unweighted least-squares fit of the
//!   offsets on time and excess delay, so that the clock's drift over the samples is not
//!   taken for asymmetry;
//! * it is trusted only after ten fits found it at least 0.45 in size with one sign, with no
//!   fit of the other sign and no failed fit (too few points, delays that do not vary apart
//!   from time) in between: a chance correlation between delay and offset does not last, and
//!   only a path whose jitter is almost all on one side gains from the correction;
//! * once trusted it is used, clamped to ±0.5, for as long as its sign holds, even when a fit
//!   finds it smaller than 0.45; a fit of the other sign or a failed fit withdraws it;
//! * a configured `asymmetry` is used as it is and turns the estimate off (`asymmetry 0.0`
//!   turns every correction off).

/// Largest asymmetry: all the jitter on one side.
pub const MAX_ASYMMETRY: f64 = 0.5;
/// Smallest estimate (in size) that counts towards trusting it.
const MIN_ASYMMETRY: f64 = 0.45;
/// Fits of one sign, at least [`MIN_ASYMMETRY`] in size, before the estimate is used.
const MIN_RUN: i32 = 10;
/// Bound of the counter, so that a long-held sign is given up as quickly as a short one.
const MAX_RUN: i32 = 1000;
/// Fewest points of a fit with three coefficients that leave a residual.
const MIN_POINTS: usize = 4;
/// Smallest share of the delays' variation that time must leave unexplained: below it the
/// delay and time columns are the same column and the slope is arbitrary.
const MIN_INDEPENDENCE: f64 = 1e-9;

/// The asymmetry of one source: configured, or estimated from its samples fit after fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterAsymmetry {
    /// The `asymmetry` option (clamped to ±0.5); `None`: estimate it.
    configured: Option<f64>,
    /// Fits in a row that found at least [`MIN_ASYMMETRY`], signed like them.
    run: i32,
    /// The trusted estimate (0 while there is none).
    estimate: f64,
}

impl JitterAsymmetry {
    /// `configured`: the source's `asymmetry` option (`None`, or a non-finite value: estimate).
    pub fn new(configured: Option<f64>) -> Self {
        JitterAsymmetry {
            configured: configured
                .filter(|a| a.is_finite())
                .map(|a| a.clamp(-MAX_ASYMMETRY, MAX_ASYMMETRY)),
            run: 0,
            estimate: 0.0,
        }
    }

    /// The configured ratio, if any.
    pub fn configured(&self) -> Option<f64> {
        self.configured
    }

    /// The ratio in force (what `ntpdata` shows): the configured one, otherwise the trusted
    /// estimate, otherwise 0.
    pub fn ratio(&self) -> f64 {
        self.configured.unwrap_or(self.estimate)
    }

    /// The estimated ratio to correct offsets with: 0 when a ratio is configured (the
    /// association corrects each measurement with that one) or nothing is trusted yet.
    pub fn estimated(&self) -> f64 {
        match self.configured {
            Some(_) => 0.0,
            None => self.estimate,
        }
    }

    /// Forgets the estimate and its history (the samples were dropped).
    pub fn reset(&mut self) {
        self.run = 0;
        self.estimate = 0.0;
    }

    /// One fit over the points `(times[i], excess[i], offsets[i])`: time (any origin),
    /// round-trip delay in excess of the minimum, and measured offset (local minus source).
    /// Returns the ratio to correct with, as [`JitterAsymmetry::estimated`].
    pub fn update(&mut self, times: &[f64], excess: &[f64], offsets: &[f64]) -> f64 {
        if self.configured.is_some() {
            return 0.0;
        }
        let slope = delay_slope(times, excess, offsets);
        let a = match slope {
            Some(a) if f64::from(self.run) * a >= 0.0 => a,
            // No fit, or the other sign: whatever was seen before no longer holds.
            _ => {
                self.reset();
                return 0.0;
            }
        };
        if a <= -MIN_ASYMMETRY {
            self.run = (self.run - 1).max(-MAX_RUN);
        } else if a >= MIN_ASYMMETRY {
            self.run = (self.run + 1).min(MAX_RUN);
        }
        if self.run.abs() >= MIN_RUN {
            self.estimate = a.clamp(-MAX_ASYMMETRY, MAX_ASYMMETRY);
        }
        self.estimate
    }
}

/// Coefficient of the excess delay in the least-squares fit
/// `offset = c + f·time + a·excess`, or `None` when it cannot be told: fewer than four
/// points, a value that is not finite, delays that do not vary, or vary only with time.
///
/// With the three columns centred on their means, `a` solves the 2×2 normal equations of time
/// and delay: `a = (Stt·Sxy − Stx·Sty) / (Stt·Sxx − Stx²)`.
pub fn delay_slope(times: &[f64], excess: &[f64], offsets: &[f64]) -> Option<f64> {
    let n = times.len();
    if n < MIN_POINTS || excess.len() != n || offsets.len() != n {
        return None;
    }
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    if !(finite(times) && finite(excess) && finite(offsets)) {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mt, mx, my) = (mean(times), mean(excess), mean(offsets));
    let (mut stt, mut stx, mut sxx, mut sty, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        let (t, x, y) = (times[i] - mt, excess[i] - mx, offsets[i] - my);
        stt += t * t;
        stx += t * x;
        sxx += x * x;
        sty += t * y;
        sxy += x * y;
    }
    // The part of the delays' variation that time leaves unexplained, times Stt.
    let det = stt * sxx - stx * stx;
    if !(stt > 0.0 && sxx > 0.0) || det <= MIN_INDEPENDENCE * stt * sxx {
        return None;
    }
    let a = (stt * sxy - stx * sty) / det;
    a.is_finite().then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in [0, 1).
    fn uniform(i: usize) -> f64 {
        let x = (i as f64 * 12.9898 + 78.233).sin() * 43758.5453;
        x - x.floor()
    }

    /// Exponentially distributed delay with mean `scale`.
    fn exp(i: usize, scale: f64) -> f64 {
        -scale * (1.0 - uniform(i)).ln()
    }

    /// `n` points at 64 s intervals from `first`, ending at 0: a clock 10 ppm fast and
    /// 2 ms ahead, with request delays `req` and reply delays `resp` over the minimum.
    fn points(
        first: usize,
        n: usize,
        req: impl Fn(usize) -> f64,
        resp: impl Fn(usize) -> f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut t = Vec::new();
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in first..first + n {
            let time = 64.0 * (i as f64 - (first + n - 1) as f64);
            let (u, v) = (req(i), resp(i));
            t.push(time);
            x.push(u + v);
            // A late request makes the server's timestamps late: we look behind.
            y.push(2e-3 + 10e-6 * time + (v - u) / 2.0);
        }
        (t, x, y)
    }

    /// Feeds `fits` successive windows of 30 points, one point newer each time.
    fn run(
        est: &mut JitterAsymmetry,
        fits: usize,
        req: impl Fn(usize) -> f64 + Copy,
        resp: impl Fn(usize) -> f64 + Copy,
    ) -> Vec<f64> {
        (0..fits)
            .map(|k| {
                let (t, x, y) = points(k, 30, req, resp);
                est.update(&t, &x, &y)
            })
            .collect()
    }

    #[test]
    fn request_side_jitter_gives_minus_half_despite_the_clock_drift() {
        let (t, x, y) = points(0, 20, |i| exp(i, 1e-3), |_| 0.0);
        let a = delay_slope(&t, &x, &y).unwrap();
        assert!((a + 0.5).abs() < 1e-6, "{a}");
        let (t, x, y) = points(0, 20, |_| 0.0, |i| exp(i, 1e-3));
        let a = delay_slope(&t, &x, &y).unwrap();
        assert!((a - 0.5).abs() < 1e-6, "{a}");
    }

    #[test]
    fn asymmetric_jitter_is_trusted_after_ten_fits_with_its_sign() {
        let mut est = JitterAsymmetry::new(None);
        let got = run(&mut est, 12, |i| exp(i, 1e-3), |i| 0.02e-3 * uniform(i + 7));
        assert!(got[..9].iter().all(|&a| a == 0.0), "{got:?}");
        assert!((got[9] + 0.5).abs() < 0.02, "{got:?}");
        assert!((est.ratio() + 0.5).abs() < 0.02 && est.ratio() >= -0.5);
        assert_eq!(est.estimated(), est.ratio());

        let mut est = JitterAsymmetry::new(None);
        let got = run(&mut est, 10, |_| 0.0, |i| exp(i, 1e-3));
        assert!((got[9] - 0.5).abs() < 0.02, "{got:?}");
    }

    #[test]
    fn symmetric_jitter_is_never_trusted() {
        let mut est = JitterAsymmetry::new(None);
        let got = run(&mut est, 200, |i| exp(i, 1e-3), |i| exp(i + 5000, 1e-3));
        assert!(got.iter().all(|&a| a == 0.0));
        assert_eq!(est.ratio(), 0.0);
    }

    #[test]
    fn configured_asymmetry_wins_and_is_not_reapplied() {
        let mut est = JitterAsymmetry::new(Some(0.2));
        let got = run(&mut est, 20, |i| exp(i, 1e-3), |_| 0.0);
        assert!(got.iter().all(|&a| a == 0.0));
        assert_eq!((est.ratio(), est.configured()), (0.2, Some(0.2)));
        // `asymmetry 0.0` turns the correction off: nothing estimated, 0 shown.
        let mut est = JitterAsymmetry::new(Some(0.0));
        run(&mut est, 20, |i| exp(i, 1e-3), |_| 0.0);
        assert_eq!(est.ratio(), 0.0);
        // Out of range or not a number: clamped, or estimated.
        assert_eq!(JitterAsymmetry::new(Some(-3.0)).ratio(), -0.5);
        assert_eq!(JitterAsymmetry::new(Some(f64::NAN)).configured(), None);
    }

    #[test]
    fn estimate_is_bounded_to_half() {
        // Offsets moving by more than the whole excess delay (no path does that): clamped.
        let mut est = JitterAsymmetry::new(None);
        for k in 0..15 {
            let (t, x, _) = points(k, 30, |i| exp(i, 1e-3), |_| 0.0);
            let y: Vec<f64> = x.iter().map(|x| -0.9 * x).collect();
            est.update(&t, &x, &y);
        }
        assert_eq!(est.ratio(), -0.5);
    }

    #[test]
    fn other_sign_or_failed_fit_withdraws_the_estimate() {
        let mut est = JitterAsymmetry::new(None);
        run(&mut est, 12, |i| exp(i, 1e-3), |_| 0.0);
        assert!(est.ratio() < -0.45);
        // A fit that finds the other sign (even a small one) withdraws it at once.
        let (t, x, _) = points(0, 30, |i| exp(i, 1e-3), |_| 0.0);
        let y: Vec<f64> = x.iter().map(|x| 0.1 * x).collect();
        assert_eq!(est.update(&t, &x, &y), 0.0);
        assert_eq!(est.ratio(), 0.0);
        // Trusted again only after ten more fits.
        let got = run(&mut est, 10, |i| exp(i, 1e-3), |_| 0.0);
        assert!(got[..9].iter().all(|&a| a == 0.0) && got[9] < -0.45);
        // Too few points: no fit, withdrawn.
        assert_eq!(est.update(&t[..3], &x[..3], &y[..3]), 0.0);
        assert_eq!(est.ratio(), 0.0);
    }

    #[test]
    fn trusted_estimate_is_kept_while_its_sign_holds() {
        let mut est = JitterAsymmetry::new(None);
        run(&mut est, 12, |i| exp(i, 1e-3), |_| 0.0);
        let (t, x, _) = points(3, 30, |i| exp(i, 1e-3), |_| 0.0);
        let y: Vec<f64> = x.iter().map(|x| -0.3 * x).collect();
        assert!((est.update(&t, &x, &y) + 0.3).abs() < 1e-9);
    }

    #[test]
    fn degenerate_or_non_finite_points_never_panic_and_give_no_slope() {
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [0.0, 1e-4, -1e-4, 2e-4, 0.0];
        // Equal delays, delays in step with time, too few or mismatched points.
        assert_eq!(delay_slope(&t, &[1e-3; 5], &y), None);
        assert_eq!(delay_slope(&t, &[0.0, 1e-3, 2e-3, 3e-3, 4e-3], &y), None);
        assert_eq!(delay_slope(&[], &[], &[]), None);
        assert_eq!(delay_slope(&t, &[0.0; 4], &y), None);
        assert_eq!(
            delay_slope(&[0.0; 5], &[0.0, 1e-3, 0.0, 2e-3, 0.0], &y),
            None
        );
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut x = [0.0, 1e-3, 0.0, 2e-3, 5e-4];
            assert!(delay_slope(&t, &x, &y).is_some());
            x[2] = bad;
            assert_eq!(delay_slope(&t, &x, &y), None);
            let mut yy = y;
            yy[0] = bad;
            assert_eq!(delay_slope(&t, &[0.0, 1e-3, 0.0, 2e-3, 5e-4], &yy), None);
        }
        // Huge but finite values: an answer or none, never a panic or a non-finite ratio.
        let mut est = JitterAsymmetry::new(None);
        for _ in 0..20 {
            est.update(
                &[0.0, 1e300, -1e300, 5.0],
                &[1e300, 0.0, 1e-300, 2.0],
                &[1e300; 4],
            );
            assert!(est.ratio().is_finite() && est.ratio().abs() <= 0.5);
        }
    }
}
