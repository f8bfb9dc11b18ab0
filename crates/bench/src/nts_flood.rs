//! `gnomon-bench nts-flood`: security catalogue case 30 at full scale (NTS-KE connection
//! exhaustion, RFC 8915 §4 server). gnomond and chronyd run side by side as NTS servers on
//! loopback with the same certificate and configuration; each in turn receives `--silent` TCP
//! connections that never send a ClientHello (opened evenly over the flood phase) and
//! `--slow` connections that send one octet per second of a TLS record header (re-opened when
//! the server cuts them, so the pressure lasts the whole phase), from `--addresses` source
//! addresses 127.1.x.y. Meanwhile a legitimate client on 127.0.0.1 measures NTP answers per
//! second (one request in flight) and NTS-KE handshake success (complete TLS 1.3 exchanges,
//! one at a time). The same client runs before and after the flood; the daemon's RSS (with
//! any helper processes) is sampled before, every second during, and after.
//!
//! Bounded: every phase ends at its deadline, every socket is non-blocking or has a timeout,
//! all flood sockets are owned by `TcpStream`s and closed at the end of the phase, and the
//! count of sockets is capped by the options (RLIMIT_NOFILE of this process is raised to fit).

use crate::nts::{free_tcp_port, key_exchange, make_cert};
use crate::packet::{client_request, parse_reply};
use crate::server::{self, Kind, ServerOptions};
use gnomon_core::nts_client::NtsTrust;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A TLS record header announcing a 16 KiB handshake record, trickled by the slow clients.
const RECORD_HEADER: [u8; 5] = [0x16, 0x03, 0x03, 0x40, 0x00];
/// Descriptors kept free for everything else (daemon pipes, the measuring client, files).
const SPARE_FDS: u64 = 256;

/// Options of `gnomon-bench nts-flood`.
#[derive(Clone, Debug)]
pub struct FloodOptions {
    /// Servers, paths, CPUs, priorities and extra configuration.
    pub base: ServerOptions,
    /// Silent connections per flood (never send anything).
    pub silent: usize,
    /// Slow connections held at once (one octet per second).
    pub slow: usize,
    /// Source addresses 127.1.x.y the flood comes from.
    pub addresses: usize,
    /// Length of the flood phase.
    pub flood: Duration,
    /// Length of the measurement before and after the flood.
    pub quiet: Duration,
}

/// What the legitimate client saw in one phase.
#[derive(Clone, Debug, Default)]
struct ClientFigures {
    seconds: f64,
    ntp_answered: u64,
    ntp_lost: u64,
    ntp_rtt_ms: Vec<f64>,
    ke_ok: u64,
    ke_failed: u64,
    ke_ms: Vec<f64>,
}

/// What became of the flood's connections, counted at the end of the phase.
#[derive(Clone, Debug, Default)]
struct FloodFigures {
    silent_opened: u64,
    silent_held: u64,
    silent_closed: u64,
    silent_pending: u64,
    silent_failed: u64,
    slow_opened: u64,
    slow_cut: u64,
    octets_sent: u64,
    open_failed: u64,
}

/// One daemon's results.
struct DaemonFigures {
    kind: Kind,
    before: ClientFigures,
    during: ClientFigures,
    after: ClientFigures,
    flood: FloodFigures,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// Where a flood connection stands now (non-blocking look).
enum State {
    /// Established, not closed by the server.
    Held,
    /// Closed by the server (EOF or reset).
    Closed,
    /// Not accepted yet (SYN pending, e.g. a full backlog).
    Pending,
    /// Failed to connect.
    Failed,
}

fn state(s: &TcpStream) -> State {
    let mut b = [0u8; 256];
    let mut r = s;
    match r.read(&mut b) {
        Ok(0) => State::Closed,
        Ok(_) => State::Held,
        Err(e) if e.kind() == ErrorKind::WouldBlock => match s.peer_addr() {
            Ok(_) => State::Held,
            Err(_) => State::Pending,
        },
        Err(e) if e.kind() == ErrorKind::ConnectionReset => State::Closed,
        Err(_) => State::Failed,
    }
}

/// The `i`-th flood source address: 127.1.0.1, 127.1.0.2, … (250 per third octet).
fn source(i: usize, addresses: usize) -> Ipv4Addr {
    let i = i % addresses.max(1);
    Ipv4Addr::new(
        127,
        1 + (i / 62_500) as u8,
        ((i / 250) % 250) as u8,
        (i % 250) as u8 + 1,
    )
}

/// Resident set size of `pid` plus its child processes (chronyd's NTS-KE helpers), KiB.
fn rss_tree_kib(pid: u32) -> u64 {
    let mut total = server::rss_kib(pid).unwrap_or(0);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // Field 4 (ppid) follows the parenthesised command name.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat.get(i + 1..))
                .and_then(|rest| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pid) {
                total += server::rss_kib(child).unwrap_or(0);
            }
        }
    }
    total
}

