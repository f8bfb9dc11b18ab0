//! `gnomon-bench nts`: chronyd and gnomond as NTS servers (RFC 8915) side by side on loopback,
//! with the same self-signed certificate and configuration: NTS-KE handshakes per second
//! (`--clients` threads each running complete TLS 1.3 key exchanges back to back) and
//! NTS-authenticated NTP responses per second (the same threads, each with its own session,
//! one request in flight, every response verified with the session's S2C key), and the
//! server's CPU time per authentic response (utime + stime from /proc/PID/stat, as
//! `gnomon-bench server` measures plain NTP), whose inverse is the rate one core would
//! sustain independently of the client threads' share of the CPUs. Bounded by `--duration`
//! per run; medians of `--reps` rounds in rotated server order.

use crate::server::{self, Kind, ServerOptions};
use gnomon_core::nts_client::{NtsCheck, NtsKeClient, NtsKeOutcome, NtsSession, NtsTrust};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Options of `gnomon-bench nts`.
#[derive(Clone, Debug)]
pub struct NtsOptions {
    /// Servers (chronyd, gnomond), their paths, CPUs and priorities.
    pub base: ServerOptions,
    /// Client threads.
    pub clients: usize,
}

/// Wall-clock seconds for certificate validity checks.
fn wall_now() -> f64 {
    let (s, ns) = crate::sys::realtime_now();
    s as f64 + f64::from(ns) * 1e-9
}

fn mono(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

/// One complete NTS-KE exchange with `addr`.
pub(crate) fn key_exchange(
    trust: &NtsTrust,
    addr: SocketAddr,
    t0: Instant,
) -> Result<NtsKeOutcome, String> {
    fn e(what: &'static str) -> impl Fn(std::io::Error) -> String {
        move |err| format!("{what}: {err}")
    }
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(e("connect"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(e("timeout"))?;
    stream.set_nodelay(true).map_err(e("nodelay"))?;
    let mut ke = NtsKeClient::new(trust, "localhost", wall_now(), true, mono(t0), 5.0)
        .map_err(|err| format!("NTS-KE client: {err:?}"))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        out.clear();
        ke.write_tls(&mut out);
        if !out.is_empty() {
            stream.write_all(&out).map_err(e("write"))?;
        }
        let n = stream.read(&mut buf).map_err(e("read"))?;
        match ke.read_tls(buf.get(..n).unwrap_or(&[]), mono(t0)) {
            Ok(Some(outcome)) => return Ok(outcome),
            Ok(None) if n == 0 => return Err("server closed early".into()),
            Ok(None) => {}
            Err(err) => return Err(format!("NTS-KE: {err:?}")),
        }
    }
}

/// Handshakes completed and failed by `clients` threads in `duration`.
fn handshakes(
    trust: &Arc<NtsTrust>,
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
) -> (u64, u64) {
    let t0 = crate::sys::monotonic_now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let trust = Arc::clone(trust);
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, 0u64);
                while t0.elapsed() < duration {
                    match key_exchange(&trust, addr, t0) {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            if failed == 0 {
                                eprintln!("NTS-KE with {addr} failed: {e}");
                            }
                            failed += 1;
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    threads
        .into_iter()
        .filter_map(|t| t.join().ok())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

/// One response round against one server.
#[derive(Clone, Copy, Debug, Default)]
struct ResponseRound {
    /// Authentic responses.
    ok: u64,
    /// Lost, rejected or NAKed requests and failed exchanges.
    failed: u64,
    /// Fresh key exchanges during the timed part (cookie jars emptied by losses).
    rekeys: u64,
    /// Server CPU seconds (utime + stime of the daemon's main process, all its threads) from
    /// the moment every thread holds its session to the last thread's end; `None` if
    /// /proc/PID/stat could not be read.
    cpu_seconds: Option<f64>,
    /// Wall-clock seconds of that window.
    wall_seconds: f64,
}

/// A thread's session and socket after its first key exchange.
fn open_session(
    trust: &NtsTrust,
    ke_addr: SocketAddr,
    ntp_addr: SocketAddr,
    t0: Instant,
) -> Option<(NtsSession, UdpSocket)> {
    let outcome = match key_exchange(trust, ke_addr, t0) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("NTS-KE with {ke_addr} failed: {e}");
            return None;
        }
    };
    let session = NtsSession::new(outcome.keys, &outcome.cookies);
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.connect(ntp_addr).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    Some((session, sock))
}

/// Authentic NTS responses and failures (lost, rejected, NAK) by `clients` threads, each
/// with one request in flight, in `duration`, and the server's CPU time meanwhile. Every
/// thread completes its first key exchange before the timed part starts, so the CPU figure
/// is the NTP path's (for chronyd the NTS-KE helper is another process anyway).
fn responses(
    trust: &Arc<NtsTrust>,
    ke_addr: SocketAddr,
    ntp_addr: SocketAddr,
    clients: usize,
    duration: Duration,
    seed: u64,
    server_pid: Option<u32>,
) -> ResponseRound {
    let t0 = crate::sys::monotonic_now();
    let barrier = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let trust = Arc::clone(trust);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || -> (u64, u64, u64) {
                let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
                let opened = open_session(&trust, ke_addr, ntp_addr, t0);
                // Every thread reaches the barrier, with or without a session.
                barrier.wait();
                let Some((mut session, sock)) = opened else {
                    return (0, 1, 0);
                };
                let start = crate::sys::monotonic_now();
                let (mut ok, mut failed, mut rekeys) = (0u64, 0u64, 0u64);
                let mut buf = [0u8; 2048];
                while start.elapsed() < duration {
                    let mut header = [0u8; 48];
                    header[0] = 0x23;
                    rng.fill_bytes(&mut header[40..48]);
                    let Some((packet, uid)) = session.build_request(&header, &mut rng) else {
                        // Cookies used up by lost requests: a fresh exchange.
                        rekeys += 1;
                        match key_exchange(&trust, ke_addr, t0) {
                            Ok(o) => session = NtsSession::new(o.keys, &o.cookies),
                            Err(_) => failed += 1,
                        }
                        continue;
                    };
                    if sock.send(&packet).is_err() {
                        failed += 1;
                        continue;
                    }
                    let verdict = match sock.recv(&mut buf) {
                        Ok(n) => match session.check_response(&buf[..n], &uid) {
                            NtsCheck::Authentic(_) if buf[24..32] == header[40..48] => Ok(()),
                            other => Err(format!("{other:?}")),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    match verdict {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            if failed == 0 {
                                eprintln!("NTS request to {ntp_addr} failed: {e}");
                            }
                            failed += 1;
                        }
                    }
                }
                (ok, failed, rekeys)
            })
        })
        .collect();
    barrier.wait();
    let start = crate::sys::monotonic_now();
    let before = server_pid.and_then(server::cpu_ticks);
    let (ok, failed, rekeys) = threads
        .into_iter()
        .filter_map(|t| t.join().ok())
        .fold((0, 0, 0), |(a, b, c), (d, e, f)| (a + d, b + e, c + f));
    let after = server_pid.and_then(server::cpu_ticks);
    let wall_seconds = start.elapsed().as_secs_f64();
    let tick = crate::sys::clock_ticks_per_second() as f64;
    let cpu_seconds = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / tick),
        _ => None,
    };
    ResponseRound {
        ok,
        failed,
        rekeys,
        cpu_seconds,
        wall_seconds,
    }
}

