//! The daemon's side of `gnomon_core::server`: configuration mapped from `gnomon_conf`
//! settings (access rules, `ratelimit`, `clientloglimit`, `noclientlog`, `local`), the reference
//! information served (`local stratum N`, or unsynchronised like chronyd without a source), and
//! the engine's verdicts turned into [`Responder`] answers for the batch I/O path. Requests go
//! through `Server::serve`, which also answers chronyd clients configured with `xleave` in
//! interleaved mode; the transmit times the I/O path reports back go to `Server::note_transmit`.

use crate::responder::{DropKind, Outgoing, Responder};
use gnomon_conf::{RateLimitSpec, Settings, Subnet};
use gnomon_core::access::{AccessRule, AccessTable};
use gnomon_core::rate_limit::RateLimit;
use gnomon_core::server::{DropReason, ReferenceInfo, Reply, Server, ServerConfig};
use gnomon_wire::NtpTimestamp;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// How often the local reference's reference time is refreshed, seconds (chronyd was measured
/// refreshing it about every 70 s rather than per request).
const LOCAL_REFRESH: f64 = 64.0;

/// Why the server could not be configured.
#[derive(Debug)]
pub enum ServerSetupError {
    /// An access rule the table refused.
    Access(String),
    /// A rate limit outside its range.
    RateLimit(String),
}

impl std::fmt::Display for ServerSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerSetupError::Access(e) => write!(f, "Invalid access rule : {e}"),
            ServerSetupError::RateLimit(e) => write!(f, "Invalid ratelimit : {e}"),
        }
    }
}

impl std::error::Error for ServerSetupError {}

/// chronyd clamps `ratelimit` options into their ranges rather than refusing them.
pub fn rate_limit(spec: &RateLimitSpec) -> RateLimit {
    let clamp = |v: i32, lo: i32, hi: i32| v.clamp(lo, hi);
    RateLimit {
        interval: clamp(spec.interval, -19, 12) as i8,
        burst: clamp(spec.burst, 1, 255) as u8,
        leak: clamp(spec.leak, 1, 4) as u8,
        kod: clamp(spec.kod.unwrap_or(0), 0, 4) as u8,
    }
}

/// Resolves an access rule's subnet; host names are looked up once at start-up, as chronyd
/// does. `None` when a name does not resolve (the rule is then skipped with a warning).
fn subnet(s: &Subnet) -> Option<(IpAddr, u8)> {
    match s {
        Subnet::V4 { addr, prefix } => Some((IpAddr::V4(*addr), *prefix)),
        Subnet::V6 { addr, prefix } => Some((IpAddr::V6(*addr), *prefix)),
        Subnet::Host { name, prefix } => {
            let ip = (name.as_str(), 0).to_socket_addrs().ok()?.next()?.ip();
            let full = if ip.is_ipv4() { 32 } else { 128 };
            Some((ip, prefix.unwrap_or(full)))
        }
    }
}

/// An access table from configuration rules (`allow`/`deny` or `cmdallow`/`cmddeny`).
pub fn access_table(rules: &[gnomon_conf::AccessRule]) -> Result<AccessTable, ServerSetupError> {
    let mut access = AccessTable::new();
    for rule in rules {
        let subnet = match &rule.spec.subnet {
            None => None,
            Some(s) => match subnet(s) {
                Some(net) => Some(net),
                None => {
                    tracing::warn!("Could not resolve address in access rule {s:?}, ignored");
                    continue;
                }
            },
        };
        access
            .apply(&AccessRule {
                allow: rule.allow,
                all: rule.spec.all,
                subnet,
            })
            .map_err(|e| ServerSetupError::Access(e.to_string()))?;
    }
    Ok(access)
}

/// The engine's configuration from the daemon's settings. `command_limit` is whether the
/// `cmdratelimit` directive is present (chronyd limits command replies only then).
pub fn server_config(
    settings: &Settings,
    command_limit: bool,
) -> Result<ServerConfig, ServerSetupError> {
    Ok(ServerConfig {
        access: access_table(&settings.access)?,
        rate_limit: settings.ratelimit.as_ref().map(rate_limit),
        nts_ke_rate_limit: None,
        command_rate_limit: command_limit.then(|| rate_limit(&settings.cmdratelimit)),
        client_log_limit: settings.clientloglimit,
        no_client_log: settings.noclientlog,
    })
}

