//! `server`/`pool`/`peer` lines: host name and options (chrony.conf(5) "Time sources").
//!
//! Option names are case-insensitive and values strict (the whole token must be a number), as in
//! chronyd 4.3; an unknown option, a missing value or a bad value makes the whole line fatal
//! ("Could not parse server directive"). Options added after 4.3 (`ipv4`, `ipv6`, `maxunreach`,
//! `extfield F324`) are accepted so configurations written for newer chrony load; the lint
//! reports them as unknown to chronyd 4.3. Every field starts at chrony's default.

use crate::scan::{strict_f64, strict_i32, strict_u32};
use crate::suggest;

/// Names of all options a source line accepts (for hints).
pub const SOURCE_OPTIONS: &[&str] = &[
    "auto_offline",
    "burst",
    "copy",
    "iburst",
    "offline",
    "noselect",
    "prefer",
    "require",
    "trust",
    "xleave",
    "nts",
    "ipv4",
    "ipv6",
    "key",
    "asymmetry",
    "certset",
    "extfield",
    "filter",
    "maxdelay",
    "maxdelayratio",
    "maxdelaydevratio",
    "maxdelayquant",
    "mindelay",
    "minpoll",
    "maxpoll",
    "minsamples",
    "maxsamples",
    "minstratum",
    "maxsources",
    "maxunreach",
    "ntsport",
    "offset",
    "polltarget",
    "port",
    "presend",
    "version",
];

/// NTP extension field types chronyd knows (F323 in 4.3; F324 from 4.5).
pub const EXTFIELD_F323: u32 = 0xF323;
pub const EXTFIELD_F324: u32 = 0xF324;

/// Restrict a source's name resolution to one address family (chrony 4.6 `ipv4`/`ipv6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One NTP source with all options (defaults as chrony documents them).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// Host name or address as written (a `[v6]` bracket form is kept as written).
    pub host: String,
    pub minpoll: i32,
    pub maxpoll: i32,
    pub iburst: bool,
    pub burst: bool,
    pub offline: bool,
    pub auto_offline: bool,
    pub prefer: bool,
    pub noselect: bool,
    pub trust: bool,
    pub require: bool,
    pub xleave: bool,
    pub copy: bool,
    pub nts: bool,
    pub key: Option<u32>,
    pub certset: Option<u32>,
    pub asymmetry: f64,
    pub offset: f64,
    pub filter: Option<i32>,
    pub maxdelay: f64,
    pub maxdelayratio: f64,
    pub maxdelaydevratio: f64,
    pub maxdelayquant: f64,
    pub mindelay: f64,
    pub minsamples: Option<i32>,
    pub maxsamples: Option<i32>,
    pub minstratum: i32,
    /// Pool only (accepted and ignored on server/peer lines by chronyd).
    pub maxsources: i32,
    pub maxunreach: Option<i32>,
    pub polltarget: i32,
    pub port: u16,
    pub ntsport: u16,
    pub presend: Option<i32>,
    pub version: Option<i32>,
    pub extfields: Vec<u32>,
    pub family: Option<Family>,
}

impl SourceSpec {
    /// A source with chrony's default options.
    pub fn new(host: &str) -> Self {
        SourceSpec {
            host: host.to_string(),
            minpoll: 6,
            maxpoll: 10,
            iburst: false,
            burst: false,
            offline: false,
            auto_offline: false,
            prefer: false,
            noselect: false,
            trust: false,
            require: false,
            xleave: false,
            copy: false,
            nts: false,
            key: None,
            certset: None,
            asymmetry: 1.0,
            offset: 0.0,
            filter: None,
            maxdelay: 3.0,
            maxdelayratio: 0.0,
            maxdelaydevratio: 10.0,
            maxdelayquant: 0.0,
            mindelay: 0.0,
            minsamples: None,
            maxsamples: None,
            minstratum: 0,
            maxsources: 4,
            maxunreach: None,
            polltarget: 8,
            port: 123,
            ntsport: 4460,
            presend: None,
            version: None,
            extfields: Vec::new(),
            family: None,
        }
    }
}

