//! Daemon-wide reports: `tracking`, `activity`, `serverstats`, `clients`, `rtcdata`,
//! `smoothing`, `manual list` and `waitsync` (features.md §3.2, §3.5–§3.7, §3.9), each one
//! struct rendered as chronyc text, `-c` CSV or JSON.

use crate::client_pages::ClientPages;
use crate::fmt;
use crate::session::{CmdError, Mode, Session};
use crate::sources::emit;
use gnomon_cmdmon::{
    Activity, Addr, ClientAccess, ReplyBody, ReplyCode, Request, ServerStats, Tracking,
    MAX_CLIENT_ACCESSES,
};
use serde_json::{json, Value};

/// `tracking`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingReport {
    pub t: Tracking,
    /// Reference name: the source's address (or host name), or the refid text.
    pub name: String,
}

impl TrackingReport {
    pub fn new(s: &mut Session, t: Tracking) -> TrackingReport {
        let name = match t.ip_addr {
            Addr::V4(_) | Addr::V6(_) => {
                configured_name(s, t.ip_addr).unwrap_or_else(|| s.name(&t.ip_addr))
            }
            _ => fmt::refid_text(t.ref_id),
        };
        TrackingReport { t, name }
    }

    pub fn text(&self) -> String {
        let t = &self.t;
        [
            format!("Reference ID    : {:08X} ({})", t.ref_id, self.name),
            format!("Stratum         : {}", t.stratum),
            format!("Ref time (UTC)  : {}", fmt::utc_time(t.ref_time.sec)),
            format!(
                "System time     : {:.9} seconds {} of NTP time",
                t.current_correction.abs(),
                // chronyc says "slow" only for a positive correction: zero reads "fast".
                if t.current_correction > 0.0 {
                    "slow"
                } else {
                    "fast"
                }
            ),
            format!("Last offset     : {:+.9} seconds", t.last_offset),
            format!("RMS offset      : {:.9} seconds", t.rms_offset),
            format!(
                "Frequency       : {:.3} ppm {}",
                t.freq_ppm.abs(),
                // ...and "fast" only for a positive frequency: zero reads "slow".
                if t.freq_ppm > 0.0 { "fast" } else { "slow" }
            ),
            format!("Residual freq   : {:+.3} ppm", t.resid_freq_ppm),
            format!("Skew            : {:.3} ppm", t.skew_ppm),
            format!("Root delay      : {:.9} seconds", t.root_delay),
            format!("Root dispersion : {:.9} seconds", t.root_dispersion),
            format!("Update interval : {:.1} seconds", t.last_update_interval),
            format!("Leap status     : {}", fmt::leap(t.leap_status)),
        ]
        .join("\n")
    }

    pub fn csv(&self) -> String {
        let t = &self.t;
        format!(
            "{:08X},{},{},{}.{:09},{:.9},{:.9},{:.9},{:.3},{:.3},{:.3},{:.9},{:.9},{:.1},{}",
            t.ref_id,
            self.name,
            t.stratum,
            t.ref_time.sec,
            t.ref_time.nsec,
            t.current_correction,
            t.last_offset,
            t.rms_offset,
            t.freq_ppm,
            t.resid_freq_ppm,
            t.skew_ppm,
            t.root_delay,
            t.root_dispersion,
            t.last_update_interval,
            fmt::leap(t.leap_status)
        )
    }

    pub fn json(&self) -> Value {
        let t = &self.t;
        json!({
            "reference_id": format!("{:08X}", t.ref_id), "reference_name": self.name,
            "stratum": t.stratum, "reference_time_s": t.ref_time.as_secs_f64(),
            "system_time_offset_s": t.current_correction, "last_offset_s": t.last_offset,
            "rms_offset_s": t.rms_offset, "frequency_ppm": t.freq_ppm,
            "residual_frequency_ppm": t.resid_freq_ppm, "skew_ppm": t.skew_ppm,
            "root_delay_s": t.root_delay, "root_dispersion_s": t.root_dispersion,
            "update_interval_s": t.last_update_interval, "leap": fmt::leap(t.leap_status),
        })
    }
}

