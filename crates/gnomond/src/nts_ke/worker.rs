//! One NTS-KE helper thread (chronyd's NTS-KE helper process, `ntsprocesses`): its own poll(2)
//! loop over non-blocking TLS connections handed over by the main thread, each driven by a
//! sans-IO [`NtsKeSession`] and dropped at its deadline, so a slow or silent peer only ever
//! holds its own slot. The thread never touches the NTP path: it gets connections and the
//! current cookie keys through a channel (with a wake-up socket in its poll set) and reports
//! each finished connection with one octet on the main thread's pipe.

use crate::os::poll::{self, PollFd, POLLERR, POLLIN};
use gnomon_core::nts::{NtsKeServerSetup, NtsKeSession, ServerKeys};
use rand::rngs::StdRng;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, TryRecvError};

/// Largest read per connection per wake-up; a request is at most 16384 octets plus TLS
/// overhead, so a few wake-ups are enough and no connection monopolises the thread.
const READ_CHUNK: usize = 4096;
/// Reads per connection per wake-up.
const READS_PER_WAKE: usize = 8;
/// How long a finished connection waits for the peer's close after our FIN, seconds, bounded
/// by the session deadline anyway.
const LINGER: f64 = 1.0;

/// What the main thread sends a worker.
pub enum Msg {
    /// A new connection, accepted at monotonic time `.2`.
    Conn(TcpStream, SocketAddr, f64),
    /// New cookie keys (after a rotation or a reload).
    Keys(Box<ServerKeys>),
    /// Exit.
    Stop,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    session: NtsKeSession,
    /// TLS output not yet accepted by the socket.
    out: Vec<u8>,
    /// Response sent and our side shut down: waiting for the peer's close.
    finishing: Option<f64>,
    /// Ready to be dropped.
    closed: bool,
}

/// The worker's state.
pub struct Worker {
    /// This worker's index, reported on `done` for each finished connection.
    pub index: u8,
    /// Messages from the main thread.
    pub rx: Receiver<Msg>,
    /// Readable when messages wait (the main thread writes one octet per message).
    pub wake: UnixStream,
    /// The main thread's pipe.
    pub done: UnixStream,
    /// TLS configuration and NTS-KE settings.
    pub setup: NtsKeServerSetup,
    /// Current cookie keys.
    pub keys: ServerKeys,
    /// Cookie nonces.
    pub rng: StdRng,
}

impl Worker {
    /// Runs until told to stop or the main thread goes away.
    pub fn run(mut self) {
        let mut conns: Vec<Conn> = Vec::new();
        let mut fds: Vec<PollFd> = Vec::new();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            fds.clear();
            fds.push(poll::readable(self.wake.as_raw_fd()));
            for c in &conns {
                let mut events = POLLIN;
                if !c.out.is_empty() {
                    events |= libc::POLLOUT;
                }
                fds.push(PollFd {
                    fd: c.stream.as_raw_fd(),
                    events,
                    revents: 0,
                });
            }
            let now = crate::os::clock::monotonic();
            let timeout = conns
                .iter()
                .map(|c| c.expiry())
                .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.min(d))))
                .map_or(-1, |d| {
                    ((d - now).max(0.0) * 1000.0)
                        .ceil()
                        .min(f64::from(i32::MAX)) as i32
                });
            if let Err(e) = poll::wait(&mut fds, timeout) {
                tracing::error!("NTS-KE helper poll() failed : {e}");
                return;
            }
            let now = crate::os::clock::monotonic();
            for (c, fd) in conns.iter_mut().zip(&fds[1..]) {
                if fd.revents != 0 {
                    c.step(
                        fd.revents,
                        now,
                        &mut buf,
                        &self.keys,
                        &self.setup,
                        &mut self.rng,
                    );
                }
            }
            for c in conns.iter_mut() {
                if !c.closed && now > c.expiry() {
                    if c.finishing.is_none() {
                        tracing::debug!("NTS-KE session with {} timed out", c.peer);
                    }
                    c.closed = true;
                }
            }
            let before = conns.len();
            conns.retain(|c| !c.closed);
            for _ in conns.len()..before {
                self.report_done();
            }
            if fds[0].revents != 0 {
                let mut sink = [0u8; 64];
                while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
            }
            loop {
                match self.rx.try_recv() {
                    Ok(Msg::Conn(stream, peer, accepted)) => {
                        match NtsKeSession::new(&self.setup, accepted) {
                            Ok(session) => conns.push(Conn {
                                stream,
                                peer,
                                session,
                                out: Vec::new(),
                                finishing: None,
                                closed: false,
                            }),
                            Err(e) => {
                                tracing::error!("Could not start NTS-KE session : {e}");
                                self.report_done();
                            }
                        }
                    }
                    Ok(Msg::Keys(k)) => self.keys = *k,
                    Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
        }
    }

    fn report_done(&self) {
        // The pipe holds far more octets than connections can be open; a full pipe would
        // only delay the main thread's count, never block this thread (non-blocking).
        let _ = (&self.done).write(&[self.index]);
    }
}

impl Conn {
    /// When the connection is dropped whatever happens.
    fn expiry(&self) -> f64 {
        match self.finishing {
            Some(t) => (t + LINGER).min(self.session.deadline()),
            None => self.session.deadline(),
        }
    }

    fn step(
        &mut self,
        revents: i16,
        now: f64,
        buf: &mut [u8],
        keys: &ServerKeys,
        setup: &NtsKeServerSetup,
        rng: &mut StdRng,
    ) {
        if revents & (POLLIN | POLLERR | libc::POLLHUP) != 0 {
            self.read(now, buf, keys, setup, rng);
        }
        if self.closed {
            return;
        }
        self.flush();
        if self.finishing.is_none() && self.session.is_done() && self.out.is_empty() {
            // Response and close_notify are out: send FIN and wait for the peer to close, so
            // that its late close_notify cannot make our kernel reset the connection.
            let _ = self.stream.shutdown(Shutdown::Write);
            self.finishing = Some(now);
        }
    }

    fn read(
        &mut self,
        now: f64,
        buf: &mut [u8],
        keys: &ServerKeys,
        setup: &NtsKeServerSetup,
        rng: &mut StdRng,
    ) {
        for _ in 0..READS_PER_WAKE {
            let n = match self.stream.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("NTS-KE connection from {} failed : {e}", self.peer);
                    self.closed = true;
                    return;
                }
            };
            if self.finishing.is_some() || self.session.is_done() {
                // After the response only the peer's close_notify and FIN matter.
                if n == 0 {
                    self.closed = true;
                    return;
                }
                continue;
            }
            let data = buf.get(..n).unwrap_or(&[]);
            if let Err(e) = self.session.read_tls(data, now, keys, setup, rng) {
                tracing::debug!("NTS-KE session with {} failed : {e}", self.peer);
                // Send any alert the TLS layer queued, best effort, then close.
                self.session.write_tls(&mut self.out);
                self.flush();
                self.closed = true;
                return;
            }
            self.session.write_tls(&mut self.out);
            if n == 0 {
                return;
            }
        }
    }

    fn flush(&mut self) {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("Could not send to NTS-KE client {} : {e}", self.peer);
                    self.closed = true;
                    return;
                }
            }
        }
    }
}
