//! What a test network does to every datagram, each way: a fixed one-way delay, a uniformly
//! random extra delay (jitter) and a loss probability, the three figures netem would be given.
//! [`Impairment::fate`] turns two uniform draws into one datagram's fate, so every relay that
//! owns a seeded generator replays the same fates from the same seed.

use std::fmt;
use std::time::Duration;

/// Longest hold (`delay + jitter`) [`Impairment::check`] accepts, seconds. The relay forgets
/// an idle client's socket after a longer time, so no held datagram outlives its socket.
pub const MAX_HOLD: f64 = 1.0;

/// What a relay does to every datagram, each way.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Fixed one-way delay, seconds.
    pub delay: f64,
    /// Extra delay drawn uniformly from `[0, jitter)`, seconds.
    pub jitter: f64,
    /// Probability that a datagram is dropped.
    pub loss: f64,
}

impl Impairment {
    /// Forwards at once: the relay's own scheduling is the only noise.
    pub const CLEAN: Impairment = Impairment {
        delay: 0.0,
        jitter: 0.0,
        loss: 0.0,
    };
    /// 5 ms one-way delay, 0–2 ms uniform jitter, 5 % loss, each way.
    pub const IMPAIRED: Impairment = Impairment {
        delay: 0.005,
        jitter: 0.002,
        loss: 0.05,
    };

    /// Checks that the figures are finite, non-negative, `loss` at most 1 and the longest hold
    /// at most [`MAX_HOLD`].
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(self.delay) && ok(self.jitter) && ok(self.loss) && self.loss <= 1.0) {
            return Err(format!("bad impairment {self}"));
        }
        if self.delay + self.jitter > MAX_HOLD {
            return Err(format!("impairment {self} holds longer than {MAX_HOLD} s"));
        }
        Ok(())
    }

    /// The fate of one datagram from two independent uniform draws in `[0, 1)`: `None` when
    /// `u_loss < loss` (dropped), else how long it is held, `delay + jitter × u_jitter`.
    pub fn fate(&self, u_loss: f64, u_jitter: f64) -> Option<Duration> {
        if u_loss < self.loss {
            return None;
        }
        let hold = self.delay + self.jitter * u_jitter;
        // A checked impairment and draws in [0, 1) give a finite non-negative hold; anything
        // else is held for no time rather than trusted.
        Some(Duration::try_from_secs_f64(hold).unwrap_or(Duration::ZERO))
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ms one-way delay, 0-{} ms jitter, {} % loss each way",
            self.delay * 1e3,
            self.jitter * 1e3,
            self.loss * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn fate_drops_below_the_loss_probability_and_holds_delay_plus_scaled_jitter() {
        let imp = Impairment::IMPAIRED;
        assert_eq!(imp.fate(0.049, 0.5), None);
        assert_eq!(imp.fate(0.0, 0.0), None);
        assert_eq!(imp.fate(0.05, 0.0), Some(Duration::from_millis(5)));
        assert_eq!(imp.fate(0.5, 0.5), Some(Duration::from_millis(6)));
        let longest = imp.fate(0.99, 0.999_999).unwrap();
        assert!(longest < Duration::from_millis(7) && longest > Duration::from_micros(6_999));
        assert_eq!(Impairment::CLEAN.fate(0.0, 0.7), Some(Duration::ZERO));
    }

    #[test]
    fn seeded_fates_have_the_configured_loss_rate_and_mean_hold() {
        let imp = Impairment::IMPAIRED;
        let mut rng = StdRng::seed_from_u64(7);
        let (mut lost, mut held, mut sum) = (0u32, 0u32, 0.0f64);
        for _ in 0..100_000 {
            match imp.fate(rng.random(), rng.random()) {
                None => lost += 1,
                Some(d) => {
                    held += 1;
                    sum += d.as_secs_f64();
                    assert!((0.005..0.007).contains(&d.as_secs_f64()));
                }
            }
        }
        let rate = f64::from(lost) / 100_000.0;
        assert!((0.045..0.055).contains(&rate), "loss rate {rate}");
        let mean = sum / f64::from(held);
        assert!((mean - 0.006).abs() < 2e-5, "mean hold {mean}");
    }

    #[test]
    fn check_refuses_negative_nan_certain_loss_above_one_and_long_holds() {
        assert!(Impairment::IMPAIRED.check().is_ok());
        assert!(Impairment::CLEAN.check().is_ok());
        let bad = [
            Impairment {
                delay: -0.001,
                ..Impairment::CLEAN
            },
            Impairment {
                jitter: f64::NAN,
                ..Impairment::CLEAN
            },
            Impairment {
                loss: 1.5,
                ..Impairment::CLEAN
            },
            Impairment {
                delay: 0.8,
                jitter: 0.3,
                loss: 0.0,
            },
        ];
        for imp in bad {
            assert!(imp.check().is_err(), "{imp:?}");
        }
    }

    #[test]
    fn display_names_the_three_figures_in_milliseconds_and_percent() {
        assert_eq!(
            Impairment::IMPAIRED.to_string(),
            "5 ms one-way delay, 0-2 ms jitter, 5 % loss each way"
        );
    }
}
