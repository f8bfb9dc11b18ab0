//! The NTS-KE server (RFC 8915 §4), sans-IO: TLS bytes from the TCP connection go in, TLS
//! bytes to send come out, and the caller owns the socket, the clock and the concurrency
//! bound.
//!
//! TLS is rustls 0.23 with the `ring` provider, TLS 1.3 only (RFC 8915 §3), ALPN `ntske/1`
//! required: a client offering another protocol fails in the handshake (rustls sends
//! `no_application_protocol`), one offering none is refused after it. The request is read
//! into a buffer of at most 16384 octets (chronyd's bound); a longer request or a peer that
//! has not finished by the deadline fails the session. The response carries Next Protocol
//! (NTPv4), AEAD (AEAD_AES_SIV_CMAC_256, the only one served), the configured NTPv4 server and
//! port, and eight cookies sealing the keys exported as RFC 8915 §5.1 says (label
//! `EXPORTER-network-time-security`, context = protocol ID ‖ AEAD ID ‖ 0 for C2S or 1 for S2C).
//! Errors are answered with an Error record (§4.1.3): Unrecognized Critical Record (0) for an
//! unknown critical record, Bad Request (1) for everything else malformed.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use gnomon_wire::nts_ke::{
    encode_end_of_message, encode_record, encode_u16_record, NtsKeMessage, AEAD_AES_SIV_CMAC_256,
    ERROR_BAD_REQUEST, ERROR_INTERNAL_SERVER_ERROR, ERROR_UNRECOGNIZED_CRITICAL_RECORD,
    MAX_MESSAGE_LEN, NEXT_PROTOCOL_NTPV4, RECORD_AEAD_ALGORITHM, RECORD_END_OF_MESSAGE,
    RECORD_ERROR, RECORD_NEW_COOKIE, RECORD_NEXT_PROTOCOL, RECORD_NTPV4_PORT, RECORD_NTPV4_SERVER,
    RECORD_WARNING,
};
use gnomon_wire::DecodeError;
use rand::RngCore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

use super::cookie::{ServerKeys, SessionKeys, AEAD_KEY_LEN};

/// ALPN protocol of NTS-KE.
pub const ALPN_NTSKE: &[u8] = b"ntske/1";
/// TLS exporter label (RFC 8915 §5.1).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-network-time-security";
/// Cookies sent per key exchange.
pub const KE_COOKIES: usize = 8;
/// Default `maxntsconnections`: concurrent NTS-KE connections per process (chrony.conf(5));
/// the daemon refuses (closes) connections past it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;
/// Default per-handshake timeout, seconds (chronyd's NTS-KE server timeout is 2 s).
pub const DEFAULT_TIMEOUT: f64 = 2.0;

/// Why the TLS configuration cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NtsKeSetupError {
    /// No `ntsservercert`/`ntsserverkey` pair.
    NoCertificate,
    /// The certificate file holds no PEM certificate.
    BadCertificate,
    /// The key file holds no PEM private key.
    BadPrivateKey,
    /// rustls refused the pair (mismatched key, unsupported algorithm).
    Tls(String),
}

impl fmt::Display for NtsKeSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NtsKeSetupError::NoCertificate => f.write_str("no server certificate configured"),
            NtsKeSetupError::BadCertificate => f.write_str("could not read server certificate"),
            NtsKeSetupError::BadPrivateKey => f.write_str("could not read server key"),
            NtsKeSetupError::Tls(e) => write!(f, "could not set server credentials: {e}"),
        }
    }
}

impl std::error::Error for NtsKeSetupError {}

/// Settings of the NTS-KE service.
#[derive(Clone)]
pub struct NtsKeServerSetup {
    tls: Arc<rustls::ServerConfig>,
    /// Sent in an NTPv4 Server record (chrony's `ntsntpserver`), if set.
    pub ntp_server: Option<String>,
    /// Sent in an NTPv4 Port record when not 123 (the daemon's `port`).
    pub ntp_port: u16,
    /// Per-connection deadline, seconds.
    pub timeout: f64,
}

