//! cmdmon requests (protocol v6): the 20-byte header, one variant per request code, the
//! request-length table and the codec for both sides (features.md §4.3–§4.5, §4.8).
//!
//! Every request is zero-padded to the length of the reply its client expects, so a reply is
//! never longer than the request that caused it (anti-amplification). [`request_length`] gives the
//! length chronyc 4.3 sends, which is what [`encode_request`] produces; [`decode_request`] accepts
//! any datagram at least as long as the fields of its code and as long as the shortest reply
//! format for it (serverstats and ntpdata have an older, shorter reply).

use crate::code::request_length;
use crate::field::{Addr, DecodeError, Reader, Timespec, Writer};

pub const PROTO_VERSION: u8 = 6;
pub const PKT_TYPE_REQUEST: u8 = 1;
pub const PKT_TYPE_REPLY: u8 = 2;
pub const REQUEST_HEADER_LEN: usize = 20;
/// Largest request chronyd accepts (`sizeof(CMD_Request)`).
pub const MAX_REQUEST_LEN: usize = 860;
/// Size of the name field of ADD_SOURCE.
pub const SOURCE_NAME_LEN: usize = 256;

/// Request header fields other than the constant ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestHeader {
    pub version: u8,
    pub command: u16,
    pub attempt: u16,
    pub sequence: u32,
}

/// Access-list operations (codes 17–24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessOp {
    Allow,
    AllowAll,
    Deny,
    DenyAll,
    CmdAllow,
    CmdAllowAll,
    CmdDeny,
    CmdDenyAll,
}

/// Per-source integer settings (`minpoll`, `maxpoll`, `minstratum`, `polltarget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceIntField {
    Minpoll,
    Maxpoll,
    Minstratum,
    Polltarget,
}

/// Per-source float settings (`maxdelay`, `maxdelayratio`, `maxdelaydevratio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFloatField {
    Maxdelay,
    Maxdelayratio,
    Maxdelaydevratio,
}

/// Daemon-wide float settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalFloatField {
    Maxupdateskew,
    Dfreq,
    ReselectDistance,
    Doffset,
}

/// ADD_SOURCE source type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    Server,
    Peer,
    Pool,
}

/// ADD_SOURCE flag bits (features.md §4.5).
pub mod add_flags {
    pub const ONLINE: u32 = 0x1;
    pub const AUTOOFFLINE: u32 = 0x2;
    pub const IBURST: u32 = 0x4;
    pub const PREFER: u32 = 0x8;
    pub const NOSELECT: u32 = 0x10;
    pub const TRUST: u32 = 0x20;
    pub const REQUIRE: u32 = 0x40;
    pub const INTERLEAVED: u32 = 0x80;
    pub const BURST: u32 = 0x100;
    pub const NTS: u32 = 0x200;
    pub const COPY: u32 = 0x400;
    pub const EF_EXP1: u32 = 0x800;
    pub const EF_EXP_NET_CORRECTION: u32 = 0x1000;
    pub const IPV4: u32 = 0x2000;
    pub const IPV6: u32 = 0x4000;
}

/// ADD_SOURCE payload.
#[derive(Debug, Clone, PartialEq)]
pub struct AddSource {
    pub source_type: SourceType,
    /// Host name or address, at most 255 bytes.
    pub name: Vec<u8>,
    pub port: u32,
    pub minpoll: i32,
    pub maxpoll: i32,
    pub presend_minpoll: i32,
    pub min_stratum: u32,
    pub poll_target: u32,
    pub version: u32,
    pub max_sources: u32,
    pub min_samples: i32,
    pub max_samples: i32,
    pub authkey: u32,
    pub nts_port: u32,
    pub max_delay: f64,
    pub max_delay_ratio: f64,
    pub max_delay_dev_ratio: f64,
    pub min_delay: f64,
    pub asymmetry: f64,
    pub offset: f64,
    pub flags: u32,
    pub filter_length: i32,
    pub cert_set: u32,
    pub max_delay_quant: f64,
    /// `max_unreach` in 4.8; reserved (0) in chronyc 4.3. 0 means "default".
    pub max_unreach: i32,
}

