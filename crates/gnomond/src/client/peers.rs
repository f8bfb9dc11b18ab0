//! Symmetric peers on the NTP port: chronyd sends its mode-1 packets from its server socket, so
//! the remote peer sees our NTP port (`port`) as the source port and a `peer` line on each side
//! naming the other's port pairs up. gnomond does the same with one socket per peer bound to
//! the NTP server's address and port (SO_REUSEADDR, as the server socket) and connected to the
//! peer: the kernel hands a connected socket the datagrams of its exact 4-tuple before the
//! server socket, so every packet from `peer_ip:peer_port` (mode 1 polls and mode 2 replies)
//! reaches the peer's association and never the server's passive-mode answer, while requests
//! from anyone else still go to the server socket. Binding happens at start-up, before
//! privileges are dropped, for numeric peers (port 123 needs them); a peer whose socket cannot
//! be opened falls back to an ephemeral port, as before, and is logged once.
//!
//! The connected socket is read through the standard library, so receive times are taken in
//! user space right after the read (the OS layer's batch reader, which returns the kernel
//! stamps, takes only its own socket type, which cannot be connected).

use crate::os::net::UdpSocket;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

/// Largest datagram read from a peer (the header plus a MAC; longer ones are dropped).
const PEER_DATAGRAM_MAX: usize = 1024;

/// Where our NTP server listens: the peer sockets share its address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerPort {
    /// `port` (0: no NTP server port, peers use ephemeral ports).
    pub port: u16,
    /// `bindaddress` for IPv4, if any.
    pub v4: Option<IpAddr>,
    /// `bindaddress` for IPv6, if any.
    pub v6: Option<IpAddr>,
}

impl ServerPort {
    /// From `port` and the `bindaddress` lines.
    pub fn from_settings(settings: &gnomon_conf::Settings) -> ServerPort {
        let pick = |v6: bool| {
            settings
                .bind_addresses
                .iter()
                .copied()
                .find(|a| a.is_ipv6() == v6)
        };
        ServerPort {
            port: settings.port,
            v4: pick(false),
            v6: pick(true),
        }
    }

    /// The local address of a peer socket towards `remote`.
    fn local_for(&self, remote: SocketAddr) -> Option<SocketAddr> {
        if self.port == 0 {
            return None;
        }
        let ip = match remote {
            SocketAddr::V4(_) => self.v4.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            SocketAddr::V6(_) => self.v6.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        Some(SocketAddr::new(ip, self.port))
    }
}

/// The peers' sockets on the NTP port, by remote address.
#[derive(Debug)]
pub struct PeerSockets {
    server: ServerPort,
    sockets: BTreeMap<SocketAddr, std::net::UdpSocket>,
    /// Peers whose socket could not be opened (logged once, then ephemeral ports).
    failed: Vec<SocketAddr>,
    buf: Vec<u8>,
}

impl PeerSockets {
    /// No sockets yet.
    pub fn new(server: ServerPort) -> PeerSockets {
        PeerSockets {
            server,
            sockets: BTreeMap::new(),
            failed: Vec::new(),
            buf: vec![0; PEER_DATAGRAM_MAX],
        }
    }

    /// Opens the socket for `remote` if it is not open yet; false when it cannot be (no NTP
    /// port, or the bind or connect failed: the caller uses an ephemeral port instead).
    pub fn open(&mut self, remote: SocketAddr) -> bool {
        if self.sockets.contains_key(&remote) {
            return true;
        }
        if self.failed.contains(&remote) {
            return false;
        }
        let Some(local) = self.server.local_for(remote) else {
            return false;
        };
        let opened = UdpSocket::bind(local).and_then(|s| {
            let s = s.into_std();
            s.connect(remote)?;
            Ok(s)
        });
        match opened {
            Ok(s) => {
                tracing::debug!("Opened peer socket {local} -> {remote}");
                self.sockets.insert(remote, s);
                true
            }
            Err(e) => {
                tracing::warn!(
                    "Could not open NTP port {} socket for peer {remote} : {e}; using an ephemeral port",
                    self.server.port
                );
                self.failed.push(remote);
                false
            }
        }
    }

