// Tests touch the file system and read real clocks for unique names.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use super::*;
use gnomon_core::association::SourceId;
use gnomon_core::local_clock::LeapState;
use gnomon_core::sample_filter::Sample;
use std::sync::Mutex;

/// `request_reopen` is process-wide: tests that count banners must not see another test's
/// re-open request.
static SERIAL: Mutex<()> = Mutex::new(());

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!(
            "gnomond-statlog-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(dir: &Path, banner_every: u32) -> StatLogSettings {
    StatLogSettings {
        dir: Some(dir.to_path_buf()),
        tracking: true,
        measurements: true,
        raw_measurements: false,
        statistics: true,
        selection: true,
        banner_every,
        logchange: 1.0,
        clock_control: false,
    }
}

fn report() -> TrackingReport {
    TrackingReport {
        reference_id: 0x7F00_0001,
        reference_addr: Some("127.0.0.1:123".parse().unwrap()),
        stratum: 9,
        leap_status: LeapStatus::Normal,
        ..Default::default()
    }
}

fn read(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Rows of a file as 'B' (banner: ruler, headings, ruler) and 'L' (entry).
fn shape(lines: &[String]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('=') {
            assert_eq!(lines[i + 1], TRACKING_HEADER);
            assert_eq!(lines[i + 2], lines[i]);
            out.push('B');
            i += 3;
        } else {
            assert!(lines[i].starts_with("20"), "{}", lines[i]);
            out.push('L');
            i += 1;
        }
    }
    out
}

#[test]
fn banner_repeats_every_logbanner_entries() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("cadence");
    let mut logs = StatLogs::open(settings(&d.0, 3)).unwrap();
    for i in 0..7 {
        logs.record_tracking(1e9 + f64::from(i), &report(), &TrackingExtra::default());
    }
    assert_eq!(shape(&read(&d.0.join("tracking.log"))), "BLLLBLLLBL");
}

#[test]
fn logbanner_zero_writes_no_banner() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("nobanner");
    let mut logs = StatLogs::open(settings(&d.0, 0)).unwrap();
    for i in 0..40 {
        logs.record_tracking(1e9 + f64::from(i), &report(), &TrackingExtra::default());
    }
    assert_eq!(shape(&read(&d.0.join("tracking.log"))), "L".repeat(40));
}

#[test]
fn files_open_on_first_entry_and_append_to_existing_ones() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("append");
    let path = d.0.join("tracking.log");
    std::fs::write(&path, "old line\n").unwrap();
    let mut logs = StatLogs::open(settings(&d.0, 32)).unwrap();
    assert!(!d.0.join("statistics.log").exists());
    logs.record_tracking(1e9, &report(), &TrackingExtra::default());
    let lines = read(&path);
    assert_eq!(lines[0], "old line");
    assert_eq!(shape(&lines[1..]), "BL");
}

#[test]
fn reopen_after_rename_starts_a_new_file_like_logrotate() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("rotate");
    let mut logs = StatLogs::open(settings(&d.0, 32)).unwrap();
    let path = d.0.join("tracking.log");
    let rotated = d.0.join("tracking.log.1");
    logs.record_tracking(1e9, &report(), &TrackingExtra::default());
    logs.record_tracking(1e9 + 1.0, &report(), &TrackingExtra::default());
    std::fs::rename(&path, &rotated).unwrap();
    // Before cyclelogs the open descriptor still writes to the renamed file.
    logs.record_tracking(1e9 + 2.0, &report(), &TrackingExtra::default());
    assert!(!path.exists());
    logs.reopen();
    logs.record_tracking(1e9 + 3.0, &report(), &TrackingExtra::default());
    assert_eq!(shape(&read(&rotated)), "BLLL");
    let fresh = read(&path);
    assert_eq!(shape(&fresh), "BL");
    assert!(fresh[3].starts_with("2001-09-09 01:46:43 127.0.0.1"));
}

#[test]
fn cyclelogs_request_reaches_open_logs() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("request");
    let mut logs = StatLogs::open(settings(&d.0, 32)).unwrap();
    let path = d.0.join("tracking.log");
    logs.record_tracking(1e9, &report(), &TrackingExtra::default());
    std::fs::rename(&path, d.0.join("old")).unwrap();
    request_reopen();
    logs.record_tracking(1e9 + 1.0, &report(), &TrackingExtra::default());
    assert_eq!(shape(&read(&path)), "BL");
    assert_eq!(shape(&read(&d.0.join("old"))), "BL");
}

#[test]
fn symlinked_log_file_is_not_followed() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("symlink");
    let target = d.0.join("target");
    std::fs::write(&target, "precious\n").unwrap();
    std::os::unix::fs::symlink(&target, d.0.join("tracking.log")).unwrap();
    let mut logs = StatLogs::open(settings(&d.0, 32)).unwrap();
    logs.record_tracking(1e9, &report(), &TrackingExtra::default());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
}

