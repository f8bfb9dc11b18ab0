//! The daemon's single thread around poll(2), as chronyd's scheduler: the signal self-pipe,
//! every NTP socket and every command socket in one poll set; timers are the poll timeout (only
//! `-t` so far); a readable NTP socket is drained in batches, a few per wake-up so that no
//! socket starves the others; command sockets are served after the NTP sockets, a bounded
//! number of datagrams per wake-up, so the NTP path costs exactly what it did.

use crate::clock::DaemonClock;
use crate::command_socket::{CommandSocket, RECV_MAX};
use crate::control::{Control, Now};
use crate::ntp_server::CoreResponder;
use crate::os::net::{UdpSocket, BATCH};
use crate::os::poll::{self, PollFd, POLLERR, POLLIN};
use crate::os::signal::SignalPipe;
use crate::reports::SourceReports;
use crate::responder::BatchServer;
use gnomon_core::access::Family;

/// Command datagrams served from one command socket per wake-up.
const COMMANDS_PER_WAKE: usize = 16;

/// Batches served from one socket per wake-up before the others get their turn.
const BATCHES_PER_WAKE: usize = 8;

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A shutdown signal arrived (its number).
    Signal(i32),
    /// The `-t` time limit passed.
    Timeout,
    /// A `shutdown` command was served.
    Shutdown,
    /// The synchronisation client (client.rs) asked to exit with this status (`-q`/`-Q`
    /// done, `maxchange`).
    Client(i32),
}

/// The poll loop's state.
#[derive(Debug)]
pub struct Scheduler {
    signals: SignalPipe,
    sockets: Vec<UdpSocket>,
    commands: Vec<CommandSocket>,
    /// How to open NTP sockets when run-time `allow`/`deny` change a family's access.
    ntp_plan: Option<crate::daemon::NtpSocketPlan>,
    /// CLOCK_MONOTONIC time at which to stop (`-t`).
    deadline: Option<f64>,
    /// The metrics endpoint (metrics.rs), when `metricsport` opened one.
    metrics: Option<crate::metrics::MetricsServer>,
    /// The synchronisation client (client.rs), when sources are configured.
    client: Option<crate::client::Client>,
    /// The NTS-KE server (nts_ke.rs), when `ntsservercert` is configured.
    nts_ke: Option<crate::nts_ke::NtsKeService>,
}

impl Scheduler {
    /// A loop over the NTP `sockets` and command sockets `commands` that stops on a signal
    /// from `signals`, a `shutdown` command, or at `deadline` (monotonic).
    pub fn new(
        signals: SignalPipe,
        sockets: Vec<UdpSocket>,
        commands: Vec<CommandSocket>,
        deadline: Option<f64>,
    ) -> Scheduler {
        Scheduler {
            signals,
            sockets,
            commands,
            ntp_plan: None,
            deadline,
            metrics: None,
            client: None,
            nts_ke: None,
        }
    }

    /// Serves NTS-KE (nts_ke.rs) from this loop as well.
    pub fn with_nts_ke(mut self, nts_ke: Option<crate::nts_ke::NtsKeService>) -> Scheduler {
        self.nts_ke = nts_ke;
        self
    }

    /// Opens and closes NTP sockets as run-time `allow`/`deny` commands change whether a
    /// family has any allowed address, as chronyd does.
    pub fn with_ntp_plan(mut self, plan: crate::daemon::NtpSocketPlan) -> Scheduler {
        self.ntp_plan = Some(plan);
        self
    }

    /// Serves the metrics endpoint (metrics.rs) in this loop as well.
    pub fn with_metrics(mut self, metrics: Option<crate::metrics::MetricsServer>) -> Scheduler {
        self.metrics = metrics;
        self
    }

    /// Drives the synchronisation client (client.rs) in this loop as well.
    pub fn with_client(mut self, client: Option<crate::client::Client>) -> Scheduler {
        self.client = client;
        self
    }

