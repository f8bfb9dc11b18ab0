//! Name resolution off the NTP path: one helper thread runs the blocking `getaddrinfo`
//! (std's `ToSocketAddrs`) and reports each result through a channel, waking the poll loop
//! with a byte on a socket pair whose read end is in the poll set (architecture rule 5: the
//! daemon's one thread never blocks on DNS). chronyd does the same with its asynchronous
//! resolver helper.

use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{channel, Receiver, Sender};

/// Who asked for a lookup (passed back with the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// A `server`/`peer` name: index in the configured sources.
    Source(usize),
    /// A `pool` name, by the engine's id.
    Pool(gnomon_core::association::PoolId),
}

/// One finished lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The request's token.
    pub token: Token,
    /// The name looked up.
    pub name: String,
    /// Addresses found (empty when the lookup failed).
    pub addrs: Vec<SocketAddr>,
}

struct Request {
    token: Token,
    name: String,
    port: u16,
}

/// The helper thread and its pipe.
#[derive(Debug)]
pub struct Resolver {
    requests: Sender<Request>,
    results: Receiver<Resolved>,
    wake: UnixStream,
    in_flight: usize,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.port)
    }
}

impl Resolver {
    /// Starts the helper thread.
    pub fn start() -> std::io::Result<Resolver> {
        let (wake, mut notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let (requests, todo) = channel::<Request>();
        let (done, results) = channel::<Resolved>();
        std::thread::Builder::new()
            .name("gnomond-resolver".into())
            .spawn(move || {
                // Ends when the daemon drops the request sender.
                while let Ok(r) = todo.recv() {
                    let mut addrs: Vec<SocketAddr> = (r.name.as_str(), r.port)
                        .to_socket_addrs()
                        .map(|it| it.collect())
                        .unwrap_or_default();
                    addrs.dedup();
                    let msg = Resolved {
                        token: r.token,
                        name: r.name,
                        addrs,
                    };
                    if done.send(msg).is_err() || notify.write_all(&[1]).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Resolver {
            requests,
            results,
            wake,
            in_flight: 0,
        })
    }

    /// The descriptor to poll for results.
    pub fn fd(&self) -> i32 {
        self.wake.as_raw_fd()
    }

    /// Lookups not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Queues a lookup of `name` (port `port` in the results).
    pub fn resolve(&mut self, token: Token, name: &str, port: u16) {
        let req = Request {
            token,
            name: name.to_string(),
            port,
        };
        if self.requests.send(req).is_ok() {
            self.in_flight += 1;
        }
    }

    /// Finished lookups (call when the descriptor is readable).
    pub fn take(&mut self) -> Vec<Resolved> {
        let mut sink = [0u8; 64];
        while matches!(self.wake.read(&mut sink), Ok(n) if n > 0) {}
        let out: Vec<Resolved> = self.results.try_iter().collect();
        self.in_flight = self.in_flight.saturating_sub(out.len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_name_is_resolved_by_the_helper_and_wakes_the_pipe() {
        let mut r = Resolver::start().unwrap();
        r.resolve(Token::Source(3), "127.0.0.1", 4123);
        assert_eq!(r.in_flight(), 1);
        let mut fds = [crate::os::poll::readable(r.fd())];
        assert_eq!(crate::os::poll::wait(&mut fds, 5000).unwrap(), 1);
        let got = r.take();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].token, Token::Source(3));
        assert_eq!(got[0].addrs, vec!["127.0.0.1:4123".parse().unwrap()]);
        assert_eq!(r.in_flight(), 0);
    }
}
