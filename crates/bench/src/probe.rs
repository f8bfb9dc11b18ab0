//! One client exchange with an NTP server (RFC 5905 §8 on-wire protocol): send a client request
//! with the current time as transmit timestamp, check the reply's origin, and compute offset
//! θ = ((T2 − T1) + (T3 − T4)) / 2 and delay δ = (T4 − T1) − (T3 − T2) (RFC 5905 §8).

use crate::packet::{client_request, ntp_from_unix, ntp_to_unix_f64, parse_reply, HEADER_LEN};
use crate::sys::realtime_now;
use gnomon_wire::Header;
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A reply and the client-side times of its exchange.
#[derive(Clone, Copy, Debug)]
pub struct Exchange {
    /// The decoded reply.
    pub reply: Header,
    /// T1: our transmit time (Unix seconds).
    pub t1: f64,
    /// T4: our receive time (Unix seconds).
    pub t4: f64,
}

impl Exchange {
    fn server_times(&self) -> (f64, f64) {
        let pivot = self.t1 as i64;
        (
            ntp_to_unix_f64(self.reply.receive_timestamp.0, pivot),
            ntp_to_unix_f64(self.reply.transmit_timestamp.0, pivot),
        )
    }

    /// Clock offset of the server relative to us, seconds.
    pub fn offset(&self) -> f64 {
        let (t2, t3) = self.server_times();
        ((t2 - self.t1) + (t3 - self.t4)) / 2.0
    }

    /// Round-trip delay, seconds.
    pub fn delay(&self) -> f64 {
        let (t2, t3) = self.server_times();
        (self.t4 - self.t1) - (t3 - t2)
    }
}

/// Why a probe failed.
#[derive(Debug)]
pub enum ProbeError {
    /// The target is not a loopback address.
    NotLoopback(SocketAddr),
    /// A socket call failed.
    Io(io::Error),
    /// Nothing valid came back in time.
    Timeout,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::NotLoopback(a) => write!(f, "refusing to probe {a}: loopback only"),
            ProbeError::Io(e) => write!(f, "{e}"),
            ProbeError::Timeout => write!(f, "no valid reply"),
        }
    }
}

impl std::error::Error for ProbeError {}

impl From<io::Error> for ProbeError {
    fn from(e: io::Error) -> Self {
        ProbeError::Io(e)
    }
}

fn now_unix_f64() -> (f64, u64) {
    let (s, ns) = realtime_now();
    (s as f64 + f64::from(ns) / 1e9, ntp_from_unix(s, ns))
}

/// Sends one request to `target` and waits up to `timeout` for the reply whose origin matches.
pub fn query(target: SocketAddr, timeout: Duration) -> Result<Exchange, ProbeError> {
    if !target.ip().is_loopback() {
        return Err(ProbeError::NotLoopback(target));
    }
    let bind: SocketAddr = if target.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(target)?;
    sock.set_read_timeout(Some(timeout))?;
    let (t1, tx) = now_unix_f64();
    sock.send(&client_request(tx))?;
    let mut buf = [0u8; 1024];
    // Read until the matching reply or the timeout; stray datagrams are skipped, and the loop is
    // bounded because each recv either returns a datagram or times out.
    for _ in 0..16 {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return Err(ProbeError::Timeout)
            }
            // ICMP port unreachable from a closed port: nobody is serving there yet.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(ProbeError::Timeout)
            }
            Err(e) => return Err(e.into()),
        };
        let (t4, _) = now_unix_f64();
        if n < HEADER_LEN {
            continue;
        }
        if let Ok(reply) = parse_reply(&buf[..n]) {
            if reply.origin_timestamp.0 == tx {
                return Ok(Exchange { reply, t1, t4 });
            }
        }
    }
    Err(ProbeError::Timeout)
}

fn refid_text(r: &Header) -> String {
    let b = r.reference_id.to_be_bytes();
    if r.stratum <= 1 && b.iter().all(|c| c.is_ascii_graphic() || *c == 0) {
        let s: String = b.iter().filter(|c| **c != 0).map(|&c| c as char).collect();
        format!("{:08X} ({s})", r.reference_id)
    } else {
        format!(
            "{:08X} ({}.{}.{}.{})",
            r.reference_id, b[0], b[1], b[2], b[3]
        )
    }
}

/// The report `gnomon-bench probe` prints.
pub fn describe(target: SocketAddr, x: &Exchange) -> String {
    let r = &x.reply;
    let pivot = x.t1 as i64;
    let ts = |v: u64| {
        if v == 0 {
            "0".to_string()
        } else {
            format!("{:.9} (Unix)", ntp_to_unix_f64(v, pivot))
        }
    };
    format!(
        "server          : {target}\n\
         leap            : {}\n\
         version         : {}\n\
         mode            : {}\n\
         stratum         : {}\n\
         poll            : {}\n\
         precision       : {} ({:.3e} s)\n\
         root delay      : {:.6} s\n\
         root dispersion : {:.6} s\n\
         reference id    : {}\n\
         reference time  : {}\n\
         origin          : {:016x} (our transmit)\n\
         receive         : {}\n\
         transmit        : {}\n\
         offset          : {:+.6} s\n\
         delay           : {:.6} s\n",
        u8::from(r.leap),
        r.version,
        u8::from(r.mode),
        r.stratum,
        r.poll,
        r.precision,
        2f64.powi(i32::from(r.precision)),
        r.root_delay.to_seconds(),
        r.root_dispersion.to_seconds(),
        refid_text(r),
        ts(r.reference_timestamp.0),
        r.origin_timestamp.0,
        ts(r.receive_timestamp.0),
        ts(r.transmit_timestamp.0),
        x.offset(),
        x.delay(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_of_the_bare_responder_reports_its_fixed_fields() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        drop(s);
        let h = std::thread::spawn(move || {
            crate::bare::serve(addr, Duration::from_secs(5), 1).unwrap()
        });
        let mut got = None;
        for _ in 0..50 {
            if let Ok(x) = query(addr, Duration::from_millis(100)) {
                got = Some(x);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let x = got.expect("bare responder answered");
        h.join().unwrap();
        assert_eq!((x.reply.stratum, u8::from(x.reply.mode)), (10, 4));
        // The bare responder stamps the kernel receive time: offset is tiny on one machine.
        assert!(x.offset().abs() < 0.05, "{}", x.offset());
        assert!(describe(addr, &x).contains("stratum         : 10"));
    }

    #[test]
    fn probe_of_a_closed_port_times_out() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        drop(s);
        assert!(matches!(
            query(addr, Duration::from_millis(200)),
            Err(ProbeError::Timeout)
        ));
    }
}
