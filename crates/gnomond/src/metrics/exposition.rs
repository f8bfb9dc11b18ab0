//! Prometheus text exposition (format 0.0.4) of the daemon's monitoring reports, with
//! chrony_exporter's metric names, labels and types (namespace `chrony`, subsystems
//! `tracking`, `sources`, `sourcestats`, `serverstats`), so dashboards and alerts written for
//! chronyd + chrony_exporter work unchanged. Gnomon's extras use the `gnomon_` prefix, which
//! chrony_exporter can never collide with.
//!
//! Sans-IO: the input is the same cmdmon report structs `chronyc` (and chrony_exporter, over
//! cmdmon) reads, so every value agrees with `gnomonc tracking`/`sources`/`sourcestats`/
//! `serverstats` by construction; the output is the response body.

use gnomon_cmdmon::{Addr, ServerStats, SourceData, SourceStats, Tracking};
use std::fmt::Write;

/// The reference ID chrony gives its `local` reference (127.127.1.1).
const LOCAL_REFID: u32 = 0x7F7F_0101;

/// One source of `sources`, with its `sourcestats` row when the engine has one.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    /// SOURCE_DATA.
    pub data: SourceData,
    /// The name the source was configured with (empty when unknown).
    pub name: String,
    /// SOURCESTATS, if the engine answered for this source.
    pub stats: Option<SourceStats>,
}

/// Gnomon's own counters beyond chrony's `serverstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// The NTP engine's counters (drops by reason, KoD responses).
    pub core: gnomon_core::server::ServerStats,
    /// Replies the kernel refused to send.
    pub send_failures: u64,
}

/// Everything one scrape reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// TRACKING.
    pub tracking: Tracking,
    /// The sources in the engine's order.
    pub sources: Vec<SourceRow>,
    /// SERVER_STATS.
    pub server: ServerStats,
    /// Gnomon's extras.
    pub extras: Extras,
}

/// Prometheus metric types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

/// Appends a family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: Kind, help: &str) {
    let kind = match kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Appends one sample line.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&escape_label(v));
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&number(value));
    out.push('\n');
}

/// A family with a single unlabelled sample.
fn single(out: &mut String, name: &str, kind: Kind, help: &str, value: f64) {
    family(out, name, kind, help);
    sample(out, name, &[], value);
}

/// A sample value as the text format spells it (Go's ParseFloat syntax: `NaN`, `+Inf`, `-Inf`).
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's shortest round-trip form; never an exponent, which the format also allows.
        format!("{v}")
    }
}

/// HELP text escaping: backslash and line feed.
pub fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label value escaping: backslash, double quote and line feed.
pub fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// An address as chrony_exporter labels it: the IP, `ID#NNNNNNNNNN` for an unresolved source,
/// empty when unspecified.
pub fn address_label(a: &Addr) -> String {
    match a {
        Addr::Unspec => String::new(),
        Addr::V4(ip) => ip.to_string(),
        Addr::V6(ip) => ip.to_string(),
        Addr::Id(id) => format!("ID#{id:010}"),
    }
}

/// The printable characters of a reference ID (how chrony shows a refclock's or `LOCL`'s ID).
fn refid_text(refid: u32) -> String {
    refid
        .to_be_bytes()
        .iter()
        .filter(|b| b.is_ascii_graphic())
        .map(|b| char::from(*b))
        .collect()
}

/// chrony_exporter's source mode words (`client`, `peer`, `ref`).
pub fn mode_word(mode: u16) -> String {
    match mode {
        0 => "client".into(),
        1 => "peer".into(),
        2 => "ref".into(),
        m => format!("unknown ({m})"),
    }
}

/// chrony_exporter's source state words, by chrony's wire code 0–5.
pub fn state_word(state: u16) -> String {
    match state {
        0 => "sync".into(),
        1 => "unreach".into(),
        2 => "falseticker".into(),
        3 => "jittery".into(),
        4 => "candidate".into(),
        5 => "outlier".into(),
        s => format!("unknown ({s})"),
    }
}

/// The `tracking_name` label: the source's address when there is one, else the printable
/// part of the reference ID, as chrony_exporter names it without DNS lookups.
fn tracking_name(t: &Tracking) -> String {
    match t.ip_addr {
        Addr::V4(_) | Addr::V6(_) => address_label(&t.ip_addr),
        _ => refid_text(t.ref_id),
    }
}

