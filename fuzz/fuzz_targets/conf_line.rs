//! Fuzz the chrony.conf line parser (`gnomon_conf::parse::parse_line`) and what consumes its
//! output (settings, `-p` printing, lint): never panics; accepted lines round-trip through their
//! normalised text. The checks are shared with the stable property test
//! `crates/conf/tests/totality.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/conf/tests/shared/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::check_text(data);
});
