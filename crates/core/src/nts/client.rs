//! NTS client pieces (RFC 8915 §4 and §5.7 from the client's side): the cookie jar and the
//! NTS-KE client over TLS 1.3, sans-IO like the server. Associations (engineer "sync") use
//! them; nothing here sends packets.
//!
//! The jar never hands out a cookie twice, holds at most eight, and refuses cookies that are
//! empty or longer than 256 octets (catalogue cases 20 and 32). The NTS-KE response is judged
//! as catalogue case 27 lists: an unknown critical record, an Error or a Warning record, a
//! missing, non-critical or non-NTPv4 Next Protocol, an AEAD other than the one offered, a
//! server name that is not printable ASCII without spaces (or longer than 255), a port record
//! not two octets long, or no cookie at all fail the exchange; cookies past eight are ignored.

use std::collections::VecDeque;
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use gnomon_wire::nts_ke::{
    encode_end_of_message, encode_u16_record, NtsKeMessage, AEAD_AES_SIV_CMAC_256, MAX_MESSAGE_LEN,
    NEXT_PROTOCOL_NTPV4, RECORD_AEAD_ALGORITHM, RECORD_END_OF_MESSAGE, RECORD_ERROR,
    RECORD_NEW_COOKIE, RECORD_NEXT_PROTOCOL, RECORD_NTPV4_PORT, RECORD_NTPV4_SERVER,
    RECORD_WARNING,
};
use gnomon_wire::DecodeError;
use rustls::pki_types::{CertificateDer, ServerName};
use zeroize::Zeroizing;

use super::cookie::SessionKeys;
use super::ke::{export_keys, ALPN_NTSKE};

/// Cookies kept at most.
pub const MAX_COOKIES: usize = 8;
/// Longest cookie accepted.
pub const MAX_COOKIE_LEN: usize = 256;

/// Cookies for one server, each used once.
#[derive(Default)]
pub struct CookieJar {
    cookies: VecDeque<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("cookies", &self.cookies.len())
            .finish()
    }
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Adds a cookie; false if it is empty, too long, or the jar is full.
    pub fn add(&mut self, cookie: &[u8]) -> bool {
        if cookie.is_empty() || cookie.len() > MAX_COOKIE_LEN || self.cookies.len() >= MAX_COOKIES {
            return false;
        }
        self.cookies.push_back(Zeroizing::new(cookie.to_vec()));
        true
    }

    /// Takes the oldest cookie out of the jar (it is never returned again).
    pub fn take(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        self.cookies.pop_front()
    }

    /// Cookies left.
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// True when a new NTS-KE is needed.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Placeholders to send with the next request so the jar refills to eight: the cookie
    /// sent is replaced by the response's first cookie, each placeholder asks for one more.
    pub fn placeholders_wanted(&self) -> usize {
        MAX_COOKIES.saturating_sub(self.cookies.len() + 1)
    }

    /// Empties the jar (after a NAK or a new key exchange).
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

/// Why an NTS-KE exchange failed on the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeClientError {
    /// TLS failed (certificate, version, ALPN …).
    Tls(String),
    /// The server negotiated no ALPN protocol.
    NoAlpn,
    /// The server closed before End of Message, or the response is malformed.
    Malformed,
    /// The response exceeds 16384 octets.
    TooLong,
    /// An unknown critical record.
    UnknownCritical(u16),
    /// An Error record with this code.
    ServerError(u16),
    /// A Warning record with this code.
    ServerWarning(u16),
    /// Next Protocol missing, non-critical, or not NTPv4 alone.
    BadNextProtocol,
    /// AEAD missing or not the one offered.
    BadAead,
    /// Server record not printable ASCII without spaces, or longer than 255.
    BadServer,
    /// Port record not two octets.
    BadPort,
    /// No usable cookie.
    NoCookies,
    /// The deadline passed.
    Timeout,
}

