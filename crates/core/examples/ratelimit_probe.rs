//! Black-box probe of a server's rate limiting, the way the figures in `rate_limit.rs` were
//! measured against chronyd 4.3: send N client requests at a fixed spacing from one source
//! address and count the answers (KoD RATE counted apart). Loopback only, bounded.
//!
//! ```text
//! noclock chronyd -x -d -u root -f conf   # port P, allow 127.0.0.0/8, ratelimit ..., cmdport 0
//! cargo run -p gnomon-core --example ratelimit_probe -- P N SPACING_S [SOURCE_ADDR]
//! ```

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!("usage: ratelimit_probe PORT COUNT SPACING_SECONDS [SOURCE_127.x.y.z]");
    std::process::exit(2)
}

#[allow(clippy::disallowed_methods)] // a probe paces itself with the OS clock
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(count), Some(spacing)) = (
        args.get(1).and_then(|a| a.parse::<u16>().ok()),
        args.get(2).and_then(|a| a.parse::<u32>().ok()),
        args.get(3).and_then(|a| a.parse::<f64>().ok()),
    ) else {
        usage()
    };
    let source: IpAddr = args
        .get(4)
        .map_or(Some(IpAddr::from([127, 0, 0, 1])), |a| a.parse().ok())
        .unwrap_or_else(|| usage());
    if !source.is_loopback() || count > 100_000 || !(0.0..=10.0).contains(&spacing) {
        eprintln!("loopback sources only, at most 100000 requests, spacing 0..10 s");
        std::process::exit(2)
    }
    let target = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port);
    let Ok(socket) = UdpSocket::bind(SocketAddr::new(source, 0)) else {
        eprintln!("cannot bind {source}");
        std::process::exit(1)
    };
    if socket.set_nonblocking(true).is_err() {
        std::process::exit(1)
    }
    let mut request = [0u8; 48];
    request[0] = 0x23; // NTPv4, client
    request[2] = 6;
    let (mut answered, mut kod) = (0u32, 0u32);
    let mut buf = [0u8; 1500];
    let mut drain = |answered: &mut u32, kod: &mut u32| {
        while let Ok(n) = socket.recv(&mut buf) {
            if n >= 48 && buf[1] == 0 && &buf[12..16] == b"RATE" {
                *kod += 1;
            } else {
                *answered += 1;
            }
        }
    };
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(spacing * f64::from(i));
        while Instant::now() < due {
            drain(&mut answered, &mut kod);
            std::thread::sleep(Duration::from_micros(500));
        }
        let tx = (u64::from(i) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        request[40..48].copy_from_slice(&tx.to_be_bytes());
        // A full socket buffer only loses requests, which the count would show.
        let _ = socket.send_to(&request, target);
        drain(&mut answered, &mut kod);
    }
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        drain(&mut answered, &mut kod);
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("sent {count} answered {answered} kod {kod}");
}
