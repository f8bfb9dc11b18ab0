//! Golden vectors: every request chronyc 4.3 sent and every reply chronyd 4.3 answered in a
//! loopback lab (tests/golden/chrony-4.3.txt) must decode, and re-encode byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: failures should panic

use gnomon_cmdmon::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn pairs() -> Vec<(String, Vec<u8>, Option<Vec<u8>>)> {
    include_str!("golden/chrony-4.3.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut it = l.split(' ');
            let tag = it.next().unwrap().to_string();
            let req = hex(it.next().unwrap());
            let rep = it.next().unwrap();
            (tag, req, (rep != "-").then(|| hex(rep)))
        })
        .collect()
}

#[test]
fn chronyc_requests_decode_and_re_encode_identically() {
    let all = pairs();
    assert!(all.len() > 60);
    for (tag, req, _) in &all {
        let (h, r) = decode_request(req).unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(req.len(), request_length(h.command).unwrap(), "{tag}");
        assert_eq!(
            &encode_request(&r, h.attempt, h.sequence),
            req,
            "{tag}: {r:?}"
        );
    }
}

#[test]
fn chronyd_replies_decode_and_re_encode_identically() {
    for (tag, req, rep) in pairs() {
        let rep = rep.unwrap();
        let reply = decode_reply(&rep).unwrap_or_else(|e| panic!("{tag}: {e}"));
        let (h, _) = decode_request(&req).unwrap();
        assert!(reply_matches(&reply, h.command, h.sequence), "{tag}");
        assert!(rep.len() <= req.len(), "{tag}: reply longer than request");
        assert_eq!(encode_reply(&reply), rep, "{tag}: {reply:?}");
        if reply.status == Status::Success {
            let code = ReplyCode::for_request(h.command, req.len()).unwrap();
            assert_eq!(reply.body.code(), code, "{tag}");
        }
    }
}

#[test]
fn tracking_reply_fields_match_chronyc_output() {
    let (_, _, rep) = pairs().into_iter().find(|p| p.0 == "tracking").unwrap();
    let ReplyBody::Tracking(t) = decode_reply(&rep.unwrap()).unwrap().body else {
        panic!("not tracking")
    };
    assert_eq!(t.ref_id, 0x7f00_0001);
    assert_eq!(t.stratum, 9);
    assert_eq!(t.leap_status, 0);
    assert_eq!(t.ip_addr, Addr::V4("127.0.0.1".parse().unwrap()));
    assert!((t.last_update_interval - 1.0).abs() < 0.05);
}
