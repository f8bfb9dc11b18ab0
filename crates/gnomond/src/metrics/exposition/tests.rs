//! Unit tests of the exposition rendering.
use super::*;
use gnomon_cmdmon::Timespec;
use std::net::Ipv4Addr;

/// (name, labels text, value) of every sample line; panics on a line that is not one.
fn samples(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (head, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (head, ""),
            };
            (name.to_string(), labels.to_string(), value.to_string())
        })
        .collect()
}

fn value(text: &str, name: &str, labels_contain: &str) -> String {
    samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && l.contains(labels_contain))
        .map(|(_, _, v)| v)
        .unwrap_or_else(|| panic!("no {name}{{{labels_contain}}} in\n{text}"))
}

fn source(ip: [u8; 4], state: u16, reach: u16, poll: i16) -> SourceRow {
    SourceRow {
        data: SourceData {
            ip_addr: Addr::V4(Ipv4Addr::from(ip)),
            poll,
            stratum: 2,
            state,
            mode: 0,
            reachability: reach,
            since_sample: 12,
            latest_meas: -0.000_25,
            latest_meas_err: 0.001_5,
            ..SourceData::default()
        },
        name: format!("ntp{}.example", ip[3]),
        stats: Some(SourceStats {
            n_samples: 8,
            n_runs: 5,
            span_seconds: 448,
            sd: 0.000_1,
            resid_freq_ppm: -0.5,
            skew_ppm: 0.25,
            est_offset: 0.000_02,
            ..SourceStats::default()
        }),
    }
}

#[test]
fn every_family_has_help_and_type_before_its_samples() {
    let text = render(&Snapshot {
        sources: vec![source([192, 0, 2, 1], 0, 0o377, 6)],
        ..Snapshot::default()
    });
    let mut declared = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# HELP ") {
            declared.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = l.strip_prefix("# TYPE ") {
            assert_eq!(rest.split(' ').next().unwrap(), declared.last().unwrap());
        } else {
            let name = l.split(['{', ' ']).next().unwrap();
            assert_eq!(Some(&name.to_string()), declared.last(), "{l}");
        }
    }
    let mut unique = declared.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), declared.len(), "a family is declared twice");
    for n in &declared {
        assert!(n.starts_with("chrony_") || n.starts_with("gnomon_"), "{n}");
        let is_counter = text.contains(&format!("# TYPE {n} counter"));
        assert_eq!(is_counter, n.ends_with("_total"), "{n}");
    }
}

#[test]
fn metric_names_are_chrony_exporters() {
    let text = render(&Snapshot {
        sources: vec![source([192, 0, 2, 1], 0, 0o377, 6)],
        ..Snapshot::default()
    });
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .filter(|n| n.starts_with("chrony_"))
        .collect();
    let want = [
        "chrony_up",
        "chrony_tracking_info",
        "chrony_tracking_last_offset_seconds",
        "chrony_tracking_reference_timestamp_seconds",
        "chrony_tracking_system_time_seconds",
        "chrony_tracking_remote_reference",
        "chrony_tracking_rms_offset_seconds",
        "chrony_tracking_root_delay_seconds",
        "chrony_tracking_root_dispersion_seconds",
        "chrony_tracking_frequency_ppms",
        "chrony_tracking_residual_frequency_ppms",
        "chrony_tracking_skew_ppms",
        "chrony_tracking_update_interval_seconds",
        "chrony_tracking_stratum",
        "chrony_sources_last_sample_age_seconds",
        "chrony_sources_reachability_ratio",
        "chrony_sources_reachability_success",
        "chrony_sources_last_sample_offset_seconds",
        "chrony_sources_last_sample_error_margin_seconds",
        "chrony_sources_polling_interval_seconds",
        "chrony_sources_state_info",
        "chrony_sources_stratum",
        "chrony_sourcestats_samples",
        "chrony_sourcestats_runs",
        "chrony_sourcestats_span_seconds",
        "chrony_sourcestats_stddev",
        "chrony_sourcestats_frequency_ppms",
        "chrony_sourcestats_frequency_skew_ppms",
        "chrony_sourcestats_offset",
        "chrony_serverstats_ntp_packets_received_total",
        "chrony_serverstats_ntp_packets_dropped_total",
        "chrony_serverstats_nts_ke_connections_accepted_total",
        "chrony_serverstats_nts_ke_connections_dropped_total",
        "chrony_serverstats_command_packets_received_total",
        "chrony_serverstats_command_packets_dropped_total",
        "chrony_serverstats_client_log_records_dropped_total",
        "chrony_serverstats_authenticated_ntp_packets_total",
        "chrony_serverstats_interleaved_ntp_packets_total",
        "chrony_serverstats_ntp_daemon_rx_timestamps_total",
        "chrony_serverstats_ntp_daemon_tx_timestamps_total",
        "chrony_serverstats_ntp_kernel_rx_timestamps_total",
        "chrony_serverstats_ntp_kernel_tx_timestamps_total",
        "chrony_serverstats_ntp_hw_rx_timestamps_total",
        "chrony_serverstats_ntp_hw_tx_timestamps_total",
        "chrony_serverstats_ntp_timestamps_held",
        "chrony_serverstats_ntp_timestamp_span_seconds",
    ];
    assert_eq!(names, want);
}

