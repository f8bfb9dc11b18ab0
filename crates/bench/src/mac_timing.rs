//! `gnomon-bench mac-timing`: the timing smoke check of security catalogue case 17
//! (constant-time MAC comparison, RFC 5905 §7.3 MAC, RFC 8573 AES-CMAC). It times
//! `gnomon_core::auth::Key::verify` on one 48-octet NTPv4 header for three digests: the correct
//! one, one wrong in its first octet and one wrong in its last octet. A comparison that stops
//! at the first differing octet would make "wrong first" faster than "wrong last"; with the
//! constant-time comparison the two take the same time, so the first/last ratio is ≈ 1.0.
//!
//! The three variants are interleaved (each round times one batch of each, in rotated order),
//! so drifts of CPU frequency or load from other processes fall on all three alike; figures are
//! medians over rounds of the per-call time. `verify` also computes the MAC, which dominates
//! its cost: the report prints the spread of the rounds (interquartile range over median) so a
//! reader can see how small a difference the run could have shown. This is a benchmark, never
//! a test: timing is not asserted anywhere.

use gnomon_core::auth::{Key, KeyType, MAX_DIGEST_LEN};
use std::hint::black_box;

/// Options of `gnomon-bench mac-timing`.
#[derive(Clone, Copy, Debug)]
pub struct MacTimingOptions {
    /// Verify calls per variant per key type.
    pub iterations: usize,
    /// Calls per timed batch (one round times one batch of each variant).
    pub batch: usize,
}

/// Median, first and third quartile of `v` (sorted in place); zeros when empty.
fn quartiles(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: usize| v.get((v.len() - 1) * q / 4).copied().unwrap_or(0.0);
    (at(2), at(1), at(3))
}

/// Figures of one key type.
#[derive(Clone, Debug)]
pub struct MacFigures {
    /// Key type measured.
    pub key_type: KeyType,
    /// Digest length compared (octets).
    pub digest_len: usize,
    /// Median ns per verify: correct, wrong first octet, wrong last octet.
    pub median_ns: [f64; 3],
    /// Interquartile range over median of each variant's rounds.
    pub spread: [f64; 3],
    /// Verify results seen for the three variants (must be true, false, false).
    pub verdicts: [bool; 3],
}

impl MacFigures {
    /// Wrong-first over wrong-last median time.
    pub fn first_last_ratio(&self) -> f64 {
        self.median_ns[1] / self.median_ns[2].max(1e-9)
    }
}

/// A fixed NTPv4 client header: the MAC is computed over these 48 octets.
fn header() -> [u8; 48] {
    let mut h = [0u8; 48];
    h[0] = 0x23;
    h[2] = 6;
    h[3] = 0xEC;
    for (i, b) in h.iter_mut().enumerate().skip(40) {
        *b = (i as u8).wrapping_mul(37);
    }
    h
}

/// Times one key type.
fn measure(key: &Key, opts: MacTimingOptions) -> MacFigures {
    let data = header();
    let mut good = [0u8; MAX_DIGEST_LEN];
    let len = key.sign(&data, 4, &mut good);
    let good = good.get(..len).unwrap_or(&[]).to_vec();
    let mut first = good.clone();
    let mut last = good.clone();
    if let Some(b) = first.first_mut() {
        *b ^= 0x01;
    }
    if let Some(b) = last.last_mut() {
        *b ^= 0x01;
    }
    let digests = [good, first, last];
    let verdicts = [0, 1, 2].map(|i| key.verify(&data, 4, &digests[i]));
    let batch = opts.batch.max(1);
    let rounds = (opts.iterations / batch).max(1);
    let mut per_call: [Vec<f64>; 3] = [
        Vec::with_capacity(rounds),
        Vec::with_capacity(rounds),
        Vec::with_capacity(rounds),
    ];
    // Warm-up: caches, branch predictors and CPU frequency settle before any batch counts.
    for _ in 0..batch.min(10_000) {
        for d in &digests {
            black_box(key.verify(black_box(&data), 4, black_box(d)));
        }
    }
    for round in 0..rounds {
        for j in 0..3 {
            let v = (j + round) % 3;
            let d = &digests[v];
            let t0 = crate::sys::monotonic_now();
            for _ in 0..batch {
                black_box(key.verify(black_box(&data), 4, black_box(d)));
            }
            let ns = t0.elapsed().as_secs_f64() * 1e9 / batch as f64;
            per_call[v].push(ns);
        }
    }
    let mut median_ns = [0.0; 3];
    let mut spread = [0.0; 3];
    for (v, series) in per_call.iter_mut().enumerate() {
        let (m, q1, q3) = quartiles(series);
        median_ns[v] = m;
        spread[v] = (q3 - q1) / m.max(1e-9);
    }
    MacFigures {
        key_type: key.key_type(),
        digest_len: len,
        median_ns,
        spread,
        verdicts,
    }
}

/// The keys measured: MD5 and SHA256 with 20-octet ASCII keys (as `chronyc keygen` makes),
/// AES128-CMAC with a 128-bit key.
fn keys() -> Vec<Key> {
    let text = b"Gn0m0nBenchMacKey20!".to_vec();
    let aes: Vec<u8> = (0u8..16)
        .map(|i| i.wrapping_mul(29).wrapping_add(7))
        .collect();
    [
        (1, KeyType::Md5, text.clone()),
        (2, KeyType::Sha256, text),
        (3, KeyType::Aes128, aes),
    ]
    .into_iter()
    .filter_map(|(id, t, m)| Key::new(id, t, m).ok())
    .collect()
}

/// Runs the measurement; returns the report and whether every verdict was right (the correct
/// digest accepted, both wrong ones refused).
pub fn run(opts: MacTimingOptions) -> (String, bool) {
    let figs: Vec<MacFigures> = keys().iter().map(|k| measure(k, opts)).collect();
    let batch = opts.batch.max(1);
    let mut text = format!(
        "Key::verify on a 48-octet NTPv4 header, {} calls per variant in batches of {}, \
         interleaved; medians in ns per call ± half the interquartile range of the batches\n\
         {:<8} {:>6} {:>15} {:>15} {:>15} {:>11}\n",
        (opts.iterations / batch).max(1) * batch,
        batch,
        "type",
        "octets",
        "correct",
        "wrong first",
        "wrong last",
        "first/last"
    );
    let mut ok = true;
    for f in &figs {
        let cell = |v: usize| format!("{:.1} ±{:.1}%", f.median_ns[v], f.spread[v] * 50.0);
        text.push_str(&format!(
            "{:<8} {:>6} {:>15} {:>15} {:>15} {:>11.3}\n",
            f.key_type.name(),
            f.digest_len,
            cell(0),
            cell(1),
            cell(2),
            f.first_last_ratio()
        ));
        if f.verdicts != [true, false, false] {
            ok = false;
            text.push_str(&format!(
                "  {}: wrong verdicts (correct, first, last) = {:?}\n",
                f.key_type.name(),
                f.verdicts
            ));
        }
    }
    (text, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_of_odd_series_pick_middle_values() {
        let mut v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quartiles(&mut v), (3.0, 2.0, 4.0));
        assert_eq!(quartiles(&mut []), (0.0, 0.0, 0.0));
    }

    #[test]
    fn run_accepts_the_correct_digest_and_refuses_both_wrong_ones() {
        let (text, ok) = run(MacTimingOptions {
            iterations: 30,
            batch: 10,
        });
        assert!(ok, "{text}");
        for name in ["MD5", "SHA256", "AES128"] {
            assert!(text.contains(name), "{text}");
        }
    }
}
