//! One chrony.conf line → [`Directive`], with chronyd 4.3's accept/reject decisions and wording.
//!
//! Line syntax: leading whitespace, then a comment (`#`, `;`, `!`, `%` as first character) or a
//! case-insensitive directive name followed by whitespace-separated arguments. A comment
//! character later on the line is an ordinary argument (so `rtcsync # x` is fatal, as in chrony).
//! Single-value numeric directives scan a numeric prefix (`port 1x` = 1) while option values are
//! strict — see [`crate::scan`]. Argument-count errors come before value errors, like chronyd.

use crate::access::parse_access;
use crate::directive::{
    AuthSelectMode, BindCmd, Directive, LeapSecMode, LogKind, TempCompSpec, DIRECTIVE_NAMES,
};
use crate::error::ConfError;
use crate::location::Location;
use crate::options::{parse_hwtimestamp, parse_local, parse_ratelimit, RateLimitSpec};
use crate::refclock::{parse_refclock, RefClockError, REFCLOCK_OPTIONS};
use crate::scan::{lenient_f64, lenient_i32, port_from_int, scan_i64, scan_seq, strict_i32, Conv};
use crate::source::parse_source;
use crate::suggest;
use std::net::IpAddr;
use std::path::PathBuf;

/// Longest line chronyd accepts (its 2048-byte buffer holds the line and its newline + NUL).
pub const MAX_LINE_LEN: usize = 2046;

/// A parsed non-comment line: the directive and the line as `chronyd -p` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    pub directive: Directive,
    /// Words joined by single spaces, directive name as written.
    pub text: String,
}

/// C's `isspace`: chronyd splits words on these (Rust's ASCII whitespace lacks `\v`).
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// Whether a line is blank or a comment.
pub fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim_start_matches(is_c_space);
    t.is_empty() || t.starts_with(['#', ';', '!', '%'])
}

/// Parse one line. `Ok(None)` for blank and comment lines.
pub fn parse_line(line: &str, location: &Location) -> Result<Option<ParsedLine>, ConfError> {
    if line.len() > MAX_LINE_LEN {
        return Err(ConfError::StringTooLong {
            location: location.clone(),
        });
    }
    // chronyd handles lines as C strings: a NUL byte ends the line.
    let line = line.split('\0').next().unwrap_or("");
    if is_comment_or_blank(line) {
        return Ok(None);
    }
    let words: Vec<&str> = line.split(is_c_space).filter(|w| !w.is_empty()).collect();
    let Some((&written, args)) = words.split_first() else {
        return Ok(None);
    };
    let text = words.join(" ");
    let rest = text.get(written.len()..).unwrap_or("").trim_start();
    let directive =
        parse_words(written, args, rest, location).map_err(|e| match merged_directive(args) {
            Some(d) => e.with_hint(format!(
                "`{d}` starts another directive: put each directive on its own line"
            )),
            None => e,
        })?;
    Ok(Some(ParsedLine { directive, text }))
}

/// A word that is a directive name and never an option of any directive: a sign that two
/// lines were joined (as in a copy-pasted web page).
fn merged_directive<'a>(args: &[&'a str]) -> Option<&'a str> {
    const OPTION_WORDS: &[&str] = &[
        "port",
        "key",
        "minsamples",
        "maxsamples",
        "local",
        "log",
        "manual",
    ];
    args.iter().copied().find(|a| {
        let l = a.to_ascii_lowercase();
        DIRECTIVE_NAMES.contains(&l.as_str())
            && !OPTION_WORDS.contains(&l.as_str())
            && !crate::source::SOURCE_OPTIONS.contains(&l.as_str())
            && !REFCLOCK_OPTIONS.contains(&l.as_str())
            && !LogKind::ALL.iter().any(|(w, _)| *w == l)
    })
}

/// Error constructors that carry the directive name as written.
struct Ctx<'a> {
    name: &'a str,
    loc: &'a Location,
    args: &'a [&'a str],
}

