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
//! The connected socket is the OS layer's own (SO_TIMESTAMPNS) and is read with the client's
//! `RxBatch`, so a peer sample's receive time is the kernel's stamp, as a server sample's is;
//! only when the kernel gives no stamp is the time read in user space after the read. The
//! socket also asks for kernel transmit timestamps, so a peer sample's transmit time is the
//! kernel's too (tx_stamps.rs); the error queue is read after each send and before each read.

use crate::os::clock::TimeSpec;
use crate::os::net::{RxBatch, UdpSocket};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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

/// One datagram a peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDatagram {
    /// The payload.
    pub data: Vec<u8>,
    /// The kernel's receive timestamp (CLOCK_REALTIME), when it gave one.
    pub rx: Option<TimeSpec>,
}

/// The peers' sockets on the NTP port, by remote address.
#[derive(Debug)]
pub struct PeerSockets {
    server: ServerPort,
    /// Each socket with its local address towards the peer (read once connected).
    sockets: BTreeMap<SocketAddr, (UdpSocket, SocketAddr)>,
    /// Peers whose socket could not be opened (logged once, then ephemeral ports).
    failed: Vec<SocketAddr>,
}

impl PeerSockets {
    /// No sockets yet.
    pub fn new(server: ServerPort) -> PeerSockets {
        PeerSockets {
            server,
            sockets: BTreeMap::new(),
            failed: Vec::new(),
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
        let opened = super::tx_stamps::bind(local).and_then(|s| {
            s.connect(remote)?;
            // A wildcard-bound socket has its own address only once connected.
            let local = s.current_local_addr()?;
            Ok((s, local))
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

    /// Closes `remote`'s socket once its peer is deleted: while it stays bound and connected,
    /// the kernel hands it everything from that address, which the server socket should get.
    pub fn close(&mut self, remote: SocketAddr) {
        self.sockets.remove(&remote);
        self.failed.retain(|r| *r != remote);
    }

    /// Sends `datagram` to `remote` from its peer socket.
    pub fn send(&self, remote: SocketAddr, datagram: &[u8]) -> std::io::Result<()> {
        match self.sockets.get(&remote) {
            Some((s, _)) => s.send(datagram).map(|_| ()),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotConnected)),
        }
    }

    /// The reference ID a peer synchronised to us announces: the refid of the address our
    /// socket talks to it from (chrony's synchronisation-loop test D).
    pub fn local_refid(&self, remote: SocketAddr) -> Option<u32> {
        let (_, local) = self.sockets.get(&remote)?;
        (!local.ip().is_unspecified()).then(|| gnomon_wire::refid::refid_ip(&local.ip()))
    }

    /// Reads `remote`'s error queue into `stamps`, for source `id` (tx_stamps.rs).
    pub fn collect_tx_stamps(
        &self,
        remote: SocketAddr,
        id: gnomon_core::association::SourceId,
        stamps: &mut super::tx_stamps::TxStamps,
    ) {
        if let Some((s, _)) = self.sockets.get(&remote) {
            stamps.collect(id, s);
        }
    }

    /// Empties `remote`'s error queue, keeping nothing (no source to give the stamps to).
    pub fn discard_tx_stamps(&self, remote: SocketAddr) {
        if let Some((s, _)) = self.sockets.get(&remote) {
            let _ = s.recv_tx_timestamps();
        }
    }

    /// The descriptors to poll, with their remotes.
    pub fn fds(&self) -> impl Iterator<Item = (SocketAddr, i32)> + '_ {
        self.sockets.iter().map(|(r, (s, _))| (*r, s.fd()))
    }

    /// Reads one batch from `remote`'s socket into `batch` (non-blocking) and returns the
    /// whole datagrams from the connected peer with their kernel receive stamps; empty when
    /// there were none.
    pub fn recv(&self, remote: SocketAddr, batch: &mut RxBatch) -> Vec<PeerDatagram> {
        let Some((s, _)) = self.sockets.get(&remote) else {
            return Vec::new();
        };
        let n = match batch.recv(s) {
            Ok(n) => n,
            Err(e) => {
                // An ICMP error from an earlier send (peer not running yet): note, go on.
                tracing::debug!("Could not receive from peer {remote} : {e}");
                return Vec::new();
            }
        };
        (0..n)
            .filter_map(|i| batch.get(i))
            // Queued before the connect, or truncated: skip it.
            .filter(|d| d.from == remote && !d.truncated)
            .map(|d| PeerDatagram {
                data: d.data.to_vec(),
                rx: d.rx,
            })
            .collect()
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
        self.peers
            .collect_tx_stamps(tx.remote, id, &mut self.tx_stamps);
        true
    }

    /// Reads what peer `remote` sent to its socket and hands it to its association, stamped
    /// with the kernel's receive time moved to the driven clock's time base (as server
    /// replies are), or with the driven clock's time at the read when the kernel gave none.
    pub(super) fn receive_peer<C: crate::clock::DaemonClock>(
        &mut self,
        remote: SocketAddr,
        clock: &mut C,
        actions: &mut Vec<gnomon_core::association::Action>,
    ) {
        use crate::statlog::format::StampSource;
        // The kernel transmit stamps first (they also wake poll with POLLERR: a socket whose
        // address no longer names a source is drained all the same, or poll would keep
        // reporting it and the loop would spin).
        match self.engine.source_by_addr(remote) {
            Some(id) => self
                .peers
                .collect_tx_stamps(remote, id, &mut self.tx_stamps),
            None => self.peers.discard_tx_stamps(remote),
        }
        self.apply_tx_stamps(clock);
        for _ in 0..super::READS_PER_WAKE {
            let datagrams = self.peers.recv(remote, &mut self.rx);
            if datagrams.is_empty() {
                return;
            }
            let Some(id) = self.engine.source_by_addr(remote) else {
                continue;
            };
            // A peer that follows us announces our address as its reference ID.
            let ours = self.peers.local_refid(remote);
            for d in datagrams {
                let (rx, stamp) = match d.rx {
                    Some(ts) => (ts.as_f64() + clock.correction(), StampSource::Kernel),
                    None => (clock.read(), StampSource::Daemon),
                };
                let (more, record) = self
                    .engine
                    .handle_packet_recorded(id, rx, &d.data, ours, false, clock);
                actions.extend(more);
                if let (Some(logs), Some(rec)) = (self.statlog.as_mut(), record) {
                    let tx = super::tx_stamps::stamp_source(&self.engine, id);
                    logs.record_sample(rx, &rec, tx, stamp);
                } else if let Some(logs) = self.statlog.as_mut() {
                    // statlog.rs: chronyd logs rejected measurements too.
                    if let Some(m) = self.engine.rejected_measurement(id) {
                        logs.record_rejected(rx, &m, stamp);
                    }
                }
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
        // The peer's packets reach the peer socket, with the kernel's receive stamp; a
        // stranger's reach the server socket.
        let before = crate::os::clock::realtime().as_f64();
        remote.send_to(b"peer", ("127.0.0.1", port)).unwrap();
        // Loopback delivers during send_to: the arrival lies between `before` and `sent`.
        let sent = crate::os::clock::realtime().as_f64();
        stranger.send_to(b"client", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut batch = RxBatch::new();
        let got = peers.recv(raddr, &mut batch);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].data, b"peer");
        // Stamped at arrival, not at the read 50 ms later.
        let rx = got[0].rx.expect("kernel receive timestamp").as_f64();
        assert!(
            rx >= before - 1e-3 && rx <= sent + 1e-3,
            "{rx} not within [{before}, {sent}]"
        );
        assert!(peers.recv(raddr, &mut batch).is_empty());
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"client"[..], stranger.local_addr().unwrap())
        );
    }

