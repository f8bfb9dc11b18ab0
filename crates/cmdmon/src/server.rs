//! The answering side of cmdmon, as chronyd 4.3 behaves (features.md §4.1, §4.4; every rule
//! below was checked by sending crafted datagrams to a real chronyd 4.3):
//!
//! * shorter than 28 or longer than 860 bytes, `pkt_type` ≠ 1 or `res1`/`res2` ≠ 0: dropped;
//! * `version` ≠ 6: `STT_BADPKTVERSION` (header-only reply) when ≥ 5, dropped below;
//! * LOGON (10): `STT_FAILED`; any other code without a v6 meaning: `STT_INVALID`;
//! * shorter than the code's padded length: `STT_BADPKTLENGTH`;
//! * ADD_SOURCE with a bad type: `STT_INVALID`; with an unterminated name: `STT_INVALIDNAME`;
//! * over UDP only the open set is served, everything else gets `STT_UNAUTH`.
//!
//! Error replies are header-only (28 bytes), never longer than the request that caused them.

use crate::code::{self, min_request_length};
use crate::field::DecodeError;
use crate::reply::{encode_reply, reply_length, Reply, ReplyBody, REPLY_HEADER_LEN};
use crate::request::{decode_request, Request, RequestHeader, MAX_REQUEST_LEN, PKT_TYPE_REQUEST};
use crate::status::Status;

/// Why a datagram gets no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than a reply header or longer than the largest request.
    Length(usize),
    /// Not a request packet.
    PacketType(u8),
    /// Reserved header bytes not zero.
    Reserved,
    /// Protocol version below 5.
    OldVersion(u8),
}

/// What to do with a datagram that arrived on a command socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Send nothing.
    Drop(DropReason),
    /// Send this error reply and nothing else.
    Reject(Vec<u8>),
    /// A well-formed request to serve; `len` is the datagram length, which selects the reply
    /// format (see [`crate::ReplyCode::for_request`]) and bounds the reply length.
    Request {
        header: RequestHeader,
        request: Request,
        len: usize,
    },
}

fn reject(command: u16, sequence: u32, status: Status) -> Incoming {
    Incoming::Reject(encode_reply(&Reply::status_only(command, sequence, status)))
}

/// Classifies a datagram the way chronyd does before serving it.
pub fn classify(buf: &[u8]) -> Incoming {
    if buf.len() < REPLY_HEADER_LEN || buf.len() > MAX_REQUEST_LEN {
        return Incoming::Drop(DropReason::Length(buf.len()));
    }
    // The length check above makes these header reads safe.
    let (version, pkt_type) = (buf[0], buf[1]);
    let command = u16::from_be_bytes([buf[4], buf[5]]);
    let sequence = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if pkt_type != PKT_TYPE_REQUEST {
        return Incoming::Drop(DropReason::PacketType(pkt_type));
    }
    if buf[2] != 0 || buf[3] != 0 {
        return Incoming::Drop(DropReason::Reserved);
    }
    if version != crate::request::PROTO_VERSION {
        return if version >= 5 {
            reject(command, sequence, Status::BadPktVersion)
        } else {
            Incoming::Drop(DropReason::OldVersion(version))
        };
    }
    if command == LOGON {
        return reject(command, sequence, Status::Failed);
    }
    let Some(needed) = min_request_length(command) else {
        return reject(command, sequence, Status::Invalid);
    };
    if buf.len() < needed {
        return reject(command, sequence, Status::BadPktLength);
    }
    match decode_request(buf) {
        Ok((header, request)) => Incoming::Request {
            header,
            request,
            len: buf.len(),
        },
        Err(DecodeError::UnterminatedName) => reject(command, sequence, Status::InvalidName),
        Err(_) => reject(command, sequence, Status::Invalid),
    }
}

/// The obsolete LOGON request, which chronyd 4.3 answers with `STT_FAILED`.
pub const LOGON: u16 = 10;

/// Commands served over UDP by default (read-only monitoring; chronyd 4.3 answers everything
/// else over UDP with `STT_UNAUTH`).
pub fn open_by_default(command: u16) -> bool {
    use code::*;
    matches!(
        command,
        NULL | N_SOURCES
            | SOURCE_DATA
            | TRACKING
            | SOURCESTATS
            | RTCREPORT
            | MANUAL_LIST
            | ACTIVITY
            | SMOOTHING
            | NTP_SOURCE_NAME
    )
}

/// Read-only commands that `opencommands` may add to the UDP set (features.md §1.5 "O").
pub fn can_be_opened(command: u16) -> bool {
    use code::*;
    open_by_default(command)
        || matches!(
            command,
            SERVER_STATS | NTP_DATA | AUTH_DATA | CLIENT_ACCESSES_BY_INDEX3 | SELECT_DATA
        )
}

