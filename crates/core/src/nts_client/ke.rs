//! The NTS-KE client (RFC 8915 §4), sans-IO: the daemon connects TCP to the key-establishment
//! server, then moves bytes between the socket and [`NtsKeClient::read_tls`] /
//! [`NtsKeClient::write_tls`] until it gets an [`NtsKeOutcome`] or an error.
//!
//! TLS is rustls 0.23 (`ring`), TLS 1.3 only (§3), ALPN `ntske/1` (a server that negotiates
//! none or another fails). The certificate is verified against the `ntstrustedcerts` roots and,
//! unless `nosystemcert`, the system store, for the configured server name. Time is never read
//! here: the wall-clock `now` given to [`NtsKeClient::new`] is the time certificates are
//! checked at; with `check_time` false (chrony's `nocerttimecheck` for the first N clock
//! updates) the validity period is not checked, the chain and name still are.
//!
//! Like chronyd (GnuTLS), a server may present, as its end-entity certificate, a certificate
//! listed in `ntstrustedcerts` byte for byte even when it is a CA certificate (what plain
//! `openssl req -x509` makes): webpki rejects that as `CaUsedAsEndEntity`, so only then, and
//! only for the configured files (never the system store), the certificate is accepted after
//! checking its name and (with `check_time`) its validity period. The handshake signature is
//! verified by rustls with the provider's algorithms either way.
//!
//! The request offers Next Protocol NTPv4 and AEAD_AES_SIV_CMAC_256 (15). The response is read
//! into at most 16384 octets and must (catalogue case 27): carry exactly one critical Next
//! Protocol record `[0]`, one AEAD record naming 15, no Error and no Warning record (chrony's
//! policy), no unknown critical record (unknown non-critical ones are ignored), a server record
//! of 1–255 printable, space-free ASCII octets, a port record of two octets, at least one
//! cookie (cookies beyond the jar's 8 are dropped, malformed ones discarded), and End of
//! Message before the connection closes. Keys are exported as §5.1 says (the same exporter the
//! server uses, [`crate::nts::ke::export_keys`]).

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use gnomon_wire::nts_ke::{
    encode_end_of_message, encode_u16_record, NtsKeMessage, AEAD_AES_SIV_CMAC_256,
    NEXT_PROTOCOL_NTPV4, RECORD_AEAD_ALGORITHM, RECORD_END_OF_MESSAGE, RECORD_ERROR,
    RECORD_NEW_COOKIE, RECORD_NEXT_PROTOCOL, RECORD_NTPV4_PORT, RECORD_NTPV4_SERVER,
    RECORD_WARNING,
};
use gnomon_wire::DecodeError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use zeroize::Zeroizing;

use super::cookie_jar::{is_valid_cookie, MAX_COOKIES};
use crate::nts::ke::{export_keys, read_plaintext, write_pending_tls, ALPN_NTSKE};
use crate::nts::SessionKeys;

/// Default time limit of one key exchange, seconds (catalogue case 29 asks for ≤ 16 s).
pub const DEFAULT_KE_TIMEOUT: f64 = 10.0;
/// Longest NTPv4 Server record body accepted.
const MAX_SERVER_NAME_LEN: usize = 255;
/// Longest record body accepted from a server (catalogue case 27; cookies are ≤ 256 too).
const MAX_RECORD_BODY: usize = 256;

/// Why the trust roots cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NtsTrustError {
    /// An `ntstrustedcerts` file holds no readable PEM certificate.
    BadCertificate(usize),
    /// No trust root at all (no `ntstrustedcerts` and `nosystemcert`, or an empty store).
    NoTrustRoots,
}

impl fmt::Display for NtsTrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NtsTrustError::BadCertificate(i) => {
                write!(f, "could not read trusted certificates (file {})", i + 1)
            }
            NtsTrustError::NoTrustRoots => f.write_str("no trusted certificates"),
        }
    }
}

impl std::error::Error for NtsTrustError {}

/// The certificates NTS-KE servers are verified against.
#[derive(Clone)]
pub struct NtsTrust {
    roots: Arc<RootCertStore>,
    /// The `ntstrustedcerts` certificates themselves (not the system store's), which a server
    /// may present directly even if they are CA certificates.
    pinned: Arc<Vec<CertificateDer<'static>>>,
}

