//! The Prometheus metrics endpoint of a running gnomond (`metricsport`): scraped over
//! loopback, linted by Debian's `promtool check metrics`, its counters checked against the
//! requests the test sent, and scraped by a real Debian `prometheus` (target health "up").
//! promtool and prometheus come from Debian's `prometheus` package
//! (`shared/tools/install-peers.sh prometheus`); the tests fail when they are missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{query, require_tool, run_bounded, run_gnomond, Daemon, TempDir};

/// A TCP port in 20000–60000 free on 127.0.0.1 right now.
fn free_tcp_port() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for i in 0..200u64 {
        let port = 20_000
            + ((seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i * 7919))
                % 40_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port found");
}

/// One HTTP/1.1 request; returns (status code, head, body). Bounded by timeouts.
fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    (code, head.to_string(), body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: gnomon-test\r\nConnection: close\r\n\r\n"),
    )
}

/// The value of the unlabelled sample `name` in an exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// Pipes `text` into `promtool check metrics`; returns (exit code, stdout + stderr).
fn promtool_check(text: &str) -> (Option<i32>, String) {
    let promtool = require_tool("promtool");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), msg)
}

fn start_with_metrics(extra: &str) -> (Daemon, SocketAddr) {
    let port = free_tcp_port();
    let d = Daemon::start(&format!("allow 127.0.0.1\nmetricsport {port}\n{extra}"));
    (d, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn scrape_passes_promtool_and_counts_the_requests_served() {
    let (d, metrics) = start_with_metrics("");
    let (code, head, before) = get(metrics, "/metrics");
    assert_eq!(code, 200, "{head}\n{}", d.stderr());
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (status, lint) = promtool_check(&before);
    assert_eq!(status, Some(0), "promtool check metrics:\n{lint}\n{before}");

    let received = "chrony_serverstats_ntp_packets_received_total";
    let base = sample(&before, received);
    let n = 7;
    for i in 0..n {
        assert!(
            query(d.addr_v4(), Duration::from_secs(2)).is_some(),
            "request {i} unanswered"
        );
    }
    let (_, _, after) = get(metrics, "/metrics");
    assert_eq!(sample(&after, received), base + f64::from(n), "{after}");
    assert_eq!(sample(&after, "chrony_up"), 1.0);
    assert_eq!(
        sample(&after, "chrony_serverstats_ntp_packets_dropped_total"),
        0.0
    );
    // Not synchronised: no reference, stratum 0; no sources yet.
    assert!(after.contains("tracking_refid=\"00000000\""), "{after}");
    assert_eq!(sample(&after, "chrony_tracking_stratum"), 0.0);
    assert_eq!(sample(&after, "chrony_tracking_remote_reference"), 0.0);
    assert!(!after.contains("chrony_sources_stratum{"), "{after}");
    // Every timestamp of the served requests is counted on one of the paths.
    let rx = sample(&after, "chrony_serverstats_ntp_kernel_rx_timestamps_total")
        + sample(&after, "chrony_serverstats_ntp_daemon_rx_timestamps_total");
    assert_eq!(rx, sample(&after, received));
    let (status, lint) = promtool_check(&after);
    assert_eq!(status, Some(0), "promtool check metrics:\n{lint}\n{after}");
}

#[test]
fn local_reference_shows_in_tracking() {
    let (_d, metrics) = start_with_metrics("local stratum 8\n");
    let (code, _, text) = get(metrics, "/metrics");
    assert_eq!(code, 200);
    assert!(text.contains("tracking_refid=\"7F7F0101\""), "{text}");
    assert_eq!(sample(&text, "chrony_tracking_stratum"), 8.0);
    assert_eq!(sample(&text, "chrony_tracking_remote_reference"), 0.0);
}

#[test]
fn only_get_of_metrics_is_served_and_ntp_keeps_working_with_idle_clients() {
    let (d, metrics) = start_with_metrics("");
    assert_eq!(get(metrics, "/").0, 404);
    assert_eq!(get(metrics, "/metricsx").0, 404);
    let (code, head, _) = http(
        metrics,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(code, 405);
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    let (code, _, body) = http(metrics, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((code, body.as_str()), (200, ""));
    assert_eq!(http(metrics, "hello\r\n\r\n").0, 400);

    // Idle clients holding every connection slot (and more in the backlog) delay neither NTP
    // nor, once they time out, the next scrape.
    let idle: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(metrics).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let t = Instant::now();
        assert!(query(d.addr_v4(), Duration::from_secs(1)).is_some());
        assert!(t.elapsed() < Duration::from_secs(1));
    }
    let start = Instant::now();
    let (code, _, _) = get(metrics, "/metrics");
    assert_eq!(code, 200);
    // 12 idle connections beyond 8 slots: two deadline rounds at most (5 s each), bounded.
    assert!(start.elapsed() < Duration::from_secs(15));
    drop(idle);
}

#[test]
fn a_non_loopback_bind_address_is_refused_unless_allowed() {
    let dir = TempDir::new("metrics-nonlocal");
    let conf = dir.join("g.conf");
    std::fs::write(
        &conf,
        format!(
            "port 0\ncmdport 0\nbindcmdaddress /\npidfile {}\nmetricsport {}\nbindmetricsaddress 192.0.2.1\n",
            dir.join("g.pid").display(),
            free_tcp_port()
        ),
    )
    .unwrap();
    let out = run_gnomond(&[
        "-x",
        "-d",
        "-u",
        "root",
        "-t",
        "1",
        "-f",
        conf.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bindmetricsaddress 192.0.2.1 is not a loopback address")
            && stderr.contains("metricsallownonlocal"),
        "{stderr}"
    );
}

/// A real prometheus, killed by PID on drop (its temporary directory goes with the guard).
struct Prometheus {
    child: Child,
    dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

#[test]
fn a_real_prometheus_scrapes_gnomond_with_target_health_up() {
    let prometheus = require_tool("prometheus");
    let (d, metrics) = start_with_metrics("");
    let dir = TempDir::new("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: gnomond\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let check = run_bounded(
        Command::new(require_tool("promtool"))
            .args(["check", "config"])
            .arg(&config),
        Duration::from_secs(20),
    );
    assert!(check.status.success(), "{check:?}");
    let web = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let p = Prometheus { child, dir };

    let start = Instant::now();
    let mut last = String::new();
    let mut up = false;
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(s) = TcpStream::connect_timeout(&web, Duration::from_millis(200)) {
            drop(s);
            let (code, _, body) = get(web, "/api/v1/targets");
            if code == 200 {
                if body.contains("\"health\":\"up\"") {
                    last = body;
                    up = true;
                    break;
                }
                last = body;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        up,
        "target never up within 20 s; last /api/v1/targets: {last}\nprometheus log:\n{}\ngnomond:\n{}",
        p.log(),
        d.stderr()
    );
    assert!(last.contains("\"lastError\":\"\""), "{last}");
    assert!(
        last.contains(&format!("\"scrapeUrl\":\"http://{metrics}/metrics\"")),
        "{last}"
    );

    // And the scraped samples are queryable.
    let (code, _, body) = get(web, "/api/v1/query?query=chrony_up");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"__name__\":\"chrony_up\""), "{body}");
    assert!(body.contains("\"1\"]"), "{body}");
}

/// With a source, the engine's sources and tracking reach the endpoint: the families that
/// were empty before the synchronisation engine existed now carry the upstream.
#[test]
fn sources_and_tracking_of_a_synchronised_daemon_are_exported() {
    let upstream = Daemon::start("allow 127.0.0.1\nlocal stratum 7");
    let (d, metrics) = start_with_metrics(&format!(
        "server 127.0.0.1 port {} iburst minpoll -2 maxpoll -2",
        upstream.port
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (_, _, body) = get(metrics, "/metrics");
        if sample(&body, "chrony_tracking_stratum") == 8.0 || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        sample(&body, "chrony_tracking_stratum"),
        8.0,
        "{body}\n{}",
        d.stderr()
    );
    let stratum = body
        .lines()
        .find(|l| l.starts_with("chrony_sources_stratum{"))
        .unwrap_or_else(|| panic!("no source in the export:\n{body}"));
    assert!(stratum.contains("127.0.0.1"), "{stratum}");
    assert!(stratum.trim_end().ends_with(" 7"), "{stratum}");
    assert!(body.contains("chrony_sourcestats_samples{"), "{body}");
    let (status, lint) = promtool_check(&body);
    assert_eq!(status, Some(0), "promtool check metrics:\n{lint}\n{body}");
}