impl fmt::Debug for NtsKeServerSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtsKeServerSetup")
            .field("ntp_server", &self.ntp_server)
            .field("ntp_port", &self.ntp_port)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NtsKeServerSetup {
    /// Builds the TLS 1.3 server configuration from PEM certificate chain and key pairs
    /// (`ntsservercert` / `ntsserverkey` contents, in configuration order). A client's SNI
    /// selects the first pair whose certificate is valid for that name; without SNI or a
    /// match, the first pair serves.
    pub fn new(pairs: &[(Vec<u8>, Vec<u8>)], ntp_port: u16) -> Result<Self, NtsKeSetupError> {
        if pairs.is_empty() {
            return Err(NtsKeSetupError::NoCertificate);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut keys = Vec::with_capacity(pairs.len());
        for (cert_pem, key_pem) in pairs {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|_| NtsKeSetupError::BadCertificate)?;
            if chain.is_empty() {
                return Err(NtsKeSetupError::BadCertificate);
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|_| NtsKeSetupError::BadPrivateKey)?;
            let certified = CertifiedKey::from_der(chain, key, &provider)
                .map_err(|e| NtsKeSetupError::Tls(e.to_string()))?;
            keys.push(Arc::new(certified));
        }
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NtsKeSetupError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(CertSelector { keys }));
        config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
        // No session tickets or resumption state: each exchange is one short connection.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(NtsKeServerSetup {
            tls: Arc::new(config),
            ntp_server: None,
            ntp_port,
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

/// Chooses among several certificate/key pairs by SNI.
#[derive(Debug)]
struct CertSelector {
    keys: Vec<Arc<CertifiedKey>>,
}

impl CertSelector {
    fn valid_for(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
        key.cert
            .first()
            .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
            .is_some_and(|ee| ee.verify_is_valid_for_subject_name(name).is_ok())
    }
}

impl ResolvesServerCert for CertSelector {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello
            .server_name()
            .and_then(|sni| ServerName::try_from(sni).ok());
        name.and_then(|n| self.keys.iter().find(|k| Self::valid_for(k, &n)))
            .or_else(|| self.keys.first())
            .cloned()
    }
}

/// Why a session ended without (or after) an answer; the caller closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NtsKeError {
    /// TLS failed (bad handshake, wrong version, unknown ALPN …).
    Tls(String),
    /// The client negotiated no ALPN protocol.
    NoAlpn,
    /// The request exceeds 16384 octets.
    RequestTooLong,
    /// The client closed before End of Message.
    Truncated,
    /// The deadline passed.
    Timeout,
}

impl fmt::Display for NtsKeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NtsKeError::Tls(e) => write!(f, "TLS error: {e}"),
            NtsKeError::NoAlpn => f.write_str("client did not negotiate ntske/1"),
            NtsKeError::RequestTooLong => f.write_str("NTS-KE request too long"),
            NtsKeError::Truncated => f.write_str("NTS-KE request truncated"),
            NtsKeError::Timeout => f.write_str("NTS-KE session timed out"),
        }
    }
}

impl std::error::Error for NtsKeError {}

/// What a parsed request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeRequest {
    /// NTPv4 with AEAD_AES_SIV_CMAC_256: answer with cookies.
    Ntpv4,
    /// NTPv4 not offered: answer with an empty Next Protocol record.
    NoProtocol,
    /// NTPv4 offered but no AEAD we serve: answer with NTPv4 and an empty AEAD record.
    NoAead,
    /// Answer with this error code.
    Error(u16),
}

