//! The side-by-side server benchmark: chronyd, gnomond and the bare responder, each started
//! under `noclock` with `-x` and the same configuration, pinned to one CPU, loaded in turn by
//! the generator pinned to the other CPU, in one run on loopback. For each it measures idle RSS
//! (VmRSS after start), responses/s, server CPU time per response (utime + stime from
//! /proc/PID/stat), latency p50/p99 under saturation and with one request in flight, and prints
//! the medians over the repetitions with the ratios gnomond/chronyd and gnomond/bare.

use crate::load::{self, LoadConfig, LoadResult};
use crate::probe;
use crate::sys::{clock_ticks_per_second, monotonic_now, pin_to_cpu, set_fifo, set_nice};
use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Finds `noclock`, the program that drops CAP_SYS_TIME for every daemon we start: the
/// workspace's sibling `shared/tools/noclock` (CI's layout, seen from where this crate was
/// built or from the current directory), else /work/shared/tools/noclock. `None` means no
/// daemon may be started.
pub fn find_noclock() -> Option<PathBuf> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/noclock");
    let here = PathBuf::from("../shared/tools/noclock");
    [built, here, PathBuf::from("/work/shared/tools/noclock")]
        .into_iter()
        .find(|p| p.is_file())
}

/// Options of `gnomon-bench server`.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Which servers to run, in order.
    pub servers: Vec<Kind>,
    /// Path of chronyd.
    pub chronyd: PathBuf,
    /// Path of gnomond.
    pub gnomond: PathBuf,
    /// Path of `noclock`.
    pub noclock: PathBuf,
    /// Path of this bench binary (for the bare responder).
    pub bench: PathBuf,
    /// Repetitions of each load run (the median is reported).
    pub reps: usize,
    /// Duration of each load run.
    pub duration: Duration,
    /// Generator sockets.
    pub sockets: usize,
    /// Requests outstanding per socket.
    pub window: usize,
    /// CPU for the servers.
    pub server_cpu: usize,
    /// CPU for the generator.
    pub load_cpu: usize,
    /// Nice value of the servers and the generator alike (the machine is shared: a higher
    /// priority keeps other work from stealing their CPUs mid-run).
    pub nice: i32,
    /// SCHED_FIFO priority of the servers and the generator alike (0 = normal scheduling). On
    /// a shared machine, compilers on the same CPUs otherwise delay every wake-up.
    pub fifo: i32,
    /// Extra configuration lines given to chronyd and gnomond alike.
    pub extra_conf: Vec<String>,
}

/// One of the compared servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The real chronyd.
    Chronyd,
    /// Ours.
    Gnomond,
    /// The bare responder (`gnomon-bench bare`).
    Bare,
}

impl Kind {
    /// The name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chronyd => "chronyd",
            Kind::Gnomond => "gnomond",
            Kind::Bare => "bare",
        }
    }

    /// Parses a name from `--servers`.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "chronyd" => Some(Kind::Chronyd),
            "gnomond" => Some(Kind::Gnomond),
            "bare" => Some(Kind::Bare),
            _ => None,
        }
    }
}

/// A running server; killed (by its PID, which the exec chain taskset → noclock → daemon keeps)
/// when dropped.
pub struct Daemon {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its NTP address (used by nts.rs).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// A temporary directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates a fresh private directory under the system temp dir.
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        let (s, ns) = crate::sys::realtime_now();
        let p = std::env::temp_dir().join(format!("{tag}-{}-{s}{ns}", std::process::id()));
        fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A loopback UDP port in 20000-60000 that nobody holds now (a socket with SO_REUSEPORT, as
/// chronyd uses, makes our plain bind fail too).
pub fn free_udp_port(seed: u64) -> Option<u16> {
    let mut x = seed | 1;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 40000) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("0.0.0.0", port)).is_ok()
        {
            return Some(port);
        }
    }
    None
}

