//! gnomon-bench: NTP load generator, bare responder and the side-by-side benchmark against
//! chronyd. Loopback only; every run is bounded in time and in request count.
//!
//! ```text
//! gnomon-bench load   --target 127.0.0.1:PORT [--sockets 32] [--window 4] [--duration 5]
//!                     [--count N] [--timeout-ms 100] [--seed S]
//! gnomon-bench bare   --listen 127.0.0.1:PORT [--max-seconds 600] [--count N]
//! gnomon-bench server [--servers chronyd,gnomond,bare] [--gnomond PATH] [--chronyd PATH]
//!                     [--reps 10] [--duration 2] [--sockets 32] [--window 4]
//!                     [--server-cpu 0] [--load-cpu 1] [--nice -10] [--fifo 1]
//!                     [--noclock PATH] [--conf LINE]...
//! gnomon-bench probe  HOST:PORT [--timeout-ms 2000]
//! gnomon-bench nts    [--servers chronyd,gnomond] [--clients 4] [--reps 5] [--duration 2]
//!                     [server options as above]
//! gnomon-bench mac-timing [--iterations 300000] [--batch 1000]
//! gnomon-bench nts-flood [--servers gnomond,chronyd] [--silent 10000] [--slow 1000]
//!                     [--addresses 1000] [--flood 30] [--quiet 3] [server options as above]
//! gnomon-bench sync   [--scenario impaired|clean|all] [--runs 1] [--duration 150] [--settle 60]
//!                     [--trace] [--gnomond PATH] [--chronyd PATH] [--chronyc PATH]
//!                     [--noclock PATH]
//! ```

mod bare;
mod histogram;
mod load;
mod mac_timing;
mod nts;
mod nts_flood;
mod packet;
mod probe;
mod server;
mod stats;
mod sync;
mod sys;

// The impairing relay of `sync` is gnomon-testnet's (shared with gnomond's tests);
// `crate::relay` still names it for sync/report.rs.
use gnomon_testnet::relay;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:
  gnomon-bench load   --target 127.0.0.1:PORT [--sockets 32] [--window 4] [--duration 5]
                      [--count N] [--timeout-ms 100] [--seed S]
  gnomon-bench bare   --listen 127.0.0.1:PORT [--max-seconds 600] [--count N]
  gnomon-bench server [--servers chronyd,gnomond,bare] [--gnomond PATH] [--chronyd PATH]
                      [--reps 10] [--duration 2] [--sockets 32] [--window 4]
                      [--server-cpu 0] [--load-cpu 1] [--nice -10] [--fifo 1]
                      [--noclock PATH] [--conf LINE]...
  gnomon-bench probe  HOST:PORT [--timeout-ms 2000]
  gnomon-bench nts    [--servers chronyd,gnomond] [--clients 4] [--reps 5] [--duration 2]
                      [server options as above]
  gnomon-bench mac-timing [--iterations 300000] [--batch 1000]
  gnomon-bench nts-flood [--servers gnomond,chronyd] [--silent 10000] [--slow 1000]
                      [--addresses 1000] [--flood 30] [--quiet 3] [server options as above]
  gnomon-bench sync   [--scenario impaired|clean|all] [--runs 1] [--duration 150] [--settle 60]
                      [--trace] [--gnomond PATH] [--chronyd PATH] [--chronyc PATH]
                      [--noclock PATH]";

/// Options that take no value (`--trace`): recorded as "true".
const FLAGS: &[&str] = &["trace"];

/// Options as `--name value` pairs (repeatable ones collect), [`FLAGS`], plus positional
/// arguments.
struct Args {
    opts: HashMap<String, Vec<String>>,
    positional: Vec<String>,
}

impl Args {
    fn parse(raw: &[String]) -> Result<Args, String> {
        let mut opts: HashMap<String, Vec<String>> = HashMap::new();
        let mut positional = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if FLAGS.contains(&name) {
                    opts.entry(name.to_string())
                        .or_default()
                        .push("true".into());
                    continue;
                }
                let v = it.next().ok_or(format!("--{name} needs a value"))?;
                opts.entry(name.to_string()).or_default().push(v.clone());
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { opts, positional })
    }

    fn check(&self, known: &[&str]) -> Result<(), String> {
        for k in self.opts.keys() {
            if !known.contains(&k.as_str()) {
                return Err(format!("unknown option --{k}"));
            }
        }
        Ok(())
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.opts
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.str(name) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| format!("--{name}: bad number {s:?}")),
        }
    }

    fn addr(&self, name: &str) -> Result<SocketAddr, String> {
        let s = self.str(name).ok_or(format!("--{name} is required"))?;
        parse_addr(s)
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = s.parse().map_err(|_| format!("bad address {s:?}"))?;
    if !a.ip().is_loopback() {
        return Err(format!(
            "{a} is not a loopback address: the bench only uses loopback"
        ));
    }
    Ok(a)
}

