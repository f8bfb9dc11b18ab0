//! `gnomon-bench sync`: how well gnomond synchronises compared with chronyd, side by side in
//! the same run. One upstream `chronyd -x` with `local stratum 8` serves this machine's clock
//! on loopback; chronyd and gnomond are its clients, each through its own [`Relay`] with the
//! same [`Impairment`], both with `iburst minpoll 0 maxpoll 0` (one request a second), both
//! `-x` under `noclock` (nothing here can touch the machine's clock). Every 250 ms `chronyc
//! tracking` is read from each client. Reported per run: the time to the first synchronised
//! `tracking` (non-zero stratum); the `Last offset` sampled once a second after the settle
//! time (RMS and maximum); the daemon's own `RMS offset` and `Frequency` at the end; for
//! gnomond the error of its served time against CLOCK_REALTIME (best of three loopback
//! exchanges a second: chronyd -x does not serve its disciplined time); the relays' counts;
//! and the ratios gnomond/chronyd. With several runs, the medians follow.
//!
//! No SCHED_FIFO, nice or CPU pinning: the figures are about the daemons' filters and loops,
//! not throughput, and other work on the machine falls on both clients alike.

use crate::probe;
use crate::server::TempDir;
use crate::sys::{interrupted, monotonic_now};
use gnomon_testnet::{Impairment, Relay};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod report;
use report::{median_report, run_report, tracking_value, RunFigures, Summary};

/// How often `tracking` is read from each client.
const TRACKING_EVERY: Duration = Duration::from_millis(250);
/// Longest a daemon may take to answer NTP after its start.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// Longest one chronyc call may take before it is killed.
const CHRONYC_LIMIT: Duration = Duration::from_secs(5);
/// The source options both clients get.
const SOURCE: &str = "iburst minpoll 0 maxpoll 0";

/// One of the compared network conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// [`Impairment::IMPAIRED`].
    Impaired,
    /// [`Impairment::CLEAN`].
    Clean,
}

impl Scenario {
    /// The name in the output and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Impaired => "impaired",
            Scenario::Clean => "clean",
        }
    }

    /// What the relays do in this scenario.
    pub fn impairment(self) -> Impairment {
        match self {
            Scenario::Impaired => Impairment::IMPAIRED,
            Scenario::Clean => Impairment::CLEAN,
        }
    }

    /// Parses `--scenario`: `impaired`, `clean` or `all` (both, impaired first).
    pub fn parse_list(s: &str) -> Option<Vec<Scenario>> {
        match s {
            "impaired" => Some(vec![Scenario::Impaired]),
            "clean" => Some(vec![Scenario::Clean]),
            "all" => Some(vec![Scenario::Impaired, Scenario::Clean]),
            _ => None,
        }
    }
}

/// Options of `gnomon-bench sync`.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Scenarios, run in order, each `runs` times.
    pub scenarios: Vec<Scenario>,
    /// Runs of each scenario.
    pub runs: usize,
    /// Length of each run.
    pub duration: Duration,
    /// Seconds after the start before `Last offset` and the served time are sampled.
    pub settle: f64,
    /// Print a line a second with gnomond's `sourcestats` row.
    pub trace: bool,
    /// Path of gnomond.
    pub gnomond: PathBuf,
    /// Path of chronyd (upstream and client alike).
    pub chronyd: PathBuf,
    /// Path of chronyc (reads `tracking` from both clients).
    pub chronyc: PathBuf,
    /// Path of `noclock`.
    pub noclock: PathBuf,
}

