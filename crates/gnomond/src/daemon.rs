//! Start-up, run and shutdown, in chronyd's order where it matters to users: options, root
//! check, configuration (errors name file and line and end the process before anything is
//! bound), `-p`, logging, detaching, PID file, sockets, privilege drop, the poll loop, and a clean
//! exit on SIGTERM/SIGINT/SIGQUIT/SIGHUP that removes the PID file. We read the configuration
//! before detaching (chronyd detaches first), so a bad file is reported on the terminal and a
//! relative `-f` path works.

use crate::cli::{self, Command, Family, Options};
use crate::clock::{NullClock, OsTime};
use crate::control::Control;
use crate::logging::{self, FatalEcho, Sink};
use crate::ntp_server::CoreResponder;
use crate::os::net::UdpSocket;
use crate::os::process::{self, ParentChannel};
use crate::os::signal::SignalPipe;
use crate::pidfile::PidFile;
use crate::privileges::{self, RunAs};
use crate::responder::BatchServer;
use crate::scheduler::{Exit, Scheduler};
use gnomon_conf::{Config, Settings};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// Exit status for every failure, as chronyd uses.
const FAILURE: i32 = 1;

/// A fatal error on the way: its message is logged as "Fatal error : ..." (and passed to the
/// waiting parent when detached).
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

/// Runs gnomond with the arguments after the program name; returns the exit status.
pub fn main_with(args: &[String]) -> i32 {
    logging::init();
    let command = match cli::parse(args) {
        Ok(c) => c,
        Err(e @ cli::CliError::InvalidArgument(_)) => {
            logging::fatal(&e.to_string());
            return FAILURE;
        }
        Err(e) => {
            eprintln!("gnomond: {e}");
            print!("{}", cli::usage());
            return FAILURE;
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::usage());
            0
        }
        Command::Version => {
            println!("{}", cli::version_line());
            0
        }
        Command::Lint(opts) => crate::lint::run(&opts),
        Command::Run(opts) => {
            let mut parent = None;
            match run(&opts, &mut parent) {
                Ok(()) => 0,
                Err(Fatal(message)) => {
                    logging::fatal(&message);
                    if let Some(p) = parent.as_mut() {
                        p.report(Some(&message));
                    }
                    FAILURE
                }
            }
        }
    }
}

/// Reads the configuration the options name: the trailing directives if any (the file is then
/// not read, as chronyd does), else `-f FILE` or the default file.
pub fn load_config(opts: &Options) -> Result<Config, gnomon_conf::ConfError> {
    if opts.directives.is_empty() {
        let file = opts.config_file.as_deref().unwrap_or(cli::DEFAULT_CONFIG);
        gnomon_conf::load_file(Path::new(file))
    } else {
        gnomon_conf::load_lines(&opts.directives)
    }
}

fn conf_error(e: gnomon_conf::ConfError) -> Fatal {
    match e.hint() {
        Some(hint) => Fatal(format!("{} ({hint})", e.chrony_message())),
        None => Fatal(e.chrony_message()),
    }
}