fn seconds(v: f64) -> Result<Duration, String> {
    if !(v > 0.0 && v <= 3600.0) {
        return Err(format!("duration {v} s out of range (0, 3600]"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn cmd_load(a: &Args) -> Result<ExitCode, String> {
    a.check(&[
        "target",
        "sockets",
        "window",
        "duration",
        "count",
        "timeout-ms",
        "seed",
    ])?;
    let (s, ns) = sys::realtime_now();
    let cfg = load::LoadConfig {
        target: a.addr("target")?,
        sockets: a.num("sockets", 32)?,
        window: a.num("window", 4)?,
        duration: seconds(a.num("duration", 5.0)?)?,
        max_requests: a.num("count", 50_000_000)?,
        timeout: Duration::from_millis(a.num("timeout-ms", 100)?),
        seed: a.num("seed", (s as u64) ^ u64::from(ns))?,
    };
    let r = load::run(&cfg).map_err(|e| e.to_string())?;
    println!("{r}");
    Ok(if r.invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_bare(a: &Args) -> Result<ExitCode, String> {
    a.check(&["listen", "max-seconds", "count"])?;
    let addr = a.addr("listen")?;
    let limit = seconds(a.num("max-seconds", 600.0)?)?;
    let n = bare::serve(addr, limit, a.num("count", u64::MAX)?).map_err(|e| e.to_string())?;
    eprintln!("bare: answered {n} requests");
    Ok(ExitCode::SUCCESS)
}

fn cmd_probe(a: &Args) -> Result<ExitCode, String> {
    a.check(&["timeout-ms"])?;
    let [target] = a.positional.as_slice() else {
        return Err("probe takes one HOST:PORT".into());
    };
    let addr = parse_addr(target)?;
    let t = Duration::from_millis(a.num("timeout-ms", 2000)?);
    let x = probe::query(addr, t).map_err(|e| format!("{addr}: {e}"))?;
    print!("{}", probe::describe(addr, &x));
    Ok(ExitCode::SUCCESS)
}

fn cmd_server(a: &Args) -> Result<ExitCode, String> {
    let opts = server_options(a, "chronyd,gnomond,bare", 10, &[])?;
    let (text, all_valid) = server::run(&opts)?;
    print!("{text}");
    if !all_valid {
        eprintln!("gnomon-bench: some responses were invalid");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `gnomon-bench nts` (nts.rs): NTS-KE handshakes/s and NTS responses/s.
fn cmd_nts(a: &Args) -> Result<ExitCode, String> {
    let base = server_options(a, "chronyd,gnomond", 5, &["clients"])?;
    let opts = nts::NtsOptions {
        base,
        clients: a.num("clients", 4)?,
    };
    if opts.clients == 0 || opts.clients > 64 {
        return Err("--clients must be 1..=64".into());
    }
    let (text, ok) = nts::run(&opts)?;
    print!("{text}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `gnomon-bench mac-timing` (mac_timing.rs): case 17's timing smoke check of `Key::verify`.
fn cmd_mac_timing(a: &Args) -> Result<ExitCode, String> {
    a.check(&["iterations", "batch"])?;
    let opts = mac_timing::MacTimingOptions {
        iterations: a.num("iterations", 300_000)?,
        batch: a.num("batch", 1000)?,
    };
    if opts.batch == 0 || opts.iterations < opts.batch || opts.iterations > 100_000_000 {
        return Err("--batch must be at least 1 and at most --iterations (<= 1e8)".into());
    }
    let (text, ok) = mac_timing::run(opts);
    print!("{text}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `gnomon-bench nts-flood` (nts_flood.rs): case 30 at scale, NTS-KE connection exhaustion.
fn cmd_nts_flood(a: &Args) -> Result<ExitCode, String> {
    let more = ["silent", "slow", "addresses", "flood", "quiet"];
    let mut base = server_options(a, "gnomond,chronyd", 1, &more)?;
    // Unlike the throughput benches, the daemons keep ordinary priority unless asked: a
    // real-time daemon under a connection flood would starve the flood and the machine.
    if a.str("nice").is_none() {
        base.nice = 0;
    }
    if a.str("fifo").is_none() {
        base.fifo = 0;
    }
    let opts = nts_flood::FloodOptions {
        base,
        silent: a.num("silent", 10_000)?,
        slow: a.num("slow", 1000)?,
        addresses: a.num("addresses", 1000)?,
        flood: seconds(a.num("flood", 30.0)?)?,
        quiet: seconds(a.num("quiet", 3.0)?)?,
    };
    if opts.silent > 50_000 || opts.slow > 10_000 {
        return Err("--silent must be at most 50000 and --slow at most 10000".into());
    }
    if opts.addresses == 0 || opts.addresses > 60_000 {
        return Err("--addresses must be 1..=60000".into());
    }
    if opts.flood > Duration::from_secs(300) || opts.quiet > Duration::from_secs(60) {
        return Err("--flood must be at most 300 s and --quiet at most 60 s".into());
    }
    let (text, ok) = nts_flood::run(&opts)?;
    print!("{text}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `gnomon-bench sync` (sync.rs): synchronisation accuracy, gnomond vs chronyd as clients.
fn cmd_sync(a: &Args) -> Result<ExitCode, String> {
    a.check(&[
        "scenario", "runs", "duration", "settle", "trace", "gnomond", "chronyd", "chronyc",
        "noclock",
    ])?;
    let scenario = a.str("scenario").unwrap_or("all");
    let bench = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let opts = sync::SyncOptions {
        scenarios: sync::Scenario::parse_list(scenario)
            .ok_or(format!("--scenario {scenario:?}: impaired, clean or all"))?,
        runs: a.num("runs", 1)?,
        duration: seconds(a.num("duration", 150.0)?)?,
        settle: a.num("settle", 60.0)?,
        trace: a.str("trace").is_some(),
        gnomond: a
            .str("gnomond")
            .map(PathBuf::from)
            .unwrap_or_else(|| bench.with_file_name("gnomond")),
        chronyd: PathBuf::from(a.str("chronyd").unwrap_or("/usr/sbin/chronyd")),
        chronyc: PathBuf::from(a.str("chronyc").unwrap_or("/usr/bin/chronyc")),
        noclock: match a.str("noclock") {
            Some(p) => PathBuf::from(p),
            None => server::find_noclock().ok_or(
                "shared/tools/noclock not found (give --noclock PATH): refusing to start time \
                 daemons without it",
            )?,
        },
    };
    if opts.runs == 0 || opts.runs > 20 {
        return Err("--runs must be 1..=20".into());
    }
    if !(opts.settle >= 0.0 && opts.settle < opts.duration.as_secs_f64()) {
        return Err("--settle must be at least 0 and less than --duration".into());
    }
    for (what, p) in [
        ("gnomond", &opts.gnomond),
        ("chronyd", &opts.chronyd),
        ("chronyc", &opts.chronyc),
    ] {
        if !p.is_file() {
            return Err(format!(
                "{what} not found at {} (give --{what} PATH)",
                p.display()
            ));
        }
    }
    // Ctrl-C or SIGTERM ends the run between steps, so the Drop guards kill the daemons and
    // remove the temporary directories.
    sys::catch_interrupts().map_err(|e| format!("installing the SIGINT handler: {e}"))?;
    Ok(if sync::run(&opts)? {
        ExitCode::SUCCESS
    } else {
        eprintln!("gnomon-bench: a client never synchronised");
        ExitCode::FAILURE
    })
}

/// The server options shared by `server` and `nts` (`more`: options only the caller takes).
fn server_options(
    a: &Args,
    default_servers: &str,
    default_reps: usize,
    more: &[&str],
) -> Result<server::ServerOptions, String> {
    let mut known = vec![
        "servers",
        "gnomond",
        "chronyd",
        "reps",
        "duration",
        "sockets",
        "window",
        "server-cpu",
        "load-cpu",
        "nice",
        "fifo",
        "noclock",
        "conf",
    ];
    known.extend_from_slice(more);
    a.check(&known)?;
    let bench = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let default_gnomond = bench.with_file_name("gnomond");
    let servers = a
        .str("servers")
        .unwrap_or(default_servers)
        .split(',')
        .map(|s| server::Kind::parse(s).ok_or(format!("unknown server {s:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = server::ServerOptions {
        servers,
        chronyd: PathBuf::from(a.str("chronyd").unwrap_or("/usr/sbin/chronyd")),
        gnomond: a
            .str("gnomond")
            .map(PathBuf::from)
            .unwrap_or(default_gnomond),
        noclock: match a.str("noclock") {
            Some(p) => PathBuf::from(p),
            None => server::find_noclock().ok_or(
                "shared/tools/noclock not found (give --noclock PATH): refusing to start time \
                 daemons without it",
            )?,
        },
        bench,
        reps: a.num("reps", default_reps)?,
        duration: seconds(a.num("duration", 2.0)?)?,
        sockets: a.num("sockets", 32)?,
        window: a.num("window", 4)?,
        server_cpu: a.num("server-cpu", 0)?,
        load_cpu: a.num("load-cpu", 1)?,
        nice: a.num("nice", -10)?,
        fifo: a.num("fifo", 1)?,
        extra_conf: a.opts.get("conf").cloned().unwrap_or_default(),
    };
    if opts.reps == 0 || opts.reps > 20 {
        return Err("--reps must be 1..=20".into());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = raw.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let args = match Args::parse(rest) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gnomon-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let r = match cmd.as_str() {
        "load" => cmd_load(&args),
        "bare" => cmd_bare(&args),
        "server" => cmd_server(&args),
        "probe" => cmd_probe(&args),
        "nts" => cmd_nts(&args),
        "mac-timing" => cmd_mac_timing(&args),
        "nts-flood" => cmd_nts_flood(&args),
        "sync" => cmd_sync(&args),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("unknown command {cmd:?}")),
    };
    match r {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gnomon-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
