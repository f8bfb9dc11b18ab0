//! Summary statistics of `gnomon-bench sync`: root mean square and largest magnitude of a series
//! of offsets, and the median of per-run figures. Non-finite values (a figure a run could not
//! measure, printed as NaN) are left out of the median, so one failed run does not hide the
//! others; an empty input gives NaN.

/// Root mean square of `v` (NaN when empty).
pub fn rms(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
}

/// Largest magnitude in `v` (NaN when empty).
pub fn max_abs(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Median of the finite values of `v`: the middle one, or the mean of the two middle ones for
/// an even count; NaN when none is finite.
pub fn median(v: &[f64]) -> f64 {
    let mut f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    f.sort_by(f64::total_cmp);
    let n = f.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => f[n / 2],
        _ => (f[n / 2 - 1] + f[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_is_the_root_of_the_mean_square() {
        assert_eq!(rms(&[3.0, -4.0]), (12.5f64).sqrt());
        assert_eq!(rms(&[-2.0, 2.0, 2.0, -2.0]), 2.0);
        assert_eq!(rms(&[5e-6]), 5e-6);
        assert!(rms(&[]).is_nan());
    }

    #[test]
    fn max_abs_takes_the_largest_magnitude_of_either_sign() {
        assert_eq!(max_abs(&[1.0, -7.5, 3.0]), 7.5);
        assert_eq!(max_abs(&[0.0]), 0.0);
        assert!(max_abs(&[]).is_nan());
    }

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middle_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[-1.0]), -1.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn median_leaves_out_runs_that_measured_nothing() {
        assert_eq!(median(&[f64::NAN, 5.0, 1.0, f64::INFINITY, 3.0]), 3.0);
        assert!(median(&[f64::NAN, f64::NAN]).is_nan());
    }
}
