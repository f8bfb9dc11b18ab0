//! Talking to the daemon the way chronyc does (features.md §4.1): a list of targets (Unix
//! socket paths and UDP hosts) tried in order until one can be opened; each request is sent up
//! to `1 + retries` times with a fresh random sequence number and an incremented attempt
//! counter, waiting `timeout` (doubled after each try) for a matching reply.

use gnomon_cmdmon::{decode_reply, encode_request, Reply, Request};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a request got no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// No reply within the timeouts, or the socket refused (chronyc: `506 Cannot talk to daemon`).
    NoReply,
}

/// Address family restriction from `-4`/`-6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

enum Conn {
    Udp(UdpSocket),
    Unix { sock: UnixDatagram, path: PathBuf },
}

/// An open connection to a daemon.
pub struct Client {
    conn: Conn,
    /// Initial reply timeout (chronyc `timeout`, default 1000 ms).
    pub timeout: Duration,
    /// Retransmissions after the first try (chronyc `retries`, default 2).
    pub retries: u32,
    rng: u64,
    /// Whether the connection is a Unix socket (full access).
    pub is_unix: bool,
    read_timeout: Option<Duration>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Conn::Unix { path, .. } = &self.conn {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn open_unix(target: &Path, pid: u32) -> Option<(UnixDatagram, PathBuf)> {
    // Like chronyc, bind the client socket beside the daemon's socket: the daemon can write
    // there (same directory it owns), and it is private to the daemon's group.
    let dir = target.parent()?;
    let path = dir.join(format!("gnomonc.{pid}.sock"));
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).ok()?;
    // The daemon may run as another user: let it send to us.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
    }
    if sock.connect(target).is_err() {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some((sock, path))
}

fn open_udp(host: &str, port: u16, family: Family) -> Option<UdpSocket> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port).to_socket_addrs().ok()?.collect(),
    };
    for a in addrs {
        let ok = match family {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        };
        if !ok {
            continue;
        }
        let bind: SocketAddr = if a.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        if let Ok(s) = UdpSocket::bind(bind) {
            if s.connect(a).is_ok() {
                return Some(s);
            }
        }
    }
    None
}

impl Client {
    /// Opens the first target that can be opened: a target starting with `/` is a Unix socket
    /// path, anything else a host name or address reached over UDP `port`.
    pub fn open(targets: &[String], port: u16, family: Family, seed: u64) -> Option<Client> {
        let pid = std::process::id();
        for t in targets {
            let conn = if t.starts_with('/') {
                open_unix(Path::new(t), pid).map(|(sock, path)| Conn::Unix { sock, path })
            } else {
                open_udp(t, port, family).map(Conn::Udp)
            };
            if let Some(conn) = conn {
                let is_unix = matches!(conn, Conn::Unix { .. });
                return Some(Client {
                    conn,
                    timeout: Duration::from_millis(1000),
                    retries: 2,
                    rng: seed | 1,
                    is_unix,
                    read_timeout: None,
                });
            }
        }
        None
    }