/// Whether the clock follows a real time source (not unsynchronised, not `local`).
fn remote_reference(t: &Tracking) -> bool {
    let local_ip = Addr::V4(std::net::Ipv4Addr::new(127, 127, 1, 1));
    t.ref_id != 0 && t.ref_id != LOCAL_REFID && t.ip_addr != local_ip
}

fn render_tracking(out: &mut String, t: &Tracking) {
    let name = "chrony_tracking_info";
    family(out, name, Kind::Gauge, "Chrony tracking info");
    let refid = format!("{:08X}", t.ref_id);
    sample(
        out,
        name,
        &[
            ("tracking_address", &address_label(&t.ip_addr)),
            ("tracking_name", &tracking_name(t)),
            ("tracking_refid", &refid),
        ],
        1.0,
    );
    let g = Kind::Gauge;
    single(
        out,
        "chrony_tracking_last_offset_seconds",
        g,
        "Chrony tracking last offset in seconds",
        t.last_offset,
    );
    single(
        out,
        "chrony_tracking_reference_timestamp_seconds",
        g,
        "Chrony tracking reference timestamp (time of the last clock update), Unix seconds",
        t.ref_time.as_secs_f64(),
    );
    single(
        out,
        "chrony_tracking_system_time_seconds",
        g,
        "Chrony tracking current correction of the system time, in seconds",
        t.current_correction,
    );
    single(
        out,
        "chrony_tracking_remote_reference",
        g,
        "Chrony tracking is connected to a remote source",
        if remote_reference(t) { 1.0 } else { 0.0 },
    );
    single(
        out,
        "chrony_tracking_rms_offset_seconds",
        g,
        "Chrony tracking long-term average of the offset",
        t.rms_offset,
    );
    single(
        out,
        "chrony_tracking_root_delay_seconds",
        g,
        "Chrony tracking total of the network path delays to the stratum-1 source, in seconds",
        t.root_delay,
    );
    single(
        out,
        "chrony_tracking_root_dispersion_seconds",
        g,
        "Chrony tracking total of all measurement errors to the NTP root, in seconds",
        t.root_dispersion,
    );
    single(
        out,
        "chrony_tracking_frequency_ppms",
        g,
        "Rate by which the system clock would be wrong if it were not corrected, in PPMs",
        t.freq_ppm,
    );
    single(
        out,
        "chrony_tracking_residual_frequency_ppms",
        g,
        "Difference between the frequency the selected source suggests and the one in use, in PPMs",
        t.resid_freq_ppm,
    );
    single(
        out,
        "chrony_tracking_skew_ppms",
        g,
        "The estimated error bound on the frequency, in PPMs",
        t.skew_ppm,
    );
    single(
        out,
        "chrony_tracking_update_interval_seconds",
        g,
        "The interval between the last two clock updates, in seconds",
        t.last_update_interval,
    );
    single(
        out,
        "chrony_tracking_stratum",
        g,
        "Chrony tracking client stratum",
        f64::from(t.stratum),
    );
}

/// One labelled family over every source row that `value` gives a value for.
fn per_source<F>(out: &mut String, rows: &[SourceRow], name: &str, help: &str, value: F)
where
    F: Fn(&SourceRow) -> Option<f64>,
{
    family(out, name, Kind::Gauge, help);
    for r in rows {
        if let Some(v) = value(r) {
            let addr = address_label(&r.data.ip_addr);
            sample(
                out,
                name,
                &[("source_address", &addr), ("source_name", &r.name)],
                v,
            );
        }
    }
}

