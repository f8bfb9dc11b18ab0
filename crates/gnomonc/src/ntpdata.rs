//! `ntpdata [ADDR]`: NTP-level details of one source or of every NTP source, as chronyc 4.3
//! prints them (features.md §3.8), from NTP_DATA (or NTP_DATA2, whose extra counters are
//! printed when the daemon sends them).

use crate::fmt;
use crate::session::{addr_text, CmdError, Mode, Session};
use gnomon_cmdmon::{Addr, NtpData, ReplyBody, ReplyCode, Request};
use serde_json::{json, Value};

/// The 32-bit ID NTP shows for an address: IPv4 as is, IPv6 the first bytes of its MD5.
pub fn addr_refid(a: &Addr) -> u32 {
    match a {
        Addr::V4(v4) => gnomon_wire::refid_ipv4(*v4),
        Addr::V6(v6) => gnomon_wire::refid_ipv6(v6),
        Addr::Id(_) | Addr::Unspec => 0,
    }
}

/// The ten test bits printed MSB first in groups of 3, 3 and 4.
fn tests(flags: u16) -> [String; 3] {
    let bits: String = (0..10)
        .rev()
        .map(|i| if flags >> i & 1 == 1 { '1' } else { '0' })
        .collect();
    [
        bits[0..3].to_string(),
        bits[3..6].to_string(),
        bits[6..10].to_string(),
    ]
}

/// One `ntpdata` block.
#[derive(Debug, Clone, PartialEq)]
pub struct NtpDataReport {
    pub data: NtpData,
    /// Whether the NTP_DATA2 counters are present.
    pub extended: bool,
}

impl NtpDataReport {
    fn refid_name(&self) -> String {
        if self.data.stratum <= 1 {
            fmt::refid_text(self.data.ref_id)
        } else {
            String::new()
        }
    }

    fn totals(&self) -> Vec<(&'static str, u32)> {
        let d = &self.data;
        let mut v = vec![
            ("Total TX        ", d.total_tx_count),
            ("Total RX        ", d.total_rx_count),
            ("Total valid RX  ", d.total_valid_count),
            ("Total good RX   ", d.total_good_count),
        ];
        if self.extended {
            v.extend([
                ("Total kernel TX ", d.total_kernel_tx),
                ("Total kernel RX ", d.total_kernel_rx),
                ("Total HW TX     ", d.total_hw_tx),
                ("Total HW RX     ", d.total_hw_rx),
            ]);
        }
        v
    }

    pub fn text(&self) -> String {
        let d = &self.data;
        let t = tests(d.flags);
        let mut lines = vec![
            format!(
                "Remote address  : {} ({:08X})",
                addr_text(&d.remote_addr),
                addr_refid(&d.remote_addr)
            ),
            format!("Remote port     : {}", d.remote_port),
            format!(
                "Local address   : {} ({:08X})",
                addr_text(&d.local_addr),
                addr_refid(&d.local_addr)
            ),
            format!("Leap status     : {}", fmt::leap(u16::from(d.leap))),
            format!("Version         : {}", d.version),
            format!("Mode            : {}", fmt::ntp_mode(d.mode)),
            format!("Stratum         : {}", d.stratum),
            format!(
                "Poll interval   : {} ({:.0} seconds)",
                d.poll,
                2f64.powi(i32::from(d.poll))
            ),
            format!(
                "Precision       : {} ({:.9} seconds)",
                d.precision,
                2f64.powi(i32::from(d.precision))
            ),
            format!("Root delay      : {:.6} seconds", d.root_delay),
            format!("Root dispersion : {:.6} seconds", d.root_dispersion),
            format!("Reference ID    : {:08X} ({})", d.ref_id, self.refid_name()),
            format!("Reference time  : {}", fmt::utc_time(d.ref_time.sec)),
            format!("Offset          : {:+.9} seconds", d.offset),
            format!("Peer delay      : {:.9} seconds", d.peer_delay),
            format!("Peer dispersion : {:.9} seconds", d.peer_dispersion),
            format!("Response time   : {:.9} seconds", d.response_time),
            format!("Jitter asymmetry: {:+.2}", d.jitter_asymmetry),
            format!("NTP tests       : {} {} {}", t[0], t[1], t[2]),
            format!("Interleaved     : {}", fmt::yes_no(d.flags & 0x4000 != 0)),
            format!("Authenticated   : {}", fmt::yes_no(d.flags & 0x8000 != 0)),
            format!("TX timestamping : {}", fmt::tss(d.tx_tss_char)),
            format!("RX timestamping : {}", fmt::tss(d.rx_tss_char)),
        ];
        lines.extend(self.totals().iter().map(|(l, v)| format!("{l}: {v}")));
        lines.join("\n")
    }