/// `local` parameters (LOCAL2 and LOCAL3 share them; LOCAL3 adds the last three).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalParams {
    pub on: bool,
    pub stratum: i32,
    pub distance: f64,
    pub orphan: bool,
    pub activate: f64,
    pub wait_synced: f64,
    pub wait_unsynced: f64,
}

/// One cmdmon request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// REQ_NULL (code 0): answered with a plain `200 OK`; a liveness probe.
    Null,
    Online {
        mask: Addr,
        address: Addr,
    },
    Offline {
        mask: Addr,
        address: Addr,
    },
    Burst {
        mask: Addr,
        address: Addr,
        n_good: i32,
        n_total: i32,
    },
    ModifySourceInt {
        field: SourceIntField,
        address: Addr,
        value: i32,
    },
    ModifySourceFloat {
        field: SourceFloatField,
        address: Addr,
        value: f64,
    },
    ModifyGlobalFloat {
        field: GlobalFloatField,
        value: f64,
    },
    Dump,
    Settime {
        time: Timespec,
    },
    /// `manual off|on|reset`: option 0, 1, 2.
    Manual {
        option: i32,
    },
    NSources,
    SourceData {
        index: i32,
    },
    Rekey,
    Access {
        op: AccessOp,
        ip: Addr,
        subnet_bits: i32,
    },
    AcCheck {
        ip: Addr,
    },
    CmdAcCheck {
        ip: Addr,
    },
    DelSource {
        ip: Addr,
    },
    WriteRtc,
    Tracking,
    SourceStats {
        index: u32,
    },
    RtcReport,
    TrimRtc,
    CycleLogs,
    ManualList,
    ManualDelete {
        index: i32,
    },
    MakeStep,
    Activity,
    Reselect,
    ModifyMakestep {
        limit: i32,
        threshold: f64,
    },
    Smoothing,
    /// `smoothtime reset|activate`: option 0, 1.
    SmoothTime {
        option: i32,
    },
    Refresh,
    ServerStats,
    NtpData {
        ip: Addr,
    },
    Shutdown,
    OnOffline,
    AddSource(Box<AddSource>),
    NtpSourceName {
        ip: Addr,
    },
    ResetSources,
    AuthData {
        ip: Addr,
    },
    ClientAccessesByIndex {
        first_index: u32,
        n_clients: u32,
        min_hits: u32,
        reset: u32,
    },
    SelectData {
        index: u32,
    },
    ReloadSources,
    ModifySelectOpts {
        address: Addr,
        ref_id: u32,
        mask: u32,
        options: u32,
    },
    ModifyOffset {
        address: Addr,
        ref_id: u32,
        offset: f64,
    },
    /// LOCAL2 (chronyc ≤ 4.5): `activate`/`wait_*` are not on the wire and decode as 0.
    Local2(LocalParams),
    /// LOCAL3 (chronyc 4.6+).
    Local3(LocalParams),
}

