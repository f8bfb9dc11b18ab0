//! The simulator's virtual clock: a [`ClockDriver`] whose raw reading runs at a rate set by an
//! intrinsic frequency error (with random-walk wander), the frequency correction the engine
//! sets, and the slew the engine asked for, like a kernel clock disciplined by chronyd.
//!
//! True time is owned by the simulation, which moves the clock forward with
//! [`VirtualClock::advance_to`]; the clock integrates its rate piecewise between calls. A kernel
//! leap second (`set_leap`) is applied when the reading crosses midnight, as Linux does.

use gnomon_core::local_clock::{ClockDriver, ClockError, LeapState};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Parameters of a virtual clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockParams {
    /// Initial offset of the reading from true time (seconds; positive = ahead).
    pub initial_offset: f64,
    /// Intrinsic frequency error (dimensionless; 100e-6 = 100 ppm fast).
    pub freq_error: f64,
    /// Random-walk wander of the frequency (dimensionless per √s).
    pub wander: f64,
    /// Default slew rate when the engine does not give one (ppm).
    pub default_slew_ppm: f64,
    /// Largest slew rate the driver accepts (ppm).
    pub max_slew_ppm: f64,
}

impl Default for ClockParams {
    fn default() -> Self {
        ClockParams {
            initial_offset: 0.0,
            freq_error: 0.0,
            wander: 0.0,
            default_slew_ppm: 500.0,
            max_slew_ppm: 83333.333,
        }
    }
}

/// A simulated, disciplinable clock.
#[derive(Debug)]
pub struct VirtualClock {
    params: ClockParams,
    rng: StdRng,
    true_time: f64,
    reading: f64,
    intrinsic: f64,
    freq_ppm: f64,
    remaining: f64,
    slew_rate: f64,
    leap: LeapState,
    steps: Vec<(f64, f64)>,
    sync_status: Option<(bool, f64, f64)>,
}

impl VirtualClock {
    /// A clock at true time `start` with the given errors; `seed` drives the wander.
    pub fn new(params: ClockParams, start: f64, seed: u64) -> Self {
        VirtualClock {
            params,
            rng: StdRng::seed_from_u64(seed),
            true_time: start,
            reading: start + params.initial_offset,
            intrinsic: params.freq_error,
            freq_ppm: 0.0,
            remaining: 0.0,
            slew_rate: 0.0,
            leap: LeapState::Normal,
            steps: Vec::new(),
            sync_status: None,
        }
    }

    /// Current true time.
    pub fn true_time(&self) -> f64 {
        self.true_time
    }

    /// The raw reading at the current true time (no side effects).
    pub fn reading(&self) -> f64 {
        self.reading
    }

    /// Rate of the reading relative to true time, minus one, without the slew.
    pub fn frequency_error(&self) -> f64 {
        self.intrinsic + self.freq_ppm * 1e-6
    }

    /// Steps made by the engine: (true time, amount).
    pub fn steps(&self) -> &[(f64, f64)] {
        &self.steps
    }

    /// The last `set_sync_status` call.
    pub fn sync_status(&self) -> Option<(bool, f64, f64)> {
        self.sync_status
    }

    /// True time at which the reading will show `reading`, assuming the current rate.
    pub fn true_time_of(&self, reading: f64) -> f64 {
        let mut rate = 1.0 + self.frequency_error();
        if self.remaining != 0.0 {
            rate += self.remaining.signum() * self.slew_rate;
        }
        self.true_time + (reading - self.reading) / rate.max(0.5)
    }

    /// Moves true time forward to `t`, integrating rate, slew, wander and a kernel leap.
    pub fn advance_to(&mut self, t: f64) {
        let total = t - self.true_time;
        if total <= 0.0 {
            return;
        }
        let mut dt = total;
        self.true_time = t;
        let base_rate = self.frequency_error();
        let before = self.reading;
        // The slew ends part-way through when the remaining correction runs out.
        if self.remaining != 0.0 && self.slew_rate > 0.0 {
            let slew_time = (self.remaining.abs() / self.slew_rate).min(dt);
            let slewed = self.remaining.signum() * self.slew_rate * slew_time;
            self.reading += slew_time * (1.0 + base_rate) + slewed;
            self.remaining -= slewed;
            if self.remaining.abs() < 1e-15 {
                self.remaining = 0.0;
            }
            dt -= slew_time;
        }
        self.reading += dt * (1.0 + base_rate);
        if self.params.wander > 0.0 {
            let n: f64 = StandardNormal.sample(&mut self.rng);
            self.intrinsic += self.params.wander * total.sqrt() * n;
        }
        self.kernel_leap(before);
    }