impl fmt::Display for KeClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeClientError::Tls(e) => write!(f, "TLS error: {e}"),
            KeClientError::NoAlpn => f.write_str("server did not negotiate ntske/1"),
            KeClientError::Malformed => f.write_str("malformed NTS-KE response"),
            KeClientError::TooLong => f.write_str("NTS-KE response too long"),
            KeClientError::UnknownCritical(t) => write!(f, "unknown critical record {t}"),
            KeClientError::ServerError(c) => write!(f, "server error {c}"),
            KeClientError::ServerWarning(c) => write!(f, "server warning {c}"),
            KeClientError::BadNextProtocol => f.write_str("bad next protocol"),
            KeClientError::BadAead => f.write_str("bad AEAD algorithm"),
            KeClientError::BadServer => f.write_str("bad NTPv4 server record"),
            KeClientError::BadPort => f.write_str("bad NTPv4 port record"),
            KeClientError::NoCookies => f.write_str("no cookies"),
            KeClientError::Timeout => f.write_str("NTS-KE timed out"),
        }
    }
}

impl std::error::Error for KeClientError {}

/// What a successful NTS-KE response gives.
#[derive(Debug)]
pub struct KeResponse {
    /// NTPv4 server to use instead of the NTS-KE host, if sent.
    pub server: Option<String>,
    /// NTPv4 port, if sent (else 123).
    pub port: Option<u16>,
    /// Up to eight cookies.
    pub cookies: CookieJar,
}

/// The request: NTPv4, AEAD_AES_SIV_CMAC_256, End of Message.
pub fn ke_request() -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut n = 0;
    for (t, v) in [
        (RECORD_NEXT_PROTOCOL, NEXT_PROTOCOL_NTPV4),
        (RECORD_AEAD_ALGORITHM, AEAD_AES_SIV_CMAC_256),
    ] {
        n += encode_u16_record(&mut out[n..], true, t, &[v]).unwrap_or(0);
    }
    n += encode_end_of_message(&mut out[n..]).unwrap_or(0);
    out.truncate(n);
    out
}

/// Judges a complete response message (module documentation).
pub fn parse_ke_response(message: &NtsKeMessage<'_>) -> Result<KeResponse, KeClientError> {
    let mut protocol_ok = None;
    let mut aead_ok = None;
    let mut server = None;
    let mut port = None;
    let mut cookies = CookieJar::new();
    for r in message.records() {
        match r.record_type {
            RECORD_END_OF_MESSAGE => {}
            RECORD_NEXT_PROTOCOL => {
                protocol_ok = Some(r.critical && r.body == NEXT_PROTOCOL_NTPV4.to_be_bytes());
            }
            RECORD_AEAD_ALGORITHM => {
                aead_ok = Some(r.body == AEAD_AES_SIV_CMAC_256.to_be_bytes());
            }
            RECORD_ERROR => {
                return Err(KeClientError::ServerError(r.body_u16().unwrap_or(u16::MAX)))
            }
            RECORD_WARNING => {
                return Err(KeClientError::ServerWarning(
                    r.body_u16().unwrap_or(u16::MAX),
                ))
            }
            RECORD_NEW_COOKIE => {
                // Bad cookies are skipped, extra ones ignored.
                let _ = cookies.add(r.body);
            }
            RECORD_NTPV4_SERVER => {
                let ok = !r.body.is_empty()
                    && r.body.len() <= 255
                    && r.body.iter().all(|b| b.is_ascii_graphic());
                if !ok {
                    return Err(KeClientError::BadServer);
                }
                server = Some(String::from_utf8_lossy(r.body).into_owned());
            }
            RECORD_NTPV4_PORT => {
                port = Some(r.body_u16().map_err(|_| KeClientError::BadPort)?);
            }
            t if r.critical => return Err(KeClientError::UnknownCritical(t)),
            _ => {}
        }
    }
    if protocol_ok != Some(true) {
        return Err(KeClientError::BadNextProtocol);
    }
    if aead_ok != Some(true) {
        return Err(KeClientError::BadAead);
    }
    if cookies.is_empty() {
        return Err(KeClientError::NoCookies);
    }
    Ok(KeResponse {
        server,
        port,
        cookies,
    })
}

