//! Effective settings: the configuration's entries folded into values, with chrony's defaults.
//!
//! chrony.conf(5): when a single-valued directive appears several times the last one wins;
//! `server`/`pool`/`peer`/`refclock`, `allow`/`deny`, `cmdallow`/`cmddeny`, `bindaddress`
//! (one per family), `bindcmdaddress`, `hwtimestamp`, `ntsservercert`/`ntsserverkey`, `log`
//! accumulate. Defaults are chrony 4.3's except the PID file and Unix command socket, which are
//! gnomond's own paths (chrony's are kept in constants for reference).

use crate::access::AccessSpec;
use crate::directive::{AuthSelectMode, BindCmd, Directive, LeapSecMode, LogKind};
use crate::location::Location;
use crate::options::{HwTimestampSpec, LocalSpec, RateLimitSpec};
use crate::refclock::RefClockSpec;
use crate::source::SourceSpec;
use crate::Config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// gnomond's default PID file.
pub const DEFAULT_PIDFILE: &str = "/run/gnomond/gnomond.pid";
/// chronyd's default PID file (for reference / migration notes).
pub const CHRONY_PIDFILE: &str = "/var/run/chrony/chronyd.pid";
/// gnomond's default Unix command socket.
pub const DEFAULT_CMD_SOCKET: &str = "/run/gnomond/gnomond.sock";
/// chronyd's default Unix command socket.
pub const CHRONY_CMD_SOCKET: &str = "/var/run/chrony/chronyd.sock";

/// An `allow` (true) or `deny` (false) rule, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub allow: bool,
    pub spec: AccessSpec,
}

/// Which directive configured a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Server,
    Pool,
    Peer,
}

/// A configured NTP source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub kind: SourceKind,
    pub spec: SourceSpec,
    pub location: Location,
    /// Read from a `sourcedir` file (reloadable with `reload sources`).
    pub from_sourcedir: bool,
}

