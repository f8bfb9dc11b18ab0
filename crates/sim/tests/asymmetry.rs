//! Jitter asymmetry in the whole engine: a path whose requests alone wait in queues
//! (`asymmetric_jitter` scenario) must be recognised (estimate about -0.5, chrony.conf's sign:
//! packets to the source vary more) and corrected for, and the clock kept closer to true time
//! than with the correction turned off by `asymmetry 0.0` (`asymmetry_off`, the same path).

use gnomon_sim::scenario::{self, Outcome};

const SEEDS: [u64; 3] = [1, 2, 3];
/// The steady state: after the estimate has been trusted (ten fits after the fourth sample,
/// about 15 polls of 64 s) and the start-up error slewed out.
const SETTLED: f64 = 2000.0;

fn settled_rms(o: &Outcome) -> f64 {
    let pts: Vec<f64> = o
        .trace
        .points
        .iter()
        .filter(|p| p.t - scenario::START >= SETTLED)
        .map(|p| p.offset)
        .collect();
    (pts.iter().map(|x| x * x).sum::<f64>() / pts.len().max(1) as f64).sqrt()
}

fn run(name: &str, seed: u64) -> Outcome {
    let Some(s) = scenario::by_name(name) else {
        panic!("no scenario {name}");
    };
    let o = scenario::run(&s, seed);
    if let Err(e) = scenario::check(&s, &o) {
        panic!("seed {seed}: {e}");
    }
    o
}

#[test]
fn request_side_jitter_is_estimated_near_minus_half_and_corrected() {
    let (mut on2, mut off2) = (0.0, 0.0);
    for seed in SEEDS {
        let on = run("asymmetric_jitter", seed);
        let off = run("asymmetry_off", seed);
        let a = on.trace.jitter_asymmetry[0];
        assert!((a + 0.5).abs() < 0.03, "seed {seed}: estimate {a}");
        assert_eq!(off.trace.jitter_asymmetry[0], 0.0, "seed {seed}");
        let (r_on, r_off) = (settled_rms(&on), settled_rms(&off));
        eprintln!(
            "seed {seed}: settled RMS {:.1} us estimated, {:.1} us off",
            r_on * 1e6,
            r_off * 1e6
        );
        on2 += r_on * r_on;
        off2 += r_off * r_off;
    }
    let (on, off) = ((on2 / 3.0).sqrt(), (off2 / 3.0).sqrt());
    assert!(
        on < 0.5 * off,
        "settled RMS {on:.2e} estimated, {off:.2e} off"
    );
}