/// The legitimate client for `length`: one thread with one NTP request in flight, one running
/// NTS-KE exchanges back to back (50 ms apart). Stops early when `stop` is set.
fn legitimate_client(
    trust: &Arc<NtsTrust>,
    ntp: SocketAddr,
    ke: SocketAddr,
    length: Duration,
    stop: &Arc<AtomicBool>,
) -> ClientFigures {
    let t0 = crate::sys::monotonic_now();
    let (trust2, stop2) = (Arc::clone(trust), Arc::clone(stop));
    let ke_thread = std::thread::spawn(move || {
        let (mut ok, mut failed, mut ms) = (0u64, 0u64, Vec::new());
        while t0.elapsed() < length && !stop2.load(Ordering::Relaxed) {
            let start = crate::sys::monotonic_now();
            match key_exchange(&trust2, ke, t0) {
                Ok(_) => {
                    ok += 1;
                    ms.push(start.elapsed().as_secs_f64() * 1e3);
                }
                Err(_) => failed += 1,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (ok, failed, ms)
    });
    let mut f = ClientFigures::default();
    if let Ok(sock) = UdpSocket::bind("127.0.0.1:0") {
        let ready = sock.connect(ntp).is_ok()
            && sock
                .set_read_timeout(Some(Duration::from_millis(200)))
                .is_ok();
        let mut nonce = 0x5eed_0000_0000_0001u64 ^ u64::from(ntp.port());
        let mut buf = [0u8; 1024];
        while ready && t0.elapsed() < length && !stop.load(Ordering::Relaxed) {
            nonce = nonce
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let start = crate::sys::monotonic_now();
            if sock.send(&client_request(nonce)).is_err() {
                f.ntp_lost += 1;
                continue;
            }
            // Bounded: each recv returns a datagram or times out after 200 ms.
            let mut answered = false;
            for _ in 0..8 {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        if let Ok(r) = parse_reply(buf.get(..n).unwrap_or(&[])) {
                            if r.origin_timestamp.0 == nonce {
                                answered = true;
                                break;
                            }
                        }
                    }
                    Err(_) => break,
                }
            }
            if answered {
                f.ntp_answered += 1;
                f.ntp_rtt_ms.push(start.elapsed().as_secs_f64() * 1e3);
            } else {
                f.ntp_lost += 1;
            }
        }
    }
    if let Ok((ok, failed, ms)) = ke_thread.join() {
        f.ke_ok = ok;
        f.ke_failed = failed;
        f.ke_ms = ms;
    }
    f.seconds = t0.elapsed().as_secs_f64();
    f
}