/// The precision of CLOCK_REALTIME reads as log2 seconds: the smallest step seen between
/// consecutive reads, as chronyd measures it at start-up.
pub fn measure_precision() -> i8 {
    let mut best = f64::MAX;
    let mut last = crate::os::clock::realtime().as_f64();
    for _ in 0..200 {
        let now = crate::os::clock::realtime().as_f64();
        let step = now - last;
        if step > 0.0 && step < best {
            best = step;
        }
        last = now;
    }
    if best == f64::MAX {
        return -20;
    }
    best.log2().ceil().clamp(-30.0, 0.0) as i8
}

/// The core server plus what it is told about our clock.
#[derive(Debug)]
pub struct CoreResponder {
    server: Server,
    reference: ReferenceInfo,
    local: bool,
    refreshed_at: Option<f64>,
    /// What the synchronisation engine serves while synchronised (client.rs).
    synced: Option<ReferenceInfo>,
}

impl CoreResponder {
    /// Builds the engine from the settings, with its RNG seeded by `seed`; `command_limit` as
    /// in [`server_config`].
    pub fn new(
        settings: &Settings,
        seed: u64,
        command_limit: bool,
    ) -> Result<CoreResponder, ServerSetupError> {
        let server = Server::new(server_config(settings, command_limit)?, seed)
            .map_err(|e| ServerSetupError::RateLimit(e.to_string()))?;
        let precision = measure_precision();
        let (reference, local) = match &settings.local {
            Some(spec) => (
                ReferenceInfo::local(
                    spec.stratum.clamp(1, 15) as u8,
                    NtpTimestamp::ZERO,
                    precision,
                ),
                true,
            ),
            None => (ReferenceInfo::unsynchronised(precision), false),
        };
        Ok(CoreResponder {
            server,
            reference,
            local,
            refreshed_at: None,
            synced: None,
        })
    }

    /// The engine's counters.
    pub fn stats(&self) -> gnomon_core::server::ServerStats {
        self.server.stats()
    }

    /// The engine (access table, client log), for the command server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The engine, for run-time `allow`/`deny`, command logging and `clients -r`.
    pub fn server_mut(&mut self) -> &mut Server {
        &mut self.server
    }

    /// What is served about our clock, with the local reference's reference time refreshed
    /// as a request at `now` (monotonic `now_mono`) would refresh it.
    pub fn reference_at(&mut self, now: NtpTimestamp, now_mono: f64) -> ReferenceInfo {
        self.refresh_local(now, now_mono);
        self.synced.unwrap_or(self.reference)
    }

    /// Run-time `local`: `Some(stratum)` activates the local reference (from the next
    /// request on), `None` returns to serving unsynchronised.
    pub fn set_local(&mut self, stratum: Option<u8>) {
        let precision = self.reference.precision;
        match stratum {
            Some(s) => {
                self.reference =
                    ReferenceInfo::local(s.clamp(1, 15), NtpTimestamp::ZERO, precision);
                self.local = true;
            }
            None => {
                self.reference = ReferenceInfo::unsynchronised(precision);
                self.local = false;
            }
        }
        self.refreshed_at = None;
    }

    /// The synchronisation engine's reference while it is synchronised (client.rs); `None`
    /// falls back to `local` or unsynchronised. Our measured precision is kept.
    pub fn set_synchronised(&mut self, reference: Option<ReferenceInfo>) {
        self.synced = reference.map(|r| ReferenceInfo {
            precision: self.reference.precision,
            ..r
        });
    }

    fn refresh_local(&mut self, now: NtpTimestamp, now_mono: f64) {
        if self.local
            && self
                .refreshed_at
                .is_none_or(|t| now_mono - t >= LOCAL_REFRESH)
        {
            self.reference.reference_time = now;
            self.refreshed_at = Some(now_mono);
        }
    }
}

