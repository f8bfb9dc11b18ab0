//! Benchmark (not a test: run explicitly with
//! `cargo test -p gnomond --test sync_benchmark -- --ignored --nocapture --test-threads 1`):
//! chronyd 4.3 and gnomond as clients of the same upstream (`chronyd -x`, `local stratum 8`) on
//! loopback, each through its own user-space relay with the same impairment, both polling every
//! second (`minpoll 0 maxpoll 0 iburst`), both `-x` under noclock. Two scenarios, 150 s each
//! (one thread, so that they do not share the CPU): `impaired` (5 ms one-way delay, 0–2 ms
//! jitter, 5 % loss each way) and `clean` (the relay forwards at once; its own scheduling is
//! the only noise). `GNOMON_SYNC_TRACE=1` also prints every second's figures with gnomond's
//! `sourcestats` row. Reported: time to first synchronisation (first `tracking` with a
//! non-zero stratum, polled every 250 ms) and the stability of the offsets each daemon reports
//! (`Last offset` of `tracking` sampled every second after the first minute: RMS and maximum;
//! the daemon's own `RMS offset`). For gnomond the true error of its served time against
//! CLOCK_REALTIME is measured too (chronyd -x does not serve its disciplined time).
//! Figures are recorded in docs/benchmarks.md.

// Benchmarks read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;

const IMPAIRED: Impairment = Impairment {
    delay: 0.005,
    jitter: 0.002,
    loss: 0.05,
};
const CLEAN: Impairment = Impairment {
    delay: 0.0,
    jitter: 0.0,
    loss: 0.0,
};
const RUN: Duration = Duration::from_secs(150);
const SETTLE: f64 = 60.0;

fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|x| x * x).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture --test-threads 1"]
fn chronyd_and_gnomond_under_the_same_impairment() {
    compare("impaired", IMPAIRED);
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture --test-threads 1"]
fn chronyd_and_gnomond_through_a_clean_relay() {
    compare("clean", CLEAN);
}

/// Runs both clients through relays with `imp` for [`RUN`] and prints their figures and the
/// gnomond/chronyd ratios.
fn compare(scenario: &str, imp: Impairment) {
    let port = free_udp_port();
    let _server = Chronyd::start(&format!(
        "port {port}\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0"
    ));
    let upstream = SocketAddr::from(([127, 0, 0, 1], port));
    wait_answers(upstream, Duration::from_secs(10), "chronyd server");
    let r_chrony = Relay::start(Some(upstream), imp, 11, RUN + Duration::from_secs(30));
    let r_gnomon = Relay::start(Some(upstream), imp, 12, RUN + Duration::from_secs(30));
    let source = "iburst minpoll 0 maxpoll 0";

    let start = Instant::now();
    let chrony_cmd = free_udp_port();
    let _chronyd = Chronyd::start(&format!(
        "server 127.0.0.1 port {} {source}\nport 0\ncmdport {chrony_cmd}\nbindcmdaddress 127.0.0.1",
        r_chrony.addr.port()
    ));
    let gnomond = Daemon::start(&format!(
        "server 127.0.0.1 port {} {source}\nallow 127.0.0.1",
        r_gnomon.addr.port()
    ));

    let mut first: [Option<f64>; 2] = [None, None];
    let mut last: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut texts = [String::new(), String::new()];
    let mut served = Vec::new();
    let mut next_sample = 0.0;
    // GNOMON_SYNC_TRACE=1 prints every second's figures and gnomond's `sourcestats` row.
    let trace = std::env::var_os("GNOMON_SYNC_TRACE").is_some();
    while start.elapsed() < RUN {
        let t = start.elapsed().as_secs_f64();
        for (i, cmd) in [chrony_cmd, gnomond.cmdport].into_iter().enumerate() {
            let text = chronyc_tracking(cmd);
            if tracking_value(&text, "Stratum").is_some_and(|s| s > 0.0) {
                first[i].get_or_insert(t);
                if t >= SETTLE && t >= next_sample {
                    last[i].push(tracking_value(&text, "Last offset").unwrap());
                }
            }
            if !text.is_empty() {
                texts[i] = text;
            }
        }
        if t >= SETTLE && t >= next_sample {
            if let Some(o) = served_offset(gnomond.addr_v4(), 3) {
                served.push(o);
            }
            if trace {
                let stats = std::process::Command::new("chronyc")
                    .args(["-n", "-h", "127.0.0.1", "-p"])
                    .arg(gnomond.cmdport.to_string())
                    .arg("sourcestats")
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                println!(
                    "{scenario} {t:6.1} chronyd {:+9.1} us gnomond {:+9.1} us served {:+9.1} us | {}",
                    last[0].last().copied().unwrap_or(f64::NAN) * 1e6,
                    last[1].last().copied().unwrap_or(f64::NAN) * 1e6,
                    served.last().copied().unwrap_or(f64::NAN) * 1e6,
                    stats.lines().last().unwrap_or("").trim()
                );
            }
            next_sample = t + 1.0;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for (i, name) in ["chronyd 4.3", "gnomond"].iter().enumerate() {
        println!(
            "{scenario}: {name}: first sync {:.2} s; Last offset after {SETTLE} s: n {} RMS {:.1} us max {:.1} us; tracking RMS offset {:.1} us; frequency {:.3} ppm",
            first[i].unwrap_or(f64::NAN),
            last[i].len(),
            rms(&last[i]) * 1e6,
            max_abs(&last[i]) * 1e6,
            tracking_value(&texts[i], "RMS offset").unwrap_or(f64::NAN) * 1e6,
            tracking_value(&texts[i], "Frequency").unwrap_or(f64::NAN),
        );
    }
    println!(
        "{scenario}: gnomond/chronyd: first sync {:.2}, Last offset RMS {:.2}",
        first[1].unwrap_or(f64::NAN) / first[0].unwrap_or(f64::NAN),
        rms(&last[1]) / rms(&last[0])
    );
    println!(
        "{scenario}: gnomond served time vs CLOCK_REALTIME after {SETTLE} s: n {} RMS {:.1} us max {:.1} us",
        served.len(),
        rms(&served) * 1e6,
        max_abs(&served) * 1e6
    );
    assert!(first.iter().all(Option::is_some), "{texts:?}");
}
