//! Keyword-option directives: `local`, `ratelimit`/`ntsratelimit`/`cmdratelimit`, `hwtimestamp`.
//!
//! Values are strict (`local stratum 3x`, `ratelimit interval 1x` are fatal in chronyd 4.3) and
//! option names case-insensitive. `local stratum` must be 1..=15. Options newer than 4.3
//! (`local activate/waitsynced/waitunsynced`, `ratelimit kod`, `hwtimestamp maxpoll`) are
//! accepted for configurations written for newer chrony; the lint names them.

use crate::scan::{strict_f64, strict_i32};

/// `local [stratum N] [orphan] [distance D] [activate D] [waitsynced S] [waitunsynced S]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSpec {
    pub stratum: i32,
    pub orphan: bool,
    pub distance: f64,
    pub activate: Option<f64>,
    pub waitsynced: Option<f64>,
    pub waitunsynced: Option<f64>,
}

impl Default for LocalSpec {
    fn default() -> Self {
        LocalSpec {
            stratum: 10,
            orphan: false,
            distance: 1.0,
            activate: None,
            waitsynced: None,
            waitunsynced: None,
        }
    }
}

/// `ratelimit [interval I] [burst B] [leak L] [kod K]` (and the NTS-KE / command variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSpec {
    /// log2 of the average minimum interval between responses, in seconds.
    pub interval: i32,
    pub burst: i32,
    /// log2 of the fraction of dropped requests that still get a response (2 = 1 in 4).
    pub leak: i32,
    pub kod: Option<i32>,
}

impl RateLimitSpec {
    /// chrony's defaults: NTP `ratelimit` (3, 8, 2).
    pub const NTP_DEFAULT: RateLimitSpec = RateLimitSpec {
        interval: 3,
        burst: 8,
        leak: 2,
        kod: None,
    };
    /// `ntsratelimit` defaults (6, 8, 2).
    pub const NTS_DEFAULT: RateLimitSpec = RateLimitSpec {
        interval: 6,
        burst: 8,
        leak: 2,
        kod: None,
    };
    /// `cmdratelimit` defaults (-4, 8, 2).
    pub const CMD_DEFAULT: RateLimitSpec = RateLimitSpec {
        interval: -4,
        burst: 8,
        leak: 2,
        kod: None,
    };
}

/// `rxfilter` values of `hwtimestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxFilter {
    All,
    Ntp,
    Ptp,
    None,
}

/// `hwtimestamp IFACE|* [options]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HwTimestampSpec {
    /// Interface name, or `*` for all interfaces.
    pub interface: String,
    pub minpoll: i32,
    pub maxpoll: Option<i32>,
    pub minsamples: i32,
    pub maxsamples: i32,
    pub precision: f64,
    pub txcomp: f64,
    pub rxcomp: f64,
    pub nocrossts: bool,
    pub rxfilter: Option<RxFilter>,
}

pub(crate) fn parse_local(args: &[&str]) -> Option<LocalSpec> {
    let mut l = LocalSpec::default();
    let mut it = args.iter();
    while let Some(opt) = it.next() {
        let opt = opt.to_ascii_lowercase();
        if opt == "orphan" {
            l.orphan = true;
            continue;
        }
        let v = it.next()?;
        match opt.as_str() {
            "stratum" => {
                l.stratum = strict_i32(v).filter(|s| (1..=15).contains(s))?;
            }
            "distance" => l.distance = strict_f64(v)?,
            "activate" => l.activate = Some(strict_f64(v)?),
            "waitsynced" => l.waitsynced = Some(strict_f64(v)?),
            "waitunsynced" => l.waitunsynced = Some(strict_f64(v)?),
            _ => return None,
        }
    }
    Some(l)
}

pub(crate) fn parse_ratelimit(args: &[&str], default: RateLimitSpec) -> Option<RateLimitSpec> {
    let mut r = default;
    let mut it = args.iter();
    while let Some(opt) = it.next() {
        let v = strict_i32(it.next()?)?;
        match opt.to_ascii_lowercase().as_str() {
            "interval" => r.interval = v,
            "burst" => r.burst = v,
            "leak" => r.leak = v,
            "kod" => r.kod = Some(v),
            _ => return None,
        }
    }
    Some(r)
}

pub(crate) fn parse_hwtimestamp(args: &[&str]) -> Option<HwTimestampSpec> {
    let (iface, opts) = args.split_first()?;
    let mut h = HwTimestampSpec {
        interface: (*iface).to_string(),
        minpoll: 0,
        maxpoll: None,
        minsamples: 2,
        maxsamples: 16,
        precision: 100e-9,
        txcomp: 0.0,
        rxcomp: 0.0,
        nocrossts: false,
        rxfilter: None,
    };
    let mut it = opts.iter();
    while let Some(opt) = it.next() {
        let opt = opt.to_ascii_lowercase();
        if opt == "nocrossts" {
            h.nocrossts = true;
            continue;
        }
        let v = it.next()?;
        match opt.as_str() {
            "minpoll" => h.minpoll = strict_i32(v)?,
            "maxpoll" => h.maxpoll = Some(strict_i32(v)?),
            "minsamples" => h.minsamples = strict_i32(v)?,
            "maxsamples" => h.maxsamples = strict_i32(v)?,
            "precision" => h.precision = strict_f64(v)?,
            "txcomp" => h.txcomp = strict_f64(v)?,
            "rxcomp" => h.rxcomp = strict_f64(v)?,
            "rxfilter" => {
                h.rxfilter = Some(match v.to_ascii_lowercase().as_str() {
                    "all" => RxFilter::All,
                    "ntp" => RxFilter::Ntp,
                    "ptp" => RxFilter::Ptp,
                    "none" => RxFilter::None,
                    _ => return None,
                })
            }
            _ => return None,
        }
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_stratum_range_is_1_to_15() {
        assert_eq!(parse_local(&["stratum", "15"]).unwrap().stratum, 15);
        assert!(parse_local(&["stratum", "0"]).is_none());
        assert!(parse_local(&["stratum", "16"]).is_none());
        assert!(parse_local(&["stratum", "3x"]).is_none());
        assert!(parse_local(&["stratum"]).is_none());
        assert!(parse_local(&["orphan", "orphan"]).unwrap().orphan);
    }

    #[test]
    fn ratelimit_rejects_unknown_words_like_ntp() {
        assert!(parse_ratelimit(&["ntp", "interval", "1"], RateLimitSpec::NTP_DEFAULT).is_none());
        let r = parse_ratelimit(
            &["Interval", "1", "burst", "16"],
            RateLimitSpec::NTP_DEFAULT,
        )
        .unwrap();
        assert_eq!((r.interval, r.burst, r.leak), (1, 16, 2));
        assert!(parse_ratelimit(&["burst"], RateLimitSpec::NTP_DEFAULT).is_none());
    }

    #[test]
    fn hwtimestamp_needs_interface_and_known_options() {
        assert!(parse_hwtimestamp(&[]).is_none());
        assert!(parse_hwtimestamp(&["eth0", "eth1"]).is_none());
        assert!(parse_hwtimestamp(&["eth0", "rxfilter", "foo"]).is_none());
        let h = parse_hwtimestamp(&["*", "nocrossts", "rxfilter", "ntp"]).unwrap();
        assert_eq!(h.rxfilter, Some(RxFilter::Ntp));
    }
}
