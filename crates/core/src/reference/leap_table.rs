//! Leap-second tables: the leap records of a TZif file (`leapsectz right/UTC`, RFC 8536 §3.2)
//! and the IERS/NIST `leap-seconds.list` (`leapseclist`), as chrony reads them.
//!
//! Both parsers are total: they take bytes or text already read by the daemon, never panic and
//! keep at most [`MAX_ENTRIES`] entries.
//!
//! A leap-seconds.list carries its expiry (the `#@` line, NTP seconds): chronyd ≥ 4.6 warns
//! "Leap second list FILE needs update" once the list expires before the end of the current
//! UTC day ([`LeapTable::expiry_warning`], which also names the date).

use crate::local_clock::LeapState;

/// Most leap entries kept (there have been 27 leap seconds; room for centuries).
pub const MAX_ENTRIES: usize = 512;
/// Seconds from the NTP era-0 epoch (1900) to the Unix epoch.
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// Why a leap table was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeapTableError {
    /// Not a TZif file (bad magic).
    NotTzif,
    /// The file ends inside a header or data block.
    Truncated,
    /// A line of leap-seconds.list is not "NTPTIME OFFSET".
    BadLine(usize),
    /// The times are not increasing or offsets jump by more than one second.
    Inconsistent,
    /// More than [`MAX_ENTRIES`] entries.
    TooManyEntries,
    /// The file holds no leap entry.
    Empty,
}

impl core::fmt::Display for LeapTableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LeapTableError::NotTzif => write!(f, "not a TZif file"),
            LeapTableError::Truncated => write!(f, "truncated TZif file"),
            LeapTableError::BadLine(n) => write!(f, "invalid leap second list line {n}"),
            LeapTableError::Inconsistent => write!(f, "inconsistent leap second table"),
            LeapTableError::TooManyEntries => write!(f, "too many leap second entries"),
            LeapTableError::Empty => write!(f, "no leap seconds in table"),
        }
    }
}

impl std::error::Error for LeapTableError {}

/// Leap seconds as (Unix time at which the new TAI−UTC offset starts, TAI−UTC after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeapTable {
    entries: Vec<(i64, i32)>,
    /// Unix time after which a leap-seconds.list is not to be used (its `#@` line).
    expiry: Option<i64>,
}

impl LeapTable {
    /// Reads the leap records of a TZif file (versions 1–4; the 64-bit block when present).
    pub fn parse_tzif(data: &[u8]) -> Result<Self, LeapTableError> {
        let (version, counts, body) = tzif_header(data)?;
        let (time_size, body) = if version >= b'2' {
            // Skip the 32-bit block to the second header.
            let skip = block_len(&counts, 4).ok_or(LeapTableError::Truncated)?;
            let rest = body.get(skip..).ok_or(LeapTableError::Truncated)?;
            let (_, counts2, body2) = tzif_header(rest)?;
            return Self::from_records(leap_records(&counts2, body2, 8)?);
        } else {
            (4, body)
        };
        Self::from_records(leap_records(&counts, body, time_size)?)
    }

    /// Reads an IERS/NIST `leap-seconds.list` (lines "NTPSECONDS TAI-UTC", '#' comments).
    pub fn parse_leap_seconds_list(text: &str) -> Result<Self, LeapTableError> {
        let mut entries = Vec::new();
        let mut expiry = None;
        for (n, line) in text.lines().enumerate() {
            if let Some(rest) = line.strip_prefix("#@") {
                // The expiry, NTP seconds (chrony refuses a list whose `#@` is not a number).
                let t = rest
                    .split_ascii_whitespace()
                    .next()
                    .and_then(|t| t.parse::<i64>().ok())
                    .and_then(|t| t.checked_sub(NTP_UNIX_OFFSET))
                    .ok_or(LeapTableError::BadLine(n + 1))?;
                expiry = Some(t);
                continue;
            }
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut it = content.split_ascii_whitespace();
            let (Some(t), Some(o)) = (it.next(), it.next()) else {
                return Err(LeapTableError::BadLine(n + 1));
            };
            let (Ok(t), Ok(o)) = (t.parse::<i64>(), o.parse::<i32>()) else {
                return Err(LeapTableError::BadLine(n + 1));
            };
            if entries.len() == MAX_ENTRIES {
                return Err(LeapTableError::TooManyEntries);
            }
            let t = t
                .checked_sub(NTP_UNIX_OFFSET)
                .ok_or(LeapTableError::BadLine(n + 1))?;
            entries.push((t, o));
        }
        let table = LeapTable { entries, expiry };
        table.check()?;
        Ok(table)
    }