#[test]
fn missing_logdir_is_created_with_chronyd_modes() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("mkdir");
    let dir = d.0.join("a/b");
    StatLogs::open(settings(&dir, 32)).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o750 & !umask_bits());
    assert_eq!(mode(&d.0.join("a")), 0o755 & !umask_bits());
}

/// The process umask (read from /proc so the test does not change it).
fn umask_bits() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[test]
fn logdir_that_is_a_file_is_an_error() {
    let d = TempDir::new("notdir");
    let f = d.0.join("file");
    std::fs::write(&f, "").unwrap();
    let e = StatLogs::open(settings(&f, 32)).unwrap_err();
    assert!(matches!(e, StatLogError::NotADirectory(_)));
}

#[test]
fn without_logdir_nothing_is_written_and_nothing_fails() {
    let mut s = settings(Path::new("/nonexistent/never"), 32);
    s.dir = None;
    let mut logs = StatLogs::open(s).unwrap();
    logs.record_tracking(1e9, &report(), &TrackingExtra::default());
}

fn record(freq_ppm: f64, skew_ppm: f64, samples: u32) -> SampleRecord {
    SampleRecord {
        source: SourceId(0),
        remote: "127.0.0.1:123".parse().unwrap(),
        peer: false,
        local_poll: -2,
        remote_poll: -2,
        poll_score: 0.5,
        measured_offset: 1.3e-6,
        sample: Sample {
            time: 1e9,
            offset: 1.3e-6,
            peer_delay: 6e-6,
            peer_dispersion: 2e-7,
            root_delay: 6e-6,
            root_dispersion: 2e-7,
            stratum: 8,
            leap: LeapState::Normal,
        },
        reference_id: 0x7F7F_0101,
        stats: SourceStatsReport {
            samples,
            runs: 3,
            frequency_ppm: freq_ppm,
            skew_ppm,
            std_dev: 3.4e-7,
            offset: 1.4e-6,
            est_offset_err: 5.8e-7,
            ..Default::default()
        },
        remaining_correction: 0.0,
        jitter_asymmetry: 0.0,
        interleaved: false,
    }
}

#[test]
fn sample_writes_measurement_and_statistics_with_stress() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("sample");
    let mut logs = StatLogs::open(settings(&d.0, 0)).unwrap();
    // No regression (and no statistics entry) before three samples, as chronyd.
    logs.record_sample(
        1e9,
        &record(0.5, 100.0, 2),
        StampSource::Daemon,
        StampSource::Kernel,
    );
    logs.record_sample(
        1e9,
        &record(1.874, 4318.0, 3),
        StampSource::Daemon,
        StampSource::Kernel,
    );
    logs.record_sample(
        1e9,
        &record(-3.655, 39.18, 4),
        StampSource::Daemon,
        StampSource::Kernel,
    );
    // Five samples held, then two of them dropped while one was added.
    logs.record_sample(
        1e9,
        &record(-3.655, 39.18, 5),
        StampSource::Daemon,
        StampSource::Kernel,
    );
    logs.record_sample(
        1e9,
        &record(-3.655, 39.18, 4),
        StampSource::Daemon,
        StampSource::Kernel,
    );
    let m = read(&d.0.join("measurements.log"));
    assert_eq!(
        m[0],
        "2001-09-09 01:46:40 127.0.0.1       N  8 111 111 1111  -2 -2 0.50 -1.300e-06  6.000e-06  2.000e-07  0.000e+00  0.000e+00 7F7F0101 4B D K"
    );
    assert_eq!(m.len(), 5);
    let s = read(&d.0.join("statistics.log"));
    assert_eq!(s.len(), 4);
    // First regression: compared with no rate at the worst-case 2000 ppm skew.
    assert_eq!(
        s[0],
        "2001-09-09 01:46:40 127.0.0.1        3.400e-07  1.400e-06  5.800e-07  1.874e-06  4.318e-03 9.4e-04   3   0   3  0.00"
    );
    // |1.874 - (-3.655)| / 4318 ppm.
    assert!(s[1].contains(" 1.3e-03   4   0   3 "), "{}", s[1]);
    assert!(s[3].contains(" 0.0e+00   4   2   3 "), "{}", s[3]);
}

#[test]
fn slews_are_left_to_logchange_and_steps_to_the_daemon() {
    let mut s = settings(Path::new("/unused"), 32);
    s.dir = None;
    let mut logs = StatLogs::open(s).unwrap();
    assert!(logs.takes_event(&Event::Slewing(2.0)));
    assert!(!logs.stepped);
    assert!(!logs.takes_event(&Event::Stepped(0.5)));
    assert!(logs.stepped);
    assert!(!logs.takes_event(&Event::Selected("127.0.0.1:123".parse().unwrap())));
}

