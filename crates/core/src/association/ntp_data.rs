//! What `chronyc ntpdata` shows about an NTP source: the fields of the last valid packet it
//! sent, the measurement made from it, which of chrony's packet tests it passed, and the
//! per-source packet counters (chronyc's "Total TX/RX/valid RX/good RX").
//!
//! chrony numbers its tests 1–3 (duplicate, bogus, invalid timestamps), 5–7
//! (authentication, unsynchronised server, root distance) and A–D (maxdelay, maxdelayratio,
//! maxdelaydevratio, synchronisation loop); `ntpdata` prints them as `111 111 1111`, test 1
//! first. Our association stops at the first failed test, so the tests after it are
//! reported as passed (chronyd evaluates them all).
//!
//! "TX timestamping" says where the local transmit time of the exchange behind the last valid
//! packet came from: the kernel's transmit timestamp (`Kernel`, as chronyd 4.3 on Linux shows
//! for its sources) when the daemon got it before the reply (tx_stamp.rs), else the daemon's
//! reading before the send (`Daemon`).

use super::{Rejection, RxOutcome};
use gnomon_wire::{Header, LeapIndicator, Mode, NtpTimestamp};

/// Bit of each test in the `tests` field: chrony's flags hold test 1 in bit 9 down to test D
/// in bit 0 (chronyc prints them from bit 9).
pub mod test_bit {
    /// Test 1: duplicate packet.
    pub const DUPLICATE: u16 = 1 << 9;
    /// Test 2: bogus (does not answer our request).
    pub const BOGUS: u16 = 1 << 8;
    /// Test 3: invalid (zero) timestamps.
    pub const INVALID: u16 = 1 << 7;
    /// Test 5: authentication.
    pub const AUTH: u16 = 1 << 6;
    /// Test 6: server unsynchronised.
    pub const UNSYNC: u16 = 1 << 5;
    /// Test 7: root distance.
    pub const DISTANCE: u16 = 1 << 4;
    /// Test A: maxdelay.
    pub const MAX_DELAY: u16 = 1 << 3;
    /// Test B: maxdelayratio.
    pub const MAX_DELAY_RATIO: u16 = 1 << 2;
    /// Test C: maxdelaydevratio.
    pub const MAX_DELAY_DEV_RATIO: u16 = 1 << 1;
    /// Test D: synchronisation loop.
    pub const SYNC_LOOP: u16 = 1 << 0;
    /// All ten tests.
    pub const ALL: u16 = 0x3FF;
}

/// `ntpdata` for one source (cmdmon NTP_DATA).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NtpDataReport {
    /// Leap indicator of the last valid packet (0–3).
    pub leap: u8,
    /// Its version.
    pub version: u8,
    /// Its mode (4 server, 1/2 symmetric).
    pub mode: u8,
    /// Its stratum.
    pub stratum: u8,
    /// Its poll field, log2 seconds.
    pub poll: i8,
    /// Its precision, log2 seconds.
    pub precision: i8,
    /// Its root delay, seconds.
    pub root_delay: f64,
    /// Its root dispersion, seconds.
    pub root_dispersion: f64,
    /// Its reference ID.
    pub reference_id: u32,
    /// Its reference timestamp.
    pub reference_time: NtpTimestamp,
    /// Offset measured from it (positive: we are fast), seconds.
    pub offset: f64,
    /// Round-trip delay, seconds.
    pub peer_delay: f64,
    /// Dispersion of the measurement, seconds.
    pub peer_dispersion: f64,
    /// Time the server held the request (T3 − T2), seconds.
    pub response_time: f64,
    /// Asymmetry of the jitter in use: the configured `asymmetry`, or the source statistics'
    /// estimate (0 until one is trusted); set by the engine.
    pub jitter_asymmetry: f64,
    /// Tests passed ([`test_bit`]).
    pub tests: u16,
    /// The measurement was interleaved (association/interleaved.rs: made from the previous
    /// exchange with the server's transmit time sent in this packet).
    pub interleaved: bool,
    /// The packet was authenticated (MAC or NTS).
    pub authenticated: bool,
    /// The local transmit time of the exchange behind the last valid packet was the kernel's
    /// transmit timestamp (chronyc: "TX timestamping : Kernel"), not the daemon's reading.
    pub tx_kernel: bool,
    /// Requests whose local transmit time was replaced by the kernel's stamp.
    pub total_kernel_tx: u32,
    /// Requests sent.
    pub total_tx: u32,
    /// Packets received from the source.
    pub total_rx: u32,
    /// Packets that passed tests 1–3.
    pub total_valid: u32,
    /// Packets that passed every test (gave a measurement).
    pub total_good: u32,
}

