//! Line layouts of chronyd's statistics logs (`tracking.log`, `measurements.log`,
//! `statistics.log`, `selection.log`), as chronyd 4.3 writes them: the banner (a `=` ruler, the column
//! headings, a ruler) and one fixed-width line per entry. Every layout here was checked
//! byte for byte against files written by chronyd 4.3 (features.md §3.11; the tests below
//! re-create captured lines from their own numbers).
//!
//! Pure functions: the caller supplies the values and the wall-clock time of the entry.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use gnomon_core::local_clock::LeapState;
use gnomon_core::reports::{LeapStatus, SourceStatsReport, TrackingReport};
use gnomon_core::selection::SelectOptions;

/// Column headings of `tracking.log`.
pub const TRACKING_HEADER: &str = "   Date (UTC) Time     IP Address   St   Freq ppm   Skew ppm     Offset L Co  Offset sd Rem. corr. Root delay Root disp. Max. error";
/// Column headings of `measurements.log`.
pub const MEASUREMENTS_HEADER: &str = "   Date (UTC) Time     IP Address   L St 123 567 ABCD  LP RP Score    Offset  Peer del. Peer disp.  Root del. Root disp. Refid     MTxRx";
/// Column headings of `statistics.log`.
pub const STATISTICS_HEADER: &str = "   Date (UTC) Time     IP Address    Std dev'n Est offset  Offset sd  Diff freq   Est skew  Stress  Ns  Bs  Nr  Asym";

/// Column headings of `selection.log`.
pub const SELECTION_HEADER: &str =
    "   Date (UTC) Time     IP Address   S EOpts Reach Score Last sample  Low end   High end";

/// The banner chronyd writes before the first entry of a file and every `logbanner` entries:
/// a ruler as long as the headings, the headings, the ruler again (each ending in `\n`).
pub fn banner(header: &str) -> String {
    let ruler = "=".repeat(header.len());
    format!("{ruler}\n{header}\n{ruler}\n")
}