/// With `-N`, the name the reference source was configured with.
fn configured_name(s: &mut Session, ip: Addr) -> Option<String> {
    if !s.source_names {
        return None;
    }
    match s.request(&Request::NtpSourceName { ip }, ReplyCode::NtpSourceName) {
        Ok(ReplyBody::NtpSourceName { name }) => Some(String::from_utf8_lossy(&name).into_owned()),
        _ => None,
    }
}

pub fn fetch_tracking(s: &mut Session) -> Result<Tracking, CmdError> {
    match s.request(&Request::Tracking, ReplyCode::Tracking)? {
        ReplyBody::Tracking(t) => Ok(t),
        _ => Err(CmdError::BadReply),
    }
}

/// `tracking`.
pub fn tracking(s: &mut Session) -> Result<(), CmdError> {
    let t = fetch_tracking(s)?;
    let r = TrackingReport::new(s, t);
    match s.mode {
        Mode::Text => s.line(&r.text()),
        Mode::Csv => s.line(&r.csv()),
        Mode::Json => s.line(&r.json().to_string()),
    }
    Ok(())
}

/// `activity`.
pub fn activity(s: &mut Session) -> Result<(), CmdError> {
    let ReplyBody::Activity(a) = s.request(&Request::Activity, ReplyCode::Activity)? else {
        return Err(CmdError::BadReply);
    };
    let Activity {
        online,
        offline,
        burst_online,
        burst_offline,
        unresolved,
    } = a;
    match s.mode {
        Mode::Text => {
            s.line("200 OK");
            s.line(&format!("{online} sources online"));
            s.line(&format!("{offline} sources offline"));
            s.line(&format!(
                "{burst_online} sources doing burst (return to online)"
            ));
            s.line(&format!(
                "{burst_offline} sources doing burst (return to offline)"
            ));
            s.line(&format!("{unresolved} sources with unknown address"));
        }
        Mode::Csv => s.line(&format!(
            "{online},{offline},{burst_online},{burst_offline},{unresolved}"
        )),
        Mode::Json => s.line(
            &json!({"online": online, "offline": offline, "burst_online": burst_online,
                    "burst_offline": burst_offline, "unresolved": unresolved})
            .to_string(),
        ),
    }
    Ok(())
}

const SERVERSTATS_LABELS: [(&str, &str); 17] = [
    ("NTP packets received       ", "ntp_packets_received"),
    ("NTP packets dropped        ", "ntp_packets_dropped"),
    ("Command packets received   ", "command_packets_received"),
    ("Command packets dropped    ", "command_packets_dropped"),
    ("Client log records dropped ", "client_log_records_dropped"),
    ("NTS-KE connections accepted", "nts_ke_connections_accepted"),
    ("NTS-KE connections dropped ", "nts_ke_connections_dropped"),
    ("Authenticated NTP packets  ", "authenticated_ntp_packets"),
    ("Interleaved NTP packets    ", "interleaved_ntp_packets"),
    ("NTP timestamps held        ", "ntp_timestamps_held"),
    ("NTP timestamp span         ", "ntp_timestamp_span_s"),
    ("NTP daemon RX timestamps   ", "ntp_daemon_rx_timestamps"),
    ("NTP daemon TX timestamps   ", "ntp_daemon_tx_timestamps"),
    ("NTP kernel RX timestamps   ", "ntp_kernel_rx_timestamps"),
    ("NTP kernel TX timestamps   ", "ntp_kernel_tx_timestamps"),
    ("NTP hardware RX timestamps ", "ntp_hardware_rx_timestamps"),
    ("NTP hardware TX timestamps ", "ntp_hardware_tx_timestamps"),
];