impl Request {
    /// The request code.
    pub fn command(&self) -> u16 {
        use crate::code::*;
        match self {
            Request::Null => NULL,
            Request::Online { .. } => ONLINE,
            Request::Offline { .. } => OFFLINE,
            Request::Burst { .. } => BURST,
            Request::ModifySourceInt { field, .. } => match field {
                SourceIntField::Minpoll => MODIFY_MINPOLL,
                SourceIntField::Maxpoll => MODIFY_MAXPOLL,
                SourceIntField::Minstratum => MODIFY_MINSTRATUM,
                SourceIntField::Polltarget => MODIFY_POLLTARGET,
            },
            Request::ModifySourceFloat { field, .. } => match field {
                SourceFloatField::Maxdelay => MODIFY_MAXDELAY,
                SourceFloatField::Maxdelayratio => MODIFY_MAXDELAYRATIO,
                SourceFloatField::Maxdelaydevratio => MODIFY_MAXDELAYDEVRATIO,
            },
            Request::ModifyGlobalFloat { field, .. } => match field {
                GlobalFloatField::Maxupdateskew => MODIFY_MAXUPDATESKEW,
                GlobalFloatField::Dfreq => DFREQ,
                GlobalFloatField::ReselectDistance => RESELECTDISTANCE,
                GlobalFloatField::Doffset => DOFFSET2,
            },
            Request::Dump => DUMP,
            Request::Settime { .. } => SETTIME,
            Request::Manual { .. } => MANUAL,
            Request::NSources => N_SOURCES,
            Request::SourceData { .. } => SOURCE_DATA,
            Request::Rekey => REKEY,
            Request::Access { op, .. } => match op {
                AccessOp::Allow => ALLOW,
                AccessOp::AllowAll => ALLOWALL,
                AccessOp::Deny => DENY,
                AccessOp::DenyAll => DENYALL,
                AccessOp::CmdAllow => CMDALLOW,
                AccessOp::CmdAllowAll => CMDALLOWALL,
                AccessOp::CmdDeny => CMDDENY,
                AccessOp::CmdDenyAll => CMDDENYALL,
            },
            Request::AcCheck { .. } => ACCHECK,
            Request::CmdAcCheck { .. } => CMDACCHECK,
            Request::DelSource { .. } => DEL_SOURCE,
            Request::WriteRtc => WRITERTC,
            Request::Tracking => TRACKING,
            Request::SourceStats { .. } => SOURCESTATS,
            Request::RtcReport => RTCREPORT,
            Request::TrimRtc => TRIMRTC,
            Request::CycleLogs => CYCLELOGS,
            Request::ManualList => MANUAL_LIST,
            Request::ManualDelete { .. } => MANUAL_DELETE,
            Request::MakeStep => MAKESTEP,
            Request::Activity => ACTIVITY,
            Request::Reselect => RESELECT,
            Request::ModifyMakestep { .. } => MODIFY_MAKESTEP,
            Request::Smoothing => SMOOTHING,
            Request::SmoothTime { .. } => SMOOTHTIME,
            Request::Refresh => REFRESH,
            Request::ServerStats => SERVER_STATS,
            Request::NtpData { .. } => NTP_DATA,
            Request::Shutdown => SHUTDOWN,
            Request::OnOffline => ONOFFLINE,
            Request::AddSource(_) => ADD_SOURCE,
            Request::NtpSourceName { .. } => NTP_SOURCE_NAME,
            Request::ResetSources => RESET_SOURCES,
            Request::AuthData { .. } => AUTH_DATA,
            Request::ClientAccessesByIndex { .. } => CLIENT_ACCESSES_BY_INDEX3,
            Request::SelectData { .. } => SELECT_DATA,
            Request::ReloadSources => RELOAD_SOURCES,
            Request::ModifySelectOpts { .. } => MODIFY_SELECTOPTS,
            Request::ModifyOffset { .. } => MODIFY_OFFSET,
            Request::Local2(_) => LOCAL2,
            Request::Local3(_) => LOCAL3,
        }
    }

