//! Fuzz the cmdmon codec with one input as both a request and a reply datagram: decoding never
//! panics and accepted packets round-trip (checks shared with the stable property tests in
//! crates/cmdmon/tests/properties.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/cmdmon/tests/common/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::check_request(data);
    invariants::check_reply(data);
});