/// The per-source recorder behind [`NtpDataReport`] (kept by the engine).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NtpDataLog {
    report: NtpDataReport,
    seen_valid: bool,
    /// The last packet passed tests 1–3 but gave no measurement (for measurements.log).
    last_rejected: bool,
    /// The last packet counted as valid (its exchange's transmit stamp is the one to show).
    last_valid: bool,
}

/// Our precision added to a measurement's dispersion, seconds (as the association's).
const LOCAL_PRECISION: f64 = 1e-6;
/// Frequency tolerance over the round trip (RFC 5905 PHI).
const PHI: f64 = 15e-6;

/// The timestamps of the previous exchange an interleaved response measured (RFC 9769):
/// T1 `sent` and T4 `received` local cooked, T2/T3 the server's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterleavedExchange {
    /// T1: our transmit time of that exchange's request.
    pub sent: f64,
    /// T2: the server's receive timestamp of it.
    pub remote_rx: NtpTimestamp,
    /// T3: the server's transmit time of its response (sent in the interleaved response).
    pub remote_tx: NtpTimestamp,
    /// T4: our receive time of that response.
    pub received: f64,
    /// T1 was the kernel's transmit stamp.
    pub kernel_tx: bool,
}

/// The on-wire calculation of an accepted sample (RFC 5905 §8), so that chronyd's columns are
/// filled for rejected packets too; `r.precision` is the server's.
fn measure(r: &mut NtpDataReport, sent: f64, t2: NtpTimestamp, t3: NtpTimestamp, received: f64) {
    let t1 = NtpTimestamp::from_unix_f64(sent);
    let t2 = t2.diff_seconds(t1);
    let t3 = t3.diff_seconds(t1);
    let t4 = received - sent;
    r.offset = (t4 - t3 - t2) / 2.0;
    r.peer_delay = (t4 - (t3 - t2)).max(0.0);
    r.peer_dispersion =
        LOCAL_PRECISION + 2f64.powi(i32::from(r.precision.clamp(-30, 0))) + PHI * t4.abs();
}

/// When our request left and its answer arrived (local cooked time, seconds): what a
/// rejected packet's offset and delay are computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exchange {
    /// Our transmit time (T1).
    pub sent: f64,
    /// Our receive time (T4).
    pub received: f64,
}

/// The test a rejection failed (0 for reasons that are not one of chrony's tests).
fn failed_test(r: Rejection) -> u16 {
    use test_bit::*;
    match r {
        Rejection::Duplicate => DUPLICATE,
        Rejection::Bogus => BOGUS,
        Rejection::ZeroTimestamp => INVALID,
        Rejection::AuthFailed | Rejection::NtsNak => AUTH,
        // A kiss (stratum 0) is an unusable, unsynchronised answer for chrony.
        Rejection::Unsynchronised
        | Rejection::KissRate
        | Rejection::KissDenyIgnored
        | Rejection::KissOther => UNSYNC,
        Rejection::RootDistance => DISTANCE,
        Rejection::MaxDelay => MAX_DELAY,
        Rejection::MaxDelayRatio => MAX_DELAY_RATIO,
        Rejection::MaxDelayDevRatio => MAX_DELAY_DEV_RATIO,
        Rejection::SyncLoop => SYNC_LOOP,
        Rejection::Malformed | Rejection::Presend | Rejection::Filtered => 0,
    }
}