impl Ctx<'_> {
    fn parse_err(&self, hint: Option<String>) -> ConfError {
        ConfError::CouldNotParse {
            location: self.loc.clone(),
            directive: self.name.to_string(),
            hint,
        }
    }
    fn missing(&self) -> ConfError {
        ConfError::MissingArguments {
            location: self.loc.clone(),
            directive: self.name.to_string(),
            hint: None,
        }
    }
    fn too_many(&self) -> ConfError {
        let hint = self
            .args
            .iter()
            .any(|a| a.starts_with(['#', ';', '!', '%']))
            .then(|| "comments must be on their own line".to_string());
        ConfError::TooManyArguments {
            location: self.loc.clone(),
            directive: self.name.to_string(),
            hint,
        }
    }
    /// chronyd's argument-count check.
    fn count(&self, min: usize, max: usize) -> Result<(), ConfError> {
        if self.args.len() < min {
            Err(self.missing())
        } else if self.args.len() > max {
            Err(self.too_many())
        } else {
            Ok(())
        }
    }
    fn one(&self) -> Result<&str, ConfError> {
        self.count(1, 1)?;
        Ok(self.args[0])
    }
    fn none(&self) -> Result<(), ConfError> {
        self.count(0, 0)
    }
    fn int(&self) -> Result<i32, ConfError> {
        let a = self.one()?;
        lenient_i32(a).ok_or_else(|| self.parse_err(None))
    }
    fn float(&self) -> Result<f64, ConfError> {
        let a = self.one()?;
        lenient_f64(a).ok_or_else(|| self.parse_err(None))
    }
    /// chronyd's sscanf over the whole argument text (see [`scan_seq`]).
    fn seq(&self, text: &str, convs: &[Conv]) -> Result<Vec<f64>, ConfError> {
        scan_seq(text, convs).ok_or_else(|| self.parse_err(None))
    }
    fn port(&self) -> Result<u16, ConfError> {
        self.int().map(port_from_int)
    }
    fn path(&self) -> Result<PathBuf, ConfError> {
        self.one().map(PathBuf::from)
    }
    fn string(&self) -> Result<String, ConfError> {
        self.one().map(str::to_string)
    }
    fn ip(&self) -> Result<IpAddr, ConfError> {
        let a = self.one()?;
        a.parse()
            .map_err(|_| self.parse_err(Some(format!("`{a}` is not an IP address"))))
    }
}

