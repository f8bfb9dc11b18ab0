//! `logdir` + `log tracking measurements statistics` end to end: a gnomond -x (under noclock)
//! polling a real chronyd serving `local stratum 8` on loopback every 0.25 s writes the three
//! files with chronyd 4.3's banners and columns, and after the file is renamed, the real
//! chronyc's `cyclelogs` over the Unix socket makes it start a new one (Debian's logrotate
//! stanza). The banner and column layouts were captured from chronyd 4.3 in the same setup.
//! A second run adds an unsynchronised chronyd (no `local`) and `log rawmeasurements
//! selection`: its packets appear in measurements.log as chronyd 4.3 writes them, and every
//! sample writes a selection.log round in chronyd's layout.

// Tests read the real clock for their deadlines and panic on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const TRACKING_HEADER: &str = "   Date (UTC) Time     IP Address   St   Freq ppm   Skew ppm     Offset L Co  Offset sd Rem. corr. Root delay Root disp. Max. error";
const MEASUREMENTS_HEADER: &str = "   Date (UTC) Time     IP Address   L St 123 567 ABCD  LP RP Score    Offset  Peer del. Peer disp.  Root del. Root disp. Refid     MTxRx";
const SELECTION_HEADER: &str =
    "   Date (UTC) Time     IP Address   S EOpts Reach Score Last sample  Low end   High end";
const STATISTICS_HEADER: &str = "   Date (UTC) Time     IP Address    Std dev'n Est offset  Offset sd  Diff freq   Est skew  Stress  Ns  Bs  Nr  Asym";

/// Entries between banners in the test configuration.
const BANNER_EVERY: usize = 4;

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The entries of a file, after checking its banners: one before the first entry and one
/// after every `BANNER_EVERY` entries, each a ruler as long as `header`, `header`, the ruler.
fn entries(path: &Path, header: &str) -> Vec<String> {
    let all = lines(path);
    let ruler = "=".repeat(header.len());
    let mut out = Vec::new();
    let mut i = 0;
    while i < all.len() {
        if out.len() % BANNER_EVERY == 0 {
            assert_eq!(all[i], ruler, "{}: line {i}", path.display());
            assert_eq!(all.get(i + 1), Some(&header.to_string()));
            assert_eq!(all.get(i + 2), Some(&ruler));
            i += 3;
            if i >= all.len() {
                break;
            }
        }
        assert!(
            !all[i].starts_with('='),
            "{}: early banner at {i}",
            path.display()
        );
        out.push(all[i].clone());
        i += 1;
    }
    out
}

fn is_date_time(date: &str, time: &str) -> bool {
    let digits = |s: &str, seps: &[usize], sep: u8| {
        s.bytes().enumerate().all(|(i, b)| {
            if seps.contains(&i) {
                b == sep
            } else {
                b.is_ascii_digit()
            }
        })
    };
    date.len() == 10
        && digits(date, &[4, 7], b'-')
        && time.len() == 8
        && digits(time, &[2, 5], b':')
}

/// C's `%.3e` (`-1.300e-06`).
fn is_sci(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let b = s.as_bytes();
    b.len() == 9
        && b[0].is_ascii_digit()
        && b[1] == b'.'
        && b[2..5].iter().all(u8::is_ascii_digit)
        && b[5] == b'e'
        && (b[6] == b'+' || b[6] == b'-')
        && b[7..9].iter().all(u8::is_ascii_digit)
}

fn check_tracking(line: &str) -> bool {
    let t: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(t.len(), 14, "{line}");
    assert!(is_date_time(t[0], t[1]), "{line}");
    for i in [6, 9, 10, 11, 12, 13] {
        assert!(is_sci(t[i]), "column {i}: {line}");
    }
    // Fixed columns up to the offset (the frequency and skew columns are %10.3f).
    assert_eq!(
        &line[19..36],
        if t[2] == "0.0.0.0" {
            " 0.0.0.0         "
        } else {
            " 127.0.0.1       "
        },
        "{line}"
    );
    assert_eq!(
        line.len(),
        131 + t[4].len().saturating_sub(10) + t[5].len().saturating_sub(10),
        "{line}"
    );
    t[2] == "127.0.0.1" && t[3] == "9" && t[7] == "N" && t[8] == "1"
}

