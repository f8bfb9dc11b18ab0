//! Responder tests: chronyd 4.3 behaviour measured black-box (loopback) and the catalogue cases
//! of security-cases.md sections W (wire parsing) and S (server abuse) that concern a server.

use std::net::{IpAddr, SocketAddr};

use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};
use proptest::prelude::*;

use super::*;
use crate::access::AccessRule;
use crate::client_log::Service;
use crate::rate_limit::RateLimit;

const RX: NtpTimestamp = NtpTimestamp(0xEEAA_0000_1234_5678);
const PRECISION: i8 = -25;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A server configuration that allows every client (shared with the other server test
/// modules).
pub(super) fn allow_all_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config
        .access
        .apply(&AccessRule {
            allow: true,
            all: false,
            subnet: None,
        })
        .unwrap();
    config
}

fn server() -> Server {
    Server::new(allow_all_config(), 1).unwrap()
}

fn local10() -> ReferenceInfo {
    ReferenceInfo::local(10, NtpTimestamp(0xEEAA_0000_0000_0000), PRECISION)
}

/// A request header with the given first octet fields and transmit timestamp.
fn request(version: u8, mode: Mode, poll: i8, tx: u64) -> Vec<u8> {
    Header {
        leap: LeapIndicator::NoWarning,
        version,
        mode,
        stratum: 0,
        poll,
        precision: -20,
        root_delay: NtpShort(0),
        root_dispersion: NtpShort(0),
        reference_id: 0,
        reference_timestamp: NtpTimestamp::ZERO,
        origin_timestamp: NtpTimestamp::ZERO,
        receive_timestamp: NtpTimestamp::ZERO,
        transmit_timestamp: NtpTimestamp(tx),
    }
    .to_bytes()
    .to_vec()
}

fn client_request() -> Vec<u8> {
    request(4, Mode::Client, 6, 0x0123_4567_89AB_CDEF)
}

fn with_trailer(mut packet: Vec<u8>, trailer: &[u8]) -> Vec<u8> {
    packet.extend_from_slice(trailer);
    packet
}

fn extension_field(field_type: u16, len: u16) -> Vec<u8> {
    let mut f = vec![0u8; usize::from(len).max(4)];
    f[..2].copy_from_slice(&field_type.to_be_bytes());
    f[2..4].copy_from_slice(&len.to_be_bytes());
    f
}

/// Runs one request; returns the reply and the response header when one was built.
fn exchange(server: &mut Server, req: &[u8], from: &str) -> (Reply, Option<Header>) {
    let mut out = [0u8; 1200];
    let reply = server.handle_request(req, addr(from), RX, 100.0, &local10(), &mut out);
    let header = match reply {
        Reply::Send { len } | Reply::Kod { len } => {
            assert!(len <= req.len(), "response longer than request");
            Some(Header::decode(&out[..len]).unwrap())
        }
        Reply::Drop(_) => None,
    };
    (reply, header)
}

fn answered(server: &mut Server, req: &[u8]) -> Option<Header> {
    exchange(server, req, "127.0.0.1:40000").1
}

#[test]
fn client_request_gets_server_reply() {
    let mut s = server();
    let (reply, h) = exchange(&mut s, &client_request(), "127.0.0.1:40000");
    assert_eq!(reply, Reply::Send { len: 48 });
    let h = h.unwrap();
    assert_eq!(h.mode, Mode::Server);
    assert_eq!(h.version, 4);
    assert_eq!(h.receive_timestamp, RX);
    assert_eq!(s.stats().ntp_received, 1);
    assert_eq!(s.stats().ntp_served, 1);
}

#[test]
fn monlist_probe_gets_nothing() {
    let mut s = server();
    let mut probe = vec![0x17, 0x00, 0x03, 0x2a];
    probe.extend_from_slice(&[0u8; 44]);
    let (reply, _) = exchange(&mut s, &probe, "127.0.0.1:40000");
    assert_eq!(reply, Reply::Drop(DropReason::BadMode));
    assert_eq!(s.stats().ntp_received, 0);
    assert_eq!(s.stats().bad_mode, 1);
}