/// Effective configuration values.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    // NTP server
    pub port: u16,
    pub bind_addresses: Vec<IpAddr>,
    pub bind_device: Option<String>,
    pub access: Vec<AccessRule>,
    /// `None` when no `ratelimit` line (no rate limiting); given lines start from (3, 8, 2).
    pub ratelimit: Option<RateLimitSpec>,
    pub ntsratelimit: RateLimitSpec,
    pub cmdratelimit: RateLimitSpec,
    pub clientloglimit: u64,
    pub noclientlog: bool,
    pub local: Option<LocalSpec>,
    pub smoothtime: Option<(f64, f64, bool)>,
    pub broadcasts: Vec<(i32, IpAddr, u16)>,
    // Command access
    pub cmdport: u16,
    /// UDP command addresses, one per family (default 127.0.0.1 and ::1).
    pub bind_cmd_addresses: Vec<IpAddr>,
    /// Unix command socket; `None` when disabled with `bindcmdaddress /`.
    pub cmd_socket: Option<PathBuf>,
    pub bind_cmd_device: Option<String>,
    pub cmd_access: Vec<AccessRule>,
    pub opencommands: Option<Vec<String>>,
    // Metrics endpoint (Gnomon extension)
    /// `metricsport`: TCP port of the Prometheus endpoint; 0 (the default) disables it.
    pub metrics_port: u16,
    /// `bindmetricsaddress` (default 127.0.0.1; last one wins).
    pub bind_metrics_address: IpAddr,
    /// `metricsallownonlocal`: a non-loopback `bindmetricsaddress` is allowed.
    pub metrics_allow_nonlocal: bool,
    // Process
    pub pidfile: PathBuf,
    pub user: Option<String>,
    pub lock_all: bool,
    pub sched_priority: Option<i32>,
    // Clock
    pub driftfile: Option<PathBuf>,
    pub driftfile_interval: Option<i32>,
    pub makestep: Option<(f64, i32)>,
    pub maxchange: Option<(f64, i32, i32)>,
    pub maxupdateskew: f64,
    pub maxslewrate: f64,
    pub maxdrift: f64,
    pub maxclockerror: f64,
    pub corrtimeratio: f64,
    pub clockprecision: Option<f64>,
    pub fallbackdrift: Option<(i32, i32)>,
    pub leapsectz: Option<String>,
    pub leapseclist: Option<PathBuf>,
    pub leapsecmode: LeapSecMode,
    pub rtcsync: bool,
    pub rtcfile: Option<PathBuf>,
    pub rtconutc: bool,
    pub rtcdevice: PathBuf,
    pub manual: bool,
    // Logging
    pub logdir: Option<PathBuf>,
    pub log: Vec<LogKind>,
    pub logbanner: i32,
    pub logchange: f64,
    pub mailonchange: Option<(String, f64)>,
    // Authentication / NTS
    pub keyfile: Option<PathBuf>,
    pub authselectmode: AuthSelectMode,
    pub ntsport: u16,
    pub nts_server_certs: Vec<PathBuf>,
    pub nts_server_keys: Vec<PathBuf>,
    pub ntsprocesses: i32,
    pub maxntsconnections: i32,
    pub ntsrotate: i32,
    pub ntsdumpdir: Option<PathBuf>,
    pub ntsrefresh: i32,
    /// `nocerttimecheck N`: NTS certificate times are not checked for the first N clock
    /// updates (0, the default, always checks them).
    pub nocerttimecheck: i32,
    pub ntsntpserver: Option<String>,
    pub nts_trusted_certs: Vec<(Option<u32>, PathBuf)>,
    pub nosystemcert: bool,
    // Sources and selection
    pub sources: Vec<Source>,
    pub refclocks: Vec<(RefClockSpec, Location)>,
    pub initstepslew: Option<(f64, Vec<String>)>,
    pub minsources: i32,
    pub maxdistance: f64,
    pub maxjitter: f64,
    pub combinelimit: f64,
    pub reselectdist: f64,
    pub stratumweight: f64,
    pub minsamples: Option<i32>,
    pub maxsamples: Option<i32>,
    pub acquisitionport: u16,
    pub bind_acq_address: Vec<IpAddr>,
    pub dumpdir: Option<PathBuf>,
    pub hwtimestamps: Vec<HwTimestampSpec>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 123,
            bind_addresses: Vec::new(),
            bind_device: None,
            access: Vec::new(),
            ratelimit: None,
            ntsratelimit: RateLimitSpec::NTS_DEFAULT,
            cmdratelimit: RateLimitSpec::CMD_DEFAULT,
            clientloglimit: 524_288,
            noclientlog: false,
            local: None,
            smoothtime: None,
            broadcasts: Vec::new(),
            cmdport: 323,
            bind_cmd_addresses: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            cmd_socket: Some(PathBuf::from(DEFAULT_CMD_SOCKET)),
            bind_cmd_device: None,
            cmd_access: Vec::new(),
            opencommands: None,
            metrics_port: 0,
            bind_metrics_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            metrics_allow_nonlocal: false,
            pidfile: PathBuf::from(DEFAULT_PIDFILE),
            user: None,
            lock_all: false,
            sched_priority: None,
            driftfile: None,
            driftfile_interval: None,
            makestep: None,
            maxchange: None,
            maxupdateskew: 1000.0,
            maxslewrate: 83_333.333,
            maxdrift: 500_000.0,
            maxclockerror: 1.0,
            corrtimeratio: 3.0,
            clockprecision: None,
            fallbackdrift: None,
            leapsectz: None,
            leapseclist: None,
            leapsecmode: LeapSecMode::System,
            rtcsync: false,
            rtcfile: None,
            rtconutc: false,
            rtcdevice: PathBuf::from("/dev/rtc"),
            manual: false,
            logdir: None,
            log: Vec::new(),
            logbanner: 32,
            logchange: 1.0,
            mailonchange: None,
            keyfile: None,
            authselectmode: AuthSelectMode::Mix,
            ntsport: 4460,
            nts_server_certs: Vec::new(),
            nts_server_keys: Vec::new(),
            ntsprocesses: 1,
            maxntsconnections: 100,
            ntsrotate: 604_800,
            ntsdumpdir: None,
            ntsrefresh: 2_419_200,
            nocerttimecheck: 0,
            ntsntpserver: None,
            nts_trusted_certs: Vec::new(),
            nosystemcert: false,
            sources: Vec::new(),
            refclocks: Vec::new(),
            initstepslew: None,
            minsources: 1,
            maxdistance: 3.0,
            maxjitter: 1.0,
            combinelimit: 3.0,
            reselectdist: 1e-4,
            stratumweight: 1e-3,
            minsamples: None,
            maxsamples: None,
            acquisitionport: 0,
            bind_acq_address: Vec::new(),
            dumpdir: None,
            hwtimestamps: Vec::new(),
        }
    }
}

