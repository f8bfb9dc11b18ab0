//! The engine's side of the interleaved client mode (the rules are the association's,
//! `association/interleaved.rs`): a source configured with chrony's `xleave` starts in
//! interleaved mode (`SourceConfig::xleave`), and
//! `ntpdata` learns whether the last measurement was interleaved ("Interleaved
//! : Yes", as chronyc shows it) and which exchange's transmit stamp it used.

use super::{Engine, SourceId};

impl Engine {
    /// After [`Engine::handle_packet_recorded`] recorded a packet for `ntpdata`: whether its
    /// measurement was interleaved, and then the transmit stamp of the exchange it measured.
    pub(super) fn note_interleaved(&mut self, id: SourceId) {
        let Some(e) = self.sources.get(&id) else {
            return;
        };
        let measured = e.assoc.last_interleaved_measurement();
        if let Some(d) = self.ntp_data.get_mut(&id) {
            d.note_interleaved(measured);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::engine::{Action, EngineConfig};
    use crate::association::SourceConfig;
    use crate::local_clock::TestClock;
    use gnomon_wire::{Header, NtpTimestamp};

    const T0: f64 = 1_780_000_000.0;

    /// Runs the engine to its next request; returns it and the time it was sent.
    fn next_request(e: &mut Engine, c: &mut TestClock) -> ([u8; 48], f64) {
        loop {
            let t = e.poll_timeout().expect("a deadline");
            c.now = t.max(c.now);
            let now = c.now;
            for a in e.handle_timeout(now, c) {
                if let Action::Send(_, tx) = a {
                    return (tx.payload, now);
                }
            }
        }
    }

    /// An interleaved server on the test clock's time: it writes its transmit time 10 µs
    /// after receiving and sends 60 µs after; the answer is back 100 µs later.
    #[derive(Default)]
    struct Server {
        saved: Option<(NtpTimestamp, NtpTimestamp)>,
    }

    impl Server {
        fn answer(&mut self, req: &[u8; 48], arrive: f64) -> ([u8; 48], f64) {
            let q = Header::decode(req).unwrap();
            let rx = NtpTimestamp::from_unix_f64(arrive);
            let previous = self
                .saved
                .filter(|(srx, _)| q.origin_timestamp == *srx)
                .filter(|_| q.receive_timestamp != q.transmit_timestamp);
            let (origin, transmit) = match previous {
                Some((_, tx)) => (q.receive_timestamp, tx),
                None => (
                    q.transmit_timestamp,
                    NtpTimestamp::from_unix_f64(arrive + 1e-5),
                ),
            };
            self.saved = Some((rx, NtpTimestamp::from_unix_f64(arrive + 6e-5)));
            let h = super::super::tests::reply_header(&q, origin, arrive, transmit, -24);
            (h.to_bytes(), arrive + 6e-5 + 1e-4)
        }
    }

    #[test]
    fn ntpdata_says_interleaved_with_the_exact_delay() {
        let mut e = Engine::new(EngineConfig::default());
        // `xleave` in the source's configuration (the daemon's path).
        let cfg = SourceConfig {
            minpoll: 0,
            maxpoll: 0,
            xleave: true,
            ..SourceConfig::default()
        };
        let id = e.add_source("192.0.2.7:123".parse().unwrap(), cfg, T0);
        let mut c = TestClock {
            now: T0,
            ..TestClock::default()
        };
        let mut s = Server::default();
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (req, sent) = next_request(&mut e, &mut c);
            let (rep, rx) = s.answer(&req, sent + 1e-4);
            c.now = rx;
            e.handle_packet(id, rx, &rep, None, false, &mut c);
            let d = e.ntp_data(id).unwrap();
            seen.push((d.interleaved, d.tests, d.peer_delay, d.response_time));
        }
        // Basic first; the first interleaved answer re-measures that exchange (test A); then
        // every measurement is interleaved with the wire's 200 µs round trip.
        assert!(!seen[0].0);
        assert!((seen[0].2 - 2.5e-4).abs() < 1e-6, "{seen:?}");
        for (interleaved, tests, delay, held) in &seen[2..] {
            assert!(interleaved, "{seen:?}");
            assert_eq!(*tests, crate::association::ntp_data::test_bit::ALL);
            assert!((delay - 2e-4).abs() < 1e-6, "{seen:?}");
            // The server held the measured request 60 µs (its kernel stamp), as chronyd's
            // `Response time` shows it, not the packet's own fields (negative, so 0).
            assert!((held - 6e-5).abs() < 1e-6, "{seen:?}");
        }
        assert!(seen[1].0 || seen[2].0, "{seen:?}");
        // Back to basic: the next measurement is basic again.
        e.sources.get_mut(&id).unwrap().assoc.set_interleaved(false);
        let (req, sent) = next_request(&mut e, &mut c);
        let (rep, rx) = s.answer(&req, sent + 1e-4);
        c.now = rx;
        e.handle_packet(id, rx, &rep, None, false, &mut c);
        assert!(!e.ntp_data(id).unwrap().interleaved);
    }
}
