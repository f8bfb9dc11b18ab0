//! gnomonc's Nagios check agrees with the real `check_ntp_time` (Debian monitoring-plugins)
//! on the same server.
//!
//! The two tools measure the same thing from different ends: check_ntp_time sends an SNTP
//! query to gnomond's NTP port and reports the offset of the server's time from this host's
//! clock; `gnomonc check` asks gnomond over cmdmon how far its clock is from its reference (here
//! a real `chronyd -x` with `local stratum 8`, which gnomond has selected). Both offsets must be
//! the tiny loopback offsets (under 5 ms, within 5 ms of each other), and for the same `-w`/`-c`
//! thresholds both must give the same state and exit code: OK (0) with 0.05/0.2, WARNING (1)
//! with 1e-9/1, CRITICAL (2) with 1e-9/2e-9, CRITICAL (2) when nothing answers. The status text
//! starts the same way (`NTP OK: Offset N secs` with N printed as `%.10g`) and the offset
//! perfdata has check_ntp_time's format, `offset=%fs;%f;%f;`, with identical thresholds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::panic
)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn noclock() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/noclock");
    for p in [beside, PathBuf::from("/work/shared/tools/noclock")] {
        if p.is_file() {
            return p;
        }
    }
    panic!("shared/tools/noclock not found: refusing to start a time daemon without it");
}

fn require_tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run shared/tools/install-peers.sh (this test never skips)");
}

/// gnomond from the same target directory as this test binary (`TARGET/debug/deps/x` →
/// `TARGET/debug/gnomond`), built with `cargo build -p gnomond` into that directory if absent.
fn gnomond_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = profile_dir.join("gnomond");
    if !bin.is_file() {
        let target_dir = profile_dir.parent().unwrap();
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "gnomond"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cannot run cargo to build gnomond");
        assert!(
            status.success(),
            "`cargo build -p gnomond` failed: {status}"
        );
        assert!(bin.is_file(), "cargo built gnomond but {bin:?} is missing");
    }
    bin
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A UDP port in 20000–60000 free on 127.0.0.1 and [::1] right now.
fn free_udp_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + (seed() % 40_000) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("::1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP port found");
}

/// Temporary directory and daemons, killed by PID and removed on drop even when a test fails.
struct Lab {
    dir: PathBuf,
    children: Vec<Child>,
    /// gnomond's NTP port.
    port: u16,
    cmdport: u16,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn spawn(&mut self, program: &Path, conf: &Path, log: &str) {
        let out = std::fs::File::create(self.dir.join(log)).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(noclock())
            .arg(program)
            .args(["-x", "-d", "-u", "root", "-f"])
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// chronyd (`local stratum 8`) as the source, gnomond as its client with a command port
    /// and a Unix command socket.
    fn start() -> Lab {
        let dir = std::env::temp_dir().join(format!(
            "gnomonc-against-gnomond-{}-{}",
            std::process::id(),
            seed() % 1_000_000
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let server_port = free_udp_port();
        let port = free_udp_port();
        let cmdport = free_udp_port();
        // The daemon creates the socket's directory itself (with chronyd's permissions).
        let socket = dir.join("run/gnomond.sock");
        let mut lab = Lab {
            dir: dir.clone(),
            children: Vec::new(),
            port,
            cmdport,
        };
        let chronyd_conf = dir.join("chronyd.conf");
        std::fs::write(
            &chronyd_conf,
            format!(
                "port {server_port}\ncmdport 0\nlocal stratum 8\nallow 127.0.0.1\npidfile {}\n",
                dir.join("chronyd.pid").display()
            ),
        )
        .unwrap();
        lab.spawn(&require_tool("chronyd"), &chronyd_conf, "chronyd.log");
        let gnomond_conf = dir.join("gnomond.conf");
        std::fs::write(
            &gnomond_conf,
            format!(
                "port {port}\ncmdport {cmdport}\nbindcmdaddress {}\npidfile {}\nlocal stratum 8\n\
                 allow 127.0.0.1\nserver 127.0.0.1 port {server_port} iburst minpoll -2 maxpoll -2\n",
                socket.display(),
                dir.join("gnomond.pid").display()
            ),
        )
        .unwrap();
        lab.spawn(&gnomond_bin(), &gnomond_conf, "gnomond.log");
        lab
    }

    /// Waits (bounded) until gnomond has selected chronyd (`^*` in `sources`).
    fn wait_synchronised(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            for c in &mut self.children {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "a daemon exited early ({status}):\ngnomond: {}\nchronyd: {}",
                        self.log("gnomond.log"),
                        self.log("chronyd.log")
                    );
                }
            }
            let out = chronyc(&self.udp_args(), &["sources"]);
            if String::from_utf8_lossy(&out.stdout).contains("^* 127.0.0.1") {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "gnomond did not synchronise to chronyd within 30 s:\n{}",
            self.log("gnomond.log")
        );
    }

    fn udp_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.cmdport.to_string(),
            "-n".into(),
        ]
    }
}

fn check_ntp_time() -> PathBuf {
    let p = PathBuf::from("/usr/lib/nagios/plugins/check_ntp_time");
    assert!(
        p.is_file(),
        "check_ntp_time is missing: install monitoring-plugins-basic (this test never skips)"
    );
    p
}

