//! chrony's control ("cmdmon") protocol, version 6: request and reply codecs, its 32-bit float,
//! the length table and status codes. Sans-IO: callers own sockets and clocks.
//!
//! Client side: [`encode_request`] then [`decode_reply`]. Daemon side: [`server::classify`]
//! each datagram (drop, error reply, or a decoded [`Request`]), check [`server::open_by_default`]
//! for UDP, pick the reply format with [`ReplyCode::for_request`], then [`server::answer`].
#![forbid(unsafe_code)]

pub mod code;
pub mod field;
pub mod float;
pub mod payload;
pub mod reply;
pub mod request;
pub mod server;
pub mod status;

pub use code::{expected_reply, min_request_length, request_fields_length, request_length};
pub use field::{Addr, DecodeError, Timespec};
pub use float::{decode_float, encode_float};
pub use reply::{
    decode_reply, encode_reply, reply_length, reply_matches, Activity, AuthData, ClientAccess,
    ClientAccesses, ManualSample, NtpData, Reply, ReplyBody, ReplyCode, Rtc, SelectData,
    ServerStats, Smoothing, SourceData, SourceStats, Tracking, MAX_CLIENT_ACCESSES,
    REPLY_HEADER_LEN,
};
pub use request::{
    add_flags, decode_request, decode_request_header, encode_request, AccessOp, AddSource,
    GlobalFloatField, LocalParams, Request, RequestHeader, SourceFloatField, SourceIntField,
    SourceType, MAX_REQUEST_LEN, REQUEST_HEADER_LEN,
};
pub use server::{answer, classify, Incoming};
pub use status::{Status, BAD_REPLY, CANNOT_TALK};
