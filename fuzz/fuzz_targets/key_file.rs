//! Fuzz the `keyfile` parser (`gnomon_core::auth::KeyStore::parse`, chrony's key file format):
//! never panics on any text; warnings name lines that exist, in file order; the loaded keys
//! are in strictly increasing ID order with no duplicate; no line gives both a key and a
//! rejection; every loaded key signs and verifies its own MAC (NTPv3 full length, NTPv4
//! truncated to 20 octets) and rejects a MAC with one bit flipped.
#![no_main]

use gnomon_core::auth::{KeyStore, KeyWarningKind, MAX_DIGEST_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let (store, warnings) = KeyStore::parse(&text);
    let mut last = 0;
    let mut rejected = 0;
    for w in &warnings {
        assert!(
            w.line >= 1 && w.line <= lines,
            "warning for line {} of {lines}",
            w.line
        );
        assert!(w.line >= last, "warnings out of order");
        last = w.line;
        if !matches!(w.kind, KeyWarningKind::Insecure { .. }) {
            rejected += 1;
        }
    }
    // Each line gives at most one key or one rejection.
    assert!(store.len() + rejected <= lines);
    let ids: Vec<u32> = store.iter().map(|k| k.id()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "IDs not strictly increasing"
    );
    let message = [0x23u8; 48];
    for key in store.iter() {
        assert_eq!(store.get(key.id()).map(|k| k.id()), Some(key.id()));
        for version in [3u8, 4] {
            let mut mac = [0u8; MAX_DIGEST_LEN];
            let n = key.sign(&message, version, &mut mac);
            assert_eq!(n, key.key_type().wire_digest_len(version));
            assert!(key.verify(&message, version, &mac[..n]));
            mac[n - 1] ^= 1;
            assert!(!key.verify(&message, version, &mac[..n]));
        }
    }
});
