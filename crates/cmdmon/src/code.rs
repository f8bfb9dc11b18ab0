//! cmdmon request codes (protocol v6) and the request-length table (features.md §4.5, §4.8):
//! the size of each request's fields, the reply each expects, and the padded datagram length
//! chronyc 4.3 sends, so that a reply is never longer than its request.

use crate::field::{Addr, Timespec};
use crate::reply::{reply_length, ReplyCode};
use crate::request::{REQUEST_HEADER_LEN, SOURCE_NAME_LEN};

// Request codes.
pub const NULL: u16 = 0;
pub const ONLINE: u16 = 1;
pub const OFFLINE: u16 = 2;
pub const BURST: u16 = 3;
pub const MODIFY_MINPOLL: u16 = 4;
pub const MODIFY_MAXPOLL: u16 = 5;
pub const DUMP: u16 = 6;
pub const MODIFY_MAXDELAY: u16 = 7;
pub const MODIFY_MAXDELAYRATIO: u16 = 8;
pub const MODIFY_MAXUPDATESKEW: u16 = 9;
pub const SETTIME: u16 = 11;
pub const MANUAL: u16 = 13;
pub const N_SOURCES: u16 = 14;
pub const SOURCE_DATA: u16 = 15;
pub const REKEY: u16 = 16;
pub const ALLOW: u16 = 17;
pub const ALLOWALL: u16 = 18;
pub const DENY: u16 = 19;
pub const DENYALL: u16 = 20;
pub const CMDALLOW: u16 = 21;
pub const CMDALLOWALL: u16 = 22;
pub const CMDDENY: u16 = 23;
pub const CMDDENYALL: u16 = 24;
pub const ACCHECK: u16 = 25;
pub const CMDACCHECK: u16 = 26;
pub const DEL_SOURCE: u16 = 29;
pub const WRITERTC: u16 = 30;
pub const DFREQ: u16 = 31;
pub const TRACKING: u16 = 33;
pub const SOURCESTATS: u16 = 34;
pub const RTCREPORT: u16 = 35;
pub const TRIMRTC: u16 = 36;
pub const CYCLELOGS: u16 = 37;
pub const MANUAL_LIST: u16 = 41;
pub const MANUAL_DELETE: u16 = 42;
pub const MAKESTEP: u16 = 43;
pub const ACTIVITY: u16 = 44;
pub const MODIFY_MINSTRATUM: u16 = 45;
pub const MODIFY_POLLTARGET: u16 = 46;
pub const MODIFY_MAXDELAYDEVRATIO: u16 = 47;
pub const RESELECT: u16 = 48;
pub const RESELECTDISTANCE: u16 = 49;
pub const MODIFY_MAKESTEP: u16 = 50;
pub const SMOOTHING: u16 = 51;
pub const SMOOTHTIME: u16 = 52;
pub const REFRESH: u16 = 53;
pub const SERVER_STATS: u16 = 54;
pub const LOCAL2: u16 = 56;
pub const NTP_DATA: u16 = 57;
pub const SHUTDOWN: u16 = 62;
pub const ONOFFLINE: u16 = 63;
pub const ADD_SOURCE: u16 = 64;
pub const NTP_SOURCE_NAME: u16 = 65;
pub const RESET_SOURCES: u16 = 66;
pub const AUTH_DATA: u16 = 67;
pub const CLIENT_ACCESSES_BY_INDEX3: u16 = 68;
pub const SELECT_DATA: u16 = 69;
pub const RELOAD_SOURCES: u16 = 70;
pub const DOFFSET2: u16 = 71;
pub const MODIFY_SELECTOPTS: u16 = 72;
pub const MODIFY_OFFSET: u16 = 73;
pub const LOCAL3: u16 = 74;

const ADD_SOURCE_FIELDS: usize = 4 + SOURCE_NAME_LEN + 4 + 12 + 16 + 8 + 8 + 24 + 4 + 4 + 4 + 4 + 4;