#[test]
fn mode6_gets_nothing() {
    let mut s = server();
    // ntpq readvar: 12 octets, and the same padded to a header's length.
    let mut q = vec![0x16, 0x02, 0x00, 0x01];
    q.extend_from_slice(&[0u8; 8]);
    assert_eq!(
        exchange(&mut s, &q, "127.0.0.1:40000").0,
        Reply::Drop(DropReason::TooShort)
    );
    q.resize(48, 0);
    assert_eq!(
        exchange(&mut s, &q, "127.0.0.1:40000").0,
        Reply::Drop(DropReason::BadMode)
    );
}

#[test]
fn forbidden_modes_get_nothing() {
    let mut s = server();
    for version in 1..=4 {
        for mode in [
            Mode::SymmetricPassive,
            Mode::Server,
            Mode::Broadcast,
            Mode::Control,
            Mode::Private,
        ] {
            assert_eq!(answered(&mut s, &request(version, mode, 6, 1)), None);
        }
    }
    for version in 2..=4 {
        assert_eq!(
            answered(&mut s, &request(version, Mode::Reserved, 6, 1)),
            None
        );
    }
    assert_eq!(s.stats().ntp_received, 0);
}

#[test]
fn symmetric_active_gets_passive_reply_when_allowed() {
    let mut s = server();
    let h = answered(&mut s, &request(3, Mode::SymmetricActive, 6, 5)).unwrap();
    assert_eq!(h.mode, Mode::SymmetricPassive);
    assert_eq!(h.version, 3);
    let mut denied = Server::new(ServerConfig::default(), 1).unwrap();
    assert_eq!(
        exchange(
            &mut denied,
            &request(4, Mode::SymmetricActive, 6, 5),
            "127.0.0.1:123"
        )
        .0,
        Reply::Drop(DropReason::AccessDenied)
    );
}

#[test]
fn ntpv1_mode0_is_answered_unless_from_port_123() {
    let mut s = server();
    let req = request(1, Mode::Reserved, 6, 9);
    let (_, h) = exchange(&mut s, &req, "127.0.0.1:40000");
    let h = h.unwrap();
    assert_eq!((h.mode, h.version), (Mode::Server, 1));
    assert_eq!(
        exchange(&mut s, &req, "127.0.0.1:123").0,
        Reply::Drop(DropReason::BadMode)
    );
}

#[test]
fn version_is_echoed_and_bad_versions_dropped() {
    let mut s = server();
    for version in 1..=4 {
        assert_eq!(
            answered(&mut s, &request(version, Mode::Client, 6, 1))
                .unwrap()
                .version,
            version
        );
    }
    for version in [0, 5, 6, 7] {
        assert_eq!(
            exchange(
                &mut s,
                &request(version, Mode::Client, 6, 1),
                "127.0.0.1:40000"
            )
            .0,
            Reply::Drop(DropReason::BadVersion)
        );
    }
    assert_eq!(s.stats().bad_version, 4);
}

#[test]
fn origin_is_client_transmit_exactly() {
    let mut s = server();
    for tx in [0, 1, u64::MAX, 0x8000_0000_0000_0001, 0xFFFF_FFFF_0000_0000] {
        let h = answered(&mut s, &request(4, Mode::Client, 6, tx)).unwrap();
        assert_eq!(h.origin_timestamp, NtpTimestamp(tx));
    }
}

/// Catalogue S41: a request whose origin equals a receive timestamp this server sent to
/// **another** client (the interleaved-mode signal) gets a basic-mode reply, from
/// `handle_request` (basic only) and from `serve` (interleaved timestamps are saved per client
/// address: server/interleaved.rs has the full spoofing test).
#[test]
fn interleaved_probe_gets_basic_reply() {
    let mut s = server();
    let first = answered(&mut s, &client_request()).unwrap();
    let mut probe = client_request();
    probe[24..32].copy_from_slice(&first.receive_timestamp.0.to_be_bytes());
    probe[32..40].copy_from_slice(&[1; 8]);
    let (_, h) = exchange(&mut s, &probe, "127.0.0.2:40000");
    let h = h.unwrap();
    assert_eq!(h.origin_timestamp, NtpTimestamp(0x0123_4567_89AB_CDEF));
    assert_eq!(h.receive_timestamp, RX);
    let mut out = [0u8; 1200];
    let served = s.serve(
        &probe,
        addr("127.0.0.2:40000"),
        RX,
        100.0,
        &local10(),
        &mut out,
    );
    assert_eq!(
        (served.reply, served.stamp, served.capture),
        (Reply::Send { len: 48 }, true, false)
    );
    let h = Header::decode(&out[..48]).unwrap();
    assert_eq!(h.origin_timestamp, NtpTimestamp(0x0123_4567_89AB_CDEF));
    assert_eq!(s.stats().ntp_interleaved, 0);
}

