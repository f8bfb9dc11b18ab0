//! cmdmon replies (protocol v6): the 28-byte header, the reply payloads and their codec
//! (features.md §4.3, §4.6, §4.8). Both sides use it: gnomonc decodes what a daemon sends and
//! gnomond encodes its answers.

use crate::field::{DecodeError, Reader, Writer};
pub use crate::payload::*;
use crate::request::{PKT_TYPE_REPLY, PROTO_VERSION};
use crate::status::Status;

pub const REPLY_HEADER_LEN: usize = 28;
/// Records in one CLIENT_ACCESSES_BY_INDEX3 reply.
pub const MAX_CLIENT_ACCESSES: usize = 8;
/// Samples in one MANUAL_LIST2 reply.
pub const MAX_MANUAL_LIST_SAMPLES: usize = 16;
/// Size of the NTP_SOURCE_NAME name field.
pub const SOURCE_NAME_FIELD_LEN: usize = 256;

/// Reply codes this implementation speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyCode {
    Null,
    NSources,
    SourceData,
    Tracking,
    SourceStats,
    Rtc,
    Activity,
    Smoothing,
    NtpData,
    ManualTimestamp2,
    ManualList2,
    NtpSourceName,
    AuthData,
    ClientAccessesByIndex3,
    SelectData,
    ServerStats3,
    ServerStats4,
    NtpData2,
}

const CODES: [(ReplyCode, u16, usize); 18] = [
    (ReplyCode::Null, 1, 28),
    (ReplyCode::NSources, 2, 32),
    (ReplyCode::SourceData, 3, 76),
    (ReplyCode::Tracking, 5, 104),
    (ReplyCode::SourceStats, 6, 84),
    (ReplyCode::Rtc, 7, 56),
    (ReplyCode::Activity, 12, 48),
    (ReplyCode::Smoothing, 13, 52),
    (ReplyCode::NtpData, 16, 152),
    (ReplyCode::ManualTimestamp2, 17, 40),
    (ReplyCode::ManualList2, 18, 416),
    (ReplyCode::NtpSourceName, 19, 284),
    (ReplyCode::AuthData, 20, 52),
    (ReplyCode::ClientAccessesByIndex3, 21, 520),
    (ReplyCode::SelectData, 23, 76),
    (ReplyCode::ServerStats3, 24, 72),
    (ReplyCode::ServerStats4, 25, 196),
    (ReplyCode::NtpData2, 26, 172),
];

impl ReplyCode {
    pub fn code(self) -> u16 {
        CODES.iter().find(|e| e.0 == self).map_or(1, |e| e.1)
    }
    pub fn from_code(c: u16) -> Option<ReplyCode> {
        CODES.iter().find(|e| e.1 == c).map(|e| e.0)
    }
    /// The reply format a daemon should use for a request code and datagram length: the
    /// request length tells which chronyc version sent it (features.md §4.8), so a 72-byte
    /// serverstats request gets SERVER_STATS3 and a 196-byte one SERVER_STATS4; likewise
    /// ntpdata 152 → NTP_DATA, 172 → NTP_DATA2. Never returns a reply longer than `len`.
    pub fn for_request(command: u16, len: usize) -> Option<ReplyCode> {
        let base = crate::code::expected_reply(command)?;
        let newer = match base {
            ReplyCode::ServerStats3 => ReplyCode::ServerStats4,
            ReplyCode::NtpData => ReplyCode::NtpData2,
            other => other,
        };
        Some(if reply_length(newer) <= len {
            newer
        } else {
            base
        })
    }
}

/// Full datagram length of a reply code.
pub fn reply_length(code: ReplyCode) -> usize {
    CODES
        .iter()
        .find(|e| e.0 == code)
        .map_or(REPLY_HEADER_LEN, |e| e.2)
}

/// A reply payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    Null,
    NSources {
        n_sources: u32,
    },
    SourceData(SourceData),
    Tracking(Tracking),
    SourceStats(SourceStats),
    Rtc(Rtc),
    Activity(Activity),
    Smoothing(Smoothing),
    ServerStats3(ServerStats),
    ServerStats4(ServerStats),
    NtpData(NtpData),
    NtpData2(NtpData),
    ManualTimestamp {
        offset: f64,
        dfreq_ppm: f64,
        new_afreq_ppm: f64,
    },
    /// `n_samples` and up to [`MAX_MANUAL_LIST_SAMPLES`] samples.
    ManualList {
        n_samples: u32,
        samples: Vec<ManualSample>,
    },
    NtpSourceName {
        name: Vec<u8>,
    },
    AuthData(AuthData),
    ClientAccesses(ClientAccesses),
    SelectData(SelectData),
}