/// Parse a directive given its name (as written), argument words and raw argument text.
pub fn parse_words(
    written: &str,
    args: &[&str],
    rest: &str,
    loc: &Location,
) -> Result<Directive, ConfError> {
    use Directive as D;
    let c = Ctx {
        name: written,
        loc,
        args,
    };
    let lower = written.to_ascii_lowercase();
    let d = match lower.as_str() {
        "server" | "pool" | "peer" => {
            let s = parse_source(args).map_err(|h| c.parse_err(h))?;
            match lower.as_str() {
                "server" => D::Server(s),
                "pool" => D::Pool(s),
                _ => D::Peer(s),
            }
        }
        "initstepslew" => {
            let t = args
                .first()
                .and_then(|a| lenient_f64(a))
                .ok_or_else(|| c.parse_err(None))?;
            D::InitStepSlew {
                threshold: t,
                hosts: args[1..].iter().map(|s| s.to_string()).collect(),
            }
        }
        "refclock" => match parse_refclock(rest) {
            Ok(r) => D::RefClock(r),
            Err(RefClockError::CouldNotParse) => return Err(c.parse_err(None)),
            Err(RefClockError::InvalidOption(o)) => {
                return Err(ConfError::InvalidRefclockOption {
                    location: loc.clone(),
                    hint: Some(match suggest::nearest(&o.to_ascii_lowercase(), REFCLOCK_OPTIONS) {
                        Some(k) => format!("unknown or malformed option at `{o}`; did you mean `{k}`?"),
                        None => format!("unknown or malformed option at `{o}`"),
                    }),
                })
            }
        },
        "manual" => c.none().map(|_| D::Manual)?,
        "acquisitionport" => D::AcquisitionPort(c.port()?),
        "bindacqaddress" => D::BindAcqAddress(c.ip()?),
        "bindacqdevice" => D::BindAcqDevice(c.string()?),
        "dscp" => D::Dscp(c.int()?),
        "dumpdir" => D::DumpDir(c.path()?),
        "maxsamples" => D::MaxSamples(c.int()?),
        "minsamples" => D::MinSamples(c.int()?),
        "ntsdumpdir" => D::NtsDumpDir(c.path()?),
        "ntscachedir" => D::NtsCacheDir(c.path()?),
        "ntsrefresh" => D::NtsRefresh(c.int()?),
        "ntstrustedcerts" => {
            c.count(1, 2)?;
            if args.len() == 2 {
                // A `%u` prefix: chronyd 4.3 accepts `0x10` as set 0.
                let set = crate::scan::scan_u32(args[0])
                    .map(|(v, _)| v)
                    .ok_or_else(|| c.parse_err(None))?;
                D::NtsTrustedCerts {
                    set: Some(set),
                    path: PathBuf::from(args[1]),
                }
            } else {
                D::NtsTrustedCerts {
                    set: None,
                    path: PathBuf::from(args[0]),
                }
            }
        }
        "nosystemcert" => c.none().map(|_| D::NoSystemCert)?,
        "nocerttimecheck" => D::NoCertTimeCheck(c.int()?),
        "refresh" => D::Refresh(c.int()?),
        "ntsaeads" => {
            c.count(1, 16)?;
            let mut ids = Vec::new();
            for a in args {
                ids.push(strict_i32(a).ok_or_else(|| c.parse_err(None))?);
            }
            D::NtsAeads(ids)
        }
        "authselectmode" => D::AuthSelectMode(match args {
            [m] => match m.to_ascii_lowercase().as_str() {
                "require" => AuthSelectMode::Require,
                "prefer" => AuthSelectMode::Prefer,
                "mix" => AuthSelectMode::Mix,
                "ignore" => AuthSelectMode::Ignore,
                _ => return Err(c.parse_err(Some("expected require, prefer, mix or ignore".into()))),
            },
            _ => return Err(c.parse_err(Some("expected require, prefer, mix or ignore".into()))),
        }),
        "combinelimit" => D::CombineLimit(c.float()?),
        "maxdistance" => D::MaxDistance(c.float()?),
        "maxjitter" => D::MaxJitter(c.float()?),
        "minsources" => D::MinSources(c.int()?),
        "reselectdist" => D::ReselectDist(c.float()?),
        "stratumweight" => D::StratumWeight(c.float()?),
        "clockprecision" => D::ClockPrecision(c.float()?),
        "corrtimeratio" => D::CorrTimeRatio(c.float()?),
        "driftfile" => match args {
            // chrony 4.7 added `interval`; older chronyd reports "Too many arguments".
            [p, kw, n] if kw.eq_ignore_ascii_case("interval") => D::DriftFile {
                path: PathBuf::from(p),
                interval: Some(strict_i32(n).ok_or_else(|| c.parse_err(None))?),
            },
            _ => D::DriftFile {
                path: c.path()?,
                interval: None,
            },
        },
        "fallbackdrift" => {
            c.count(2, 2)?;
            let v = c.seq(rest, &[Conv::Int, Conv::Int])?;
            D::FallbackDrift {
                min: v[0] as i32,
                max: v[1] as i32,
            }
        }
        "leapsecmode" => D::LeapSecMode(match args {
            [m] => match m.to_ascii_lowercase().as_str() {
                "system" => LeapSecMode::System,
                "slew" => LeapSecMode::Slew,
                "step" => LeapSecMode::Step,
                "ignore" => LeapSecMode::Ignore,
                _ => return Err(c.parse_err(Some("expected system, slew, step or ignore".into()))),
            },
            _ => return Err(c.parse_err(Some("expected system, slew, step or ignore".into()))),
        }),
        "leapsectz" => D::LeapSecTz(c.string()?),
        "leapseclist" => D::LeapSecList(c.path()?),
        "makestep" => {
            c.count(2, 2)?;
            let v = c.seq(rest, &[Conv::Float, Conv::Int])?;
            D::MakeStep {
                threshold: v[0],
                limit: v[1] as i32,
            }
        }
        "maxchange" => {
            c.count(3, 3)?;
            let v = c.seq(rest, &[Conv::Float, Conv::Int, Conv::Int])?;
            D::MaxChange {
                offset: v[0],
                start: v[1] as i32,
                ignore: v[2] as i32,
            }
        }
        "maxclockerror" => D::MaxClockError(c.float()?),
        "maxdrift" => D::MaxDrift(c.float()?),
        "maxupdateskew" => D::MaxUpdateSkew(c.float()?),
        "maxslewrate" => D::MaxSlewRate(c.float()?),
        "tempcomp" => {
            if args.len() < 3 || args.len() == 4 || args.len() == 5 {
                return Err(c.missing());
            }
            if args.len() > 6 {
                return Err(c.too_many());
            }
            let sensor = PathBuf::from(args[0]);
            // Numbers are scanned from the text after the sensor file name.
            let after = rest.get(args[0].len()..).unwrap_or("");
            if args.len() == 3 {
                let v = c.seq(after, &[Conv::Float])?;
                D::TempComp(TempCompSpec::Points {
                    sensor,
                    interval: v[0],
                    points: PathBuf::from(args[2]),
                })
            } else {
                let v = c.seq(after, &[Conv::Float; 5])?;
                D::TempComp(TempCompSpec::Coefficients {
                    sensor,
                    interval: v[0],
                    t0: v[1],
                    k0: v[2],
                    k1: v[3],
                    k2: v[4],
                })
            }
        }
        "allow" | "deny" | "cmdallow" | "cmddeny" => {
            let spec = parse_access(args).ok_or_else(|| c.parse_err(access_hint(args)))?;
            match lower.as_str() {
                "allow" => D::Allow(spec),
                "deny" => D::Deny(spec),
                "cmdallow" => D::CmdAllow(spec),
                _ => D::CmdDeny(spec),
            }
        }
        "bindaddress" => D::BindAddress(c.ip()?),
        "binddevice" => D::BindDevice(c.string()?),
        "broadcast" => {
            if !(2..=3).contains(&args.len()) {
                return Err(c.parse_err(Some("usage: broadcast INTERVAL ADDRESS [PORT]".into())));
            }
            let interval = lenient_i32(args[0]).ok_or_else(|| c.parse_err(None))?;
            let address: IpAddr = args[1].parse().map_err(|_| c.parse_err(None))?;
            let port = match args.get(2) {
                Some(p) => port_from_int(lenient_i32(p).ok_or_else(|| c.parse_err(None))?),
                None => 123,
            };
            D::Broadcast {
                interval,
                address,
                port,
            }
        }
        "clientloglimit" => {
            let a = c.one()?;
            let (v, _) = scan_i64(a).ok_or_else(|| c.parse_err(None))?;
            D::ClientLogLimit(v as u64)
        }
        "noclientlog" => c.none().map(|_| D::NoClientLog)?,
        "local" => D::Local(parse_local(args).ok_or_else(|| {
            c.parse_err(Some(
                "options: stratum 1-15, orphan, distance D".to_string(),
            ))
        })?),
        "ntpsigndsocket" => D::NtpSignDSocket(c.path()?),
        "ntsport" => D::NtsPort(c.port()?),
        "ntsservercert" => D::NtsServerCert(c.path()?),
        "ntsserverkey" => D::NtsServerKey(c.path()?),
        "ntsprocesses" => D::NtsProcesses(c.int()?),
        "maxntsconnections" => D::MaxNtsConnections(c.int()?),
        "ntsntpserver" => D::NtsNtpServer(c.string()?),
        "ntsrotate" => D::NtsRotate(c.int()?),
        "port" => D::Port(c.port()?),
        "ratelimit" | "ntsratelimit" | "cmdratelimit" => {
            let default = match lower.as_str() {
                "ratelimit" => RateLimitSpec::NTP_DEFAULT,
                "ntsratelimit" => RateLimitSpec::NTS_DEFAULT,
                _ => RateLimitSpec::CMD_DEFAULT,
            };
            let r = parse_ratelimit(args, default).ok_or_else(|| {
                let hint = if args.first().is_some_and(|a| a.eq_ignore_ascii_case("ntp")) {
                    "chrony has no `ntp` keyword here: write `ratelimit interval I burst B` (NTS-KE has its own `ntsratelimit`)".to_string()
                } else {
                    "options: interval I, burst B, leak L".to_string()
                };
                c.parse_err(Some(hint))
            })?;
            match lower.as_str() {
                "ratelimit" => D::RateLimit(r),
                "ntsratelimit" => D::NtsRateLimit(r),
                _ => D::CmdRateLimit(r),
            }
        }
        "smoothtime" => {
            c.count(2, 3)?;
            let v = c.seq(rest, &[Conv::Float, Conv::Float])?;
            let leap_only = match args.get(2) {
                None => false,
                Some(w) if w.eq_ignore_ascii_case("leaponly") => true,
                Some(_) => {
                    return Err(c.parse_err(Some(
                        "the third word can only be `leaponly`".into(),
                    )))
                }
            };
            D::SmoothTime {
                max_freq: v[0],
                max_wander: v[1],
                leap_only,
            }
        }
        "bindcmdaddress" => {
            let a = c.one()?;
            if a.starts_with('/') {
                D::BindCmdAddress(BindCmd::Path(PathBuf::from(a)))
            } else {
                D::BindCmdAddress(BindCmd::Ip(c.ip()?))
            }
        }
        "bindcmddevice" => D::BindCmdDevice(c.string()?),
        "cmdport" => D::CmdPort(c.port()?),
        "metricsport" => D::MetricsPort(c.port()?),
        "bindmetricsaddress" => D::BindMetricsAddress(c.ip()?),
        "metricsallownonlocal" => c.none().map(|_| D::MetricsAllowNonLocal)?,
        "opencommands" => D::OpenCommands(args.iter().map(|s| s.to_string()).collect()),
        "hwclockfile" => D::HwClockFile(c.path()?),
        "rtcautotrim" => D::RtcAutoTrim(c.float()?),
        "rtcdevice" => D::RtcDevice(c.path()?),
        "rtcfile" => D::RtcFile(c.path()?),
        "rtconutc" => c.none().map(|_| D::RtcOnUtc)?,
        "rtcsync" => c.none().map(|_| D::RtcSync)?,
        "log" => {
            let mut kinds = Vec::new();
            for a in args {
                // Case-sensitive in chronyd: `log Tracking` is fatal.
                match LogKind::ALL.iter().find(|(w, _)| w == a) {
                    Some((_, k)) => kinds.push(*k),
                    None => {
                        let names: Vec<&str> = LogKind::ALL.iter().map(|(w, _)| *w).collect();
                        return Err(ConfError::InvalidLogParameter {
                            location: loc.clone(),
                            parameter: a.to_string(),
                            hint: suggest::nearest(&a.to_ascii_lowercase(), &names)
                                .map(|k| format!("did you mean `{k}`?")),
                        });
                    }
                }
            }
            D::Log(kinds)
        }
        "logbanner" => D::LogBanner(c.int()?),
        "logchange" => D::LogChange(c.float()?),
        "logdir" => D::LogDir(c.path()?),
        "mailonchange" => {
            c.count(2, 2)?;
            let threshold = lenient_f64(args[1]).ok_or_else(|| c.parse_err(None))?;
            D::MailOnChange {
                address: args[0].to_string(),
                threshold,
            }
        }
        "confdir" => {
            if args.is_empty() {
                return Err(c.parse_err(None));
            }
            D::ConfDir(args.iter().map(PathBuf::from).collect())
        }
        "sourcedir" => D::SourceDir(args.iter().map(PathBuf::from).collect()),
        "include" => D::Include(c.string()?),
        "hwtimestamp" => D::HwTimestamp(parse_hwtimestamp(args).ok_or_else(|| {
            c.parse_err(Some(
                "usage: hwtimestamp IFACE|* [minpoll P] [minsamples N] [maxsamples N] [precision S] [txcomp S] [rxcomp S] [nocrossts] [rxfilter all|ntp|ptp|none]".into(),
            ))
        })?),
        "hwtstimeout" => D::HwTsTimeout(c.float()?),
        "ptpport" => D::PtpPort(c.port()?),
        "ptpdomain" => D::PtpDomain(c.int()?),
        "keyfile" => D::KeyFile(c.path()?),
        "lock_all" => c.none().map(|_| D::LockAll)?,
        "pidfile" => D::PidFile(c.path()?),
        "sched_priority" => D::SchedPriority(c.int()?),
        "user" => D::User(c.string()?),
        "dumponexit" => D::DumpOnExit,
        "commandkey" => D::NoLongerSupported("commandkey"),
        "generatecommandkey" => D::NoLongerSupported("generatecommandkey"),
        "linux_freq_scale" => D::NoLongerSupported("linux_freq_scale"),
        "linux_hz" => D::NoLongerSupported("linux_hz"),
        _ => {
            return Err(ConfError::InvalidDirective {
                location: loc.clone(),
                name: written.to_string(),
                hint: suggest::hint_for(written, DIRECTIVE_NAMES).or_else(|| {
                    written
                        .contains('=')
                        .then(|| "this looks like a sysctl or systemd setting, not a chrony.conf directive".to_string())
                }),
            })
        }
    };
    Ok(d)
}