/// Catalogue S40: symmetric active packets from many unknown hosts are answered statelessly;
/// the only state they leave is their client-log records.
#[test]
fn symmetric_active_from_many_hosts_leaves_only_log_records() {
    let mut s = server();
    for i in 0..1000u32 {
        let from = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i)), 123);
        let (reply, _) = exchange(
            &mut s,
            &request(4, Mode::SymmetricActive, 6, 1),
            &from.to_string(),
        );
        assert_eq!(reply, Reply::Send { len: 48 });
    }
    assert_eq!(s.client_log().len(), 1000);
}

#[test]
fn finalize_transmit_writes_the_transmit_field_only() {
    let mut s = server();
    let mut out = [0u8; 48];
    let reply = s.handle_request(
        &client_request(),
        addr("127.0.0.1:1"),
        RX,
        1.0,
        &local10(),
        &mut out,
    );
    assert_eq!(reply, Reply::Send { len: 48 });
    let before = out;
    let tx = NtpTimestamp(0xEEAA_0000_2000_0000);
    finalize_transmit(&mut out, tx);
    assert_eq!(out[..TRANSMIT_OFFSET], before[..TRANSMIT_OFFSET]);
    assert_eq!(Header::decode(&out).unwrap().transmit_timestamp, tx);
    let mut short = [0u8; 10];
    finalize_transmit(&mut short, tx);
    assert_eq!(short, [0u8; 10]);
}

#[test]
fn short_datagrams_are_dropped() {
    let mut s = server();
    let full = client_request();
    for len in [0, 1, 20, 47] {
        assert_eq!(
            exchange(&mut s, &full[..len], "127.0.0.1:40000").0,
            Reply::Drop(DropReason::TooShort)
        );
    }
    assert_eq!(s.stats().malformed, 4);
    assert_eq!(s.stats().ntp_received, 0);
}

#[test]
fn unaligned_and_oversized_datagrams_are_dropped() {
    let mut s = server();
    for len in [49, 50, 51, 1023, 1144, 65_507] {
        let mut req = client_request();
        req.resize(len, 0);
        assert_eq!(
            exchange(&mut s, &req, "127.0.0.1:40000").0,
            Reply::Drop(DropReason::BadLength),
            "{len}"
        );
    }
}

#[test]
fn largest_request_chronyd_answers_is_answered() {
    // 1140 octets: one 1092-octet extension field (chrony answers this length).
    let mut s = server();
    let req = with_trailer(client_request(), &extension_field(0x1234, 1092));
    assert_eq!(req.len(), 1140);
    assert!(answered(&mut s, &req).is_some());
}

#[test]
fn unknown_extension_field_is_ignored() {
    let mut s = server();
    let req = with_trailer(client_request(), &extension_field(0x1234, 28));
    let (reply, h) = exchange(&mut s, &req, "127.0.0.1:40000");
    assert_eq!(reply, Reply::Send { len: 48 });
    assert_eq!(
        h.unwrap().origin_timestamp,
        NtpTimestamp(0x0123_4567_89AB_CDEF)
    );
}

#[test]
fn short_last_extension_field_is_dropped() {
    // chronyd 4.3 ignores a request whose only field is 16 octets and answers 28.
    let mut s = server();
    let req = with_trailer(client_request(), &extension_field(0x1234, 16));
    assert_eq!(
        exchange(&mut s, &req, "127.0.0.1:40000").0,
        Reply::Drop(DropReason::BadTrailer)
    );
}

#[test]
fn extension_field_length_fuzz_is_dropped() {
    let mut s = server();
    for len in [0u16, 4, 12, 15, 17, 0xFFFF, 200] {
        let mut ef = vec![0u8; 32];
        ef[..2].copy_from_slice(&0x1234u16.to_be_bytes());
        ef[2..4].copy_from_slice(&len.to_be_bytes());
        let req = with_trailer(client_request(), &ef);
        assert!(
            matches!(exchange(&mut s, &req, "127.0.0.1:40000").0, Reply::Drop(_)),
            "{len}"
        );
    }
}

