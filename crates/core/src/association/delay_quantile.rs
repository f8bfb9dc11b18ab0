//! The `maxdelayquant P` test (chrony.conf(5), chrony 4.3+): a measurement whose round-trip
//! delay is above an estimate of the P-quantile of the source's delays is rejected, in place
//! of the `maxdelaydevratio` test.
//!
//! The estimate is the empirical P-quantile of the last [`HISTORY`] delays measured with the
//! source, rejected measurements included (leaving them out would pull the quantile down
//! until nearly everything is rejected). Until [`MIN_DELAYS`] delays are known every
//! measurement passes. A fixed ring, so the memory and the work per packet are bounded.

/// Delays remembered.
pub const HISTORY: usize = 64;
/// Delays needed before the test rejects anything.
pub const MIN_DELAYS: usize = 4;

/// Recent delays of one source.
#[derive(Debug, Clone)]
pub struct DelayQuantile {
    quantile: f64,
    delays: [f64; HISTORY],
    len: usize,
    next: usize,
}

impl DelayQuantile {
    /// A test for quantile `p`, clamped to chrony's documented 0.05..=0.95.
    pub fn new(p: f64) -> Self {
        let quantile = if p.is_finite() {
            p.clamp(0.05, 0.95)
        } else {
            0.5
        };
        DelayQuantile {
            quantile,
            delays: [0.0; HISTORY],
            len: 0,
            next: 0,
        }
    }

    /// The current estimate of the quantile, once enough delays are known.
    pub fn estimate(&self) -> Option<f64> {
        if self.len < MIN_DELAYS {
            return None;
        }
        let mut sorted = self.delays;
        let known = &mut sorted[..self.len];
        known.sort_unstable_by(f64::total_cmp);
        // Nearest rank: the smallest delay with at least a fraction p of the delays at or
        // below it.
        let rank = (self.quantile * self.len as f64).ceil() as usize;
        known.get(rank.clamp(1, self.len) - 1).copied()
    }

    /// Records `delay` and says whether it is above the estimate made before it (reject).
    pub fn exceeded(&mut self, delay: f64) -> bool {
        if !delay.is_finite() {
            return true;
        }
        let over = self.estimate().is_some_and(|q| delay > q);
        self.delays[self.next] = delay;
        self.next = (self.next + 1) % HISTORY;
        self.len = (self.len + 1).min(HISTORY);
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_delays_pass_then_only_the_low_quantile() {
        let mut q = DelayQuantile::new(0.2);
        for d in [5.0, 1.0, 4.0, 2.0] {
            assert!(!q.exceeded(d));
        }
        // Known: 1 2 4 5; the 20 % rank is the first: 1.
        assert_eq!(q.estimate(), Some(1.0));
        assert!(q.exceeded(3.0));
        assert!(!q.exceeded(1.0));
    }

    #[test]
    fn rejected_delays_still_move_the_estimate() {
        let mut q = DelayQuantile::new(0.5);
        for _ in 0..HISTORY {
            q.exceeded(1e-3);
        }
        // The path got slower: after enough samples the median follows.
        let mut accepted = 0;
        for _ in 0..HISTORY {
            if !q.exceeded(2e-3) {
                accepted += 1;
            }
        }
        assert!(accepted > HISTORY / 3, "{accepted}");
        assert_eq!(q.estimate(), Some(2e-3));
    }

    #[test]
    fn quantile_is_clamped_and_nan_rejected() {
        let mut q = DelayQuantile::new(7.0);
        assert_eq!(q.quantile, 0.95);
        assert!(q.exceeded(f64::NAN));
        assert_eq!(DelayQuantile::new(f64::NAN).quantile, 0.5);
    }
}