#[test]
fn rejected_packet_writes_a_measurement_line_with_its_failed_test_only() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("rejected");
    let mut logs = StatLogs::open(settings(&d.0, 0)).unwrap();
    let rec = RejectedMeasurement {
        remote: "127.0.0.1:123".parse().unwrap(),
        peer: false,
        local_poll: -2,
        poll_score: 0.5,
        report: gnomon_core::association::NtpDataReport {
            leap: 0,
            version: 4,
            mode: 4,
            stratum: 8,
            poll: -2,
            precision: -20,
            offset: 1.3e-6,
            peer_delay: 6e-6,
            peer_dispersion: 2e-7,
            reference_id: 0x7F7F_0101,
            // Test A (maxdelay) failed.
            tests: 0x3FF & !(1 << 3),
            ..Default::default()
        },
    };
    logs.record_rejected(1e9, &rec, StampSource::Kernel);
    let m = read(&d.0.join("measurements.log"));
    assert_eq!(
        m,
        // chronyd 4.3 resets the polls and score of a packet dropped by maxdelay.
        ["2001-09-09 01:46:40 127.0.0.1       N  8 111 111 0111   0  0 1.00 -1.300e-06  6.000e-06  2.000e-07  0.000e+00  0.000e+00 7F7F0101 4B D K"]
    );
    // Nothing entered the regression: no statistics entry.
    assert!(!d.0.join("statistics.log").exists());
}

fn rejected(tests: u16, leap: u8) -> RejectedMeasurement {
    RejectedMeasurement {
        remote: "127.0.0.6:123".parse().unwrap(),
        peer: false,
        local_poll: -2,
        poll_score: 0.5,
        report: gnomon_core::association::NtpDataReport {
            leap,
            version: 4,
            mode: 4,
            stratum: 0,
            poll: -2,
            offset: 1.3e-6,
            peer_delay: 6e-6,
            peer_dispersion: 2e-7,
            root_delay: 1.0,
            root_dispersion: 1.0,
            tests,
            ..Default::default()
        },
    }
}

#[test]
fn unsynchronised_server_is_written_by_rawmeasurements_only() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Test 6 (the server is synchronised) failed.
    let rec = rejected(0x3FF & !(1 << 5), 3);
    let d = TempDir::new("cooked");
    let mut logs = StatLogs::open(settings(&d.0, 0)).unwrap();
    logs.record_rejected(1e9, &rec, StampSource::Kernel);
    assert!(!d.0.join("measurements.log").exists());

    let d = TempDir::new("raw");
    let mut s = settings(&d.0, 0);
    s.raw_measurements = true;
    let mut logs = StatLogs::open(s).unwrap();
    logs.record_rejected(1e9, &rec, StampSource::Kernel);
    // The shape of chronyd 4.3's line for such a server (format/tests.rs has the capture).
    assert_eq!(
        read(&d.0.join("measurements.log")),
        ["2001-09-09 01:46:40 127.0.0.6       ?  0 111 101 0000   0  0 1.00  0.000e+00  0.000e+00  0.000e+00  1.000e+00  1.000e+00 00000000 4B D K"]
    );
}

#[test]
fn later_test_failures_keep_the_source_polls() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("devratio");
    let mut logs = StatLogs::open(settings(&d.0, 0)).unwrap();
    // Test C (maxdelaydevratio) failed: chronyd 4.3 writes it with `measurements` too,
    // with the source's polls and score.
    logs.record_rejected(1e9, &rejected(0x3FF & !(1 << 1), 0), StampSource::Kernel);
    assert_eq!(
        read(&d.0.join("measurements.log")),
        ["2001-09-09 01:46:40 127.0.0.6       N  0 111 111 1101  -2 -2 0.50 -1.300e-06  6.000e-06  2.000e-07  1.000e+00  1.000e+00 00000000 4B D K"]
    );
}

#[test]
fn selection_rounds_share_the_banner_count_and_reopen() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("selection");
    let mut logs = StatLogs::open(settings(&d.0, 4)).unwrap();
    let line = |state: char| format::SelectionLine {
        addr: "127.0.0.1".parse().unwrap(),
        state,
        options: Default::default(),
        reach: 0o377,
        score: 1.0,
        last_sample: 0.5,
        lo_limit: -1e-6,
        hi_limit: 1e-6,
    };
    logs.record_selection(1e9, &[line('s'), line('*'), line('+')]);
    logs.record_selection(1e9, &[line('s'), line('*'), line('+')]);
    let path = d.0.join("selection.log");
    // A banner before entries 1 and 5, even in the middle of a round (as chronyd's).
    let lines = read(&path);
    let ruler = "=".repeat(SELECTION_HEADER.len());
    let kinds: String = lines
        .iter()
        .map(|l| match l.as_str() {
            l if l == ruler => '=',
            SELECTION_HEADER => 'H',
            _ => 'L',
        })
        .collect();
    assert_eq!(kinds, "=H=LLLL=H=LL");
    assert_eq!(
        read(&path)[3],
        "2001-09-09 01:46:40 127.0.0.1       s -----  377  1.00  5.000e-01 -1.000e-06  1.000e-06"
    );
    std::fs::rename(&path, d.0.join("selection.log.1")).unwrap();
    logs.reopen();
    logs.record_selection(1e9, &[line('*')]);
    assert_eq!(read(&path).len(), 4);
}