#[test]
fn mac_trailers_are_dropped_but_counted_as_received() {
    // chronyd 4.3 (with or without a keyfile) answers none of these; its "NTP packets
    // received" counts them.
    let mut s = server();
    let mut key7 = 7u32.to_be_bytes().to_vec();
    key7.extend_from_slice(&[0u8; 20]);
    let cases = [
        with_trailer(client_request(), &key7[..20]),
        with_trailer(client_request(), &key7[..24]),
        with_trailer(client_request(), &[0, 0, 0, 0]),
        with_trailer(request(3, Mode::Client, 6, 1), &[0u8; 72]),
        with_trailer(request(3, Mode::Client, 6, 1), &key7[..20]),
        with_trailer(
            with_trailer(client_request(), &extension_field(0x1234, 16)),
            &key7[..20],
        ),
    ];
    for req in &cases {
        assert_eq!(
            exchange(&mut s, req, "127.0.0.1:40000").0,
            Reply::Drop(DropReason::Unauthenticated)
        );
    }
    assert_eq!(s.stats().ntp_received, cases.len() as u64);
    assert_eq!(s.stats().auth_failed, cases.len() as u64);
}

#[test]
fn nts_fields_are_dropped() {
    let mut s = server();
    let req = with_trailer(
        client_request(),
        &extension_field(gnomon_wire::extension::FIELD_NTS_UNIQUE_IDENTIFIER, 36),
    );
    assert_eq!(
        exchange(&mut s, &req, "127.0.0.1:40000").0,
        Reply::Drop(DropReason::NtsNotServed)
    );
}

#[test]
fn default_config_serves_nobody() {
    let mut s = Server::new(ServerConfig::default(), 1).unwrap();
    for from in ["127.0.0.1:40000", "[::1]:40000", "192.0.2.1:123"] {
        assert_eq!(
            exchange(&mut s, &client_request(), from).0,
            Reply::Drop(DropReason::AccessDenied)
        );
    }
    assert_eq!(s.stats().ntp_received, 0);
    assert_eq!(s.stats().access_denied, 3);
}

#[test]
fn denied_client_gets_nothing_and_is_not_counted() {
    let mut config = ServerConfig::default();
    config
        .access
        .apply(&AccessRule {
            allow: true,
            all: false,
            subnet: Some(("127.0.0.2".parse().unwrap(), 32)),
        })
        .unwrap();
    let mut s = Server::new(config, 1).unwrap();
    assert!(exchange(&mut s, &client_request(), "127.0.0.2:5000")
        .1
        .is_some());
    assert_eq!(
        exchange(&mut s, &client_request(), "127.0.0.1:5000").0,
        Reply::Drop(DropReason::AccessDenied)
    );
    assert_eq!(s.stats().ntp_received, 1);
    // Run-time `deny` takes effect immediately.
    s.access_mut()
        .apply(&AccessRule {
            allow: false,
            all: true,
            subnet: None,
        })
        .unwrap();
    assert_eq!(
        exchange(&mut s, &client_request(), "127.0.0.2:5000").0,
        Reply::Drop(DropReason::AccessDenied)
    );
}

#[test]
fn ipv4_mapped_client_matches_v4_rules() {
    let mut config = ServerConfig::default();
    config
        .access
        .apply(&AccessRule {
            allow: true,
            all: false,
            subnet: Some(("192.168.1.0".parse().unwrap(), 24)),
        })
        .unwrap();
    let mut s = Server::new(config, 1).unwrap();
    assert!(
        exchange(&mut s, &client_request(), "[::ffff:192.168.1.5]:999")
            .1
            .is_some()
    );
    assert!(
        exchange(&mut s, &client_request(), "[::ffff:192.168.2.5]:999")
            .1
            .is_none()
    );
}

#[test]
fn ipv6_clients_are_served() {
    let mut s = server();
    assert!(exchange(&mut s, &client_request(), "[2001:db8::1]:123")
        .1
        .is_some());
}