impl fmt::Debug for NtsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtsTrust")
            .field("roots", &self.roots.len())
            .field("pinned", &self.pinned.len())
            .finish()
    }
}

impl NtsTrust {
    /// Roots from the contents of `ntstrustedcerts` files (PEM) plus, when `system` (no
    /// `nosystemcert`), the operating system's store (read through `rustls-native-certs`;
    /// unreadable system certificates are skipped as chrony/GnuTLS skip them).
    pub fn new(trusted_pems: &[Vec<u8>], system: bool) -> Result<NtsTrust, NtsTrustError> {
        let mut roots = RootCertStore::empty();
        let mut pinned = Vec::new();
        for (i, pem) in trusted_pems.iter().enumerate() {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|_| NtsTrustError::BadCertificate(i))?;
            if certs.is_empty() {
                return Err(NtsTrustError::BadCertificate(i));
            }
            let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
            if added == 0 {
                return Err(NtsTrustError::BadCertificate(i));
            }
            pinned.extend(certs);
        }
        if system {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
        if roots.is_empty() {
            return Err(NtsTrustError::NoTrustRoots);
        }
        Ok(NtsTrust {
            roots: Arc::new(roots),
            pinned: Arc::new(pinned),
        })
    }
}

/// Why a key exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NtsKeClientError {
    /// No trust roots are configured, or the source is not an NTS source.
    NotConfigured,
    /// The server name is not a valid DNS name or IP address.
    BadServerName,
    /// TLS failed (handshake, certificate, protocol version, alert).
    Tls(String),
    /// The server negotiated no ALPN or not `ntske/1`.
    Alpn,
    /// The response exceeds 16384 octets.
    ResponseTooLong,
    /// The connection closed before End of Message.
    Truncated,
    /// The time limit passed.
    Timeout,
    /// The server sent an Error record with this code.
    ServerError(u16),
    /// The server sent a Warning record with this code (chrony treats it as failure).
    ServerWarning(u16),
    /// An unknown record with the critical bit.
    UnknownCriticalRecord(u16),
    /// Next Protocol missing, duplicated, not critical, or not exactly NTPv4.
    NextProtocol,
    /// AEAD missing or not the algorithm offered.
    Aead,
    /// A malformed NTPv4 Server record.
    ServerRecord,
    /// A malformed NTPv4 Port record.
    PortRecord,
    /// A record that does not parse, or End of Message not critical / not empty.
    Malformed,
    /// No (valid) cookie.
    NoCookies,
}

impl fmt::Display for NtsKeClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NtsKeClientError::NotConfigured => f.write_str("NTS not configured"),
            NtsKeClientError::BadServerName => f.write_str("invalid NTS-KE server name"),
            NtsKeClientError::Tls(e) => write!(f, "TLS error: {e}"),
            NtsKeClientError::Alpn => f.write_str("server did not negotiate ntske/1"),
            NtsKeClientError::ResponseTooLong => f.write_str("NTS-KE response too long"),
            NtsKeClientError::Truncated => f.write_str("NTS-KE response truncated"),
            NtsKeClientError::Timeout => f.write_str("NTS-KE timed out"),
            NtsKeClientError::ServerError(c) => write!(f, "NTS-KE server error {c}"),
            NtsKeClientError::ServerWarning(c) => write!(f, "NTS-KE server warning {c}"),
            NtsKeClientError::UnknownCriticalRecord(t) => {
                write!(f, "unknown critical NTS-KE record {t}")
            }
            NtsKeClientError::NextProtocol => f.write_str("bad NTS-KE next protocol"),
            NtsKeClientError::Aead => f.write_str("bad NTS-KE AEAD algorithm"),
            NtsKeClientError::ServerRecord => f.write_str("bad NTS-KE server record"),
            NtsKeClientError::PortRecord => f.write_str("bad NTS-KE port record"),
            NtsKeClientError::Malformed => f.write_str("malformed NTS-KE response"),
            NtsKeClientError::NoCookies => f.write_str("no NTS cookies received"),
        }
    }
}

impl std::error::Error for NtsKeClientError {}

/// What a successful key exchange gives.
#[derive(Clone, PartialEq, Eq)]
pub struct NtsKeOutcome {
    /// C2S / S2C keys (zeroized on drop).
    pub keys: SessionKeys,
    /// Valid cookies, at most 8.
    pub cookies: Vec<Zeroizing<Vec<u8>>>,
    /// NTPv4 Server record, if sent.
    pub ntp_server: Option<String>,
    /// NTPv4 Port record, if sent.
    pub ntp_port: Option<u16>,
}

