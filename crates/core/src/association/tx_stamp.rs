//! Kernel transmit timestamps of our own packets (chronyd 4.3 on Linux: SO_TIMESTAMPING
//! software transmit stamps, "TX timestamping : Kernel" in `chronyc ntpdata`).
//!
//! The local transmit time (T1 of RFC 5905 §8) of a request is first the clock read before the
//! send. Once the daemon reads the kernel's stamp of the datagram back from the socket's error
//! queue it replaces T1 of the outstanding request with it, converted to cooked local time
//! exactly as receive stamps are. The kernel's stamp is taken when the driver takes the
//! datagram, so it leaves out the time spent building, authenticating and sending the request
//! (and the scheduling between), which the pre-send reading adds to the measured delay and,
//! halved, to the offset's noise.
//!
//! * Identity: the stamp's looped-back datagram carries a transmit timestamp field (random for
//!   a client request, our clock for a peer packet); it must be the outstanding request's,
//!   otherwise the stamp belongs to another packet ([`TxStampOutcome::Mismatched`]).
//! * Late stamps: a stamp that arrives after the reply was handled finds no outstanding
//!   request ([`TxStampOutcome::Late`]) and that sample keeps the daemon's T1. chronyd can
//!   hold a sample back briefly for a late stamp (hardware stamps often are late); a software
//!   stamp is queued when the driver takes the datagram, before it can reach the server, so it
//!   is in the error queue before any reply can arrive, and the daemon reads the error queue
//!   before the replies. A late one means the daemon stalled, and holding samples back would
//!   add a state and a timer to every exchange for that case alone, so the daemon's stamp,
//!   which is only a little early, is kept.
//! * Plausibility: the kernel takes its stamp after the clock was read for the request; one
//!   more than [`EARLIEST`] before that reading or more than [`LATEST`] after it comes from a
//!   conversion gone wrong and is refused ([`TxStampOutcome::Implausible`]).
//! * Clock changes: a slew or frequency change between the send and the stamp's arrival has
//!   shifted the pending T1 (`apply_clock_change`) and the daemon converts the stamp with the
//!   clock's state when it arrives, so both are on the new timeline. A step is different: the
//!   system driver's kernel stamps are CLOCK_REALTIME readings from before the step, with no
//!   correction to move them across it, so a stamp for a request sent before a step is refused
//!   ([`Association::refuse_kernel_transmit`], [`TxStampOutcome::Implausible`]). A change after
//!   the replacement shifts the kernel's T1 like any other.

use super::Association;
use gnomon_wire::NtpTimestamp;

/// How far before the clock reading for a request its kernel stamp may lie, seconds: nothing
/// but rounding and the conversion's own reading can put it earlier.
pub const EARLIEST: f64 = 1e-3;
/// How far after the clock reading for a request its kernel stamp may lie, seconds: a request
/// leaves microseconds after the reading; a stalled daemon can take much longer, but not this.
pub const LATEST: f64 = 1.0;

/// What a kernel transmit timestamp did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TxStampOutcome {
    /// It replaced the outstanding request's local transmit time; `advance` is how much later
    /// than the daemon's reading it was, seconds.
    Applied {
        /// Kernel stamp minus the reading it replaced, seconds.
        advance: f64,
    },
    /// It belongs to no packet of this source that is still waiting for an answer, or to
    /// another one (stale, or not an NTP packet).
    Mismatched,
    /// The request it belongs to was answered (or abandoned) already; the sample kept the
    /// daemon's transmit time.
    Late,
    /// Too far from the daemon's reading to be the same send; refused.
    Implausible,
}