fn check_measurement(line: &str) {
    let t: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(t.len(), 20, "{line}");
    assert!(is_date_time(t[0], t[1]), "{line}");
    assert_eq!(&line[19..40], " 127.0.0.1       N  8", "{line}");
    // Rejected packets are logged too (tests 1–7 passed, A–D may not have).
    assert_eq!(&line[40..48], " 111 111", "{line}");
    let abcd = &line[48..53];
    assert!(
        abcd.len() == 5 && abcd.starts_with(' ') && abcd[1..].chars().all(|c| c == '0' || c == '1'),
        "{line}"
    );
    assert_eq!(t[8], "-2", "local poll: {line}");
    for (i, v) in t.iter().enumerate().take(16).skip(11) {
        assert!(is_sci(v), "column {i}: {line}");
    }
    assert_eq!(t[16], "7F7F0101", "{line}");
    assert_eq!(t[17], "4B", "{line}");
    assert!(
        ["D", "K"].contains(&t[18]) && ["D", "K"].contains(&t[19]),
        "{line}"
    );
    // The score column is %4.2f: one more column when it is negative.
    let score_extra = usize::from(t[10].starts_with('-'));
    assert_eq!(line.len(), 136 + score_extra, "{line}");
}

fn check_statistics(line: &str) {
    let t: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(t.len(), 13, "{line}");
    assert!(is_date_time(t[0], t[1]), "{line}");
    assert_eq!(&line[19..36], " 127.0.0.1       ", "{line}");
    for (i, v) in t.iter().enumerate().take(8).skip(3) {
        assert!(is_sci(v), "column {i}: {line}");
    }
    assert_eq!(line.len(), 116, "{line}");
    assert_eq!(t[12], "0.00", "{line}");
}

