//! The client side of the interleaved client/server mode (RFC 9769 §2, formerly
//! draft-ietf-ntp-interleaved-modes; chrony.conf(5) `xleave` on a `server` line).
//!
//! A server cannot put the exact transmit time of a response into that response (the kernel
//! stamps the datagram after it has left the server daemon). In interleaved mode the server
//! sends it in its *next* response instead, and the client measures the previous exchange
//! with it:
//!
//! - request: origin = the server's receive timestamp of the last response we accepted,
//!   receive = a random cookie (RFC 9769's example client; it differs from the transmit field
//!   as the server requires, reveals nothing about our clock, and is fresh for every request),
//!   transmit = the random value of a basic request (RFC 9109);
//! - response: a basic one answers with origin = our transmit field and is measured as in
//!   RFC 5905 §8; an interleaved one answers with origin = our cookie and transmit = the
//!   server's transmit time of its previous response to us (kernel stamp). It is measured
//!   from the exchange the request referred to: T1 = our transmit time of that exchange's
//!   request (the kernel's stamp when we got it), T2 = the server's receive timestamp of that
//!   exchange (the origin we sent), T3 = the transmit timestamp of this response, T4 = our
//!   receive time of that exchange's response.
//!
//! Consistency: the exchange referred to is saved with the request when it is sent
//! ([`Sent`]), so a response can only ever be combined with the timestamps the request
//! carried; the server answers interleaved only when our origin is the receive timestamp of
//! its last response to us, so T3 belongs to that same exchange. Test 2 accepts a response
//! whose origin is either the request's transmit field (basic) or its cookie (interleaved);
//! both are random and replaced at every request, so a replayed or forged response to an
//! older request fails it.
//!
//! Fallback and recovery: the first request, one sent after [`MAX_MISSED`] unanswered
//! requests (RFC 9769's example client) or after the source was offline, and any request of a
//! source not in interleaved mode are basic (zero origin and receive). A server without interleaved support, or one that lost
//! its state for us (a lost response: its last receive timestamp is no longer our origin),
//! answers in basic mode and that response is measured as a basic sample. A lost request
//! leaves the server's state alone, and the next response is interleaved for the exchange
//! before. Each exchange gives at most one sample: an interleaved response for an exchange
//! whose basic response was measured already fails test A, as chronyd 4.3 logs it (its
//! measurements.log shows `ABCD 0111` for the first interleaved response after basic ones).
//!
//! Test 6 compares the reference time with the server's receive timestamp of this response in
//! interleaved mode: the transmit field is then the previous response's, and a server that
//! updated its clock since would look unsynchronised.
//!
//! Clock changes move the saved exchange's local times with the outstanding request's
//! (`Association::apply_clock_change`), so T1 and T4 stay on the timeline of new receive
//! times. A leap second that both clocks observed (`shift_times`) leaves the server's
//! timestamps of the saved exchange on the other side of the leap: that exchange is dropped
//! instead (the next request is basic; an interleaved answer already on its way fails test A).
//! Symmetric peers (`peer … xleave`) are not covered here.

use super::ntp_data::InterleavedExchange;
use super::{Association, Pending, SourceKind};
use gnomon_wire::{Header, NtpTimestamp};
use rand::Rng;

/// Requests in a row without an accepted response after which the next request is basic
/// (RFC 9769's example client): the saved exchange is then too old to be worth measuring.
pub const MAX_MISSED: u32 = 4;

/// One completed exchange: what a later interleaved response is measured with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Exchange {
    /// The server's receive timestamp (T2), as it sent it; our next origin.
    remote_rx: NtpTimestamp,
    /// Our transmit time of the request (T1), local cooked.
    local_tx: f64,
    /// T1 is the kernel's transmit stamp.
    kernel_tx: bool,
    /// Our receive time of the response (T4), local cooked.
    local_rx: f64,
    /// Its basic response was measured already (no second sample from it).
    measured: bool,
}

impl Exchange {
    fn shift(&mut self, delta: f64) {
        self.local_tx += delta;
        self.local_rx += delta;
    }
}

/// What an outstanding request carried for interleaved mode.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Sent {
    /// The random receive field (zero: a basic request).
    cookie: NtpTimestamp,
    /// The exchange whose receive timestamp is the request's origin.
    previous: Option<Exchange>,
}

impl Sent {
    /// Whether a response with this origin answers the request in interleaved mode.
    pub(super) fn answered_by(&self, origin: NtpTimestamp) -> bool {
        !self.cookie.is_zero() && origin == self.cookie
    }
}

/// Per-association interleaved state.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Xleave {
    /// `xleave` configured (client sources only).
    enabled: bool,
    /// The last exchange whose response passed tests 1–3.
    last: Option<Exchange>,
    /// Requests sent since then.
    missed: u32,
    /// The exchange the last valid response measured, when it was interleaved.
    last_interleaved: Option<InterleavedExchange>,
}

