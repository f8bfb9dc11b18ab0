//! Golden test: the real chronyc 4.3 and gnomonc query the same running gnomond and must print
//! the same bytes (stdout, stderr, exit status) for every monitoring report, in text and `-c`
//! CSV, over UDP (`-h 127.0.0.1 -p CMDPORT`) and over the Unix socket (`-h PATH`).
//!
//! gnomond runs under `noclock … -x` with `local stratum 8` and one source: a real `chronyd -x`
//! (`local stratum 8`) on another loopback port, polled every 0.25 s, so the source reports
//! have rows. The test waits until gnomond has selected it.
//!
//! Masking, and why it is sound: the daemon state ticks (new samples every 0.25 s, ages in
//! seconds), so each comparison runs chronyc, gnomonc, chronyc back to back. When the two
//! chronyc runs print the same bytes the state did not change around gnomonc's run, and gnomonc
//! must match them exactly; otherwise the triple is retried (bounded). Two reports can never be
//! stable because the calls themselves change them: `serverstats` (command packets received)
//! and `clients` (the command hits of 127.0.0.1 and their rate columns). For those only, a
//! token (split on blanks and commas) that differs between the two chronyc runs must be, in
//! gnomonc's output, a number between the two values (or one of them); every other token and
//! the line count must match exactly, and each line must have the length of one of the two
//! chronyc lines (the column layout).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::panic
)]

mod lab;

use lab::*;
use std::process::Output;
use std::time::Duration;

fn same(a: &Output, b: &Output) -> bool {
    a.stdout == b.stdout && a.stderr == b.stderr && a.status.code() == b.status.code()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The bracketing check for reports the calls themselves change (see the module header).
fn between(lo: &str, mid: &str, hi: &str) -> Result<(), String> {
    let (l, m, h): (Vec<&str>, Vec<&str>, Vec<&str>) = (
        lo.lines().collect(),
        mid.lines().collect(),
        hi.lines().collect(),
    );
    if l.len() != h.len() || m.len() != l.len() {
        return Err("line counts differ".into());
    }
    for ((a, b), c) in l.iter().zip(&m).zip(&h) {
        if b.len() != a.len() && b.len() != c.len() {
            return Err(format!("line layout differs: {b:?} vs {a:?}"));
        }
        let toks = |s: &str| -> Vec<String> {
            s.split([' ', ','])
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        };
        let (ta, tb, tc) = (toks(a), toks(b), toks(c));
        if ta.len() != tb.len() || tc.len() != tb.len() {
            return Err(format!("token counts differ: {b:?} vs {a:?}"));
        }
        for ((x, y), z) in ta.iter().zip(&tb).zip(&tc) {
            if x == z {
                if y != x {
                    return Err(format!("{y:?} should be {x:?} in {b:?}"));
                }
            } else if y != x && y != z {
                let num = |s: &str| s.parse::<f64>().ok();
                match (num(x), num(y), num(z)) {
                    (Some(x), Some(y), Some(z)) if x.min(z) <= y && y <= x.max(z) => {}
                    _ => return Err(format!("{y:?} not between {x:?} and {z:?} in {b:?}")),
                }
            }
        }
    }
    Ok(())
}

/// Reports whose text the queries themselves change (command counters, the local client row).
fn self_counting(cmd: &[&str]) -> bool {
    cmd.contains(&"serverstats") || cmd.contains(&"clients")
}

/// chronyc, gnomonc, chronyc, retried until the state held still (or, for self-counting
/// reports, until gnomonc's tokens lie between the two chronyc runs').
fn compare(conn: &[String], cmd: &[&str]) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..40 {
        let a = chronyc(conn, cmd);
        let b = gnomonc(conn, cmd);
        let c = chronyc(conn, cmd);
        if same(&a, &c) {
            if same(&a, &b) {
                return Ok(());
            }
            return Err(format!(
                "{cmd:?} over {conn:?}: chronyc printed (twice)\n{}\ngnomonc printed\n{}",
                show(&a),
                show(&b)
            ));
        }
        if self_counting(cmd)
            && a.stderr == b.stderr
            && a.status.code() == b.status.code()
            && c.status.code() == a.status.code()
        {
            let (lo, mid, hi) = (
                String::from_utf8_lossy(&a.stdout),
                String::from_utf8_lossy(&b.stdout),
                String::from_utf8_lossy(&c.stdout),
            );
            match between(&lo, &mid, &hi) {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("{e}\nchronyc\n{lo}gnomonc\n{mid}chronyc\n{hi}"),
            }
        } else {
            last = format!("unstable:\n{}\n{}\n{}", show(&a), show(&b), show(&c));
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    Err(format!(
        "{cmd:?} over {conn:?}: no stable comparison in 40 tries; last:\n{last}"
    ))
}

const REPORTS: &[&[&str]] = &[
    &["tracking"],
    &["sources"],
    &["sources", "-v"],
    &["sourcestats"],
    &["sourcestats", "-v"],
    &["activity"],
    &["serverstats"],
    &["clients"],
    &["clients", "-k"],
    &["selectdata"],
    &["selectdata", "-v"],
    &["authdata"],
    &["ntpdata"],
    &["ntpdata", "127.0.0.1"],
    &["ntpdata", "192.0.2.1"],
    &["sources", "-a"],
    &["nosuchcommand"],
];

fn compare_all(conn: &[String]) {
    let mut failures = Vec::new();
    for report in REPORTS {
        if let Err(e) = compare(conn, report) {
            failures.push(e);
        }
        // `-c` is an option: it goes before the command.
        let mut conn_csv = conn.to_vec();
        conn_csv.push("-c".into());
        if let Err(e) = compare(&conn_csv, report) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_report_matches_chronyc_byte_for_byte_against_gnomond() {
    let mut lab = Lab::start();
    lab.wait_synchronised();
    // The source really has rows: otherwise the comparison would be of empty tables.
    let sources = chronyc(&lab.udp_args(), &["sources"]);
    assert!(
        String::from_utf8_lossy(&sources.stdout).contains("^* 127.0.0.1"),
        "{}",
        show(&sources)
    );
    compare_all(&lab.udp_args());
    // The Unix socket really answers (equal "Cannot talk to daemon" errors would prove nothing).
    let tracking = chronyc(&lab.socket_args(), &["tracking"]);
    assert!(tracking.status.success(), "{}", show(&tracking));
    compare_all(&lab.socket_args());
}

#[test]
fn bracketing_accepts_only_counters_between_the_chronyc_runs() {
    let lo = "Command packets received  :          7\nDropped  :   0\n";
    let hi = "Command packets received  :          9\nDropped  :   0\n";
    let mid = "Command packets received  :          8\nDropped  :   0\n";
    assert!(between(lo, mid, hi).is_ok());
    // Outside the bracket, a changed stable field, a different layout: all rejected.
    assert!(between(lo, &mid.replace('8', "10"), hi).is_err());
    assert!(between(lo, &mid.replace("0\n", "1\n"), hi).is_err());
    assert!(between(lo, &mid.replace("  8", " 8"), hi).is_err());
    assert!(between(lo, "Command packets received  :          8\n", hi).is_err());
}
