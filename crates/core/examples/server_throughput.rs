//! Micro-benchmark of the responder's hot path (no sockets): requests per second through
//! `Server::handle_request` for a few client populations, with and without rate limiting.
//!
//! `cargo run --release -p gnomon-core --example server_throughput`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use gnomon_core::access::AccessRule;
use gnomon_core::rate_limit::RateLimit;
use gnomon_core::server::{finalize_transmit, ReferenceInfo, Reply, Server, ServerConfig};
use gnomon_wire::NtpTimestamp;

fn request() -> [u8; 48] {
    let mut r = [0u8; 48];
    r[0] = 0x23; // v4 client
    r[2] = 6;
    r[40..48].copy_from_slice(&0x0123_4567_89AB_CDEFu64.to_be_bytes());
    r
}

#[allow(clippy::disallowed_methods)] // a benchmark reads the OS clock
fn run(label: &str, rate_limit: Option<RateLimit>, clients: u32, v6: bool, n: u32) {
    let mut config = ServerConfig::default();
    let all = AccessRule {
        allow: true,
        all: false,
        subnet: None,
    };
    if config.access.apply(&all).is_err() {
        return;
    }
    config.rate_limit = rate_limit;
    let Ok(mut server) = Server::new(config, 42) else {
        return;
    };
    let addrs: Vec<SocketAddr> = (0..clients)
        .map(|i| {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8u128 << 96) | u128::from(i.wrapping_mul(2_654_435_761)),
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(0x0A00_0000 | (i & 0x00FF_FFFF)))
            };
            SocketAddr::new(ip, 40000)
        })
        .collect();
    let req = request();
    let reference = ReferenceInfo::local(10, NtpTimestamp(0xEEAA_0000_0000_0000), -25);
    let mut out = [0u8; 48];
    let mut sent = 0u64;
    let start = Instant::now();
    for i in 0..n {
        let from = addrs[(i % clients) as usize];
        let now = 1000.0 + f64::from(i) * 1e-6;
        match server.handle_request(
            &req,
            from,
            NtpTimestamp(u64::from(i)),
            now,
            &reference,
            &mut out,
        ) {
            Reply::Send { len } => {
                finalize_transmit(&mut out[..len], NtpTimestamp(u64::from(i) + 1));
                sent += 1;
            }
            Reply::Kod { .. } | Reply::Drop(_) => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label:<40} {:>6.1} ns/request  {:>6.2} M requests/s  ({sent} answered of {n}; \
         {} logged, {} evicted)",
        secs * 1e9 / f64::from(n),
        f64::from(n) / secs / 1e6,
        server.client_log().len(),
        server.client_log().records_dropped(),
    );
}

fn main() {
    let n = 5_000_000;
    run("1 client, no ratelimit", None, 1, false, n);
    run("4096 IPv4 clients, no ratelimit", None, 4096, false, n);
    run("4096 IPv6 clients, no ratelimit", None, 4096, true, n);
    run("100k IPv4 clients (evicting)", None, 100_000, false, n);
    let rl = Some(RateLimit::NTP_DEFAULT);
    run("4096 IPv4 clients, ratelimit defaults", rl, 4096, false, n);
    run("1 client flood, ratelimit defaults", rl, 1, false, n);
}
