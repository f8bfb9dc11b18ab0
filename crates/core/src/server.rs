//! The NTP responder, sans-IO: one request datagram in, at most one response datagram out.
//!
//! It answers client mode 3 with server mode 4 and symmetric active mode 1 with symmetric
//! passive mode 2 (RFC 5905 §9, §8; chronyd answers an unknown peer in passive mode when the
//! address is allowed; the daemon hands packets from configured peers to their association
//! first). Everything else — modes 0 (except NTPv1), 2, 4, 5, 6 and 7, so also ntpd's
//! `monlist` probe and mode-6 queries — gets zero bytes. The checks and their order were
//! measured black-box against chronyd 4.3 on loopback:
//!
//! 1. [`Packet::decode`]: at least 48 octets, a multiple of 4, at most 1140, version 1..=4,
//!    a valid extension-field/MAC trailer (RFC 7822 rules as chrony applies them); anything
//!    else is malformed and dropped;
//! 2. mode: 3, 1, or 0 with version 1 from a source port other than 123 (answered as mode 3);
//! 3. access (`allow`/`deny`): a denied client gets nothing and is not counted as received;
//! 4. the request counts as received ("NTP packets received"), is logged in the client log
//!    and rate limited ("NTP packets dropped"; a leak answers it, `kod` may answer KoD RATE);
//! 5. authentication (see [`crate::auth`]): a MAC whose key ID is in the key store
//!    ([`Server::set_keys`]) and whose digest verifies (exact length for the version, constant
//!    time) makes the response carry a MAC by the same key and of the same length, so the
//!    response is as long as a request without extension fields. Measured against chronyd 4.3:
//!    an unknown key ID, a wrong digest, a digest of the wrong length, a crypto-NAK and an
//!    MS-SNTP signing request all get nothing (no crypto-NAK either), counted in `auth_failed`.
//!    NTS extension fields are handled by [`crate::nts::ntp`] when NTS is served
//!    ([`Server::set_nts_keys`]), dropped otherwise (`NtsNotServed`); an undecryptable cookie
//!    or a failed authenticator is answered with an NTS NAK (KoD NTSN + the Unique Identifier,
//!    returned as [`Reply::Kod`], counted in `auth_failed`);
//! 6. the response: LI/stratum/refid/reference time/root delay/root dispersion/precision from
//!    [`ReferenceInfo`], the request's version, poll = max(request poll, -19) (chronyd echoes
//!    the poll but raises values below -19 to -19, and echoes even 127), origin = the
//!    request's transmit timestamp copied bit for bit, receive = the kernel receive stamp.
//!    Unknown extension fields are ignored and the response carries none: a plain response
//!    is 48 octets, a MAC'd one 48 + the request's trailer, an NTS one exactly the request's
//!    length, so a response is never longer than its request.
//!
//! The transmit timestamp is taken as late as possible by the daemon: it calls
//! [`Server::finalize`] (or, for unauthenticated servers, [`finalize_transmit`]) right before
//! `sendmsg`; until then the field holds the receive time. `finalize` rewrites the MAC of a
//! symmetric-key response after patching the timestamp; an NTS response is sealed in
//! `handle_request` with transmit = receive time and left untouched (its authenticator
//! encrypts new cookies, which cannot be redone per send). [`finalize_transmit`] patches only
//! plain 48-octet responses, so it never breaks an authenticated one.
//! A KoD RATE ([`Reply::Kod`]) is sent as built, without a transmit timestamp.
//!
//! Interleaved mode (chrony's `xleave` on the client's side; `server/interleaved.rs`): [`Server::serve`]
//! recognises a client's interleaved request and answers it with the transmit time of the
//! previous response to that client; such a response is sent as built
//! ([`Served::stamp`] false). [`Server::handle_request`] answers every request in basic mode.
//!
//! No logging, O(1) client-log work per packet; no allocation except the NTS AEAD buffers
//! (bounded by the packet size); counters in [`ServerStats`].

use std::net::{IpAddr, SocketAddr};

