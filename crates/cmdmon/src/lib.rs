//! chrony's control ("cmdmon") protocol, version 6: request and reply codecs, its 32-bit float,
//! the length table and status codes. Sans-IO.
#![forbid(unsafe_code)]
