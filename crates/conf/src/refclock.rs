//! `refclock DRIVER PARAMETER[:OPTION]... [option]...` (chrony.conf(5) "Reference clocks").
//!
//! chronyd 4.3 reads refclock options with a character cursor, not per token: a numeric value
//! is a scanf prefix and whatever follows it is read as the next option (`poll 1prefer` is
//! `poll 1` + `prefer`; `poll 1x` fails on option `x`), and `refid`/`lock` take at most four
//! characters. A missing or non-numeric value is "Could not parse refclock directive"; an
//! unknown option is "Invalid refclock option". We reproduce both. The driver name is not
//! checked when the file is read (chronyd fails later, at start-up, on an unknown driver).

use crate::scan;

/// Options that a `refclock` line accepts (chrony 4.3 plus `maxunreach` from 4.8).
pub const REFCLOCK_OPTIONS: &[&str] = &[
    "refid",
    "lock",
    "poll",
    "dpoll",
    "filter",
    "rate",
    "minsamples",
    "maxsamples",
    "maxlockage",
    "offset",
    "delay",
    "precision",
    "maxdispersion",
    "stratum",
    "width",
    "noselect",
    "pps",
    "prefer",
    "require",
    "tai",
    "local",
    "trust",
];

/// A reference clock with its options (chrony defaults where chrony documents them).
#[derive(Debug, Clone, PartialEq)]
pub struct RefClockSpec {
    /// Driver name as written (`PPS`, `SOCK`, `SHM`, `PHC`, `RTC`; case-insensitive in chrony).
    pub driver: String,
    /// Driver parameter including `:opt` driver options as written.
    pub parameter: String,
    pub refid: Option<String>,
    pub lock: Option<String>,
    pub poll: i32,
    pub dpoll: i32,
    pub filter: Option<i32>,
    pub rate: Option<i32>,
    pub minsamples: Option<i32>,
    pub maxsamples: Option<i32>,
    pub maxlockage: i32,
    pub offset: f64,
    pub delay: f64,
    pub precision: Option<f64>,
    pub maxdispersion: Option<f64>,
    pub stratum: i32,
    pub width: f64,
    pub maxunreach: Option<i32>,
    pub noselect: bool,
    pub pps: bool,
    pub prefer: bool,
    pub require: bool,
    pub tai: bool,
    pub local: bool,
    pub trust: bool,
}

/// Why a refclock line failed (maps to chronyd's two messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefClockError {
    CouldNotParse,
    InvalidOption(String),
}

/// Parse the text after `refclock` (the raw rest of the line, whitespace-normalised).
pub(crate) fn parse_refclock(rest: &str) -> Result<RefClockSpec, RefClockError> {
    let mut cur = Cursor { s: rest, pos: 0 };
    let driver = cur.word().ok_or(RefClockError::CouldNotParse)?.to_string();
    let parameter = cur.word().ok_or(RefClockError::CouldNotParse)?.to_string();
    let mut r = RefClockSpec {
        driver,
        parameter,
        refid: None,
        lock: None,
        poll: 4,
        dpoll: 0,
        filter: None,
        rate: None,
        minsamples: None,
        maxsamples: None,
        maxlockage: 2,
        offset: 0.0,
        delay: 1e-9,
        precision: None,
        maxdispersion: None,
        stratum: 0,
        width: 0.0,
        maxunreach: None,
        noselect: false,
        pps: false,
        prefer: false,
        require: false,
        tai: false,
        local: false,
        trust: false,
    };
    while let Some(opt) = cur.word() {
        let lower = opt.to_ascii_lowercase();
        match lower.as_str() {
            "noselect" => r.noselect = true,
            "pps" => r.pps = true,
            "prefer" => r.prefer = true,
            "require" => r.require = true,
            "tai" => r.tai = true,
            "local" => r.local = true,
            "trust" => r.trust = true,
            "refid" => r.refid = Some(cur.short_string()?),
            "lock" => r.lock = Some(cur.short_string()?),
            "poll" => r.poll = cur.int()?,
            "dpoll" => r.dpoll = cur.int()?,
            "filter" => r.filter = Some(cur.int()?),
            "rate" => r.rate = Some(cur.int()?),
            "minsamples" => r.minsamples = Some(cur.int()?),
            "maxsamples" => r.maxsamples = Some(cur.int()?),
            "maxlockage" => r.maxlockage = cur.int()?,
            "maxunreach" => r.maxunreach = Some(cur.int()?),
            "stratum" => r.stratum = cur.int()?,
            "offset" => r.offset = cur.float()?,
            "delay" => r.delay = cur.float()?,
            "precision" => r.precision = Some(cur.float()?),
            "maxdispersion" => r.maxdispersion = Some(cur.float()?),
            "width" => r.width = cur.float()?,
            _ => return Err(RefClockError::InvalidOption(opt.to_string())),
        }
    }
    Ok(r)
}

/// A byte cursor over the option text.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        let b = self.s.as_bytes();
        while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    /// Next whitespace-delimited word.
    fn word(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        self.pos += end;
        Some(&rest[..end])
    }

    fn int(&mut self) -> Result<i32, RefClockError> {
        let rest = &self.s[self.pos..];
        let (v, n) = scan::scan_i32(rest).ok_or(RefClockError::CouldNotParse)?;
        self.pos += n;
        Ok(v)
    }

    fn float(&mut self) -> Result<f64, RefClockError> {
        let rest = &self.s[self.pos..];
        let (v, n) = scan::scan_f64(rest).ok_or(RefClockError::CouldNotParse)?;
        self.pos += n;
        Ok(v)
    }

    /// `%4s`: up to four non-space characters.
    fn short_string(&mut self) -> Result<String, RefClockError> {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let word_len = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        if word_len == 0 {
            return Err(RefClockError::CouldNotParse);
        }
        let mut take = 0;
        for (count, (i, c)) in rest[..word_len].char_indices().enumerate() {
            if count == 4 {
                break;
            }
            take = i + c.len_utf8();
        }
        self.pos += take;
        Ok(rest[..take].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_value_prefix_continues_with_next_option() {
        let r = parse_refclock("SHM 0 poll 1prefer").unwrap();
        assert_eq!(r.poll, 1);
        assert!(r.prefer);
        assert_eq!(
            parse_refclock("SHM 0 poll 1x"),
            Err(RefClockError::InvalidOption("x".into()))
        );
        assert_eq!(
            parse_refclock("SHM 0 rate 1.5"),
            Err(RefClockError::InvalidOption(".5".into()))
        );
    }

    #[test]
    fn refid_takes_four_characters() {
        let r = parse_refclock("SHM 0 refid ABCDprefer").unwrap();
        assert_eq!(r.refid.as_deref(), Some("ABCD"));
        assert!(r.prefer);
        assert!(matches!(
            parse_refclock("SHM 0 lock ABCDE"),
            Err(RefClockError::InvalidOption(_))
        ));
    }

    #[test]
    fn missing_parts_could_not_parse() {
        assert_eq!(parse_refclock(""), Err(RefClockError::CouldNotParse));
        assert_eq!(parse_refclock("SHM"), Err(RefClockError::CouldNotParse));
        assert_eq!(
            parse_refclock("SHM 0 poll x"),
            Err(RefClockError::CouldNotParse)
        );
        assert_eq!(
            parse_refclock("SHM 0 lock"),
            Err(RefClockError::CouldNotParse)
        );
    }
}
