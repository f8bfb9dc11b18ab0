//! The engine's side of kernel transmit timestamps (the rules are the association's,
//! `association/tx_stamp.rs`): the daemon hands over each stamp it reads from a source's
//! socket, and `ntpdata`/measurements.log learn which exchanges used one.

use super::{Engine, SourceId};
use crate::association::TxStampOutcome;
use crate::local_clock::{cooked_time, ClockDriver};
use gnomon_wire::Header;

impl Engine {
    /// The kernel stamped a datagram sent for source `id` at `now` (its CLOCK_REALTIME stamp
    /// moved to the driver's time base, exactly as [`Engine::handle_packet`]'s receive time):
    /// `looped` is the start of the datagram as the kernel looped it back, which identifies
    /// it. When it is the source's outstanding request, that request's local transmit time
    /// becomes the stamp (cooked like a receive time).
    pub fn handle_tx_timestamp(
        &mut self,
        id: SourceId,
        looped: &[u8],
        now: f64,
        clock: &dyn ClockDriver,
    ) -> TxStampOutcome {
        let Ok(h) = Header::decode(looped) else {
            return TxStampOutcome::Mismatched;
        };
        let cooked = cooked_time(clock, now);
        let Some(e) = self.sources.get_mut(&id) else {
            return TxStampOutcome::Mismatched;
        };
        let outcome = e.assoc.kernel_transmit(h.transmit_timestamp, cooked);
        if matches!(outcome, TxStampOutcome::Applied { .. }) {
            self.ntp_data.entry(id).or_default().count_kernel_tx();
        }
        outcome
    }

    /// Whether the exchange behind source `id`'s last valid packet used the kernel's transmit
    /// timestamp (measurements.log's `K` in the transmit column, `ntpdata`'s "Kernel").
    pub fn tx_from_kernel(&self, id: SourceId) -> bool {
        self.ntp_data
            .get(&id)
            .is_some_and(|d| d.report(0).tx_kernel)
    }

    /// After [`Engine::handle_packet_recorded`] recorded a packet for `ntpdata`: `kernel` says
    /// whether the request it answered had the kernel's transmit time.
    pub(super) fn note_tx_source(&mut self, id: SourceId, kernel: bool) {
        if let Some(d) = self.ntp_data.get_mut(&id) {
            d.note_tx_source(kernel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::engine::{Action, EngineConfig};
    use crate::association::SourceConfig;
    use crate::local_clock::TestClock;
    use gnomon_wire::NtpTimestamp;

    const T0: f64 = 1_780_000_000.0;

    /// An engine with one source and its first request sent at `c.now`.
    fn engine_with_request(c: &mut TestClock) -> (Engine, SourceId, [u8; 48], f64) {
        let mut e = Engine::new(EngineConfig::default());
        let id = e.add_source(
            "192.0.2.7:123".parse().unwrap(),
            SourceConfig::default(),
            T0,
        );
        c.now = T0;
        loop {
            let t = e.poll_timeout().expect("a deadline");
            c.now = t.max(c.now);
            let now = c.now;
            for a in e.handle_timeout(now, c) {
                if let Action::Send(sid, tx) = a {
                    assert_eq!(sid, id);
                    return (e, id, tx.payload, now);
                }
            }
        }
    }

    /// A server on the test clock's time answering `req` at `arrive` (10 µs inside, 100 µs
    /// back).
    fn answer(req: &[u8; 48], arrive: f64) -> ([u8; 48], f64) {
        let q = Header::decode(req).unwrap();
        let h = super::super::tests::reply_header(
            &q,
            q.transmit_timestamp,
            arrive,
            NtpTimestamp::from_unix_f64(arrive + 1e-5),
            -24,
        );
        (h.to_bytes(), arrive + 1e-5 + 1e-4)
    }

    #[test]
    fn kernel_stamp_reaches_the_measurement_and_ntpdata() {
        let mut c = TestClock::default();
        let (mut e, id, req, read) = engine_with_request(&mut c);
        let left = read + 300e-6;
        assert_eq!(e.ntp_data(id).map(|d| d.total_kernel_tx), Some(0));
        assert!(matches!(
            e.handle_tx_timestamp(id, &req, left, &c),
            TxStampOutcome::Applied { .. }
        ));
        let (rep, rx) = answer(&req, left + 100e-6);
        c.now = rx;
        e.handle_packet(id, rx, &rep, None, false, &mut c);
        let d = e.ntp_data(id).unwrap();
        assert!(d.tx_kernel);
        assert_eq!((d.total_kernel_tx, d.total_good), (1, 1));
        assert!((d.peer_delay - 200e-6).abs() < 1e-6, "{}", d.peer_delay);
        assert!(e.tx_from_kernel(id));
    }

    #[test]
    fn daemon_reading_is_reported_when_no_stamp_matched() {
        let mut c = TestClock::default();
        let (mut e, id, req, read) = engine_with_request(&mut c);
        let mut other = req;
        other[47] ^= 1;
        assert_eq!(
            e.handle_tx_timestamp(id, &other, read + 1e-4, &c),
            TxStampOutcome::Mismatched
        );
        // Not an NTP packet at all, or an unknown source.
        assert_eq!(
            e.handle_tx_timestamp(id, &req[..20], read + 1e-4, &c),
            TxStampOutcome::Mismatched
        );
        assert_eq!(
            e.handle_tx_timestamp(SourceId(99), &req, read + 1e-4, &c),
            TxStampOutcome::Mismatched
        );
        let (rep, rx) = answer(&req, read + 400e-6);
        c.now = rx;
        e.handle_packet(id, rx, &rep, None, false, &mut c);
        let d = e.ntp_data(id).unwrap();
        assert!(!d.tx_kernel);
        assert_eq!(d.total_kernel_tx, 0);
        assert!((d.peer_delay - 500e-6).abs() < 1e-6, "{}", d.peer_delay);
        // Late now: the reply was handled.
        assert_eq!(
            e.handle_tx_timestamp(id, &req, read + 1e-4, &c),
            TxStampOutcome::Late
        );
        assert!(!e.tx_from_kernel(id));
    }

    #[test]
    fn stamp_is_cooked_with_the_slew_in_progress() {
        let mut c = TestClock::default();
        let (mut e, id, req, read) = engine_with_request(&mut c);
        // The driver still has 2 ms to slew: cooked = raw + 2 ms for both the request's
        // reading (taken before this correction existed, so moved by the clock change as the
        // engine does) and the stamp.
        c.remaining = 2e-3;
        e.apply_change(
            crate::reference::ClockChange {
                when: read,
                dfreq: 0.0,
                doffset: 2e-3,
            },
            false,
        );
        let left = read + 300e-6;
        assert!(matches!(
            e.handle_tx_timestamp(id, &req, left, &c),
            TxStampOutcome::Applied { advance } if (advance - 300e-6).abs() < 1e-6
        ));
        // The server agrees with the cooked clock.
        let (rep, rx) = answer(&req, left + 2e-3 + 100e-6);
        c.now = rx - 2e-3;
        e.handle_packet(id, rx - 2e-3, &rep, None, false, &mut c);
        let d = e.ntp_data(id).unwrap();
        assert!(d.tx_kernel);
        assert!((d.peer_delay - 200e-6).abs() < 1e-6, "{}", d.peer_delay);
        assert!(d.offset.abs() < 1e-6, "{}", d.offset);
    }
}