impl Settings {
    /// Fold a configuration into settings.
    pub fn from_config(config: &Config) -> Settings {
        let mut s = Settings::default();
        for e in &config.entries {
            s.apply(&e.directive, &e.location, e.from_sourcedir);
        }
        s
    }

    /// Whether NTP clients are served (an `allow` exists and the port is not 0).
    pub fn serves_ntp(&self) -> bool {
        self.port != 0 && self.access.iter().any(|r| r.allow)
    }

    fn apply(&mut self, d: &Directive, loc: &Location, from_sourcedir: bool) {
        use Directive as D;
        let source = |kind, spec: &SourceSpec| Source {
            kind,
            spec: spec.clone(),
            location: loc.clone(),
            from_sourcedir,
        };
        match d {
            D::Server(sp) => self.sources.push(source(SourceKind::Server, sp)),
            D::Pool(sp) => self.sources.push(source(SourceKind::Pool, sp)),
            D::Peer(sp) => self.sources.push(source(SourceKind::Peer, sp)),
            D::InitStepSlew { threshold, hosts } => {
                self.initstepslew = Some((*threshold, hosts.clone()))
            }
            D::RefClock(r) => self.refclocks.push((r.clone(), loc.clone())),
            D::Manual => self.manual = true,
            D::AcquisitionPort(p) => self.acquisitionport = *p,
            D::BindAcqAddress(a) => set_per_family(&mut self.bind_acq_address, *a),
            D::DumpDir(p) => self.dumpdir = Some(p.clone()),
            D::MaxSamples(n) => self.maxsamples = Some(*n),
            D::MinSamples(n) => self.minsamples = Some(*n),
            D::NtsDumpDir(p) | D::NtsCacheDir(p) => self.ntsdumpdir = Some(p.clone()),
            D::NtsRefresh(n) => self.ntsrefresh = *n,
            D::NoCertTimeCheck(n) => self.nocerttimecheck = *n,
            D::NtsTrustedCerts { set, path } => self.nts_trusted_certs.push((*set, path.clone())),
            D::NoSystemCert => self.nosystemcert = true,
            D::AuthSelectMode(m) => self.authselectmode = *m,
            D::CombineLimit(v) => self.combinelimit = *v,
            D::MaxDistance(v) => self.maxdistance = *v,
            D::MaxJitter(v) => self.maxjitter = *v,
            D::MinSources(v) => self.minsources = *v,
            D::ReselectDist(v) => self.reselectdist = *v,
            D::StratumWeight(v) => self.stratumweight = *v,
            D::ClockPrecision(v) => self.clockprecision = Some(*v),
            D::CorrTimeRatio(v) => self.corrtimeratio = *v,
            D::DriftFile { path, interval } => {
                self.driftfile = Some(path.clone());
                self.driftfile_interval = *interval;
            }
            D::FallbackDrift { min, max } => self.fallbackdrift = Some((*min, *max)),
            D::LeapSecMode(m) => self.leapsecmode = *m,
            D::LeapSecTz(t) => self.leapsectz = Some(t.clone()),
            D::LeapSecList(p) => self.leapseclist = Some(p.clone()),
            D::MakeStep { threshold, limit } => self.makestep = Some((*threshold, *limit)),
            D::MaxChange {
                offset,
                start,
                ignore,
            } => self.maxchange = Some((*offset, *start, *ignore)),
            D::MaxClockError(v) => self.maxclockerror = *v,
            D::MaxDrift(v) => self.maxdrift = *v,
            D::MaxUpdateSkew(v) => self.maxupdateskew = *v,
            D::MaxSlewRate(v) => self.maxslewrate = *v,
            D::Allow(a) => self.access.push(AccessRule {
                allow: true,
                spec: a.clone(),
            }),
            D::Deny(a) => self.access.push(AccessRule {
                allow: false,
                spec: a.clone(),
            }),
            D::BindAddress(a) => set_per_family(&mut self.bind_addresses, *a),
            D::BindDevice(n) => self.bind_device = Some(n.clone()),
            D::Broadcast {
                interval,
                address,
                port,
            } => self.broadcasts.push((*interval, *address, *port)),
            D::ClientLogLimit(v) => self.clientloglimit = *v,
            D::NoClientLog => self.noclientlog = true,
            D::Local(l) => self.local = Some(l.clone()),
            D::NtsPort(p) => self.ntsport = *p,
            D::NtsServerCert(p) => self.nts_server_certs.push(p.clone()),
            D::NtsServerKey(p) => self.nts_server_keys.push(p.clone()),
            D::NtsProcesses(n) => self.ntsprocesses = *n,
            D::MaxNtsConnections(n) => self.maxntsconnections = *n,
            D::NtsNtpServer(h) => self.ntsntpserver = Some(h.clone()),
            D::NtsRotate(n) => self.ntsrotate = *n,
            D::Port(p) => self.port = *p,
            D::RateLimit(r) => self.ratelimit = Some(*r),
            D::NtsRateLimit(r) => self.ntsratelimit = *r,
            D::SmoothTime {
                max_freq,
                max_wander,
                leap_only,
            } => self.smoothtime = Some((*max_freq, *max_wander, *leap_only)),
            D::BindCmdAddress(BindCmd::Ip(a)) => set_per_family(&mut self.bind_cmd_addresses, *a),
            D::BindCmdAddress(BindCmd::Path(p)) => {
                self.cmd_socket = (p.as_os_str() != "/").then(|| p.clone());
            }
            D::BindCmdDevice(n) => self.bind_cmd_device = Some(n.clone()),
            D::CmdAllow(a) => self.cmd_access.push(AccessRule {
                allow: true,
                spec: a.clone(),
            }),
            D::CmdDeny(a) => self.cmd_access.push(AccessRule {
                allow: false,
                spec: a.clone(),
            }),
            D::CmdPort(p) => self.cmdport = *p,
            D::CmdRateLimit(r) => self.cmdratelimit = *r,
            D::OpenCommands(c) => self.opencommands = Some(c.clone()),
            D::MetricsPort(p) => self.metrics_port = *p,
            D::BindMetricsAddress(a) => self.bind_metrics_address = *a,
            D::MetricsAllowNonLocal => self.metrics_allow_nonlocal = true,
            D::RtcDevice(p) => self.rtcdevice = p.clone(),
            D::RtcFile(p) => self.rtcfile = Some(p.clone()),
            D::RtcOnUtc => self.rtconutc = true,
            D::RtcSync => self.rtcsync = true,
            D::Log(k) => {
                for kind in k {
                    if !self.log.contains(kind) {
                        self.log.push(*kind);
                    }
                }
            }
            D::LogBanner(n) => self.logbanner = *n,
            D::LogChange(v) => self.logchange = *v,
            D::LogDir(p) => self.logdir = Some(p.clone()),
            D::MailOnChange { address, threshold } => {
                self.mailonchange = Some((address.clone(), *threshold))
            }
            D::HwTimestamp(h) => self.hwtimestamps.push(h.clone()),
            D::KeyFile(p) => self.keyfile = Some(p.clone()),
            D::LockAll => self.lock_all = true,
            D::PidFile(p) => self.pidfile = p.clone(),
            D::SchedPriority(n) => self.sched_priority = Some(*n),
            D::User(u) => self.user = Some(u.clone()),
            // Directives without an effective value here (handled by the loader, deprecated, or
            // read directly from the entries by the subsystem that needs them).
            D::BindAcqDevice(_)
            | D::Dscp(_)
            | D::Refresh(_)
            | D::NtsAeads(_)
            | D::TempComp(_)
            | D::NtpSignDSocket(_)
            | D::HwClockFile(_)
            | D::RtcAutoTrim(_)
            | D::ConfDir(_)
            | D::SourceDir(_)
            | D::Include(_)
            | D::HwTsTimeout(_)
            | D::PtpPort(_)
            | D::PtpDomain(_)
            | D::DumpOnExit
            | D::NoLongerSupported(_) => {}
        }
    }
}