fn chronyc(conn: &[String], cmd: &[&str]) -> Output {
    Command::new(require_tool("chronyc"))
        .args(conn)
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// One plugin run: its exit code and its single status line.
#[derive(Debug)]
struct Plugin {
    code: i32,
    line: String,
}

impl Plugin {
    fn of(out: Output) -> Plugin {
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            stdout.lines().count(),
            1,
            "one status line expected: {stdout:?}"
        );
        Plugin {
            code: out.status.code().unwrap(),
            line: stdout.trim_end().to_string(),
        }
    }

    /// The offset perfdata item, `offset=VALUEs;WARN;CRIT;`, as (value, "WARN;CRIT;").
    fn perf_offset(&self) -> (f64, String) {
        let (_, perf) = self.line.split_once('|').expect("no perfdata");
        let item = perf
            .split(' ')
            .find(|i| i.starts_with("offset="))
            .expect("no offset perfdata");
        let rest = &item["offset=".len()..];
        let (value, thresholds) = rest.split_once("s;").expect("offset has no unit s");
        // %f: an optional sign, digits, a point, exactly six decimals.
        let digits = value.trim_start_matches('-');
        let (int, frac) = digits.split_once('.').expect("offset not in %f form");
        assert!(
            !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 6,
            "offset not in %f form: {item}"
        );
        (value.parse().unwrap(), thresholds.to_string())
    }
}

fn run_pair(lab: &Lab, ntp_port: u16, w: &str, c: &str) -> (Plugin, Plugin) {
    let reference = Command::new(check_ntp_time())
        .args([
            "-H",
            "127.0.0.1",
            "-p",
            &ntp_port.to_string(),
            "-w",
            w,
            "-c",
            c,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let ours = Command::new(env!("CARGO_BIN_EXE_gnomonc"))
        .args(lab.udp_args())
        .args(["check", "-w", w, "-c", c, "-s", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (Plugin::of(reference), Plugin::of(ours))
}

#[test]
fn states_exit_codes_and_perfdata_agree_with_check_ntp_time() {
    let mut lab = Lab::start();
    lab.wait_synchronised();
    let ntp_port = lab.port;
    for (w, c, code, state) in [
        ("0.05", "0.2", 0, "OK"),
        ("0.000000001", "1", 1, "WARNING"),
        ("0.000000001", "0.000000002", 2, "CRITICAL"),
    ] {
        // Both offsets are measured, so one of them could in principle land exactly under
        // a 1 ns threshold: a few bounded retries, both tools always run as a pair.
        let mut last = None;
        for _ in 0..5 {
            let (reference, ours) = run_pair(&lab, ntp_port, w, c);
            if reference.code == code && ours.code == code {
                last = Some((reference, ours));
                break;
            }
            last = Some((reference, ours));
            std::thread::sleep(Duration::from_millis(300));
        }
        let (reference, ours) = last.unwrap();
        assert_eq!(
            (reference.code, ours.code),
            (code, code),
            "-w {w} -c {c}:\ncheck_ntp_time: {reference:?}\ngnomonc:        {ours:?}\n{}",
            lab.log("gnomond.log")
        );
        let prefix = format!("NTP {state}: ");
        assert!(reference.line.starts_with(&prefix), "{reference:?}");
        assert!(ours.line.starts_with(&prefix), "{ours:?}");
        let (ref_off, ref_thr) = reference.perf_offset();
        let (our_off, our_thr) = ours.perf_offset();
        assert_eq!(our_thr, ref_thr, "thresholds in perfdata");
        assert!(ref_off.abs() < 0.005, "{reference:?}");
        assert!(our_off.abs() < 0.005, "{ours:?}");
        assert!(
            (ref_off - our_off).abs() < 0.005,
            "{reference:?} vs {ours:?}"
        );
        if state == "OK" {
            // `NTP OK: Offset N secs` with N as %.10g, agreeing with the perfdata value.
            for p in [&reference, &ours] {
                let text = p.line.strip_prefix("NTP OK: Offset ").unwrap();
                let (n, _) = text.split_once(" secs").unwrap();
                let n: f64 = n.parse().unwrap_or_else(|_| panic!("{p:?}"));
                let (perf, _) = p.perf_offset();
                assert!((n - perf).abs() <= 0.0000005 + 1e-12, "{p:?}");
            }
        }
    }
}

#[test]
fn no_answer_is_critical_for_both() {
    // A port nobody listens on (checked free just now), for both NTP and cmdmon.
    let port = free_udp_port();
    let reference = Plugin::of(
        Command::new(check_ntp_time())
            .args([
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-w",
                "0.05",
                "-c",
                "0.2",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    let ours = Plugin::of(
        Command::new(env!("CARGO_BIN_EXE_gnomonc"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "check"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(reference.code, 2, "{reference:?}");
    assert_eq!(ours.code, 2, "{ours:?}");
    assert!(
        reference.line.starts_with("NTP CRITICAL: No response"),
        "{reference:?}"
    );
    assert!(
        ours.line.starts_with("NTP CRITICAL: No response"),
        "{ours:?}"
    );
}