/// A daemon started as `noclock DAEMON -x -d -u root -f CONF` (noclock execs the daemon, so
/// the child's PID is the daemon's); killed by that PID when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(
        name: &'static str,
        opts: &SyncOptions,
        bin: &Path,
        dir: &Path,
        conf: &str,
    ) -> Result<Proc, String> {
        let conf_path = dir.join(format!("{name}.conf"));
        let log = dir.join(format!("{name}.log"));
        let pidfile = dir.join(format!("{name}.pid"));
        fs::write(
            &conf_path,
            format!("pidfile {}\n{conf}\n", pidfile.display()),
        )
        .map_err(|e| format!("writing {}: {e}", conf_path.display()))?;
        let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&opts.noclock);
        cmd.arg(bin)
            .args(["-x", "-d", "-u", "root", "-f"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        crate::sys::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {name} ({}): {e}", bin.display()))?;
        Ok(Proc { name, child, log })
    }

    /// An error naming the daemon and its last log lines if it has exited.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!("{} exited ({st}):\n{}", self.name, self.log_tail())),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` with its stdout captured, killing it after `limit`; its stdout (empty when it
/// could not run).
fn run_bounded(cmd: &mut Command, limit: Duration) -> String {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return String::new();
    };
    let t0 = monotonic_now();
    // chronyc's output is a few hundred bytes: it fits the pipe, so waiting before reading
    // cannot deadlock.
    while matches!(child.try_wait(), Ok(None)) && t0.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    child
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `chronyc -n -h 127.0.0.1 -p PORT WHAT` as text (empty when chronyc failed).
fn chronyc(opts: &SyncOptions, cmdport: u16, what: &str) -> String {
    run_bounded(
        Command::new(&opts.chronyc)
            .args(["-n", "-h", "127.0.0.1", "-p"])
            .arg(cmdport.to_string())
            .arg(what),
        CHRONYC_LIMIT,
    )
}

/// "chronyd 4.3" from `chronyd -v` (run under noclock like every start of it), else "chronyd".
fn chronyd_name(opts: &SyncOptions) -> String {
    let out = run_bounded(
        Command::new(&opts.noclock).arg(&opts.chronyd).arg("-v"),
        Duration::from_secs(5),
    );
    let version = out
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1);
    match version {
        Some(v) => format!("chronyd {v}"),
        None => "chronyd".into(),
    }
}

/// Whether UDP `port` can be bound on every address a daemon may bind it on (127.0.0.1 and the
/// IPv4 wildcard, ::1 and the IPv6 wildcard where IPv6 exists): SO_REUSEPORT holders make our
/// plain bind fail too, so this finds ports nobody in another session uses.
fn port_is_free(port: u16) -> bool {
    let v4 = ["127.0.0.1", "0.0.0.0"]
        .iter()
        .all(|a| UdpSocket::bind((*a, port)).is_ok());
    let v6 = ["::1", "::"]
        .iter()
        .all(|a| match UdpSocket::bind((*a, port)) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::AddrNotAvailable,
        });
    v4 && v6
}

/// A free UDP port in 20000–60000 not already in `taken` (which it joins).
fn free_port(rng: &mut StdRng, taken: &mut Vec<u16>) -> Result<u16, String> {
    for _ in 0..200 {
        let port = rng.random_range(20_000..60_000);
        if !taken.contains(&port) && port_is_free(port) {
            taken.push(port);
            return Ok(port);
        }
    }
    Err("no free UDP port in 20000-60000 after 200 tries".into())
}

/// Waits until `addr` answers an NTP query, failing if `proc` exits or `limit` passes.
fn wait_answers(proc: &mut Proc, addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let t0 = monotonic_now();
    while t0.elapsed() < limit {
        if interrupted() {
            return Err("interrupted".into());
        }
        proc.check_alive()?;
        if probe::query(addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{} did not answer on {addr} within {} s:\n{}",
        proc.name,
        limit.as_secs(),
        proc.log_tail()
    ))
}

/// The offset of the time `server` serves from this machine's CLOCK_REALTIME (positive: the
/// server is ahead), from the least-delay exchange of `n`; `None` when it never answered.
fn served_offset(server: SocketAddr, n: usize) -> Option<f64> {
    (0..n)
        .filter_map(|_| probe::query(server, Duration::from_millis(300)).ok())
        .min_by(|a, b| a.delay().total_cmp(&b.delay()))
        .map(|x| x.offset())
}

