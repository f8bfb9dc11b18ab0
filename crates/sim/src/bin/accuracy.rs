//! `accuracy`: runs every scenario (or the named ones) over several seeds and prints, per
//! scenario, the RMS and maximum offset from true time, the RMS frequency error and the time to
//! synchronise, with how many seeds passed the scenario's limits; and, as the real-daemon
//! benchmark reads `tracking`, the mean time to the first source selection and the RMS of the
//! reported "Last offset" and of the true offset after the first minute. The orphan-mode pairs
//! (`orphan`, `orphan_upstream`, see `gnomon_sim::orphan`) print only the largest disagreement
//! between their two clients at the end (as "max offset") and how many seeds passed.
//!
//! Usage: `cargo run -p gnomon-sim --release --bin accuracy -- [--seeds N] [-v] [SCENARIO...]`
//! (`-v` prints why each failing seed failed).

use gnomon_sim::{orphan, scenario};

fn main() {
    let mut seeds: u64 = 10;
    let mut names: Vec<String> = Vec::new();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seeds" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => seeds = n,
                _ => {
                    eprintln!("--seeds needs a positive number");
                    std::process::exit(2);
                }
            },
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => {
                println!("usage: accuracy [--seeds N] [-v] [SCENARIO...]");
                let mut all: Vec<&str> = scenario::all().iter().map(|s| s.name).collect();
                all.extend(["orphan", "orphan_upstream"]);
                println!("scenarios: {}", all.join(" "));
                return;
            }
            _ => names.push(a),
        }
    }
    let list: Vec<scenario::Scenario> = scenario::all()
        .into_iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .collect();
    // Orphan-mode pairs (gnomon_sim::orphan): checked on roles and agreement, not accuracy.
    let orphans: Vec<(&str, bool)> = [("orphan", false), ("orphan_upstream", true)]
        .into_iter()
        .filter(|(name, _)| names.is_empty() || names.iter().any(|n| n == name))
        .collect();
    if list.is_empty() && orphans.is_empty() {
        eprintln!("no such scenario");
        std::process::exit(2);
    }
    println!(
        "{:<17} {:>5} {:>11} {:>11} {:>11} {:>9} {:>9} {:>6} {:>8} {:>9} {:>9}",
        "scenario",
        "seeds",
        "rms offset",
        "max offset",
        "rms freq",
        "sync avg",
        "sync max",
        "passed",
        "1st sel",
        "last off",
        "true 60s+"
    );
    let mut failed = 0;
    for s in &list {
        let (mut rms2, mut max, mut f2, mut sync_sum, mut sync_max, mut synced, mut passed) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0u64, 0u64);
        let (mut sel_sum, mut sel_n, mut last2, mut true2) = (0.0f64, 0u64, 0.0f64, 0.0f64);
        for seed in 1..=seeds {
            let o = scenario::run(s, seed);
            let f = scenario::tracking_figures(s, &o, 60.0);
            if let Some(t) = f.first_selection {
                sel_sum += t;
                sel_n += 1;
            }
            last2 += f.last_offset_rms.powi(2);
            true2 += f.true_offset_rms.powi(2);
            rms2 += o.rms_offset * o.rms_offset;
            max = max.max(o.max_offset);
            f2 += o.rms_freq * o.rms_freq;
            if let Some(t) = o.sync_time {
                sync_sum += t;
                sync_max = sync_max.max(t);
                synced += 1;
            }
            match scenario::check(s, &o) {
                Ok(()) => passed += 1,
                Err(e) if verbose => eprintln!("seed {seed}: {e}"),
                Err(_) => {}
            }
        }
        let n = seeds as f64;
        let sync = |v: f64| {
            if synced == 0 {
                "-".to_string()
            } else {
                format!("{v:.0}s")
            }
        };
        let first_sel = if sel_n == 0 {
            "-".to_string()
        } else {
            format!("{:.2}s", sel_sum / sel_n as f64)
        };
        println!(
            "{:<17} {:>5} {:>11.3e} {:>11.3e} {:>11.3e} {:>9} {:>9} {:>3}/{:<3} {:>8} {:>9.3e} {:>9.3e}",
            s.name,
            seeds,
            (rms2 / n).sqrt(),
            max,
            (f2 / n).sqrt(),
            sync(sync_sum / synced.max(1) as f64),
            sync(sync_max),
            passed,
            seeds,
            first_sel,
            (last2 / n).sqrt(),
            (true2 / n).sqrt()
        );
        if passed < seeds {
            failed += 1;
        }
    }
    for (name, upstream) in orphans {
        // "max offset" here: the largest disagreement between the two clients at the end.
        let (mut max, mut passed) = (0.0f64, 0u64);
        for seed in 1..=seeds {
            let o = orphan::run(upstream, seed);
            max = max.max((o.end[0].offset - o.end[1].offset).abs());
            match orphan::check(&o, 1e-3) {
                Ok(()) => passed += 1,
                Err(e) if verbose => eprintln!("{name} seed {seed}: {e}"),
                Err(_) => {}
            }
        }
        println!(
            "{:<17} {:>5} {:>11} {:>11.3e} {:>11} {:>9} {:>9} {:>3}/{:<3}",
            name, seeds, "-", max, "-", "-", "-", passed, seeds
        );
        if passed < seeds {
            failed += 1;
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