impl fmt::Debug for NtsKeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and cookies never appear in logs (catalogue case 32).
        f.debug_struct("NtsKeOutcome")
            .field("cookies", &self.cookies.len())
            .field("ntp_server", &self.ntp_server)
            .field("ntp_port", &self.ntp_port)
            .finish_non_exhaustive()
    }
}

/// A fixed wall-clock time for certificate checks (the library never reads clocks).
#[derive(Debug)]
struct FixedTime(UnixTime);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// WebPKI verification; with `check_time` false, a chain that fails only on its validity
/// period is checked again at a time inside the end-entity certificate's validity period, so
/// the signatures and the name are still verified. A CA certificate used as the end entity is
/// accepted only if it is one of the `pinned` (`ntstrustedcerts`) certificates.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Arc<Vec<CertificateDer<'static>>>,
    check_time: bool,
}

/// webpki's `CaUsedAsEndEntity`, which rustls reports as an opaque "other" certificate error.
fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(o)) => matches!(
            o.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

impl Verifier {
    /// The check for a pinned certificate presented directly: it is trusted as it is (byte
    /// for byte a configured certificate), so what is left is the name and the validity
    /// period (webpki checks that before the CA flag, but it is checked here again so this
    /// path never depends on that order).
    fn verify_pinned(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.check_time {
            let (not_before, not_after) =
                validity(end_entity).ok_or(CertificateError::BadEncoding)?;
            let t = now.as_secs();
            if t < not_before {
                return Err(CertificateError::NotValidYet.into());
            }
            if t > not_after {
                return Err(CertificateError::Expired.into());
            }
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_name(&cert, server_name)?;
        Ok(ServerCertVerified::assertion())
    }
}

fn is_time_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
                | CertificateError::NotValidYet
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYetContext { .. }
        )
    )
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e) if !self.check_time && is_time_error(&e) => {
                let Some(t) = validity_midpoint(end_entity) else {
                    return Err(e);
                };
                self.inner.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    UnixTime::since_unix_epoch(std::time::Duration::from_secs(t)),
                )
            }
            r => r,
        };
        match r {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .pinned
                        .iter()
                        .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                self.verify_pinned(end_entity, server_name, now)
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Reads one DER TLV at the start of `b`: (tag, contents, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (lb, rest) = (rest.get(..n)?, rest.get(n..)?);
        (
            lb.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x)),
            rest,
        )
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// Seconds since the epoch of an ASN.1 UTCTime (tag 0x17) or GeneralizedTime (0x18).
fn asn1_time(tag: u8, s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let y: u64 = s.get(..2)?.parse().ok()?;
            (if y < 50 { 2000 + y } else { 1900 + y }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let f = |i: usize| -> Option<u64> { rest.get(i..i + 2)?.parse().ok() };
    let (mo, d, h, mi, se) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || year < 1970 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian).
    let (y, m) = if mo <= 2 {
        (year - 1, mo + 9)
    } else {
        (year, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe;
    let days = days.checked_sub(719_468)?;
    Some(days * 86_400 + h * 3_600 + mi * 60 + se)
}

/// The middle of the certificate's validity period.
fn validity_midpoint(cert: &[u8]) -> Option<u64> {
    let (nb, na) = validity(cert)?;
    Some(nb + na.checked_sub(nb)? / 2)
}

/// The certificate's notBefore and notAfter, Unix seconds (RFC 5280 §4.1: Certificate →
/// tbsCertificate → [version] serial signature issuer validity).
fn validity(cert: &[u8]) -> Option<(u64, u64)> {
    let (_, cert, _) = der(cert)?;
    let (_, tbs, _) = der(cert)?;
    let mut rest = tbs;
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    for _ in 0..3 {
        rest = der(rest)?.2;
    }
    let (_, validity, _) = der(rest)?;
    let (t0, nb, r) = der(validity)?;
    let (t1, na, _) = der(r)?;
    Some((asn1_time(t0, nb)?, asn1_time(t1, na)?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeState {
    Running,
    Done,
    Failed,
}

/// One NTS-KE connection on the client.
pub struct NtsKeClient {
    conn: rustls::ClientConnection,
    deadline: f64,
    response: Zeroizing<Vec<u8>>,
    state: KeState,
}

impl fmt::Debug for NtsKeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtsKeClient")
            .field("deadline", &self.deadline)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The request: Next Protocol NTPv4 and AEAD_AES_SIV_CMAC_256, both critical.
fn request() -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut n = 0;
    for (t, v) in [
        (RECORD_NEXT_PROTOCOL, NEXT_PROTOCOL_NTPV4),
        (RECORD_AEAD_ALGORITHM, AEAD_AES_SIV_CMAC_256),
    ] {
        n += encode_u16_record(out.get_mut(n..).unwrap_or_default(), true, t, &[v]).unwrap_or(0);
    }
    n += encode_end_of_message(out.get_mut(n..).unwrap_or_default()).unwrap_or(0);
    out.truncate(n);
    out
}

impl NtsKeClient {
    /// Starts a key exchange with `server_name` (DNS name or IP literal; the certificate must
    /// be valid for it) at monotonic `now_mono`, wall-clock `now_wall` (Unix seconds, for
    /// certificate validity), failing after `timeout` seconds.
    pub fn new(
        trust: &NtsTrust,
        server_name: &str,
        now_wall: f64,
        check_time: bool,
        now_mono: f64,
        timeout: f64,
    ) -> Result<NtsKeClient, NtsKeClientError> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| NtsKeClientError::BadServerName)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(
            Arc::clone(&trust.roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| NtsKeClientError::Tls(e.to_string()))?;
        let secs = if now_wall.is_finite() && now_wall > 0.0 {
            now_wall as u64
        } else {
            0
        };
        let time = Arc::new(FixedTime(UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(secs),
        )));
        let mut config = rustls::ClientConfig::builder_with_details(provider, time)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NtsKeClientError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                inner,
                pinned: Arc::clone(&trust.pinned),
                check_time,
            }))
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| NtsKeClientError::Tls(e.to_string()))?;
        // Buffered by rustls until the handshake completes.
        conn.writer()
            .write_all(&request())
            .map_err(|e| NtsKeClientError::Tls(e.to_string()))?;
        Ok(NtsKeClient {
            conn,
            deadline: now_mono + timeout,
            response: Zeroizing::new(Vec::new()),
            state: KeState::Running,
        })
    }

    /// Monotonic time after which the exchange fails: the daemon calls
    /// [`NtsKeClient::check_deadline`] (or `read_tls`) then and closes the connection.
    pub fn deadline(&self) -> f64 {
        self.deadline
    }

    /// Fails with [`NtsKeClientError::Timeout`] once the deadline has passed.
    pub fn check_deadline(&mut self, now_mono: f64) -> Result<(), NtsKeClientError> {
        if now_mono > self.deadline {
            self.state = KeState::Failed;
            return Err(NtsKeClientError::Timeout);
        }
        Ok(())
    }

    /// True while TLS output is pending.
    pub fn wants_write(&self) -> bool {
        self.state != KeState::Failed && self.conn.wants_write()
    }

    /// Appends pending TLS output to `out`; returns the octets added.
    pub fn write_tls(&mut self, out: &mut Vec<u8>) -> usize {
        write_pending_tls(&mut self.conn, out)
    }

    /// Feeds octets read from the connection (`data` empty = the server closed). Returns the
    /// outcome once the whole response has arrived; `Ok(None)` = keep going (send
    /// `write_tls` output, read more). After an error or an outcome, close the connection.
    pub fn read_tls(
        &mut self,
        mut data: &[u8],
        now_mono: f64,
    ) -> Result<Option<NtsKeOutcome>, NtsKeClientError> {
        if self.state != KeState::Running {
            return Err(NtsKeClientError::Malformed);
        }
        self.check_deadline(now_mono)?;
        let r = self.feed(&mut data);
        if r.is_err() || matches!(r, Ok(Some(_))) {
            self.state = if r.is_ok() {
                KeState::Done
            } else {
                KeState::Failed
            };
        }
        r
    }

    fn feed(&mut self, data: &mut &[u8]) -> Result<Option<NtsKeOutcome>, NtsKeClientError> {
        let eof = data.is_empty();
        while !data.is_empty() {
            let read = self
                .conn
                .read_tls(data)
                .map_err(|e| NtsKeClientError::Tls(e.to_string()))?;
            self.conn
                .process_new_packets()
                .map_err(|e| NtsKeClientError::Tls(e.to_string()))?;
            if !self.conn.is_handshaking() && self.conn.alpn_protocol() != Some(ALPN_NTSKE) {
                return Err(NtsKeClientError::Alpn);
            }
            self.drain_plaintext()?;
            if read == 0 {
                break;
            }
        }
        match NtsKeMessage::decode(&self.response) {
            Ok(message) => {
                let keys =
                    export_keys(&self.conn).map_err(|e| NtsKeClientError::Tls(e.to_string()))?;
                parse_response(&message, keys).map(Some)
            }
            Err(DecodeError::TruncatedRecord { .. } | DecodeError::NoEndOfMessage { .. }) => {
                if eof {
                    Err(NtsKeClientError::Truncated)
                } else {
                    Ok(None)
                }
            }
            Err(_) => Err(NtsKeClientError::Malformed),
        }
    }

    fn drain_plaintext(&mut self) -> Result<(), NtsKeClientError> {
        read_plaintext(&mut self.conn, Some(&mut self.response))
            .map_err(|_| NtsKeClientError::ResponseTooLong)
    }
}