use gnomon_wire::{
    encode_mac, DecodeError, Header, LeapIndicator, Mode, NtpShort, NtpTimestamp, Packet,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use zeroize::Zeroizing;

use crate::access::AccessTable;
use crate::auth::{KeyStore, MAX_DIGEST_LEN};
use crate::client_log::{ClientLog, Service, DEFAULT_LIMIT_BYTES};
use crate::nts::ntp::{self, NtsVerdict, KISS_NTSN};
use crate::nts::ServerKeys;
use crate::rate_limit::{Limiter, RateLimit, RateLimitError, RateVerdict};

/// Offset of the transmit timestamp in a response.
pub const TRANSMIT_OFFSET: usize = 40;

/// Reference ID chronyd serves in local reference mode: 127.127.1.1 ("LOCL" in ntpd terms).
pub const LOCAL_REFERENCE_ID: u32 = 0x7F7F_0101;

/// Kiss code of a rate-limit KoD.
pub const KISS_RATE: u32 = u32::from_be_bytes(*b"RATE");

/// Lowest poll value echoed; chronyd 4.3 raises lower request values to this.
pub const MIN_ECHOED_POLL: i8 = -19;

/// Writes the transmit timestamp into an unauthenticated response built by
/// [`Server::handle_request`] (`response` is exactly the response). Does nothing unless
/// `response` is exactly a header: authenticated responses need [`Server::finalize`].
pub fn finalize_transmit(response: &mut [u8], tx: NtpTimestamp) {
    if response.len() != Header::LEN {
        return;
    }
    if let Some(field) = response.get_mut(TRANSMIT_OFFSET..TRANSMIT_OFFSET + 8) {
        field.copy_from_slice(&tx.0.to_be_bytes());
    }
}

/// The receive timestamp of a response built by [`Server::serve`] (its receive field), which
/// identifies it for [`Server::note_transmit`]; `None` if `response` is shorter than that.
pub fn response_receive_timestamp(response: &[u8]) -> Option<NtpTimestamp> {
    let field = response.get(32..40)?.first_chunk::<8>()?;
    Some(NtpTimestamp(u64::from_be_bytes(*field)))
}

/// The server side of the `allow`/`deny`, `ratelimit`, `clientloglimit` and `noclientlog`
/// directives, as the daemon maps them from configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// NTP (and NTS-KE) access rules; empty denies everyone.
    pub access: AccessTable,
    /// `ratelimit`, if present.
    pub rate_limit: Option<RateLimit>,
    /// `ntsratelimit`, if present (applied by whoever logs NTS-KE accesses).
    pub nts_ke_rate_limit: Option<RateLimit>,
    /// `cmdratelimit`, if present (applied by the command server).
    pub command_rate_limit: Option<RateLimit>,
    /// `clientloglimit` in bytes.
    pub client_log_limit: u64,
    /// `noclientlog`: no client log, hence no rate limiting.
    pub no_client_log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            access: AccessTable::new(),
            rate_limit: None,
            nts_ke_rate_limit: None,
            command_rate_limit: None,
            client_log_limit: DEFAULT_LIMIT_BYTES,
            no_client_log: false,
        }
    }
}

/// What the server says about its own clock, filled by the daemon for each request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceInfo {
    /// Leap indicator to serve (forced to 3 when not synchronised).
    pub leap: LeapIndicator,
    /// Stratum to serve.
    pub stratum: u8,
    /// Reference ID to serve.
    pub reference_id: u32,
    /// Reference timestamp to serve.
    pub reference_time: NtpTimestamp,
    /// Root delay, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds (already grown to the current time by the caller).
    pub root_dispersion: f64,
    /// Precision of the clock, log2 seconds.
    pub precision: i8,
    /// Whether the clock is synchronised (to a source or to the local reference).
    pub synchronised: bool,
}

impl ReferenceInfo {
    /// What chronyd 4.3 serves before it is synchronised and without `local`: LI 3,
    /// stratum 0, reference ID 0, reference time 0, root delay 1 s, root dispersion 1 s.
    pub fn unsynchronised(precision: i8) -> ReferenceInfo {
        ReferenceInfo {
            leap: LeapIndicator::Unsynchronised,
            stratum: 0,
            reference_id: 0,
            reference_time: NtpTimestamp::ZERO,
            root_delay: 1.0,
            root_dispersion: 1.0,
            precision,
            synchronised: false,
        }
    }