    fn from_records(records: Vec<(i64, i32)>) -> Result<Self, LeapTableError> {
        // TZif leap times count the earlier leap seconds; TAI−UTC is 10 s plus the correction.
        let mut entries = Vec::with_capacity(records.len() + 1);
        entries.push((63_072_000, 10)); // 1972-01-01: TAI−UTC = 10 s
        let mut prev_corr = 0i32;
        for (t, corr) in records {
            // Values straight from the file: out-of-range ones make an inconsistent table.
            let start = t
                .checked_sub(i64::from(prev_corr))
                .ok_or(LeapTableError::Inconsistent)?;
            let tai_utc = corr.checked_add(10).ok_or(LeapTableError::Inconsistent)?;
            entries.push((start, tai_utc));
            prev_corr = corr;
        }
        let table = LeapTable {
            entries,
            expiry: None,
        };
        table.check()?;
        Ok(table)
    }

    fn check(&self) -> Result<(), LeapTableError> {
        if self.entries.is_empty() {
            return Err(LeapTableError::Empty);
        }
        for w in self.entries.windows(2) {
            if w[1].0 <= w[0].0 || (i64::from(w[1].1) - i64::from(w[0].1)).abs() > 1 {
                return Err(LeapTableError::Inconsistent);
            }
        }
        Ok(())
    }

    /// Unix time at which a leap-seconds.list expires (its `#@` line; `None` for a TZif file
    /// or a list without one).
    pub fn expiry(&self) -> Option<i64> {
        self.expiry
    }

    /// The warning chronyd ≥ 4.6 logs for a list that needs an update — it expires before the
    /// end of the UTC day containing Unix time `now` — naming the file (`name`) and the expiry
    /// date; `None` while the list is current or has no expiry.
    pub fn expiry_warning(&self, name: &str, now: f64) -> Option<String> {
        let expiry = self.expiry?;
        let day_end = ((now / DAY).floor() + 1.0) * DAY;
        // Compared in floating point: any `now` is harmless (NaN never warns).
        let due = day_end >= expiry as f64;
        if !due {
            return None;
        }
        let (y, m, d) = civil_date(expiry.div_euclid(86_400));
        let tense = if now >= expiry as f64 {
            "expired"
        } else {
            "expires"
        };
        Some(format!(
            "Leap second list {name} needs update ({tense} {y:04}-{m:02}-{d:02})"
        ))
    }

    /// TAI−UTC at Unix time `now`, if the table covers it.
    pub fn tai_offset(&self, now: f64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.0 as f64 <= now)
            .map(|e| e.1)
    }

    /// The leap second at the end of the UTC day containing `now`, if any.
    pub fn leap_today(&self, now: f64) -> LeapState {
        // In floating point: any `now` (even one far outside the table) is harmless.
        let day_end = ((now / 86400.0).floor() + 1.0) * 86400.0;
        let Some(pos) = self.entries.iter().position(|e| e.0 as f64 == day_end) else {
            return LeapState::Normal;
        };
        let before = if pos == 0 {
            None
        } else {
            Some(self.entries[pos - 1].1)
        };
        match before.map(|b| self.entries[pos].1 - b) {
            Some(1) => LeapState::Insert,
            Some(-1) => LeapState::Delete,
            _ => LeapState::Normal,
        }
    }
}

/// Seconds in a UTC day.
const DAY: f64 = 86_400.0;

/// The Gregorian date (year, month, day) of day `days` since 1970-01-01, counting in 400-year
/// cycles of 146 097 days that start on 1 March (the leap day then ends a year).
fn civil_date(days: i64) -> (i64, u32, u32) {
    // Day 0 of the cycles is 0000-03-01, 719 468 days before the Unix epoch.
    let shifted = days.saturating_add(719_468);
    let cycle = shifted.div_euclid(146_097);
    let day_of_cycle = shifted.rem_euclid(146_097);
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    // Months from March, of 153 days per five months.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_cycle + cycle * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Counts {
    isut: usize,
    isstd: usize,
    leap: usize,
    time: usize,
    typ: usize,
    chars: usize,
}

