//! The engine's side of per-source options that reach beyond one association
//! (chrony.conf(5) "server" options):
//!
//! * `copy`: while the synchronisation source has it, we announce the source's own reference
//!   ID and stratum (not stratum + 1 and not the source's address), as a chronyd `-x` instance
//!   serving the time of another instance on the same computer does.
//! * `auto_offline`: a request that could not be sent takes the source offline.
//! * `maxunreach` (chrony 4.8): an unreachable source may stay selectable for that many polls,
//!   and only while its newest sample is not older than the oldest newest sample of the
//!   reachable sources (chrony's additional condition), so a source that went silent never
//!   outlives fresher measurements.

use super::{Engine, SourceId};
use crate::selection::Candidate;

impl Engine {
    /// The daemon could not send source `id`'s request (no route, socket error): with
    /// `auto_offline` the source goes offline until `chronyc online`.
    pub fn send_failed(&mut self, id: SourceId) {
        if let Some(e) = self.sources.get_mut(&id) {
            e.assoc.send_failed();
        }
    }

    /// Reference ID and stratum to announce instead of ours when the synchronisation source
    /// is configured with `copy`.
    pub(super) fn copied_reference(&self) -> Option<(u32, u8)> {
        let id = self.selector.current()?;
        let e = self.sources.get(&SourceId(id as u32))?;
        let a = &e.assoc;
        (a.config().copy && a.stratum() > 0).then_some((a.reference_id, a.stratum()))
    }

    /// Applies `maxunreach`'s freshness condition to the selection candidates: an
    /// unreachable candidate kept usable by its `maxunreach` allowance is dropped when its
    /// newest sample is older than every reachable source's newest sample.
    pub(super) fn limit_unreachable(&self, candidates: &mut [Candidate]) {
        let oldest_reachable = self
            .sources
            .values()
            .filter(|e| e.assoc.reach() != 0)
            .filter_map(|e| e.assoc.last_sample_time())
            .reduce(f64::min);
        let Some(oldest) = oldest_reachable else {
            return;
        };
        for c in candidates.iter_mut() {
            let Some(e) = self.sources.get(&SourceId(c.id as u32)) else {
                continue;
            };
            if c.usable
                && e.assoc.reach() == 0
                && e.assoc.last_sample_time().is_none_or(|t| t < oldest)
            {
                c.usable = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Action, EngineConfig};
    use super::*;
    use crate::association::SourceConfig;
    use crate::local_clock::TestClock;
    use gnomon_wire::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp};
    use std::net::SocketAddr;

    const T0: f64 = 1_780_000_000.0;
    const GPS: u32 = 0x4750_5300;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 123))
    }

    /// A stratum-1 server 1 ms away, on time.
    fn answer(req: &[u8], t1: f64) -> ([u8; 48], f64) {
        let q = Header::decode(req).unwrap();
        let t2 = t1 + 0.001;
        let h = Header {
            leap: LeapIndicator::NoWarning,
            version: 4,
            mode: Mode::Server,
            stratum: 1,
            poll: q.poll,
            precision: -20,
            root_dispersion: NtpShort::from_seconds(1e-4),
            reference_id: GPS,
            reference_timestamp: NtpTimestamp::from_unix_f64(t2 - 1.0),
            origin_timestamp: q.transmit_timestamp,
            receive_timestamp: NtpTimestamp::from_unix_f64(t2),
            transmit_timestamp: NtpTimestamp::from_unix_f64(t2),
            ..Default::default()
        };
        (h.to_bytes(), t1 + 0.002)
    }

    /// Runs until `end`; `answers(source, time)` says whether a request gets a reply.
    fn drive(e: &mut Engine, c: &mut TestClock, end: f64, answers: impl Fn(SourceId, f64) -> bool) {
        while let Some(t) = e.poll_timeout() {
            let t = t.max(c.now);
            if t > end {
                break;
            }
            c.now = t;
            for a in e.handle_timeout(t, c) {
                if let Action::Send(id, tx) = a {
                    if answers(id, t) {
                        let (rep, rx) = answer(&tx.payload, t);
                        c.now = rx;
                        e.handle_packet(id, rx, &rep, None, false, c);
                    }
                }
            }
        }
    }

    fn fast(cfg: SourceConfig) -> SourceConfig {
        SourceConfig {
            minpoll: 0,
            maxpoll: 0,
            ..cfg
        }
    }

    fn synchronised(cfg: SourceConfig) -> (Engine, TestClock) {
        let mut e = Engine::new(EngineConfig::default());
        let mut c = TestClock {
            now: T0,
            ..Default::default()
        };
        e.add_source(addr(1), fast(cfg), T0);
        drive(&mut e, &mut c, T0 + 20.0, |_, _| true);
        assert!(e.reference().is_synchronised());
        (e, c)
    }

    #[test]
    fn copy_announces_the_source_reference_id_and_stratum() {
        let (e, c) = synchronised(SourceConfig::default());
        let l = e.local_state(c.now);
        assert_eq!((l.reference_id, l.stratum), (0xC000_0201, 2));
        let (e, c) = synchronised(SourceConfig {
            copy: true,
            ..Default::default()
        });
        let l = e.local_state(c.now);
        assert_eq!((l.reference_id, l.stratum), (GPS, 1));
        let t = e.tracking(c.now, &c);
        assert_eq!((t.reference_id, t.stratum), (GPS, 1));
    }

    #[test]
    fn auto_offline_source_stops_polling_when_the_send_fails() {
        let (mut e, c) = synchronised(SourceConfig {
            auto_offline: true,
            ..Default::default()
        });
        let id = e.source_by_addr(addr(1)).unwrap();
        assert!(e.poll_timeout().is_some());
        e.send_failed(id);
        assert_eq!(e.poll_timeout(), None);
        e.set_online(id, true, c.now);
        assert!(e.poll_timeout().is_some());
    }

    #[test]
    fn maxunreach_source_is_dropped_once_reachable_sources_have_fresher_samples() {
        let mut e = Engine::new(EngineConfig::default());
        let mut c = TestClock {
            now: T0,
            ..Default::default()
        };
        let lasting = fast(SourceConfig {
            maxunreach: Some(1000),
            ..Default::default()
        });
        let a = e.add_source(addr(1), lasting, T0);
        let b = e.add_source(addr(2), lasting, T0);
        // Both answer for 20 s, then `a` goes silent.
        drive(&mut e, &mut c, T0 + 20.0, |_, _| true);
        drive(&mut e, &mut c, T0 + 40.0, |id, _| id == b);
        let cands = |e: &Engine, now| {
            let mut cs = e.candidates(now);
            e.limit_unreachable(&mut cs);
            cs
        };
        let usable = |e: &Engine, now, id: SourceId| {
            cands(e, now)
                .iter()
                .find(|c| c.id == id.0 as usize)
                .unwrap()
                .usable
        };
        assert_eq!(e.association(a).unwrap().reach(), 0);
        // Its allowance alone keeps it, but `b`'s samples are all newer than `a`'s last.
        assert!(e.association(a).unwrap().is_selectable());
        assert!(!usable(&e, c.now, a));
        assert!(usable(&e, c.now, b));
        // With no reachable source at all, the allowance decides.
        drive(&mut e, &mut c, T0 + 60.0, |_, _| false);
        assert!(usable(&e, c.now, a));
    }
}