#[test]
fn unsynchronised_reply_matches_chronyd() {
    // chronyd 4.3 without `local`: LI 3, stratum 0, refid 0, reference time 0, root delay
    // and dispersion 1.0 s, its precision.
    let mut s = server();
    let mut out = [0u8; 48];
    let reference = ReferenceInfo::unsynchronised(PRECISION);
    s.handle_request(
        &client_request(),
        addr("127.0.0.1:1"),
        RX,
        1.0,
        &reference,
        &mut out,
    );
    let h = Header::decode(&out).unwrap();
    assert_eq!(h.leap, LeapIndicator::Unsynchronised);
    assert_eq!(h.stratum, 0);
    assert_eq!(h.reference_id, 0);
    assert_eq!(h.reference_timestamp, NtpTimestamp::ZERO);
    assert_eq!(h.root_delay, NtpShort(65536));
    assert_eq!(h.root_dispersion, NtpShort(65536));
    assert_eq!(h.precision, PRECISION);
    assert_eq!(h.mode, Mode::Server);
}

#[test]
fn local_reference_reply_matches_chronyd() {
    // chronyd 4.3 with `local stratum 10`: LI 0, stratum 10, refid 7F7F0101, root delay and
    // dispersion 0, reference time = last refresh of the local reference.
    let mut s = server();
    let h = answered(&mut s, &client_request()).unwrap();
    assert_eq!(h.leap, LeapIndicator::NoWarning);
    assert_eq!(h.stratum, 10);
    assert_eq!(h.reference_id, 0x7F7F_0101);
    assert_eq!(h.root_delay, NtpShort(0));
    assert_eq!(h.root_dispersion, NtpShort(0));
    assert_eq!(h.reference_timestamp, NtpTimestamp(0xEEAA_0000_0000_0000));
}

#[test]
fn leap_is_forced_to_alarm_when_unsynchronised() {
    let mut s = server();
    let mut reference = local10();
    reference.synchronised = false;
    let mut out = [0u8; 48];
    s.handle_request(
        &client_request(),
        addr("127.0.0.1:1"),
        RX,
        1.0,
        &reference,
        &mut out,
    );
    assert_eq!(
        Header::decode(&out).unwrap().leap,
        LeapIndicator::Unsynchronised
    );
}

#[test]
fn poll_is_echoed_with_chronyds_lower_bound() {
    // Measured: -128, -30, -20 → -19; -19, -18, -7, 0, 17, 25, 127 echoed.
    let mut s = server();
    for (sent, expected) in [
        (-128, -19),
        (-30, -19),
        (-20, -19),
        (-19, -19),
        (-18, -18),
        (-7, -7),
        (0, 0),
        (17, 17),
        (25, 25),
        (127, 127),
    ] {
        let h = answered(&mut s, &request(4, Mode::Client, sent, 1)).unwrap();
        assert_eq!(h.poll, expected, "{sent}");
    }
}

#[test]
fn header_field_extremes_in_request_do_not_matter() {
    let mut s = server();
    let mut req = client_request();
    req[0] |= 0xC0; // LI 3
    req[1] = 255; // stratum
    req[3] = 0x80; // precision -128
    req[4..12].fill(0xFF); // root delay / dispersion
    let h = answered(&mut s, &req).unwrap();
    assert_eq!(h.stratum, 10);
    assert_eq!(h.precision, PRECISION);
}

fn rate_limited_server(limit: RateLimit, seed: u64) -> Server {
    let mut config = allow_all_config();
    config.rate_limit = Some(limit);
    Server::new(config, seed).unwrap()
}

/// chronyd 4.3 `ratelimit interval 1 burst 4 leak 2`, 200 requests 10 ms apart: 50, 54, 54, 58.
#[test]
fn rate_limit_matches_chronyd_burst_4_interval_1() {
    let limit = RateLimit {
        interval: 1,
        burst: 4,
        leak: 2,
        kod: 0,
    };
    let mut total = 0u32;
    let runs = 50u32;
    for seed in 0..runs {
        let mut s = rate_limited_server(limit, u64::from(seed));
        let mut out = [0u8; 48];
        for i in 0..200 {
            let reply = s.handle_request(
                &client_request(),
                addr("127.0.0.10:40000"),
                RX,
                10.0 + 0.01 * f64::from(i),
                &local10(),
                &mut out,
            );
            if matches!(reply, Reply::Send { .. }) {
                total += 1;
            }
        }
        let st = s.stats();
        assert_eq!(st.ntp_received, 200);
        assert_eq!(st.ntp_served + st.ntp_rate_limited, 200);
    }
    let ours = f64::from(total) / f64::from(runs);
    assert!((ours - 54.0).abs() <= 5.4, "{ours}");
}

