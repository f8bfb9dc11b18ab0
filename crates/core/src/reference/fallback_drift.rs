//! Fallback drifts (chrony.conf `fallbackdrift MIN MAX`): long-term averages of the clock's
//! frequency correction over intervals of 2^MIN to 2^MAX seconds. When the clock has not been
//! updated for 2^MIN seconds its frequency is set to the first average, after 2^(MIN+1) seconds
//! to the second, and so on up to 2^MAX: a short-term deviation of the drift just before the
//! updates stopped is not carried on for days. Setting a fallback makes the clock
//! unsynchronised (the caller's part).

/// Largest accepted interval exponent (2^30 s is 34 years).
const MAX_LOG2: i32 = 30;

/// The averages and which one is in use.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackDrift {
    min_log2: i32,
    /// One (average frequency ppm, seconds of history it holds) per interval, MIN first.
    averages: Vec<(f64, f64)>,
    /// Local time of the last clock update and the frequency it left (ppm).
    last: Option<(f64, f64)>,
    /// Index of the fallback in use since the last update.
    active: Option<usize>,
}

impl FallbackDrift {
    /// Averages for `fallbackdrift min max` (log2 seconds). `None` when disabled: either is 0
    /// (chrony's "no fallbacks"), negative, beyond 2^30 s, or min > max.
    pub fn new(min_log2: i32, max_log2: i32) -> Option<FallbackDrift> {
        if min_log2 <= 0 || max_log2 <= 0 || min_log2 > max_log2 || max_log2 > MAX_LOG2 {
            return None;
        }
        let n = usize::try_from(max_log2 - min_log2 + 1).ok()?;
        Some(FallbackDrift {
            min_log2,
            averages: vec![(0.0, 0.0); n],
            last: None,
            active: None,
        })
    }

    /// Records a clock update at local time `now` that left the frequency correction at
    /// `freq_ppm`: the frequency of the interval since the previous update enters every
    /// average, each forgetting its past over its own interval.
    pub fn update(&mut self, now: f64, freq_ppm: f64) {
        if let Some((t, f)) = self.last {
            let dt = (now - t).max(0.0);
            if dt > 0.0 && f.is_finite() {
                for (i, (avg, held)) in self.averages.iter_mut().enumerate() {
                    let span = interval(self.min_log2, i);
                    // A time-weighted mean while the history is shorter than the interval,
                    // then an exponential average with that time constant.
                    let keep = held.min(span);
                    *avg = (*avg * keep + f * dt) / (keep + dt);
                    *held = (*held + dt).min(span);
                }
            }
        }
        if freq_ppm.is_finite() {
            self.last = Some((now, freq_ppm));
        }
        self.active = None;
    }

    /// The fallback frequency (ppm) to set at local time `now`, when one is due that is not
    /// already in use: the average of the longest interval `now` is past since the last
    /// update, if that average holds any history.
    pub fn due(&mut self, now: f64) -> Option<f64> {
        let (t, _) = self.last?;
        let elapsed = now - t;
        let first = interval(self.min_log2, 0);
        if elapsed.is_nan() || elapsed < first {
            return None;
        }
        // Intervals double: the index is how many doublings of the first `elapsed` covers.
        let doublings = (elapsed / first).log2().floor();
        let last_index = self.averages.len() - 1;
        let index = if doublings >= last_index as f64 {
            last_index
        } else {
            doublings.max(0.0) as usize
        };
        if self.active.is_some_and(|a| a >= index) {
            return None;
        }
        let (avg, held) = self.averages[index];
        self.active = Some(index);
        (held > 0.0).then_some(avg)
    }

    /// Local time at which the next fallback becomes due (the daemon must wake then even
    /// with every source offline, when no poll timer runs), or `None` when none is left.
    pub fn next_due(&self) -> Option<f64> {
        let (t, _) = self.last?;
        let next = self.active.map_or(0, |a| a + 1);
        (next < self.averages.len()).then(|| t + interval(self.min_log2, next))
    }

    /// Index (0 = the first, 2^MIN s) of the fallback in use, if any.
    pub fn active(&self) -> Option<usize> {
        self.active
    }
}

/// Length of the interval of fallback `i`, seconds.
fn interval(min_log2: i32, i: usize) -> f64 {
    2f64.powi(min_log2.saturating_add(i32::try_from(i).unwrap_or(MAX_LOG2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_negative_or_reversed_limits_disable_fallbacks() {
        assert!(FallbackDrift::new(0, 19).is_none());
        assert!(FallbackDrift::new(16, 0).is_none());
        assert!(FallbackDrift::new(-1, 3).is_none());
        assert!(FallbackDrift::new(19, 16).is_none());
        assert!(FallbackDrift::new(16, 40).is_none());
        assert!(FallbackDrift::new(16, 19).is_some());
    }

    #[test]
    fn fallbacks_switch_at_doubling_intervals_after_the_last_update() {
        let mut f = FallbackDrift::new(4, 6).unwrap();
        // 200 s at +10 ppm, then 8 s at +50 ppm just before the updates stop.
        let mut t = 0.0;
        f.update(t, 10.0);
        while t < 200.0 {
            t += 1.0;
            f.update(t, if t < 200.0 { 10.0 } else { 50.0 });
        }
        for _ in 0..8 {
            t += 1.0;
            f.update(t, 50.0);
        }
        let last = t;
        assert_eq!(f.next_due(), Some(last + 16.0));
        assert_eq!(f.due(last + 15.0), None, "before 2^4 s");
        let first = f.due(last + 16.0).unwrap();
        assert_eq!(f.next_due(), Some(last + 32.0));
        // The 16 s average has seen the recent deviation, the 64 s one much less of it.
        assert!(first > 20.0 && first < 50.0, "{first}");
        assert_eq!(f.active(), Some(0));
        assert_eq!(f.due(last + 20.0), None, "same fallback, not set again");
        let second = f.due(last + 32.0).unwrap();
        assert!(second < first, "{second} {first}");
        let third = f.due(last + 1000.0).unwrap();
        assert!(third < second && third > 10.0, "{third}");
        assert_eq!(f.active(), Some(2));
        assert_eq!(f.next_due(), None, "no fallback after the last");
        assert_eq!(f.due(last + 1e6), None, "the last fallback stays");
        // A new update ends the fallback.
        f.update(last + 2e6, 12.0);
        assert_eq!(f.active(), None);
    }

    #[test]
    fn no_fallback_before_any_history_or_update() {
        let mut f = FallbackDrift::new(4, 5).unwrap();
        assert_eq!(f.due(1e9), None);
        f.update(0.0, 10.0);
        // One update only: no interval has been averaged yet.
        assert_eq!(f.due(100.0), None);
        assert_eq!(f.due(f64::NAN), None);
    }
}