    /// What chronyd 4.3 serves with `local stratum N` active: LI 0, stratum N, reference ID
    /// 127.127.1.1, root delay 0, root dispersion 0 (below 2^-16 s for minutes). The
    /// reference time is when the local reference was last refreshed: chronyd sets it on
    /// activation and refreshes it about every 63 s (measured: 62.6 s, 63.2 s), not per
    /// request. The `distance` and `orphan` options decide when the local reference is
    /// active, not what is served, so they are not parameters here.
    pub fn local(stratum: u8, reference_time: NtpTimestamp, precision: i8) -> ReferenceInfo {
        ReferenceInfo {
            leap: LeapIndicator::NoWarning,
            stratum,
            reference_id: LOCAL_REFERENCE_ID,
            reference_time,
            root_delay: 0.0,
            root_dispersion: 0.0,
            precision,
            synchronised: true,
        }
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than the 48-octet header.
    TooShort,
    /// Not a multiple of 4 octets, or longer than 1140.
    BadLength,
    /// Version 0 or 5..=7.
    BadVersion,
    /// Extension fields or MAC that do not parse.
    BadTrailer,
    /// A mode the server never answers (0, 2, 4, 5, 6, 7; NTPv1 mode 0 from port 123).
    BadMode,
    /// The client is not allowed.
    AccessDenied,
    /// Rate limited and not leaked.
    RateLimited,
    /// A MAC, crypto-NAK or NTS request that does not verify (unknown key, wrong digest,
    /// malformed NTS fields).
    Unauthenticated,
    /// Carries NTS extension fields: NTS is not served.
    NtsNotServed,
    /// The response buffer is shorter than a header.
    ResponseBuffer,
}

/// What to send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Nothing.
    Drop(DropReason),
    /// `response[..len]`, after [`finalize_transmit`].
    Send {
        /// Length of the response.
        len: usize,
    },
    /// `response[..len]` as built: a KoD RATE, no transmit timestamp.
    Kod {
        /// Length of the response.
        len: usize,
    },
}

/// A response decided by [`Server::serve`], with what the daemon does around the send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// What to send.
    pub reply: Reply,
    /// Patch the transmit timestamp ([`Server::finalize`]) before sending: true for basic
    /// responses, false for KoDs and interleaved responses (sent as built).
    pub stamp: bool,
    /// The client uses the interleaved mode: report this response's transmit time with
    /// [`Server::note_transmit`] (the daemon's reading at the send, then the kernel's stamp).
    pub capture: bool,
}

/// Counters, aligned with `chronyc serverstats` where a line exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Valid requests from allowed clients ("NTP packets received").
    pub ntp_received: u64,
    /// Requests dropped or KoD-answered by rate limiting ("NTP packets dropped").
    pub ntp_rate_limited: u64,
    /// Responses built (normal replies, KoD excluded).
    pub ntp_served: u64,
    /// KoD RATE responses built.
    pub ntp_kod_sent: u64,
    /// Too short, bad length or unparsable trailer.
    pub malformed: u64,
    /// Version 0 or 5..=7.
    pub bad_version: u64,
    /// Modes never answered (monlist, mode 6 …).
    pub bad_mode: u64,
    /// Denied by `allow`/`deny`.
    pub access_denied: u64,
    /// Carrying a MAC, crypto-NAK or NTS fields that do not verify (NTS NAKs included).
    pub auth_failed: u64,
    /// Response buffer too small (a daemon bug, never the client's doing).
    pub response_buffer: u64,
    /// Requests answered with a MAC or NTS ("Authenticated NTP packets").
    pub ntp_authenticated: u64,
    /// Interleaved requests recognised ("Interleaved NTP packets"), whether answered in
    /// interleaved mode or, for a client's first one, in basic mode.
    pub ntp_interleaved: u64,
    /// Transmit times of responses taken from the kernel's stamp ([`Server::note_transmit`]).
    pub ntp_kernel_tx: u64,
    /// Clients whose last response's timestamps are held for the interleaved mode
    /// ("NTP timestamps held").
    pub ntp_timestamps_held: u64,
    /// "Client log records dropped".
    pub client_log_records_dropped: u64,
}