impl NtpDataLog {
    /// Records a packet from the source and what the association made of it.
    /// `authenticated` says whether the source authenticates its packets (key or NTS).
    /// `exchange` is the request it answers, when one was outstanding.
    pub fn record(
        &mut self,
        data: &[u8],
        outcome: &RxOutcome,
        authenticated: bool,
        exchange: Option<Exchange>,
    ) {
        self.last_rejected = false;
        self.last_valid = false;
        let r = &mut self.report;
        r.total_rx = r.total_rx.saturating_add(1);
        let Ok(h) = Header::decode(data) else {
            return;
        };
        let failed = match outcome {
            RxOutcome::Sample(_) => 0,
            RxOutcome::Rejected(Rejection::Malformed) => return,
            RxOutcome::Rejected(reason) => failed_test(*reason),
        };
        // Packets failing tests 1–3 are not the source's answer, and one failing test 5 may
        // be forged: chronyd 4.3 neither counts them as valid RX nor shows their fields
        // (checked against a peer signing with the wrong key, tests/auth_peers.rs). Test 6
        // failures (an unsynchronised server) do count: chronyd 4.3 polling a chronyd with
        // no reference shows Total valid RX equal to Total RX.
        let not_valid = test_bit::DUPLICATE | test_bit::BOGUS | test_bit::INVALID | test_bit::AUTH;
        if failed & not_valid != 0 {
            if !self.seen_valid {
                r.tests = test_bit::ALL & !failed;
            }
            return;
        }
        self.seen_valid = true;
        self.last_valid = true;
        r.total_valid = r.total_valid.saturating_add(1);
        r.leap = match h.leap {
            LeapIndicator::NoWarning => 0,
            LeapIndicator::InsertSecond => 1,
            LeapIndicator::DeleteSecond => 2,
            LeapIndicator::Unsynchronised => 3,
        };
        r.version = h.version;
        r.mode = match h.mode {
            Mode::SymmetricActive => 1,
            Mode::SymmetricPassive => 2,
            Mode::Client => 3,
            Mode::Server => 4,
            Mode::Broadcast => 5,
            _ => 0,
        };
        r.stratum = h.stratum;
        r.poll = h.poll;
        r.precision = h.precision;
        r.root_delay = h.root_delay.to_seconds();
        r.root_dispersion = h.root_dispersion.to_seconds();
        r.reference_id = h.reference_id;
        r.reference_time = h.reference_timestamp;
        r.response_time = h
            .transmit_timestamp
            .diff_seconds(h.receive_timestamp)
            .max(0.0);
        r.tests = test_bit::ALL & !failed;
        r.authenticated = authenticated && failed & test_bit::AUTH == 0;
        match outcome {
            RxOutcome::Sample(s) => {
                r.total_good = r.total_good.saturating_add(1);
                r.offset = s.offset;
                r.peer_delay = s.peer_delay;
                r.peer_dispersion = s.peer_dispersion;
            }
            _ => {
                self.last_rejected = true;
                // The same on-wire calculation as an accepted sample (RFC 5905 §8), so that
                // chronyd's columns are filled for rejected packets too.
                if let Some(x) = exchange {
                    measure(
                        r,
                        x.sent,
                        h.receive_timestamp,
                        h.transmit_timestamp,
                        x.received,
                    );
                }
            }
        }
    }

    /// Whether the packet just recorded was measured in interleaved mode (`Some`: the
    /// previous exchange it measured); kept only when the packet was valid. The transmit
    /// stamp shown is then that exchange's, and a rejected packet's columns are computed from
    /// it (interleaved.rs).
    pub fn note_interleaved(&mut self, measured: Option<InterleavedExchange>) {
        if !self.last_valid {
            return;
        }
        self.report.interleaved = measured.is_some();
        if let Some(x) = measured {
            self.report.tx_kernel = x.kernel_tx;
            // The server's hold of the measured exchange (the packet's own transmit field is
            // the previous reply's time, before its receive time), as chronyd shows it.
            self.report.response_time = x.remote_tx.diff_seconds(x.remote_rx).max(0.0);
            if self.last_rejected {
                measure(
                    &mut self.report,
                    x.sent,
                    x.remote_rx,
                    x.remote_tx,
                    x.received,
                );
            }
        }
    }