/// The daemon's PID from the pidfile `server::server_conf` configures (`DIR/NAME.pid`).
fn read_pid(dir: &Path, kind: Kind) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(format!("{}.pid", kind.name()))).ok()?;
    text.trim().parse().ok()
}

/// A self-signed P-256 certificate for localhost/127.0.0.1: (cert, key) paths.
pub(crate) fn make_cert(dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("openssl: {e}"))?;
    if !st.success() {
        return Err(format!("openssl failed: {st}"));
    }
    Ok((cert, key))
}

/// A loopback TCP port in 20000-60000 free now and not in `taken` (the NTS-KE ports of the
/// servers already started: chronyd's listener would take connections meant for the next).
pub(crate) fn free_tcp_port(seed: u64, taken: &[u16]) -> Option<u16> {
    let mut x = seed | 1;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 40000) as u16;
        if !taken.contains(&port)
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("::", port)).is_ok()
        {
            return Some(port);
        }
    }
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the comparison; returns the report and whether every server completed handshakes and
/// authenticated responses (failures are counted in the report).
pub fn run(opts: &NtsOptions) -> Result<(String, bool), String> {
    let dir = server::TempDir::new("gnomon-bench-nts").map_err(|e| e.to_string())?;
    let (cert, key) = make_cert(&dir.0)?;
    let pem = std::fs::read(&cert).map_err(|e| e.to_string())?;
    let trust = Arc::new(NtsTrust::new(&[pem], false).map_err(|e| e.to_string())?);
    let servers: Vec<Kind> = opts
        .base
        .servers
        .iter()
        .copied()
        .filter(|k| *k != Kind::Bare)
        .collect();
    let mut daemons = Vec::new();
    let mut taken = Vec::new();
    for (i, &kind) in servers.iter().enumerate() {
        let ntsport = free_tcp_port(
            (u64::from(std::process::id()) << 16) ^ (0x5eed_0000 + 2 * i as u64),
            &taken,
        )
        .ok_or("no free TCP port")?;
        taken.push(ntsport);
        let mut base = opts.base.clone();
        base.extra_conf.extend([
            format!("ntsservercert {}", cert.display()),
            format!("ntsserverkey {}", key.display()),
            format!("ntsport {ntsport}"),
        ]);
        let sub = dir.0.join(kind.name());
        std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
        let d = server::start(kind, &base, &sub, 0xbe7c_0000 + i as u64)?;
        let ke: SocketAddr = ([127, 0, 0, 1], ntsport).into();
        daemons.push((kind, d, ke, sub));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pids: Vec<Option<u32>> = daemons
        .iter()
        .map(|(kind, _, _, sub)| read_pid(sub, *kind))
        .collect();
    let mut hs: Vec<Vec<f64>> = vec![Vec::new(); daemons.len()];
    let mut rs: Vec<Vec<f64>> = vec![Vec::new(); daemons.len()];
    // Server CPU microseconds per authentic response, and the server's CPU share.
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); daemons.len()];
    let mut share: Vec<Vec<f64>> = vec![Vec::new(); daemons.len()];
    let mut failures = 0u64;
    let mut rekeys = 0u64;
    let secs = opts.base.duration.as_secs_f64();
    for rep in 0..opts.base.reps {
        for j in 0..daemons.len() {
            let i = (j + rep) % daemons.len();
            let (_, d, ke, _) = &daemons[i];
            let (ok, failed) = handshakes(&trust, *ke, opts.clients, opts.base.duration);
            hs[i].push(ok as f64 / secs);
            failures += failed;
            let round = responses(
                &trust,
                *ke,
                d.addr(),
                opts.clients,
                opts.base.duration,
                rep as u64 * 31 + i as u64,
                pids[i],
            );
            rs[i].push(round.ok as f64 / secs);
            failures += round.failed;
            rekeys += round.rekeys;
            if let (Some(c), true) = (round.cpu_seconds, round.ok > 0) {
                cpu[i].push(c * 1e6 / round.ok as f64);
                share[i].push(c / round.wall_seconds.max(1e-9));
            }
        }
    }
    let mut text = format!(
        "NTS on loopback: {} client threads, {} x {:.1} s runs, medians\n\
         {:<10} {:>12} {:>16} {:>12} {:>8} {:>16}\n",
        opts.clients,
        opts.base.reps,
        secs,
        "server",
        "NTS-KE hs/s",
        "NTS responses/s",
        "CPU us/resp",
        "CPU %",
        "1-core resp/s"
    );
    let mut rows = Vec::new();
    for (i, (kind, _, _, _)) in daemons.iter().enumerate() {
        let (h, r) = (median(hs[i].clone()), median(rs[i].clone()));
        let c = (!cpu[i].is_empty()).then(|| median(cpu[i].clone()));
        let sh = median(share[i].clone());
        rows.push((*kind, h, r, c));
        let (cs, shs, one) = match c {
            Some(c) => (
                format!("{c:.2}"),
                format!("{:.0}", sh * 100.0),
                format!("{:.0}", 1e6 / c.max(1e-9)),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        text.push_str(&format!(
            "{:<10} {:>12.0} {:>16.0} {:>12} {:>8} {:>16}\n",
            kind.name(),
            h,
            r,
            cs,
            shs,
            one
        ));
    }
    if let (Some(c), Some(g)) = (
        rows.iter().find(|r| r.0 == Kind::Chronyd),
        rows.iter().find(|r| r.0 == Kind::Gnomond),
    ) {
        text.push_str(&format!(
            "gnomond/chronyd: handshakes {:.2}x, NTS responses {:.2}x",
            g.1 / c.1.max(1e-9),
            g.2 / c.2.max(1e-9)
        ));
        if let (Some(cc), Some(gc)) = (c.3, g.3) {
            text.push_str(&format!(
                ", server CPU per NTS response {:.2}x (one-core rate {:.2}x)",
                gc / cc.max(1e-9),
                cc / gc.max(1e-9)
            ));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "failed handshakes or requests: {failures}; fresh key exchanges during response rounds: \
         {rekeys}\n\
         columns: CPU us/resp = server utime+stime (/proc/PID/stat, main process, all threads, \
         10 ms ticks) per authentic response while the clients ran; CPU % = its share of one \
         core; 1-core resp/s = 1 / CPU us/resp\n"
    ));
    Ok((text, rows.iter().all(|r| r.1 > 0.0 && r.2 > 0.0)))
}
