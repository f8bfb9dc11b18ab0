#[test]
fn probe() {
    for name in ["leap_slew", "packet_loss", "large_wander"] {
        let s = gnomon_sim::scenario::by_name(name).unwrap();
        for seed in 1..=10 {
            let o = gnomon_sim::scenario::run(&s, seed);
            if let Err(e) = gnomon_sim::scenario::check(&s, &o) {
                println!("{name} seed {seed}: {e} rmsf {:.2e}", o.rms_freq);
                let worst = o.trace.points.iter().max_by(|a, b| a.offset.abs().total_cmp(&b.offset.abs())).unwrap();
                println!("  worst at {:.0}: {:.2e}", worst.t - s.start, worst.offset);
                for (t, e) in o.trace.events.iter().take(12) { println!("  {:.1} {:?}", t - s.start, e); }
            }
        }
    }
}