    /// Sends `datagram` to `remote` from its peer socket.
    pub fn send(&self, remote: SocketAddr, datagram: &[u8]) -> std::io::Result<()> {
        match self.sockets.get(&remote) {
            Some(s) => s.send(datagram).map(|_| ()),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotConnected)),
        }
    }

    /// The reference ID a peer synchronised to us announces: the refid of the address our
    /// socket talks to it from (chrony's synchronisation-loop test D).
    pub fn local_refid(&self, remote: SocketAddr) -> Option<u32> {
        let local = self.sockets.get(&remote)?.local_addr().ok()?;
        (!local.ip().is_unspecified()).then(|| gnomon_wire::refid::refid_ip(&local.ip()))
    }

    /// The descriptors to poll, with their remotes.
    pub fn fds(&self) -> impl Iterator<Item = (SocketAddr, i32)> + '_ {
        self.sockets.iter().map(|(r, s)| (*r, s.as_raw_fd()))
    }

    /// Reads one datagram from `remote`'s socket (non-blocking); `None` when there is none.
    /// Only whole datagrams from the connected peer are returned.
    pub fn recv(&mut self, remote: SocketAddr) -> Option<Vec<u8>> {
        let s = self.sockets.get(&remote)?;
        loop {
            match s.recv_from(&mut self.buf) {
                Ok((n, from)) if from == remote && n < self.buf.len() => {
                    return self.buf.get(..n).map(<[u8]>::to_vec);
                }
                // Queued before the connect, or truncated: skip it.
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) => {
                    // An ICMP error from an earlier send (peer not running yet): note, go on.
                    tracing::debug!("Could not receive from peer {remote} : {e}");
                    return None;
                }
            }
        }
    }
}

// ---- the client's use of the peer sockets (hooks in client.rs) ----

impl super::Client {
    /// Sends a symmetric-mode packet from the peer's socket on the NTP port, opening it if
    /// needed. False when the peer has no such socket (the caller sends from an ephemeral
    /// port instead).
    pub(super) fn send_peer(
        &mut self,
        id: gnomon_core::association::SourceId,
        tx: &gnomon_core::association::Transmit,
    ) -> bool {
        if !self.peers.open(tx.remote) {
            return false;
        }
        if let Err(e) = self.peers.send(tx.remote, &tx.bytes()) {
            tracing::debug!("Could not send to {} : {e}", tx.remote);
            self.engine.send_failed(id); // `auto_offline`
        }
        true
    }

    /// Reads what peer `remote` sent to its socket and hands it to its association, stamped
    /// with the driven clock's time at the read.
    pub(super) fn receive_peer<C: crate::clock::DaemonClock>(
        &mut self,
        remote: SocketAddr,
        clock: &mut C,
        actions: &mut Vec<gnomon_core::association::Action>,
    ) {
        for _ in 0..super::READS_PER_WAKE {
            let Some(data) = self.peers.recv(remote) else {
                return;
            };
            let rx = clock.read();
            let Some(id) = self.engine.source_by_addr(remote) else {
                continue;
            };
            // A peer that follows us announces our address as its reference ID.
            let ours = self.peers.local_refid(remote);
            let (more, record) = self
                .engine
                .handle_packet_recorded(id, rx, &data, ours, false, clock);
            actions.extend(more);
            if let (Some(logs), Some(rec)) = (self.statlog.as_mut(), record) {
                logs.record_sample(rx, &rec, crate::statlog::format::StampSource::Daemon);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_on(port: u16) -> ServerPort {
        ServerPort {
            port,
            v4: Some("127.0.0.1".parse().unwrap()),
            v6: None,
        }
    }

    #[test]
    fn peer_traffic_uses_the_ntp_port_and_leaves_other_clients_to_the_server() {
        let server = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = server.local_addr().port();
        let server = server.into_std();
        let remote = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut peers = PeerSockets::new(server_on(port));
        let raddr = remote.local_addr().unwrap();
        assert!(peers.open(raddr));
        assert_eq!(peers.local_refid(raddr), Some(0x7F00_0001));
        // Ours go out from the NTP port.
        peers.send(raddr, b"mode 1").unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = remote.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from.port()), (&b"mode 1"[..], port));
        // The peer's packets reach the peer socket, a stranger's the server socket.
        remote.send_to(b"peer", ("127.0.0.1", port)).unwrap();
        stranger.send_to(b"client", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(peers.recv(raddr).as_deref(), Some(&b"peer"[..]));
        assert_eq!(peers.recv(raddr), None);
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"client"[..], stranger.local_addr().unwrap())
        );
    }

    #[test]
    fn without_an_ntp_port_peers_fall_back() {
        let mut peers = PeerSockets::new(server_on(0));
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(!peers.open(remote));
        assert!(peers.send(remote, b"x").is_err());
    }
}
