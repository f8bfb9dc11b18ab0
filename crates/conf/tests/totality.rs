//! The parser is total: random lines never panic, and an accepted line re-parses from its
//! normalised text to the same directive (invariants shared with the fuzz target).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "shared/invariants.rs"]
mod invariants;

use gnomon_conf::DIRECTIVE_NAMES;
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}",
        "[-+]?[0-9]{1,12}(\\.[0-9]{0,4})?([eE]-?[0-9]{1,3})?[a-z]?",
        "[0-9a-fA-F:./%*\\[\\]]{1,24}",
        Just("all".to_string()),
        Just("iburst".to_string()),
        Just("minpoll".to_string()),
        Just("stratum".to_string()),
        Just("interval".to_string()),
        Just("orphan".to_string()),
        Just("inf".to_string()),
        Just("nan".to_string()),
        ".{0,8}",
    ]
}

fn directive_line() -> impl Strategy<Value = String> {
    (
        prop::sample::select(DIRECTIVE_NAMES.to_vec()),
        prop::collection::vec(word(), 0..8),
        "[ \t]{0,3}",
    )
        .prop_map(|(d, args, pad)| {
            let mut s = format!("{pad}{d}");
            for a in args {
                s.push(' ');
                s.push_str(&a);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        invariants::check_text(&data);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        invariants::check_text(text.as_bytes());
    }

    #[test]
    fn directive_shaped_lines_hold_the_invariants(lines in prop::collection::vec(directive_line(), 1..6)) {
        invariants::check_text(lines.join("\n").as_bytes());
    }
}

#[test]
fn very_long_and_odd_lines_are_handled() {
    invariants::check_text("x".repeat(100_000).as_bytes());
    invariants::check_text(b"server \xff\xfe iburst\nallow \x00\nport 99999999999999999999999\n");
    invariants::check_text(
        b"refclock SHM 0 refid \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 poll 1\n",
    );
}