/// Values in print order (the wire order differs: hits and drops are grouped by kind).
fn serverstats_values(v: &ServerStats) -> [u64; 17] {
    [
        v.ntp_hits,
        v.ntp_drops,
        v.cmd_hits,
        v.cmd_drops,
        v.log_drops,
        v.nke_hits,
        v.nke_drops,
        v.ntp_auth_hits,
        v.ntp_interleaved_hits,
        v.ntp_timestamps,
        v.ntp_span_seconds,
        v.ntp_daemon_rx_timestamps,
        v.ntp_daemon_tx_timestamps,
        v.ntp_kernel_rx_timestamps,
        v.ntp_kernel_tx_timestamps,
        v.ntp_hw_rx_timestamps,
        v.ntp_hw_tx_timestamps,
    ]
}

/// `serverstats`: 11 lines from SERVER_STATS3 (what chronyc 4.3 asks for).
pub fn serverstats(s: &mut Session) -> Result<(), CmdError> {
    let (stats, n) = match s.request(&Request::ServerStats, ReplyCode::ServerStats3)? {
        ReplyBody::ServerStats3(v) => (v, 11),
        _ => return Err(CmdError::BadReply),
    };
    let vals = serverstats_values(&stats);
    match s.mode {
        Mode::Text => {
            for i in 0..n {
                s.line(&format!("{}: {}", SERVERSTATS_LABELS[i].0, vals[i]));
            }
        }
        Mode::Csv => s.line(
            &vals[..n]
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Mode::Json => {
            let mut m = serde_json::Map::new();
            for i in 0..n {
                m.insert(SERVERSTATS_LABELS[i].1.to_string(), json!(vals[i]));
            }
            s.line(&Value::Object(m).to_string());
        }
    }
    Ok(())
}

/// One `clients` row (NTP columns, then command or, with `-k`, NTS-KE columns).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    pub name: String,
    pub c: ClientAccess,
    pub nke: bool,
}

impl ClientRow {
    fn second(&self) -> (u32, u32, i8, u32) {
        let c = &self.c;
        if self.nke {
            (c.nke_hits, c.nke_drops, c.nke_interval, c.last_nke_hit_ago)
        } else {
            (c.cmd_hits, c.cmd_drops, c.cmd_interval, c.last_cmd_hit_ago)
        }
    }
    pub fn text(&self) -> String {
        let c = &self.c;
        let (h, d, i, l) = self.second();
        format!(
            "{:<25}  {:6}  {:5}  {}  {}  {}  {:6}  {:5}  {}  {}",
            self.name,
            c.ntp_hits,
            c.ntp_drops,
            fmt::client_interval(c.ntp_interval),
            fmt::client_interval(c.ntp_timeout_interval),
            fmt::interval(c.last_ntp_hit_ago),
            h,
            d,
            fmt::client_interval(i),
            fmt::interval(l)
        )
    }
    pub fn csv(&self) -> String {
        let c = &self.c;
        let (h, d, i, l) = self.second();
        format!(
            "{},{},{},{},{},{},{},{},{},{}",
            self.name,
            c.ntp_hits,
            c.ntp_drops,
            c.ntp_interval,
            c.ntp_timeout_interval,
            c.last_ntp_hit_ago,
            h,
            d,
            i,
            l
        )
    }
    pub fn json(&self) -> Value {
        let c = &self.c;
        let never = |v: u32| (v != u32::MAX).then_some(v);
        let log2 = |v: i8| (v != 127).then_some(v);
        json!({
            "address": self.name,
            "ntp_hits": c.ntp_hits, "ntp_drops": c.ntp_drops, "ntp_interval_log2": log2(c.ntp_interval),
            "ntp_timeout_interval_log2": log2(c.ntp_timeout_interval), "ntp_last_s": never(c.last_ntp_hit_ago),
            "nts_ke_hits": c.nke_hits, "nts_ke_drops": c.nke_drops, "nts_ke_interval_log2": log2(c.nke_interval),
            "nts_ke_last_s": never(c.last_nke_hit_ago),
            "cmd_hits": c.cmd_hits, "cmd_drops": c.cmd_drops, "cmd_interval_log2": log2(c.cmd_interval),
            "cmd_last_s": never(c.last_cmd_hit_ago),
        })
    }
}

