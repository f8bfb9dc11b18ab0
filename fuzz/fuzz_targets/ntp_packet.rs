//! Fuzz `Packet::decode` (and `Header::decode`): never panics; accepted packets re-encode to
//! the same bytes and obey the RFC 7822 / chrony 4.3 layout rules. The checks are shared with
//! the stable property test `crates/wire/tests/properties.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/wire/tests/common/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::check_packet(data);
});