#[test]
fn unsynchronised_tracking_has_zero_refid_and_no_remote_reference() {
    let text = render(&Snapshot {
        tracking: Tracking {
            leap_status: 3,
            root_delay: 1.0,
            root_dispersion: 1.0,
            ..Tracking::default()
        },
        ..Snapshot::default()
    });
    assert!(text.contains(
        "chrony_tracking_info{tracking_address=\"\",tracking_name=\"\",tracking_refid=\"00000000\"} 1\n"
    ));
    assert_eq!(value(&text, "chrony_tracking_remote_reference", ""), "0");
    assert_eq!(value(&text, "chrony_tracking_stratum", ""), "0");
    assert_eq!(value(&text, "chrony_tracking_root_delay_seconds", ""), "1");
    assert_eq!(value(&text, "chrony_up", ""), "1");
}

#[test]
fn local_reference_is_not_remote() {
    let text = render(&Snapshot {
        tracking: Tracking {
            ref_id: LOCAL_REFID,
            stratum: 10,
            ref_time: Timespec {
                sec: 1_700_000_000,
                nsec: 500_000_000,
            },
            ..Tracking::default()
        },
        ..Snapshot::default()
    });
    assert!(text.contains("tracking_refid=\"7F7F0101\""));
    assert_eq!(value(&text, "chrony_tracking_remote_reference", ""), "0");
    assert_eq!(value(&text, "chrony_tracking_stratum", ""), "10");
    assert_eq!(
        value(&text, "chrony_tracking_reference_timestamp_seconds", ""),
        "1700000000.5"
    );
}

#[test]
fn tracking_an_ntp_source_names_it_and_is_remote() {
    let text = render(&Snapshot {
        tracking: Tracking {
            ref_id: 0xC000_0201,
            ip_addr: Addr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            stratum: 3,
            last_offset: -1.5e-6,
            freq_ppm: -12.25,
            ..Tracking::default()
        },
        ..Snapshot::default()
    });
    assert!(text.contains(
        "{tracking_address=\"192.0.2.1\",tracking_name=\"192.0.2.1\",tracking_refid=\"C0000201\"}"
    ));
    assert_eq!(value(&text, "chrony_tracking_remote_reference", ""), "1");
    assert_eq!(
        value(&text, "chrony_tracking_last_offset_seconds", "").parse::<f64>(),
        Ok(-1.5e-6)
    );
    assert_eq!(value(&text, "chrony_tracking_frequency_ppms", ""), "-12.25");
}