fn run(opts: &Options, parent: &mut Option<ParentChannel>) -> Result<(), Fatal> {
    // Logging as the options ask, before anything can fail, so that errors go where chronyd's
    // would: stderr with -d; otherwise the log file or syslog, with fatal errors also shown on
    // the terminal (prefixed with -n, bare when about to detach, as chronyd's parent prints).
    // -q/-Q (client.rs) stay in the foreground and log to stderr, as chronyd's do.
    let detach = opts.debug == 0 && !opts.no_detach && opts.one_shot.is_none();
    if !opts.print_config {
        let sink = if opts.debug > 0 || opts.one_shot.is_some() {
            Sink::Stderr
        } else if let Some(file) = &opts.log_file {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .map_err(|e| Fatal(format!("Could not open log file {file} : {e}")))?;
            Sink::File(f)
        } else {
            Sink::Syslog
        };
        let echo = if detach {
            FatalEcho::Plain
        } else {
            FatalEcho::Prefixed
        };
        logging::configure(
            sink,
            echo,
            logging::threshold_for(opts.log_level, opts.debug),
        );
    }
    if !opts.print_config && !opts.no_root_check && !process::is_root() {
        return Err(Fatal("Not superuser".into()));
    }
    let config = load_config(opts).map_err(conf_error)?;
    if opts.print_config {
        print!("{}", config.to_chrony_text());
        let _ = std::io::stdout().flush();
        return Ok(());
    }
    let settings = Settings::from_config(&config);

    tracing::info!(
        "gnomond version {} starting ({})",
        env!("CARGO_PKG_VERSION"),
        cli::FEATURES
    );
    for warning in crate::directives::unimplemented_warnings(&config) {
        tracing::warn!("{warning}");
    }
    if let Some(conflict) = crate::directives::fatal_conflict(&config) {
        return Err(Fatal(conflict));
    }
    // The system clock driver (clock/system.rs) exists only with the `system-clock` feature.
    if !opts.no_clock && !cfg!(feature = "system-clock") {
        return Err(Fatal(
            "gnomond can only run with -x (don't control the system clock) in this build: the \
             system clock driver needs the system-clock feature"
                .into(),
        ));
    }
    if opts.no_clock {
        tracing::info!("Disabled control of system clock");
    }
    if opts.filter_level != 0 {
        tracing::warn!(
            "System call filter (-F {}) is not supported",
            opts.filter_level
        );
    }
    if opts.reload_dumps || opts.rtc_set || opts.restart {
        tracing::warn!("-r, -R and -s have no effect yet (no dump files, no RTC support)");
    }

    // The user to drop to is looked up before anything is opened, so a typo fails early.
    let user = opts
        .user
        .clone()
        .or_else(|| settings.user.clone())
        .unwrap_or_else(|| cli::DEFAULT_USER.to_string());
    let explicit_user = opts.user.is_some() || settings.user.is_some();
    let target = if process::is_root() {
        match privileges::resolve(&user) {
            Ok(t) => t,
            Err(e) if !explicit_user => {
                tracing::warn!("{e}; staying root (set user or -u to choose one)");
                None
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    // `reload sources` (client/commands.rs) reads the same -f file later, from `/`.
    crate::client::commands::remember_options(opts);
    if detach {
        *parent = Some(process::daemonize()?);
    }
    let mut pidfile = PidFile::acquire(&settings.pidfile, process::pid(), process::process_exists)?;
    if let Some(ids) = target {
        // Let the unprivileged daemon remove its PID file at exit: own the file (enough in a
        // sticky directory such as /tmp) and our default directory /run/gnomond, which also
        // holds the command socket and must be the daemon user's (see command_socket.rs).
        let _ = std::os::unix::fs::lchown(pidfile.path(), Some(ids.uid), Some(ids.gid));
        let default_dir = Path::new(crate::pidfile::DEFAULT_PIDFILE).parent();
        if settings.pidfile.parent() == default_dir {
            if let Some(dir) = default_dir {
                let _ = std::os::unix::fs::lchown(dir, Some(ids.uid), Some(ids.gid));
            }
        }
    }
    let signals = SignalPipe::install()?;
    // A one-shot run (-q/-Q, client.rs) serves nobody, as chronyd's.
    let sockets = if opts.one_shot.is_some() {
        Vec::new()
    } else {
        open_sockets(&settings, opts.family)
    };
    let owner = target.unwrap_or_else(process::effective_ids);
    let commands = crate::command_socket::open_all(&settings, opts.family, (owner.uid, owner.gid));
    let metrics = crate::metrics::MetricsServer::from_settings(&settings)?; // metrics.rs
    let seed = random_seed();
    let command_limit = config.directives().any(|d| d.name() == "cmdratelimit");
    let mut responder = CoreResponder::new(&settings, seed, command_limit)?;
    // Authentication (keys.rs, nts_ke.rs): symmetric keys, NTS-KE listeners and cookie keys.
    crate::keys::install(settings.keyfile.clone(), responder.server_mut());
    let nts_ke = crate::nts_ke::NtsKeService::open(
        &settings,
        config.directives().any(|d| d.name() == "ntsratelimit"),
        opts.family,
        responder.server_mut(),
    )
    .unwrap_or_else(|e| {
        tracing::error!("{e}");
        None
    });
    // Synchronisation client (client.rs): the engine, its sources and its reports.
    let (mut client, client_reports) = crate::client::Client::new(
        &settings,
        crate::client::one_shot_mode(opts.one_shot),
        opts.timeout,
        seed.rotate_left(32),
        !opts.no_clock,
    )?;
    client.set_no_cert_time_check(u32::try_from(settings.nocerttimecheck.max(0)).unwrap_or(0));
    let mut control = Control::new(
        crate::ntp_server::access_table(&settings.cmd_access)?,
        opts.log_file.as_ref().map(std::path::PathBuf::from),
        client_reports,
    );

    // Settle privileges now that everything needing root is open.
    let lock = opts.lock_memory || settings.lock_all;
    if lock {
        process::lock_memory().map_err(|e| Fatal(format!("mlockall() failed : {e}")))?;
    }
    let priority = if opts.priority != 0 {
        opts.priority
    } else {
        settings.sched_priority.unwrap_or(0)
    };
    if priority > 0 {
        process::set_fifo_priority(priority)
            .map_err(|e| Fatal(format!("sched_setscheduler() failed : {e}")))?;
    }
    match privileges::drop_to(&user, target, opts.no_clock)? {
        RunAs::Root => tracing::info!("Running with root privileges"),
        RunAs::User(..) | RunAs::Unprivileged => {}
    }
    if process::has_sys_time() {
        return Err(Fatal("Could not drop CAP_SYS_TIME".into()));
    }

    // -x: the null clock; without -x only a `system-clock` build gets here (clock/system.rs).
    let mut clock = crate::clock::system::DaemonClocks::select(
        opts.no_clock,
        NullClock::new(OsTime, opts.null_clock),
        settings.rtcsync,
    )?;
    if opts.null_clock != Default::default() {
        tracing::info!(
            "Null clock starts with offset {} s and frequency error {} ppm",
            opts.null_clock.offset,
            opts.null_clock.freq_ppm
        );
    }
    let deadline = opts
        .timeout
        .filter(|t| *t >= 0 && opts.one_shot.is_none()) // -q/-Q: the engine's limit (client.rs)
        .map(|t| crate::os::clock::monotonic() + f64::from(t));
    let mut scheduler = Scheduler::new(signals, sockets, commands, deadline)
        .with_ntp_plan(NtpSocketPlan::new(&settings, opts.family))
        .with_metrics(metrics)
        .with_client(Some(client)) // client.rs
        .with_nts_ke(nts_ke); // nts_ke.rs
    let mut server = BatchServer::new();
    if let Some(p) = parent.as_mut() {
        p.report(None);
    }
    *parent = None;

    let exit = scheduler.run(&mut server, &mut responder, &mut control, &mut clock);
    // Close (and remove) the command sockets before the PID file goes.
    drop(scheduler);
    let c = server.counters;
    let core = responder.stats();
    tracing::info!(
        "NTP packets received {} in {} batches, sent {} send-failed {} malformed {} denied {} rate-limited {} kod {} other-dropped {}",
        c.received,
        c.batches,
        c.sent,
        c.send_failed,
        c.malformed,
        c.denied,
        c.rate_limited,
        core.ntp_kod_sent,
        c.other_drops
    );
    if core.ntp_interleaved > 0 {
        // Interleaved mode (responder.rs): how many replies carried a kernel stamp request.
        tracing::info!(
            "Interleaved NTP requests {}, kernel TX timestamps requested {} read {} used {}",
            core.ntp_interleaved,
            c.tx_stamps_requested,
            c.tx_stamps_matched,
            core.ntp_kernel_tx
        );
    }
    let cmd = control.counters();
    tracing::info!(
        "Command packets received {} dropped {}",
        cmd.hits,
        cmd.drops
    );
    if let Err(e) = pidfile.remove() {
        tracing::warn!("Could not remove {} : {e}", pidfile.path().display());
    }
    match exit {
        Ok(Exit::Signal(_)) | Ok(Exit::Timeout) | Ok(Exit::Shutdown) => {
            tracing::info!("gnomond exiting");
            Ok(())
        }
        Ok(Exit::Client(code)) => {
            // -q/-Q done or maxchange (client.rs): chronyd's exit status.
            tracing::info!("gnomond exiting");
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Err(e) => Err(Fatal(format!("poll() failed : {e}"))),
    }
}

/// Where the NTP server sockets go: one per family (the `bindaddress` of that family, or the
/// wildcard) on `port`, unless `-4`/`-6` exclude the family or `port 0` disables the server.
/// Used at start-up and when run-time `allow`/`deny` change whether a family has any allowed
/// address (chronyd opens and closes its server sockets then too).
#[derive(Debug, Clone)]
pub struct NtpSocketPlan {
    port: u16,
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
}

impl NtpSocketPlan {
    /// The plan for these settings and `-4`/`-6`.
    pub fn new(settings: &Settings, family: Option<Family>) -> NtpSocketPlan {
        let pick = |v6: bool| -> IpAddr {
            settings
                .bind_addresses
                .iter()
                .copied()
                .find(|a| a.is_ipv6() == v6)
                .unwrap_or(if v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                })
        };
        let on = settings.port != 0;
        NtpSocketPlan {
            port: settings.port,
            v4: (on && family != Some(Family::V6)).then(|| pick(false)),
            v6: (on && family != Some(Family::V4)).then(|| pick(true)),
        }
    }

    /// Opens the family's socket; a socket that cannot be opened is logged and skipped, as
    /// chronyd does.
    pub fn open(&self, v6: bool) -> Option<UdpSocket> {
        let ip = if v6 { self.v6? } else { self.v4? };
        let name = if v6 { "IPv6" } else { "IPv4" };
        match UdpSocket::bind(SocketAddr::new(ip, self.port)) {
            Ok(s) => {
                tracing::debug!("Opened {name} NTP socket on {}", s.local_addr());
                Some(s)
            }
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
                tracing::debug!("{name} is not available");
                None
            }
            Err(e) => {
                tracing::error!(
                    "Could not bind {name} NTP socket to {ip} port {} : {e}",
                    self.port
                );
                None
            }
        }
    }
}

/// Opens the NTP server sockets of the plan for each family with an allowed address (as
/// chronyd: `allow 127.0.0.1` alone opens no IPv6 socket), nothing when the server is disabled
/// (`port 0` or no `allow`).
fn open_sockets(settings: &Settings, family: Option<Family>) -> Vec<UdpSocket> {
    if !settings.serves_ntp() {
        return Vec::new();
    }
    // A rule that cannot be applied fails start-up later, with its message (CoreResponder).
    let Ok(access) = crate::ntp_server::access_table(&settings.access) else {
        return Vec::new();
    };
    let plan = NtpSocketPlan::new(settings, family);
    [false, true]
        .iter()
        .filter(|v6| {
            access.any_allowed(if **v6 {
                gnomon_core::access::Family::V6
            } else {
                gnomon_core::access::Family::V4
            })
        })
        .filter_map(|v6| plan.open(*v6))
        .collect()
}

/// 64 bits from the kernel's random source for the engine's seeded RNG.
fn random_seed() -> u64 {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut bytes).is_ok() {
            return u64::from_ne_bytes(bytes);
        }
    }
    // No /dev/urandom (a bare chroot): time and pid still differ between runs.
    let t = crate::os::clock::realtime();
    (t.sec as u64) ^ (u64::from(t.nsec) << 20) ^ (process::pid() as u64) << 44
}