    fn encode_fields(&self, w: &mut Writer) {
        match self {
            Request::Online { mask, address } | Request::Offline { mask, address } => {
                w.addr(mask);
                w.addr(address);
            }
            Request::Burst {
                mask,
                address,
                n_good,
                n_total,
            } => {
                w.addr(mask);
                w.addr(address);
                w.i32(*n_good);
                w.i32(*n_total);
            }
            Request::ModifySourceInt { address, value, .. } => {
                w.addr(address);
                w.i32(*value);
            }
            Request::ModifySourceFloat { address, value, .. } => {
                w.addr(address);
                w.float(*value);
            }
            Request::ModifyGlobalFloat { value, .. } => w.float(*value),
            Request::Dump => w.i32(0),
            Request::Settime { time } => w.timespec(time),
            Request::Manual { option } | Request::SmoothTime { option } => w.i32(*option),
            Request::SourceData { index } | Request::ManualDelete { index } => w.i32(*index),
            Request::SourceStats { index } | Request::SelectData { index } => w.u32(*index),
            Request::Access {
                ip, subnet_bits, ..
            } => {
                w.addr(ip);
                w.i32(*subnet_bits);
            }
            Request::AcCheck { ip }
            | Request::CmdAcCheck { ip }
            | Request::DelSource { ip }
            | Request::NtpData { ip }
            | Request::NtpSourceName { ip }
            | Request::AuthData { ip } => w.addr(ip),
            Request::ModifyMakestep { limit, threshold } => {
                w.i32(*limit);
                w.float(*threshold);
            }
            Request::AddSource(a) => encode_add_source(w, a),
            Request::ClientAccessesByIndex {
                first_index,
                n_clients,
                min_hits,
                reset,
            } => {
                w.u32(*first_index);
                w.u32(*n_clients);
                w.u32(*min_hits);
                w.u32(*reset);
            }
            Request::ModifySelectOpts {
                address,
                ref_id,
                mask,
                options,
            } => {
                w.addr(address);
                w.u32(*ref_id);
                w.u32(*mask);
                w.u32(*options);
            }
            Request::ModifyOffset {
                address,
                ref_id,
                offset,
            } => {
                w.addr(address);
                w.u32(*ref_id);
                w.float(*offset);
            }
            Request::Local2(p) | Request::Local3(p) => {
                w.i32(i32::from(p.on));
                w.i32(p.stratum);
                w.float(p.distance);
                w.i32(i32::from(p.orphan));
                if matches!(self, Request::Local3(_)) {
                    w.float(p.activate);
                    w.float(p.wait_synced);
                    w.float(p.wait_unsynced);
                }
            }
            Request::Null
            | Request::NSources
            | Request::Rekey
            | Request::WriteRtc
            | Request::Tracking
            | Request::RtcReport
            | Request::TrimRtc
            | Request::CycleLogs
            | Request::ManualList
            | Request::MakeStep
            | Request::Activity
            | Request::Reselect
            | Request::Smoothing
            | Request::Refresh
            | Request::ServerStats
            | Request::Shutdown
            | Request::OnOffline
            | Request::ResetSources
            | Request::ReloadSources => {}
        }
    }
}

fn encode_add_source(w: &mut Writer, a: &AddSource) {
    w.u32(match a.source_type {
        SourceType::Server => 1,
        SourceType::Peer => 2,
        SourceType::Pool => 3,
    });
    w.fixed_str(&a.name, SOURCE_NAME_LEN);
    w.u32(a.port);
    w.i32(a.minpoll);
    w.i32(a.maxpoll);
    w.i32(a.presend_minpoll);
    w.u32(a.min_stratum);
    w.u32(a.poll_target);
    w.u32(a.version);
    w.u32(a.max_sources);
    w.i32(a.min_samples);
    w.i32(a.max_samples);
    w.u32(a.authkey);
    w.u32(a.nts_port);
    w.float(a.max_delay);
    w.float(a.max_delay_ratio);
    w.float(a.max_delay_dev_ratio);
    w.float(a.min_delay);
    w.float(a.asymmetry);
    w.float(a.offset);
    w.u32(a.flags);
    w.i32(a.filter_length);
    w.u32(a.cert_set);
    w.float(a.max_delay_quant);
    w.i32(a.max_unreach);
}

fn decode_add_source(r: &mut Reader<'_>) -> Result<AddSource, DecodeError> {
    let source_type = match r.u32()? {
        1 => SourceType::Server,
        2 => SourceType::Peer,
        3 => SourceType::Pool,
        t => return Err(DecodeError::BadSourceType(t)),
    };
    if !r.has_nul_within(SOURCE_NAME_LEN) {
        return Err(DecodeError::UnterminatedName);
    }
    Ok(AddSource {
        source_type,
        name: r.fixed_str(SOURCE_NAME_LEN)?,
        port: r.u32()?,
        minpoll: r.i32()?,
        maxpoll: r.i32()?,
        presend_minpoll: r.i32()?,
        min_stratum: r.u32()?,
        poll_target: r.u32()?,
        version: r.u32()?,
        max_sources: r.u32()?,
        min_samples: r.i32()?,
        max_samples: r.i32()?,
        authkey: r.u32()?,
        nts_port: r.u32()?,
        max_delay: r.float()?,
        max_delay_ratio: r.float()?,
        max_delay_dev_ratio: r.float()?,
        min_delay: r.float()?,
        asymmetry: r.float()?,
        offset: r.float()?,
        flags: r.u32()?,
        filter_length: r.i32()?,
        cert_set: r.u32()?,
        max_delay_quant: r.float()?,
        max_unreach: r.i32()?,
    })
}