/// Checks a complete response (catalogue case 27) and collects its cookies.
pub fn parse_response(
    message: &NtsKeMessage<'_>,
    keys: SessionKeys,
) -> Result<NtsKeOutcome, NtsKeClientError> {
    let mut next_protocol = None;
    let mut aead = None;
    let mut ntp_server = None;
    let mut ntp_port = None;
    let mut cookies: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    for record in message.records() {
        if record.body.len() > MAX_RECORD_BODY {
            return Err(NtsKeClientError::Malformed);
        }
        match record.record_type {
            RECORD_END_OF_MESSAGE if !record.critical || !record.body.is_empty() => {
                return Err(NtsKeClientError::Malformed);
            }
            RECORD_END_OF_MESSAGE => {}
            RECORD_NEXT_PROTOCOL => {
                if next_protocol.is_some()
                    || !record.critical
                    || record.body != NEXT_PROTOCOL_NTPV4.to_be_bytes()
                {
                    return Err(NtsKeClientError::NextProtocol);
                }
                next_protocol = Some(());
            }
            RECORD_ERROR => {
                return Err(NtsKeClientError::ServerError(
                    record.body_u16().unwrap_or(u16::MAX),
                ))
            }
            RECORD_WARNING => {
                return Err(NtsKeClientError::ServerWarning(
                    record.body_u16().unwrap_or(u16::MAX),
                ))
            }
            RECORD_AEAD_ALGORITHM => {
                if aead.is_some() || record.body != AEAD_AES_SIV_CMAC_256.to_be_bytes() {
                    return Err(NtsKeClientError::Aead);
                }
                aead = Some(());
            }
            RECORD_NEW_COOKIE if cookies.len() < MAX_COOKIES && is_valid_cookie(record.body) => {
                cookies.push(Zeroizing::new(record.body.to_vec()));
            }
            // Extra or malformed cookies are discarded (cases 20, 27).
            RECORD_NEW_COOKIE => {}
            RECORD_NTPV4_SERVER => {
                let b = record.body;
                if ntp_server.is_some()
                    || b.is_empty()
                    || b.len() > MAX_SERVER_NAME_LEN
                    || !b.iter().all(|c| c.is_ascii_graphic())
                {
                    return Err(NtsKeClientError::ServerRecord);
                }
                ntp_server = Some(String::from_utf8_lossy(b).into_owned());
            }
            RECORD_NTPV4_PORT => {
                if ntp_port.is_some() {
                    return Err(NtsKeClientError::PortRecord);
                }
                ntp_port = Some(
                    record
                        .body_u16()
                        .map_err(|_| NtsKeClientError::PortRecord)?,
                );
            }
            t if record.critical => return Err(NtsKeClientError::UnknownCriticalRecord(t)),
            _ => {}
        }
    }
    if next_protocol.is_none() {
        return Err(NtsKeClientError::NextProtocol);
    }
    if aead.is_none() {
        return Err(NtsKeClientError::Aead);
    }
    if cookies.is_empty() {
        return Err(NtsKeClientError::NoCookies);
    }
    Ok(NtsKeOutcome {
        keys,
        cookies,
        ntp_server,
        ntp_port,
    })
}

#[cfg(test)]
mod tests;
