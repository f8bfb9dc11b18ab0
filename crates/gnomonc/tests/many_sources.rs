//! `sources`/`sourcestats`/`selectdata`/`clients` against a scripted daemon with 10,000 sources
//! and clients: the pipelined requests come back in order, a lost datagram is retried, and
//! every row is printed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: failures should panic

use gnomon_cmdmon::{
    decode_request, encode_reply, Addr, ClientAccess, ClientAccesses, Reply, ReplyBody, Request,
    SelectData, SourceData, SourceStats, Status,
};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const N: u32 = 10_000;
const GNOMONC: &str = env!("CARGO_BIN_EXE_gnomonc");

fn addr(i: u32) -> Addr {
    Addr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// Client-log slots of the scripted daemon.
const SLOTS: u32 = 16_384;

/// Client number in each slot: N clients scattered like a hashed table, in an order unrelated
/// to their addresses.
fn client_table() -> Vec<Option<u32>> {
    let mut t = vec![None; SLOTS as usize];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
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

/// Answers like a daemon with N sources and N clients; drops the first try of the source with index 1234.
fn serve(sock: UnixDatagram, stop: Arc<AtomicBool>) {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut dropped = false;
    let table = client_table();
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let (h, req) = decode_request(&buf[..n]).unwrap();
        let body = match req {
            Request::NSources => ReplyBody::NSources { n_sources: N },
            Request::SourceData { index } => {
                if index == 1234 && !dropped {
                    dropped = true;
                    continue;
                }
                ReplyBody::SourceData(SourceData {
                    ip_addr: addr(index as u32),
                    poll: 6,
                    stratum: 2,
                    state: 5,
                    reachability: 0o377,
                    since_sample: index as u32,
                    latest_meas: f64::from(index) * 1e-6,
                    orig_latest_meas: f64::from(index) * 1e-6,
                    latest_meas_err: 1e-3,
                    ..SourceData::default()
                })
            }
            Request::SourceStats { index } => ReplyBody::SourceStats(SourceStats {
                ip_addr: addr(index),
                n_samples: 8,
                n_runs: 4,
                span_seconds: 300,
                ..SourceStats::default()
            }),
            Request::SelectData { index } => ReplyBody::SelectData(SelectData {
                ip_addr: addr(index),
                state_char: b'+',
                score: 1.0,
                ..SelectData::default()
            }),
            Request::ClientAccessesByIndex {
                first_index,
                n_clients,
                ..
            } => {
                let mut clients = Vec::new();
                let mut i = first_index as usize;
                while i < table.len() && clients.len() < n_clients.min(8) as usize {
                    if let Some(c) = table[i] {
                        clients.push(ClientAccess {
                            ip: addr(c),
                            ntp_hits: c,
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
        };
        let reply = Reply {
            command: h.command,
            status: Status::Success,
            sequence: h.sequence,
            body,
        };
        let _ = sock.send_to(&encode_reply(&reply), from.as_pathname().unwrap());
    }
}

#[test]
fn ten_thousand_sources_and_clients_are_listed_in_order() {
    let dir = std::env::temp_dir().join(format!("gnomonc-many-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("daemon.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let server = std::thread::spawn(move || serve(sock, s2));

    let run = |cmd: &str| {
        let o = Command::new(GNOMONC)
            .args(["-h", path.to_str().unwrap(), "-n", "-c", cmd])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let sources = run("sources");
    let stats = run("sourcestats");
    let select = run("selectdata");
    let clients = run("clients");
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let lines: Vec<&str> = sources.lines().collect();
    assert_eq!(lines.len(), N as usize);
    for (i, l) in lines.iter().enumerate() {
        let ip = Ipv4Addr::from(0x0a00_0000 + i as u32);
        assert!(
            l.starts_with(&format!("^,-,{ip},2,6,377,{i},")),
            "row {i}: {l}"
        );
    }
    assert_eq!(stats.lines().count(), N as usize);
    assert!(stats
        .lines()
        .nth(9999)
        .unwrap()
        .starts_with("10.0.39.15,8,4,300,"));
    assert_eq!(select.lines().count(), N as usize);
    assert!(select.lines().next().unwrap().starts_with("+,10.0.0.0,N,"));
    // Every client once, in slot order (chronyc's page-by-page walk), though the pages were
    // fetched speculatively and out of order.
    let want: Vec<String> = client_table()
        .into_iter()
        .flatten()
        .map(|c| format!("{},{c},", Ipv4Addr::from(0x0a00_0000 + c)))
        .collect();
    let got: Vec<&str> = clients.lines().collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(g.starts_with(w.as_str()), "{g} is not {w}");
    }
}
