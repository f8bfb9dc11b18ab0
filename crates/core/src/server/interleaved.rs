//! The server side of the interleaved client/server mode (draft-ietf-ntp-interleaved-modes,
//! now RFC 9769, §2; chrony.conf(5) `xleave`), as chronyd 4.3 serves it.
//!
//! A response cannot carry its own exact transmit time (the kernel stamps the datagram only
//! after it has left the daemon), so an interleaved response carries the transmit time of the
//! server's *previous* response to the same client instead:
//!
//! - request: a client in interleaved mode sets its origin timestamp to the receive timestamp
//!   of the last response it got from us, and its receive timestamp to when it received that
//!   response (so its receive and transmit fields differ);
//! - recognition: the request comes from an address whose client-log record holds that receive
//!   timestamp as the one of our last response to it, and its receive and transmit fields
//!   differ (a basic RFC 5905 client echoes our transmit timestamp as its origin, never our
//!   receive timestamp, and a chronyd client in basic mode sends zeros);
//! - response: origin = the request's receive timestamp (what the client checks, instead of
//!   its transmit timestamp in basic mode), receive = this request's receive time, transmit =
//!   the transmit time of the previous response (the kernel's software stamp when the daemon
//!   got one, its own reading taken just before the send otherwise, as chronyd falls back to
//!   its daemon timestamp).
//!
//! State is per client address, in the client log ([`crate::client_log::NtpTimestamps`],
//! bounded by `clientloglimit`; none with `noclientlog`, which answers everyone in basic
//! mode). chrony.conf(5) documents the consequences kept here: state can be dropped when there
//! are too many clients, and clients behind one address (NAT) or a sender spoofing a client's
//! address overwrite each other's state, after which the next request gets a basic response.
//! Keying by the source address means a request can only ever be answered with timestamps of
//! a response that went to that same address, so a guessed or copied origin timestamp from
//! elsewhere yields nothing but a basic response.
//!
//! Cost: every answered client request stores its receive timestamp in the record the
//! request's logging has just touched (no extra lookup). The transmit time is captured
//! (kernel stamp requested for that one datagram, daemon reading noted after the send) only
//! for clients that have sent an interleaved request; the first such request is answered in
//! basic mode because no transmit time of the previous response was captured, the following
//! ones in interleaved mode.

use gnomon_wire::{Header, NtpTimestamp};

use crate::client_log::ClientLog;

/// What the interleaved mode changes about one client request's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The request is interleaved (counted in "Interleaved NTP packets").
    pub detected: bool,
    /// Answer in interleaved mode with this transmit timestamp (previous response's).
    pub previous_tx: Option<NtpTimestamp>,
    /// Capture this response's transmit time (the client uses the interleaved mode).
    pub capture: bool,
}

/// Examines the client request `request` from the client at log slot `index` (already logged
/// for this request) and marks the client as interleaved when the request is.
pub(crate) fn plan(log: &mut ClientLog, index: usize, request: &Header) -> Plan {
    let saved = log.ntp_timestamps(index);
    let detected = saved.rx != 0
        && request.origin_timestamp.0 == saved.rx
        && request.receive_timestamp != request.transmit_timestamp;
    if detected {
        log.set_interleaved(index);
    }
    Plan {
        detected,
        previous_tx: (detected && saved.tx != 0).then_some(NtpTimestamp(saved.tx)),
        capture: log.is_interleaved(index),
    }
}