impl ServerStats {
    /// Every request dropped for any reason, rate limiting included.
    pub fn dropped_total(&self) -> u64 {
        self.malformed
            + self.bad_version
            + self.bad_mode
            + self.access_denied
            + self.auth_failed
            + self.response_buffer
            + self.ntp_rate_limited
    }
}

/// The responder: access table, client log with rate limits, seeded RNG and counters.
#[derive(Debug)]
pub struct Server {
    access: AccessTable,
    log: ClientLog,
    rng: StdRng,
    stats: ServerStats,
    keys: KeyStore,
    nts: Option<ServerKeys>,
}

fn limiter(limit: Option<RateLimit>) -> Result<Option<Limiter>, RateLimitError> {
    limit.map(Limiter::new).transpose()
}

impl Server {
    /// Builds a server. Fails only on rate-limit options outside their documented ranges.
    pub fn new(config: ServerConfig, rng_seed: u64) -> Result<Server, RateLimitError> {
        let limiters = [
            limiter(config.rate_limit)?,
            limiter(config.nts_ke_rate_limit)?,
            limiter(config.command_rate_limit)?,
        ];
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let log_seed = rand::RngCore::next_u64(&mut rng);
        let log = if config.no_client_log {
            ClientLog::disabled()
        } else {
            ClientLog::new(config.client_log_limit, limiters, log_seed)
        };
        Ok(Server {
            access: config.access,
            log,
            rng,
            stats: ServerStats::default(),
            keys: KeyStore::new(),
            nts: None,
        })
    }

    /// The NTP access table (for `accheck`).
    pub fn access(&self) -> &AccessTable {
        &self.access
    }

    /// The NTP access table, for run-time `allow`/`deny`.
    pub fn access_mut(&mut self) -> &mut AccessTable {
        &mut self.access
    }

    /// The client log (for `clients`).
    pub fn client_log(&self) -> &ClientLog {
        &self.log
    }

    /// The client log, for logging command and NTS-KE accesses and `clients -r`.
    pub fn client_log_mut(&mut self) -> &mut ClientLog {
        &mut self.log
    }

    /// Rate-limits one command or NTS-KE access from `addr` (logged in the same client log),
    /// returning whether to serve it. Always true with `noclientlog`.
    pub fn check_service(&mut self, addr: SocketAddr, service: Service, now_mono: f64) -> bool {
        match self.log.log_access(addr.ip(), service, now_mono) {
            Some(i) => self.log.limit(i, service, &mut self.rng).responds(),
            None => true,
        }
    }