impl Association {
    /// The clock was stepped: the outstanding request keeps the daemon's transmit time (moved
    /// with the step), as its kernel stamp, if it comes, predates the step.
    pub fn refuse_kernel_transmit(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.stepped = true;
        }
    }

    /// The kernel says the packet whose transmit timestamp field was `wire_tx` left at local
    /// cooked time `cooked`: when that packet is the outstanding request, its local transmit
    /// time becomes `cooked`.
    pub fn kernel_transmit(&mut self, wire_tx: NtpTimestamp, cooked: f64) -> TxStampOutcome {
        let Some(p) = self.pending.as_mut() else {
            return TxStampOutcome::Late;
        };
        if wire_tx.is_zero() || p.wire_tx != wire_tx {
            return TxStampOutcome::Mismatched;
        }
        let advance = cooked - p.local_tx;
        if p.kernel_tx || p.stepped || !(-EARLIEST..=LATEST).contains(&advance) {
            // A second stamp for one datagram cannot be: keep the first.
            return TxStampOutcome::Implausible;
        }
        p.local_tx = cooked;
        p.kernel_tx = true;
        TxStampOutcome::Applied { advance }
    }

    /// Whether the outstanding request's local transmit time is the kernel's.
    pub fn transmit_from_kernel(&self) -> bool {
        self.pending.is_some_and(|p| p.kernel_tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::{RxOutcome, SourceConfig, SourceKind};
    use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort};

    const T0: f64 = 1_780_000_000.0;

    fn client() -> Association {
        Association::new(
            "192.0.2.1:123".parse().unwrap(),
            SourceConfig::default(),
            T0,
            7,
        )
    }

    /// Sends the first request at its deadline (the daemon's reading); returns its transmit
    /// timestamp field and the reading.
    fn send(a: &mut Association) -> (Header, f64) {
        let t = a.next_timeout().unwrap();
        let tx = a.on_timer(t, t).expect("request due");
        (Header::decode(&tx.payload).unwrap(), t)
    }

    /// A server exactly on our time answering `q`: it receives at `arrive`, answers 10 µs
    /// later, and the answer reaches us `back` seconds after that.
    fn answer(q: &Header, arrive: f64, back: f64) -> ([u8; 48], f64) {
        let h = Header {
            leap: LeapIndicator::NoWarning,
            version: 4,
            mode: if q.mode == Mode::SymmetricActive {
                Mode::SymmetricPassive
            } else {
                Mode::Server
            },
            stratum: 2,
            poll: q.poll,
            precision: -24,
            root_dispersion: NtpShort::from_seconds(1e-4),
            reference_id: 0x0A00_0001,
            reference_timestamp: NtpTimestamp::from_unix_f64(arrive - 1.0),
            origin_timestamp: q.transmit_timestamp,
            receive_timestamp: NtpTimestamp::from_unix_f64(arrive),
            transmit_timestamp: NtpTimestamp::from_unix_f64(arrive + 1e-5),
            ..Default::default()
        };
        (h.to_bytes(), arrive + 1e-5 + back)
    }

    fn sample(outcome: RxOutcome) -> crate::sample_filter::Sample {
        match outcome {
            RxOutcome::Sample(s) => s,
            other => panic!("no sample: {other:?}"),
        }
    }

    #[test]
    fn matching_stamp_replaces_the_read_before_the_send() {
        let mut a = client();
        let (q, read) = send(&mut a);
        // The request left 300 µs after the reading and took 100 µs each way.
        let left = read + 300e-6;
        assert_eq!(
            a.kernel_transmit(q.transmit_timestamp, left),
            TxStampOutcome::Applied {
                advance: left - read
            }
        );
        assert!(a.transmit_from_kernel());
        let (rep, rx) = answer(&q, left + 100e-6, 100e-6);
        let s = sample(a.on_packet(rx, &rep, None, false));
        // Only the wire time is measured: 200 µs, no offset.
        assert!((s.peer_delay - 200e-6).abs() < 1e-6, "{}", s.peer_delay);
        assert!(s.offset.abs() < 1e-6, "{}", s.offset);
        assert!(!a.transmit_from_kernel());
    }

    #[test]
    fn without_the_stamp_the_early_reading_inflates_delay_and_offset() {
        let mut a = client();
        let (q, read) = send(&mut a);
        let left = read + 300e-6;
        let (rep, rx) = answer(&q, left + 100e-6, 100e-6);
        let s = sample(a.on_packet(rx, &rep, None, false));
        assert!((s.peer_delay - 500e-6).abs() < 1e-6, "{}", s.peer_delay);
        // Half the send latency shows as an offset: we look 150 µs slow.
        assert!((s.offset + 150e-6).abs() < 1e-6, "{}", s.offset);
    }

    #[test]
    fn stamp_of_a_request_sent_before_a_step_is_refused() {
        let mut a = client();
        let (q, read) = send(&mut a);
        // The clock steps 0.5 ms back before the stamp is read: a system-clock stamp is still
        // on the old timeline, within the plausible window, and would be wrong by the step.
        a.apply_clock_change(read, 0.0, -5e-4);
        a.refuse_kernel_transmit();
        assert_eq!(
            a.kernel_transmit(q.transmit_timestamp, read + 1e-4),
            TxStampOutcome::Implausible
        );
        assert!(!a.transmit_from_kernel());
        // The next request takes stamps again.
        let _ = a.on_packet(read + 1e-3, &answer(&q, read, 1e-4).0, None, false);
        let t = a.next_timeout().unwrap();
        let tx = a.on_timer(t, t).expect("request due");
        let q2 = Header::decode(&tx.payload).unwrap();
        assert!(matches!(
            a.kernel_transmit(q2.transmit_timestamp, t + 1e-4),
            TxStampOutcome::Applied { .. }
        ));
    }

    #[test]
    fn stamp_of_another_packet_is_ignored() {
        let mut a = client();
        let (q, read) = send(&mut a);
        let other = NtpTimestamp(q.transmit_timestamp.0 ^ 0x10);
        assert_eq!(
            a.kernel_transmit(other, read + 1e-4),
            TxStampOutcome::Mismatched
        );
        assert_eq!(
            a.kernel_transmit(NtpTimestamp::ZERO, read + 1e-4),
            TxStampOutcome::Mismatched
        );
        assert!(!a.transmit_from_kernel());
        let (rep, rx) = answer(&q, read + 2e-4, 1e-4);
        let s = sample(a.on_packet(rx, &rep, None, false));
        // The daemon's reading stayed T1.
        assert!((s.peer_delay - 3e-4).abs() < 1e-6, "{}", s.peer_delay);
    }

    #[test]
    fn stamp_of_the_previous_request_does_not_touch_the_next_one() {
        let mut a = client();
        let (q1, _) = send(&mut a);
        let (q2, read2) = send(&mut a);
        assert_ne!(q1.transmit_timestamp, q2.transmit_timestamp);
        assert_eq!(
            a.kernel_transmit(q1.transmit_timestamp, read2 + 1e-4),
            TxStampOutcome::Mismatched
        );
        assert!(!a.transmit_from_kernel());
    }

    #[test]
    fn late_stamp_after_the_reply_leaves_the_sample_alone() {
        let mut a = client();
        let (q, read) = send(&mut a);
        let (rep, rx) = answer(&q, read + 2e-4, 1e-4);
        let s = sample(a.on_packet(rx, &rep, None, false));
        let stats = a.stats().len();
        assert_eq!(
            a.kernel_transmit(q.transmit_timestamp, read + 1e-4),
            TxStampOutcome::Late
        );
        assert_eq!(a.stats().len(), stats);
        assert_eq!(
            a.stats().last_sample().map(|x| x.peer_delay),
            Some(s.peer_delay)
        );
    }

    #[test]
    fn implausible_or_repeated_stamps_are_refused() {
        let mut a = client();
        let (q, read) = send(&mut a);
        let wire = q.transmit_timestamp;
        assert_eq!(
            a.kernel_transmit(wire, read - 2.0 * EARLIEST),
            TxStampOutcome::Implausible
        );
        assert_eq!(
            a.kernel_transmit(wire, read + 2.0 * LATEST),
            TxStampOutcome::Implausible
        );
        assert!(!a.transmit_from_kernel());
        // Within the window: a stamp a few µs before the reading (rounding) is taken.
        assert!(matches!(
            a.kernel_transmit(wire, read - 2e-6),
            TxStampOutcome::Applied { .. }
        ));
        assert_eq!(
            a.kernel_transmit(wire, read + 1e-4),
            TxStampOutcome::Implausible
        );
    }

    #[test]
    fn clock_change_before_the_stamp_keeps_both_times_on_one_timeline() {
        let mut a = client();
        let (q, read) = send(&mut a);
        // The clock is stepped 0.5 s back between the send and the stamp's arrival: the
        // pending T1 moves with it, and the stamp is converted after the step.
        a.apply_clock_change(read + 1e-4, 0.0, -0.5);
        let left = read + 300e-6 - 0.5;
        assert!(matches!(
            a.kernel_transmit(q.transmit_timestamp, left),
            TxStampOutcome::Applied { advance } if (advance - 300e-6).abs() < 1e-6
        ));
        // The server is on the new timeline too.
        let (rep, rx) = answer(&q, left + 100e-6, 100e-6);
        let s = sample(a.on_packet(rx, &rep, None, false));
        assert!((s.peer_delay - 200e-6).abs() < 1e-6, "{}", s.peer_delay);
        assert!(s.offset.abs() < 1e-6, "{}", s.offset);
    }

    #[test]
    fn clock_change_after_the_stamp_shifts_the_kernel_time() {
        let mut a = client();
        let (q, read) = send(&mut a);
        let left = read + 300e-6;
        assert!(matches!(
            a.kernel_transmit(q.transmit_timestamp, left),
            TxStampOutcome::Applied { .. }
        ));
        // Stepped 0.25 s forward while the request is out: our clock was 0.25 s slow of the
        // server's timeline before, so the server (on the old timeline + 0.25) agrees now.
        a.apply_clock_change(left + 1e-4, 0.0, 0.25);
        assert!(a.transmit_from_kernel());
        let (rep, rx) = answer(&q, left + 0.25 + 100e-6, 100e-6);
        let s = sample(a.on_packet(rx, &rep, None, false));
        assert!((s.peer_delay - 200e-6).abs() < 1e-6, "{}", s.peer_delay);
        assert!(s.offset.abs() < 1e-6, "{}", s.offset);
    }

    #[test]
    fn peer_packet_is_identified_by_its_clock_transmit_timestamp() {
        let cfg = SourceConfig {
            kind: SourceKind::Peer,
            ..SourceConfig::default()
        };
        let mut a = Association::new("192.0.2.9:123".parse().unwrap(), cfg, T0, 3);
        let (q, read) = send(&mut a);
        // A peer packet carries our clock's reading, which the kernel stamp does not change.
        assert!(
            q.transmit_timestamp
                .diff_seconds(NtpTimestamp::from_unix_f64(read))
                .abs()
                < 1e-6
        );
        let left = read + 250e-6;
        assert!(matches!(
            a.kernel_transmit(q.transmit_timestamp, left),
            TxStampOutcome::Applied { .. }
        ));
        let (rep, rx) = answer(&q, left + 100e-6, 100e-6);
        let s = sample(a.on_packet(rx, &rep, None, false));
        assert!((s.peer_delay - 200e-6).abs() < 1e-6, "{}", s.peer_delay);
    }

    #[test]
    fn going_offline_drops_the_request_and_its_late_stamp() {
        let mut a = client();
        let (q, read) = send(&mut a);
        a.set_online(false, read + 1.0);
        assert_eq!(
            a.kernel_transmit(q.transmit_timestamp, read + 1e-4),
            TxStampOutcome::Late
        );
    }
}
