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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// A well-formed header for every command code (known or not) followed by random payload
    /// bytes of any length: every request decoder runs on garbage, not only on captures.
    #[test]
    fn every_request_code_with_a_random_body_decodes_totally(
        command in 0u16..90,
        attempt in any::<u16>(),
        sequence in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..860),
    ) {
        let mut p = vec![6, 1, 0, 0];
        p.extend_from_slice(&command.to_be_bytes());
        p.extend_from_slice(&attempt.to_be_bytes());
        p.extend_from_slice(&sequence.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&body);
        check_request(&p);
    }

    /// The same for replies: a valid reply header for every reply code, random payload.
    #[test]
    fn every_reply_code_with_a_random_body_decodes_totally(
        command in 0u16..90,
        reply in 0u16..40,
        status in 0u16..40,
        body in proptest::collection::vec(any::<u8>(), 0..900),
    ) {
        let mut p = vec![6, 2, 0, 0];
        p.extend_from_slice(&command.to_be_bytes());
        p.extend_from_slice(&reply.to_be_bytes());
        p.extend_from_slice(&status.to_be_bytes());
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&body);
        check_reply(&p);
    }
}