fn render_sources(out: &mut String, rows: &[SourceRow]) {
    per_source(
        out,
        rows,
        "chrony_sources_last_sample_age_seconds",
        "Chrony sources last good sample age in seconds",
        |r| Some(f64::from(r.data.since_sample)),
    );
    per_source(
        out,
        rows,
        "chrony_sources_reachability_ratio",
        "Chrony sources ratio of the last 8 polls that got a valid reply",
        |r| Some(f64::from((r.data.reachability & 0xFF).count_ones()) / 8.0),
    );
    per_source(
        out,
        rows,
        "chrony_sources_reachability_success",
        "Chrony sources last poll got a valid reply (1) or not (0)",
        |r| Some(f64::from(r.data.reachability & 1)),
    );
    per_source(
        out,
        rows,
        "chrony_sources_last_sample_offset_seconds",
        "Chrony sources last sample offset in seconds",
        |r| Some(r.data.latest_meas),
    );
    per_source(
        out,
        rows,
        "chrony_sources_last_sample_error_margin_seconds",
        "Chrony sources last sample margin of error in seconds",
        |r| Some(r.data.latest_meas_err),
    );
    per_source(
        out,
        rows,
        "chrony_sources_polling_interval_seconds",
        "Chrony sources polling interval in seconds",
        |r| Some(2f64.powi(i32::from(r.data.poll))),
    );
    let name = "chrony_sources_state_info";
    family(out, name, Kind::Gauge, "Chrony sources state info");
    for r in rows {
        let addr = address_label(&r.data.ip_addr);
        sample(
            out,
            name,
            &[
                ("source_address", &addr),
                ("source_name", &r.name),
                ("source_state", &state_word(r.data.state)),
                ("source_mode", &mode_word(r.data.mode)),
            ],
            1.0,
        );
    }
    per_source(
        out,
        rows,
        "chrony_sources_stratum",
        "Chrony sources stratum",
        |r| Some(f64::from(r.data.stratum)),
    );
}

fn render_sourcestats(out: &mut String, rows: &[SourceRow]) {
    // chrony_exporter skips sources whose address is not known yet.
    let known: Vec<SourceRow> = rows
        .iter()
        .filter(|r| r.data.ip_addr != Addr::Unspec && r.stats.is_some())
        .cloned()
        .collect();
    let st = |r: &SourceRow| r.stats.unwrap_or_default();
    per_source(
        out,
        &known,
        "chrony_sourcestats_samples",
        "The number of sample points currently being retained for the server (NP)",
        |r| Some(f64::from(st(r).n_samples)),
    );
    per_source(
        out,
        &known,
        "chrony_sourcestats_runs",
        "The number of runs of residuals having the same sign following the last regression (NR)",
        |r| Some(f64::from(st(r).n_runs)),
    );
    per_source(
        out,
        &known,
        "chrony_sourcestats_span_seconds",
        "The interval between the oldest and newest samples in seconds",
        |r| Some(f64::from(st(r).span_seconds)),
    );
    per_source(
        out,
        &known,
        "chrony_sourcestats_stddev",
        "The estimated sample standard deviation, in seconds",
        |r| Some(st(r).sd),
    );
    per_source(
        out,
        &known,
        "chrony_sourcestats_frequency_ppms",
        "The estimated residual frequency for the server, in parts per million",
        |r| Some(st(r).resid_freq_ppm),
    );
    per_source(
        out,
        &known,
        "chrony_sourcestats_frequency_skew_ppms",
        "The estimated error bounds on the frequency, in parts per million",
        |r| Some(st(r).skew_ppm),
    );
    per_source(
        out,
        &known,
        "chrony_sourcestats_offset",
        "The estimated offset of the source, in seconds",
        |r| Some(st(r).est_offset),
    );
}