fn access_hint(args: &[&str]) -> Option<String> {
    match args {
        [first, ..] if first.eq_ignore_ascii_case("all") && *first != "all" => {
            Some("the `all` keyword must be lower case".to_string())
        }
        [_, _, _, ..] | [_, _] => Some("one subnet per line: `allow [all] [SUBNET]`".to_string()),
        _ => Some("expected an address, ADDRESS/BITS or a resolvable host name".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn loc() -> Location {
        Location::new(Arc::from(Path::new("one.conf")), 1)
    }

    fn parse(l: &str) -> Result<Directive, String> {
        match parse_line(l, &loc()) {
            Ok(Some(p)) => Ok(p.directive),
            Ok(None) => Err("comment".into()),
            Err(e) => Err(e.chrony_message()),
        }
    }

    #[test]
    fn comments_start_only_at_line_start() {
        for l in ["# x", "  ; x", "!x", "%x", "", "   \t"] {
            assert_eq!(parse_line(l, &loc()).unwrap(), None, "{l}");
        }
        assert_eq!(
            parse("rtcsync # x").unwrap_err(),
            "Too many arguments for rtcsync directive at line 1 in file one.conf"
        );
    }

    #[test]
    fn wording_matches_chronyd_4_3() {
        let cases = [
            ("schedrr 1", "Invalid directive at line 1 in file one.conf"),
            (
                "ratelimit ntp interval 1 burst 8",
                "Could not parse ratelimit directive at line 1 in file one.conf",
            ),
            (
                "SERVER a foo",
                "Could not parse SERVER directive at line 1 in file one.conf",
            ),
            (
                "port",
                "Missing arguments for port directive at line 1 in file one.conf",
            ),
            (
                "port x",
                "Could not parse port directive at line 1 in file one.conf",
            ),
            (
                "port 1 2",
                "Too many arguments for port directive at line 1 in file one.conf",
            ),
            (
                "makestep 1",
                "Missing arguments for makestep directive at line 1 in file one.conf",
            ),
            (
                "makestep 1x 3",
                "Could not parse makestep directive at line 1 in file one.conf",
            ),
            (
                "log Tracking",
                "Invalid log parameter at line 1 in file one.conf",
            ),
            (
                "refclock SHM 0 foo",
                "Invalid refclock option at line 1 in file one.conf",
            ),
            (
                "confdir",
                "Could not parse confdir directive at line 1 in file one.conf",
            ),
            (
                "tempcomp /a 1 2 3 4",
                "Missing arguments for tempcomp directive at line 1 in file one.conf",
            ),
            (
                "smoothtime 1 2 foo",
                "Could not parse smoothtime directive at line 1 in file one.conf",
            ),
            (
                "broadcast 10",
                "Could not parse broadcast directive at line 1 in file one.conf",
            ),
            (
                "authselectmode",
                "Could not parse authselectmode directive at line 1 in file one.conf",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn lenient_single_values_like_chronyd() {
        assert_eq!(parse("port 1x"), Ok(Directive::Port(1)));
        assert_eq!(parse("port 70000"), Ok(Directive::Port(4464)));
        assert_eq!(parse("maxsamples 1.5"), Ok(Directive::MaxSamples(1)));
        assert_eq!(
            parse("makestep 1 3x"),
            Ok(Directive::MakeStep {
                threshold: 1.0,
                limit: 3
            })
        );
        assert!(matches!(parse("dumponexit 1"), Ok(Directive::DumpOnExit)));
        assert!(matches!(parse("sourcedir"), Ok(Directive::SourceDir(v)) if v.is_empty()));
    }

    #[test]
    fn normalised_text_is_what_chronyd_p_prints() {
        let p = parse_line(" SERVER\t 1.2.3.4   iburst \r", &loc())
            .unwrap()
            .unwrap();
        assert_eq!(p.text, "SERVER 1.2.3.4 iburst");
    }

    #[test]
    fn hints_name_the_fix() {
        let e = parse_line("schedrr 1", &loc()).unwrap_err();
        assert!(
            e.to_string().ends_with("(did you mean `sched_priority`?)"),
            "{e}"
        );
        let e = parse_line("minpoll 4", &loc()).unwrap_err();
        assert!(e.to_string().contains("option of `server`"), "{e}");
        let e = parse_line("driftfle /x", &loc()).unwrap_err();
        assert!(e.to_string().contains("`driftfile`"), "{e}");
    }

    #[test]
    fn joined_lines_get_a_one_directive_per_line_hint() {
        let e = parse_line("server a iburst server b iburst", &loc()).unwrap_err();
        assert!(
            e.to_string().contains("`server` starts another directive"),
            "{e}"
        );
        let e = parse_line("log tracking logdir /var/log/chrony", &loc()).unwrap_err();
        assert!(
            e.to_string().contains("`logdir` starts another directive"),
            "{e}"
        );
        let e = parse_line("server a port x", &loc()).unwrap_err();
        assert!(!e.to_string().contains("starts another directive"), "{e}");
    }

    #[test]
    fn overlong_line_is_string_too_long() {
        let l = format!("leapsectz {}", "a".repeat(2037));
        assert_eq!(
            parse(&l).unwrap_err(),
            "String too long at line 1 in file one.conf"
        );
        let l = format!("leapsectz {}", "a".repeat(2036));
        assert!(parse(&l).is_ok());
    }
}
