use gnomon_sim::runner::World;
use gnomon_sim::scenario;
fn main() {
    let name = std::env::args().nth(1).unwrap_or("relay".into());
    let s = scenario::by_name(&name).unwrap();
    let mut w = World::new(s.start, s.servers.clone(), s.pools.clone(), s.clients.clone(), s.leaps.clone(), std::env::args().nth(2).and_then(|v| v.parse().ok()).unwrap_or(1));
    let mut t = s.start;
    while t < s.start + s.duration {
        t += std::env::args().nth(3).and_then(|v| v.parse().ok()).unwrap_or(5.0);
        w.run_until(t);
        let e = w.engine(0).unwrap();
        let c = w.clock(0).unwrap();
        let now = c.reading();
        let st = e.source_stats(now, c);
        let tr = e.tracking(now, c);
        println!("{:6.0} true {:+8.1}us freqerr {:+7.3}ppm last {:+8.1}us {:?}", t - s.start, (c.reading()-t)*1e6, c.frequency_error()*1e6, tr.last_offset*1e6, st.iter().map(|(_, _, r)| (r.samples, r.runs, r.std_dev*1e6, r.skew_ppm)).collect::<Vec<_>>());
    }
}
