//! Invariants of the cmdmon codec on arbitrary input, shared by the stable property tests
//! (crates/cmdmon/tests/properties.rs) and the fuzz targets (fuzz/fuzz_targets/cmdmon_*.rs).

use gnomon_cmdmon::{
    classify, decode_reply, decode_request, encode_reply, encode_request, request_length, Incoming,
    ReplyCode, MAX_REQUEST_LEN, REPLY_HEADER_LEN,
};

/// Decoding a request never panics; an accepted request re-encodes to its code's length and
/// decodes back to the same value; the reply format chosen for it is never longer than it.
pub fn check_request(data: &[u8]) {
    // The daemon's classifier never panics and never answers with more than it was sent.
    match classify(data) {
        Incoming::Reject(r) => {
            assert!(r.len() <= data.len());
            assert!(decode_reply(&r).is_ok());
        }
        Incoming::Request { len, .. } => assert_eq!(len, data.len()),
        Incoming::Drop(_) => {}
    }
    let Ok((h, req)) = decode_request(data) else {
        return;
    };
    assert!(data.len() >= REPLY_HEADER_LEN && data.len() <= MAX_REQUEST_LEN);
    assert_eq!(req.command(), h.command);
    let enc = encode_request(&req, h.attempt, h.sequence);
    assert_eq!(Some(enc.len()), request_length(h.command));
    assert!(enc.len() <= data.len());
    let (h2, req2) = decode_request(&enc).expect("re-encoded request decodes");
    assert_eq!((h2, req2), (h, req));
    let code = ReplyCode::for_request(h.command, data.len()).expect("known command has a reply");
    assert!(gnomon_cmdmon::reply_length(code) <= data.len());
}

/// Decoding a reply never panics; an accepted reply re-encodes to its code's length and decodes
/// back to the same value.
pub fn check_reply(data: &[u8]) {
    let Ok(reply) = decode_reply(data) else {
        return;
    };
    let enc = encode_reply(&reply);
    assert_eq!(enc.len(), gnomon_cmdmon::reply_length(reply.body.code()));
    assert!(enc.len() <= data.len());
    let again = decode_reply(&enc).expect("re-encoded reply decodes");
    assert_eq!(again, reply);
}
