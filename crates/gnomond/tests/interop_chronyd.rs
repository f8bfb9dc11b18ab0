//! Interop with the real chronyd 4.3: as a one-shot client (`chronyd -Q`) measuring our offset,
//! as a running client (`chronyd -x`) that must select gnomond as its synchronisation source
//! (checked with `chronyc sources`), and as the reference for `ratelimit` (the same burst pattern
//! sent to chronyd and to gnomond must be answered the same number of times, within 10 %).
//! Every daemon runs with `-x` under noclock on its own random loopback ports. Missing chronyd
//! or chronyc is a failure, never a skip.

// Tests may unwrap, and whole-daemon tests read the real clock to bound their waits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{
    client_request, free_udp_port, noclock, require_tool, run_bounded, wait_answers, Chronyd,
    Daemon, TempDir,
};

/// The configuration every gnomond here serves with: a local reference, so it looks
/// synchronised (stratum < 16, leap != 3) to chronyd's client code.
const SERVE: &str = "bindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 10\ncmdport 0";

/// Parses "System clock wrong by -0.000002 seconds" from chronyd -Q's output.
fn offset_from_q_output(text: &str) -> Option<f64> {
    let rest = &text[text.find("System clock wrong by ")? + "System clock wrong by ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn offset_parser_reads_chronyd_q_line() {
    let line = "2026-11-22T03:11:08Z System clock wrong by -0.000002 seconds (ignored)";
    assert_eq!(offset_from_q_output(line), Some(-0.000002));
    assert_eq!(offset_from_q_output("chronyd exiting"), None);
}

#[test]
fn chronyd_q_measures_gnomond_offset_below_one_millisecond() {
    let chronyd = require_tool("chronyd");
    let d = Daemon::start(SERVE);
    let dir = TempDir::new("chronyd-q");
    let out = run_bounded(
        Command::new(noclock())
            .arg(chronyd)
            .args(["-x", "-Q", "-t", "10", "-u", "root"])
            .arg(format!("pidfile {}", dir.join("q.pid").display()))
            .arg(format!("server 127.0.0.1 port {} iburst", d.port)),
        Duration::from_secs(20),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "chronyd -Q failed ({}):\n{text}",
        out.status
    );
    let offset = offset_from_q_output(&text).unwrap_or_else(|| panic!("no offset in:\n{text}"));
    assert!(offset.abs() < 1e-3, "|offset| {offset} s >= 1 ms:\n{text}");
}

/// chronyc's `sources` line for `127.0.0.1`, if any.
fn sources_line(chronyc: &std::path::Path, cmdport: u16) -> Option<String> {
    let out = run_bounded(
        Command::new(chronyc)
            .args(["-h", "127.0.0.1", "-p"])
            .arg(cmdport.to_string())
            .args(["-n", "sources"]),
        Duration::from_secs(5),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("127.0.0.1"))
        .map(str::to_string)
}

#[test]
fn chronyd_client_selects_gnomond_as_its_source() {
    let chronyc = require_tool("chronyc");
    let d = Daemon::start(SERVE);
    let cmdport = free_udp_port();
    // Polling every 1/16 s (minpoll/maxpoll -4) with iburst: a few samples in well under a
    // second, which is all selection needs from a single source.
    let client = Chronyd::start(&format!(
        "server 127.0.0.1 port {} iburst minpoll -4 maxpoll -4\nport 0\n\
         cmdport {cmdport}\nbindcmdaddress 127.0.0.1",
        d.port
    ));
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(20) {
        last = sources_line(&chronyc, cmdport);
        if last.as_deref().is_some_and(|l| l.starts_with("^*")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let line = last.unwrap_or_default();
    assert!(
        line.starts_with("^*"),
        "chronyd did not select gnomond: sources line {line:?}\nchronyd log:\n{}\ngnomond log:\n{}",
        client.output(),
        d.stderr()
    );
    // tracking names it as the reference.
    let out = run_bounded(
        Command::new(&chronyc)
            .args(["-h", "127.0.0.1", "-p"])
            .arg(cmdport.to_string())
            .args(["-n", "tracking"]),
        Duration::from_secs(5),
    );
    let tracking = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        tracking.contains("Reference ID    : 7F000001 (127.0.0.1)"),
        "{tracking}"
    );
}

/// Sends `count` requests to each server, one every `gap`, interleaved so that scheduling
/// noise hits both alike, from one socket per server (one client IP and port, as chronyd's
/// limiter sees it); returns how many valid replies each got.
fn burst_counts(servers: &[SocketAddr], count: usize, gap: Duration) -> Vec<usize> {
    let socks: Vec<UdpSocket> = servers
        .iter()
        .map(|s| {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.connect(s).unwrap();
            u.set_nonblocking(true).unwrap();
            u
        })
        .collect();
    let mut sent: Vec<Vec<[u8; 8]>> = vec![Vec::new(); servers.len()];
    let mut got = vec![0usize; servers.len()];
    let mut buf = [0u8; 1024];
    let mut drain = |got: &mut Vec<usize>, sent: &Vec<Vec<[u8; 8]>>| {
        for (i, s) in socks.iter().enumerate() {
            while let Ok(n) = s.recv(&mut buf) {
                if n >= 48 && buf[0] & 7 == 4 && sent[i].iter().any(|t| buf[24..32] == *t) {
                    got[i] += 1;
                }
            }
        }
    };
    let start = Instant::now();
    for k in 0..count {
        // Paced against the start, so a late wake-up does not stretch the whole pattern.
        let due = gap * k as u32;
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        for (i, s) in socks.iter().enumerate() {
            let tx = ((k as u64) << 32 | 0x5a5a_0000 | i as u64).to_be_bytes();
            sent[i].push(tx);
            s.send(&client_request(tx)).unwrap();
        }
        drain(&mut got, &sent);
    }
    std::thread::sleep(Duration::from_millis(300));
    drain(&mut got, &sent);
    got
}

#[test]
fn rate_limit_answers_as_many_as_chronyd_within_ten_percent() {
    // 16 responses/s with a burst of 4 and the smallest leak (1 in 16), against 32 requests/s
    // for 5 s: about 4 + 80 + 76/16 ≈ 89 answers of 160, most of them decided by the interval,
    // so the random leak moves the total by only a few.
    let limit = "ratelimit interval -4 burst 4 leak 4";
    let cport = free_udp_port();
    let chronyd = Chronyd::start(&format!(
        "port {cport}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 10\ncmdport 0\n{limit}"
    ));
    let caddr: SocketAddr = ([127, 0, 0, 1], cport).into();
    wait_answers(caddr, Duration::from_secs(10), "chronyd");
    let d = Daemon::start(&format!("{SERVE}\n{limit}"));
    // Let both limiters forget the readiness probes.
    std::thread::sleep(Duration::from_secs(1));
    let count = 160;
    let got = burst_counts(&[caddr, d.addr_v4()], count, Duration::from_micros(31_250));
    let (c, g) = (got[0] as f64, got[1] as f64);
    eprintln!("of {count} requests: chronyd answered {c}, gnomond {g}");
    assert!(
        c > 40.0 && c < 0.8 * count as f64,
        "chronyd itself was not rate limiting as expected ({c} of {count}):\n{}",
        chronyd.output()
    );
    assert!(
        (g - c).abs() <= 0.1 * c,
        "gnomond answered {g}, chronyd {c} (of {count}): more than 10 % apart"
    );
}