/// Parses a complete request message (RFC 8915 §4.1): exactly one critical Next Protocol
/// record, at most one AEAD record (required when NTPv4 is chosen), optional NTPv4 server
/// and port records (ignored: the server decides), no Error, Warning or New Cookie records,
/// and an End of Message that is critical with an empty body.
pub fn parse_request(message: &NtsKeMessage<'_>) -> KeRequest {
    let mut next_protocol = None;
    let mut aead = None;
    let mut end_ok = false;
    for r in message.records() {
        match r.record_type {
            RECORD_END_OF_MESSAGE => end_ok = r.critical && r.body.is_empty(),
            RECORD_NEXT_PROTOCOL => {
                let Ok(list) = r.body_u16_list() else {
                    return KeRequest::Error(ERROR_BAD_REQUEST);
                };
                if next_protocol.is_some() || !r.critical {
                    return KeRequest::Error(ERROR_BAD_REQUEST);
                }
                next_protocol = Some(list.clone().any(|p| p == NEXT_PROTOCOL_NTPV4));
            }
            RECORD_AEAD_ALGORITHM => {
                let Ok(list) = r.body_u16_list() else {
                    return KeRequest::Error(ERROR_BAD_REQUEST);
                };
                if aead.is_some() {
                    return KeRequest::Error(ERROR_BAD_REQUEST);
                }
                aead = Some(list.clone().any(|a| a == AEAD_AES_SIV_CMAC_256));
            }
            RECORD_NTPV4_SERVER | RECORD_NTPV4_PORT => {}
            RECORD_ERROR | RECORD_WARNING | RECORD_NEW_COOKIE => {
                return KeRequest::Error(ERROR_BAD_REQUEST)
            }
            _ if r.critical => return KeRequest::Error(ERROR_UNRECOGNIZED_CRITICAL_RECORD),
            _ => {}
        }
    }
    match (end_ok, next_protocol, aead) {
        (false, _, _) | (_, None, _) => KeRequest::Error(ERROR_BAD_REQUEST),
        (true, Some(false), _) => KeRequest::NoProtocol,
        (true, Some(true), None) => KeRequest::Error(ERROR_BAD_REQUEST),
        (true, Some(true), Some(false)) => KeRequest::NoAead,
        (true, Some(true), Some(true)) => KeRequest::Ntpv4,
    }
}

/// Builds the response message for `request`; `keys` are the exported session keys (used only
/// for [`KeRequest::Ntpv4`]). At most [`KE_COOKIES`] cookies; the message stays within
/// 16384 octets.
pub fn build_response(
    request: KeRequest,
    keys: Option<&SessionKeys>,
    server_keys: &ServerKeys,
    setup: &NtsKeServerSetup,
    rng: &mut dyn RngCore,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    let mut n = 0;
    match (request, keys) {
        (KeRequest::Error(_), _) | (KeRequest::Ntpv4, None) => {
            let code = match request {
                KeRequest::Error(c) => c,
                _ => ERROR_INTERNAL_SERVER_ERROR,
            };
            n += encode_u16_record(&mut out[n..], true, RECORD_ERROR, &[code])?;
        }
        (KeRequest::NoProtocol, _) => {
            n += encode_u16_record(&mut out[n..], true, RECORD_NEXT_PROTOCOL, &[])?;
        }
        (KeRequest::NoAead, _) => {
            n += encode_u16_record(
                &mut out[n..],
                true,
                RECORD_NEXT_PROTOCOL,
                &[NEXT_PROTOCOL_NTPV4],
            )?;
            n += encode_u16_record(&mut out[n..], true, RECORD_AEAD_ALGORITHM, &[])?;
        }
        (KeRequest::Ntpv4, Some(keys)) => {
            n += encode_u16_record(
                &mut out[n..],
                true,
                RECORD_NEXT_PROTOCOL,
                &[NEXT_PROTOCOL_NTPV4],
            )?;
            n += encode_u16_record(
                &mut out[n..],
                true,
                RECORD_AEAD_ALGORITHM,
                &[AEAD_AES_SIV_CMAC_256],
            )?;
            if let Some(server) = &setup.ntp_server {
                n += encode_record(&mut out[n..], true, RECORD_NTPV4_SERVER, server.as_bytes())?;
            }
            if setup.ntp_port != 123 {
                n += encode_u16_record(&mut out[n..], true, RECORD_NTPV4_PORT, &[setup.ntp_port])?;
            }
            for _ in 0..KE_COOKIES {
                let cookie = server_keys.seal(keys, rng);
                n += encode_record(&mut out[n..], false, RECORD_NEW_COOKIE, &cookie)?;
            }
        }
    }
    n += encode_end_of_message(&mut out[n..])?;
    out.truncate(n);
    Ok(out)
}

