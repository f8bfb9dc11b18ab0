//! Lines captured from chronyd 4.3 (`noclock chronyd -x -d -u root` polling a `local stratum 8`
//! chronyd on loopback with `minpoll -2 maxpoll -2 iburst`, `log tracking measurements
//! statistics`), re-created from their own numbers.

use super::*;
use gnomon_core::reports::{LeapStatus, SourceStatsReport, TrackingReport};
use std::net::SocketAddr;

/// 2026-11-22 03:50:50 UTC.
const T: f64 = 1_795_319_450.0;

fn tracking(fields: &[&str]) -> (TrackingReport, TrackingExtra) {
    let f = |i: usize| fields[i].parse::<f64>().unwrap();
    let ip: std::net::IpAddr = fields[0].parse().unwrap();
    let unsynced = fields[6] == "?";
    let r = TrackingReport {
        reference_id: if unsynced { 0 } else { 0x7F00_0001 },
        reference_addr: (!unsynced).then(|| SocketAddr::new(ip, 123)),
        stratum: fields[1].parse().unwrap(),
        frequency_ppm: f(2),
        skew_ppm: f(3),
        last_offset: f(4),
        leap_status: if unsynced {
            LeapStatus::Unsynchronised
        } else {
            LeapStatus::Normal
        },
        system_time: f(8),
        root_delay: f(9),
        root_dispersion: f(10),
        ..Default::default()
    };
    let extra = TrackingExtra {
        combined: fields[5].parse().unwrap(),
        offset_sd: f(7),
        max_error: f(11),
    };
    (r, extra)
}

#[test]
fn tracking_lines_match_chronyd_byte_for_byte() {
    let captured = [
        "2026-11-22 03:50:50 0.0.0.0          0      0.000 1000000.000  0.000e+00 ?  0  0.000e+00 -0.000e+00  1.000e+00  1.000e+00  1.500e+00",
        "2026-11-22 03:50:50 127.0.0.1        9      0.000 1000000.000  1.463e-06 N  1  5.818e-07 -0.000e+00  9.527e-06  4.517e-01  1.500e+00",
        "2026-11-22 03:50:50 127.0.0.1        9     -5.849    244.382 -8.217e-08 N  1  5.074e-07 -1.537e-06  6.327e-06  1.674e-04  9.848e-01",
        "2026-11-22 03:50:50 127.0.0.1        9     -0.608     12.249  1.529e-06 N  1  2.238e-07  2.426e-08  5.881e-06  2.933e-06  2.341e-04",
    ];
    for line in captured {
        let fields: Vec<&str> = line.split_whitespace().skip(2).collect();
        // Columns: IP St Freq Skew Offset L Co OffsetSd Rem RootDelay RootDisp MaxErr.
        let reordered = [
            fields[0], fields[1], fields[2], fields[3], fields[4], fields[6], fields[5], fields[7],
            fields[8], fields[9], fields[10], fields[11],
        ];
        let (r, extra) = tracking(&reordered);
        assert_eq!(tracking_line(T, &r, &extra), line);
    }
}

#[test]
fn measurement_lines_match_chronyd_byte_for_byte() {
    let captured = [
        ("2026-11-22 03:50:50 127.0.0.1       N  8 111 111 1111  -2  0 1.00 -1.300e-06  5.961e-06  2.214e-07  0.000e+00  0.000e+00 7F7F0101 4B K K", 0, 1.0, -1.300e-06, 5.961e-06, 2.214e-07),
        ("2026-11-22 03:50:50 127.0.0.1       N  8 111 111 1111  -2 -2 0.81 -1.284e-06  5.758e-06  1.293e-07  0.000e+00  0.000e+00 7F7F0101 4B K K", -2, 0.81, -1.284e-06, 5.758e-06, 1.293e-07),
        ("2026-11-22 03:50:50 127.0.0.1       N  8 111 111 1111  -2 -2 0.53  7.160e-07  5.791e-06  1.268e-07  0.000e+00  0.000e+00 7F7F0101 4B K K", -2, 0.53, 7.160e-07, 5.791e-06, 1.268e-07),
    ];
    for (line, remote_poll, score, offset, delay, disp) in captured {
        let m = MeasurementLine {
            addr: "127.0.0.1".parse().unwrap(),
            leap: Some(LeapState::Normal),
            stratum: 8,
            tests: TestBits::PASSED,
            local_poll: -2,
            remote_poll,
            score,
            offset,
            peer_delay: delay,
            peer_dispersion: disp,
            root_delay: 0.0,
            root_dispersion: 0.0,
            reference_id: 0x7F7F_0101,
            mode: 4,
            interleaved: false,
            tx_stamp: StampSource::Kernel,
            rx_stamp: StampSource::Kernel,
        };
        assert_eq!(measurement_line(T, &m), line);
    }
}

