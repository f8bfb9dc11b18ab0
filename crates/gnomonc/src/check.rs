//! `gnomonc check`: a Nagios/Icinga plugin over the cmdmon protocol (ecosystem.md §3.7).
//!
//! One status line `NTP STATE: text|perfdata` and exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//! Default thresholds follow deployment seed 000: |offset| > 50 ms warning, > 200 ms critical;
//! fewer than 2 usable (selectable) sources warning; leap status not normal critical; not
//! synchronised critical; stratum above 10 warning. No answer from the daemon is CRITICAL, like
//! `check_ntp_time`.

use crate::session::{CmdError, Session};
use crate::system::fetch_tracking;
use gnomon_cmdmon::{ReplyBody, ReplyCode, Request};

/// Thresholds, each settable on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub offset_warn: f64,
    pub offset_crit: f64,
    pub min_sources: u32,
    pub max_stratum: u16,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            offset_warn: 0.05,
            offset_crit: 0.2,
            min_sources: 2,
            max_stratum: 10,
        }
    }
}

pub const CHECK_USAGE: &str = "\
Usage: gnomonc [-h HOST] [-p PORT] check [-w SECONDS] [-c SECONDS] [-s SOURCES] [-S STRATUM]
  -w SECONDS   offset warning threshold (default 0.05)
  -c SECONDS   offset critical threshold (default 0.2)
  -s SOURCES   warn below this many usable sources (default 2)
  -S STRATUM   warn above this stratum (default 10)
Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
";

/// Parses the arguments after `check`.
pub fn parse(args: &[&str]) -> Option<Thresholds> {
    let mut t = Thresholds::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next()?;
        match *a {
            "-w" => {
                t.offset_warn = v
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite() && *x >= 0.0)?
            }
            "-c" => {
                t.offset_crit = v
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite() && *x >= 0.0)?
            }
            "-s" => t.min_sources = v.parse().ok()?,
            "-S" => t.max_stratum = v.parse().ok()?,
            _ => return None,
        }
    }
    Some(t)
}

