//! Talking to the daemon the way chronyc does (features.md §4.1): a list of targets (Unix
//! socket paths and UDP hosts) tried in order until one can be opened; each request is sent up
//! to `1 + retries` times with a fresh random sequence number and an incremented attempt
//! counter, waiting `timeout` (doubled after each try) for a matching reply.

use gnomon_cmdmon::{decode_reply, encode_request, Reply, Request};
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

    fn recv(&self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        match &self.conn {
            Conn::Udp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.recv(buf)
            }
            Conn::Unix { sock, .. } => {
                sock.set_read_timeout(Some(timeout))?;
                sock.recv(buf)
            }
        }
    }

    /// Sends a request and waits for its reply (matched on command and sequence).
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
}