/// Parse `HOST [option]...`. The error is a hint for the "Could not parse" message.
pub(crate) fn parse_source(args: &[&str]) -> Result<SourceSpec, Option<String>> {
    let Some((host, opts)) = args.split_first() else {
        return Err(Some("a host name or address is required".to_string()));
    };
    let mut s = SourceSpec::new(host);
    let mut i = 0;
    while i < opts.len() {
        let name = opts[i].to_ascii_lowercase();
        i += 1;
        let flag = match name.as_str() {
            "auto_offline" => Some(&mut s.auto_offline),
            "burst" => Some(&mut s.burst),
            "copy" => Some(&mut s.copy),
            "iburst" => Some(&mut s.iburst),
            "offline" => Some(&mut s.offline),
            "noselect" => Some(&mut s.noselect),
            "prefer" => Some(&mut s.prefer),
            "require" => Some(&mut s.require),
            "trust" => Some(&mut s.trust),
            "xleave" => Some(&mut s.xleave),
            "nts" => Some(&mut s.nts),
            _ => None,
        };
        if let Some(f) = flag {
            *f = true;
            continue;
        }
        match name.as_str() {
            "ipv4" => {
                s.family = Some(Family::V4);
                continue;
            }
            "ipv6" => {
                s.family = Some(Family::V6);
                continue;
            }
            _ => {}
        }
        if !SOURCE_OPTIONS.contains(&name.as_str()) {
            return Err(Some(unknown_option_hint(opts[i - 1])));
        }
        let Some(value) = opts.get(i).copied() else {
            return Err(Some(format!("option `{name}` needs a value")));
        };
        i += 1;
        let bad = || Some(format!("invalid value `{value}` for option `{name}`"));
        let int = || strict_i32(value).ok_or_else(bad);
        let float = || strict_f64(value).ok_or_else(bad);
        match name.as_str() {
            "key" => s.key = Some(strict_u32(value).ok_or_else(bad)?),
            "certset" => s.certset = Some(strict_u32(value).ok_or_else(bad)?),
            "asymmetry" => s.asymmetry = float()?,
            "offset" => s.offset = float()?,
            "filter" => s.filter = Some(int()?),
            "maxdelay" => s.maxdelay = float()?,
            "maxdelayratio" => s.maxdelayratio = float()?,
            "maxdelaydevratio" => s.maxdelaydevratio = float()?,
            "maxdelayquant" => s.maxdelayquant = float()?,
            "mindelay" => s.mindelay = float()?,
            "minpoll" => s.minpoll = int()?,
            "maxpoll" => s.maxpoll = int()?,
            "minsamples" => s.minsamples = Some(int()?),
            "maxsamples" => s.maxsamples = Some(int()?),
            "minstratum" => s.minstratum = int()?,
            "maxsources" => s.maxsources = int()?,
            "maxunreach" => s.maxunreach = Some(int()?),
            "polltarget" => s.polltarget = int()?,
            "port" => s.port = crate::scan::port_from_int(int()?),
            "ntsport" => s.ntsport = crate::scan::port_from_int(int()?),
            "presend" => s.presend = Some(int()?),
            "version" => s.version = Some(int()?),
            "extfield" => {
                let v = parse_hex_u32(value).ok_or_else(bad)?;
                if v != EXTFIELD_F323 && v != EXTFIELD_F324 {
                    return Err(Some(format!(
                        "unknown extension field `{value}` (chronyd 4.3 knows F323)"
                    )));
                }
                s.extfields.push(v);
            }
            _ => return Err(Some(unknown_option_hint(&name))),
        }
    }
    Ok(s)
}

/// `%x`-style hexadecimal (optional `0x`), whole token.
fn parse_hex_u32(s: &str) -> Option<u32> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

fn unknown_option_hint(word: &str) -> String {
    match suggest::nearest(&word.to_ascii_lowercase(), SOURCE_OPTIONS) {
        Some(k) => format!("unknown option `{word}`; did you mean `{k}`?"),
        None if word.starts_with(['#', ';', '!', '%']) => {
            "comments must be on their own line".to_string()
        }
        None => format!("unknown option `{word}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_chronys() {
        let s = parse_source(&["ntp.example"]).unwrap();
        assert_eq!(
            (s.minpoll, s.maxpoll, s.maxsources, s.polltarget),
            (6, 10, 4, 8)
        );
        assert_eq!((s.port, s.ntsport), (123, 4460));
        assert_eq!(s.maxdelay, 3.0);
    }

    #[test]
    fn options_are_case_insensitive_and_strict() {
        let s = parse_source(&["a", "IBURST", "MinPoll", "+3", "key", "7"]).unwrap();
        assert!(s.iburst);
        assert_eq!(s.minpoll, 3);
        assert_eq!(s.key, Some(7));
        assert!(parse_source(&["a", "minpoll", "4x"]).is_err());
        assert!(parse_source(&["a", "minpoll"]).is_err());
        assert!(parse_source(&["a", "key", "1x"]).is_err());
        assert!(parse_source(&["a", "extfield", "1"]).is_err());
        assert!(parse_source(&[]).is_err());
    }

    #[test]
    fn unknown_option_gets_a_hint() {
        let e = parse_source(&["a", "ibrust"]).unwrap_err().unwrap();
        assert!(e.contains("`iburst`"), "{e}");
    }

    #[test]
    fn extfield_accepts_hex_forms() {
        for v in ["F323", "f323", "0xF323"] {
            assert_eq!(
                parse_source(&["a", "extfield", v]).unwrap().extfields,
                vec![0xF323]
            );
        }
    }
}