/// Waits up to `limit` until `path` has at least `n` entries.
fn wait_entries(path: &Path, header: &str, n: usize, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let e = entries(path, header);
        if e.len() >= n || start.elapsed() > limit {
            return e;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn statistics_logs_have_chronyd_layout_and_cyclelogs_starts_new_files() {
    let port = free_udp_port();
    let chronyd = Chronyd::start(&format!(
        "port {port}\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0"
    ));
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_answers(upstream, Duration::from_secs(10), "chronyd");
    let logs = TempDir::new("statlog-logs");
    let logdir = logs.join("chrony");
    let client = Daemon::start(&format!(
        "server 127.0.0.1 port {port} minpoll -2 maxpoll -2 iburst\nallow 127.0.0.1\n\
         logdir {}\nlog tracking measurements statistics\nlogbanner {BANNER_EVERY}\n\
         logchange 0.000000001",
        logdir.display()
    ));
    let tracking = logdir.join("tracking.log");
    let measurements = logdir.join("measurements.log");
    let statistics = logdir.join("statistics.log");
    let limit = Duration::from_secs(25);
    let m = wait_entries(&measurements, MEASUREMENTS_HEADER, 9, limit);
    assert!(m.len() >= 9, "{m:?}\n{}", client.stderr());
    m.iter().for_each(|l| check_measurement(l));
    assert!(m.iter().any(|l| l.contains(" 111 111 1111 ")), "{m:?}");
    let s = wait_entries(&statistics, STATISTICS_HEADER, 6, limit);
    assert!(s.len() >= 6, "{s:?}");
    s.iter().for_each(|l| check_statistics(l));
    let t = wait_entries(&tracking, TRACKING_HEADER, 6, limit);
    let synced = t.iter().filter(|l| check_tracking(l)).count();
    assert!(synced >= 5, "{t:?}\n{}", client.stderr());
    assert!(
        client.stderr().contains("System clock wrong by "),
        "no logchange warning:\n{}",
        client.stderr()
    );

    // logrotate: rename, then `chronyc cyclelogs` (privileged: Unix socket only).
    let rotated = logdir.join("tracking.log.1");
    std::fs::rename(&tracking, &rotated).unwrap();
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .arg("-h")
            .arg(&client.socket)
            .arg("cyclelogs"),
        Duration::from_secs(10),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 OK\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old_len = entries(&rotated, TRACKING_HEADER).len();
    let fresh = wait_entries(&tracking, TRACKING_HEADER, 2, limit);
    assert!(fresh.len() >= 2, "no new tracking.log: {fresh:?}");
    fresh.iter().for_each(|l| assert!(check_tracking(l), "{l}"));
    // Nothing more went to the renamed file once cyclelogs was answered.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(entries(&rotated, TRACKING_HEADER).len(), old_len);
    drop(client);
    drop(chronyd);
}

/// chronyd 4.3's `measurements.log` columns for a packet from a server without a reference
/// (captured; `log rawmeasurements` only): leap `?`, stratum 0, test 6 failed, no
/// measurement, tests A–D not run, polls and score reset.
const UNSYNCED_COLUMNS: &str =
    " ?  0 111 101 0000   0  0 1.00  0.000e+00  0.000e+00  0.000e+00  1.000e+00  1.000e+00 00000000 4B ";

/// A `selection.log` entry: `%-15s %c %s %4o %5.2f %10.3e %10.3e %10.3e` after the date.
fn check_selection(line: &str) -> (String, char) {
    assert_eq!(line.len(), SELECTION_HEADER.len(), "{line}");
    let t: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(t.len(), 10, "{line}");
    assert!(is_date_time(t[0], t[1]), "{line}");
    assert_eq!(line.as_bytes()[35], b' ', "{line}");
    let state = line.as_bytes()[36] as char;
    assert_eq!(&line[37..44], " ----- ", "{line}");
    assert!(
        u8::from_str_radix(line[44..48].trim(), 8).is_ok(),
        "reach: {line}"
    );
    assert_eq!(&line[48..54], "  1.00", "{line}");
    for v in &t[7..10] {
        assert!(is_sci(v), "{line}");
    }
    (t[2].to_string(), state)
}

#[test]
fn rawmeasurements_and_selection_have_chronyd_layout() {
    let port = free_udp_port();
    let synced = Chronyd::start(&format!(
        "port {port}\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0"
    ));
    let unsynced_port = free_udp_port();
    let unsynced = Chronyd::start(&format!(
        "port {unsynced_port}\nallow 127.0.0.0/8\ncmdport 0"
    ));
    wait_answers(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "chronyd",
    );
    wait_answers(
        std::net::SocketAddr::from(([127, 0, 0, 1], unsynced_port)),
        Duration::from_secs(10),
        "unsynchronised chronyd",
    );
    let logs = TempDir::new("statlog-raw");
    let logdir = logs.join("chrony");
    let client = Daemon::start(&format!(
        "server 127.0.0.1 port {port} minpoll -2 maxpoll -2 iburst\n\
         server 127.0.0.2 port {unsynced_port} minpoll -2 maxpoll -2\n\
         allow 127.0.0.1\nlogdir {}\nlog rawmeasurements selection\nlogbanner {BANNER_EVERY}",
        logdir.display()
    ));
    let limit = Duration::from_secs(25);
    let measurements = logdir.join("measurements.log");
    let start = Instant::now();
    let m = loop {
        let m = entries(&measurements, MEASUREMENTS_HEADER);
        let done = m.iter().filter(|l| l.contains(" 127.0.0.2 ")).count() >= 3
            && m.iter().filter(|l| l.contains(" 127.0.0.1 ")).count() >= 6;
        if done || start.elapsed() > limit {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let from_unsynced: Vec<&String> = m.iter().filter(|l| l.contains(" 127.0.0.2 ")).collect();
    assert!(from_unsynced.len() >= 3, "{m:?}\n{}", client.stderr());
    for l in from_unsynced {
        assert_eq!(&l[19..35], " 127.0.0.2      ", "{l}");
        assert_eq!(&l[35..133], UNSYNCED_COLUMNS, "{l}");
    }
    m.iter()
        .filter(|l| l.contains(" 127.0.0.1 "))
        .for_each(|l| check_measurement(l));

    // Rounds until the synchronised source is selected.
    let start = Instant::now();
    let s = loop {
        let s = entries(&logdir.join("selection.log"), SELECTION_HEADER);
        let selected = s.iter().any(|l| l.contains(" 127.0.0.1       * "));
        if (selected && s.len() >= 12) || start.elapsed() > limit {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(s.len() >= 12, "{s:?}\n{}", client.stderr());
    let rows: Vec<(String, char)> = s.iter().map(|l| check_selection(l)).collect();
    // Every round lists both sources; the unsynchronised one as `s` without values.
    for l in s.iter().filter(|l| l.contains(" 127.0.0.2 ")) {
        assert!(
            l.ends_with(" s -----    0  1.00  0.000e+00  0.000e+00  0.000e+00"),
            "{l}"
        );
    }
    let count = |addr: &str| rows.iter().filter(|(a, _)| a == addr).count();
    assert!(
        count("127.0.0.1").abs_diff(count("127.0.0.2")) <= 1,
        "{s:?}"
    );
    assert!(
        rows.iter().any(|r| *r == ("127.0.0.1".to_string(), '*')),
        "never selected: {s:?}"
    );
    // No other log was asked for.
    assert!(!logdir.join("tracking.log").exists());
    drop(client);
    drop(unsynced);
    drop(synced);
}
