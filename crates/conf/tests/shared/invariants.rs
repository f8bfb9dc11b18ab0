//! Invariants of the chrony.conf parser, shared by the stable property test
//! (`tests/totality.rs`) and the cargo-fuzz target `fuzz/fuzz_targets/conf_line.rs`.
//!
//! For any bytes: every line parses or fails without panicking; an accepted line's normalised
//! text parses again to the same directive; the accepted lines fold into settings, print and
//! lint without panicking. Nothing touches the file system (inclusion is not followed).
// A violated invariant must panic: that is what the fuzzer and the property test detect.
#![allow(clippy::expect_used)]

use gnomon_conf::parse::parse_line;
use gnomon_conf::{Config, Entry, Location};

/// Check every line of `data`.
pub fn check_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut entries = Vec::new();
    for (i, line) in text.split('\n').enumerate().take(256) {
        let loc = Location::command_line(i + 1);
        let Ok(Some(p)) = parse_line(line, &loc) else {
            continue;
        };
        let again = parse_line(&p.text, &loc)
            .expect("normalised text of an accepted line must parse")
            .expect("normalised text is not a comment");
        assert_eq!(again.text, p.text, "normalisation is idempotent");
        if !format!("{:?}", p.directive).contains("NaN") {
            assert_eq!(again.directive, p.directive, "round trip of {line:?}");
        }
        entries.push(Entry {
            location: loc,
            directive: p.directive,
            text: p.text,
            from_sourcedir: false,
        });
    }
    let config = Config {
        entries,
        ignored: Vec::new(),
    };
    let _ = config.settings();
    let printed = config.to_chrony_text();
    assert!(printed.lines().count() <= config.entries.len());
    let _ = gnomon_conf::lint::lint(&config);
    let _ = config.parse_warnings();
}
