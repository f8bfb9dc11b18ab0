//! The daemon's single thread around poll(2), as chronyd's scheduler: the signal self-pipe and
//! every NTP socket in one poll set; timers are the poll timeout (only `-t` so far); a readable
//! socket is drained in batches, a few per wake-up so that no socket starves the others.

use crate::clock::DaemonClock;
use crate::os::net::{UdpSocket, BATCH};
use crate::os::poll::{self, PollFd, POLLERR, POLLIN};
use crate::os::signal::SignalPipe;
use crate::responder::{BatchServer, Responder};

/// Batches served from one socket per wake-up before the others get their turn.
const BATCHES_PER_WAKE: usize = 8;

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A shutdown signal arrived (its number).
    Signal(i32),
    /// The `-t` time limit passed.
    Timeout,
}

/// The poll loop's state.
#[derive(Debug)]
pub struct Scheduler {
    signals: SignalPipe,
    sockets: Vec<UdpSocket>,
    /// CLOCK_MONOTONIC time at which to stop (`-t`).
    deadline: Option<f64>,
}

impl Scheduler {
    /// A loop over `sockets` that stops on a signal from `signals` or at `deadline` (monotonic).
    pub fn new(signals: SignalPipe, sockets: Vec<UdpSocket>, deadline: Option<f64>) -> Scheduler {
        Scheduler {
            signals,
            sockets,
            deadline,
        }
    }

    /// Runs until a shutdown signal or the deadline.
    pub fn run<R: Responder, C: DaemonClock>(
        &mut self,
        server: &mut BatchServer,
        responder: &mut R,
        clock: &mut C,
    ) -> std::io::Result<Exit> {
        let mut fds: Vec<PollFd> = Vec::with_capacity(1 + self.sockets.len());
        fds.push(poll::readable(self.signals.fd()));
        fds.extend(self.sockets.iter().map(|s| poll::readable(s.fd())));
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
            for fd in fds.iter_mut() {
                fd.revents = 0;
            }
            if poll::wait(&mut fds, timeout)? == 0 {
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
            for (socket, fd) in self.sockets.iter().zip(&fds[1..]) {
                if fd.revents & (POLLIN | POLLERR) == 0 {
                    continue;
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
        }
    }
}