#[test]
fn sources_report_reachability_poll_state_and_stats() {
    let mut unresolved = source([0, 0, 0, 0], 1, 0, 4);
    unresolved.data.ip_addr = Addr::Unspec;
    let text = render(&Snapshot {
        sources: vec![
            source([192, 0, 2, 1], 0, 0o377, 6),
            source([192, 0, 2, 2], 5, 0b101, 10),
            unresolved,
        ],
        ..Snapshot::default()
    });
    let a = "source_address=\"192.0.2.1\",source_name=\"ntp1.example\"";
    let b = "source_address=\"192.0.2.2\"";
    assert_eq!(value(&text, "chrony_sources_reachability_ratio", a), "1");
    assert_eq!(value(&text, "chrony_sources_reachability_ratio", b), "0.25");
    assert_eq!(value(&text, "chrony_sources_reachability_success", b), "1");
    assert_eq!(
        value(&text, "chrony_sources_polling_interval_seconds", a),
        "64"
    );
    assert_eq!(
        value(&text, "chrony_sources_polling_interval_seconds", b),
        "1024"
    );
    assert_eq!(
        value(&text, "chrony_sources_last_sample_age_seconds", a),
        "12"
    );
    assert_eq!(
        value(&text, "chrony_sources_last_sample_offset_seconds", a),
        "-0.00025"
    );
    assert!(text.contains(&format!(
        "chrony_sources_state_info{{{a},source_state=\"sync\",source_mode=\"client\"}} 1\n"
    )));
    assert!(text.contains("source_state=\"outlier\""));
    assert_eq!(value(&text, "chrony_sourcestats_samples", a), "8");
    assert_eq!(value(&text, "chrony_sourcestats_span_seconds", b), "448");
    assert_eq!(value(&text, "chrony_sourcestats_frequency_ppms", a), "-0.5");
    // Every source is in `sources`; the unresolved one is left out of `sourcestats`.
    let count = |name: &str| samples(&text).iter().filter(|s| s.0 == name).count();
    assert_eq!(count("chrony_sources_stratum"), 3);
    assert_eq!(count("chrony_sourcestats_samples"), 2);
}

#[test]
fn serverstats_counters_carry_the_report_values() {
    let text = render(&Snapshot {
        server: ServerStats {
            ntp_hits: 7,
            ntp_drops: 2,
            cmd_hits: 3,
            log_drops: 1,
            ntp_kernel_rx_timestamps: 7,
            ntp_daemon_tx_timestamps: 5,
            ..ServerStats::default()
        },
        extras: Extras {
            core: gnomon_core::server::ServerStats {
                malformed: 4,
                access_denied: 6,
                ntp_kod_sent: 1,
                ..Default::default()
            },
            send_failures: 9,
        },
        ..Snapshot::default()
    });
    let v = |n: &str| value(&text, n, "");
    assert_eq!(v("chrony_serverstats_ntp_packets_received_total"), "7");
    assert_eq!(v("chrony_serverstats_ntp_packets_dropped_total"), "2");
    assert_eq!(v("chrony_serverstats_command_packets_received_total"), "3");
    assert_eq!(
        v("chrony_serverstats_client_log_records_dropped_total"),
        "1"
    );
    assert_eq!(v("chrony_serverstats_ntp_kernel_rx_timestamps_total"), "7");
    assert_eq!(v("chrony_serverstats_ntp_daemon_tx_timestamps_total"), "5");
    assert_eq!(
        v("chrony_serverstats_nts_ke_connections_accepted_total"),
        "0"
    );
    let ignored = "gnomon_serverstats_ntp_requests_ignored_total";
    assert_eq!(value(&text, ignored, "reason=\"malformed\""), "4");
    assert_eq!(value(&text, ignored, "reason=\"access_denied\""), "6");
    assert_eq!(v("gnomon_serverstats_ntp_kod_responses_total"), "1");
    assert_eq!(v("gnomon_serverstats_ntp_send_failures_total"), "9");
}

#[test]
fn label_values_and_help_are_escaped() {
    assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
    let mut row = source([192, 0, 2, 9], 0, 1, 0);
    row.name = "evil\"} 1\nchrony_up 0".into();
    let text = render(&Snapshot {
        sources: vec![row],
        ..Snapshot::default()
    });
    assert!(!text.contains("\nchrony_up 0"));
    assert_eq!(
        samples(&text).iter().filter(|s| s.0 == "chrony_up").count(),
        1
    );
}

#[test]
fn special_floats_use_the_text_format_spelling() {
    assert_eq!(number(f64::NAN), "NaN");
    assert_eq!(number(f64::INFINITY), "+Inf");
    assert_eq!(number(f64::NEG_INFINITY), "-Inf");
    assert_eq!(number(0.125), "0.125");
    assert_eq!(number(3.0), "3");
    assert_eq!(number(1e-9).parse::<f64>(), Ok(1e-9));
}

#[test]
fn unknown_mode_and_state_codes_are_named_with_their_number() {
    assert_eq!(mode_word(2), "ref");
    assert_eq!(mode_word(9), "unknown (9)");
    assert_eq!(state_word(3), "jittery");
    assert_eq!(state_word(6), "unknown (6)");
    assert_eq!(address_label(&Addr::Id(42)), "ID#0000000042");
}