/// Builds the TLS 1.3 client configuration: trust `ntstrustedcerts` PEM certificates plus,
/// unless `nosystemcert`, whatever `system_roots` the daemon loaded (DER).
pub fn tls_client_config(
    trusted_pem: &[Vec<u8>],
    system_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, KeClientError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in trusted_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| KeClientError::Tls(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| KeClientError::Tls(e.to_string()))?;
        }
    }
    for cert in system_roots {
        // A system root rustls cannot use is skipped, as a TLS library would.
        let _ = roots.add(cert.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| KeClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    Ok(Arc::new(config))
}

/// One NTS-KE exchange from the client side.
pub struct KeClientSession {
    conn: rustls::ClientConnection,
    deadline: f64,
    response: Vec<u8>,
}

impl fmt::Debug for KeClientSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeClientSession")
            .field("deadline", &self.deadline)
            .field("response_len", &self.response.len())
            .finish_non_exhaustive()
    }
}

impl KeClientSession {
    /// Starts an exchange with `server_name` (checked against the certificate), started at
    /// `now_mono` and failing after `timeout` seconds. The request is queued at once.
    pub fn new(
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
        now_mono: f64,
        timeout: f64,
    ) -> Result<KeClientSession, KeClientError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| KeClientError::Tls(e.to_string()))?;
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| KeClientError::Tls(e.to_string()))?;
        conn.writer()
            .write_all(&ke_request())
            .map_err(|e| KeClientError::Tls(e.to_string()))?;
        Ok(KeClientSession {
            conn,
            deadline: now_mono + timeout,
            response: Vec::new(),
        })
    }

    /// Moves pending TLS output into `out`; returns the octets added.
    pub fn write_tls(&mut self, out: &mut Vec<u8>) -> usize {
        let before = out.len();
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out.len() - before
    }

    /// Feeds octets from the server (`data` empty = closed). Returns the response and the
    /// exported keys once complete.
    pub fn read_tls(
        &mut self,
        mut data: &[u8],
        now_mono: f64,
    ) -> Result<Option<(KeResponse, SessionKeys)>, KeClientError> {
        if now_mono > self.deadline {
            return Err(KeClientError::Timeout);
        }
        if data.is_empty() {
            return Err(KeClientError::Malformed);
        }
        while !data.is_empty() {
            let n = self
                .conn
                .read_tls(&mut data)
                .map_err(|e| KeClientError::Tls(e.to_string()))?;
            self.conn
                .process_new_packets()
                .map_err(|e| KeClientError::Tls(e.to_string()))?;
            let mut buf = [0u8; 4096];
            while let Ok(k) = self.conn.reader().read(&mut buf) {
                if k == 0 {
                    break;
                }
                if self.response.len() + k > MAX_MESSAGE_LEN {
                    return Err(KeClientError::TooLong);
                }
                self.response.extend_from_slice(&buf[..k]);
            }
            if n == 0 {
                break;
            }
        }
        if self.conn.is_handshaking() {
            return Ok(None);
        }
        if self.conn.alpn_protocol() != Some(ALPN_NTSKE) {
            return Err(KeClientError::NoAlpn);
        }
        let message = match NtsKeMessage::decode(&self.response) {
            Ok(m) => m,
            Err(DecodeError::TruncatedRecord { .. } | DecodeError::NoEndOfMessage { .. }) => {
                return Ok(None)
            }
            Err(_) => return Err(KeClientError::Malformed),
        };
        let response = parse_ke_response(&message)?;
        let keys = export_keys(&self.conn).map_err(|e| KeClientError::Tls(e.to_string()))?;
        self.conn.send_close_notify();
        Ok(Some((response, keys)))
    }
}

#[cfg(test)]
mod tests;