fn drop_kind(reason: DropReason) -> DropKind {
    match reason {
        DropReason::TooShort
        | DropReason::BadLength
        | DropReason::BadVersion
        | DropReason::BadTrailer
        | DropReason::BadMode => DropKind::Malformed,
        DropReason::AccessDenied => DropKind::Denied,
        DropReason::RateLimited => DropKind::RateLimited,
        DropReason::Unauthenticated | DropReason::NtsNotServed | DropReason::ResponseBuffer => {
            DropKind::Other
        }
    }
}

impl Responder for CoreResponder {
    fn respond(
        &mut self,
        request: &[u8],
        from: SocketAddr,
        rx: NtpTimestamp,
        now_mono: f64,
        response: &mut [u8],
    ) -> Result<Outgoing, DropKind> {
        self.refresh_local(rx, now_mono);
        // `serve` also answers interleaved-mode clients (chrony's `xleave`).
        let served = self.server.serve(
            request,
            from,
            rx,
            now_mono,
            self.synced.as_ref().unwrap_or(&self.reference),
            response,
        );
        match served.reply {
            Reply::Send { len } | Reply::Kod { len } => Ok(Outgoing {
                len,
                stamp: served.stamp,
                capture: served.capture,
            }),
            Reply::Drop(reason) => Err(drop_kind(reason)),
        }
    }

    fn note_transmit(&mut self, to: IpAddr, rx: NtpTimestamp, tx: NtpTimestamp, kernel: bool) {
        self.server.note_transmit(to, rx, tx, kernel);
    }

    fn finalize(&mut self, response: &mut [u8], tx: NtpTimestamp) {
        // Plain replies get the transmit timestamp; keyed replies also get their MAC
        // recomputed over it; sealed NTS replies are left as built.
        self.server.finalize(response, tx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lines: &[&str]) -> Settings {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        gnomon_conf::load_lines(&lines).unwrap().settings()
    }

    fn request(tx: u8) -> [u8; 48] {
        let mut r = [0u8; 48];
        r[0] = 0x23;
        r[40..48].copy_from_slice(&[tx; 8]);
        r
    }

    #[test]
    fn allowed_client_is_answered_with_local_stratum() {
        let s = settings(&["allow 127.0.0.1", "local stratum 7"]);
        let mut r = CoreResponder::new(&s, 1, false).unwrap();
        let mut out = [0u8; 2048];
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let rx = NtpTimestamp::from_unix(1_700_000_000, 0);
        let o = r.respond(&request(9), from, rx, 5.0, &mut out).unwrap();
        assert_eq!(
            o,
            Outgoing {
                len: 48,
                stamp: true,
                capture: false,
            }
        );
        assert_eq!(out[0] & 7, 4);
        assert_eq!(out[1], 7);
        assert_eq!(&out[24..32], &[9; 8]);
        assert_eq!(
            &out[16..24],
            &rx.to_be_bytes(),
            "reference time set at first request"
        );
    }

    #[test]
    fn denied_and_malformed_requests_are_told_apart() {
        let s = settings(&["allow 127.0.0.1"]);
        let mut r = CoreResponder::new(&s, 1, false).unwrap();
        let mut out = [0u8; 2048];
        let rx = NtpTimestamp::from_unix(1_700_000_000, 0);
        let other: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        assert_eq!(
            r.respond(&request(1), other, rx, 0.0, &mut out),
            Err(DropKind::Denied)
        );
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(
            r.respond(&[0x23; 10], from, rx, 0.0, &mut out),
            Err(DropKind::Malformed)
        );
    }

    #[test]
    fn ratelimit_options_are_clamped_like_chronyd() {
        let l = rate_limit(&RateLimitSpec {
            interval: 40,
            burst: 1000,
            leak: 0,
            kod: Some(9),
        });
        assert_eq!((l.interval, l.burst, l.leak, l.kod), (12, 255, 1, 4));
    }

    #[test]
    fn precision_is_a_plausible_power_of_two() {
        let p = measure_precision();
        assert!((-30..=-6).contains(&p), "{p}");
    }
}