#[test]
fn failed_tests_show_as_zero_digits() {
    let mut bits = TestBits::PASSED;
    bits.0[6] = false; // maxdelay
    bits.0[9] = false; // synchronisation loop
    assert_eq!(bits.digits(), "111 111 0110");
}

#[test]
fn statistics_lines_match_chronyd_byte_for_byte() {
    let captured = [
        "2026-11-22 03:50:50 127.0.0.1        3.440e-07  1.462e-06  5.818e-07  1.874e-06  4.318e-03 9.4e-04   3   0   3  0.00",
        "2026-11-22 03:50:50 127.0.0.1        7.209e-07  2.658e-06  9.587e-07  4.360e-06  1.426e-05 1.5e-01   6   0   3  0.00",
        "2026-11-22 03:50:50 127.0.0.1        6.418e-07 -1.174e-08  1.672e-07 -5.225e-12  7.623e-08 7.5e-03  58   0  30  0.00",
    ];
    for line in captured {
        let v: Vec<&str> = line.split_whitespace().skip(3).collect();
        let f = |i: usize| v[i].parse::<f64>().unwrap();
        let st = SourceStatsReport {
            std_dev: f(0),
            offset: f(1),
            est_offset_err: f(2),
            frequency_ppm: f(3) * 1e6,
            skew_ppm: f(4) * 1e6,
            samples: v[6].parse().unwrap(),
            runs: v[8].parse().unwrap(),
            ..Default::default()
        };
        let extra = StatisticsExtra {
            stress: f(5),
            dropped: v[7].parse().unwrap(),
            asymmetry: f(9),
        };
        let addr = "127.0.0.1".parse().unwrap();
        assert_eq!(statistics_line(T, addr, &st, &extra), line);
    }
}

#[test]
fn banners_are_ruled_to_the_heading_width() {
    // Ruler lengths in chronyd's files: 131, 136 and 116 columns.
    for (h, w) in [
        (TRACKING_HEADER, 131),
        (MEASUREMENTS_HEADER, 136),
        (STATISTICS_HEADER, 116),
    ] {
        let b = banner(h);
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "=".repeat(w));
        assert_eq!(lines[1], h);
        assert_eq!(lines[2], lines[0]);
        assert!(b.ends_with('\n'));
    }
}

#[test]
fn sci_writes_c_style_exponents() {
    assert_eq!(sci(-1.3e-6, 3, 10), "-1.300e-06");
    assert_eq!(sci(0.0, 3, 10), " 0.000e+00");
    assert_eq!(sci(-0.0, 3, 10), "-0.000e+00");
    assert_eq!(sci(1.5, 3, 10), " 1.500e+00");
    assert_eq!(sci(12345.0, 3, 10), " 1.234e+04");
    assert_eq!(sci(9.9996e-5, 3, 10), " 1.000e-04");
    assert_eq!(sci(1e-123, 1, 7), "1.0e-123");
    assert_eq!(sci(9.44e-4, 1, 7), "9.4e-04");
}

#[test]
fn utc_dates_cover_leap_years_and_the_epoch() {
    assert_eq!(utc_date_time(0.0), "1970-01-01 00:00:00");
    assert_eq!(utc_date_time(T + 0.999), "2026-11-22 03:50:50");
    assert_eq!(utc_date_time(951_782_400.0), "2000-02-29 00:00:00");
    assert_eq!(utc_date_time(4_107_542_399.0), "2100-02-28 23:59:59");
    assert_eq!(utc_date_time(-1.0), "1969-12-31 23:59:59");
    assert_eq!(utc_date_time(f64::NAN), "1970-01-01 00:00:00");
}

#[test]
fn local_mode_and_unsynchronised_show_the_reference_id() {
    assert_eq!(reference_name(None, 0), "0.0.0.0");
    assert_eq!(reference_name(None, 0x7F7F_0101), "127.127.1.1");
    assert_eq!(
        reference_name(Some("::1".parse().unwrap()), 0x1234),
        "::1".to_string()
    );
}