/// Exports the C2S and S2C keys of an NTPv4 / AEAD_AES_SIV_CMAC_256 session (RFC 8915 §5.1).
pub fn export_keys<D>(conn: &rustls::ConnectionCommon<D>) -> Result<SessionKeys, rustls::Error> {
    let mut keys = SessionKeys {
        c2s: [0; AEAD_KEY_LEN],
        s2c: [0; AEAD_KEY_LEN],
    };
    let [p0, p1] = NEXT_PROTOCOL_NTPV4.to_be_bytes();
    let [a0, a1] = AEAD_AES_SIV_CMAC_256.to_be_bytes();
    conn.export_keying_material(
        &mut keys.c2s[..],
        EXPORTER_LABEL,
        Some(&[p0, p1, a0, a1, 0]),
    )?;
    conn.export_keying_material(
        &mut keys.s2c[..],
        EXPORTER_LABEL,
        Some(&[p0, p1, a0, a1, 1]),
    )?;
    Ok(keys)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Handshaking or reading the request.
    Reading,
    /// The response and close_notify are queued; the caller drains them and closes.
    Responded,
}

/// One NTS-KE connection on the server.
pub struct NtsKeSession {
    conn: rustls::ServerConnection,
    deadline: f64,
    request: Zeroizing<Vec<u8>>,
    state: State,
}

impl fmt::Debug for NtsKeSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtsKeSession")
            .field("deadline", &self.deadline)
            .field("state", &self.state)
            .field("request_len", &self.request.len())
            .finish_non_exhaustive()
    }
}

impl NtsKeSession {
    /// A session for a connection accepted at `now_mono`; it fails at
    /// `now_mono + setup.timeout`.
    pub fn new(setup: &NtsKeServerSetup, now_mono: f64) -> Result<NtsKeSession, NtsKeError> {
        let conn = rustls::ServerConnection::new(Arc::clone(&setup.tls))
            .map_err(|e| NtsKeError::Tls(e.to_string()))?;
        Ok(NtsKeSession {
            conn,
            deadline: now_mono + setup.timeout,
            request: Zeroizing::new(Vec::new()),
            state: State::Reading,
        })
    }

    /// Monotonic time after which the caller must drop the connection.
    pub fn deadline(&self) -> f64 {
        self.deadline
    }

    /// Fails with [`NtsKeError::Timeout`] once the deadline has passed.
    pub fn check_deadline(&self, now_mono: f64) -> Result<(), NtsKeError> {
        if now_mono > self.deadline {
            Err(NtsKeError::Timeout)
        } else {
            Ok(())
        }
    }

    /// True once the response is queued: after [`NtsKeSession::write_tls`] has drained
    /// everything, close the connection.
    pub fn is_done(&self) -> bool {
        self.state == State::Responded
    }

    /// True while TLS output is pending.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Moves pending TLS output into `out` (appended); returns the octets added.
    pub fn write_tls(&mut self, out: &mut Vec<u8>) -> usize {
        write_pending_tls(&mut self.conn, out)
    }