/// The daemons and relays of one run. Fields drop in order: the daemons are killed, the
/// relays stopped, and only then is the directory holding their files removed.
struct Lab {
    gnomond: Proc,
    chronyd: Proc,
    upstream: Proc,
    relays: [Relay; 2],
    chronyd_cmd: u16,
    gnomond_cmd: u16,
    gnomond_ntp: SocketAddr,
    _dir: TempDir,
}

/// Starts the upstream, the relays and both clients for `scenario`. `start` is taken just
/// before the clients are started.
fn start_lab(opts: &SyncOptions, scenario: Scenario, run: usize) -> Result<(Lab, Instant), String> {
    let dir = TempDir::new("gnomon-bench-sync").map_err(|e| format!("temp dir: {e}"))?;
    let (s, ns) = crate::sys::realtime_now();
    let mut rng = StdRng::seed_from_u64((s as u64) << 30 ^ u64::from(ns) ^ run as u64);
    let mut taken = Vec::new();
    let up_port = free_port(&mut rng, &mut taken)?;
    let chronyd_cmd = free_port(&mut rng, &mut taken)?;
    let gnomond_port = free_port(&mut rng, &mut taken)?;
    let gnomond_cmd = free_port(&mut rng, &mut taken)?;
    // `bindcmdaddress /` keeps chronyd off the shared /run/chrony command socket.
    let mut upstream = Proc::start(
        "upstream",
        opts,
        &opts.chronyd,
        &dir.0,
        &format!(
            "port {up_port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\n\
             cmdport 0\nbindcmdaddress /"
        ),
    )?;
    let upstream_addr = SocketAddr::from(([127, 0, 0, 1], up_port));
    wait_answers(&mut upstream, upstream_addr, READY_LIMIT)?;
    // The relays outlive the run by 30 s at most, whatever happens to this process's loop.
    let life = opts.duration + Duration::from_secs(30);
    let imp = scenario.impairment();
    let seed = 11 + 2 * run as u64;
    let start_relay =
        |seed| Relay::start(upstream_addr, imp, seed, life).map_err(|e| format!("relay: {e}"));
    let relays = [start_relay(seed)?, start_relay(seed + 1)?];
    let start = monotonic_now();
    let chronyd = Proc::start(
        "chronyd",
        opts,
        &opts.chronyd,
        &dir.0,
        &format!(
            "server 127.0.0.1 port {} {SOURCE}\nport 0\ncmdport {chronyd_cmd}\n\
             bindcmdaddress 127.0.0.1\nbindcmdaddress /",
            relays[0].addr.port()
        ),
    )?;
    let mut gnomond = Proc::start(
        "gnomond",
        opts,
        &opts.gnomond,
        &dir.0,
        &format!(
            "port {gnomond_port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\n\
             cmdport {gnomond_cmd}\nbindcmdaddress {}\nserver 127.0.0.1 port {} {SOURCE}",
            dir.0.join("run/gnomond.sock").display(),
            relays[1].addr.port()
        ),
    )?;
    let gnomond_ntp = SocketAddr::from(([127, 0, 0, 1], gnomond_port));
    // As the test did: tracking is read once gnomond answers (tens of milliseconds), so that
    // chronyc never waits out its retries on a port nobody holds yet.
    wait_answers(&mut gnomond, gnomond_ntp, READY_LIMIT)?;
    Ok((
        Lab {
            gnomond,
            chronyd,
            upstream,
            relays,
            chronyd_cmd,
            gnomond_cmd,
            gnomond_ntp,
            _dir: dir,
        },
        start,
    ))
}

