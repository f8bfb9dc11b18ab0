//! The virtual network and the simulated NTP servers.
//!
//! A [`Link`] gives each packet a one-way delay of `base + jitter·Exp(1)` (the shape of
//! chrony's simulation tests) plus an optional uniform extra delay (the shape of the real-daemon
//! benchmark's relay), optional exponential jitter of one direction only (queueing on one side
//! of the path: asymmetric jitter), an optional fixed asymmetry, random loss and outage windows
//! in which every packet is lost. A [`SimServer`] is an ideal NTP responder (RFC 5905 mode 4) whose
//! clock is true UTC plus an optional lie, which can announce leap seconds and step its time.

use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};
use rand::Rng;
use rand_distr::{Distribution, Exp1};

/// Properties of the path between a client and a server (or a peer).
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Fixed one-way delay, seconds.
    pub base_delay: f64,
    /// Scale of the exponential extra delay, seconds.
    pub jitter: f64,
    /// Width of a uniformly distributed extra delay in `[0, uniform_jitter)`, seconds (the
    /// impairment of the `gnomon-bench sync` relay).
    pub uniform_jitter: f64,
    /// Extra fixed delay of the request direction (client → server), seconds; negative values
    /// shorten it (never below zero).
    pub asymmetry: f64,
    /// Scale of an exponential extra delay of requests only (client → server), seconds.
    pub request_jitter: f64,
    /// Scale of an exponential extra delay of replies only (server → client), seconds.
    pub response_jitter: f64,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// True-time windows `[from, to)` in which every packet is lost.
    pub outages: Vec<(f64, f64)>,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            base_delay: 1e-4,
            jitter: 1e-4,
            uniform_jitter: 0.0,
            asymmetry: 0.0,
            request_jitter: 0.0,
            response_jitter: 0.0,
            loss: 0.0,
            outages: Vec::new(),
        }
    }
}

impl Link {
    /// Delay of a packet sent at true time `t`, or `None` when it is lost.
    pub fn delay(&self, t: f64, request: bool, rng: &mut impl Rng) -> Option<f64> {
        if self.outages.iter().any(|&(a, b)| t >= a && t < b) {
            return None;
        }
        if self.loss > 0.0 && rng.random::<f64>() < self.loss {
            return None;
        }
        let e: f64 = Exp1.sample(rng);
        let mut d = self.base_delay + self.jitter * e;
        if self.uniform_jitter > 0.0 {
            // Drawn only when set, so the other links' random streams stay as they were.
            d += self.uniform_jitter * rng.random::<f64>();
        }
        let one_way = if request {
            d += self.asymmetry;
            self.request_jitter
        } else {
            self.response_jitter
        };
        if one_way > 0.0 {
            // Drawn only when set, as above.
            let e: f64 = Exp1.sample(rng);
            d += one_way * e;
        }
        Some(d.max(0.0))
    }
}

/// A leap second as the simulation's UTC sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeapEvent {
    /// True time of the midnight at which it happens (end of the leap day).
    pub at: f64,
    /// +1 inserts a second, -1 deletes one.
    pub sign: i32,
}

impl LeapEvent {
    /// UTC (what a correct clock reads) at true time `t`.
    pub fn utc(events: &[LeapEvent], t: f64) -> f64 {
        let mut u = t;
        for e in events {
            // A deleted second is skipped at 23:59:59; an inserted one repeats at midnight.
            let point = if e.sign < 0 { e.at - 1.0 } else { e.at };
            if t >= point {
                u -= f64::from(e.sign);
            }
        }
        u
    }

    /// The leap announced at true time `t` (during the leap day).
    pub fn announced(events: &[LeapEvent], t: f64) -> LeapIndicator {
        for e in events {
            if t >= e.at - 86400.0 && t < e.at {
                return if e.sign > 0 {
                    LeapIndicator::InsertSecond
                } else {
                    LeapIndicator::DeleteSecond
                };
            }
        }
        LeapIndicator::NoWarning
    }
}

/// A simulated server.
#[derive(Debug, Clone, PartialEq)]
pub struct SimServer {
    /// Constant error of its clock (a liar when non-zero), seconds.
    pub lie: f64,
    /// `(true time, extra offset)`: from that time on, the server's time jumps by this much.
    pub jump: Option<(f64, f64)>,
    /// Stratum it announces.
    pub stratum: u8,
    /// Its link to the clients.
    pub link: Link,
    /// Announce unsynchronised (leap 3) instead of answering with time.
    pub unsynchronised: bool,
}

