//! Known vectors: requests sent by chronyd 4.3 as a client and the replies of chronyd 4.3 as a
//! server (`local stratum 10`), captured on loopback on 2026-11-22. Three exchanges: a plain
//! request, one authenticated with MD5 key 1 (`server ... key 1`), and one carrying chrony's
//! experimental extension field (`server ... extfield F323`).

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gnomon_wire::extension::FIELD_EXP_MONO_ROOT;
use gnomon_wire::refid::REFID_LOCAL;
use gnomon_wire::{Header, LeapIndicator, Mode, NtpTimestamp, Packet};
use md5::{Digest, Md5};

const PLAIN_REQUEST: &str = "230000200000000000000000000000000000000000000000000000000000000000000000000000003f5ac037c0833606";
const PLAIN_REPLY: &str = "240a00e700000000000000007f7f0101eeacda2b815d93433f5ac037c0833606eeacda40cb680821eeacda40cb6914be";
const MD5_REQUEST: &str = "2300002000000000000000000000000000000000000000000000000000000000000000000000000020201ad585b0dd3d0000000110c090b91d04c02a9ee20817227b6f0e";
const MD5_REPLY: &str = "240a00e700000000000000007f7f0101eeacda2b815d934320201ad585b0dd3deeacda40ebbbd8ffeeacda40ebbe31a600000001afdb0cf594c77d80403afe7638b1a87c";
const EF_REQUEST: &str = "230000200000000000000000000000000000000000000000000000000000000000000000000000009228015ae7121aedf323001cf5bedd9a0000000000000000000000000000000000000000";
const EF_REPLY: &str = "240a00e700000000000000007f7f0101eeacda2b815d93439228015ae7121aedeeacda40cb59f111eeacda40cb5c2a30f323001cf5bedd9a0000000000000000eeacda40cb59f15747549467";

/// The MD5 key of the capture's keyfile: `1 MD5 HEX:00112233445566778899AABBCCDDEEFF`.
const KEY_1: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

/// Unix time of the capture, used as the era pivot.
const CAPTURE_UNIX: i64 = 1_795_316_000;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn reencoded(buf: &[u8]) -> Vec<u8> {
    let p = Packet::decode(buf).unwrap();
    let mut out = vec![0u8; p.wire_len()];
    p.encode(&mut out).unwrap();
    out
}

/// Checks what every chronyd client request in the capture has in common: NTPv4 client mode,
/// everything zero but the (random, for privacy) transmit timestamp and chrony's fixed
/// precision octet 0x20.
fn check_request(h: &Header) {
    assert_eq!(h.leap, LeapIndicator::NoWarning);
    assert_eq!(h.version, 4);
    assert_eq!(h.mode, Mode::Client);
    assert_eq!(h.stratum, 0);
    assert_eq!(h.poll, 0);
    assert_eq!(h.precision, 32);
    assert_eq!(h.reference_id, 0);
    assert_eq!(h.reference_timestamp, NtpTimestamp::ZERO);
    assert_eq!(h.origin_timestamp, NtpTimestamp::ZERO);
    assert_eq!(h.receive_timestamp, NtpTimestamp::ZERO);
    assert!(!h.transmit_timestamp.is_zero());
}

/// Checks a chronyd server reply to `request`: stratum 10 from `local`, the request's transmit
/// timestamp echoed as origin, and receive ≤ transmit within a millisecond.
fn check_reply(h: &Header, request: &Header) {
    assert_eq!(h.leap, LeapIndicator::NoWarning);
    assert_eq!(h.version, 4);
    assert_eq!(h.mode, Mode::Server);
    assert_eq!(h.stratum, 10);
    assert_eq!(h.precision, -25);
    assert_eq!(h.reference_id, REFID_LOCAL);
    assert_eq!(h.origin_timestamp, request.transmit_timestamp);
    let turnaround = h.transmit_timestamp.diff_seconds(h.receive_timestamp);
    assert!((0.0..0.001).contains(&turnaround), "{turnaround}");
    let (rx_unix, _) = h.receive_timestamp.to_unix(CAPTURE_UNIX);
    assert!((rx_unix - CAPTURE_UNIX).abs() < 86_400, "{rx_unix}");
    assert!(h.reference_timestamp.diff_seconds(h.receive_timestamp) < 0.0);
}

fn keyed_md5(data: &[u8]) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(KEY_1);
    hasher.update(data);
    hasher.finalize().into()
}

#[test]
fn chronyd_plain_exchange_decodes_and_reencodes() {
    let req_buf = hex(PLAIN_REQUEST);
    let rep_buf = hex(PLAIN_REPLY);
    let req = Packet::decode(&req_buf).unwrap();
    let rep = Packet::decode(&rep_buf).unwrap();
    check_request(&req.header);
    check_reply(&rep.header, &req.header);
    assert!(req.extensions.is_empty() && req.mac.is_none());
    assert!(rep.extensions.is_empty() && rep.mac.is_none());
    assert_eq!(reencoded(&req_buf), req_buf);
    assert_eq!(reencoded(&rep_buf), rep_buf);
}

#[test]
fn chronyd_md5_exchange_has_mac_over_header() {
    let req_buf = hex(MD5_REQUEST);
    let rep_buf = hex(MD5_REPLY);
    let req = Packet::decode(&req_buf).unwrap();
    let rep = Packet::decode(&rep_buf).unwrap();
    check_request(&req.header);
    check_reply(&rep.header, &req.header);
    for (p, buf) in [(req, &req_buf), (rep, &rep_buf)] {
        assert!(p.extensions.is_empty());
        let mac = p.mac.unwrap();
        assert_eq!(mac.key_id, 1);
        // chrony's symmetric MAC is MD5(key || packet before the key id).
        assert_eq!(mac.digest, keyed_md5(p.authenticated_part(buf)));
        assert_eq!(reencoded(buf), *buf);
    }
}

#[test]
fn chronyd_extfield_exchange_carries_f323_field() {
    let req_buf = hex(EF_REQUEST);
    let rep_buf = hex(EF_REPLY);
    let req = Packet::decode(&req_buf).unwrap();
    let rep = Packet::decode(&rep_buf).unwrap();
    check_request(&req.header);
    check_reply(&rep.header, &req.header);
    for p in [req, rep] {
        assert_eq!(p.mac, None);
        let fields: Vec<_> = p.extensions.iter().collect();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].field_type, FIELD_EXP_MONO_ROOT);
        // 28 octets: the RFC 7822 minimum for a last field without a MAC.
        assert_eq!(fields[0].wire_len(), 28);
        assert_eq!(&fields[0].value[..4], &[0xf5, 0xbe, 0xdd, 0x9a]);
    }
    // The request's field is empty after the magic; the reply's holds the server's data.
    assert!(req.extensions.iter().next().unwrap().value[4..]
        .iter()
        .all(|&b| b == 0));
    assert_eq!(reencoded(&req_buf), req_buf);
    assert_eq!(reencoded(&rep_buf), rep_buf);
}