#[test]
fn one_address_with_many_ports_is_one_client() {
    let mut s = rate_limited_server(RateLimit::NTP_DEFAULT, 3);
    let mut out = [0u8; 48];
    let mut served = 0;
    for port in 1000..2000u16 {
        let from = SocketAddr::new(IpAddr::V4("198.51.100.7".parse().unwrap()), port);
        if let Reply::Send { .. } =
            s.handle_request(&client_request(), from, RX, 5.0, &local10(), &mut out)
        {
            served += 1;
        }
    }
    // Burst of 8, then about a quarter leaks.
    assert!((200..=320).contains(&served), "{served}");
    assert_eq!(s.client_log().len(), 1);
}

#[test]
fn spoofed_flood_still_leaves_the_victim_a_leak_fraction() {
    // 10k requests per second "from" the victim for 10 s; the victim's own requests (same
    // address) are answered at the leak rate, 1/4 by default.
    let mut s = rate_limited_server(RateLimit::NTP_DEFAULT, 4);
    let mut out = [0u8; 48];
    let victim = addr("192.0.2.55:123");
    let (mut own, mut own_answered) = (0u32, 0u32);
    for i in 0..100_000u32 {
        let now = 1.0 + f64::from(i) * 1e-4;
        let reply = s.handle_request(&client_request(), victim, RX, now, &local10(), &mut out);
        if i % 1000 == 999 {
            own += 1;
            if matches!(reply, Reply::Send { .. }) {
                own_answered += 1;
            }
        }
    }
    assert!(
        f64::from(own_answered) >= 0.15 * f64::from(own),
        "{own_answered}/{own}"
    );
    let st = s.stats();
    assert!(st.ntp_served < 30_000, "{st:?}");
}

#[test]
fn kod_rate_is_sent_when_configured() {
    let limit = RateLimit {
        interval: 12,
        burst: 1,
        leak: 4,
        kod: 1,
    };
    let mut s = rate_limited_server(limit, 5);
    let mut out = [0u8; 48];
    let mut kods = 0;
    for i in 0..1000 {
        let reply = s.handle_request(
            &request(4, Mode::Client, 4, 0xABCD),
            addr("203.0.113.1:4000"),
            RX,
            1.0 + f64::from(i) * 0.01,
            &local10(),
            &mut out,
        );
        if let Reply::Kod { len } = reply {
            kods += 1;
            let h = Header::decode(&out[..len]).unwrap();
            assert_eq!(h.stratum, 0);
            assert_eq!(h.reference_id_bytes(), *b"RATE");
            assert_eq!(h.origin_timestamp, NtpTimestamp(0xABCD));
            assert_eq!(h.transmit_timestamp, NtpTimestamp::ZERO);
            assert_eq!(h.receive_timestamp, NtpTimestamp::ZERO);
            assert_eq!(h.poll, 4);
        }
    }
    // About half of the ~15/16 limited requests.
    assert!((400..=540).contains(&kods), "{kods}");
    assert_eq!(s.stats().ntp_kod_sent, kods);
    // Without `kod`, none.
    let mut s = rate_limited_server(RateLimit::NTP_DEFAULT, 5);
    for _ in 0..100 {
        let reply = s.handle_request(
            &client_request(),
            addr("203.0.113.1:4000"),
            RX,
            1.0,
            &local10(),
            &mut out,
        );
        assert!(!matches!(reply, Reply::Kod { .. }));
    }
}

#[test]
fn noclientlog_disables_rate_limiting() {
    let mut config = allow_all_config();
    config.rate_limit = Some(RateLimit::NTP_DEFAULT);
    config.no_client_log = true;
    let mut s = Server::new(config, 1).unwrap();
    for _ in 0..100 {
        assert!(answered(&mut s, &client_request()).is_some());
    }
    assert!(!s.client_log().is_enabled());
}

