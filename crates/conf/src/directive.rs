//! One typed value per chrony.conf directive (chrony 4.x, chrony.conf(5)).
//!
//! Every directive chronyd 4.3 knows has a variant, plus the few added later in 4.x
//! (`refresh`, `hwtstimeout`, `leapseclist`, `ntsaeads`, `opencommands`, `ptpdomain`) so that
//! configurations written for newer chrony load; [`Directive::since`] tells which version
//! introduced a directive so the lint can say what chronyd 4.3 would reject.

use crate::access::AccessSpec;
use crate::options::{HwTimestampSpec, LocalSpec, RateLimitSpec};
use crate::refclock::RefClockSpec;
use crate::source::SourceSpec;
use std::net::IpAddr;
use std::path::PathBuf;

/// `authselectmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSelectMode {
    Require,
    Prefer,
    Mix,
    Ignore,
}

/// `leapsecmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeapSecMode {
    System,
    Slew,
    Step,
    Ignore,
}

/// `log` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    RawMeasurements,
    Measurements,
    Statistics,
    Tracking,
    Rtc,
    RefClocks,
    TempComp,
    Selection,
}

impl LogKind {
    /// All `log` words, in chrony.conf(5) order.
    pub const ALL: &'static [(&'static str, LogKind)] = &[
        ("rawmeasurements", LogKind::RawMeasurements),
        ("measurements", LogKind::Measurements),
        ("statistics", LogKind::Statistics),
        ("tracking", LogKind::Tracking),
        ("rtc", LogKind::Rtc),
        ("refclocks", LogKind::RefClocks),
        ("tempcomp", LogKind::TempComp),
        ("selection", LogKind::Selection),
    ];
}

/// `bindcmdaddress`: a UDP address or the Unix socket path (`/` disables the socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindCmd {
    Ip(IpAddr),
    Path(PathBuf),
}

/// `tempcomp FILE INTERVAL T0 K0 K1 K2` or `tempcomp FILE INTERVAL POINTSFILE`.
#[derive(Debug, Clone, PartialEq)]
pub enum TempCompSpec {
    Coefficients {
        sensor: PathBuf,
        interval: f64,
        t0: f64,
        k0: f64,
        k1: f64,
        k2: f64,
    },
    Points {
        sensor: PathBuf,
        interval: f64,
        points: PathBuf,
    },
}