    /// Feeds octets read from the connection (`data` empty = the peer closed). On success
    /// the caller sends [`NtsKeSession::write_tls`] output; on error it sends that output too
    /// (a TLS alert, if any) and closes.
    pub fn read_tls(
        &mut self,
        mut data: &[u8],
        now_mono: f64,
        server_keys: &ServerKeys,
        setup: &NtsKeServerSetup,
        rng: &mut dyn RngCore,
    ) -> Result<(), NtsKeError> {
        self.check_deadline(now_mono)?;
        if data.is_empty() && self.state == State::Reading {
            return Err(NtsKeError::Truncated);
        }
        while !data.is_empty() {
            let read = self
                .conn
                .read_tls(&mut data)
                .map_err(|e| NtsKeError::Tls(e.to_string()))?;
            self.conn
                .process_new_packets()
                .map_err(|e| NtsKeError::Tls(e.to_string()))?;
            self.drain_plaintext()?;
            if read == 0 {
                break;
            }
        }
        if self.state != State::Reading || self.conn.is_handshaking() {
            return Ok(());
        }
        if self.conn.alpn_protocol() != Some(ALPN_NTSKE) {
            return Err(NtsKeError::NoAlpn);
        }
        let response = match NtsKeMessage::decode(&self.request) {
            Ok(message) => {
                let request = parse_request(&message);
                let keys = match request {
                    KeRequest::Ntpv4 => {
                        Some(export_keys(&self.conn).map_err(|e| NtsKeError::Tls(e.to_string()))?)
                    }
                    _ => None,
                };
                build_response(request, keys.as_ref(), server_keys, setup, rng)
            }
            Err(DecodeError::TruncatedRecord { .. } | DecodeError::NoEndOfMessage { .. }) => {
                return Ok(())
            }
            Err(_) => build_response(
                KeRequest::Error(ERROR_BAD_REQUEST),
                None,
                server_keys,
                setup,
                rng,
            ),
        }
        .map_err(|e| NtsKeError::Tls(e.to_string()))?;
        self.conn
            .writer()
            .write_all(&response)
            .map_err(|e| NtsKeError::Tls(e.to_string()))?;
        self.conn.send_close_notify();
        self.state = State::Responded;
        Ok(())
    }

    fn drain_plaintext(&mut self) -> Result<(), NtsKeError> {
        // Anything after the request is read and dropped.
        let keep = (self.state == State::Reading).then_some(&mut *self.request);
        read_plaintext(&mut self.conn, keep).map_err(|_| NtsKeError::RequestTooLong)
    }
}

/// Moves all pending TLS output of `conn` into `out` (appended); returns the octets added.
/// Shared by the NTS-KE server and client sessions.
pub(crate) fn write_pending_tls<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    out: &mut Vec<u8>,
) -> usize {
    let before = out.len();
    while conn.wants_write() {
        match conn.write_tls(out) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    out.len() - before
}

/// A peer's NTS-KE message grew beyond [`MAX_MESSAGE_LEN`] (RFC 8915 gives no limit; ours
/// bounds memory per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageTooLong;

/// Reads the plaintext `conn` has decrypted, appending it to `into` (or dropping it when
/// `None`); fails once `into` would exceed [`MAX_MESSAGE_LEN`]. The stack buffer may hold
/// cookies or keys and is zeroized. Shared by the NTS-KE server and client sessions.
pub(crate) fn read_plaintext<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    mut into: Option<&mut Vec<u8>>,
) -> Result<(), MessageTooLong> {
    let mut buf = Zeroizing::new([0u8; 4096]);
    loop {
        match conn.reader().read(&mut buf[..]) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if let Some(into) = into.as_deref_mut() {
                    if into.len().saturating_add(n) > MAX_MESSAGE_LEN {
                        return Err(MessageTooLong);
                    }
                    into.extend_from_slice(buf.get(..n).unwrap_or_default());
                }
            }
            // WouldBlock: no more plaintext for now; other errors: the peer closed uncleanly,
            // which shows on the next read_tls or as a truncated message at end of stream.
            Err(_) => return Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