impl ReplyBody {
    pub fn code(&self) -> ReplyCode {
        match self {
            ReplyBody::Null => ReplyCode::Null,
            ReplyBody::NSources { .. } => ReplyCode::NSources,
            ReplyBody::SourceData(_) => ReplyCode::SourceData,
            ReplyBody::Tracking(_) => ReplyCode::Tracking,
            ReplyBody::SourceStats(_) => ReplyCode::SourceStats,
            ReplyBody::Rtc(_) => ReplyCode::Rtc,
            ReplyBody::Activity(_) => ReplyCode::Activity,
            ReplyBody::Smoothing(_) => ReplyCode::Smoothing,
            ReplyBody::ServerStats3(_) => ReplyCode::ServerStats3,
            ReplyBody::ServerStats4(_) => ReplyCode::ServerStats4,
            ReplyBody::NtpData(_) => ReplyCode::NtpData,
            ReplyBody::NtpData2(_) => ReplyCode::NtpData2,
            ReplyBody::ManualTimestamp { .. } => ReplyCode::ManualTimestamp2,
            ReplyBody::ManualList { .. } => ReplyCode::ManualList2,
            ReplyBody::NtpSourceName { .. } => ReplyCode::NtpSourceName,
            ReplyBody::AuthData(_) => ReplyCode::AuthData,
            ReplyBody::ClientAccesses(_) => ReplyCode::ClientAccessesByIndex3,
            ReplyBody::SelectData(_) => ReplyCode::SelectData,
        }
    }
}

/// A reply datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Echo of the request code.
    pub command: u16,
    pub status: Status,
    /// Echo of the request's sequence number.
    pub sequence: u32,
    pub body: ReplyBody,
}

impl Reply {
    /// A header-only reply (RPY_NULL) with a status: what chronyd sends for plain success and
    /// for every error.
    pub fn status_only(command: u16, sequence: u32, status: Status) -> Reply {
        Reply {
            command,
            status,
            sequence,
            body: ReplyBody::Null,
        }
    }
}