/// `bindaddress`-style directives keep one address per family, the last one winning.
fn set_per_family(list: &mut Vec<IpAddr>, a: IpAddr) {
    list.retain(|x| x.is_ipv4() != a.is_ipv4());
    list.push(a);
}

#[cfg(test)]
mod tests {
    use crate::load_lines;

    fn settings(lines: &[&str]) -> super::Settings {
        let v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        load_lines(&v).unwrap().settings()
    }

    #[test]
    fn defaults_are_chronys() {
        let s = settings(&[]);
        assert_eq!((s.port, s.cmdport, s.clientloglimit), (123, 323, 524_288));
        assert_eq!(s.bind_cmd_addresses.len(), 2);
        assert_eq!(s.ratelimit, None);
        assert_eq!(s.minsources, 1);
    }

    #[test]
    fn metrics_endpoint_is_off_and_loopback_by_default() {
        let s = settings(&[]);
        assert_eq!(s.metrics_port, 0);
        assert_eq!(s.bind_metrics_address.to_string(), "127.0.0.1");
        assert!(!s.metrics_allow_nonlocal);
        let s = settings(&[
            "metricsport 9123",
            "bindmetricsaddress ::1",
            "metricsallownonlocal",
        ]);
        assert_eq!(s.metrics_port, 9123);
        assert_eq!(s.bind_metrics_address.to_string(), "::1");
        assert!(s.metrics_allow_nonlocal);
    }