/// One run of `scenario`; `label` prefixes the trace lines.
pub fn run_once(
    opts: &SyncOptions,
    scenario: Scenario,
    run: usize,
    label: &str,
) -> Result<RunFigures, String> {
    let (mut lab, start) = start_lab(opts, scenario, run)?;
    let mut fig = RunFigures::default();
    let mut next_sample = 0.0;
    while start.elapsed() < opts.duration {
        if interrupted() {
            return Err("interrupted".into());
        }
        for p in [&mut lab.upstream, &mut lab.chronyd, &mut lab.gnomond] {
            p.check_alive()?;
        }
        let t = start.elapsed().as_secs_f64();
        let sample = t >= opts.settle && t >= next_sample;
        for (i, cmd) in [lab.chronyd_cmd, lab.gnomond_cmd].into_iter().enumerate() {
            let text = chronyc(opts, cmd, "tracking");
            let c = &mut fig.clients[i];
            if tracking_value(&text, "Stratum").is_some_and(|s| s > 0.0) {
                c.first_sync.get_or_insert(t);
                if sample {
                    if let Some(o) = tracking_value(&text, "Last offset") {
                        c.last.push(o);
                    }
                    if let Some(f) = tracking_value(&text, "Frequency") {
                        c.freq.push(f);
                    }
                }
            }
            if !text.is_empty() {
                c.tracking = text;
            }
        }
        if sample {
            if let Some(o) = served_offset(lab.gnomond_ntp, 3) {
                fig.served.push(o);
            }
            if opts.trace {
                let stats = chronyc(opts, lab.gnomond_cmd, "sourcestats");
                let us = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN) * 1e6;
                println!(
                    "{label} {t:6.1} chronyd {:+9.1} us gnomond {:+9.1} us served {:+9.1} us | {}",
                    us(&fig.clients[0].last),
                    us(&fig.clients[1].last),
                    us(&fig.served),
                    stats.lines().last().unwrap_or("").trim()
                );
                let _ = std::io::stdout().flush();
            }
            next_sample = t + 1.0;
        }
        std::thread::sleep(TRACKING_EVERY);
    }
    let Lab {
        gnomond,
        chronyd,
        upstream,
        relays: [r0, r1],
        _dir,
        ..
    } = lab;
    drop((gnomond, chronyd, upstream));
    fig.relays = [r0.finish(), r1.finish()];
    Ok(fig)
}

/// Runs every scenario `runs` times, printing as it goes; returns whether every run had both
/// clients synchronised.
pub fn run(opts: &SyncOptions) -> Result<bool, String> {
    let chronyd = chronyd_name(opts);
    let names = [chronyd.as_str(), "gnomond"];
    println!(
        "sync: {chronyd} ({}) and gnomond ({}) as clients of one chronyd -x (local stratum 8) \
         on loopback, each through its own relay, {SOURCE}, both -x under noclock; {} s per \
         run, Last offset and served time sampled every second from {} s; {} run(s) per \
         scenario; load average before: {}",
        opts.chronyd.display(),
        opts.gnomond.display(),
        opts.duration.as_secs_f64(),
        opts.settle,
        opts.runs,
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut all_ok = true;
    for &scenario in &opts.scenarios {
        let name = scenario.name();
        println!("{name}: relays: {}", scenario.impairment());
        let mut summaries = Vec::new();
        for run in 0..opts.runs {
            let label = if opts.runs == 1 {
                name.to_string()
            } else {
                format!("{name} run {}/{}", run + 1, opts.runs)
            };
            eprintln!("{label}: running for {:.0} s", opts.duration.as_secs_f64());
            let f = run_once(opts, scenario, run, &label)?;
            all_ok &= f.both_synced();
            print!("{}", run_report(&label, names, opts.settle, &f));
            let _ = std::io::stdout().flush();
            summaries.push(Summary::of(&f));
        }
        if opts.runs > 1 {
            print!("{}", median_report(name, names, opts.settle, &summaries));
        }
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_all_runs_impaired_first() {
        assert_eq!(
            Scenario::parse_list("all"),
            Some(vec![Scenario::Impaired, Scenario::Clean])
        );
        assert_eq!(Scenario::parse_list("clean"), Some(vec![Scenario::Clean]));
        assert_eq!(Scenario::parse_list("lossy"), None);
        assert_eq!(Scenario::Impaired.impairment(), Impairment::IMPAIRED);
    }

    #[test]
    fn free_ports_are_distinct_and_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut taken = Vec::new();
        for _ in 0..4 {
            let p = free_port(&mut rng, &mut taken).unwrap();
            assert!((20_000..60_000).contains(&p));
        }
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
    }
}
