//! The Prometheus metrics endpoint (a Gnomon extension; chronyd has none, chrony_exporter
//! fills the gap there): opt-in with `metricsport PORT` (default 0 = off), listening on
//! `bindmetricsaddress` (default 127.0.0.1), refusing a non-loopback address unless
//! `metricsallownonlocal` is given. Metric names are chrony_exporter's (see
//! [`exposition`]); docs/metrics.md lists them.
//!
//! A tiny HTTP/1.x server inside the daemon's single poll(2) loop (architecture rule 5: no
//! threads, no async runtime): the listener and every connection are non-blocking and sit in
//! the scheduler's poll set; each connection reads one request head into a bounded buffer,
//! gets one response and is closed. At most [`MAX_CONNECTIONS`] are open at once (the
//! listener leaves the poll set while full, so further clients wait in the kernel's backlog),
//! and each must finish within [`CONNECTION_DEADLINE`] or is dropped, so a slow or idle client
//! costs a descriptor for a few seconds and never delays NTP service.

pub mod exposition;
pub mod http;

use crate::control::Control;
use crate::ntp_server::CoreResponder;
use crate::os::poll::{PollFd, POLLERR, POLLIN};
use crate::reports::SourceReports;
use crate::responder::Counters;
use exposition::{Extras, Snapshot, SourceRow};
use gnomon_conf::Settings;
use http::{Head, Status};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;

/// Seconds a connection may take from accept to the last byte of its response.
pub const CONNECTION_DEADLINE: f64 = 5.0;

/// Connections accepted per wake-up.
const ACCEPTS_PER_WAKE: usize = MAX_CONNECTIONS;

/// Bytes read per read(2) call.
const READ_CHUNK: usize = 2048;

/// Why the endpoint cannot start.
#[derive(Debug)]
pub enum MetricsError {
    /// `bindmetricsaddress` is not a loopback address and `metricsallownonlocal` is not set.
    NonLocal(IpAddr),
}

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsError::NonLocal(a) => write!(
                f,
                "bindmetricsaddress {a} is not a loopback address (add metricsallownonlocal to \
                 serve metrics beyond this host)"
            ),
        }
    }
}

impl std::error::Error for MetricsError {}

/// One client connection.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    /// The request head so far (at most [`http::MAX_HEAD`] bytes).
    request: Vec<u8>,
    /// The response once decided, and how much of it is sent.
    response: Option<(Vec<u8>, usize)>,
    /// Monotonic time after which the connection is dropped.
    deadline: f64,
    /// Finished (or failed): close it.
    done: bool,
}

impl Connection {
    /// Reads what is available; decides the response once the head is complete.
    fn read(&mut self, render: &mut dyn FnMut() -> String) {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let room = http::MAX_HEAD.saturating_sub(self.request.len());
            if room == 0 {
                break;
            }
            let want = room.min(READ_CHUNK);
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => {
                    // The client closed before a complete request: nothing to answer.
                    self.done = true;
                    return;
                }
                Ok(n) => self.request.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.done = true;
                    return;
                }
            }
        }
        let bytes = match http::parse_head(&self.request) {
            Head::Incomplete => return,
            Head::Bad(status) => http::error_response(status),
            Head::Request {
                method,
                path,
                http1,
            } => match http::route(&method, &path, http1) {
                Status::Ok => {
                    let body = render();
                    http::response(
                        Status::Ok,
                        http::METRICS_CONTENT_TYPE,
                        body.as_bytes(),
                        method == "HEAD",
                    )
                }
                status => http::error_response(status),
            },
        };
        self.response = Some((bytes, 0));
        self.write();
    }

    /// Sends what the socket takes; closes the connection when all is sent.
    fn write(&mut self) {
        let Some((bytes, sent)) = self.response.as_mut() else {
            return;
        };
        while *sent < bytes.len() {
            match self.stream.write(&bytes[*sent..]) {
                Ok(0) => {
                    self.done = true;
                    return;
                }
                Ok(n) => *sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.done = true;
                    return;
                }
            }
        }
        // Everything sent: signal the end of the response; the close follows.
        let _ = self.stream.shutdown(Shutdown::Write);
        self.done = true;
    }

    fn poll_fd(&self) -> PollFd {
        let events = if self.response.is_some() {
            libc::POLLOUT
        } else {
            POLLIN
        };
        PollFd {
            fd: self.stream.as_raw_fd(),
            events,
            revents: 0,
        }
    }
}

/// The listening socket and its connections.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    connections: Vec<Connection>,
    /// Whether the last [`MetricsServer::prepare`] put the listener in the poll set.
    listening: bool,
}

impl MetricsServer {
    /// Opens the endpoint the settings ask for: `Ok(None)` when `metricsport` is 0 or the
    /// socket cannot be opened (logged, as chronyd logs a socket it cannot open), an error
    /// for a non-loopback address without `metricsallownonlocal`.
    pub fn from_settings(settings: &Settings) -> Result<Option<MetricsServer>, MetricsError> {
        if settings.metrics_port == 0 {
            return Ok(None);
        }
        let ip = settings.bind_metrics_address;
        if !ip.is_loopback() && !settings.metrics_allow_nonlocal {
            return Err(MetricsError::NonLocal(ip));
        }
        let addr = SocketAddr::new(ip, settings.metrics_port);
        match MetricsServer::bind(addr) {
            Ok(m) => {
                let addr = m.local_addr().unwrap_or(addr);
                tracing::info!("Serving metrics on http://{addr}/metrics");
                Ok(Some(m))
            }
            Err(e) => {
                tracing::error!("Could not open metrics socket on {addr} : {e}");
                Ok(None)
            }
        }
    }