    #[test]
    fn ratelimit_given_starts_from_defaults() {
        let s = settings(&["ratelimit burst 16"]);
        let r = s.ratelimit.unwrap();
        assert_eq!((r.interval, r.burst, r.leak), (3, 16, 2));
    }

    #[test]
    fn last_single_value_wins_and_access_accumulates() {
        let s = settings(&["port 1", "port 2", "allow 10/8", "deny 10.1/16", "allow"]);
        assert_eq!(s.port, 2);
        assert_eq!(s.access.len(), 3);
        assert!(!s.access[1].allow);
    }

    #[test]
    fn bindcmdaddress_replaces_default_per_family() {
        let s = settings(&[
            "bindcmdaddress 127.0.0.1",
            "bindcmdaddress 127.0.0.2",
            "bindcmdaddress /",
        ]);
        let want: Vec<std::net::IpAddr> =
            vec!["::1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
        assert_eq!(s.bind_cmd_addresses, want);
        assert_eq!(s.cmd_socket, None);
    }

    #[test]
    fn sources_keep_defaults_and_order() {
        let s = settings(&["pool p iburst", "server s minpoll 4", "peer 10.0.0.2"]);
        assert_eq!(s.sources.len(), 3);
        assert_eq!(s.sources[0].spec.maxsources, 4);
        assert_eq!(s.sources[1].spec.minpoll, 4);
        assert_eq!(s.sources[2].kind, super::SourceKind::Peer);
    }
}
