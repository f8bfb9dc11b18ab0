//! Property tests: the request and reply decoders are total and round-trip (see
//! tests/common/invariants.rs), on random bytes and on mutations of the captured chrony 4.3
//! packets, which reach deep into every payload decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: failures should panic

mod common;

use common::invariants::{check_reply, check_request};
use proptest::prelude::*;

fn golden() -> Vec<Vec<u8>> {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    include_str!("golden/chrony-4.3.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| {
            l.split(' ')
                .skip(1)
                .filter(|w| *w != "-")
                .map(hex)
                .collect::<Vec<_>>()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..900)) {
        check_request(&data);
        check_reply(&data);
    }

    #[test]
    fn mutated_captures_round_trip(pick in any::<usize>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<u16>()) {
        let all = golden();
        let mut p = all[pick % all.len()].clone();
        for (at, v) in edits {
            // Keep the header plausible most of the time so the payload decoders run.
            let i = at % p.len();
            if i >= 4 || v & 1 == 0 {
                p[i] = v;
            }
        }
        if cut % 4 == 0 {
            p.truncate(usize::from(cut) % (p.len() + 1));
        }
        check_request(&p);
        check_reply(&p);
    }
}

#[test]
fn every_captured_packet_satisfies_the_invariants() {
    for p in golden() {
        check_request(&p);
        check_reply(&p);
    }
}
