//! The delay line every impairing relay runs its datagrams through: each datagram put in gets
//! its fate from the [`Impairment`] and a seeded generator (dropped, or held for `delay` plus
//! a uniform `[0, jitter)`), and comes out when it is due, in order of due time and, among
//! equal due times, of arrival. The line is bounded; what would exceed it is refused. `H` is
//! the relay's own note of where a datagram goes next.
//!
//! Time is an argument (`now`), so the line itself never reads a clock; a seed replays the
//! same sequence of fates.

use crate::impairment::Impairment;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

/// What [`DelayLine::hold`] did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Queued until its due time.
    Held,
    /// Dropped by the loss draw.
    Lost,
    /// Refused: the line already holds its limit.
    Overflow,
}

/// A seeded, bounded queue of impaired datagrams ordered by due time.
pub struct DelayLine<H> {
    imp: Impairment,
    rng: StdRng,
    limit: usize,
    queue: BinaryHeap<Reverse<Held<H>>>,
    seq: u64,
}

/// A held datagram. Ordered by due time, then by arrival: `H` plays no part.
struct Held<H> {
    due: Instant,
    seq: u64,
    hop: H,
    data: Vec<u8>,
}

impl<H> Held<H> {
    fn key(&self) -> (Instant, u64) {
        (self.due, self.seq)
    }
}

impl<H> PartialEq for Held<H> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<H> Eq for Held<H> {}

impl<H> PartialOrd for Held<H> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<H> Ord for Held<H> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl<H> DelayLine<H> {
    /// A line impairing by `imp` (checked: see [`Impairment::check`]) with fates drawn from a
    /// generator seeded with `seed`, holding at most `limit` datagrams.
    pub fn new(imp: Impairment, seed: u64, limit: usize) -> Result<DelayLine<H>, String> {
        imp.check()?;
        Ok(DelayLine {
            imp,
            rng: StdRng::seed_from_u64(seed),
            limit,
            queue: BinaryHeap::new(),
            seq: 0,
        })
    }

    /// Draws the fate of `data`, arrived at `now` and going to `hop`, and queues it unless it
    /// is lost or the line is full. Every datagram takes two draws, whatever its fate, so the
    /// fates of later datagrams do not depend on the line's occupancy.
    pub fn hold(&mut self, hop: H, data: &[u8], now: Instant) -> Outcome {
        let (u_loss, u_jitter) = (self.rng.random::<f64>(), self.rng.random::<f64>());
        let Some(hold) = self.imp.fate(u_loss, u_jitter) else {
            return Outcome::Lost;
        };
        if self.queue.len() >= self.limit {
            return Outcome::Overflow;
        }
        self.seq += 1;
        self.queue.push(Reverse(Held {
            due: now + hold,
            seq: self.seq,
            hop,
            data: data.to_vec(),
        }));
        Outcome::Held
    }

    /// The earliest held datagram if it is due by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(H, Vec<u8>)> {
        if self.queue.peek().is_some_and(|Reverse(h)| h.due <= now) {
            return self.queue.pop().map(|Reverse(h)| (h.hop, h.data));
        }
        None
    }

    /// When the earliest held datagram is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(h)| h.due)
    }

    /// Datagrams held now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t0() -> Instant {
        crate::sys::monotonic_now()
    }

    #[test]
    fn datagrams_come_out_when_due_in_due_order_then_arrival_order() {
        let fixed = Impairment {
            delay: 0.010,
            ..Impairment::CLEAN
        };
        let mut line = DelayLine::new(fixed, 1, 8).unwrap();
        let t = t0();
        assert_eq!(line.hold('a', b"1", t), Outcome::Held);
        assert_eq!(line.hold('b', b"2", t), Outcome::Held);
        assert_eq!(
            line.hold('c', b"3", t - Duration::from_millis(5)),
            Outcome::Held
        );
        assert_eq!(line.next_due(), Some(t + Duration::from_millis(5)));
        assert_eq!(line.pop_due(t + Duration::from_millis(4)), None);
        let late = t + Duration::from_millis(10);
        assert_eq!(line.pop_due(late), Some(('c', b"3".to_vec())));
        assert_eq!(line.pop_due(late), Some(('a', b"1".to_vec())));
        assert_eq!(line.pop_due(late), Some(('b', b"2".to_vec())));
        assert_eq!((line.pop_due(late), line.next_due()), (None, None));
        assert!(line.is_empty());
    }

    #[test]
    fn a_full_line_refuses_and_certain_loss_drops_everything() {
        let mut line = DelayLine::new(Impairment::IMPAIRED, 2, 2).unwrap();
        let t = t0();
        let mut outcomes = Vec::new();
        for _ in 0..100 {
            outcomes.push(line.hold((), b"x", t));
        }
        let count = |o: Outcome| outcomes.iter().filter(|&&x| x == o).count();
        let lost = count(Outcome::Lost);
        assert_eq!((count(Outcome::Held), line.len()), (2, 2));
        assert_eq!(count(Outcome::Overflow), 98 - lost);
        assert!(lost > 0 && lost < 20, "{lost} lost of 100 at 5 %");

        let all_lost = Impairment {
            loss: 1.0,
            ..Impairment::CLEAN
        };
        let mut line = DelayLine::new(all_lost, 3, 8).unwrap();
        assert!((0..50).all(|_| line.hold((), b"y", t) == Outcome::Lost));
        assert!(line.is_empty());
    }

    #[test]
    fn a_seed_replays_the_same_fates() {
        let t = t0();
        let run = |seed| {
            let mut line = DelayLine::new(Impairment::IMPAIRED, seed, 1000).unwrap();
            let outcomes: Vec<Outcome> = (0..200u16).map(|i| line.hold(i, b"", t)).collect();
            let mut order = Vec::new();
            while let Some((i, _)) = line.pop_due(t + Duration::from_secs(1)) {
                order.push(i);
            }
            (outcomes, order)
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn a_bad_impairment_is_refused() {
        let bad = Impairment {
            delay: f64::INFINITY,
            ..Impairment::CLEAN
        };
        assert!(DelayLine::<()>::new(bad, 1, 8).is_err());
    }
}
