//! `cargo bench -p gnomonc`: wall time of `gnomonc sources` and `gnomonc clients` against a
//! scripted daemon holding 10,000 sources and 10,000 client-log records (in a hashed table of
//! 16384 slots, like gnomond's and chronyd's), over the Unix socket and over UDP on loopback.
//! Prints the minimum and median of several runs of the release binary; not a pass/fail test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark harness: failures should panic
#![allow(clippy::disallowed_methods)] // the benchmark reads the clock to time the runs

use gnomon_cmdmon::{
    decode_request, encode_reply, Addr, ClientAccess, ClientAccesses, Reply, ReplyBody, Request,
    SourceData, Status, MAX_CLIENT_ACCESSES,
};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: u32 = 10_000;
const SLOTS: u32 = 16_384;
const RUNS: usize = 9;
const GNOMONC: &str = env!("CARGO_BIN_EXE_gnomonc");

fn addr(i: u32) -> Addr {
    Addr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// Slot -> client number, filled like a hashed table: 10,000 of 16,384 slots used.
fn table() -> Vec<Option<u32>> {
    let mut t = vec![None; SLOTS as usize];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut placed = 0;
    while placed < N {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = (x % u64::from(SLOTS)) as usize;
        if t[slot].is_none() {
            t[slot] = Some(placed);
            placed += 1;
        }
    }
    t
}

fn answer(req: &Request, table: &[Option<u32>]) -> ReplyBody {
    match *req {
        Request::NSources => ReplyBody::NSources { n_sources: N },
        Request::SourceData { index } => ReplyBody::SourceData(SourceData {
            ip_addr: addr(index as u32),
            poll: 6,
            stratum: 2,
            state: (index % 6) as u16,
            reachability: 0o377,
            since_sample: index as u32,
            latest_meas: f64::from(index) * 1.5e-6,
            orig_latest_meas: f64::from(index) * 1.25e-6,
            latest_meas_err: 1e-3,
            ..SourceData::default()
        }),
        Request::ClientAccessesByIndex { first_index, .. } => {
            let mut clients = Vec::new();
            let mut i = first_index as usize;
            while i < table.len() && clients.len() < MAX_CLIENT_ACCESSES {
                if let Some(c) = table[i] {
                    clients.push(ClientAccess {
                        ip: addr(c),
                        ntp_hits: c,
                        ntp_interval: 6,
                        ntp_timeout_interval: 127,
                        last_ntp_hit_ago: c % 1000,
                        cmd_interval: 127,
                        nke_interval: 127,
                        last_cmd_hit_ago: u32::MAX,
                        last_nke_hit_ago: u32::MAX,
                        ..ClientAccess::default()
                    });
                }
                i += 1;
            }
            ReplyBody::ClientAccesses(ClientAccesses {
                n_indices: SLOTS,
                next_index: i as u32,
                clients,
            })
        }
        _ => ReplyBody::Null,
    }
}

fn reply_to(buf: &[u8], table: &[Option<u32>]) -> Option<Vec<u8>> {
    let (h, req) = decode_request(buf).ok()?;
    Some(encode_reply(&Reply {
        command: h.command,
        status: Status::Success,
        sequence: h.sequence,
        body: answer(&req, table),
    }))
}

/// Answers datagrams until `stop`: `recv` reads one (with a short timeout), `send` replies.
fn serve<A>(
    recv: impl Fn(&mut [u8]) -> std::io::Result<(usize, A)>,
    send: impl Fn(&[u8], A),
    stop: Arc<AtomicBool>,
) {
    let table = table();
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = recv(&mut buf) else {
            continue;
        };
        if let Some(r) = reply_to(&buf[..n], &table) {
            send(&r, from);
        }
    }
}

/// Runs gnomonc RUNS times; returns (min, median) seconds and the output line count.
fn time(args: &[&str]) -> (f64, f64, usize) {
    let mut times = Vec::new();
    let mut lines = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let o = Command::new(GNOMONC)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        times.push(start.elapsed().as_secs_f64());
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        lines = o.stdout.iter().filter(|&&b| b == b'\n').count();
    }
    times.sort_by(f64::total_cmp);
    (times[0], times[RUNS / 2], lines)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("gnomonc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("daemon.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let unix = UnixDatagram::bind(&path).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port().to_string();
    let (s1, s2) = (stop.clone(), stop.clone());
    unix.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let t1 = std::thread::spawn(move || {
        serve(
            |b| unix.recv_from(b),
            |r, from| {
                if let Some(p) = from.as_pathname() {
                    let _ = unix.send_to(r, p);
                }
            },
            s1,
        )
    });
    let t2 = std::thread::spawn(move || {
        serve(
            |b| udp.recv_from(b),
            |r, from| drop(udp.send_to(r, from)),
            s2,
        )
    });

    let sock = path.to_str().unwrap();
    // For profiling by hand: `GNOMONC_BENCH_SERVE=SECONDS` only serves, for that long.
    if let Some(secs) = std::env::var("GNOMONC_BENCH_SERVE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("serving on {sock} and 127.0.0.1:{port} for {secs} s");
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let cases: [(&str, Vec<&str>); 8] = [
        ("unix sources (text, -n)", vec!["-h", sock, "-n", "sources"]),
        ("unix sources (-c)", vec!["-h", sock, "-n", "-c", "sources"]),
        ("unix clients (text, -n)", vec!["-h", sock, "-n", "clients"]),
        (
            "udp  sources (text, -n)",
            vec!["-h", "127.0.0.1", "-p", &port, "-n", "sources"],
        ),
        (
            "udp  clients (text, -n)",
            vec!["-h", "127.0.0.1", "-p", &port, "-n", "clients"],
        ),
        ("unix clients (-c)", vec!["-h", sock, "-n", "-c", "clients"]),
        // `-r` walks page by page like chronyc (the scripted daemon does not reset anything).
        (
            "unix clients -r (serial)",
            vec!["-h", sock, "-n", "clients", "-r"],
        ),
        (
            "udp  clients -r (serial)",
            vec!["-h", "127.0.0.1", "-p", &port, "-n", "clients", "-r"],
        ),
    ];
    println!("gnomonc, {N} rows, {RUNS} runs each (release build):");
    for (name, args) in &cases {
        let (min, median, lines) = time(args);
        println!(
            "  {name:<26} min {:7.1} ms  median {:7.1} ms  ({lines} lines)",
            min * 1e3,
            median * 1e3
        );
    }
    stop.store(true, Ordering::SeqCst);
    t1.join().unwrap();
    t2.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
