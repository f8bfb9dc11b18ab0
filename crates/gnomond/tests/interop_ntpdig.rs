//! Interop with ntpsec's ntpdig, which only talks to port 123: gnomond serves on port 123 inside
//! a network namespace of its own (`ip netns add gnomon-test-<random>`, loopback up), and
//! `ntpdig -j` inside the same namespace must get a valid answer. The daemon runs with `-x`
//! under noclock; the namespace is deleted at the end even when the test fails. A missing
//! ntpdig or ip is a failure, never a skip.

// Tests may unwrap, and whole-daemon tests read the real clock to bound their waits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{gnomond_bin, noclock, require_tool, run_bounded, TempDir};

/// A network namespace deleted on drop, after the daemon inside it is killed.
struct Netns {
    name: String,
    daemon: Option<Child>,
}

impl Netns {
    fn new() -> Netns {
        let ip = require_tool("ip");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("gnomon-test-{}-{nanos}", std::process::id());
        let st = Command::new(&ip)
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name} failed (needs root)");
        let ns = Netns { name, daemon: None };
        let st = Command::new(&ip)
            .args(["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(st.success(), "could not bring lo up in {}", ns.name);
        ns
    }

    /// A command that runs `program args…` inside the namespace.
    fn exec(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new(require_tool("ip"));
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // `ip netns exec` execs the program, so the child's PID is the daemon's.
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A field of ntpdig's one-line JSON, as raw text.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = &json[json.find(&pat)? + pat.len()..];
    let end = rest.find([',', '}'])?;
    Some(rest[..end].trim_matches('"'))
}

#[test]
fn json_field_reads_ntpdig_output() {
    let j = concat!(
        r#"{"time":"2026-11-22T03:11:20.151072+0000","offset":0.000022,"#,
        r#""stratum":10,"leap":"no-leap"}"#
    );
    assert_eq!(json_field(j, "offset"), Some("0.000022"));
    assert_eq!(json_field(j, "stratum"), Some("10"));
    assert_eq!(json_field(j, "leap"), Some("no-leap"));
}

#[test]
fn ntpdig_gets_a_valid_answer_on_port_123_in_a_namespace() {
    let ntpdig = require_tool("ntpdig");
    let mut ns = Netns::new();
    let dir = TempDir::new("ntpdig");
    let conf = dir.join("gnomond.conf");
    std::fs::write(
        &conf,
        format!(
            "port 123\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 10\ncmdport 0\n\
             pidfile {}\n",
            dir.join("gnomond.pid").display()
        ),
    )
    .unwrap();
    let log = dir.join("gnomond.log");
    let child = ns
        .exec(&noclock())
        .arg(gnomond_bin())
        .args(["-x", "-d", "-u", "root", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    ns.daemon = Some(child);
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        let out = run_bounded(
            ns.exec(&ntpdig).args(["-j", "-t", "1", "127.0.0.1"]),
            Duration::from_secs(5),
        );
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            let json = last.lines().find(|l| l.starts_with('{')).unwrap_or("");
            let stratum: u8 = json_field(json, "stratum").unwrap().parse().unwrap();
            assert!((1..16).contains(&stratum), "stratum {stratum}: {json}");
            assert_eq!(json_field(json, "ip"), Some("127.0.0.1"), "{json}");
            assert_ne!(json_field(json, "leap"), Some("unsync"), "{json}");
            let offset: f64 = json_field(json, "offset").unwrap().parse().unwrap();
            assert!(offset.abs() < 0.01, "offset {offset}: {json}");
            return;
        }
        if let Some(Ok(Some(st))) = ns.daemon.as_mut().map(Child::try_wait) {
            panic!(
                "gnomond exited ({st}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "ntpdig got no valid answer in 15 s; last output:\n{last}\ngnomond log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