/// Encodes a request datagram, zero-padded to [`request_length`].
pub fn encode_request(request: &Request, attempt: u16, sequence: u32) -> Vec<u8> {
    let command = request.command();
    let mut w = Writer::default();
    w.u8(PROTO_VERSION);
    w.u8(PKT_TYPE_REQUEST);
    w.u8(0);
    w.u8(0);
    w.u16(command);
    w.u16(attempt);
    w.u32(sequence);
    w.u32(0);
    w.u32(0);
    request.encode_fields(&mut w);
    w.pad_to(request_length(command).unwrap_or(0));
    w.buf
}

/// Decodes only the header (the daemon needs it to answer errors such as a bad version or a
/// short packet). Checks length bounds, packet type and reserved bytes; not the version.
pub fn decode_request_header(buf: &[u8]) -> Result<RequestHeader, DecodeError> {
    // chronyd drops anything shorter than a reply header.
    if buf.len() < crate::reply::REPLY_HEADER_LEN || buf.len() > MAX_REQUEST_LEN {
        return Err(DecodeError::BadLength(buf.len()));
    }
    let mut r = Reader::new(buf, 0);
    let version = r.u8()?;
    let pkt_type = r.u8()?;
    let res1 = r.u8()?;
    let res2 = r.u8()?;
    if pkt_type != PKT_TYPE_REQUEST {
        return Err(DecodeError::BadPacketType(pkt_type));
    }
    if res1 != 0 || res2 != 0 {
        return Err(DecodeError::NonZeroReserved);
    }
    Ok(RequestHeader {
        version,
        command: r.u16()?,
        attempt: r.u16()?,
        sequence: r.u32()?,
    })
}

