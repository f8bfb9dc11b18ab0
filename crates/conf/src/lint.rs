//! `gnomonc lint` / `gnomond --lint`: chronyd's fatal errors plus lines it accepts that do not
//! do what their author meant (features.md §1.7, the deployment seeds' mistakes).
//!
//! Each finding has a stable id, a severity, a message and a fix hint. Errors are patterns that
//! defeat the line's evident purpose (clients never answered, a "local clock" that is really an
//! NTP server at 127.127.1.0, every client denied); warnings are legal but doubtful settings.

use crate::directive::{BindCmd, Directive};
use crate::error::ConfError;
use crate::load::{load_file, load_file_tolerant, load_lines, load_lines_tolerant};
use crate::location::Location;
use crate::settings::SourceKind;
use crate::source::{Family, EXTFIELD_F324};
use crate::{Config, Subnet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One lint result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier, e.g. `port-zero-with-allow`.
    pub id: &'static str,
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.severity, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        write!(f, " [{}]", self.id)
    }
}

/// Result of linting a file: chronyd's fatal error, if any, and the other findings.
#[derive(Debug, Clone, PartialEq)]
pub struct LintReport {
    /// The error chronyd stops at (the first one).
    pub fatal: Option<ConfError>,
    /// Further lines chronyd would also reject (found by skipping the bad lines).
    pub more_fatal: Vec<ConfError>,
    /// Findings on the lines that parse.
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Whether chronyd would refuse the file or an error-level finding exists.
    pub fn has_errors(&self) -> bool {
        self.fatal.is_some() || self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Exit status for `gnomonc lint` / `gnomond --lint`: 0 clean, 1 warnings only, 2 errors
    /// (a line chronyd would refuse, or an error-level finding).
    pub fn exit_code(&self) -> i32 {
        if self.has_errors() {
            2
        } else if self.findings.is_empty() {
            0
        } else {
            1
        }
    }

    /// Ids of the findings, in order (handy in tests).
    pub fn ids(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.id).collect()
    }
}

impl fmt::Display for LintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.fatal.iter().chain(&self.more_fatal) {
            write!(f, "{}: error: {}", e.location(), e.chrony_message())?;
            if let Some(h) = e.hint() {
                write!(f, " (hint: {h})")?;
            }
            writeln!(f, " [chronyd-fatal]")?;
        }
        for x in &self.findings {
            writeln!(f, "{x}")?;
        }
        Ok(())
    }
}

/// Lint a file: load it as chronyd would; on fatal errors also skip the bad lines to report
/// every one of them and check the rest.
pub fn lint_file(path: &Path) -> LintReport {
    report(load_file(path), || load_file_tolerant(path))
}

/// The report for a strict load's result; on a fatal error, the tolerant load finds the
/// other fatal lines (without repeating the first) and supplies the directives to check.
fn report(
    strict: Result<Config, ConfError>,
    tolerant: impl FnOnce() -> (Config, Vec<ConfError>),
) -> LintReport {
    match strict {
        Ok(c) => LintReport {
            fatal: None,
            more_fatal: Vec::new(),
            findings: lint(&c),
        },
        Err(first) => {
            let (c, mut errors) = tolerant();
            if errors.first() == Some(&first) {
                errors.remove(0);
            }
            LintReport {
                fatal: Some(first),
                more_fatal: errors,
                findings: lint(&c),
            }
        }
    }
}

/// Lint directives given on the command line (chronyd's form without a file).
pub fn lint_lines(lines: &[String]) -> LintReport {
    report(load_lines(lines), || load_lines_tolerant(lines))
}

/// Host names and addresses of public NTP services that smear leap seconds.
const SMEARING: &[&str] = &[
    "time.google.com",
    "time1.google.com",
    "time2.google.com",
    "time3.google.com",
    "time4.google.com",
    "time.android.com",
    "216.239.35.0",
    "216.239.35.4",
    "216.239.35.8",
    "216.239.35.12",
    "time.aws.com",
    "169.254.169.123",
    "fd00:ec2::123",
];

fn is_smearing(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    SMEARING.iter().any(|s| s.eq_ignore_ascii_case(h))
}