impl Default for SimServer {
    fn default() -> Self {
        SimServer {
            lie: 0.0,
            jump: None,
            stratum: 1,
            link: Link::default(),
            unsynchronised: false,
        }
    }
}

impl SimServer {
    /// The server's time at true time `t`.
    pub fn time(&self, t: f64, leaps: &[LeapEvent]) -> f64 {
        let mut s = LeapEvent::utc(leaps, t) + self.lie;
        if let Some((at, by)) = self.jump {
            if t >= at {
                s += by;
            }
        }
        s
    }

    /// Reply to a request that arrived at true time `t` (None for anything but a valid client
    /// request).
    pub fn respond(&self, request: &[u8], t: f64, leaps: &[LeapEvent]) -> Option<[u8; 48]> {
        let q = Header::decode(request).ok()?;
        if q.mode != Mode::Client {
            return None;
        }
        let rx = self.time(t, leaps);
        let tx = rx + 5e-6;
        let h = Header {
            leap: if self.unsynchronised {
                LeapIndicator::Unsynchronised
            } else {
                LeapEvent::announced(leaps, t)
            },
            version: q.version,
            mode: Mode::Server,
            stratum: self.stratum,
            poll: q.poll,
            precision: -24,
            root_delay: NtpShort::from_seconds(0.0),
            root_dispersion: NtpShort::from_seconds(1e-5),
            reference_id: u32::from_be_bytes(*b"GPS\0"),
            reference_timestamp: NtpTimestamp::from_unix_f64(rx - 1.0),
            origin_timestamp: q.transmit_timestamp,
            receive_timestamp: NtpTimestamp::from_unix_f64(rx),
            transmit_timestamp: NtpTimestamp::from_unix_f64(tx),
        };
        Some(h.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn link_delay_has_base_and_exponential_tail_and_outages() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let l = Link {
            outages: vec![(10.0, 20.0)],
            ..Default::default()
        };
        let n = 10_000;
        let mean: f64 = (0..n)
            .map(|_| l.delay(0.0, false, &mut rng).unwrap())
            .sum::<f64>()
            / n as f64;
        assert!((mean - 2e-4).abs() < 1e-5, "{mean}");
        assert!(l.delay(15.0, true, &mut rng).is_none());
    }

    #[test]
    fn uniform_jitter_spreads_delay_evenly_above_base() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let l = Link {
            base_delay: 5e-3,
            jitter: 0.0,
            uniform_jitter: 2e-3,
            ..Default::default()
        };
        let d: Vec<f64> = (0..10_000)
            .map(|_| l.delay(0.0, true, &mut rng).unwrap())
            .collect();
        assert!(d.iter().all(|&x| (5e-3..7e-3).contains(&x)));
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        assert!((mean - 6e-3).abs() < 2e-5, "{mean}");
    }

    #[test]
    fn one_way_jitter_delays_only_its_direction() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let l = Link {
            base_delay: 1e-4,
            jitter: 0.0,
            request_jitter: 1e-3,
            ..Default::default()
        };
        let n = 10_000;
        let mean = |request: bool, rng: &mut rand::rngs::StdRng| {
            (0..n)
                .map(|_| l.delay(0.0, request, rng).unwrap())
                .sum::<f64>()
                / n as f64
        };
        let req = mean(true, &mut rng);
        assert!((req - 1.1e-3).abs() < 5e-5, "{req}");
        let resp = mean(false, &mut rng);
        assert!((resp - 1e-4).abs() < 1e-12, "{resp}");
        let l = Link {
            request_jitter: 0.0,
            response_jitter: 1e-3,
            ..l
        };
        assert_eq!(l.delay(0.0, true, &mut rng), Some(1e-4));
        assert!(l.delay(0.0, false, &mut rng).unwrap() > 1e-4);
    }

    #[test]
    fn utc_repeats_inserted_second_and_skips_deleted() {
        let ins = [LeapEvent {
            at: 1000.0,
            sign: 1,
        }];
        assert_eq!(LeapEvent::utc(&ins, 999.5), 999.5);
        assert_eq!(LeapEvent::utc(&ins, 1000.5), 999.5);
        let del = [LeapEvent {
            at: 1000.0,
            sign: -1,
        }];
        assert_eq!(LeapEvent::utc(&del, 999.5), 1000.5);
        assert_eq!(
            LeapEvent::announced(&ins, 500.0),
            LeapIndicator::InsertSecond
        );
    }
}
