//! Kernel transmit timestamps of the client's requests and the peers' packets, as chronyd 4.3
//! uses on Linux ("TX timestamping : Kernel" in `chronyc ntpdata`, `K` in the transmit column
//! of measurements.log).
//!
//! Every source socket asks for software transmit stamps (the OS layer's
//! `UdpSocket::enable_tx_timestamps`). The kernel queues each stamp with the datagram on the
//! socket's error queue; it is read right after the send (on loopback and most drivers the
//! stamp is already there), and otherwise when poll(2) reports POLLERR for the socket, always
//! before the socket's replies are read. The stamp, moved to the driven clock's time base with
//! the driver's correction exactly as a receive stamp is, goes to the engine
//! (`Engine::handle_tx_timestamp`), which replaces the outstanding request's transmit time
//! when the looped-back datagram is that request (its transmit timestamp field identifies it);
//! the rules for stamps of other or already answered requests are the core's
//! (`association/tx_stamp.rs`). When the kernel refuses the option, or gives no stamp, the
//! daemon's reading before the send stays.

use crate::clock::DaemonClock;
use crate::os::net::{TxTimestamp, UdpSocket};
use crate::statlog::format::StampSource;
use gnomon_core::association::{Engine, SourceId, TxStampOutcome};
use std::net::SocketAddr;

/// Stamps kept between a send and the next hand-over to the engine; older ones are dropped
/// (the engine would call them late or mismatched anyway). Large enough for one request to
/// each of the 10,000 sources the daemon is tested with, sent in one turn of the loop (a
/// start-up, a `burst` to all): each stamp is a few hundred bytes.
const QUEUE_MAX: usize = 16_384;

/// Opens a client socket bound to `local` that asks for kernel transmit timestamps; when the
/// kernel refuses them the socket is still used and its requests keep the daemon's reading.
pub fn bind(local: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(local)?;
    enable(&socket);
    Ok(socket)
}

/// Asks `socket` for kernel transmit timestamps (logged at debug level when refused).
pub fn enable(socket: &UdpSocket) {
    if let Err(e) = socket.enable_tx_timestamps() {
        tracing::debug!(
            "Could not enable kernel transmit timestamps on {} : {e}",
            socket.local_addr()
        );
    }
}

/// Where the transmit time of source `id`'s last exchange came from, for measurements.log.
pub fn stamp_source(engine: &Engine, id: SourceId) -> StampSource {
    if engine.tx_from_kernel(id) {
        StampSource::Kernel
    } else {
        StampSource::Daemon
    }
}

/// Stamps read from sockets and not yet handed to the engine.
#[derive(Debug, Default)]
pub struct TxStamps {
    queue: std::collections::VecDeque<(SourceId, TxTimestamp)>,
}

impl TxStamps {
    /// Reads `socket`'s error queue without blocking and keeps its stamps for source `id`.
    pub fn collect(&mut self, id: SourceId, socket: &UdpSocket) {
        match socket.recv_tx_timestamps() {
            Ok(stamps) => {
                for s in stamps {
                    if self.queue.len() >= QUEUE_MAX {
                        self.queue.pop_front();
                    }
                    self.queue.push_back((id, s));
                }
            }
            Err(e) => tracing::debug!("Could not read transmit timestamps : {e}"),
        }
    }

    /// Whether no stamp waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

// ---- the client's use of the stamps (hooks in client.rs and peers.rs) ----

impl super::Client {
    /// Hands every collected stamp to the engine, each moved to the driven clock's time base
    /// with the driver's correction, as receive stamps are.
    pub(super) fn apply_tx_stamps<C: DaemonClock>(&mut self, clock: &mut C) {
        if self.tx_stamps.is_empty() {
            return;
        }
        let correction = clock.correction();
        for (id, s) in std::mem::take(&mut self.tx_stamps.queue) {
            let now = s.time.as_f64() + correction;
            match self
                .engine
                .handle_tx_timestamp(id, &s.payload, now, &*clock)
            {
                TxStampOutcome::Applied { advance } => {
                    tracing::trace!("Kernel transmit timestamp {advance:+.9} s after reading")
                }
                TxStampOutcome::Late => {
                    tracing::debug!("Kernel transmit timestamp arrived after the reply")
                }
                TxStampOutcome::Implausible => {
                    tracing::debug!("Kernel transmit timestamp too far from the reading, ignored")
                }
                TxStampOutcome::Mismatched => {}
            }
        }
    }

    /// Before a source's replies are read: the stamps waiting on its socket and in the queue
    /// go to the engine first, so that a reply never finds its request's stamp unread.
    pub(super) fn take_tx_stamps<C: DaemonClock>(&mut self, id: SourceId, clock: &mut C) {
        if let Some(s) = self.sockets.get(&id) {
            self.tx_stamps.collect(id, &s.socket);
        }
        self.apply_tx_stamps(clock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::peers::{PeerSockets, ServerPort};

    fn peer() -> std::net::UdpSocket {
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    #[test]
    fn client_socket_sends_are_collected_with_their_payload() {
        let remote = peer();
        let socket = bind("0.0.0.0:0".parse().unwrap()).unwrap();
        socket.connect(remote.local_addr().unwrap()).unwrap();
        socket.send(&[0x23; 48]).unwrap();
        let mut stamps = TxStamps::default();
        stamps.collect(SourceId(4), &socket);
        assert_eq!(stamps.queue.len(), 1);
        let (id, s) = &stamps.queue[0];
        assert_eq!((*id, &s.payload[..]), (SourceId(4), &[0x23; 48][..]));
        // Nothing more on the socket.
        stamps.collect(SourceId(4), &socket);
        assert_eq!(stamps.queue.len(), 1);
    }

    #[test]
    fn queue_keeps_the_newest_stamps() {
        let remote = peer();
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.connect(remote.local_addr().unwrap()).unwrap();
        let mut stamps = TxStamps::default();
        for i in 0..QUEUE_MAX + 3 {
            socket.send(&[i as u8; 48]).unwrap();
            stamps.collect(SourceId(1), &socket);
        }
        assert_eq!(stamps.queue.len(), QUEUE_MAX);
        assert_eq!(stamps.queue[0].1.payload[0], 3);
        assert_eq!(
            stamps.queue[QUEUE_MAX - 1].1.payload[0],
            (QUEUE_MAX + 2) as u8
        );
    }

    #[test]
    fn peer_socket_on_the_ntp_port_gives_transmit_stamps() {
        let port = UdpSocket::bind("127.0.0.1:0".parse().unwrap())
            .unwrap()
            .local_addr()
            .port();
        let mut peers = PeerSockets::new(ServerPort {
            port,
            v4: Some("127.0.0.1".parse().unwrap()),
            v6: None,
        });
        let remote = peer();
        let raddr = remote.local_addr().unwrap();
        assert!(peers.open(raddr));
        peers.send(raddr, &[0x1B; 48]).unwrap();
        let mut stamps = TxStamps::default();
        peers.collect_tx_stamps(raddr, SourceId(2), &mut stamps);
        assert_eq!(stamps.queue.len(), 1);
        assert_eq!(stamps.queue[0].1.payload, [0x1B; 48]);
    }
}