/// C's `%W.Pe`: mantissa with `prec` decimals and an exponent of at least two digits
/// (`-1.300e-06`), right-aligned in `width`. Rust's `{:e}` writes `-1.3e-6`.
pub fn sci(x: f64, prec: usize, width: usize) -> String {
    let s = if x.is_finite() {
        let r = format!("{x:.prec$e}");
        match r.split_once('e') {
            Some((mant, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mant}e{sign}{digits:0>2}")
            }
            None => r,
        }
    } else if x.is_nan() {
        "nan".to_string()
    } else if x > 0.0 {
        "inf".to_string()
    } else {
        "-inf".to_string()
    };
    format!("{s:>width$}")
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for `t` seconds since the Unix epoch (fraction truncated).
pub fn utc_date_time(t: f64) -> String {
    let secs = if t.is_finite() {
        t.floor().clamp(-1e15, 1e15) as i64
    } else {
        0
    };
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Proleptic Gregorian date of a day number (days since 1970-01-01), by the era/day-of-era
/// decomposition (400-year eras of 146097 days, years starting in March).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Leap column of `tracking.log`: `N`, `+`, `-`, or `?` when unsynchronised.
pub fn leap_status_char(l: LeapStatus) -> char {
    match l {
        LeapStatus::Normal => 'N',
        LeapStatus::InsertSecond => '+',
        LeapStatus::DeleteSecond => '-',
        LeapStatus::Unsynchronised => '?',
    }
}

/// Leap column of `measurements.log`: `N`, `+`, `-`, or `?` (`None`) for a server that
/// announces no synchronisation (it fails test 6, so only `log rawmeasurements` shows it).
pub fn leap_char(l: Option<LeapState>) -> char {
    match l {
        Some(LeapState::Normal) => 'N',
        Some(LeapState::Insert) => '+',
        Some(LeapState::Delete) => '-',
        None => '?',
    }
}

/// The address column: the source's IP address, else the reference ID as a dotted quad
/// (`0.0.0.0` when unsynchronised, `127.127.1.1` in local mode), as chronyd prints it.
pub fn reference_name(addr: Option<IpAddr>, reference_id: u32) -> String {
    match addr {
        Some(ip) => ip.to_string(),
        None => Ipv4Addr::from(reference_id).to_string(),
    }
}

/// The values of one `tracking.log` entry beyond the `tracking` report.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrackingExtra {
    /// Number of sources combined into the update (`Co`).
    pub combined: u32,
    /// Standard deviation of the offset estimate of the update, seconds (`Offset sd`).
    pub offset_sd: f64,
    /// Maximum error of the clock, seconds (`Max. error`).
    pub max_error: f64,
}

/// One `tracking.log` entry at UTC `t` (without the newline).
pub fn tracking_line(t: f64, r: &TrackingReport, extra: &TrackingExtra) -> String {
    let mut s = String::with_capacity(140);
    let name = reference_name(r.reference_addr.map(|a| a.ip()), r.reference_id);
    let _ = write!(
        s,
        "{} {name:<15} {:>2} {:>10.3} {:>10.3} {} {} {:>2} {} {} {} {} {}",
        utc_date_time(t),
        r.stratum,
        r.frequency_ppm,
        r.skew_ppm,
        sci(r.last_offset, 3, 10),
        leap_status_char(r.leap_status),
        extra.combined,
        sci(extra.offset_sd, 3, 10),
        sci(r.system_time, 3, 10),
        sci(r.root_delay, 3, 10),
        sci(r.root_dispersion, 3, 10),
        sci(extra.max_error, 3, 10),
    );
    s
}

/// Pass (`true`) or fail of the tests chronyd's measurements log reports, in its column
/// order: RFC 5905 tests 1–3, 5–7, then maxdelay, maxdelayratio, maxdelaydevratio and the
/// synchronisation-loop test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestBits(pub [bool; 10]);

impl TestBits {
    /// Every test passed (an accepted sample).
    pub const PASSED: TestBits = TestBits([true; 10]);

    fn digits(&self) -> String {
        let d = |b: bool| if b { '1' } else { '0' };
        let b = &self.0;
        format!(
            "{}{}{} {}{}{} {}{}{}{}",
            d(b[0]),
            d(b[1]),
            d(b[2]),
            d(b[3]),
            d(b[4]),
            d(b[5]),
            d(b[6]),
            d(b[7]),
            d(b[8]),
            d(b[9])
        )
    }
}

/// Where a packet timestamp came from (the last two columns of `measurements.log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampSource {
    /// Read by the daemon (`D`).
    Daemon,
    /// The kernel's socket timestamp (`K`). (`H`, a NIC's hardware timestamp, comes with
    /// `hwtimestamp`, which gnomond does not do.)
    Kernel,
}

impl StampSource {
    fn letter(self) -> char {
        match self {
            StampSource::Daemon => 'D',
            StampSource::Kernel => 'K',
        }
    }
}

/// One measurement as `measurements.log` shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasurementLine {
    /// Source address.
    pub addr: IpAddr,
    /// Leap status announced by the source (`None`: unsynchronised, leap bits 3).
    pub leap: Option<LeapState>,
    /// Stratum of the source.
    pub stratum: u8,
    /// Test results.
    pub tests: TestBits,
    /// Our poll interval, log2 seconds.
    pub local_poll: i8,
    /// The response's poll field, log2 seconds.
    pub remote_poll: i8,
    /// Poll adaptation score.
    pub score: f64,
    /// Offset, positive when the local clock is slow of the source (chronyd's sign), seconds.
    pub offset: f64,
    /// Round-trip delay, seconds.
    pub peer_delay: f64,
    /// Dispersion of the measurement, seconds.
    pub peer_dispersion: f64,
    /// The source's root delay, seconds.
    pub root_delay: f64,
    /// The source's root dispersion, seconds.
    pub root_dispersion: f64,
    /// Reference ID of the source's source.
    pub reference_id: u32,
    /// NTP mode of the response (4 server, 1/2 symmetric peer).
    pub mode: u8,
    /// Interleaved (`I`) rather than basic (`B`) mode.
    pub interleaved: bool,
    /// Source of our transmit timestamp.
    pub tx_stamp: StampSource,
    /// Source of our receive timestamp.
    pub rx_stamp: StampSource,
}