/// Floods `ke` for `opts.flood` while the legitimate client measures; samples RSS each second.
fn flood(
    opts: &FloodOptions,
    trust: &Arc<NtsTrust>,
    ntp: SocketAddr,
    ke: SocketAddr,
    pid: u32,
) -> (FloodFigures, ClientFigures, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (trust2, stop2, length) = (Arc::clone(trust), Arc::clone(&stop), opts.flood);
    let client = std::thread::spawn(move || legitimate_client(&trust2, ntp, ke, length, &stop2));
    let mut fig = FloodFigures::default();
    let mut silent: Vec<TcpStream> = Vec::with_capacity(opts.silent);
    // Slow connections: the stream and how many octets it has sent.
    let mut slow: Vec<(TcpStream, usize)> = Vec::with_capacity(opts.slow);
    let mut next_source = 0usize;
    let mut rss_peak = rss_tree_kib(pid);
    let t0 = crate::sys::monotonic_now();
    let mut next_tick = Duration::ZERO;
    let open = |next: &mut usize, fig: &mut FloodFigures| -> Option<TcpStream> {
        let src = source(*next, opts.addresses);
        *next += 1;
        match crate::sys::connect_from(src, ke) {
            Ok(s) => Some(s),
            Err(_) => {
                fig.open_failed += 1;
                None
            }
        }
    };
    while t0.elapsed() < opts.flood {
        let elapsed = t0.elapsed();
        // Silent connections due by now, evenly over the phase.
        let due = ((elapsed.as_secs_f64() / opts.flood.as_secs_f64()) * opts.silent as f64)
            .ceil()
            .min(opts.silent as f64) as usize;
        while silent.len() + (fig.open_failed as usize) < due && fig.open_failed < 1000 {
            if let Some(s) = open(&mut next_source, &mut fig) {
                silent.push(s);
                fig.silent_opened += 1;
            }
        }
        if elapsed >= next_tick {
            next_tick += Duration::from_secs(1);
            // Each slow connection sends its next octet; one the server cut is replaced.
            for (s, sent) in slow.iter_mut() {
                let octet = RECORD_HEADER.get(*sent).copied().unwrap_or(0);
                let cut = match (&*s).write(&[octet]) {
                    Ok(_) => {
                        *sent += 1;
                        fig.octets_sent += 1;
                        matches!(state(s), State::Closed | State::Failed)
                    }
                    Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected),
                };
                if cut {
                    fig.slow_cut += 1;
                    if let Some(n) = open(&mut next_source, &mut fig) {
                        *s = n;
                        *sent = 0;
                        fig.slow_opened += 1;
                    }
                }
            }
            while slow.len() < opts.slow && fig.open_failed < 1000 {
                match open(&mut next_source, &mut fig) {
                    Some(s) => {
                        slow.push((s, 0));
                        fig.slow_opened += 1;
                    }
                    None => break,
                }
            }
            rss_peak = rss_peak.max(rss_tree_kib(pid));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for s in &silent {
        match state(s) {
            State::Held => fig.silent_held += 1,
            State::Closed => fig.silent_closed += 1,
            State::Pending => fig.silent_pending += 1,
            State::Failed => fig.silent_failed += 1,
        }
    }
    rss_peak = rss_peak.max(rss_tree_kib(pid));
    // Every flood socket closes here.
    drop(silent);
    drop(slow);
    let during = client.join().unwrap_or_default();
    (fig, during, rss_peak)
}

/// The daemon's PID from the pidfile `server_conf` configures.
fn pid_of(dir: &Path, kind: Kind) -> Result<u32, String> {
    let p = dir.join(format!("{}.pid", kind.name()));
    std::fs::read_to_string(&p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(format!("no PID in {}", p.display()))
}

fn client_row(name: &str, phase: &str, c: &mut ClientFigures) -> String {
    let secs = c.seconds.max(1e-9);
    let tried = c.ke_ok + c.ke_failed;
    format!(
        "{:<9} {:<7} {:>10.0} {:>7} {:>8.3} {:>8.3} {:>9} {:>9.1}\n",
        name,
        phase,
        c.ntp_answered as f64 / secs,
        c.ntp_lost,
        percentile(&mut c.ntp_rtt_ms, 0.5),
        percentile(&mut c.ntp_rtt_ms, 0.99),
        format!("{}/{}", c.ke_ok, tried),
        percentile(&mut c.ke_ms, 0.5),
    )
}

/// Runs the flood against each server in turn; returns the report and whether every server
/// kept answering NTP during its flood and served handshakes after it.
pub fn run(opts: &FloodOptions) -> Result<(String, bool), String> {
    let need = (opts.silent + 2 * opts.slow) as u64 + SPARE_FDS;
    let have = crate::sys::raise_nofile(need);
    if have < need {
        return Err(format!(
            "RLIMIT_NOFILE allows {have} descriptors, the flood needs {need}"
        ));
    }
    let dir = server::TempDir::new("gnomon-bench-nts-flood").map_err(|e| e.to_string())?;
    let (cert, key) = make_cert(&dir.0)?;
    let pem = std::fs::read(&cert).map_err(|e| e.to_string())?;
    let trust = Arc::new(NtsTrust::new(&[pem], false).map_err(|e| e.to_string())?);
    let mut daemons = Vec::new();
    let mut taken = Vec::new();
    for (i, &kind) in opts.base.servers.iter().enumerate() {
        if kind == Kind::Bare {
            continue;
        }
        let ntsport = free_tcp_port(
            (u64::from(std::process::id()) << 16) ^ (0xf100_d000 + 2 * i as u64),
            &taken,
        )
        .ok_or("no free TCP port")?;
        taken.push(ntsport);
        let mut base = opts.base.clone();
        base.extra_conf.extend([
            "allow 127.0.0.0/8".to_string(),
            format!("ntsservercert {}", cert.display()),
            format!("ntsserverkey {}", key.display()),
            format!("ntsport {ntsport}"),
        ]);
        let sub = dir.0.join(kind.name());
        std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
        let d = server::start(kind, &base, &sub, 0xf100_0000 + i as u64)?;
        let pid = pid_of(&sub, kind)?;
        daemons.push((kind, d, SocketAddr::from(([127, 0, 0, 1], ntsport)), pid));
    }
    std::thread::sleep(Duration::from_millis(500));
    let never = Arc::new(AtomicBool::new(false));
    let mut results = Vec::new();
    for (kind, d, ke, pid) in &daemons {
        let rss_before = rss_tree_kib(*pid);
        let before = legitimate_client(&trust, d.addr(), *ke, opts.quiet, &never);
        let (flood_fig, during, rss_peak) = flood(opts, &trust, d.addr(), *ke, *pid);
        // The server's 2 s deadlines end what the flood left behind.
        std::thread::sleep(Duration::from_secs(3));
        let after = legitimate_client(&trust, d.addr(), *ke, opts.quiet, &never);
        let rss_after = rss_tree_kib(*pid);
        results.push(DaemonFigures {
            kind: *kind,
            before,
            during,
            after,
            flood: flood_fig,
            rss_before,
            rss_peak,
            rss_after,
        });
    }
    drop(daemons);
    Ok(report(opts, &mut results))
}

fn report(opts: &FloodOptions, results: &mut [DaemonFigures]) -> (String, bool) {
    let mut text = format!(
        "NTS-KE flood on loopback: {} silent connections over {:.0} s + {} slow (1 octet/s, \
         re-opened when cut) from {} addresses 127.1.x.y; legitimate client on 127.0.0.1 \
         ({:.0} s before and after)\n\
         {:<9} {:<7} {:>10} {:>7} {:>8} {:>8} {:>9} {:>9}\n",
        opts.silent,
        opts.flood.as_secs_f64(),
        opts.slow,
        opts.addresses,
        opts.quiet.as_secs_f64(),
        "server",
        "phase",
        "NTP ans/s",
        "lost",
        "rtt50 ms",
        "rtt99 ms",
        "KE ok/n",
        "KE50 ms"
    );
    let mut ok = true;
    for r in results.iter_mut() {
        let name = r.kind.name();
        text.push_str(&client_row(name, "before", &mut r.before));
        text.push_str(&client_row(name, "flood", &mut r.during));
        text.push_str(&client_row(name, "after", &mut r.after));
        ok &= r.during.ntp_answered > 0 && r.after.ke_ok > 0;
    }
    for r in results.iter() {
        let f = &r.flood;
        text.push_str(&format!(
            "{}: silent opened {} (at the end: held {}, closed by server {}, not accepted {}, \
             failed {}); slow opened {} (cut by server {}, {} octets sent); open errors {}\n\
             {}: RSS {} KiB before, peak {} KiB (+{}), {} KiB after\n",
            r.kind.name(),
            f.silent_opened,
            f.silent_held,
            f.silent_closed,
            f.silent_pending,
            f.silent_failed,
            f.slow_opened,
            f.slow_cut,
            f.octets_sent,
            f.open_failed,
            r.kind.name(),
            r.rss_before,
            r.rss_peak,
            r.rss_peak.saturating_sub(r.rss_before),
            r.rss_after
        ));
    }
    (text, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_sources_are_distinct_loopback_addresses() {
        let n = 70_000;
        let all: std::collections::HashSet<Ipv4Addr> = (0..n).map(|i| source(i, n)).collect();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|a| a.is_loopback() && a.octets()[3] != 0));
        assert!(!all.contains(&Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(source(5, 4), source(1, 4));
    }

    #[test]
    fn percentile_picks_nearest_rank() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(percentile(&mut v, 0.5), 3.0);
        assert_eq!(percentile(&mut v, 1.0), 5.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }
}