/// Decodes a request datagram. Total: every input yields a value or an error.
pub fn decode_request(buf: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
    use crate::code::*;
    let header = decode_request_header(buf)?;
    if header.version != PROTO_VERSION {
        return Err(DecodeError::BadVersion(header.version));
    }
    let command = header.command;
    let needed = min_request_length(command).ok_or(DecodeError::UnknownCommand(command))?;
    if buf.len() < needed {
        return Err(DecodeError::ShortRequest {
            command,
            needed,
            have: buf.len(),
        });
    }
    let mut r = Reader::new(buf, REQUEST_HEADER_LEN);
    let r = &mut r;
    let req = match command {
        NULL => Request::Null,
        ONLINE => Request::Online {
            mask: r.addr()?,
            address: r.addr()?,
        },
        OFFLINE => Request::Offline {
            mask: r.addr()?,
            address: r.addr()?,
        },
        BURST => Request::Burst {
            mask: r.addr()?,
            address: r.addr()?,
            n_good: r.i32()?,
            n_total: r.i32()?,
        },
        MODIFY_MINPOLL | MODIFY_MAXPOLL | MODIFY_MINSTRATUM | MODIFY_POLLTARGET => {
            let field = match command {
                MODIFY_MINPOLL => SourceIntField::Minpoll,
                MODIFY_MAXPOLL => SourceIntField::Maxpoll,
                MODIFY_MINSTRATUM => SourceIntField::Minstratum,
                _ => SourceIntField::Polltarget,
            };
            Request::ModifySourceInt {
                field,
                address: r.addr()?,
                value: r.i32()?,
            }
        }
        MODIFY_MAXDELAY | MODIFY_MAXDELAYRATIO | MODIFY_MAXDELAYDEVRATIO => {
            let field = match command {
                MODIFY_MAXDELAY => SourceFloatField::Maxdelay,
                MODIFY_MAXDELAYRATIO => SourceFloatField::Maxdelayratio,
                _ => SourceFloatField::Maxdelaydevratio,
            };
            Request::ModifySourceFloat {
                field,
                address: r.addr()?,
                value: r.float()?,
            }
        }
        MODIFY_MAXUPDATESKEW | DFREQ | RESELECTDISTANCE | DOFFSET2 => {
            let field = match command {
                MODIFY_MAXUPDATESKEW => GlobalFloatField::Maxupdateskew,
                DFREQ => GlobalFloatField::Dfreq,
                RESELECTDISTANCE => GlobalFloatField::ReselectDistance,
                _ => GlobalFloatField::Doffset,
            };
            Request::ModifyGlobalFloat {
                field,
                value: r.float()?,
            }
        }
        DUMP => Request::Dump,
        SETTIME => Request::Settime {
            time: r.timespec()?,
        },
        MANUAL => Request::Manual { option: r.i32()? },
        N_SOURCES => Request::NSources,
        SOURCE_DATA => Request::SourceData { index: r.i32()? },
        REKEY => Request::Rekey,
        ALLOW..=CMDDENYALL => {
            let op = match command {
                ALLOW => AccessOp::Allow,
                ALLOWALL => AccessOp::AllowAll,
                DENY => AccessOp::Deny,
                DENYALL => AccessOp::DenyAll,
                CMDALLOW => AccessOp::CmdAllow,
                CMDALLOWALL => AccessOp::CmdAllowAll,
                CMDDENY => AccessOp::CmdDeny,
                _ => AccessOp::CmdDenyAll,
            };
            Request::Access {
                op,
                ip: r.addr()?,
                subnet_bits: r.i32()?,
            }
        }
        ACCHECK => Request::AcCheck { ip: r.addr()? },
        CMDACCHECK => Request::CmdAcCheck { ip: r.addr()? },
        DEL_SOURCE => Request::DelSource { ip: r.addr()? },
        WRITERTC => Request::WriteRtc,
        TRACKING => Request::Tracking,
        SOURCESTATS => Request::SourceStats { index: r.u32()? },
        RTCREPORT => Request::RtcReport,
        TRIMRTC => Request::TrimRtc,
        CYCLELOGS => Request::CycleLogs,
        MANUAL_LIST => Request::ManualList,
        MANUAL_DELETE => Request::ManualDelete { index: r.i32()? },
        MAKESTEP => Request::MakeStep,
        ACTIVITY => Request::Activity,
        RESELECT => Request::Reselect,
        MODIFY_MAKESTEP => Request::ModifyMakestep {
            limit: r.i32()?,
            threshold: r.float()?,
        },
        SMOOTHING => Request::Smoothing,
        SMOOTHTIME => Request::SmoothTime { option: r.i32()? },
        REFRESH => Request::Refresh,
        SERVER_STATS => Request::ServerStats,
        NTP_DATA => Request::NtpData { ip: r.addr()? },
        SHUTDOWN => Request::Shutdown,
        ONOFFLINE => Request::OnOffline,
        ADD_SOURCE => Request::AddSource(Box::new(decode_add_source(r)?)),
        NTP_SOURCE_NAME => Request::NtpSourceName { ip: r.addr()? },
        RESET_SOURCES => Request::ResetSources,
        AUTH_DATA => Request::AuthData { ip: r.addr()? },
        CLIENT_ACCESSES_BY_INDEX3 => Request::ClientAccessesByIndex {
            first_index: r.u32()?,
            n_clients: r.u32()?,
            min_hits: r.u32()?,
            reset: r.u32()?,
        },
        SELECT_DATA => Request::SelectData { index: r.u32()? },
        RELOAD_SOURCES => Request::ReloadSources,
        MODIFY_SELECTOPTS => Request::ModifySelectOpts {
            address: r.addr()?,
            ref_id: r.u32()?,
            mask: r.u32()?,
            options: r.u32()?,
        },
        MODIFY_OFFSET => Request::ModifyOffset {
            address: r.addr()?,
            ref_id: r.u32()?,
            offset: r.float()?,
        },
        LOCAL2 | LOCAL3 => {
            let mut p = LocalParams {
                on: r.i32()? != 0,
                stratum: r.i32()?,
                distance: r.float()?,
                orphan: r.i32()? != 0,
                activate: 0.0,
                wait_synced: 0.0,
                wait_unsynced: 0.0,
            };
            if command == LOCAL3 {
                p.activate = r.float()?;
                p.wait_synced = r.float()?;
                p.wait_unsynced = r.float()?;
                Request::Local3(p)
            } else {
                Request::Local2(p)
            }
        }
        other => return Err(DecodeError::UnknownCommand(other)),
    };
    Ok((header, req))
}