fn encode_body(w: &mut Writer, body: &ReplyBody) {
    match body {
        ReplyBody::Null => {}
        ReplyBody::NSources { n_sources } => w.u32(*n_sources),
        ReplyBody::SourceData(s) => {
            w.addr(&s.ip_addr);
            w.i16(s.poll);
            w.u16(s.stratum);
            w.u16(s.state);
            w.u16(s.mode);
            w.u16(s.flags);
            w.u16(s.reachability);
            w.u32(s.since_sample);
            w.float(s.orig_latest_meas);
            w.float(s.latest_meas);
            w.float(s.latest_meas_err);
        }
        ReplyBody::Tracking(t) => {
            w.u32(t.ref_id);
            w.addr(&t.ip_addr);
            w.u16(t.stratum);
            w.u16(t.leap_status);
            w.timespec(&t.ref_time);
            for v in [
                t.current_correction,
                t.last_offset,
                t.rms_offset,
                t.freq_ppm,
                t.resid_freq_ppm,
                t.skew_ppm,
                t.root_delay,
                t.root_dispersion,
                t.last_update_interval,
            ] {
                w.float(v);
            }
        }
        ReplyBody::SourceStats(s) => {
            w.u32(s.ref_id);
            w.addr(&s.ip_addr);
            w.u32(s.n_samples);
            w.u32(s.n_runs);
            w.u32(s.span_seconds);
            for v in [
                s.sd,
                s.resid_freq_ppm,
                s.skew_ppm,
                s.est_offset,
                s.est_offset_err,
            ] {
                w.float(v);
            }
        }
        ReplyBody::Rtc(r) => {
            w.timespec(&r.ref_time);
            w.u16(r.n_samples);
            w.u16(r.n_runs);
            w.u32(r.span_seconds);
            w.float(r.rtc_seconds_fast);
            w.float(r.rtc_gain_rate_ppm);
        }
        ReplyBody::Activity(a) => {
            for v in [
                a.online,
                a.offline,
                a.burst_online,
                a.burst_offline,
                a.unresolved,
            ] {
                w.i32(v);
            }
        }
        ReplyBody::Smoothing(s) => {
            w.u32(s.flags);
            for v in [
                s.offset,
                s.freq_ppm,
                s.wander_ppm,
                s.last_update_ago,
                s.remaining_time,
            ] {
                w.float(v);
            }
        }
        ReplyBody::ServerStats3(s) => {
            // The 32-bit format saturates rather than wraps.
            for v in &s.counters()[..11] {
                w.u32(u32::try_from(*v).unwrap_or(u32::MAX));
            }
        }
        ReplyBody::ServerStats4(s) => {
            for v in s.counters() {
                w.u64(v);
            }
            w.zeros(4 * 8);
        }
        ReplyBody::NtpData(n) | ReplyBody::NtpData2(n) => {
            w.addr(&n.remote_addr);
            w.addr(&n.local_addr);
            w.u16(n.remote_port);
            w.u8(n.leap);
            w.u8(n.version);
            w.u8(n.mode);
            w.u8(n.stratum);
            w.i8(n.poll);
            w.i8(n.precision);
            w.float(n.root_delay);
            w.float(n.root_dispersion);
            w.u32(n.ref_id);
            w.timespec(&n.ref_time);
            for v in [
                n.offset,
                n.peer_delay,
                n.peer_dispersion,
                n.response_time,
                n.jitter_asymmetry,
            ] {
                w.float(v);
            }
            w.u16(n.flags);
            w.u8(n.tx_tss_char);
            w.u8(n.rx_tss_char);
            w.u32(n.total_tx_count);
            w.u32(n.total_rx_count);
            w.u32(n.total_valid_count);
            w.u32(n.total_good_count);
            if matches!(body, ReplyBody::NtpData2(_)) {
                w.u32(n.total_kernel_tx);
                w.u32(n.total_kernel_rx);
                w.u32(n.total_hw_tx);
                w.u32(n.total_hw_rx);
                w.zeros(4 * 4);
            } else {
                // chronyd 4.3 fills the three reserved words with all-ones (captured).
                for _ in 0..3 {
                    w.u32(u32::MAX);
                }
            }
        }
        ReplyBody::ManualTimestamp {
            offset,
            dfreq_ppm,
            new_afreq_ppm,
        } => {
            w.float(*offset);
            w.float(*dfreq_ppm);
            w.float(*new_afreq_ppm);
        }
        ReplyBody::ManualList { n_samples, samples } => {
            w.u32(*n_samples);
            for s in samples.iter().take(MAX_MANUAL_LIST_SAMPLES) {
                w.timespec(&s.when);
                w.float(s.slewed_offset);
                w.float(s.orig_offset);
                w.float(s.residual);
            }
        }
        ReplyBody::NtpSourceName { name } => w.fixed_str(name, SOURCE_NAME_FIELD_LEN),
        ReplyBody::AuthData(a) => {
            w.u16(a.mode);
            w.u16(a.key_type);
            w.u32(a.key_id);
            w.u16(a.key_length);
            w.u16(a.ke_attempts);
            w.u32(a.last_ke_ago);
            w.u16(a.cookies);
            w.u16(a.cookie_length);
            w.u16(a.nak);
            w.u16(0);
        }
        ReplyBody::ClientAccesses(c) => {
            let clients = &c.clients[..c.clients.len().min(MAX_CLIENT_ACCESSES)];
            w.u32(c.n_indices);
            w.u32(c.next_index);
            w.u32(clients.len() as u32);
            for a in clients {
                w.addr(&a.ip);
                for v in [
                    a.ntp_hits,
                    a.nke_hits,
                    a.cmd_hits,
                    a.ntp_drops,
                    a.nke_drops,
                    a.cmd_drops,
                ] {
                    w.u32(v);
                }
                for v in [
                    a.ntp_interval,
                    a.nke_interval,
                    a.cmd_interval,
                    a.ntp_timeout_interval,
                ] {
                    w.i8(v);
                }
                w.u32(a.last_ntp_hit_ago);
                w.u32(a.last_nke_hit_ago);
                w.u32(a.last_cmd_hit_ago);
            }
        }
        ReplyBody::SelectData(s) => {
            w.u32(s.ref_id);
            w.addr(&s.ip_addr);
            w.u8(s.state_char);
            w.u8(s.authentication);
            w.u8(s.leap);
            w.u8(0);
            w.u16(s.conf_options);
            w.u16(s.eff_options);
            w.u32(s.last_sample_ago);
            w.float(s.score);
            w.float(s.lo_limit);
            w.float(s.hi_limit);
        }
    }
}

/// Encodes a reply datagram (header + payload, zero-filled to the reply code's fixed length).
pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    let code = reply.body.code();
    let mut w = Writer::default();
    w.u8(PROTO_VERSION);
    w.u8(PKT_TYPE_REPLY);
    w.u8(0);
    w.u8(0);
    w.u16(reply.command);
    w.u16(code.code());
    w.u16(reply.status.code());
    w.zeros(6);
    w.u32(reply.sequence);
    w.zeros(8);
    encode_body(&mut w, &reply.body);
    w.pad_to(reply_length(code));
    w.buf
}