    /// Runs until a shutdown signal or command, or the deadline.
    pub fn run<S: SourceReports, C: DaemonClock>(
        &mut self,
        server: &mut BatchServer,
        responder: &mut CoreResponder,
        control: &mut Control<S>,
        clock: &mut C,
    ) -> std::io::Result<Exit> {
        let mut n_ntp = self.sockets.len();
        let mut fds: Vec<PollFd> = Vec::with_capacity(1 + n_ntp + self.commands.len());
        fds.push(poll::readable(self.signals.fd()));
        fds.extend(self.sockets.iter().map(|s| poll::readable(s.fd())));
        fds.extend(self.commands.iter().map(|s| poll::readable(s.fd())));
        let mut buf = vec![0u8; RECV_MAX];
        // Metrics endpoint (metrics.rs): its descriptors follow the fixed ones.
        let mut base = fds.len();
        loop {
            let timeout = match self.deadline {
                None => -1,
                Some(d) => {
                    let left = d - crate::os::clock::monotonic();
                    if left <= 0.0 {
                        return Ok(Exit::Timeout);
                    }
                    // Round up so we never wake just before the deadline and spin.
                    (left * 1000.0).ceil().min(f64::from(i32::MAX)) as i32
                }
            };
            // Metrics endpoint (metrics.rs): re-list its descriptors, wake for its deadlines.
            fds.truncate(base);
            let timeout = crate::metrics::prepare(&mut self.metrics, &mut fds, timeout);
            // Synchronisation client (client.rs): its sockets and resolver pipe, its deadline.
            let client_base = fds.len();
            let timeout = crate::client::prepare(&mut self.client, &mut fds, timeout, clock);
            // NTS-KE (nts_ke.rs): its listeners and helpers' pipe, key rotation deadline.
            let nts_base = fds.len();
            let timeout = crate::nts_ke::prepare(&mut self.nts_ke, &mut fds, timeout);
            for fd in fds.iter_mut() {
                fd.revents = 0;
            }
            let ready = poll::wait(&mut fds, timeout)?;
            // Synchronisation client (client.rs): lookups, replies and due timers.
            let client_fds = fds.get(client_base..).unwrap_or(&[]);
            if let Some(code) =
                crate::client::service(&mut self.client, client_fds, clock, responder)
            {
                return Ok(Exit::Client(code));
            }
            // NTS-KE (nts_ke.rs): hand connections to helpers, rotate keys.
            let nts_fds = fds.get(nts_base..).unwrap_or(&[]);
            crate::nts_ke::service(&mut self.nts_ke, nts_fds, responder);
            if let Some(nke) = &self.nts_ke {
                (server.counters.nke_hits, server.counters.nke_drops) = nke.serverstats();
            }
            if ready == 0 {
                if let Some(sig) = self.signals.take() {
                    return Ok(Exit::Signal(sig));
                }
                continue;
            }
            if fds[0].revents != 0 {
                if let Some(sig) = self.signals.take() {
                    return Ok(Exit::Signal(sig));
                }
            }
            for (socket, fd) in self.sockets.iter().zip(&fds[1..1 + n_ntp]) {
                if fd.revents & (POLLIN | POLLERR) == 0 {
                    continue;
                }
                if fd.revents & POLLERR != 0 {
                    // Kernel transmit stamps of interleaved replies (responder.rs).
                    server.drain_error_queue(
                        socket,
                        responder,
                        clock.correction(),
                        crate::os::clock::monotonic(),
                    );
                }
                for _ in 0..BATCHES_PER_WAKE {
                    let correction = clock.correction();
                    let now_mono = crate::os::clock::monotonic();
                    match server.serve_batch(socket, responder, correction, now_mono) {
                        Ok(n) if n == BATCH => continue,
                        Ok(_) => break,
                        Err(e) => {
                            // ICMP errors queued on the socket and the like: note and go on.
                            tracing::debug!("Could not receive on {} : {e}", socket.local_addr());
                            break;
                        }
                    }
                }
            }
            for (socket, fd) in self.commands.iter().zip(&fds[1 + n_ntp..]) {
                if fd.revents & (POLLIN | POLLERR) == 0 {
                    continue;
                }
                for _ in 0..COMMANDS_PER_WAKE {
                    let (len, peer) = match socket.recv(&mut buf) {
                        Ok(Some(x)) => x,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!("Could not receive command : {e}");
                            break;
                        }
                    };
                    let correction = clock.correction();
                    let now = Now {
                        mono: crate::os::clock::monotonic(),
                        ntp: crate::responder::ntp_time(crate::os::clock::realtime(), correction),
                        unix: crate::os::clock::realtime().sec,
                    };
                    let datagram = buf.get(..len).unwrap_or(&[]);
                    if let Some(reply) =
                        control.handle(datagram, &peer, responder, &server.counters, now)
                    {
                        if let Err(e) = socket.send(&reply, &peer) {
                            tracing::debug!("Could not send command reply : {e}");
                        }
                    }
                    if control.shutdown_requested() {
                        return Ok(Exit::Shutdown);
                    }
                }
            }
            // Run-time `allow`/`deny`: open or close a family's NTP socket, keeping the poll
            // set's layout (signal, NTP sockets, command sockets, the rest from `base`).
            if control.take_ntp_access_change() {
                if let Some(plan) = &self.ntp_plan {
                    for v6 in [false, true] {
                        let family = if v6 { Family::V6 } else { Family::V4 };
                        let allowed = responder.server().access().any_allowed(family);
                        let open = self
                            .sockets
                            .iter()
                            .position(|s| s.local_addr().is_ipv6() == v6);
                        match (allowed, open) {
                            (true, None) => {
                                if let Some(s) = plan.open(v6) {
                                    fds.insert(1 + n_ntp, poll::readable(s.fd()));
                                    self.sockets.push(s);
                                    n_ntp += 1;
                                    base += 1;
                                }
                            }
                            (false, Some(i)) => {
                                self.sockets.remove(i);
                                fds.remove(1 + i);
                                n_ntp -= 1;
                                base -= 1;
                            }
                            _ => {}
                        }
                    }
                }
            }
            // Metrics endpoint (metrics.rs): serve scrapes after NTP and commands.
            if let Some(m) = self.metrics.as_mut() {
                let correction = clock.correction();
                let now_mono = crate::os::clock::monotonic();
                m.service(&fds[base..], now_mono, &mut || {
                    crate::metrics::render_daemon(responder, control, &server.counters, correction)
                });
            }
        }
    }
}
