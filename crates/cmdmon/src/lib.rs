//! chrony's control ("cmdmon") protocol, version 6: request and reply codecs, its 32-bit float,
//! the length table and status codes. Sans-IO: callers own sockets and clocks.
//!
//! Client side: [`encode_request`] then [`decode_reply`]. Daemon side: [`decode_request`]
//! (or [`decode_request_header`] to answer a malformed packet), pick the reply format with
//! [`ReplyCode::for_request`], then [`encode_reply`].
#![forbid(unsafe_code)]

pub mod field;
pub mod float;
pub mod reply;
pub mod request;
pub mod status;

pub use field::{Addr, DecodeError, Timespec};
pub use float::{decode_float, encode_float};
pub use reply::{
    decode_reply, encode_reply, reply_length, reply_matches, Activity, AuthData, ClientAccess,
    ClientAccesses, ManualSample, NtpData, Reply, ReplyBody, ReplyCode, Rtc, SelectData,
    ServerStats, Smoothing, SourceData, SourceStats, Tracking, MAX_CLIENT_ACCESSES,
    REPLY_HEADER_LEN,
};
pub use request::{
    add_flags, code, decode_request, decode_request_header, encode_request, expected_reply,
    min_request_length, request_fields_length, request_length, AccessOp, AddSource,
    GlobalFloatField, LocalParams, Request, RequestHeader, SourceFloatField, SourceIntField,
    SourceType, MAX_REQUEST_LEN, REQUEST_HEADER_LEN,
};
pub use status::{Status, BAD_REPLY, CANNOT_TALK};