    /// The counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            client_log_records_dropped: self.log.records_dropped(),
            ntp_timestamps_held: self.log.ntp_timestamps_held() as u64,
            ..self.stats
        }
    }

    fn drop(&mut self, reason: DropReason) -> Reply {
        let counter = match reason {
            DropReason::TooShort | DropReason::BadLength | DropReason::BadTrailer => {
                &mut self.stats.malformed
            }
            DropReason::BadVersion => &mut self.stats.bad_version,
            DropReason::BadMode => &mut self.stats.bad_mode,
            DropReason::AccessDenied => &mut self.stats.access_denied,
            DropReason::RateLimited => &mut self.stats.ntp_rate_limited,
            DropReason::Unauthenticated | DropReason::NtsNotServed => &mut self.stats.auth_failed,
            DropReason::ResponseBuffer => &mut self.stats.response_buffer,
        };
        *counter += 1;
        Reply::Drop(reason)
    }

    /// Handles one request datagram received from `from` at `rx` (kernel receive timestamp),
    /// `now_mono` seconds on the monotonic clock, in basic mode only. On [`Reply::Send`] the
    /// response is in `response[..len]`; call [`finalize_transmit`] just before sending it.
    pub fn handle_request(
        &mut self,
        request: &[u8],
        from: SocketAddr,
        rx: NtpTimestamp,
        now_mono: f64,
        reference: &ReferenceInfo,
        response: &mut [u8],
    ) -> Reply {
        self.respond(request, from, rx, now_mono, reference, response, false)
            .reply
    }

    /// As [`Server::handle_request`], also serving the interleaved mode: a client's
    /// interleaved request is answered with the transmit time of the previous response to it
    /// (`server/interleaved.rs`). Basic requests get exactly the response `handle_request` gives.
    pub fn serve(
        &mut self,
        request: &[u8],
        from: SocketAddr,
        rx: NtpTimestamp,
        now_mono: f64,
        reference: &ReferenceInfo,
        response: &mut [u8],
    ) -> Served {
        self.respond(request, from, rx, now_mono, reference, response, true)
    }

    /// Reports when a response that [`Server::serve`] built with `capture` left: `to` is its
    /// destination, `rx` its receive timestamp ([`response_receive_timestamp`]), `tx` the
    /// daemon's reading taken for the send (`kernel` false) or the kernel's transmit stamp
    /// (`kernel` true). Saved as the transmit time the client's next interleaved request gets,
    /// if that response is still the client's last one; a daemon reading never replaces a
    /// kernel stamp. Returns whether it was saved.
    pub fn note_transmit(
        &mut self,
        to: IpAddr,
        rx: NtpTimestamp,
        tx: NtpTimestamp,
        kernel: bool,
    ) -> bool {
        let Some(index) = self.log.find(to) else {
            return false;
        };
        let saved = self.log.note_ntp_tx(index, rx.0, tx.0, kernel);
        if saved && kernel {
            self.stats.ntp_kernel_tx += 1;
        }
        saved
    }

    /// Clients whose last response's timestamps are held for the interleaved mode (chronyd's
    /// "NTP timestamps held"); a counter the client log keeps.
    pub fn ntp_timestamps_held(&self) -> usize {
        self.log.ntp_timestamps_held()
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        request: &[u8],
        from: SocketAddr,
        rx: NtpTimestamp,
        now_mono: f64,
        reference: &ReferenceInfo,
        response: &mut [u8],
        interleaving: bool,
    ) -> Served {
        let mut plan = None;
        let reply = self.build(
            request,
            from,
            rx,
            now_mono,
            reference,
            response,
            interleaving.then_some(&mut plan),
        );
        match (reply, plan) {
            (Reply::Send { .. }, Some((index, plan))) => {
                // This response is now the client's last one.
                self.log.save_ntp_rx(index, rx.0);
                Served {
                    reply,
                    stamp: plan.previous_tx.is_none(),
                    capture: plan.capture,
                }
            }
            (Reply::Send { .. }, None) => Served {
                reply,
                stamp: true,
                capture: false,
            },
            _ => Served {
                reply,
                stamp: false,
                capture: false,
            },
        }
    }

    /// Builds the response (module documentation); with `plan`, also decides about the
    /// interleaved mode for a client request and leaves the client's slot and plan there.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        request: &[u8],
        from: SocketAddr,
        rx: NtpTimestamp,
        now_mono: f64,
        reference: &ReferenceInfo,
        response: &mut [u8],
        plan: Option<&mut Option<(usize, interleaved::Plan)>>,
    ) -> Reply {
        let packet = match Packet::decode(request) {
            Ok(p) => p,
            Err(e) => {
                return self.drop(match e {
                    DecodeError::ShortHeader { .. } => DropReason::TooShort,
                    DecodeError::UnalignedLength { .. } | DecodeError::PacketTooLong { .. } => {
                        DropReason::BadLength
                    }
                    DecodeError::UnsupportedVersion { .. } => DropReason::BadVersion,
                    _ => DropReason::BadTrailer,
                })
            }
        };
        let request_header = packet.header;
        let reply_mode = match request_header.mode {
            Mode::Client => Mode::Server,
            Mode::SymmetricActive => Mode::SymmetricPassive,
            // NTPv1 had no client mode: chronyd answers mode 0 from a non-NTP port as a client.
            Mode::Reserved if request_header.version == 1 && from.port() != 123 => Mode::Server,
            _ => return self.drop(DropReason::BadMode),
        };
        if !self.access.allowed(from.ip()) {
            return self.drop(DropReason::AccessDenied);
        }
        self.stats.ntp_received += 1;

        let mut verdict = RateVerdict::Respond;
        let log_index = self.log.log_access(from.ip(), Service::Ntp, now_mono);
        if let Some(index) = log_index {
            verdict = self.log.limit(index, Service::Ntp, &mut self.rng);
        }
        if verdict == RateVerdict::Drop {
            return self.drop(DropReason::RateLimited);
        }
        let auth = match self.authenticate(&packet, request, reply_mode) {
            Ok(auth) => auth,
            Err(reason) => return self.drop(reason),
        };
        let Some(out) = response.first_chunk_mut::<{ Header::LEN }>() else {
            return self.drop(DropReason::ResponseBuffer);
        };

        let kod = verdict == RateVerdict::Kod;
        let mut header = if kod {
            Header {
                leap: LeapIndicator::Unsynchronised,
                version: request_header.version,
                mode: reply_mode,
                stratum: 0,
                poll: request_header.poll.max(MIN_ECHOED_POLL),
                precision: reference.precision,
                root_delay: NtpShort(0),
                root_dispersion: NtpShort(0),
                reference_id: KISS_RATE,
                reference_timestamp: NtpTimestamp::ZERO,
                origin_timestamp: request_header.transmit_timestamp,
                receive_timestamp: NtpTimestamp::ZERO,
                transmit_timestamp: NtpTimestamp::ZERO,
            }
        } else {
            Header {
                leap: if reference.synchronised {
                    reference.leap
                } else {
                    LeapIndicator::Unsynchronised
                },
                version: request_header.version,
                mode: reply_mode,
                stratum: reference.stratum,
                poll: request_header.poll.max(MIN_ECHOED_POLL),
                precision: reference.precision,
                root_delay: NtpShort::from_seconds(reference.root_delay),
                root_dispersion: NtpShort::from_seconds(reference.root_dispersion),
                reference_id: reference.reference_id,
                reference_timestamp: reference.reference_time,
                origin_timestamp: request_header.transmit_timestamp,
                receive_timestamp: rx,
                transmit_timestamp: rx,
            }
        };
        if let (false, Auth::NtsNak(uid)) = (kod, &auth) {
            let nak = Header {
                leap: LeapIndicator::Unsynchronised,
                stratum: 0,
                reference_id: KISS_NTSN,
                receive_timestamp: NtpTimestamp::ZERO,
                transmit_timestamp: NtpTimestamp::ZERO,
                root_delay: NtpShort(0),
                root_dispersion: NtpShort(0),
                reference_timestamp: NtpTimestamp::ZERO,
                ..header
            };
            nak.encode(out);
            self.stats.auth_failed += 1;
            return match ntp::write_nak(request, uid.clone(), response) {
                Some(len) => Reply::Kod { len },
                None => self.drop(DropReason::ResponseBuffer),
            };
        }
        // NTS replies are sealed before they are sent, so their transmit timestamp is the
        // receive timestamp and no later kernel time can go into the next one: an NTS client
        // echoing that transmit time as its origin (RFC 5905's basic client) would look
        // interleaved. NTS requests are answered in basic mode.
        let nts = matches!(auth, Auth::Nts(_));
        if let (Some(plan), Some(index), false, false, Mode::Server) =
            (plan, log_index, kod, nts, reply_mode)
        {
            let p = interleaved::plan(&mut self.log, index, &request_header);
            if p.detected {
                self.stats.ntp_interleaved += 1;
            }
            if let Some(tx) = p.previous_tx {
                header = interleaved::interleaved_header(header, &request_header, tx);
            }
            *plan = Some((index, p));
        }
        header.encode(out);
        // Header::LEN ≤ request.len() because the request decoded.
        if kod {
            self.stats.ntp_kod_sent += 1;
            self.stats.ntp_rate_limited += 1;
            return Reply::Kod { len: Header::LEN };
        }
        let len = match auth {
            Auth::None | Auth::NtsNak(_) => Header::LEN,
            Auth::Key { id, len } => {
                match self.append_mac(response, id, len, request_header.version) {
                    Some(total) => total,
                    None => return self.drop(DropReason::ResponseBuffer),
                }
            }
            Auth::Nts(req) => {
                let Some(keys) = self.nts.as_ref() else {
                    return self.drop(DropReason::NtsNotServed);
                };
                match ntp::seal_response(keys, &req, request, response, &mut self.rng) {
                    Some(total) => total,
                    None => return self.drop(DropReason::ResponseBuffer),
                }
            }
        };
        if len > Header::LEN {
            self.stats.ntp_authenticated += 1;
        }
        self.stats.ntp_served += 1;
        Reply::Send { len }
    }

    /// Decides how a request is authenticated (module documentation, step 5).
    fn authenticate(
        &self,
        packet: &Packet<'_>,
        request: &[u8],
        reply_mode: Mode,
    ) -> Result<Auth, DropReason> {
        let nts = ntp::has_nts_fields(&packet.extensions);
        if let Some(mac) = packet.mac {
            if nts {
                return Err(DropReason::Unauthenticated);
            }
            let key = self
                .keys
                .get(mac.key_id)
                .ok_or(DropReason::Unauthenticated)?;
            let version = packet.header.version;
            if !key.verify(packet.authenticated_part(request), version, mac.digest) {
                return Err(DropReason::Unauthenticated);
            }
            return Ok(Auth::Key {
                id: mac.key_id,
                len: mac.digest.len(),
            });
        }
        if !nts {
            return Ok(Auth::None);
        }
        let Some(keys) = self.nts.as_ref() else {
            return Err(DropReason::NtsNotServed);
        };
        if packet.header.version != 4 || reply_mode != Mode::Server {
            return Err(DropReason::Unauthenticated);
        }
        match ntp::check_request(keys, request, &packet.extensions) {
            NtsVerdict::Serve(req) => Ok(Auth::Nts(req)),
            NtsVerdict::Nak { uid } => Ok(Auth::NtsNak(uid)),
            NtsVerdict::Drop(_) => Err(DropReason::Unauthenticated),
        }
    }

    /// Appends a MAC by key `id` of `len` octets over the header in `response[..48]`.
    fn append_mac(&self, response: &mut [u8], id: u32, len: usize, version: u8) -> Option<usize> {
        let key = self.keys.get(id)?;
        let mut digest = Zeroizing::new([0u8; MAX_DIGEST_LEN]);
        let n = key.sign(response.get(..Header::LEN)?, version, &mut digest);
        if n != len {
            return None;
        }
        let trailer = encode_mac(response.get_mut(Header::LEN..)?, id, digest.get(..n)?).ok()?;
        Some(Header::LEN + trailer)
    }

    /// Writes the transmit timestamp into `response` (exactly the response built by
    /// [`Server::handle_request`]) right before it is sent: a plain response is patched, a
    /// symmetric-key response is patched and its MAC recomputed, an NTS response (sealed with
    /// transmit = receive time) is left as it is.
    pub fn finalize(&self, response: &mut [u8], tx: NtpTimestamp) {
        if response.len() == Header::LEN {
            finalize_transmit(response, tx);
            return;
        }
        let Ok(packet) = Packet::decode(response) else {
            return;
        };
        let (Some(mac), true) = (packet.mac, packet.extensions.is_empty()) else {
            return;
        };
        let (id, len, version) = (mac.key_id, mac.digest.len(), packet.header.version);
        if let Some(field) = response.get_mut(TRANSMIT_OFFSET..TRANSMIT_OFFSET + 8) {
            field.copy_from_slice(&tx.0.to_be_bytes());
        }
        // The key was there when the response was built; if it went away since, the response
        // keeps its old MAC and the client rejects it, as it would an unauthenticated one.
        let _ = self.append_mac(response, id, len, version);
    }

    /// Replaces the symmetric keys (at start and on `rekey`).
    pub fn set_keys(&mut self, keys: KeyStore) {
        self.keys = keys;
    }

    /// The symmetric keys.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Serves NTS with these cookie keys (`None`: NTS fields are dropped). The daemon hands a
    /// copy again after each rotation or after loading a dump.
    pub fn set_nts_keys(&mut self, keys: Option<ServerKeys>) {
        self.nts = keys;
    }

    /// The NTS cookie keys, if NTS is served.
    pub fn nts_keys(&self) -> Option<&ServerKeys> {
        self.nts.as_ref()
    }
}

/// How a request is authenticated.
#[derive(Debug)]
enum Auth {
    /// Not at all.
    None,
    /// A MAC by this key, of this digest length.
    Key { id: u32, len: usize },
    /// NTS, cookie and authenticator valid.
    Nts(ntp::NtsRequest),
    /// NTS, answered with a NAK carrying the Unique Identifier field at this range.
    NtsNak(std::ops::Range<usize>),
}

mod interleaved;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;