fn decode_body(r: &mut Reader<'_>, code: ReplyCode) -> Result<ReplyBody, DecodeError> {
    Ok(match code {
        ReplyCode::Null => ReplyBody::Null,
        ReplyCode::NSources => ReplyBody::NSources {
            n_sources: r.u32()?,
        },
        ReplyCode::SourceData => ReplyBody::SourceData(SourceData {
            ip_addr: r.addr()?,
            poll: r.i16()?,
            stratum: r.u16()?,
            state: r.u16()?,
            mode: r.u16()?,
            flags: r.u16()?,
            reachability: r.u16()?,
            since_sample: r.u32()?,
            orig_latest_meas: r.float()?,
            latest_meas: r.float()?,
            latest_meas_err: r.float()?,
        }),
        ReplyCode::Tracking => ReplyBody::Tracking(Tracking {
            ref_id: r.u32()?,
            ip_addr: r.addr()?,
            stratum: r.u16()?,
            leap_status: r.u16()?,
            ref_time: r.timespec()?,
            current_correction: r.float()?,
            last_offset: r.float()?,
            rms_offset: r.float()?,
            freq_ppm: r.float()?,
            resid_freq_ppm: r.float()?,
            skew_ppm: r.float()?,
            root_delay: r.float()?,
            root_dispersion: r.float()?,
            last_update_interval: r.float()?,
        }),
        ReplyCode::SourceStats => ReplyBody::SourceStats(SourceStats {
            ref_id: r.u32()?,
            ip_addr: r.addr()?,
            n_samples: r.u32()?,
            n_runs: r.u32()?,
            span_seconds: r.u32()?,
            sd: r.float()?,
            resid_freq_ppm: r.float()?,
            skew_ppm: r.float()?,
            est_offset: r.float()?,
            est_offset_err: r.float()?,
        }),
        ReplyCode::Rtc => ReplyBody::Rtc(Rtc {
            ref_time: r.timespec()?,
            n_samples: r.u16()?,
            n_runs: r.u16()?,
            span_seconds: r.u32()?,
            rtc_seconds_fast: r.float()?,
            rtc_gain_rate_ppm: r.float()?,
        }),
        ReplyCode::Activity => ReplyBody::Activity(Activity {
            online: r.i32()?,
            offline: r.i32()?,
            burst_online: r.i32()?,
            burst_offline: r.i32()?,
            unresolved: r.i32()?,
        }),
        ReplyCode::Smoothing => ReplyBody::Smoothing(Smoothing {
            flags: r.u32()?,
            offset: r.float()?,
            freq_ppm: r.float()?,
            wander_ppm: r.float()?,
            last_update_ago: r.float()?,
            remaining_time: r.float()?,
        }),
        ReplyCode::ServerStats3 => {
            let mut c = [0u64; 17];
            for v in c.iter_mut().take(11) {
                *v = u64::from(r.u32()?);
            }
            ReplyBody::ServerStats3(ServerStats::from_counters(c))
        }
        ReplyCode::ServerStats4 => {
            let mut c = [0u64; 17];
            for v in c.iter_mut() {
                *v = r.u64()?;
            }
            ReplyBody::ServerStats4(ServerStats::from_counters(c))
        }
        ReplyCode::NtpData | ReplyCode::NtpData2 => {
            let mut n = NtpData {
                remote_addr: r.addr()?,
                local_addr: r.addr()?,
                remote_port: r.u16()?,
                leap: r.u8()?,
                version: r.u8()?,
                mode: r.u8()?,
                stratum: r.u8()?,
                poll: r.i8()?,
                precision: r.i8()?,
                root_delay: r.float()?,
                root_dispersion: r.float()?,
                ref_id: r.u32()?,
                ref_time: r.timespec()?,
                offset: r.float()?,
                peer_delay: r.float()?,
                peer_dispersion: r.float()?,
                response_time: r.float()?,
                jitter_asymmetry: r.float()?,
                flags: r.u16()?,
                tx_tss_char: r.u8()?,
                rx_tss_char: r.u8()?,
                total_tx_count: r.u32()?,
                total_rx_count: r.u32()?,
                total_valid_count: r.u32()?,
                total_good_count: r.u32()?,
                ..NtpData::default()
            };
            if code == ReplyCode::NtpData2 {
                n.total_kernel_tx = r.u32()?;
                n.total_kernel_rx = r.u32()?;
                n.total_hw_tx = r.u32()?;
                n.total_hw_rx = r.u32()?;
                ReplyBody::NtpData2(n)
            } else {
                ReplyBody::NtpData(n)
            }
        }
        ReplyCode::ManualTimestamp2 => ReplyBody::ManualTimestamp {
            offset: r.float()?,
            dfreq_ppm: r.float()?,
            new_afreq_ppm: r.float()?,
        },
        ReplyCode::ManualList2 => {
            let n_samples = r.u32()?;
            let mut samples = Vec::new();
            for _ in 0..(n_samples as usize).min(MAX_MANUAL_LIST_SAMPLES) {
                samples.push(ManualSample {
                    when: r.timespec()?,
                    slewed_offset: r.float()?,
                    orig_offset: r.float()?,
                    residual: r.float()?,
                });
            }
            ReplyBody::ManualList { n_samples, samples }
        }
        ReplyCode::NtpSourceName => ReplyBody::NtpSourceName {
            name: r.fixed_str(SOURCE_NAME_FIELD_LEN)?,
        },
        ReplyCode::AuthData => {
            let a = AuthData {
                mode: r.u16()?,
                key_type: r.u16()?,
                key_id: r.u32()?,
                key_length: r.u16()?,
                ke_attempts: r.u16()?,
                last_ke_ago: r.u32()?,
                cookies: r.u16()?,
                cookie_length: r.u16()?,
                nak: r.u16()?,
            };
            ReplyBody::AuthData(a)
        }
        ReplyCode::ClientAccessesByIndex3 => {
            let n_indices = r.u32()?;
            let next_index = r.u32()?;
            let n_clients = r.u32()? as usize;
            let mut clients = Vec::new();
            for _ in 0..n_clients.min(MAX_CLIENT_ACCESSES) {
                clients.push(ClientAccess {
                    ip: r.addr()?,
                    ntp_hits: r.u32()?,
                    nke_hits: r.u32()?,
                    cmd_hits: r.u32()?,
                    ntp_drops: r.u32()?,
                    nke_drops: r.u32()?,
                    cmd_drops: r.u32()?,
                    ntp_interval: r.i8()?,
                    nke_interval: r.i8()?,
                    cmd_interval: r.i8()?,
                    ntp_timeout_interval: r.i8()?,
                    last_ntp_hit_ago: r.u32()?,
                    last_nke_hit_ago: r.u32()?,
                    last_cmd_hit_ago: r.u32()?,
                });
            }
            ReplyBody::ClientAccesses(ClientAccesses {
                n_indices,
                next_index,
                clients,
            })
        }
        ReplyCode::SelectData => {
            let ref_id = r.u32()?;
            let ip_addr = r.addr()?;
            let state_char = r.u8()?;
            let authentication = r.u8()?;
            let leap = r.u8()?;
            r.u8()?;
            ReplyBody::SelectData(SelectData {
                ref_id,
                ip_addr,
                state_char,
                authentication,
                leap,
                conf_options: r.u16()?,
                eff_options: r.u16()?,
                last_sample_ago: r.u32()?,
                score: r.float()?,
                lo_limit: r.float()?,
                hi_limit: r.float()?,
            })
        }
    })
}