    fn kernel_leap(&mut self, before: f64) {
        let day = 86400.0;
        match self.leap {
            LeapState::Insert => {
                let midnight = (before / day).floor() * day + day;
                if self.reading >= midnight {
                    self.reading -= 1.0;
                    self.leap = LeapState::Normal;
                }
            }
            LeapState::Delete => {
                let point = (before / day).floor() * day + day - 1.0;
                if before < point && self.reading >= point {
                    self.reading += 1.0;
                    self.leap = LeapState::Normal;
                }
            }
            LeapState::Normal => {}
        }
    }
}

impl ClockDriver for VirtualClock {
    fn read(&mut self) -> f64 {
        self.reading
    }

    fn frequency_ppm(&self) -> f64 {
        self.freq_ppm
    }

    fn set_frequency_ppm(&mut self, ppm: f64) -> Result<(), ClockError> {
        if !ppm.is_finite() || ppm.abs() > 500_000.0 {
            return Err(ClockError::InvalidValue("frequency"));
        }
        self.freq_ppm = ppm;
        Ok(())
    }

    fn accrue_offset(&mut self, offset: f64) -> Result<(), ClockError> {
        self.accrue_offset_with_rate(offset, self.params.default_slew_ppm)
    }

    fn accrue_offset_with_rate(&mut self, offset: f64, rate_ppm: f64) -> Result<(), ClockError> {
        if !offset.is_finite() || !rate_ppm.is_finite() {
            return Err(ClockError::InvalidValue("offset"));
        }
        self.remaining += offset;
        self.slew_rate = (rate_ppm.clamp(1.0, self.params.max_slew_ppm)) * 1e-6;
        Ok(())
    }

    fn remaining_offset(&self) -> f64 {
        self.remaining
    }

    fn step(&mut self, offset: f64) -> Result<(), ClockError> {
        if !offset.is_finite() {
            return Err(ClockError::InvalidValue("step"));
        }
        self.reading += offset;
        self.steps.push((self.true_time, offset));
        Ok(())
    }

    fn set_leap(&mut self, leap: LeapState) -> Result<(), ClockError> {
        self.leap = leap;
        Ok(())
    }

    fn set_sync_status(
        &mut self,
        synchronised: bool,
        est_error: f64,
        max_error: f64,
    ) -> Result<(), ClockError> {
        self.sync_status = Some((synchronised, est_error, max_error));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_error_accumulates_offset() {
        let mut c = VirtualClock::new(
            ClockParams {
                freq_error: 100e-6,
                ..Default::default()
            },
            0.0,
            1,
        );
        c.advance_to(1000.0);
        assert!((c.reading() - 1000.1).abs() < 1e-9);
        c.set_frequency_ppm(-100.0).unwrap();
        c.advance_to(2000.0);
        assert!((c.reading() - 2000.1).abs() < 1e-9);
    }

    #[test]
    fn slew_completes_at_requested_rate() {
        let mut c = VirtualClock::new(ClockParams::default(), 0.0, 1);
        c.accrue_offset_with_rate(-0.01, 1000.0).unwrap();
        c.advance_to(5.0);
        assert!((c.remaining_offset() + 0.005).abs() < 1e-12);
        assert!((c.reading() - (5.0 - 0.005)).abs() < 1e-12);
        c.advance_to(100.0);
        assert_eq!(c.remaining_offset(), 0.0);
        assert!((c.reading() - (100.0 - 0.01)).abs() < 1e-12);
    }

    #[test]
    fn kernel_leap_insert_steps_back_at_midnight() {
        let mut c = VirtualClock::new(ClockParams::default(), 86400.0 - 10.0, 1);
        c.set_leap(LeapState::Insert).unwrap();
        c.advance_to(86400.0 + 10.0);
        assert!((c.reading() - (86400.0 + 9.0)).abs() < 1e-9);
        c.advance_to(2.0 * 86400.0 + 10.0);
        assert!(
            (c.reading() - (2.0 * 86400.0 + 9.0)).abs() < 1e-9,
            "only once"
        );
    }

    #[test]
    fn wander_changes_frequency_as_random_walk() {
        let mut c = VirtualClock::new(
            ClockParams {
                wander: 1e-7,
                ..Default::default()
            },
            0.0,
            7,
        );
        for i in 1..=100 {
            c.advance_to(i as f64 * 100.0);
        }
        let f = c.frequency_error();
        assert!(f != 0.0 && f.abs() < 1e-4, "{f}");
    }
}