/// One `measurements.log` entry at UTC `t` (without the newline).
pub fn measurement_line(t: f64, m: &MeasurementLine) -> String {
    let mut s = String::with_capacity(140);
    let _ = write!(
        s,
        "{} {:<15} {} {:>2} {} {:>3} {:>2} {:>4.2} {} {} {} {} {} {:08X} {}{} {} {}",
        utc_date_time(t),
        m.addr.to_string(),
        leap_char(m.leap),
        m.stratum,
        m.tests.digits(),
        m.local_poll,
        m.remote_poll,
        m.score,
        sci(m.offset, 3, 10),
        sci(m.peer_delay, 3, 10),
        sci(m.peer_dispersion, 3, 10),
        sci(m.root_delay, 3, 10),
        sci(m.root_dispersion, 3, 10),
        m.reference_id,
        m.mode,
        if m.interleaved { 'I' } else { 'B' },
        m.tx_stamp.letter(),
        m.rx_stamp.letter(),
    );
    s
}

/// The regression values of one `statistics.log` entry beyond `sourcestats`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StatisticsExtra {
    /// |old rate − new rate| / old rate error (`Stress`).
    pub stress: f64,
    /// Samples dropped from the start of the regression this time (`Bs`).
    pub dropped: u32,
    /// Jitter asymmetry used to correct the offsets (`Asym`).
    pub asymmetry: f64,
}

/// One `statistics.log` entry at UTC `t` for the source at `addr` (without the newline).
/// Frequencies go out in seconds per second, as chronyd writes them.
pub fn statistics_line(
    t: f64,
    addr: IpAddr,
    st: &SourceStatsReport,
    extra: &StatisticsExtra,
) -> String {
    let mut s = String::with_capacity(120);
    let _ = write!(
        s,
        "{} {:<15} {} {} {} {} {} {} {:>3} {:>3} {:>3} {:>5.2}",
        utc_date_time(t),
        addr.to_string(),
        sci(st.std_dev, 3, 10),
        sci(st.offset, 3, 10),
        sci(st.est_offset_err, 3, 10),
        sci(st.frequency_ppm * 1e-6, 3, 10),
        sci(st.skew_ppm * 1e-6, 3, 10),
        sci(extra.stress, 1, 7),
        st.samples,
        extra.dropped,
        st.runs,
        extra.asymmetry,
    );
    s
}

/// One source's entry in a `selection.log` round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectionLine {
    /// Source address.
    pub addr: IpAddr,
    /// State letter (`*`, `+`, `D`, `x`, `~`, `N`, `s`, `M`, ...; chrony.conf(5) `log
    /// selection`).
    pub state: char,
    /// Selection options in effect.
    pub options: SelectOptions,
    /// Reachability register.
    pub reach: u8,
    /// Reselection score against the selected source.
    pub score: f64,
    /// Seconds since the source's last sample.
    pub last_sample: f64,
    /// Low end of the interval expected to hold the true offset, seconds.
    pub lo_limit: f64,
    /// High end of that interval, seconds.
    pub hi_limit: f64,
}

/// The `EOpts` column: five characters, observed with chronyd 4.3 as `-N---` for
/// `noselect`, `--P--` for `prefer` and `---TR` for `trust require` (the first position
/// never showed anything but `-`).
fn selection_options(o: &SelectOptions) -> String {
    let c = |on: bool, ch: char| if on { ch } else { '-' };
    [
        '-',
        c(o.noselect, 'N'),
        c(o.prefer, 'P'),
        c(o.trust, 'T'),
        c(o.require, 'R'),
    ]
    .iter()
    .collect()
}

/// One `selection.log` entry at UTC `t` (without the newline): C's
/// `%s %-15s %c %s %4o %5.2f %10.3e %10.3e %10.3e` layout of the captured lines.
pub fn selection_line(t: f64, l: &SelectionLine) -> String {
    let mut s = String::with_capacity(90);
    let _ = write!(
        s,
        "{} {:<15} {} {} {:>4o} {:>5.2} {} {} {}",
        utc_date_time(t),
        l.addr.to_string(),
        l.state,
        selection_options(&l.options),
        l.reach,
        l.score,
        sci(l.last_sample, 3, 10),
        sci(l.lo_limit, 3, 10),
        sci(l.hi_limit, 3, 10),
    );
    s
}

#[cfg(test)]
mod tests;