/// A parsed directive.
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    // Time sources
    Server(SourceSpec),
    Pool(SourceSpec),
    Peer(SourceSpec),
    InitStepSlew {
        threshold: f64,
        hosts: Vec<String>,
    },
    RefClock(RefClockSpec),
    Manual,
    AcquisitionPort(u16),
    BindAcqAddress(IpAddr),
    BindAcqDevice(String),
    Dscp(i32),
    DumpDir(PathBuf),
    MaxSamples(i32),
    MinSamples(i32),
    NtsDumpDir(PathBuf),
    NtsRefresh(i32),
    NtsTrustedCerts {
        set: Option<u32>,
        path: PathBuf,
    },
    NoSystemCert,
    NoCertTimeCheck(i32),
    Refresh(i32),
    NtsAeads(Vec<i32>),
    // Source selection
    AuthSelectMode(AuthSelectMode),
    CombineLimit(f64),
    MaxDistance(f64),
    MaxJitter(f64),
    MinSources(i32),
    ReselectDist(f64),
    StratumWeight(f64),
    // System clock
    ClockPrecision(f64),
    CorrTimeRatio(f64),
    DriftFile {
        path: PathBuf,
        interval: Option<i32>,
    },
    FallbackDrift {
        min: i32,
        max: i32,
    },
    LeapSecMode(LeapSecMode),
    LeapSecTz(String),
    LeapSecList(PathBuf),
    MakeStep {
        threshold: f64,
        limit: i32,
    },
    MaxChange {
        offset: f64,
        start: i32,
        ignore: i32,
    },
    MaxClockError(f64),
    MaxDrift(f64),
    MaxUpdateSkew(f64),
    MaxSlewRate(f64),
    TempComp(TempCompSpec),
    // NTP server and access
    Allow(AccessSpec),
    Deny(AccessSpec),
    BindAddress(IpAddr),
    BindDevice(String),
    Broadcast {
        interval: i32,
        address: IpAddr,
        port: u16,
    },
    ClientLogLimit(u64),
    NoClientLog,
    Local(LocalSpec),
    NtpSignDSocket(PathBuf),
    NtsPort(u16),
    NtsServerCert(PathBuf),
    NtsServerKey(PathBuf),
    NtsProcesses(i32),
    MaxNtsConnections(i32),
    NtsNtpServer(String),
    NtsRotate(i32),
    Port(u16),
    RateLimit(RateLimitSpec),
    NtsRateLimit(RateLimitSpec),
    SmoothTime {
        max_freq: f64,
        max_wander: f64,
        leap_only: bool,
    },
    // Command access
    BindCmdAddress(BindCmd),
    BindCmdDevice(String),
    CmdAllow(AccessSpec),
    CmdDeny(AccessSpec),
    CmdPort(u16),
    CmdRateLimit(RateLimitSpec),
    OpenCommands(Vec<String>),
    // RTC
    HwClockFile(PathBuf),
    RtcAutoTrim(f64),
    RtcDevice(PathBuf),
    RtcFile(PathBuf),
    RtcOnUtc,
    RtcSync,
    // Logging
    Log(Vec<LogKind>),
    LogBanner(i32),
    LogChange(f64),
    LogDir(PathBuf),
    MailOnChange {
        address: String,
        threshold: f64,
    },
    // File structure
    ConfDir(Vec<PathBuf>),
    SourceDir(Vec<PathBuf>),
    Include(String),
    // Hardware timestamping
    HwTimestamp(HwTimestampSpec),
    HwTsTimeout(f64),
    PtpPort(u16),
    PtpDomain(i32),
    // Miscellaneous
    KeyFile(PathBuf),
    LockAll,
    PidFile(PathBuf),
    SchedPriority(i32),
    User(String),
    // Deprecated but accepted
    DumpOnExit,
    /// Old name of `ntsdumpdir`.
    NtsCacheDir(PathBuf),
    /// `commandkey`, `generatecommandkey`, `linux_freq_scale`, `linux_hz`: ignored with chronyd's
    /// warning "NAME directive is no longer supported".
    NoLongerSupported(&'static str),
    // Gnomon extensions (chronyd rejects them; see [`GNOMON_EXTENSIONS`])
    /// `metricsport PORT`: TCP port of the Prometheus metrics endpoint (0, the default, = off).
    MetricsPort(u16),
    /// `bindmetricsaddress ADDR`: address the metrics endpoint listens on (default 127.0.0.1).
    BindMetricsAddress(IpAddr),
    /// `metricsallownonlocal`: lets `bindmetricsaddress` name a non-loopback address.
    MetricsAllowNonLocal,
}

/// Every directive name we recognise (lower case), for lookups and hints.
pub const DIRECTIVE_NAMES: &[&str] = &[
    "server",
    "pool",
    "peer",
    "initstepslew",
    "refclock",
    "manual",
    "acquisitionport",
    "bindacqaddress",
    "bindacqdevice",
    "dscp",
    "dumpdir",
    "maxsamples",
    "minsamples",
    "ntsdumpdir",
    "ntsrefresh",
    "ntstrustedcerts",
    "nosystemcert",
    "nocerttimecheck",
    "refresh",
    "ntsaeads",
    "authselectmode",
    "combinelimit",
    "maxdistance",
    "maxjitter",
    "minsources",
    "reselectdist",
    "stratumweight",
    "clockprecision",
    "corrtimeratio",
    "driftfile",
    "fallbackdrift",
    "leapsecmode",
    "leapsectz",
    "leapseclist",
    "makestep",
    "maxchange",
    "maxclockerror",
    "maxdrift",
    "maxupdateskew",
    "maxslewrate",
    "tempcomp",
    "allow",
    "deny",
    "bindaddress",
    "binddevice",
    "broadcast",
    "clientloglimit",
    "noclientlog",
    "local",
    "ntpsigndsocket",
    "ntsport",
    "ntsservercert",
    "ntsserverkey",
    "ntsprocesses",
    "maxntsconnections",
    "ntsntpserver",
    "ntsrotate",
    "port",
    "ratelimit",
    "ntsratelimit",
    "smoothtime",
    "bindcmdaddress",
    "bindcmddevice",
    "cmdallow",
    "cmddeny",
    "cmdport",
    "cmdratelimit",
    "opencommands",
    "hwclockfile",
    "rtcautotrim",
    "rtcdevice",
    "rtcfile",
    "rtconutc",
    "rtcsync",
    "log",
    "logbanner",
    "logchange",
    "logdir",
    "mailonchange",
    "confdir",
    "sourcedir",
    "include",
    "hwtimestamp",
    "hwtstimeout",
    "ptpport",
    "ptpdomain",
    "keyfile",
    "lock_all",
    "pidfile",
    "sched_priority",
    "user",
    "dumponexit",
    "ntscachedir",
    "commandkey",
    "generatecommandkey",
    "linux_freq_scale",
    "linux_hz",
    "metricsport",
    "bindmetricsaddress",
    "metricsallownonlocal",
];