/// The interleaved form of a basic response header built for `request`.
pub(crate) fn interleaved_header(
    basic: Header,
    request: &Header,
    previous_tx: NtpTimestamp,
) -> Header {
    Header {
        origin_timestamp: request.receive_timestamp,
        transmit_timestamp: previous_tx,
        ..basic
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};

    use crate::server::{
        response_receive_timestamp, ReferenceInfo, Reply, Served, Server, ServerConfig, ServerStats,
    };

    const A: &str = "192.0.2.1:40000";
    const B: &str = "192.0.2.2:40001";

    fn config() -> ServerConfig {
        super::super::tests::allow_all_config()
    }

    fn reference() -> ReferenceInfo {
        ReferenceInfo::local(10, NtpTimestamp(0xEEAA_0000_0000_0000), -25)
    }

    /// A client request with the given origin, receive and transmit fields.
    fn request(origin: u64, receive: u64, transmit: u64) -> [u8; 48] {
        Header {
            leap: LeapIndicator::NoWarning,
            version: 4,
            mode: Mode::Client,
            stratum: 0,
            poll: 6,
            precision: -20,
            root_delay: NtpShort(0),
            root_dispersion: NtpShort(0),
            reference_id: 0,
            reference_timestamp: NtpTimestamp::ZERO,
            origin_timestamp: NtpTimestamp(origin),
            receive_timestamp: NtpTimestamp(receive),
            transmit_timestamp: NtpTimestamp(transmit),
        }
        .to_bytes()
    }

    /// Serves `req` from `from` received at `rx`; finalizes a stamped response with `rx + 1000`
    /// as the daemon does; returns the decision, the bytes sent and their header.
    fn serve(s: &mut Server, req: &[u8], from: &str, rx: u64) -> (Served, Vec<u8>, Header) {
        let mut out = [0u8; 1200];
        let from: SocketAddr = from.parse().unwrap();
        let served = s.serve(req, from, NtpTimestamp(rx), 1.0, &reference(), &mut out);
        let Reply::Send { len } = served.reply else {
            panic!("no response: {served:?}");
        };
        let mut bytes = out[..len].to_vec();
        if served.stamp {
            s.finalize(&mut bytes, NtpTimestamp(rx + 1000));
        }
        let header = Header::decode(&bytes).unwrap();
        (served, bytes, header)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse::<SocketAddr>().unwrap().ip()
    }

    /// What the daemon does once a captured response has left (or its stamp has come back).
    fn note(s: &mut Server, to: &str, sent: &[u8], tx: NtpTimestamp, kernel: bool) -> bool {
        match response_receive_timestamp(sent) {
            Some(rx) => s.note_transmit(ip(to), rx, tx, kernel),
            None => false,
        }
    }

    /// Runs a chronyd-like `xleave` client from `from` through its first three exchanges
    /// (receive times 100, 200, 300), reporting daemon and kernel transmit times for captured
    /// responses. Returns the third response's header.
    fn three_exchanges(s: &mut Server, from: &str) -> (Served, Header) {
        // 1: basic request (chronyd sends zero origin and receive fields at first).
        let (first, _, h1) = serve(s, &request(0, 0, 0xAAAA), from, 100);
        assert_eq!((first.stamp, first.capture), (true, false));
        assert_eq!(h1.origin_timestamp, NtpTimestamp(0xAAAA));
        // 2: interleaved request; no transmit time was captured for response 1, so basic.
        let (second, sent, h2) = serve(s, &request(100, 150, 0xBBBB), from, 200);
        assert_eq!((second.stamp, second.capture), (true, true));
        assert_eq!(h2.origin_timestamp, NtpTimestamp(0xBBBB));
        assert_eq!(h2.transmit_timestamp, NtpTimestamp(1200));
        assert!(note(s, from, &sent, NtpTimestamp(1200), false));
        assert!(note(s, from, &sent, NtpTimestamp(1150), true));
        // 3: interleaved, answered with response 2's kernel transmit time.
        let (third, sent, h3) = serve(s, &request(200, 250, 0xCCCC), from, 300);
        assert!(note(s, from, &sent, NtpTimestamp(1300), false));
        assert!(note(s, from, &sent, NtpTimestamp(1250), true));
        (third, h3)
    }

    #[test]
    fn interleaved_request_gets_the_previous_responses_kernel_transmit_time() {
        let mut s = Server::new(config(), 1).unwrap();
        let (third, h3) = three_exchanges(&mut s, A);
        assert_eq!((third.stamp, third.capture), (false, true), "sent as built");
        assert_eq!(
            h3.origin_timestamp,
            NtpTimestamp(250),
            "request's receive field"
        );
        assert_eq!(h3.receive_timestamp, NtpTimestamp(300));
        assert_eq!(
            h3.transmit_timestamp,
            NtpTimestamp(1150),
            "kernel stamp of response 2"
        );
        assert_eq!(s.stats().ntp_interleaved, 2);
        assert_eq!(s.stats().ntp_kernel_tx, 2);
        assert_eq!(s.stats().ntp_served, 3);
    }

    #[test]
    fn without_a_kernel_stamp_the_daemon_reading_is_served() {
        let mut s = Server::new(config(), 1).unwrap();
        serve(&mut s, &request(0, 0, 0xAAAA), A, 100);
        let (_, sent, _) = serve(&mut s, &request(100, 150, 0xBBBB), A, 200);
        assert!(note(&mut s, A, &sent, NtpTimestamp(1200), false));
        let (third, _, h3) = serve(&mut s, &request(200, 250, 0xCCCC), A, 300);
        assert!(!third.stamp);
        assert_eq!(h3.transmit_timestamp, NtpTimestamp(1200));
        assert_eq!(s.stats().ntp_kernel_tx, 0);
    }

    #[test]
    fn a_stamp_of_an_older_response_is_not_saved() {
        let mut s = Server::new(config(), 1).unwrap();
        serve(&mut s, &request(0, 0, 0xAAAA), A, 100);
        let (_, old, _) = serve(&mut s, &request(100, 150, 0xBBBB), A, 200);
        serve(&mut s, &request(200, 250, 0xCCCC), A, 300);
        assert!(!note(&mut s, A, &old, NtpTimestamp(1150), true));
        assert!(!note(&mut s, B, &old, NtpTimestamp(1150), true));
        assert!(!note(&mut s, A, &old[..20], NtpTimestamp(1150), true));
    }

    #[test]
    fn request_whose_origin_does_not_match_gets_a_basic_response() {
        let mut s = Server::new(config(), 1).unwrap();
        three_exchanges(&mut s, A);
        let before = s.stats().ntp_interleaved;
        // Origin of an older response (a lost reply, another client behind the address).
        let (old, _, h) = serve(&mut s, &request(200, 350, 0xDDDD), A, 400);
        assert!(old.capture, "still an interleaved client");
        assert!(old.stamp);
        assert_eq!(h.origin_timestamp, NtpTimestamp(0xDDDD));
        assert_eq!(h.transmit_timestamp, NtpTimestamp(1400));
        // Matching origin but receive == transmit: not an interleaved request.
        let (same, _, h) = serve(&mut s, &request(400, 0xEEEE, 0xEEEE), A, 500);
        assert!(same.stamp);
        assert_eq!(h.origin_timestamp, NtpTimestamp(0xEEEE));
        assert_eq!(s.stats().ntp_interleaved, before);
    }

    #[test]
    fn basic_clients_are_answered_byte_for_byte_as_before() {
        let mut interleaving = Server::new(config(), 7).unwrap();
        let mut basic = Server::new(config(), 7).unwrap();
        let mut previous_tx = 0;
        let mut previous_rx = 0;
        for i in 1..=20u64 {
            let rx = 1000 * i;
            // chronyd style (zeros), then RFC 5905 style: origin = our last transmit time,
            // receive = when the client got our last response.
            let req = if i % 2 == 1 {
                request(0, 0, 0x5000 + i)
            } else {
                request(previous_tx, previous_rx + 7, 0x5000 + i)
            };
            let (served, sent, h) = serve(&mut interleaving, &req, A, rx);
            assert_eq!((served.stamp, served.capture), (true, false));
            let mut out = [0u8; 1200];
            let from: SocketAddr = A.parse().unwrap();
            let Reply::Send { len } =
                basic.handle_request(&req, from, NtpTimestamp(rx), 1.0, &reference(), &mut out)
            else {
                panic!("no basic response");
            };
            crate::server::finalize_transmit(&mut out[..len], NtpTimestamp(rx + 1000));
            assert_eq!(sent, out[..len].to_vec(), "request {i}");
            previous_tx = h.transmit_timestamp.0;
            previous_rx = rx;
        }
        // Only difference: the receive timestamp held for the client, in case it switches.
        assert_eq!(interleaving.stats().ntp_timestamps_held, 1);
        assert_eq!(
            ServerStats {
                ntp_timestamps_held: 0,
                ..interleaving.stats()
            },
            basic.stats()
        );
        assert_eq!(interleaving.stats().ntp_interleaved, 0);
    }

    #[test]
    fn spoofed_origin_cannot_reveal_another_clients_timestamps() {
        let mut s = Server::new(config(), 1).unwrap();
        three_exchanges(&mut s, A);
        // A's last response had receive time 300; B copies it (and every other timestamp A
        // was given) as its origin.
        for origin in [300, 200, 100, 1150, 1200] {
            let (served, _, h) = serve(&mut s, &request(origin, 250, 0xF00D), B, 900 + origin);
            assert_eq!(
                (served.stamp, served.capture),
                (true, false),
                "origin {origin}"
            );
            assert_eq!(h.origin_timestamp, NtpTimestamp(0xF00D));
            assert_eq!(h.transmit_timestamp, NtpTimestamp(1900 + origin));
        }
        assert_eq!(s.stats().ntp_interleaved, 2, "only A's");
        // A's state is untouched by B: its next interleaved request is still served.
        let (served, _, h) = serve(&mut s, &request(300, 350, 0xCAFE), A, 3000);
        assert!(!served.stamp);
        assert_eq!(h.origin_timestamp, NtpTimestamp(350));
        assert_eq!(h.transmit_timestamp, NtpTimestamp(1250));
    }

    #[test]
    fn state_is_bounded_by_the_client_log() {
        let mut cfg = config();
        cfg.client_log_limit = 0; // 16 records, as chronyd
        let mut s = Server::new(cfg, 3).unwrap();
        for i in 0..200u32 {
            let from = format!("10.0.{}.{}:123", i / 256, i % 256);
            let (_, sent, _) = serve(&mut s, &request(0, 0, 0xAAAA), &from, 100);
            note(&mut s, &from, &sent, NtpTimestamp(1100), true);
            serve(&mut s, &request(100, 150, 0xBBBB), &from, 200);
        }
        assert!(s.ntp_timestamps_held() <= 16, "{}", s.ntp_timestamps_held());
        assert_eq!(
            s.stats().ntp_timestamps_held,
            s.ntp_timestamps_held() as u64
        );
        assert!(s.client_log().memory_bytes() <= 16 * 128);
        // The clients whose state went with their record get a basic response.
        let mut interleaved = 0;
        for i in 0..200u32 {
            let from = format!("10.0.{}.{}:123", i / 256, i % 256);
            let (served, _, h) = serve(&mut s, &request(200, 250, 0xCCCC), &from, 300);
            if served.stamp {
                assert_eq!(h.origin_timestamp, NtpTimestamp(0xCCCC));
            } else {
                interleaved += 1;
            }
        }
        assert!(interleaved <= 16, "{interleaved}");
    }

    #[test]
    fn noclientlog_answers_interleaved_requests_in_basic_mode() {
        let mut cfg = config();
        cfg.no_client_log = true;
        let mut s = Server::new(cfg, 1).unwrap();
        serve(&mut s, &request(0, 0, 0xAAAA), A, 100);
        let (served, _, h) = serve(&mut s, &request(100, 150, 0xBBBB), A, 200);
        assert!(served.stamp && !served.capture);
        assert_eq!(h.origin_timestamp, NtpTimestamp(0xBBBB));
        assert_eq!(s.stats().ntp_interleaved, 0);
    }

    #[test]
    fn handle_request_stays_basic_for_interleaved_clients() {
        let mut s = Server::new(config(), 1).unwrap();
        three_exchanges(&mut s, A);
        let mut out = [0u8; 1200];
        let req = request(300, 350, 0xCAFE);
        let from: SocketAddr = A.parse().unwrap();
        let reply = s.handle_request(&req, from, NtpTimestamp(400), 1.0, &reference(), &mut out);
        assert_eq!(reply, Reply::Send { len: 48 });
        let h = Header::decode(&out[..48]).unwrap();
        assert_eq!(h.origin_timestamp, NtpTimestamp(0xCAFE));
    }

    #[test]
    fn keyed_interleaved_response_is_signed_over_the_previous_transmit_time() {
        let mut s = Server::new(config(), 1).unwrap();
        s.set_keys(
            crate::auth::KeyStore::parse("1 SHA256 HEX:00112233445566778899AABBCCDDEEFF\n").0,
        );
        let sign = |s: &Server, header: [u8; 48]| {
            let mut p = header.to_vec();
            let mut d = [0u8; 64];
            let n = s.keys().get(1).unwrap().sign(&p, 4, &mut d);
            p.extend_from_slice(&1u32.to_be_bytes());
            p.extend_from_slice(&d[..n]);
            p
        };
        let req = sign(&s, request(0, 0, 0xAAAA));
        serve(&mut s, &req, A, 100);
        let req = sign(&s, request(100, 150, 0xBBBB));
        let (second, sent, _) = serve(&mut s, &req, A, 200);
        assert!(second.capture && second.stamp);
        assert!(note(&mut s, A, &sent, NtpTimestamp(1150), true));
        let req = sign(&s, request(200, 250, 0xCCCC));
        let (third, sent, h) = serve(&mut s, &req, A, 300);
        assert_eq!((third.stamp, third.capture), (false, true));
        assert_eq!(sent.len(), 48 + 4 + 20);
        assert_eq!(h.transmit_timestamp, NtpTimestamp(1150));
        assert_eq!(h.origin_timestamp, NtpTimestamp(250));
        let packet = gnomon_wire::Packet::decode(&sent).unwrap();
        let mac = packet.mac.unwrap();
        assert!(s.keys().get(1).unwrap().verify(&sent[..48], 4, mac.digest));
        assert_eq!(s.stats().ntp_authenticated, 3);
    }
}
