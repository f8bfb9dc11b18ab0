//! A log-linear latency histogram (like HdrHistogram): 32 linear sub-buckets per power of two of
//! nanoseconds, so any reported percentile is within about 3 % of the true value, in constant
//! memory however many samples arrive.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Octaves up to 2^40 ns (about 18 minutes), far beyond any timeout the generator uses.
const OCTAVES: usize = 41;

/// Counts of latencies in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; OCTAVES * SUB],
            total: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let octave = (msb - SUB_BITS + 1) as usize;
        let sub = (v >> (msb - SUB_BITS + 1)) as usize & (SUB - 1);
        // Values in octave k (k >= 1) have their top bit at SUB_BITS + k - 1: the sub-bucket is
        // the next SUB_BITS - 1 bits plus the top bit, i.e. in SUB/2..SUB.
        (octave * SUB + sub).min(OCTAVES * SUB - 1)
    }

    fn lower_bound(idx: usize) -> u64 {
        let octave = idx / SUB;
        let sub = (idx % SUB) as u64;
        if octave == 0 {
            sub
        } else {
            sub << octave
        }
    }

    /// Adds one sample.
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Adds all samples of another histogram.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1) in nanoseconds: the midpoint of its bucket; 0 if empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let lo = Self::lower_bound(i);
                let width = 1u64 << (i / SUB);
                return (lo + width / 2).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_three_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 10);
        }
        for (q, want) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.01, 10_000.0)] {
            let got = h.quantile(q) as f64;
            assert!(
                (got - want).abs() / want < 0.03,
                "q={q} got={got} want={want}"
            );
        }
    }

    #[test]
    fn small_values_are_exact_and_empty_is_zero() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in [3u64, 3, 7] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 3);
        assert_eq!(h.quantile(1.0), 7);
    }

    #[test]
    fn index_is_monotonic() {
        let mut last = 0;
        for v in 0..1_000_000u64 {
            let i = Histogram::index(v);
            assert!(i >= last);
            last = i;
        }
        assert!(Histogram::lower_bound(Histogram::index(123_456)) <= 123_456);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(100);
        b.record(1000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.quantile(1.0), 1000);
    }
}
