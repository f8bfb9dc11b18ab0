//! `accuracy`: runs every scenario (or the named ones) over several seeds and prints, per
//! scenario, the RMS and maximum offset from true time, the RMS frequency error and the time to
//! synchronise, with how many seeds passed the scenario's limits.
//!
//! Usage: `cargo run -p gnomon-sim --release --bin accuracy -- [--seeds N] [SCENARIO...]`

use gnomon_sim::scenario;

fn main() {
    let mut seeds: u64 = 10;
    let mut names: Vec<String> = Vec::new();
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
            "-h" | "--help" => {
                println!("usage: accuracy [--seeds N] [SCENARIO...]");
                let all: Vec<&str> = scenario::all().iter().map(|s| s.name).collect();
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
    if list.is_empty() {
        eprintln!("no such scenario");
        std::process::exit(2);
    }
    println!(
        "{:<15} {:>5} {:>11} {:>11} {:>11} {:>9} {:>9} {:>6}",
        "scenario",
        "seeds",
        "rms offset",
        "max offset",
        "rms freq",
        "sync avg",
        "sync max",
        "passed"
    );
    let mut failed = 0;
    for s in &list {
        let (mut rms2, mut max, mut f2, mut sync_sum, mut sync_max, mut synced, mut passed) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0u64, 0u64);
        for seed in 1..=seeds {
            let o = scenario::run(s, seed);
            rms2 += o.rms_offset * o.rms_offset;
            max = max.max(o.max_offset);
            f2 += o.rms_freq * o.rms_freq;
            if let Some(t) = o.sync_time {
                sync_sum += t;
                sync_max = sync_max.max(t);
                synced += 1;
            }
            if scenario::check(s, &o).is_ok() {
                passed += 1;
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
        println!(
            "{:<15} {:>5} {:>11.3e} {:>11.3e} {:>11.3e} {:>9} {:>9} {:>3}/{:<3}",
            s.name,
            seeds,
            (rms2 / n).sqrt(),
            max,
            (f2 / n).sqrt(),
            sync(sync_sum / synced.max(1) as f64),
            sync(sync_max),
            passed,
            seeds
        );
        if passed < seeds {
            failed += 1;
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