    #[test]
    fn closed_peer_socket_leaves_the_peer_to_the_server_socket() {
        let server = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = server.local_addr().port();
        let server = server.into_std();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let remote = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let raddr = remote.local_addr().unwrap();
        let mut peers = PeerSockets::new(server_on(port));
        assert!(peers.open(raddr));
        peers.close(raddr);
        assert_eq!(peers.fds().count(), 0);
        assert!(peers.send(raddr, b"x").is_err());
        remote.send_to(b"after", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"after"[..], raddr));
    }

    #[test]
    fn wildcard_peer_socket_announces_the_address_towards_the_peer() {
        let port = UdpSocket::bind("0.0.0.0:0".parse().unwrap())
            .unwrap()
            .local_addr()
            .port();
        let mut peers = PeerSockets::new(ServerPort {
            port,
            v4: None,
            v6: None,
        });
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(peers.open(remote));
        // Bound to 0.0.0.0, but the loop test needs the address the peer sees: 127.0.0.1.
        assert_eq!(peers.local_refid(remote), Some(0x7F00_0001));
    }

    #[test]
    fn without_an_ntp_port_peers_fall_back() {
        let mut peers = PeerSockets::new(server_on(0));
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(!peers.open(remote));
        assert!(peers.send(remote, b"x").is_err());
        assert!(peers.recv(remote, &mut RxBatch::new()).is_empty());
    }
}