/// `clients [-p N] [-k] [-r]`: pages through the client log 8 records at a time.
pub fn clients(s: &mut Session, min_hits: u32, nke: bool, reset: bool) -> Result<(), CmdError> {
    if s.text() {
        s.line(if nke {
            "Hostname                      NTP   Drop Int IntL Last  NTS-KE   Drop Int  Last"
        } else {
            "Hostname                      NTP   Drop Int IntL Last     Cmd   Drop Int  Last"
        });
        s.line(&"=".repeat(79));
    }
    let page = |first_index: u32| Request::ClientAccessesByIndex {
        first_index,
        n_clients: MAX_CLIENT_ACCESSES as u32,
        min_hits,
        reset: u32::from(reset),
    };
    let as_page = |body: ReplyBody| match body {
        ReplyBody::ClientAccesses(p) => Ok(p),
        _ => Err(CmdError::BadReply),
    };
    let accesses = if reset {
        // Sequential like chronyc: each slot is reported (and reset) exactly once.
        let mut rows = Vec::new();
        let mut first_index = 0u32;
        // Bounded: each page advances first_index.
        loop {
            let p = as_page(s.request(&page(first_index), ReplyCode::ClientAccessesByIndex3)?)?;
            rows.extend(p.clients.iter().copied());
            if p.next_index <= first_index || p.next_index >= p.n_indices {
                break rows;
            }
            first_index = p.next_index;
        }
    } else {
        let first = as_page(s.request(&page(0), ReplyCode::ClientAccessesByIndex3)?)?;
        let mut pages = ClientPages::new(first);
        // Bounded: every round merges at least one more slot or ends the walk.
        while !pages.is_done() {
            let firsts = pages.wanted();
            let reqs: Vec<Request> = firsts.iter().map(|&f| page(f)).collect();
            let (bodies, failed) = s.request_many(&reqs, ReplyCode::ClientAccessesByIndex3);
            if let Some(e) = failed {
                return Err(e);
            }
            for (f, body) in firsts.into_iter().zip(bodies) {
                pages.add(f, as_page(body)?);
            }
        }
        pages.into_rows()
    };
    let mut rows = Vec::with_capacity(accesses.len());
    for c in accesses {
        let name = s.name_in(&c.ip, 25);
        rows.push(ClientRow { name, c, nke });
    }
    emit(
        s,
        "clients",
        &rows,
        ClientRow::text,
        ClientRow::csv,
        ClientRow::json,
    );
    Ok(())
}

/// `rtcdata`.
pub fn rtcdata(s: &mut Session) -> Result<(), CmdError> {
    let ReplyBody::Rtc(r) = s.request(&Request::RtcReport, ReplyCode::Rtc)? else {
        return Err(CmdError::BadReply);
    };
    match s.mode {
        Mode::Text => {
            s.line(&format!("RTC ref time (UTC) : {}", fmt::utc_time(r.ref_time.sec)));
            s.line(&format!("Number of samples  : {}", r.n_samples));
            s.line(&format!("Number of runs     : {}", r.n_runs));
            s.line(&format!("Sample span period : {}", fmt::interval(r.span_seconds)));
            s.line(&format!("RTC is fast by     : {:12.6} seconds", r.rtc_seconds_fast));
            s.line(&format!("RTC gains time at  : {:9.3} ppm", r.rtc_gain_rate_ppm));
        }
        Mode::Csv => s.line(&format!(
            "{}.{:09},{},{},{},{:.6},{:.3}",
            r.ref_time.sec, r.ref_time.nsec, r.n_samples, r.n_runs, r.span_seconds, r.rtc_seconds_fast, r.rtc_gain_rate_ppm
        )),
        Mode::Json => s.line(
            &json!({"reference_time_s": r.ref_time.as_secs_f64(), "samples": r.n_samples, "runs": r.n_runs,
                    "span_s": r.span_seconds, "rtc_fast_s": r.rtc_seconds_fast, "rtc_gain_ppm": r.rtc_gain_rate_ppm})
            .to_string(),
        ),
    }
    Ok(())
}

