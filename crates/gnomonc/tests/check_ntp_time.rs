//! gnomonc's Nagios check agrees with the real `check_ntp_time` (Debian monitoring-plugins)
//! on the same server.
//!
//! The two tools measure the same thing from different ends: check_ntp_time sends an SNTP
//! query to gnomond's NTP port and reports the offset of the server's time from this host's
//! clock; `gnomonc check` asks gnomond over cmdmon how far its clock is from its reference (here
//! a real `chronyd -x` with `local stratum 8`, which gnomond has selected). Both offsets must be
//! the tiny loopback offsets (under 5 ms, within 5 ms of each other), and for the same `-w`/`-c`
//! thresholds both must give the same state and exit code: OK (0) with 0.05/0.2, WARNING (1)
//! with 1e-9/1, CRITICAL (2) with 1e-9/2e-9, CRITICAL (2) when nothing answers. The status text
//! starts the same way (`NTP OK: Offset N secs` with N printed as `%.10g`) and the offset
//! perfdata has check_ntp_time's format, `offset=%fs;%f;%f;`, with identical thresholds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::panic
)]

mod lab;

use lab::*;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
fn check_ntp_time() -> PathBuf {
    let p = PathBuf::from("/usr/lib/nagios/plugins/check_ntp_time");
    assert!(
        p.is_file(),
        "check_ntp_time is missing: install monitoring-plugins-basic (this test never skips)"
    );
    p
}

/// One plugin run: its exit code and its single status line.
#[derive(Debug)]
struct Plugin {
    code: i32,
    line: String,
}

impl Plugin {
    fn of(out: Output) -> Plugin {
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            stdout.lines().count(),
            1,
            "one status line expected: {stdout:?}"
        );
        Plugin {
            code: out.status.code().unwrap(),
            line: stdout.trim_end().to_string(),
        }
    }

    /// The offset perfdata item, `offset=VALUEs;WARN;CRIT;`, as (value, "WARN;CRIT;").
    fn perf_offset(&self) -> (f64, String) {
        let (_, perf) = self.line.split_once('|').expect("no perfdata");
        let item = perf
            .split(' ')
            .find(|i| i.starts_with("offset="))
            .expect("no offset perfdata");
        let rest = &item["offset=".len()..];
        let (value, thresholds) = rest.split_once("s;").expect("offset has no unit s");
        // %f: an optional sign, digits, a point, exactly six decimals.
        let digits = value.trim_start_matches('-');
        let (int, frac) = digits.split_once('.').expect("offset not in %f form");
        assert!(
            !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 6,
            "offset not in %f form: {item}"
        );
        (value.parse().unwrap(), thresholds.to_string())
    }
}

fn run_pair(lab: &Lab, ntp_port: u16, w: &str, c: &str) -> (Plugin, Plugin) {
    let reference = Command::new(check_ntp_time())
        .args([
            "-H",
            "127.0.0.1",
            "-p",
            &ntp_port.to_string(),
            "-w",
            w,
            "-c",
            c,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let ours = Command::new(env!("CARGO_BIN_EXE_gnomonc"))
        .args(lab.udp_args())
        .args(["check", "-w", w, "-c", c, "-s", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (Plugin::of(reference), Plugin::of(ours))
}

#[test]
fn states_exit_codes_and_perfdata_agree_with_check_ntp_time() {
    let mut lab = Lab::start();
    lab.wait_synchronised();
    let ntp_port = lab.port;
    for (w, c, code, state) in [
        ("0.05", "0.2", 0, "OK"),
        ("0.000000001", "1", 1, "WARNING"),
        ("0.000000001", "0.000000002", 2, "CRITICAL"),
    ] {
        // Both offsets are measured, so one of them could in principle land exactly under
        // a 1 ns threshold: a few bounded retries, both tools always run as a pair.
        let mut last = None;
        for _ in 0..5 {
            let (reference, ours) = run_pair(&lab, ntp_port, w, c);
            if reference.code == code && ours.code == code {
                last = Some((reference, ours));
                break;
            }
            last = Some((reference, ours));
            std::thread::sleep(Duration::from_millis(300));
        }
        let (reference, ours) = last.unwrap();
        assert_eq!(
            (reference.code, ours.code),
            (code, code),
            "-w {w} -c {c}:\ncheck_ntp_time: {reference:?}\ngnomonc:        {ours:?}\n{}",
            lab.log("gnomond.log")
        );
        let prefix = format!("NTP {state}: ");
        assert!(reference.line.starts_with(&prefix), "{reference:?}");
        assert!(ours.line.starts_with(&prefix), "{ours:?}");
        let (ref_off, ref_thr) = reference.perf_offset();
        let (our_off, our_thr) = ours.perf_offset();
        assert_eq!(our_thr, ref_thr, "thresholds in perfdata");
        assert!(ref_off.abs() < 0.005, "{reference:?}");
        assert!(our_off.abs() < 0.005, "{ours:?}");
        assert!(
            (ref_off - our_off).abs() < 0.005,
            "{reference:?} vs {ours:?}"
        );
        if state == "OK" {
            // `NTP OK: Offset N secs` with N as %.10g, agreeing with the perfdata value.
            for p in [&reference, &ours] {
                let text = p.line.strip_prefix("NTP OK: Offset ").unwrap();
                let (n, _) = text.split_once(" secs").unwrap();
                let n: f64 = n.parse().unwrap_or_else(|_| panic!("{p:?}"));
                let (perf, _) = p.perf_offset();
                assert!((n - perf).abs() <= 0.0000005 + 1e-12, "{p:?}");
            }
        }
    }
}

#[test]
fn no_answer_is_critical_for_both() {
    // A port nobody listens on (checked free just now), for both NTP and cmdmon.
    let port = free_udp_port();
    let reference = Plugin::of(
        Command::new(check_ntp_time())
            .args([
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-w",
                "0.05",
                "-c",
                "0.2",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    let ours = Plugin::of(
        Command::new(env!("CARGO_BIN_EXE_gnomonc"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "check"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(reference.code, 2, "{reference:?}");
    assert_eq!(ours.code, 2, "{ours:?}");
    assert!(
        reference.line.starts_with("NTP CRITICAL: No response"),
        "{reference:?}"
    );
    assert!(
        ours.line.starts_with("NTP CRITICAL: No response"),
        "{ours:?}"
    );
}