/// Length of the command-specific fields of a request code (after the header), or `None` for
/// codes protocol v6 does not serve.
pub fn request_fields_length(command: u16) -> Option<usize> {
    const A: usize = Addr::LEN;
    Some(match command {
        ONLINE | OFFLINE => 2 * A,
        BURST => 2 * A + 8,
        MODIFY_MINPOLL | MODIFY_MAXPOLL | MODIFY_MINSTRATUM | MODIFY_POLLTARGET => A + 4,
        MODIFY_MAXDELAY | MODIFY_MAXDELAYRATIO | MODIFY_MAXDELAYDEVRATIO => A + 4,
        DUMP | MODIFY_MAXUPDATESKEW | DFREQ | RESELECTDISTANCE | DOFFSET2 | MANUAL
        | MANUAL_DELETE | SMOOTHTIME | SOURCE_DATA | SOURCESTATS | SELECT_DATA => 4,
        SETTIME => Timespec::LEN,
        NULL | N_SOURCES | REKEY | WRITERTC | TRACKING | RTCREPORT | TRIMRTC | CYCLELOGS
        | MANUAL_LIST | MAKESTEP | ACTIVITY | RESELECT | SMOOTHING | REFRESH | SERVER_STATS
        | SHUTDOWN | ONOFFLINE | RESET_SOURCES | RELOAD_SOURCES => 0,
        ALLOW..=CMDDENYALL => A + 4,
        ACCHECK | CMDACCHECK | DEL_SOURCE | NTP_DATA | NTP_SOURCE_NAME | AUTH_DATA => A,
        MODIFY_MAKESTEP => 8,
        ADD_SOURCE => ADD_SOURCE_FIELDS,
        CLIENT_ACCESSES_BY_INDEX3 => 16,
        MODIFY_SELECTOPTS => A + 12,
        MODIFY_OFFSET => A + 8,
        LOCAL2 => 16,
        LOCAL3 => 28,
        _ => return None,
    })
}

/// The reply code a successful request expects, in the format chronyc 4.3 uses.
pub fn expected_reply(command: u16) -> Option<ReplyCode> {
    request_fields_length(command)?;
    Some(match command {
        SETTIME => ReplyCode::ManualTimestamp2,
        N_SOURCES => ReplyCode::NSources,
        SOURCE_DATA => ReplyCode::SourceData,
        TRACKING => ReplyCode::Tracking,
        SOURCESTATS => ReplyCode::SourceStats,
        RTCREPORT => ReplyCode::Rtc,
        MANUAL_LIST => ReplyCode::ManualList2,
        ACTIVITY => ReplyCode::Activity,
        SMOOTHING => ReplyCode::Smoothing,
        SERVER_STATS => ReplyCode::ServerStats3,
        NTP_DATA => ReplyCode::NtpData,
        NTP_SOURCE_NAME => ReplyCode::NtpSourceName,
        AUTH_DATA => ReplyCode::AuthData,
        CLIENT_ACCESSES_BY_INDEX3 => ReplyCode::ClientAccessesByIndex3,
        SELECT_DATA => ReplyCode::SelectData,
        _ => ReplyCode::Null,
    })
}

/// Datagram length chronyc 4.3 sends for a request code: max(header + fields, expected reply).
pub fn request_length(command: u16) -> Option<usize> {
    let fields = REQUEST_HEADER_LEN + request_fields_length(command)?;
    Some(fields.max(reply_length(expected_reply(command)?)))
}

/// Shortest datagram the daemon accepts for a code. Equal to [`request_length`]: the older,
/// shorter reply formats (SERVER_STATS3, NTP_DATA) are the ones [`request_length`] uses, and a
/// longer request selects the newer format (see [`crate::reply::ReplyCode::for_request`]).
pub fn min_request_length(command: u16) -> Option<usize> {
    request_length(command)
}