#[test]
fn clients_report_counts_hits_and_drops() {
    let mut s = rate_limited_server(
        RateLimit {
            interval: 4,
            burst: 2,
            leak: 4,
            kod: 0,
        },
        6,
    );
    for _ in 0..24 {
        answered(&mut s, &client_request());
    }
    let log = s.client_log();
    let report = (0..log.slots()).find_map(|i| log.report(i, 100.0)).unwrap();
    assert_eq!(report.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(report.ntp_hits, 24);
    assert_eq!(u64::from(report.ntp_drops), s.stats().ntp_rate_limited);
    assert!(report.ntp_drops >= 15, "{report:?}");
}

#[test]
fn command_accesses_share_the_log_with_their_own_limit() {
    let mut config = allow_all_config();
    config.command_rate_limit = Some(RateLimit::COMMAND_DEFAULT);
    let mut s = Server::new(config, 1).unwrap();
    let from = addr("10.0.0.1:5000");
    let served = (0..100)
        .filter(|_| s.check_service(from, Service::Command, 1.0))
        .count();
    assert!((8..60).contains(&served), "{served}");
    assert!(s.check_service(from, Service::Ntp, 1.0));
}

#[test]
fn response_buffer_too_small_is_reported() {
    let mut s = server();
    let mut out = [0u8; 47];
    assert_eq!(
        s.handle_request(
            &client_request(),
            addr("127.0.0.1:1"),
            RX,
            1.0,
            &local10(),
            &mut out
        ),
        Reply::Drop(DropReason::ResponseBuffer)
    );
}

#[test]
fn invalid_rate_limit_is_rejected() {
    let mut config = allow_all_config();
    config.rate_limit = Some(RateLimit {
        interval: 13,
        burst: 8,
        leak: 2,
        kod: 0,
    });
    assert!(Server::new(config, 1).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any bytes: no panic, and a response fits in a buffer the size of the request
    /// (ntpd-rs `handle` fuzz property; catalogue S33).
    #[test]
    fn response_never_longer_than_request(
        bytes in proptest::collection::vec(any::<u8>(), 0..1300),
        port in any::<u16>(),
        now in 0.0f64..1e6,
    ) {
        let mut config = allow_all_config();
        config.rate_limit = Some(RateLimit { interval: -2, burst: 2, leak: 1, kod: 1 });
        let mut s = Server::new(config, 1).unwrap();
        let mut out = vec![0u8; bytes.len()];
        let from = SocketAddr::new(IpAddr::V4("127.0.0.1".parse().unwrap()), port);
        let reply = s.handle_request(&bytes, from, RX, now, &local10(), &mut out);
        match reply {
            Reply::Send { len } | Reply::Kod { len } => prop_assert!(len <= bytes.len()),
            Reply::Drop(reason) => prop_assert_ne!(reason, DropReason::ResponseBuffer),
        }
    }

    /// Valid client headers with any field values are answered, origin copied exactly.
    #[test]
    fn any_client_header_is_answered_with_its_transmit_as_origin(
        mut header in proptest::collection::vec(any::<u8>(), 48),
        version in 1u8..=4,
    ) {
        header[0] = (header[0] & 0xC0) | (version << 3) | 3;
        let mut s = server();
        let (reply, h) = exchange(&mut s, &header, "127.0.0.1:40000");
        prop_assert_eq!(reply, Reply::Send { len: 48 });
        let h = h.unwrap();
        prop_assert_eq!(h.origin_timestamp.0.to_be_bytes(), <[u8; 8]>::try_from(&header[40..48]).unwrap());
        prop_assert_eq!(h.version, version);
    }

    /// Any mode other than 1 and 3 gets nothing, whatever the rest of the packet says.
    #[test]
    fn other_modes_never_answered(
        mut header in proptest::collection::vec(any::<u8>(), 48),
        mode in prop_oneof![Just(0u8), Just(2), Just(4), Just(5), Just(6), Just(7)],
        version in 2u8..=7,
    ) {
        header[0] = (header[0] & 0xC0) | (version << 3) | mode;
        let mut s = server();
        let (_, h) = exchange(&mut s, &header, "127.0.0.1:40000");
        prop_assert!(h.is_none());
    }
}