/// Check an accepted configuration.
pub fn lint(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |id, severity, location: &Location, message: String, hint: Option<&str>| {
        out.push(Finding {
            id,
            severity,
            location: location.clone(),
            message,
            hint: hint.map(str::to_string),
        })
    };
    let s = config.settings();
    let first = |pred: &dyn Fn(&Directive) -> bool| {
        config
            .entries
            .iter()
            .find(|e| pred(&e.directive))
            .map(|e| &e.location)
    };
    let last = |pred: &dyn Fn(&Directive) -> bool| {
        config
            .entries
            .iter()
            .rev()
            .find(|e| pred(&e.directive))
            .map(|e| &e.location)
    };

    for e in &config.ignored {
        push(
            "sourcedir-line-ignored",
            Severity::Warning,
            e.location(),
            format!(
                "chronyd silently ignores this sourcedir line: {}",
                e.chrony_message()
            ),
            e.hint().as_deref(),
        );
    }

    // port 0 with allow: no server socket, so allowed clients get no answers.
    if s.port == 0 {
        if let (Some(p), Some(_)) = (
            last(&|d| matches!(d, Directive::Port(_))),
            first(&|d| matches!(d, Directive::Allow(_))),
        ) {
            push(
                "port-zero-with-allow",
                Severity::Error,
                p,
                "`port 0` disables the NTP server socket, so the `allow` rules serve nobody".into(),
                Some("remove `port 0` (it only makes sense on a pure client)"),
            );
        }
    }

    // gnomond refuses to start with a metrics endpoint open beyond this host unless asked.
    if s.metrics_port != 0 && !s.metrics_allow_nonlocal && !s.bind_metrics_address.is_loopback() {
        if let Some(at) = last(&|d| matches!(d, Directive::BindMetricsAddress(_))) {
            push(
                "metrics-nonlocal-bind",
                Severity::Error,
                at,
                format!(
                    "bindmetricsaddress {} is not a loopback address; gnomond refuses to serve \
                     metrics there",
                    s.bind_metrics_address
                ),
                Some("add `metricsallownonlocal` to expose the metrics beyond this host"),
            );
        }
    }

    // Ports given out of range are silently truncated by chronyd.
    for e in &config.entries {
        let is_port = matches!(
            e.directive,
            Directive::Port(_)
                | Directive::CmdPort(_)
                | Directive::NtsPort(_)
                | Directive::AcquisitionPort(_)
                | Directive::PtpPort(_)
                | Directive::MetricsPort(_)
        );
        if is_port {
            let word = e.text.split(' ').nth(1).unwrap_or("");
            if word.parse::<u16>().is_err() {
                push(
                    "port-value",
                    Severity::Error,
                    &e.location,
                    format!(
                        "`{word}` is not a port number 0-65535; chronyd silently uses {}",
                        port_value(&e.directive)
                    ),
                    Some("write a plain decimal port number"),
                );
            }
        }
    }

    // Sources.
    let mut seen: Vec<(&str, &Location)> = Vec::new();
    let mut smearing = Vec::new();
    let mut non_smearing = Vec::new();
    for src in &s.sources {
        let host = src.spec.host.as_str();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(IpAddr::V4(a)) = bare.parse::<IpAddr>() {
            if a.octets()[0] == 127 && a.octets()[1] == 127 {
                push(
                    "ntpd-local-clock",
                    Severity::Error,
                    &src.location,
                    format!("{host} is ntpd's local-clock driver syntax; chronyd treats it as an NTP server at a loopback address that never answers"),
                    Some("use `local stratum 10` to serve the local clock when no source is reachable"),
                );
            }
        }
        if let Some((_, at)) = seen.iter().find(|(h, _)| h.eq_ignore_ascii_case(host)) {
            push(
                "duplicate-source",
                Severity::Warning,
                &src.location,
                format!("{host} is already configured at {at}"),
                Some("remove the duplicate line"),
            );
        } else {
            seen.push((host, &src.location));
        }
        if is_smearing(host) {
            smearing.push(src);
        } else {
            non_smearing.push(src);
        }
        if src.kind == SourceKind::Pool
            && (bare.eq_ignore_ascii_case("ntp.org")
                || bare.eq_ignore_ascii_case("www.pool.ntp.org"))
        {
            push(
                "pool-not-ntp-pool",
                Severity::Error,
                &src.location,
                format!("`{bare}` is the project's web site, not the NTP pool"),
                Some("use `pool pool.ntp.org iburst` (or a country/vendor zone such as 2.debian.pool.ntp.org)"),
            );
        }
        if src.kind != SourceKind::Pool && src.spec.maxsources != 4 {
            push(
                "maxsources-not-pool",
                Severity::Warning,
                &src.location,
                "`maxsources` only applies to `pool` lines; it is ignored here".into(),
                Some("remove it, or use `pool` if the name resolves to several servers"),
            );
        }
        if src.kind == SourceKind::Pool && !(1..=16).contains(&src.spec.maxsources) {
            push(
                "pool-maxsources-range",
                Severity::Warning,
                &src.location,
                format!(
                    "maxsources {} is outside chrony's range 1-16",
                    src.spec.maxsources
                ),
                Some("use a value from 1 to 16"),
            );
        }
        let (lo, hi) = (src.spec.minpoll, src.spec.maxpoll);
        if !(-7..=24).contains(&lo) || !(-7..=24).contains(&hi) {
            push(
                "poll-range",
                Severity::Warning,
                &src.location,
                format!("minpoll/maxpoll ({lo}/{hi}) outside chrony's range -7..24 are clamped"),
                None,
            );
        } else if lo > hi {
            push(
                "poll-order",
                Severity::Warning,
                &src.location,
                format!("minpoll {lo} is larger than maxpoll {hi}"),
                Some("swap the values"),
            );
        }
        if src.spec.key.is_some() && s.keyfile.is_none() {
            push(
                "key-without-keyfile",
                Severity::Error,
                &src.location,
                "this source uses `key` but no `keyfile` is configured, so it can never authenticate".into(),
                Some("add `keyfile /etc/chrony/chrony.keys` with the key"),
            );
        }
        let mut newer = Vec::new();
        if src.spec.family.is_some() {
            newer.push(if src.spec.family == Some(Family::V4) {
                "ipv4 (4.6)"
            } else {
                "ipv6 (4.6)"
            });
        }
        if src.spec.maxunreach.is_some() {
            newer.push("maxunreach (4.8)");
        }
        if src.spec.extfields.contains(&EXTFIELD_F324) {
            newer.push("extfield F324 (4.5)");
        }
        for n in newer {
            push(
                "newer-than-chrony-4.3",
                Severity::Warning,
                &src.location,
                format!("option {n} is not understood by chronyd 4.3, which rejects this line"),
                None,
            );
        }
    }
    if let (Some(sm), Some(other)) = (smearing.first(), non_smearing.first()) {
        push(
            "smear-mixed",
            Severity::Error,
            &sm.location,
            format!(
                "{} smears leap seconds but {} (at {}) does not: around a leap second they disagree by up to 0.5 s",
                sm.spec.host, other.spec.host, other.location
            ),
            Some("use only smearing or only non-smearing sources"),
        );
    }
    if let (Some(sm), Some(tz)) = (
        smearing.first(),
        last(&|d| matches!(d, Directive::LeapSecTz(_) | Directive::LeapSecList(_))),
    ) {
        push(
            "smear-with-leapsectz",
            Severity::Error,
            tz,
            format!("`leapsectz`/`leapseclist` make the kernel insert the leap second while {} smears it: the leap is applied twice", sm.spec.host),
            Some("drop `leapsectz`/`leapseclist` when using smearing servers"),
        );
    }

    // Peers that both fall back to their local clock need `orphan` to agree on one of them.
    if let Some(l) = &s.local {
        let peer = s.sources.iter().find(|x| x.kind == SourceKind::Peer);
        if let (false, Some(p), Some(at)) =
            (l.orphan, peer, last(&|d| matches!(d, Directive::Local(_))))
        {
            push(
                "local-peers-without-orphan",
                Severity::Warning,
                at,
                format!("`local` without `orphan` while peering with {}: when upstream is lost each peer serves its own clock and they can drift apart", p.spec.host),
                Some("use `local stratum 10 orphan` on every peer"),
            );
        }
    }

    // `local` only matters to clients: without `allow` nobody is served the local clock.
    if let (Some(l), Some(at)) = (&s.local, last(&|d| matches!(d, Directive::Local(_)))) {
        // (`port 0` with `allow` has its own finding.)
        if !s.access.iter().any(|r| r.allow) {
            push(
                "local-without-allow",
                Severity::Warning,
                at,
                "`local` has no clients to serve: there is no `allow` rule".into(),
                Some("remove `local`, or add `allow` for the clients"),
            );
        }
        if l.stratum < 5 {
            push(
                "local-stratum-low",
                Severity::Warning,
                at,
                format!("local stratum {} makes this unsynchronised clock look better than real upstream servers", l.stratum),
                Some("use a high stratum such as 10 so real sources are always preferred"),
            );
        }
    }

    // NTS clients without ntsdumpdir redo NTS-KE on every restart.
    if s.ntsdumpdir.is_none() {
        if let Some(src) = s.sources.iter().find(|x| x.spec.nts) {
            push(
                "nts-without-ntsdumpdir",
                Severity::Warning,
                &src.location,
                "NTS sources without `ntsdumpdir`: cookies are lost on restart and every start needs a new NTS-KE session".into(),
                Some("add `ntsdumpdir /var/lib/chrony`"),
            );
        }
    }

    // minsources larger than what the sources can provide.
    let possible: i64 = s
        .sources
        .iter()
        .map(|x| {
            if x.kind == SourceKind::Pool {
                i64::from(x.spec.maxsources.clamp(1, 16))
            } else {
                1
            }
        })
        .sum::<i64>()
        + s.refclocks.len() as i64;
    if i64::from(s.minsources) > possible {
        if let Some(at) = last(&|d| matches!(d, Directive::MinSources(_))) {
            push(
                "minsources-unreachable",
                Severity::Error,
                at,
                format!("minsources {} but at most {possible} sources are configured: the clock is never updated", s.minsources),
                Some("lower minsources or add sources"),
            );
        }
    }

    // Access rules.
    for e in &config.entries {
        if let Directive::Allow(a)
        | Directive::Deny(a)
        | Directive::CmdAllow(a)
        | Directive::CmdDeny(a) = &e.directive
        {
            match &a.subnet {
                Some(Subnet::Host { name, .. }) if name.eq_ignore_ascii_case("all") => push(
                    "all-keyword-case",
                    Severity::Error,
                    &e.location,
                    format!("`{name}` is read as a host name (the keyword is lower-case `all`); chronyd fails when it cannot resolve it"),
                    Some("write `all` in lower case"),
                ),
                Some(Subnet::Host { name, .. }) => push(
                    "access-hostname",
                    Severity::Warning,
                    &e.location,
                    format!("host name `{name}` is resolved once at start; chronyd exits if it cannot be resolved"),
                    Some("prefer an address or subnet"),
                ),
                _ => {}
            }
            let word = e.text.rsplit(' ').next().unwrap_or("");
            if let Some((_, bits)) = word.split_once('/') {
                let max = if word.contains(':') { 128 } else { 32 };
                if bits.parse::<u32>().is_ok_and(|b| b > max) {
                    push(
                        "prefix-too-long",
                        Severity::Warning,
                        &e.location,
                        format!("prefix length /{bits} is longer than the address; it means one address"),
                        None,
                    );
                }
            }
        }
    }
    // `deny all` (everything, overriding earlier rules) after allows denies every client.
    let mut allowed_before: Option<&Location> = None;
    for e in &config.entries {
        match &e.directive {
            Directive::Allow(_) => allowed_before = Some(&e.location),
            Directive::Deny(a) if a.all && a.subnet.is_none() => {
                if let Some(at) = allowed_before {
                    push(
                        "deny-all-overrides-allow",
                        Severity::Error,
                        &e.location,
                        format!("`deny all` overrides every earlier rule, including the `allow` at {at}: no client is served"),
                        Some("remove it: clients not matched by an `allow` are already denied"),
                    );
                }
            }
            _ => {}
        }
    }

    // Rate limiting and client log.
    if s.noclientlog {
        if let Some(at) = last(&|d| matches!(d, Directive::RateLimit(_))) {
            push(
                "ratelimit-with-noclientlog",
                Severity::Warning,
                at,
                "`noclientlog` disables the client log, so `ratelimit` has no effect".into(),
                Some("remove `noclientlog` to keep rate limiting (and interleaved mode)"),
            );
        }
    }
    let ratelimits: Vec<&Location> = config
        .entries
        .iter()
        .filter(|e| matches!(e.directive, Directive::RateLimit(_)))
        .map(|e| &e.location)
        .collect();
    if ratelimits.len() > 1 {
        push(
            "repeated-directive",
            Severity::Warning,
            ratelimits[ratelimits.len() - 1],
            format!(
                "`ratelimit` is given {} times; only the last one is used",
                ratelimits.len()
            ),
            Some("keep one ratelimit line"),
        );
    }

    // Conflicts and deprecated or newer directives.
    if s.rtcsync && s.rtcfile.is_some() {
        if let Some(at) = last(&|d| matches!(d, Directive::RtcFile(_))) {
            push(
                "rtcsync-with-rtcfile",
                Severity::Warning,
                at,
                "`rtcsync` and `rtcfile` both manage the RTC".into(),
                Some("use only one of them"),
            );
        }
    }
    if s.nts_server_certs.len() != s.nts_server_keys.len() {
        if let Some(at) =
            last(&|d| matches!(d, Directive::NtsServerCert(_) | Directive::NtsServerKey(_)))
        {
            push(
                "nts-cert-key-count",
                Severity::Error,
                at,
                format!(
                    "{} ntsservercert but {} ntsserverkey lines: they are used in pairs",
                    s.nts_server_certs.len(),
                    s.nts_server_keys.len()
                ),
                None,
            );
        }
    }
    if !s.nts_server_certs.is_empty() && !s.serves_ntp() {
        if let Some(at) = first(&|d| matches!(d, Directive::NtsServerCert(_))) {
            push(
                "nts-server-without-ntp-server",
                Severity::Warning,
                at,
                "an NTS-KE server is configured but no NTP clients are allowed (or port is 0)"
                    .into(),
                Some("add `allow` rules for the NTS clients"),
            );
        }
    }
    for e in &config.entries {
        let d = &e.directive;
        if d.is_gnomon_extension() {
            push(
                "gnomon-extension",
                Severity::Warning,
                &e.location,
                format!(
                    "`{}` is a Gnomon extension; chronyd rejects it as an invalid directive",
                    d.name()
                ),
                Some("keep it out of files chronyd may read"),
            );
        }
        if let Some(v) = d.since() {
            push(
                "newer-than-chrony-4.3",
                Severity::Warning,
                &e.location,
                format!(
                    "`{}` was added in chrony {v}; chronyd 4.3 rejects it as an invalid directive",
                    d.name()
                ),
                None,
            );
        }
        match d {
            Directive::DriftFile { interval: Some(_), .. } => push(
                "newer-than-chrony-4.3",
                Severity::Warning,
                &e.location,
                "`driftfile ... interval` was added in chrony 4.7; chronyd 4.3 rejects it".into(),
                None,
            ),
            Directive::Local(l) if l.activate.is_some() || l.waitsynced.is_some() || l.waitunsynced.is_some() => push(
                "newer-than-chrony-4.3",
                Severity::Warning,
                &e.location,
                "`local activate/waitsynced/waitunsynced` were added in chrony 4.6/4.7; chronyd 4.3 rejects them".into(),
                None,
            ),
            Directive::RateLimit(r) | Directive::NtsRateLimit(r) | Directive::CmdRateLimit(r) if r.kod.is_some() => push(
                "newer-than-chrony-4.3",
                Severity::Warning,
                &e.location,
                "the `kod` option was added in chrony 4.6; chronyd 4.3 rejects it".into(),
                None,
            ),
            Directive::HwTimestamp(h) if h.maxpoll.is_some() => push(
                "newer-than-chrony-4.3",
                Severity::Warning,
                &e.location,
                "`hwtimestamp ... maxpoll` was added in chrony 4.4; chronyd 4.3 rejects it".into(),
                None,
            ),
            Directive::RefClock(r) if r.maxunreach.is_some() => push(
                "newer-than-chrony-4.3",
                Severity::Warning,
                &e.location,
                "the refclock `maxunreach` option was added in chrony 4.8; chronyd 4.3 rejects it".into(),
                None,
            ),
            Directive::NoLongerSupported(n) => push(
                "deprecated",
                Severity::Warning,
                &e.location,
                format!("{n} directive is no longer supported and is ignored"),
                Some("remove it"),
            ),
            Directive::DumpOnExit => push(
                "deprecated",
                Severity::Warning,
                &e.location,
                "`dumponexit` is obsolete and ignored (use `dumpdir`)".into(),
                Some("remove it"),
            ),
            Directive::NtsCacheDir(_) => push(
                "deprecated",
                Severity::Warning,
                &e.location,
                "`ntscachedir` is the old name of `ntsdumpdir`".into(),
                Some("rename it to `ntsdumpdir`"),
            ),
            Directive::BindCmdAddress(BindCmd::Ip(a)) if !a.is_loopback() && s.cmd_access.is_empty() => push(
                "bindcmdaddress-no-cmdallow",
                Severity::Warning,
                &e.location,
                format!("the command socket listens on {a} but no `cmdallow` rule admits remote hosts"),
                Some("add `cmdallow SUBNET` for the management network, or bind to loopback"),
            ),
            Directive::SchedPriority(p) if !(1..=99).contains(p) => push(
                "sched-priority-range",
                Severity::Warning,
                &e.location,
                format!("sched_priority {p} is outside the SCHED_FIFO range 1-99"),
                None,
            ),
            _ => {}
        }
    }
    out
}

fn port_value(d: &Directive) -> u16 {
    match d {
        Directive::Port(p)
        | Directive::CmdPort(p)
        | Directive::NtsPort(p)
        | Directive::AcquisitionPort(p)
        | Directive::PtpPort(p)
        | Directive::MetricsPort(p) => *p,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