/// The configuration chronyd and gnomond both get.
pub fn server_conf(port: u16, dir: &Path, name: &str, extra: &[String]) -> String {
    let mut s = format!(
        "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 10\ncmdport 0\n\
         pidfile {}\n",
        dir.join(format!("{name}.pid")).display()
    );
    for l in extra {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Starts one server with `opts` (its `extra_conf` included) in `dir`; ready once it answers.
pub fn start(kind: Kind, opts: &ServerOptions, dir: &Path, seed: u64) -> Result<Daemon, String> {
    let port = free_udp_port(seed).ok_or("no free UDP port")?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let name = kind.name();
    let log = dir.join(format!("{name}.log"));
    let conf = dir.join(format!("{name}.conf"));
    fs::write(&conf, server_conf(port, dir, name, &opts.extra_conf))
        .map_err(|e| format!("writing {}: {e}", conf.display()))?;
    let logf = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let logf2 = logf.try_clone().map_err(|e| e.to_string())?;
    // nice → [chrt] → taskset → noclock → daemon: each execs the next, so the child's PID is
    // the daemon's.
    let mut cmd = Command::new("nice");
    cmd.arg("-n").arg(opts.nice.to_string());
    if opts.fifo > 0 {
        cmd.args(["chrt", "-f"]).arg(opts.fifo.to_string());
    }
    cmd.arg("taskset")
        .arg("-c")
        .arg(opts.server_cpu.to_string())
        .arg(&opts.noclock);
    match kind {
        Kind::Chronyd | Kind::Gnomond => {
            let bin = if kind == Kind::Chronyd {
                &opts.chronyd
            } else {
                &opts.gnomond
            };
            cmd.arg(bin)
                .args(["-x", "-d", "-u", "root", "-f"])
                .arg(&conf);
        }
        Kind::Bare => {
            // Bounded: it stops by itself after the whole run could have finished.
            let limit = (opts.duration.as_secs() + 2) * (opts.reps as u64 + 1) * 3 + 60;
            cmd.arg(&opts.bench)
                .args(["bare", "--listen"])
                .arg(addr.to_string())
                .args(["--max-seconds", &limit.to_string()]);
        }
    }
    cmd.stdin(Stdio::null()).stdout(logf).stderr(logf2);
    let child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
    let mut d = Daemon {
        kind,
        child,
        addr,
        log,
    };
    // Ready when it answers; give up after 15 s.
    let t0 = monotonic_now();
    loop {
        if let Ok(Some(st)) = d.child.try_wait() {
            return Err(format!(
                "{name} exited ({st}) before answering:\n{}",
                d.log_tail()
            ));
        }
        if let Ok(x) = probe::query(addr, Duration::from_millis(200)) {
            if x.reply.leap != gnomon_wire::LeapIndicator::Unsynchronised && x.reply.stratum != 0 {
                break;
            }
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let tail = d.log_tail();
            drop(d);
            return Err(format!(
                "{name} gave no synchronised answer in 15 s:\n{tail}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(d)
}

/// Resident set size of a process in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process (all its threads) in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// One loaded run of one server.
#[derive(Clone)]
struct Sample {
    load: LoadResult,
    cpu_seconds: f64,
}

impl Sample {
    fn cpu_us_per_response(&self) -> f64 {
        if self.load.valid == 0 {
            return f64::NAN;
        }
        self.cpu_seconds * 1e6 / self.load.valid as f64
    }

    fn cpu_share(&self) -> f64 {
        self.cpu_seconds / self.load.send_elapsed.as_secs_f64().max(1e-9)
    }
}

/// Median figures of one server.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Name of the server.
    pub name: &'static str,
    /// Responses per second.
    pub rate: f64,
    /// Server CPU microseconds per response.
    pub cpu_us: f64,
    /// Server CPU use during the load (1.0 = one core busy).
    pub cpu_share: f64,
    /// Generator CPU use during the load (1.0 = its core busy).
    pub gen_share: f64,
    /// Latency under saturation, microseconds.
    pub p50_us: f64,
    /// Latency under saturation, microseconds.
    pub p99_us: f64,
    /// Latency with one request in flight, microseconds.
    pub idle_p50_us: f64,
    /// Latency with one request in flight, microseconds.
    pub idle_p99_us: f64,
    /// VmRSS after start, KiB.
    pub rss_kib: u64,
    /// Requests lost over all runs.
    pub lost: u64,
    /// Invalid datagrams over all runs.
    pub invalid: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn load_cfg(opts: &ServerOptions, target: SocketAddr, seed: u64) -> LoadConfig {
    LoadConfig {
        target,
        sockets: opts.sockets,
        window: opts.window,
        duration: opts.duration,
        // Bounded in count as well as time: far above what loopback can carry in the duration.
        max_requests: (opts.duration.as_secs_f64() * 5_000_000.0) as u64 + 1,
        timeout: Duration::from_millis(100),
        seed,
    }
}

/// Runs the whole comparison and returns the report text and whether every reply was valid.
pub fn run(opts: &ServerOptions) -> Result<(String, bool), String> {
    pin_to_cpu(opts.load_cpu).map_err(|e| format!("pinning the generator: {e}"))?;
    set_nice(opts.nice).map_err(|e| format!("nice {}: {e}", opts.nice))?;
    if opts.fifo > 0 {
        set_fifo(opts.fifo).map_err(|e| format!("SCHED_FIFO {}: {e}", opts.fifo))?;
    }
    let dir = TempDir::new("gnomon-bench").map_err(|e| format!("temp dir: {e}"))?;
    let (s, ns) = crate::sys::realtime_now();
    let seed = (s as u64) << 20 ^ u64::from(ns) ^ u64::from(std::process::id());
    let mut daemons = Vec::new();
    for (i, &k) in opts.servers.iter().enumerate() {
        daemons.push(start(k, opts, &dir.0, seed.wrapping_add(i as u64 * 7919))?);
    }
    // Idle RSS: after it answered, with a moment to settle, before any load.
    std::thread::sleep(Duration::from_secs(1));
    let rss: Vec<u64> = daemons
        .iter()
        .map(|d| rss_kib(d.pid()).unwrap_or(0))
        .collect();
    let tick = clock_ticks_per_second() as f64;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); daemons.len()];
    let mut idle: Vec<Vec<LoadResult>> = vec![Vec::new(); daemons.len()];
    for rep in 0..opts.reps {
        // Rotate the order so no server always runs first (or always after another's load).
        for j in 0..daemons.len() {
            let i = (j + rep) % daemons.len();
            let d = &mut daemons[i];
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!("{} died ({st}):\n{}", d.kind.name(), d.log_tail()));
            }
            let before = cpu_ticks(d.pid()).ok_or("reading /proc/PID/stat")?;
            let cfg = load_cfg(opts, d.addr, seed ^ (rep * 31 + i) as u64);
            let r = load::run(&cfg).map_err(|e| e.to_string())?;
            let after = cpu_ticks(d.pid()).ok_or("reading /proc/PID/stat")?;
            let sample = Sample {
                load: r,
                cpu_seconds: (after.saturating_sub(before)) as f64 / tick,
            };
            eprintln!(
                "rep {} {:8}: {}; server CPU {:.3} us/response, {:.0} %",
                rep + 1,
                d.kind.name(),
                sample.load,
                sample.cpu_us_per_response(),
                sample.cpu_share() * 100.0
            );
            samples[i].push(sample);
            // Unloaded latency: one request in flight for one second.
            let mut c = load_cfg(opts, d.addr, seed ^ 0x5eed ^ rep as u64);
            c.sockets = 1;
            c.window = 1;
            c.duration = Duration::from_secs(1);
            idle[i].push(load::run(&c).map_err(|e| e.to_string())?);
        }
    }
    let mut figs = Vec::new();
    for (i, d) in daemons.iter().enumerate() {
        let ss = &samples[i];
        let mut all_idle = crate::histogram::Histogram::new();
        for r in &idle[i] {
            all_idle.merge(&r.latency);
        }
        figs.push(Figures {
            name: d.kind.name(),
            rate: median(ss.iter().map(|s| s.load.rate()).collect()),
            cpu_us: median(ss.iter().map(Sample::cpu_us_per_response).collect()),
            cpu_share: median(ss.iter().map(Sample::cpu_share).collect()),
            gen_share: median(
                ss.iter()
                    .map(|s| {
                        s.load.generator_cpu_seconds / s.load.send_elapsed.as_secs_f64().max(1e-9)
                    })
                    .collect(),
            ),
            p50_us: median(
                ss.iter()
                    .map(|s| s.load.latency.quantile(0.5) as f64 / 1e3)
                    .collect(),
            ),
            p99_us: median(
                ss.iter()
                    .map(|s| s.load.latency.quantile(0.99) as f64 / 1e3)
                    .collect(),
            ),
            idle_p50_us: all_idle.quantile(0.5) as f64 / 1e3,
            idle_p99_us: all_idle.quantile(0.99) as f64 / 1e3,
            rss_kib: rss[i],
            lost: ss.iter().map(|s| s.load.lost).sum::<u64>()
                + idle[i].iter().map(|r| r.lost).sum::<u64>(),
            invalid: ss.iter().map(|s| s.load.invalid).sum::<u64>()
                + idle[i].iter().map(|r| r.invalid).sum::<u64>(),
        });
    }
    drop(daemons);
    let ok = figs.iter().all(|f| f.invalid == 0);
    Ok((report(opts, &figs), ok))
}

/// The table, the ratios and the targets.
pub fn report(opts: &ServerOptions, figs: &[Figures]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server CPU {}, generator CPU {}, nice {}, SCHED_FIFO {}, {} sockets x {} outstanding, \
         {} x {:.1} s per server, medians; load average before: {}",
        opts.server_cpu,
        opts.load_cpu,
        opts.nice,
        opts.fifo,
        opts.sockets,
        opts.window,
        opts.reps,
        opts.duration.as_secs_f64(),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "{:<8} {:>12} {:>9} {:>7} {:>7} {:>9} {:>9} {:>10} {:>10} {:>9} {:>7} {:>7}",
        "server",
        "responses/s",
        "CPU us/r",
        "CPU %",
        "gen %",
        "p50 us",
        "p99 us",
        "1-fl p50",
        "1-fl p99",
        "RSS KiB",
        "lost",
        "invalid"
    );
    for f in figs {
        let _ = writeln!(
            out,
            "{:<8} {:>12.0} {:>9.3} {:>7.1} {:>7.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>9} {:>7} {:>7}",
            f.name,
            f.rate,
            f.cpu_us,
            f.cpu_share * 100.0,
            f.gen_share * 100.0,
            f.p50_us,
            f.p99_us,
            f.idle_p50_us,
            f.idle_p99_us,
            f.rss_kib,
            f.lost,
            f.invalid
        );
    }
    let get = |n: &str| figs.iter().find(|f| f.name == n);
    let mut ratio = |a: &Figures, b: &Figures| {
        let _ = writeln!(
            out,
            "{}/{}: responses/s {:.3}, CPU per response {:.3}, p50 {:.3}, p99 {:.3}, idle RSS {:.3}",
            a.name,
            b.name,
            a.rate / b.rate,
            a.cpu_us / b.cpu_us,
            a.p50_us / b.p50_us,
            a.p99_us / b.p99_us,
            a.rss_kib as f64 / b.rss_kib.max(1) as f64
        );
    };
    if let (Some(c), Some(b)) = (get("chronyd"), get("bare")) {
        ratio(b, c);
    }
    if let (Some(g), Some(c)) = (get("gnomond"), get("chronyd")) {
        ratio(g, c);
    }
    if let (Some(g), Some(b)) = (get("gnomond"), get("bare")) {
        ratio(g, b);
    }
    let mut target = |what: &str, ok: bool| {
        let _ = writeln!(out, "target {what}: {}", if ok { "met" } else { "NOT MET" });
    };
    if let (Some(g), Some(c)) = (get("gnomond"), get("chronyd")) {
        target("responses/s >= 1.2 x chronyd", g.rate >= 1.2 * c.rate);
        target(
            "CPU per response <= 0.8 x chronyd",
            g.cpu_us <= 0.8 * c.cpu_us,
        );
        target("idle RSS <= chronyd", g.rss_kib <= c.rss_kib);
    }
    if let (Some(g), Some(b)) = (get("gnomond"), get("bare")) {
        target("responses/s >= 0.9 x bare", g.rate >= 0.9 * b.rate);
    }
    let _ = writeln!(
        out,
        "columns: CPU us/r = server utime+stime per valid response; CPU % = server, gen % = \
         generator, share of one core while loaded; p50/p99 = latency at saturation; 1-fl = \
         latency with one request in flight; RSS = VmRSS after start, before load"
    );
    for f in figs {
        if f.cpu_share < 0.9 {
            let _ = writeln!(
                out,
                "note: {} used {:.0} % of its CPU under load: it was not saturated, so its \
                 responses/s is a floor set by the generator, not its ceiling",
                f.name,
                f.cpu_share * 100.0
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_and_rss_read_our_own_process() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(rss_kib(me).unwrap() > 100);
    }

    #[test]
    fn conf_is_the_same_for_both_daemons_but_the_pidfile() {
        let a = server_conf(12345, Path::new("/tmp/x"), "chronyd", &[]);
        let b = server_conf(12345, Path::new("/tmp/x"), "gnomond", &[]);
        assert!(a.contains("port 12345\n") && a.contains("local stratum 10\n"));
        assert_eq!(a.replace("chronyd.pid", "P"), b.replace("gnomond.pid", "P"));
    }

    fn fig(name: &'static str, rate: f64, cpu_us: f64, rss_kib: u64) -> Figures {
        Figures {
            name,
            rate,
            cpu_us,
            cpu_share: 0.95,
            gen_share: 0.9,
            rss_kib,
            ..Figures::default()
        }
    }

    fn opts() -> ServerOptions {
        ServerOptions {
            servers: vec![Kind::Chronyd, Kind::Gnomond, Kind::Bare],
            chronyd: "chronyd".into(),
            gnomond: "gnomond".into(),
            noclock: "noclock".into(),
            bench: "gnomon-bench".into(),
            reps: 3,
            duration: Duration::from_secs(5),
            sockets: 32,
            window: 4,
            server_cpu: 0,
            load_cpu: 1,
            nice: -10,
            fifo: 1,
            extra_conf: vec![],
        }
    }

    #[test]
    fn report_judges_each_target_from_the_ratios() {
        let figs = [
            fig("chronyd", 100_000.0, 5.0, 5000),
            fig("gnomond", 125_000.0, 3.9, 3000),
            fig("bare", 130_000.0, 3.5, 2000),
        ];
        let r = report(&opts(), &figs);
        assert!(
            r.contains("gnomond/chronyd: responses/s 1.250, CPU per response 0.780"),
            "{r}"
        );
        assert!(r.contains("target responses/s >= 1.2 x chronyd: met"));
        assert!(r.contains("target CPU per response <= 0.8 x chronyd: met"));
        assert!(r.contains("target idle RSS <= chronyd: met"));
        assert!(r.contains("target responses/s >= 0.9 x bare: met"));
        let slow = [
            fig("chronyd", 100_000.0, 5.0, 5000),
            fig("gnomond", 110_000.0, 4.5, 6000),
            fig("bare", 130_000.0, 3.5, 2000),
        ];
        let r = report(&opts(), &slow);
        assert_eq!(r.matches("NOT MET").count(), 4, "{r}");
    }

    #[test]
    fn report_flags_an_unsaturated_server() {
        let mut f = fig("chronyd", 1.0, 1.0, 1);
        f.cpu_share = 0.5;
        assert!(report(&opts(), &[f]).contains("chronyd used 50 % of its CPU"));
    }

    #[test]
    fn noclock_is_found_beside_the_workspace_or_in_work_shared() {
        let p = find_noclock().expect("shared/tools/noclock");
        assert!(p.ends_with("shared/tools/noclock"));
    }

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(vec![]).is_nan());
    }
}