    pub fn csv(&self) -> String {
        let d = &self.data;
        let t = tests(d.flags);
        let mut f = vec![
            addr_text(&d.remote_addr),
            format!("{:08X}", addr_refid(&d.remote_addr)),
            d.remote_port.to_string(),
            addr_text(&d.local_addr),
            format!("{:08X}", addr_refid(&d.local_addr)),
            fmt::leap(u16::from(d.leap)).to_string(),
            d.version.to_string(),
            fmt::ntp_mode(d.mode).to_string(),
            d.stratum.to_string(),
            d.poll.to_string(),
            format!("{:.0}", 2f64.powi(i32::from(d.poll))),
            d.precision.to_string(),
            format!("{:.9}", 2f64.powi(i32::from(d.precision))),
            format!("{:.6}", d.root_delay),
            format!("{:.6}", d.root_dispersion),
            format!("{:08X}", d.ref_id),
            self.refid_name(),
            format!("{}.{:09}", d.ref_time.sec, d.ref_time.nsec),
            format!("{:.9}", d.offset),
            format!("{:.9}", d.peer_delay),
            format!("{:.9}", d.peer_dispersion),
            format!("{:.9}", d.response_time),
            format!("{:.2}", d.jitter_asymmetry),
        ];
        f.extend(t);
        f.push(fmt::yes_no(d.flags & 0x4000 != 0).to_string());
        f.push(fmt::yes_no(d.flags & 0x8000 != 0).to_string());
        f.push(fmt::tss(d.tx_tss_char).to_string());
        f.push(fmt::tss(d.rx_tss_char).to_string());
        f.extend(self.totals().iter().map(|(_, v)| v.to_string()));
        f.join(",")
    }

    pub fn json(&self) -> Value {
        let d = &self.data;
        let mut v = json!({
            "remote_address": addr_text(&d.remote_addr), "remote_port": d.remote_port,
            "local_address": addr_text(&d.local_addr), "leap": fmt::leap(u16::from(d.leap)),
            "version": d.version, "mode": fmt::ntp_mode(d.mode), "stratum": d.stratum,
            "poll_log2": d.poll, "precision_log2": d.precision, "root_delay_s": d.root_delay,
            "root_dispersion_s": d.root_dispersion, "reference_id": format!("{:08X}", d.ref_id),
            "reference_time_s": d.ref_time.as_secs_f64(), "offset_s": d.offset,
            "peer_delay_s": d.peer_delay, "peer_dispersion_s": d.peer_dispersion,
            "response_time_s": d.response_time, "jitter_asymmetry": d.jitter_asymmetry,
            "tests": tests(d.flags).concat(), "interleaved": d.flags & 0x4000 != 0,
            "authenticated": d.flags & 0x8000 != 0, "tx_timestamping": fmt::tss(d.tx_tss_char),
            "rx_timestamping": fmt::tss(d.rx_tss_char), "total_tx": d.total_tx_count,
            "total_rx": d.total_rx_count, "total_valid_rx": d.total_valid_count,
            "total_good_rx": d.total_good_count,
        });
        if self.extended {
            v["total_kernel_tx"] = json!(d.total_kernel_tx);
            v["total_kernel_rx"] = json!(d.total_kernel_rx);
            v["total_hw_tx"] = json!(d.total_hw_tx);
            v["total_hw_rx"] = json!(d.total_hw_rx);
        }
        v
    }
}

fn fetch(s: &mut Session, ip: Addr) -> Result<NtpDataReport, CmdError> {
    match s.request(&Request::NtpData { ip }, ReplyCode::NtpData)? {
        ReplyBody::NtpData(data) => Ok(NtpDataReport {
            data,
            extended: false,
        }),
        ReplyBody::NtpData2(data) => Ok(NtpDataReport {
            data,
            extended: true,
        }),
        _ => Err(CmdError::BadReply),
    }
}

/// `ntpdata [ADDR]`: without an address, every NTP source, each block preceded by a blank line.
pub fn ntpdata(s: &mut Session, addr: Option<Addr>) -> Result<(), CmdError> {
    let mut reports = Vec::new();
    match addr {
        Some(ip) => reports.push(fetch(s, ip)?),
        None => {
            let ReplyBody::NSources { n_sources } =
                s.request(&Request::NSources, ReplyCode::NSources)?
            else {
                return Err(CmdError::BadReply);
            };
            for i in 0..n_sources {
                let ReplyBody::SourceData(d) = s.request(
                    &Request::SourceData { index: i as i32 },
                    ReplyCode::SourceData,
                )?
                else {
                    return Err(CmdError::BadReply);
                };
                if d.mode == 2 || d.ip_addr.ip().is_none() {
                    continue;
                }
                let r = fetch(s, d.ip_addr)?;
                if s.mode == Mode::Text {
                    s.line("");
                    s.line(&r.text());
                } else {
                    reports.push(r);
                }
            }
        }
    }
    match s.mode {
        Mode::Text => reports.iter().for_each(|r| s.line(&r.text())),
        Mode::Csv => reports.iter().for_each(|r| s.line(&r.csv())),
        Mode::Json => s.line(
            &json!({ "ntpdata": reports.iter().map(NtpDataReport::json).collect::<Vec<_>>() })
                .to_string(),
        ),
    }
    Ok(())
}