    /// A non-blocking listener on `addr`.
    pub fn bind(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(MetricsServer {
            listener,
            connections: Vec::new(),
            listening: false,
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }

    /// Before poll: drops connections past their deadline, appends the listener (unless
    /// full) and every connection to `fds`, and returns `timeout_ms` shortened to the next
    /// deadline.
    pub fn prepare(&mut self, fds: &mut Vec<PollFd>, now_mono: f64, timeout_ms: i32) -> i32 {
        self.connections.retain(|c| c.deadline > now_mono);
        self.listening = self.connections.len() < MAX_CONNECTIONS;
        if self.listening {
            fds.push(crate::os::poll::readable(self.listener.as_raw_fd()));
        }
        fds.extend(self.connections.iter().map(Connection::poll_fd));
        let next = self
            .connections
            .iter()
            .map(|c| c.deadline)
            .fold(f64::INFINITY, f64::min);
        if next.is_finite() {
            // Round up so the wake-up is never just before the deadline.
            let ms = ((next - now_mono) * 1000.0)
                .ceil()
                .clamp(0.0, f64::from(i32::MAX)) as i32;
            if timeout_ms < 0 || ms < timeout_ms {
                return ms;
            }
        }
        timeout_ms
    }

    /// After poll: `fds` are the entries [`MetricsServer::prepare`] appended, with their
    /// `revents`. Serves ready connections (calling `render` for each scrape), closes the
    /// finished ones, and accepts new ones.
    pub fn service(&mut self, fds: &[PollFd], now_mono: f64, render: &mut dyn FnMut() -> String) {
        let offset = usize::from(self.listening);
        for (i, c) in self.connections.iter_mut().enumerate() {
            let Some(fd) = fds.get(offset + i) else {
                break;
            };
            if fd.revents == 0 {
                continue;
            }
            if c.response.is_some() {
                c.write();
            } else {
                c.read(render);
            }
            if fd.revents & POLLERR != 0 && !c.done && c.response.is_none() {
                c.done = true;
            }
        }
        self.connections.retain(|c| !c.done);
        let listener_ready = self.listening && fds.first().is_some_and(|fd| fd.revents != 0);
        if listener_ready {
            self.accept(now_mono);
        }
    }

    fn accept(&mut self, now_mono: f64) {
        for _ in 0..ACCEPTS_PER_WAKE {
            if self.connections.len() >= MAX_CONNECTIONS {
                return;
            }
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    // Accepted sockets do not inherit O_NONBLOCK on Linux.
                    if let Err(e) = stream.set_nonblocking(true) {
                        tracing::debug!(
                            "Could not make metrics connection from {peer} non-blocking : {e}"
                        );
                        continue;
                    }
                    self.connections.push(Connection {
                        stream,
                        request: Vec::with_capacity(READ_CHUNK),
                        response: None,
                        deadline: now_mono + CONNECTION_DEADLINE,
                        done: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ECONNABORTED, EMFILE and the like: try again on the next wake-up.
                    tracing::debug!("Could not accept metrics connection : {e}");
                    return;
                }
            }
        }
    }
}

/// The poll-loop hook before poll(2): see [`MetricsServer::prepare`]; no-op without an
/// endpoint.
pub fn prepare(metrics: &mut Option<MetricsServer>, fds: &mut Vec<PollFd>, timeout_ms: i32) -> i32 {
    match metrics.as_mut() {
        Some(m) => m.prepare(fds, crate::os::clock::monotonic(), timeout_ms),
        None => timeout_ms,
    }
}

/// The reports of one scrape, from the same functions that answer `chronyc tracking`,
/// `sources`, `sourcestats` and `serverstats`, so both views always agree.
pub fn snapshot<S: SourceReports>(
    ntp: &mut CoreResponder,
    control: &Control<S>,
    io: &Counters,
    correction: f64,
) -> Snapshot {
    let now_real = crate::os::clock::realtime();
    let now_ntp = crate::responder::ntp_time(now_real, correction);
    let reference = ntp.reference_at(now_ntp, crate::os::clock::monotonic());
    let core = ntp.stats();
    let sources = control.sources();
    let mut rows = Vec::new();
    for i in 0..sources.n_sources() {
        let Ok(index) = i32::try_from(i) else {
            break;
        };
        let Ok(data) = sources.source_data(index) else {
            continue;
        };
        let name = sources
            .source_name(&data.ip_addr)
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .unwrap_or_default();
        rows.push(SourceRow {
            data,
            name,
            stats: sources.source_stats(i).ok(),
        });
    }
    Snapshot {
        tracking: crate::reports::tracking(&reference, now_real.sec),
        sources: rows,
        server: crate::reports::server_stats(&core, &control.counters(), io),
        extras: Extras {
            core,
            send_failures: io.send_failed,
        },
    }
}

/// The response body of one scrape of the running daemon.
pub fn render_daemon<S: SourceReports>(
    ntp: &mut CoreResponder,
    control: &Control<S>,
    io: &Counters,
    correction: f64,
) -> String {
    exposition::render(&snapshot(ntp, control, io, correction))
}

#[cfg(test)]
mod tests;