fn tzif_header(data: &[u8]) -> Result<(u8, Counts, &[u8]), LeapTableError> {
    if data.len() < 4 || &data[..4] != b"TZif" {
        return Err(LeapTableError::NotTzif);
    }
    let header = data.get(..44).ok_or(LeapTableError::Truncated)?;
    let n = |i: usize| {
        let b = &header[20 + 4 * i..24 + 4 * i];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
    };
    let counts = Counts {
        isut: n(0),
        isstd: n(1),
        leap: n(2),
        time: n(3),
        typ: n(4),
        chars: n(5),
    };
    if counts.leap > MAX_ENTRIES {
        return Err(LeapTableError::TooManyEntries);
    }
    Ok((header[4], counts, &data[44..]))
}

fn block_len(c: &Counts, time_size: usize) -> Option<usize> {
    c.time
        .checked_mul(time_size + 1)?
        .checked_add(c.typ.checked_mul(6)?)?
        .checked_add(c.chars)?
        .checked_add(c.leap.checked_mul(time_size + 4)?)?
        .checked_add(c.isstd)?
        .checked_add(c.isut)
}

fn leap_records(
    c: &Counts,
    body: &[u8],
    time_size: usize,
) -> Result<Vec<(i64, i32)>, LeapTableError> {
    let start = c
        .time
        .checked_mul(time_size + 1)
        .and_then(|v| v.checked_add(c.typ.checked_mul(6)?))
        .and_then(|v| v.checked_add(c.chars))
        .ok_or(LeapTableError::Truncated)?;
    let len = c.leap * (time_size + 4);
    let recs = body
        .get(start..start + len)
        .ok_or(LeapTableError::Truncated)?;
    Ok(recs
        .chunks_exact(time_size + 4)
        .map(|r| {
            let t = if time_size == 8 {
                i64::from_be_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]])
            } else {
                i64::from(i32::from_be_bytes([r[0], r[1], r[2], r[3]]))
            };
            let k = time_size;
            (t, i32::from_be_bytes([r[k], r[k + 1], r[k + 2], r[k + 3]]))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "#\tleap-seconds.list\n#$\t 3676924800\n2272060800\t10\t# 1 Jan 1972\n\
        2287785600\t11\t# 1 Jul 1972\n2303683200\t12\t# 1 Jan 1973\n\
        3692217600\t37\t# 1 Jan 2017\n#@\t3928521600\n";

    #[test]
    fn leap_seconds_list_gives_insertion_on_last_day_of_2016() {
        let t = LeapTable::parse_leap_seconds_list(LIST).unwrap_err();
        // 12 -> 37 is not a one-second step: the sample list is deliberately sparse.
        assert_eq!(t, LeapTableError::Inconsistent);
        let ok = "2272060800 10\n2287785600 11\n2303683200 12\n";
        let t = LeapTable::parse_leap_seconds_list(ok).unwrap();
        let jun30_1972 = 78_796_800.0 - 3600.0;
        assert_eq!(t.leap_today(jun30_1972), LeapState::Insert);
        assert_eq!(t.leap_today(jun30_1972 - 86400.0), LeapState::Normal);
        assert_eq!(t.tai_offset(78_796_800.0), Some(11));
    }

    #[test]
    fn expired_list_is_warned_about_with_file_and_date() {
        // IERS list expiring 28 June 2025 (NTP 3960057600).
        let list = "#$\t3929093563\n#@\t3960057600\n2272060800 10\n2287785600 11\n";
        let t = LeapTable::parse_leap_seconds_list(list).unwrap();
        let expiry = 3_960_057_600 - NTP_UNIX_OFFSET;
        assert_eq!(t.expiry(), Some(expiry));
        let name = "/etc/leap-seconds.list";
        // A month before: current.
        assert_eq!(t.expiry_warning(name, (expiry - 30 * 86_400) as f64), None);
        // The day before the expiry day: still current; on the expiry day it needs update.
        assert_eq!(t.expiry_warning(name, (expiry - 86_400 - 1) as f64), None);
        assert_eq!(
            t.expiry_warning(name, (expiry - 3600) as f64).as_deref(),
            Some("Leap second list /etc/leap-seconds.list needs update (expires 2025-06-28)")
        );
        assert_eq!(
            t.expiry_warning(name, 1_800_000_000.0).as_deref(),
            Some("Leap second list /etc/leap-seconds.list needs update (expired 2025-06-28)")
        );
        assert_eq!(t.expiry_warning(name, f64::NAN), None);
        // No `#@` line, or a TZif table: nothing to warn about.
        let bare = LeapTable::parse_leap_seconds_list("2272060800 10\n").unwrap();
        assert_eq!(bare.expiry_warning(name, 1.8e9), None);
        let tz = LeapTable::parse_tzif(&tzif_v1(&[(78_796_800, 1)])).unwrap();
        assert_eq!(tz.expiry(), None);
    }

    #[test]
    fn unreadable_expiry_line_refuses_the_list() {
        assert_eq!(
            LeapTable::parse_leap_seconds_list("2272060800 10\n#@ soon\n"),
            Err(LeapTableError::BadLine(2))
        );
        assert_eq!(
            LeapTable::parse_leap_seconds_list("#@ -9223372036854775807\n2272060800 10\n"),
            Err(LeapTableError::BadLine(1))
        );
    }

    #[test]
    fn civil_dates_of_known_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(17_166), (2016, 12, 31));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        // Far outside any list: no overflow.
        let _ = civil_date(i64::MAX);
        let _ = civil_date(i64::MIN);
    }

    #[test]
    fn leap_seconds_list_rejects_garbage() {
        assert_eq!(
            LeapTable::parse_leap_seconds_list("2272060800 ten\n"),
            Err(LeapTableError::BadLine(1))
        );
        assert_eq!(
            LeapTable::parse_leap_seconds_list("# only comments\n"),
            Err(LeapTableError::Empty)
        );
    }

    #[test]
    fn extreme_times_and_offsets_in_files_are_errors_not_overflows() {
        assert_eq!(
            LeapTable::parse_leap_seconds_list("-9223372036854775808 10\n"),
            Err(LeapTableError::BadLine(1))
        );
        assert_eq!(
            LeapTable::parse_leap_seconds_list("2272060800 2147483647\n2287785600 -2147483648\n"),
            Err(LeapTableError::Inconsistent)
        );
        for leaps in [
            [(78_796_800, i32::MAX), (94_694_401, 0)],
            [(78_796_800, i32::MIN), (94_694_401, i32::MAX)],
            [(i32::MIN, -1), (i32::MAX, i32::MIN)],
        ] {
            assert!(
                LeapTable::parse_tzif(&tzif_v1(&leaps)).is_err(),
                "{leaps:?}"
            );
        }
        let t = LeapTable::parse_tzif(&tzif_v1(&[(78_796_800, 1)])).unwrap();
        for now in [f64::MAX, f64::MIN, f64::NAN, f64::INFINITY, 9.3e18] {
            assert_eq!(t.leap_today(now), LeapState::Normal);
        }
    }

    fn tzif_v1(leaps: &[(i32, i32)]) -> Vec<u8> {
        let mut v = b"TZif".to_vec();
        v.push(0);
        v.extend([0u8; 15]);
        for n in [0u32, 0, leaps.len() as u32, 0, 1, 4] {
            v.extend(n.to_be_bytes());
        }
        v.extend([0, 0, 0, 0, 0, 0]); // one ttinfo
        v.extend(b"UTC\0");
        for &(t, c) in leaps {
            v.extend(t.to_be_bytes());
            v.extend(c.to_be_bytes());
        }
        v
    }

    #[test]
    fn tzif_leap_records_are_read_and_deletion_detected() {
        let t = LeapTable::parse_tzif(&tzif_v1(&[(78_796_800, 1), (94_694_401, 2)])).unwrap();
        assert_eq!(t.leap_today(94_694_400.0 - 10.0), LeapState::Insert);
        assert_eq!(t.tai_offset(94_694_400.0), Some(12));
        let d = LeapTable::parse_tzif(&tzif_v1(&[(78_796_800, 1), (94_694_401, 0)])).unwrap();
        assert_eq!(d.leap_today(94_694_400.0 - 10.0), LeapState::Delete);
    }

    #[test]
    fn tzif_truncated_or_foreign_is_refused() {
        let full = tzif_v1(&[(78_796_800, 1)]);
        for cut in 0..full.len() {
            assert!(LeapTable::parse_tzif(&full[..cut]).is_err(), "cut {cut}");
        }
        assert_eq!(
            LeapTable::parse_tzif(b"PK\x03\x04"),
            Err(LeapTableError::NotTzif)
        );
    }

    #[test]
    fn system_right_utc_if_installed_has_2016_leap() {
        // Fails loudly instead of skipping when tzdata's right/ zones are missing.
        let data = std::fs::read("/usr/share/zoneinfo/right/UTC")
            .expect("/usr/share/zoneinfo/right/UTC (package tzdata-legacy or tzdata) is needed");
        let t = LeapTable::parse_tzif(&data).unwrap();
        assert_eq!(t.leap_today(1_483_228_800.0 - 1.0), LeapState::Insert);
        assert_eq!(t.tai_offset(1_483_228_800.0), Some(37));
    }
}