/// Encodes the answer to a request: `body` with `status` (use [`ReplyBody::Null`] for plain
/// statuses). A body longer than the request it answers is replaced by a header-only
/// `STT_BADPKTLENGTH`, so the anti-amplification rule holds whatever the caller passes.
pub fn answer(
    header: &RequestHeader,
    request_len: usize,
    status: Status,
    body: ReplyBody,
) -> Vec<u8> {
    let (status, body) = if reply_length(body.code()) > request_len {
        (Status::BadPktLength, ReplyBody::Null)
    } else {
        (status, body)
    };
    encode_reply(&Reply {
        command: header.command,
        status,
        sequence: header.sequence,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{decode_reply, ReplyCode};
    use crate::request::encode_request;

    fn hdr(version: u8, command: u16, len: usize) -> Vec<u8> {
        let mut p = vec![version, 1, 0, 0];
        p.extend_from_slice(&command.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x11, 0x22, 0x33, 0x44]);
        p.resize(len, 0);
        p
    }

    /// Header-only replies captured from chronyd 4.3 for crafted requests (sequence 0x11223344).
    #[test]
    fn errors_match_chronyd_replies_byte_for_byte() {
        let cases: [(Vec<u8>, &str); 6] = [
            (
                hdr(6, 33, 80),
                "06020000002100010013000000000000112233440000000000000000",
            ),
            (
                hdr(5, 33, 104),
                "06020000002100010012000000000000112233440000000000000000",
            ),
            (
                hdr(7, 33, 104),
                "06020000002100010012000000000000112233440000000000000000",
            ),
            (
                hdr(6, 200, 104),
                "0602000000c800010003000000000000112233440000000000000000",
            ),
            (
                hdr(6, 10, 104),
                "06020000000a00010001000000000000112233440000000000000000",
            ),
            (
                hdr(6, 14, 28),
                "06020000000e00010013000000000000112233440000000000000000",
            ),
        ];
        for (pkt, want) in cases {
            let Incoming::Reject(r) = classify(&pkt) else {
                panic!("{pkt:?} not rejected")
            };
            let got: String = r.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, want);
            assert!(r.len() <= pkt.len());
        }
    }

    #[test]
    fn chronyd_drops_these_silently() {
        assert_eq!(
            classify(&hdr(6, 33, 27)),
            Incoming::Drop(DropReason::Length(27))
        );
        assert_eq!(
            classify(&hdr(6, 33, 861)),
            Incoming::Drop(DropReason::Length(861))
        );
        assert_eq!(
            classify(&hdr(4, 33, 104)),
            Incoming::Drop(DropReason::OldVersion(4))
        );
        let mut p = hdr(6, 33, 104);
        p[1] = 2;
        assert_eq!(classify(&p), Incoming::Drop(DropReason::PacketType(2)));
        let mut p = hdr(6, 33, 104);
        p[2] = 1;
        assert_eq!(classify(&p), Incoming::Drop(DropReason::Reserved));
    }

    #[test]
    fn add_source_errors_get_chronyd_statuses() {
        let mut p = hdr(6, code::ADD_SOURCE, 372);
        p[23] = 7;
        let Incoming::Reject(r) = classify(&p) else {
            panic!()
        };
        assert_eq!(decode_reply(&r).unwrap().status, Status::Invalid);
        p[23] = 1;
        for b in &mut p[24..280] {
            *b = b'a';
        }
        let Incoming::Reject(r) = classify(&p) else {
            panic!()
        };
        assert_eq!(decode_reply(&r).unwrap().status, Status::InvalidName);
    }

    #[test]
    fn newer_clients_get_newer_formats_and_replies_never_exceed_requests() {
        let pkt = encode_request(&Request::ServerStats, 0, 9);
        assert_eq!(pkt.len(), 72);
        let mut long = pkt.clone();
        long.resize(196, 0);
        let Incoming::Request { len, header, .. } = classify(&long) else {
            panic!()
        };
        assert_eq!(
            ReplyCode::for_request(header.command, len),
            Some(ReplyCode::ServerStats4)
        );
        let Incoming::Request { len, header, .. } = classify(&pkt) else {
            panic!()
        };
        assert_eq!(
            ReplyCode::for_request(header.command, len),
            Some(ReplyCode::ServerStats3)
        );
        let r = answer(
            &header,
            len,
            Status::Success,
            ReplyBody::ServerStats4(Default::default()),
        );
        assert_eq!(r.len(), 28);
        assert_eq!(decode_reply(&r).unwrap().status, Status::BadPktLength);
    }

    #[test]
    fn udp_open_set_matches_chronyd() {
        let open: Vec<u16> = (0..80).filter(|&c| open_by_default(c)).collect();
        assert_eq!(open, vec![0, 14, 15, 33, 34, 35, 41, 44, 51, 65]);
        assert!(can_be_opened(code::CLIENT_ACCESSES_BY_INDEX3));
        assert!(!can_be_opened(code::BURST));
    }
}