    /// Where the local transmit time of the exchange behind the packet just recorded came
    /// from (`kernel`: the kernel's stamp); kept only when that packet was valid, so that the
    /// report describes the same exchange as its other fields.
    pub fn note_tx_source(&mut self, kernel: bool) {
        if self.last_valid {
            self.report.tx_kernel = kernel;
        }
    }

    /// Counts a request whose local transmit time became the kernel's stamp.
    pub fn count_kernel_tx(&mut self) {
        self.report.total_kernel_tx = self.report.total_kernel_tx.saturating_add(1);
    }

    /// The last packet's report when it passed tests 1–3 but gave no measurement.
    pub fn last_rejected(&self) -> Option<NtpDataReport> {
        self.last_rejected.then_some(self.report)
    }

    /// The report, with `total_tx` requests sent so far.
    pub fn report(&self, total_tx: u32) -> NtpDataReport {
        NtpDataReport {
            total_tx,
            ..self.report
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_clock::LeapState;
    use crate::sample_filter::Sample;
    use gnomon_wire::NtpShort;

    fn packet(stratum: u8) -> Vec<u8> {
        Header {
            leap: LeapIndicator::NoWarning,
            version: 4,
            mode: Mode::Server,
            stratum,
            poll: 6,
            precision: -25,
            root_delay: NtpShort::from_seconds(0.5),
            root_dispersion: NtpShort::from_seconds(0.25),
            reference_id: 0x7F7F_0101,
            reference_timestamp: NtpTimestamp::from_unix(1_800_000_000, 0),
            origin_timestamp: NtpTimestamp(1),
            receive_timestamp: NtpTimestamp::from_unix_f64(1_800_000_010.0),
            transmit_timestamp: NtpTimestamp::from_unix_f64(1_800_000_010.001),
        }
        .to_bytes()
        .to_vec()
    }

    fn sample() -> Sample {
        Sample {
            time: 0.0,
            offset: 1e-3,
            peer_delay: 2e-3,
            peer_dispersion: 3e-6,
            root_delay: 0.0,
            root_dispersion: 0.0,
            stratum: 3,
            leap: LeapState::Normal,
        }
    }

    #[test]
    fn good_packet_fills_every_field_and_passes_all_tests() {
        let mut log = NtpDataLog::default();
        log.record(&packet(3), &RxOutcome::Sample(sample()), false, None);
        let r = log.report(5);
        assert_eq!((r.stratum, r.poll, r.precision, r.mode), (3, 6, -25, 4));
        assert_eq!(r.reference_id, 0x7F7F_0101);
        assert!((r.root_delay - 0.5).abs() < 1e-4);
        assert!((r.response_time - 0.001).abs() < 1e-6);
        assert_eq!(r.tests, test_bit::ALL);
        assert_eq!((r.offset, r.peer_delay), (1e-3, 2e-3));
        assert_eq!(
            (r.total_tx, r.total_rx, r.total_valid, r.total_good),
            (5, 1, 1, 1)
        );
    }

    #[test]
    fn maxdelay_rejection_clears_test_a_and_counts_valid_not_good() {
        let mut log = NtpDataLog::default();
        let sent = 1_800_000_010.0 - 0.004;
        let exchange = Exchange {
            sent,
            received: sent + 0.010,
        };
        log.record(
            &packet(3),
            &RxOutcome::Rejected(Rejection::MaxDelay),
            false,
            Some(exchange),
        );
        let r = log.report(1);
        assert_eq!(r.tests, test_bit::ALL & !test_bit::MAX_DELAY);
        assert_eq!((r.total_rx, r.total_valid, r.total_good), (1, 1, 0));
        // T2 4 ms after T1, T3 1 ms later, T4 10 ms after T1: 9 ms delay, 0.5 ms fast.
        assert!((r.peer_delay - 0.009).abs() < 1e-6, "{}", r.peer_delay);
        assert!((r.offset - 0.0005).abs() < 1e-6, "{}", r.offset);
        assert_eq!(log.last_rejected().map(|x| x.offset), Some(r.offset));
    }

    #[test]
    fn bogus_packet_keeps_the_last_valid_fields() {
        let mut log = NtpDataLog::default();
        log.record(&packet(3), &RxOutcome::Sample(sample()), true, None);
        assert_eq!(log.last_rejected(), None);
        log.record(
            &packet(9),
            &RxOutcome::Rejected(Rejection::Bogus),
            true,
            None,
        );
        assert_eq!(log.last_rejected(), None);
        let r = log.report(2);
        assert_eq!(r.stratum, 3);
        assert!(r.authenticated);
        assert_eq!((r.total_rx, r.total_valid), (2, 1));
    }

    #[test]
    fn tx_source_follows_the_last_valid_packet_only() {
        let mut log = NtpDataLog::default();
        log.count_kernel_tx();
        log.record(&packet(3), &RxOutcome::Sample(sample()), false, None);
        log.note_tx_source(true);
        assert!(log.report(1).tx_kernel);
        assert_eq!(log.report(1).total_kernel_tx, 1);
        // A bogus packet (test 2) answers no exchange of ours: the valid one's source stays.
        log.record(
            &packet(3),
            &RxOutcome::Rejected(Rejection::Bogus),
            false,
            None,
        );
        log.note_tx_source(false);
        assert!(log.report(1).tx_kernel);
        // A valid packet whose request kept the daemon's reading.
        log.record(
            &packet(3),
            &RxOutcome::Rejected(Rejection::MaxDelay),
            false,
            None,
        );
        log.note_tx_source(false);
        assert!(!log.report(2).tx_kernel);
        assert!(!log.last_rejected().unwrap().tx_kernel);
    }

    #[test]
    fn interleaved_flag_follows_the_last_valid_packet_with_its_exchange() {
        let mut log = NtpDataLog::default();
        // The previous exchange: 1 ms round trip, the server held the request 0.5 ms and its
        // clock is 10 s ahead of ours (offset -10 s, delay 0.5 ms).
        let sent = 1_800_000_000.0;
        let x = InterleavedExchange {
            sent,
            remote_rx: NtpTimestamp::from_unix_f64(sent + 10.000_25),
            remote_tx: NtpTimestamp::from_unix_f64(sent + 10.000_75),
            received: sent + 1e-3,
            kernel_tx: true,
        };
        log.record(&packet(3), &RxOutcome::Sample(sample()), false, None);
        log.note_tx_source(false);
        log.note_interleaved(Some(x));
        // An accepted sample keeps its own offset; the exchange's kernel stamp is shown.
        assert!(log.report(1).interleaved);
        assert!(log.report(1).tx_kernel);
        assert_eq!(log.report(1).offset, sample().offset);
        // A bogus packet changes nothing.
        log.record(
            &packet(3),
            &RxOutcome::Rejected(Rejection::Bogus),
            false,
            None,
        );
        log.note_interleaved(None);
        assert!(log.report(1).interleaved);
        // A rejected interleaved packet: its columns come from the exchange it measured, not
        // from its own receive/transmit fields.
        let exchange = Some(Exchange {
            sent: sent + 1.0,
            received: sent + 1.001,
        });
        log.record(
            &packet(3),
            &RxOutcome::Rejected(Rejection::MaxDelay),
            false,
            exchange,
        );
        log.note_tx_source(false);
        log.note_interleaved(Some(x));
        let r = log.last_rejected().unwrap();
        assert!(r.interleaved && r.tx_kernel);
        // (to the f64 resolution of a 2027 Unix time, 0.24 µs)
        assert!((r.peer_delay - 0.5e-3).abs() < 1e-6, "{}", r.peer_delay);
        assert!((r.offset + 10.0).abs() < 1e-6, "{}", r.offset);
        // A valid basic one clears the flag.
        log.record(&packet(3), &RxOutcome::Sample(sample()), false, None);
        log.note_tx_source(true);
        log.note_interleaved(None);
        assert!(!log.report(3).interleaved);
        assert!(log.report(3).tx_kernel);
    }

    #[test]
    fn garbage_counts_as_received_only() {
        let mut log = NtpDataLog::default();
        log.record(
            b"nope",
            &RxOutcome::Rejected(Rejection::Malformed),
            false,
            None,
        );
        assert_eq!(log.report(0).total_rx, 1);
        assert_eq!(log.report(0).total_valid, 0);
    }
}
