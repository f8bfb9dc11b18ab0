//! The bare responder: the least work a UDP NTP server can do on this kernel. One socket with
//! kernel receive timestamps on (`SO_TIMESTAMPNS`, as chronyd and gnomond use), `recvmmsg` →
//! a fixed reply that echoes the request's transmit timestamp as origin (RFC 5905 §8) →
//! `sendmmsg` back to the sources. No access control, no client log, no clock reading. Its
//! responses/s are the ceiling a real server can approach on the same machine.

use crate::packet::{fixed_reply, ntp_from_unix, HEADER_LEN};
use crate::sys::{enable_rx_timestamps, monotonic_now, set_rcvbuf, Batch};
use gnomon_testnet::wait_readable;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Serves on `addr` until `max_time` has passed (it always stops by itself) or `max_requests`
/// have been answered. Returns the number of replies sent.
pub fn serve(addr: SocketAddr, max_time: Duration, max_requests: u64) -> io::Result<u64> {
    let sock = UdpSocket::bind(addr)?;
    sock.set_nonblocking(true)?;
    enable_rx_timestamps(sock.as_raw_fd())?;
    set_rcvbuf(sock.as_raw_fd(), 1 << 20)?;
    let fd = sock.as_raw_fd();
    let mut batch = Batch::new(64);
    let mut reply = [0u8; HEADER_LEN];
    let mut answered = 0u64;
    let start = monotonic_now();
    let mut ready = Vec::with_capacity(1);
    while answered < max_requests && start.elapsed() < max_time {
        wait_readable(&[fd], std::time::Duration::from_millis(200), &mut ready)?;
        if ready.is_empty() {
            continue;
        }
        loop {
            let got = batch.recv(fd, true, true)?;
            if got == 0 {
                break;
            }
            // Compact the replies to the front so one sendmmsg covers them; requests that are
            // not client mode are dropped, as a server would.
            let mut out = 0;
            for i in 0..got {
                let (s, ns) = batch.rx_timestamp(i).unwrap_or((0, 0));
                let rx = ntp_from_unix(s, ns as u32);
                let Some(len) = fixed_reply(batch.packet(i), rx, &mut reply) else {
                    continue;
                };
                if out != i {
                    batch.copy_source(i, out);
                }
                batch.buf_mut(out)[..len].copy_from_slice(&reply[..len]);
                batch.set_len(out, len);
                out += 1;
            }
            answered += batch.send_back(fd, out)? as u64;
            if got < batch.capacity() {
                break;
            }
        }
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{run, LoadConfig};

    #[test]
    fn bare_responder_answers_every_request_of_a_load_run() {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let h = std::thread::spawn(move || serve(addr, Duration::from_secs(10), 2000).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        let r = run(&LoadConfig {
            target: addr,
            sockets: 8,
            window: 8,
            duration: Duration::from_secs(5),
            max_requests: 2000,
            timeout: Duration::from_millis(500),
            seed: 1,
        })
        .unwrap();
        assert_eq!(h.join().unwrap(), 2000);
        assert_eq!((r.valid, r.invalid, r.lost), (2000, 0, 0), "{r}");
    }
}
