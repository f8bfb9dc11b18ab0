//! chronyc's report field formats (features.md §3.1, §3.10): offsets with adaptive units,
//! intervals, ppm values, leap status, refids and UTC dates, in both the human and CSV forms.

/// Offset/duration with an adaptive unit (`S`); `signed` gives the `+S` variant, one column wider.
pub fn seconds(x: f64, signed: bool) -> String {
    let ax = x.abs();
    let w = if signed { 5 } else { 4 };
    let fixed = |v: f64, unit: &str| {
        if signed {
            format!("{v:+w$.0}{unit}")
        } else {
            format!("{v:w$.0}{unit}")
        }
    };
    if ax * 1e9 < 9999.5 {
        fixed(x * 1e9, "ns")
    } else if ax * 1e6 < 9999.5 {
        fixed(x * 1e6, "us")
    } else if ax * 1e3 < 9999.5 {
        fixed(x * 1e3, "ms")
    } else if ax < 999.5 {
        if signed {
            format!("{x:+6.1}s")
        } else {
            format!("{x:5.1}s")
        }
    } else {
        let w = w + 1;
        let long = |v: f64, unit: &str| {
            if signed {
                format!("{v:+w$.0}{unit}")
            } else {
                format!("{v:w$.0}{unit}")
            }
        };
        if ax < 99999.5 {
            long(x, "s")
        } else if ax / 60.0 < 99999.5 {
            long(x / 60.0, "m")
        } else if ax / 3600.0 < 99999.5 {
            long(x / 3600.0, "h")
        } else if ax / 86400.0 < 99999.5 {
            long(x / 86400.0, "d")
        } else {
            long(x / (365.0 * 86400.0), "y")
        }
    }
}

/// Interval in seconds (`I`): `-` for never, then seconds, minutes, hours, days, years.
pub fn interval(x: u32) -> String {
    if x == u32::MAX {
        "   -".to_string()
    } else if x < 1200 {
        format!("{x:4}")
    } else if x < 36000 {
        format!("{:3}m", x / 60)
    } else if x < 345_600 {
        format!("{:3}h", x / 3600)
    } else if x / 86400 <= 999 {
        format!("{:3}d", x / 86400)
    } else {
        format!("{:3}y", x / (86400 * 365))
    }
}

/// ppm (`P`); `signed` gives `%+10.3f`.
pub fn ppm(x: f64, signed: bool) -> String {
    match (x.abs() >= 99999.5, signed) {
        (true, true) => format!("{x:+10.0}"),
        (true, false) => format!("{x:10.0}"),
        (false, true) => format!("{x:+10.3}"),
        (false, false) => format!("{x:10.3}"),
    }
}

/// Client log2 interval (`C`): ` -` when unknown (127).
pub fn client_interval(x: i8) -> String {
    if x == 127 {
        " -".to_string()
    } else {
        format!("{x:2}")
    }
}

/// Leap status word.
pub fn leap(l: u16) -> &'static str {
    match l {
        0 => "Normal",
        1 => "Insert second",
        2 => "Delete second",
        3 => "Not synchronised",
        _ => "Invalid",
    }
}

/// Leap status in one character (selectdata).
pub fn leap_char(l: u16) -> char {
    match l {
        0 => 'N',
        1 => '+',
        2 => '-',
        _ => '?',
    }
}

/// NTP mode word (ntpdata).
pub fn ntp_mode(m: u8) -> &'static str {
    match m {
        1 => "Symmetric active",
        2 => "Symmetric passive",
        4 => "Server",
        _ => "Invalid",
    }
}

/// Timestamping source word (ntpdata).
pub fn tss(c: u8) -> &'static str {
    match c {
        b'D' => "Daemon",
        b'K' => "Kernel",
        b'H' => "Hardware",
        _ => "Invalid",
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

/// A refid as text: its printable ASCII bytes up to the first NUL (refclock names, `()` in
/// tracking for stratum ≤ 1).
pub fn refid_text(id: u32) -> String {
    id.to_be_bytes()
        .iter()
        .take_while(|&&b| b != 0)
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .map(|&b| char::from(b))
        .collect()
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// UTC time as `%a %b %d %H:%M:%S %Y` (chronyc's `T`).
pub fn utc_time(sec: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let sec = i64::try_from(sec).unwrap_or(i64::MAX / 2);
    let days = sec.div_euclid(86400);
    let rem = sec.rem_euclid(86400);
    let (y, m, d) = civil(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m as usize).saturating_sub(1).min(11)],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// UTC time as `%Y-%m-%d %H:%M:%S` (manual list).
pub fn utc_date_time(sec: u64) -> String {
    let sec = i64::try_from(sec).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil(sec.div_euclid(86400));
    let rem = sec.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_pick_chronyc_units() {
        assert_eq!(seconds(25e-9, true), "  +25ns");
        assert_eq!(seconds(4.023e-6, false), "4023ns");
        assert_eq!(seconds(4.0, false), "4000ms");
        assert_eq!(seconds(-3.756e-6, true), "-3756ns");
        assert_eq!(seconds(0.0, true), "   +0ns");
        assert_eq!(seconds(-0.0, true), "   -0ns");
        assert_eq!(seconds(0.045, false), "  45ms");
        assert_eq!(seconds(12.0, false), " 12.0s");
        assert_eq!(seconds(-12.0, true), " -12.0s");
        assert_eq!(seconds(5000.0, false), " 5000s");
    }

    #[test]
    fn intervals_pick_chronyc_units() {
        assert_eq!(interval(u32::MAX), "   -");
        assert_eq!(interval(59), "  59");
        assert_eq!(interval(1500), " 25m");
        assert_eq!(interval(40000), " 11h");
        assert_eq!(interval(400_000), "  4d");
    }

    #[test]
    fn dates_are_utc_like_chronyc() {
        assert_eq!(utc_time(0), "Thu Jan 01 00:00:00 1970");
        assert_eq!(utc_time(1_795_316_483), "Sun Nov 22 03:01:23 2026");
        assert_eq!(utc_time(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(utc_date_time(1_795_317_650), "2026-11-22 03:20:50");
    }

    #[test]
    fn refid_text_stops_at_nul() {
        assert_eq!(refid_text(0x4750_5300), "GPS");
        assert_eq!(refid_text(0), "");
    }
}
