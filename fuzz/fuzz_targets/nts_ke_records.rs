//! Fuzz NTS-KE record and message decoding (RFC 8915 §4) and the NTS authenticator field body
//! (RFC 8915 §5.6): never panics; records tile the input; a decoded message re-encodes to the
//! same bytes. The checks are shared with `crates/wire/tests/properties.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/wire/tests/common/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::check_nts_ke(data);
});