/// A number as C's `printf("%.10g")` prints it, the format check_ntp_time uses for the offset
/// in its status text (`Offset -2.920627594e-06 secs`): 10 significant digits, trailing zeros
/// dropped, exponent form below 1e-4 or from 1e10 on.
fn g10(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` rounds to the requested digits, giving the exponent %g decides on.
    let sci = format!("{x:.9e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..10).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    } else {
        let decimals = (9 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    }
}

/// Facts the verdict is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    pub synchronised: bool,
    /// 0 normal, 1 insert, 2 delete, 3 unsynchronised.
    pub leap: u16,
    /// True time minus local clock, seconds (positive: the clock is slow), the sign
    /// check_ntp_time reports (server minus local) for a clock checked against its reference.
    pub offset: f64,
    pub stratum: u16,
    pub usable_sources: u32,
}

/// The plugin's status line and exit code for observed facts.
pub fn verdict(o: &Observed, t: &Thresholds) -> (String, i32) {
    let mut state = 0;
    let mut problems: Vec<(i32, String)> = Vec::new();
    let mut raise = |level: i32, msg: String| {
        problems.push((level, msg));
    };
    if !o.synchronised {
        raise(2, "not synchronised".to_string());
    } else {
        if o.leap == 1 || o.leap == 2 {
            raise(2, format!("leap status {}", crate::fmt::leap(o.leap)));
        }
        if o.offset.abs() > t.offset_crit {
            raise(
                2,
                format!("offset {} secs above {:.6}", g10(o.offset), t.offset_crit),
            );
        } else if o.offset.abs() > t.offset_warn {
            raise(
                1,
                format!("offset {} secs above {:.6}", g10(o.offset), t.offset_warn),
            );
        }
        if o.stratum > t.max_stratum {
            raise(1, format!("stratum {} above {}", o.stratum, t.max_stratum));
        }
    }
    if o.usable_sources < t.min_sources {
        raise(
            1,
            format!(
                "{} usable sources, fewer than {}",
                o.usable_sources, t.min_sources
            ),
        );
    }
    problems.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (l, _) in &problems {
        state = state.max(*l);
    }
    let name = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][state as usize];
    let mut text = format!(
        "NTP {name}: Offset {} secs, stratum {}, {} usable sources",
        g10(o.offset),
        o.stratum,
        o.usable_sources
    );
    if !problems.is_empty() {
        let p: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
        text = format!(
            "NTP {name}: {} (offset {} secs, stratum {}, {} usable sources)",
            p.join(", "),
            g10(o.offset),
            o.stratum,
            o.usable_sources
        );
    }
    let perf = format!(
        "offset={:.6}s;{:.6};{:.6}; stratum={};{};; sources={};{}:;;",
        o.offset,
        t.offset_warn,
        t.offset_crit,
        o.stratum,
        t.max_stratum,
        o.usable_sources,
        t.min_sources
    );
    (format!("{text}|{perf}"), state)
}

fn observe(s: &mut Session) -> Result<Observed, CmdError> {
    let t = fetch_tracking(s)?;
    let ReplyBody::NSources { n_sources } = s.request(&Request::NSources, ReplyCode::NSources)?
    else {
        return Err(CmdError::BadReply);
    };
    let mut usable = 0;
    for i in 0..n_sources {
        if let ReplyBody::SourceData(d) = s.request(
            &Request::SourceData { index: i as i32 },
            ReplyCode::SourceData,
        )? {
            // Selected, combined or selectable-but-not-combined.
            if matches!(d.state, 0 | 4 | 5) {
                usable += 1;
            }
        }
    }
    Ok(Observed {
        synchronised: t.ref_id != 0 && t.leap_status != 3,
        leap: t.leap_status,
        // chronyc's "slow of NTP time" is a positive correction: true time is ahead.
        offset: t.current_correction,
        stratum: t.stratum,
        usable_sources: usable,
    })
}

/// Runs the check; prints the status line and returns the plugin exit code.
pub fn run(s: &mut Session, t: &Thresholds) -> i32 {
    let (line, code) = match observe(s) {
        Ok(o) => verdict(&o, t),
        Err(CmdError::NoReply) => ("NTP CRITICAL: No response from daemon".to_string(), 2),
        Err(e) => (format!("NTP UNKNOWN: {}", e.message()), 3),
    };
    println!("{line}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Observed {
        Observed {
            synchronised: true,
            leap: 0,
            offset: 0.000_285,
            stratum: 3,
            usable_sources: 3,
        }
    }

    #[test]
    fn healthy_daemon_is_ok_with_perfdata() {
        let (line, code) = verdict(&ok(), &Thresholds::default());
        assert_eq!(code, 0);
        assert_eq!(
            line,
            "NTP OK: Offset 0.000285 secs, stratum 3, 3 usable sources|offset=0.000285s;0.050000;0.200000; stratum=3;10;; sources=3;2:;;"
        );
    }

    #[test]
    fn offset_thresholds_warn_then_go_critical() {
        let t = Thresholds::default();
        assert_eq!(
            verdict(
                &Observed {
                    offset: -0.06,
                    ..ok()
                },
                &t
            )
            .1,
            1
        );
        assert_eq!(
            verdict(
                &Observed {
                    offset: 0.3,
                    ..ok()
                },
                &t
            )
            .1,
            2
        );
        assert_eq!(
            verdict(
                &Observed {
                    offset: 0.3,
                    ..ok()
                },
                &Thresholds {
                    offset_crit: 1.0,
                    ..t
                }
            )
            .1,
            1
        );
    }

    #[test]
    fn leap_and_sync_problems_are_critical_sources_and_stratum_warn() {
        let t = Thresholds::default();
        assert_eq!(verdict(&Observed { leap: 1, ..ok() }, &t).1, 2);
        let (line, code) = verdict(
            &Observed {
                synchronised: false,
                leap: 3,
                ..ok()
            },
            &t,
        );
        assert_eq!(code, 2);
        assert!(line.starts_with("NTP CRITICAL: not synchronised"), "{line}");
        assert_eq!(
            verdict(
                &Observed {
                    usable_sources: 1,
                    ..ok()
                },
                &t
            )
            .1,
            1
        );
        assert_eq!(
            verdict(
                &Observed {
                    stratum: 11,
                    ..ok()
                },
                &t
            )
            .1,
            1
        );
    }

    #[test]
    fn offsets_print_like_printf_g10_as_check_ntp_time_does() {
        assert_eq!(g10(-2.920627594e-06), "-2.920627594e-06");
        assert_eq!(g10(7.328391075e-05), "7.328391075e-05");
        assert_eq!(g10(0.000285), "0.000285");
        assert_eq!(g10(0.0001), "0.0001");
        assert_eq!(g10(-0.012345678912), "-0.01234567891");
        assert_eq!(g10(1.5), "1.5");
        assert_eq!(g10(0.0), "0");
        assert_eq!(g10(123456789012.0), "1.23456789e+11");
        assert_eq!(g10(9.9999999999e-5), "0.0001");
    }

    #[test]
    fn arguments_override_defaults() {
        let t = parse(&["-w", "0.1", "-c", "0.5", "-s", "1", "-S", "4"]).unwrap();
        assert_eq!(
            t,
            Thresholds {
                offset_warn: 0.1,
                offset_crit: 0.5,
                min_sources: 1,
                max_stratum: 4
            }
        );
        assert!(parse(&["-w"]).is_none());
        assert!(parse(&["-x", "1"]).is_none());
    }
}