/// Decodes a reply datagram. Total: every input yields a value or an error. A datagram shorter
/// than its reply code's fixed length is rejected (chronyc requires at least that length).
pub fn decode_reply(buf: &[u8]) -> Result<Reply, DecodeError> {
    let mut r = Reader::new(buf, 0);
    let version = r.u8()?;
    let pkt_type = r.u8()?;
    let res1 = r.u8()?;
    let res2 = r.u8()?;
    if version != PROTO_VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    if pkt_type != PKT_TYPE_REPLY {
        return Err(DecodeError::BadPacketType(pkt_type));
    }
    if res1 != 0 || res2 != 0 {
        return Err(DecodeError::NonZeroReserved);
    }
    let command = r.u16()?;
    let reply_code = r.u16()?;
    let status = Status::from_code(r.u16()?);
    r.skip(6)?;
    let sequence = r.u32()?;
    r.skip(8)?;
    let code = ReplyCode::from_code(reply_code).ok_or(DecodeError::UnknownReply(reply_code))?;
    let needed = reply_length(code);
    if buf.len() < needed {
        return Err(DecodeError::Truncated {
            needed,
            have: buf.len(),
        });
    }
    let body = decode_body(&mut r, code)?;
    Ok(Reply {
        command,
        status,
        sequence,
        body,
    })
}

/// Whether `reply` answers `command`/`sequence` as chronyc requires (echoed code and sequence).
pub fn reply_matches(reply: &Reply, command: u16, sequence: u32) -> bool {
    reply.command == command && reply.sequence == sequence
}