/// The timestamps a response is measured with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Measured {
    /// T1, local cooked.
    pub local_tx: f64,
    /// T2.
    pub remote_rx: NtpTimestamp,
    /// T3.
    pub remote_tx: NtpTimestamp,
    /// T4, local cooked.
    pub local_rx: f64,
    /// The server's latest timestamp in the response (test 6): T3 in basic mode, the
    /// response's own receive timestamp in interleaved mode.
    pub remote_latest: NtpTimestamp,
    /// Measured from the previous exchange.
    pub interleaved: bool,
    /// That exchange gave a basic measurement already (test A fails).
    pub repeated: bool,
}

impl Association {
    /// Puts a `server`/`pool` source in interleaved mode (`xleave`), or back to basic mode;
    /// symmetric peers stay basic. Changing the mode forgets the saved exchange.
    pub fn set_interleaved(&mut self, on: bool) {
        let on = on && self.cfg.kind != SourceKind::Peer;
        if self.xleave.enabled != on {
            self.xleave = Xleave {
                enabled: on,
                ..Xleave::default()
            };
        }
    }

    /// Whether the source is in interleaved mode (`xleave`).
    pub fn is_interleaved(&self) -> bool {
        self.xleave.enabled
    }

    /// The exchange the last valid response measured when that response was interleaved
    /// (`ntpdata` "Interleaved : Yes"); `None` after a basic one.
    pub fn last_interleaved_measurement(&self) -> Option<InterleavedExchange> {
        self.xleave.last_interleaved
    }

    /// A valid reply that is not measured (a kiss, a zero timestamp) describes no
    /// interleaved exchange.
    pub(super) fn forget_interleaved_measurement(&mut self) {
        self.xleave.last_interleaved = None;
    }

    /// The request `header` as interleaved mode sends it, with what it must remember.
    pub(super) fn interleaved_request(&mut self, header: Header) -> (Header, Sent) {
        if !self.xleave.enabled {
            return (header, Sent::default());
        }
        self.xleave.missed = self.xleave.missed.saturating_add(1);
        let Some(last) = self
            .xleave
            .last
            .filter(|_| self.xleave.missed <= MAX_MISSED)
        else {
            return (header, Sent::default());
        };
        let cookie = loop {
            let c = NtpTimestamp(self.rng.random::<u64>() | 1);
            if c != header.transmit_timestamp {
                break c;
            }
        };
        let header = Header {
            origin_timestamp: last.remote_rx,
            receive_timestamp: cookie,
            ..header
        };
        (
            header,
            Sent {
                cookie,
                previous: Some(last),
            },
        )
    }

    /// A response `h` to `pending` (tests 1–3 passed, not a kiss) received at `rx`: saves its
    /// exchange for the next request and returns the timestamps to measure.
    pub(super) fn interleaved_exchange(
        &mut self,
        pending: &Pending,
        h: &Header,
        rx: f64,
    ) -> Measured {
        let interleaved = pending.xleave.answered_by(h.origin_timestamp);
        let measured = match pending.xleave.previous.filter(|_| interleaved) {
            Some(prev) => Measured {
                local_tx: prev.local_tx,
                remote_rx: prev.remote_rx,
                remote_tx: h.transmit_timestamp,
                local_rx: prev.local_rx,
                remote_latest: h.receive_timestamp,
                interleaved: true,
                repeated: prev.measured,
            },
            None => Measured {
                local_tx: pending.local_tx,
                remote_rx: h.receive_timestamp,
                remote_tx: h.transmit_timestamp,
                local_rx: rx,
                remote_latest: h.transmit_timestamp,
                interleaved: false,
                repeated: false,
            },
        };
        self.xleave.last_interleaved = match pending.xleave.previous {
            Some(prev) if interleaved => Some(InterleavedExchange {
                sent: prev.local_tx,
                remote_rx: prev.remote_rx,
                remote_tx: h.transmit_timestamp,
                received: prev.local_rx,
                kernel_tx: prev.kernel_tx,
            }),
            _ => None,
        };
        if self.xleave.enabled {
            self.xleave.last = Some(Exchange {
                remote_rx: h.receive_timestamp,
                local_tx: pending.local_tx,
                kernel_tx: pending.kernel_tx,
                local_rx: rx,
                // A presend's response is never measured in basic mode.
                measured: !interleaved && !pending.presend,
            });
            self.xleave.missed = 0;
        }
        measured
    }

    /// A leap second both clocks observed moved our timeline by a second (the server's
    /// timestamps of the saved exchange are on the other side of it), or the source went
    /// offline (the exchange would be measured long after): that exchange is not measured
    /// (the outstanding request's interleaved answer fails test A) and the next request is
    /// basic.
    pub(super) fn forget_interleaved(&mut self) {
        self.xleave.last = None;
        if let Some(x) = self
            .pending
            .as_mut()
            .and_then(|p| p.xleave.previous.as_mut())
        {
            x.measured = true;
        }
    }

    /// Moves the saved local times by `delta` seconds (a clock change), with the outstanding
    /// request's: T1 and T4 stay on the timeline of new receive times.
    pub(super) fn shift_interleaved(&mut self, delta: f64) {
        if let Some(x) = &mut self.xleave.last {
            x.shift(delta);
        }
        if let Some(x) = self
            .pending
            .as_mut()
            .and_then(|p| p.xleave.previous.as_mut())
        {
            x.shift(delta);
        }
    }
}

#[cfg(test)]
#[path = "interleaved_tests.rs"]
mod tests;