fn render_serverstats(out: &mut String, s: &ServerStats) {
    let c = Kind::Counter;
    let counters: [(&str, &str, u64); 15] = [
        (
            "chrony_serverstats_ntp_packets_received_total",
            "The number of valid NTP requests received by the server.",
            s.ntp_hits,
        ),
        (
            "chrony_serverstats_ntp_packets_dropped_total",
            "The number of NTP requests dropped by the server due to rate limiting.",
            s.ntp_drops,
        ),
        (
            "chrony_serverstats_nts_ke_connections_accepted_total",
            "The number of NTS-KE connections accepted by the server.",
            s.nke_hits,
        ),
        (
            "chrony_serverstats_nts_ke_connections_dropped_total",
            "The number of NTS-KE connections dropped by the server due to rate limiting.",
            s.nke_drops,
        ),
        (
            "chrony_serverstats_command_packets_received_total",
            "The number of command requests received by the server.",
            s.cmd_hits,
        ),
        (
            "chrony_serverstats_command_packets_dropped_total",
            "The number of command requests dropped by the server due to rate limiting.",
            s.cmd_drops,
        ),
        (
            "chrony_serverstats_client_log_records_dropped_total",
            "The number of client log records dropped by the server to limit the memory use.",
            s.log_drops,
        ),
        (
            "chrony_serverstats_authenticated_ntp_packets_total",
            "The number of received NTP requests that were authenticated (with a symmetric key or NTS).",
            s.ntp_auth_hits,
        ),
        (
            "chrony_serverstats_interleaved_ntp_packets_total",
            "The number of received NTP requests that were detected to be in the interleaved mode.",
            s.ntp_interleaved_hits,
        ),
        (
            "chrony_serverstats_ntp_daemon_rx_timestamps_total",
            "The number of NTP responses whose receive timestamp was captured by the daemon.",
            s.ntp_daemon_rx_timestamps,
        ),
        (
            "chrony_serverstats_ntp_daemon_tx_timestamps_total",
            "The number of NTP responses whose transmit timestamp was captured by the daemon.",
            s.ntp_daemon_tx_timestamps,
        ),
        (
            "chrony_serverstats_ntp_kernel_rx_timestamps_total",
            "The number of NTP responses whose receive timestamp was captured by the kernel.",
            s.ntp_kernel_rx_timestamps,
        ),
        (
            "chrony_serverstats_ntp_kernel_tx_timestamps_total",
            "The number of NTP responses whose transmit timestamp was captured by the kernel.",
            s.ntp_kernel_tx_timestamps,
        ),
        (
            "chrony_serverstats_ntp_hw_rx_timestamps_total",
            "The number of NTP responses whose receive timestamp was captured by the NIC.",
            s.ntp_hw_rx_timestamps,
        ),
        (
            "chrony_serverstats_ntp_hw_tx_timestamps_total",
            "The number of NTP responses whose transmit timestamp was captured by the NIC.",
            s.ntp_hw_tx_timestamps,
        ),
    ];
    for (name, help, v) in counters {
        single(out, name, c, help, v as f64);
    }
    single(
        out,
        "chrony_serverstats_ntp_timestamps_held",
        Kind::Gauge,
        "The number of pairs of receive and transmit timestamps held for interleaved-mode clients.",
        s.ntp_timestamps as f64,
    );
    single(
        out,
        "chrony_serverstats_ntp_timestamp_span_seconds",
        Kind::Gauge,
        "The interval covered by the currently held NTP timestamps, in seconds.",
        s.ntp_span_seconds as f64,
    );
}

fn render_extras(out: &mut String, e: &Extras) {
    let name = "gnomon_build_info";
    family(out, name, Kind::Gauge, "Gnomon daemon version (always 1)");
    sample(out, name, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);

    let name = "gnomon_serverstats_ntp_requests_ignored_total";
    family(
        out,
        name,
        Kind::Counter,
        "NTP requests the server dropped for a reason other than rate limiting, by reason.",
    );
    let c = &e.core;
    for (reason, v) in [
        ("malformed", c.malformed),
        ("bad_version", c.bad_version),
        ("bad_mode", c.bad_mode),
        ("access_denied", c.access_denied),
        ("auth_failed", c.auth_failed),
        ("response_buffer", c.response_buffer),
    ] {
        sample(out, name, &[("reason", reason)], v as f64);
    }
    single(
        out,
        "gnomon_serverstats_ntp_kod_responses_total",
        Kind::Counter,
        "Rate-limited NTP requests answered with a RATE kiss-o'-death instead of being dropped.",
        c.ntp_kod_sent as f64,
    );
    single(
        out,
        "gnomon_serverstats_ntp_send_failures_total",
        Kind::Counter,
        "NTP responses the kernel refused to send.",
        e.send_failures as f64,
    );
}

/// The response body for one scrape.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8192 + 2048 * s.sources.len());
    single(
        &mut out,
        "chrony_up",
        Kind::Gauge,
        "Whether the chrony server is up.",
        1.0,
    );
    render_tracking(&mut out, &s.tracking);
    render_sources(&mut out, &s.sources);
    render_sourcestats(&mut out, &s.sources);
    render_serverstats(&mut out, &s.server);
    render_extras(&mut out, &s.extras);
    out
}

#[cfg(test)]
mod tests;