/// `smoothing`.
pub fn smoothing(s: &mut Session) -> Result<(), CmdError> {
    let ReplyBody::Smoothing(m) = s.request(&Request::Smoothing, ReplyCode::Smoothing)? else {
        return Err(CmdError::BadReply);
    };
    let active = m.flags & 1 != 0;
    let leap_only = m.flags & 2 != 0;
    let leap_text = if leap_only { "(leap second only)" } else { "" };
    match s.mode {
        Mode::Text => {
            // chronyc prints the (possibly empty) qualifier after a space.
            s.line(&format!("Active         : {} {}", fmt::yes_no(active), leap_text));
            s.line(&format!("Offset         : {:+.9} seconds", m.offset));
            s.line(&format!("Frequency      : {:+.6} ppm", m.freq_ppm));
            s.line(&format!("Wander         : {:+.6} ppm per second", m.wander_ppm));
            s.line(&format!("Last update    : {:.1} seconds ago", m.last_update_ago));
            s.line(&format!("Remaining time : {:.1} seconds", m.remaining_time));
        }
        Mode::Csv => s.line(&format!(
            "{},{},{:.9},{:.6},{:.6},{:.1},{:.1}",
            fmt::yes_no(active),
            leap_text,
            m.offset,
            m.freq_ppm,
            m.wander_ppm,
            m.last_update_ago,
            m.remaining_time
        )),
        Mode::Json => s.line(
            &json!({"active": active, "leap_only": leap_only, "offset_s": m.offset, "frequency_ppm": m.freq_ppm,
                    "wander_ppm_per_s": m.wander_ppm, "last_update_ago_s": m.last_update_ago,
                    "remaining_time_s": m.remaining_time})
            .to_string(),
        ),
    }
    Ok(())
}

/// `manual list`.
pub fn manual_list(s: &mut Session) -> Result<(), CmdError> {
    let ReplyBody::ManualList { n_samples, samples } =
        s.request(&Request::ManualList, ReplyCode::ManualList2)?
    else {
        return Err(CmdError::BadReply);
    };
    match s.mode {
        Mode::Text => {
            s.line(&format!("210 n_samples = {n_samples}"));
            s.line("#    Date     Time(UTC)    Slewed   Original   Residual");
            s.line(&"=".repeat(55));
            for (i, m) in samples.iter().enumerate() {
                let t = fmt::utc_date_time(m.when.sec);
                s.line(&format!(
                    "{:2} {} {:10.2} {:10.2} {:10.2}",
                    i, t, m.slewed_offset, m.orig_offset, m.residual
                ));
            }
        }
        Mode::Csv => {
            for (i, m) in samples.iter().enumerate() {
                s.line(&format!(
                    "{},{},{:.2},{:.2},{:.2}",
                    i,
                    fmt::utc_date_time(m.when.sec),
                    m.slewed_offset,
                    m.orig_offset,
                    m.residual
                ));
            }
        }
        Mode::Json => {
            let v: Vec<Value> = samples
                .iter()
                .map(|m| {
                    json!({"time_s": m.when.as_secs_f64(), "slewed_offset_s": m.slewed_offset,
                               "original_offset_s": m.orig_offset, "residual_s": m.residual})
                })
                .collect();
            s.line(&json!({ "manual": v }).to_string());
        }
    }
    Ok(())
}