#[test]
fn unsynchronised_server_shows_question_mark_leap_and_zero_measurement() {
    // Captured from chronyd 4.3 `log rawmeasurements` polling a chronyd without a reference
    // (test 6 fails; chronyd neither computes the measurement nor runs tests A-D).
    let line = "2026-11-22 06:54:54 127.0.0.6       ?  0 111 101 0000   0  0 1.00  0.000e+00  0.000e+00  0.000e+00  1.000e+00  1.000e+00 00000000 4B K K";
    let mut bits = [true; 10];
    bits[4] = false;
    bits[6..].fill(false);
    let m = MeasurementLine {
        addr: "127.0.0.6".parse().unwrap(),
        leap: None,
        stratum: 0,
        tests: TestBits(bits),
        local_poll: 0,
        remote_poll: 0,
        score: 1.0,
        offset: 0.0,
        peer_delay: 0.0,
        peer_dispersion: 0.0,
        root_delay: 1.0,
        root_dispersion: 1.0,
        reference_id: 0,
        mode: 4,
        interleaved: false,
        tx_stamp: StampSource::Kernel,
        rx_stamp: StampSource::Kernel,
    };
    assert_eq!(measurement_line(1_795_330_494.0, &m), line);
}

/// Lines captured from chronyd 4.3 (`log selection`, five and three sources on loopback:
/// a selected and a combined-limit source, `noselect`, one failing `maxdelay`, one
/// unreachable; `prefer`, `trust require`), with the values they were printed from.
const SELECTION_CAPTURED: [(&str, char, &str, u8, f64, f64, f64); 7] = [
    (
        "2026-11-22 06:54:17 127.0.0.1       * -----  377  1.00  1.321e-01 -2.520e-06  2.622e-06",
        '*',
        "",
        0o377,
        1.321e-01,
        -2.520e-06,
        2.622e-06,
    ),
    (
        "2026-11-22 06:54:17 127.0.0.2       D -----  377  1.00  1.634e-01 -2.497e-06  2.799e-06",
        'D',
        "",
        0o377,
        1.634e-01,
        -2.497e-06,
        2.799e-06,
    ),
    (
        "2026-11-22 06:54:17 127.0.0.3       N -N---  377  1.00  0.000e+00  0.000e+00  0.000e+00",
        'N',
        "N",
        0o377,
        0.0,
        0.0,
        0.0,
    ),
    (
        "2026-11-22 06:54:17 127.0.0.4       M -----    7  1.00  0.000e+00  0.000e+00  0.000e+00",
        'M',
        "",
        0o7,
        0.0,
        0.0,
        0.0,
    ),
    (
        "2026-11-22 06:54:17 127.0.0.5       s -----    0  1.00  0.000e+00  0.000e+00  0.000e+00",
        's',
        "",
        0,
        0.0,
        0.0,
        0.0,
    ),
    (
        "2026-11-22 06:54:55 127.0.0.1       * --P--   17  1.00  3.427e-05 -2.900e-06  2.288e-06",
        '*',
        "P",
        0o17,
        3.427e-05,
        -2.900e-06,
        2.288e-06,
    ),
    (
        "2026-11-22 06:54:54 127.0.0.2       M ---TR    1  1.00  6.028e-05 -1.506e-06  5.262e-06",
        'M',
        "TR",
        1,
        6.028e-05,
        -1.506e-06,
        5.262e-06,
    ),
];

#[test]
fn selection_lines_match_chronyd_byte_for_byte() {
    for (line, state, opts, reach, last, lo, hi) in SELECTION_CAPTURED {
        let l = SelectionLine {
            addr: line[20..35].trim().parse().unwrap(),
            state,
            options: SelectOptions {
                noselect: opts.contains('N'),
                prefer: opts.contains('P'),
                trust: opts.contains('T'),
                require: opts.contains('R'),
            },
            reach,
            score: 1.0,
            last_sample: last,
            lo_limit: lo,
            hi_limit: hi,
        };
        // 2026-11-22 06:54:00 UTC plus the captured seconds.
        let secs: f64 = line[17..19].parse().unwrap();
        assert_eq!(selection_line(1_795_330_440.0 + secs, &l), line);
    }
}

#[test]
fn selection_banner_is_ruled_to_its_heading() {
    // chronyd 4.3's selection.log banner, captured.
    let b = banner(SELECTION_HEADER);
    let ruler = "=".repeat(87);
    assert_eq!(
        b,
        format!("{ruler}\n   Date (UTC) Time     IP Address   S EOpts Reach Score Last sample  Low end   High end\n{ruler}\n")
    );
}