    fn next_random(&mut self) -> u32 {
        // xorshift64*: sequence numbers only need to be unpredictable enough to match replies.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.conn {
            Conn::Udp(s) => s.send(buf),
            Conn::Unix { sock, .. } => sock.send(buf),
        }
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        // Rounded to milliseconds and set only when it changes: one syscall less per reply
        // when many requests are in flight.
        let timeout = Duration::from_millis(timeout.as_millis().max(1) as u64);
        if self.read_timeout != Some(timeout) {
            match &self.conn {
                Conn::Udp(s) => s.set_read_timeout(Some(timeout))?,
                Conn::Unix { sock, .. } => sock.set_read_timeout(Some(timeout))?,
            }
            self.read_timeout = Some(timeout);
        }
        match &self.conn {
            Conn::Udp(s) => s.recv(buf),
            Conn::Unix { sock, .. } => sock.recv(buf),
        }
    }

    /// Sends a request and waits for its reply (matched on command and sequence).
    // The binary's transport is where the OS clock is read: it times out each try.
    #[allow(clippy::disallowed_methods)]
    pub fn submit(&mut self, request: &Request) -> Result<Reply, TransportError> {
        let command = request.command();
        let mut timeout = self.timeout;
        let mut buf = [0u8; 1024];
        for attempt in 0..=self.retries {
            let sequence = self.next_random();
            let pkt = encode_request(request, attempt as u16, sequence);
            if self.send(&pkt).is_err() {
                return Err(TransportError::NoReply);
            }
            // Wait out this try's timeout, discarding stale or foreign datagrams.
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.recv(&mut buf, left) {
                    Ok(n) => {
                        if let Ok(reply) = decode_reply(&buf[..n]) {
                            if reply.command == command && reply.sequence == sequence {
                                return Ok(reply);
                            }
                        }
                    }
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut =>
                    {
                        break
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // ECONNREFUSED (nothing listening): chronyc gives up at once.
                    Err(_) => return Err(TransportError::NoReply),
                }
            }
            timeout = timeout.saturating_mul(2);
        }
        Err(TransportError::NoReply)
    }

    /// Sends many independent requests with up to [`PIPELINE_WINDOW`] in flight and returns
    /// the replies in request order. Each outstanding request is retried like [`Client::submit`]
    /// (fresh sequence, incremented attempt, doubled timeout); if any gets no reply after the
    /// last try, the replies before the first missing one are returned with the error.
    #[allow(clippy::disallowed_methods)] // times out each round, like `submit`
    pub fn submit_many(&mut self, requests: &[Request]) -> (Vec<Reply>, Option<TransportError>) {
        let mut replies: Vec<Option<Reply>> = vec![None; requests.len()];
        let mut buf = [0u8; 1024];
        let mut timeout = self.timeout;
        for attempt in 0..=self.retries {
            let todo: Vec<usize> = (0..requests.len())
                .filter(|&i| replies[i].is_none())
                .collect();
            if todo.is_empty() {
                break;
            }
            let mut next = 0;
            // sequence -> request index, for the requests of this round still in flight.
            let mut in_flight: HashMap<u32, usize> = HashMap::new();
            let mut deadline = std::time::Instant::now() + timeout;
            loop {
                while in_flight.len() < PIPELINE_WINDOW && next < todo.len() {
                    let i = todo[next];
                    next += 1;
                    let sequence = self.next_random();
                    let pkt = encode_request(&requests[i], attempt as u16, sequence);
                    if self.send(&pkt).is_err() {
                        return prefix(replies);
                    }
                    in_flight.insert(sequence, i);
                }
                if in_flight.is_empty() {
                    break;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.recv(&mut buf, left) {
                    Ok(n) => {
                        let Ok(reply) = decode_reply(&buf[..n]) else {
                            continue;
                        };
                        if let Some(&i) = in_flight.get(&reply.sequence) {
                            if reply.command == requests[i].command() {
                                in_flight.remove(&reply.sequence);
                                replies[i] = Some(reply);
                                // Progress: give the rest of the window a full timeout.
                                deadline = std::time::Instant::now() + timeout;
                            }
                        }
                    }
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut =>
                    {
                        break
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return prefix(replies),
                }
            }
            timeout = timeout.saturating_mul(2);
        }
        prefix(replies)
    }
}

/// The answered prefix of a batch, and an error if it is not the whole batch.
fn prefix(replies: Vec<Option<Reply>>) -> (Vec<Reply>, Option<TransportError>) {
    let n = replies.len();
    let got: Vec<Reply> = replies.into_iter().map_while(|r| r).collect();
    let err = (got.len() < n).then_some(TransportError::NoReply);
    (got, err)
}

/// Requests [`Client::submit_many`] keeps in flight: well under the kernel's default queue of
/// 512 datagrams per Unix socket (`net.unix.max_dgram_qlen`) and chronyd's socket buffers.
pub const PIPELINE_WINDOW: usize = 32;