/// Directives of Gnomon's own, which no chronyd version knows (it rejects them as invalid).
pub const GNOMON_EXTENSIONS: &[&str] =
    &["metricsport", "bindmetricsaddress", "metricsallownonlocal"];

/// Directives added after chrony 4.3, with the version that introduced them.
pub const NEWER_THAN_4_3: &[(&str, &str)] = &[
    ("refresh", "4.4"),
    ("hwtstimeout", "4.4"),
    ("leapseclist", "4.6"),
    ("ptpdomain", "4.6"),
    ("ntsaeads", "4.6.1"),
    ("opencommands", "4.7"),
];

impl Directive {
    /// chrony's (lower-case) name of this directive.
    pub fn name(&self) -> &'static str {
        use Directive::*;
        match self {
            Server(_) => "server",
            Pool(_) => "pool",
            Peer(_) => "peer",
            InitStepSlew { .. } => "initstepslew",
            RefClock(_) => "refclock",
            Manual => "manual",
            AcquisitionPort(_) => "acquisitionport",
            BindAcqAddress(_) => "bindacqaddress",
            BindAcqDevice(_) => "bindacqdevice",
            Dscp(_) => "dscp",
            DumpDir(_) => "dumpdir",
            MaxSamples(_) => "maxsamples",
            MinSamples(_) => "minsamples",
            NtsDumpDir(_) => "ntsdumpdir",
            NtsRefresh(_) => "ntsrefresh",
            NtsTrustedCerts { .. } => "ntstrustedcerts",
            NoSystemCert => "nosystemcert",
            NoCertTimeCheck(_) => "nocerttimecheck",
            Refresh(_) => "refresh",
            NtsAeads(_) => "ntsaeads",
            AuthSelectMode(_) => "authselectmode",
            CombineLimit(_) => "combinelimit",
            MaxDistance(_) => "maxdistance",
            MaxJitter(_) => "maxjitter",
            MinSources(_) => "minsources",
            ReselectDist(_) => "reselectdist",
            StratumWeight(_) => "stratumweight",
            ClockPrecision(_) => "clockprecision",
            CorrTimeRatio(_) => "corrtimeratio",
            DriftFile { .. } => "driftfile",
            FallbackDrift { .. } => "fallbackdrift",
            LeapSecMode(_) => "leapsecmode",
            LeapSecTz(_) => "leapsectz",
            LeapSecList(_) => "leapseclist",
            MakeStep { .. } => "makestep",
            MaxChange { .. } => "maxchange",
            MaxClockError(_) => "maxclockerror",
            MaxDrift(_) => "maxdrift",
            MaxUpdateSkew(_) => "maxupdateskew",
            MaxSlewRate(_) => "maxslewrate",
            TempComp(_) => "tempcomp",
            Allow(_) => "allow",
            Deny(_) => "deny",
            BindAddress(_) => "bindaddress",
            BindDevice(_) => "binddevice",
            Broadcast { .. } => "broadcast",
            ClientLogLimit(_) => "clientloglimit",
            NoClientLog => "noclientlog",
            Local(_) => "local",
            NtpSignDSocket(_) => "ntpsigndsocket",
            NtsPort(_) => "ntsport",
            NtsServerCert(_) => "ntsservercert",
            NtsServerKey(_) => "ntsserverkey",
            NtsProcesses(_) => "ntsprocesses",
            MaxNtsConnections(_) => "maxntsconnections",
            NtsNtpServer(_) => "ntsntpserver",
            NtsRotate(_) => "ntsrotate",
            Port(_) => "port",
            RateLimit(_) => "ratelimit",
            NtsRateLimit(_) => "ntsratelimit",
            SmoothTime { .. } => "smoothtime",
            BindCmdAddress(_) => "bindcmdaddress",
            BindCmdDevice(_) => "bindcmddevice",
            CmdAllow(_) => "cmdallow",
            CmdDeny(_) => "cmddeny",
            CmdPort(_) => "cmdport",
            CmdRateLimit(_) => "cmdratelimit",
            OpenCommands(_) => "opencommands",
            HwClockFile(_) => "hwclockfile",
            RtcAutoTrim(_) => "rtcautotrim",
            RtcDevice(_) => "rtcdevice",
            RtcFile(_) => "rtcfile",
            RtcOnUtc => "rtconutc",
            RtcSync => "rtcsync",
            Log(_) => "log",
            LogBanner(_) => "logbanner",
            LogChange(_) => "logchange",
            LogDir(_) => "logdir",
            MailOnChange { .. } => "mailonchange",
            ConfDir(_) => "confdir",
            SourceDir(_) => "sourcedir",
            Include(_) => "include",
            HwTimestamp(_) => "hwtimestamp",
            HwTsTimeout(_) => "hwtstimeout",
            PtpPort(_) => "ptpport",
            PtpDomain(_) => "ptpdomain",
            KeyFile(_) => "keyfile",
            LockAll => "lock_all",
            PidFile(_) => "pidfile",
            SchedPriority(_) => "sched_priority",
            User(_) => "user",
            DumpOnExit => "dumponexit",
            NtsCacheDir(_) => "ntscachedir",
            NoLongerSupported(n) => n,
            MetricsPort(_) => "metricsport",
            BindMetricsAddress(_) => "bindmetricsaddress",
            MetricsAllowNonLocal => "metricsallownonlocal",
        }
    }

    /// The chrony version that introduced this directive, when newer than 4.3.
    pub fn since(&self) -> Option<&'static str> {
        let n = self.name();
        NEWER_THAN_4_3
            .iter()
            .find(|(d, _)| *d == n)
            .map(|(_, v)| *v)
    }

    /// Whether this directive is a Gnomon extension that chronyd would reject.
    pub fn is_gnomon_extension(&self) -> bool {
        GNOMON_EXTENSIONS.contains(&self.name())
    }

    /// The NTP source of a `server`/`pool`/`peer` line.
    pub fn source(&self) -> Option<&SourceSpec> {
        match self {
            Directive::Server(s) | Directive::Pool(s) | Directive::Peer(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_is_unique() {
        let mut v = DIRECTIVE_NAMES.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), DIRECTIVE_NAMES.len());
    }

    #[test]
    fn name_matches_chrony_spelling() {
        assert_eq!(Directive::LockAll.name(), "lock_all");
        assert_eq!(Directive::SchedPriority(1).name(), "sched_priority");
        assert_eq!(Directive::Refresh(1).since(), Some("4.4"));
        assert_eq!(Directive::RtcSync.since(), None);
    }

    #[test]
    fn metrics_directives_are_gnomon_extensions() {
        assert!(Directive::MetricsPort(9123).is_gnomon_extension());
        assert!(Directive::MetricsAllowNonLocal.is_gnomon_extension());
        assert!(!Directive::CmdPort(323).is_gnomon_extension());
        for n in GNOMON_EXTENSIONS {
            assert!(DIRECTIVE_NAMES.contains(n), "{n}");
        }
    }
}
