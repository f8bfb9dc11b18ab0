//! The shared test lab of gnomonc's tests against a running gnomond: a real `chronyd -x`
//! (`local stratum 8`) as gnomond's only source, gnomond under noclock with `-x`, free ports,
//! a Unix command socket in a temporary directory, and helpers to run chronyc and gnomonc.
//! Everything is killed by PID and removed on drop, even when a test fails.

// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn noclock() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/noclock");
    for p in [beside, PathBuf::from("/work/shared/tools/noclock")] {
        if p.is_file() {
            return p;
        }
    }
    panic!("shared/tools/noclock not found: refusing to start a time daemon without it");
}

pub fn require_tool(name: &str) -> PathBuf {
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
pub fn gnomond_bin() -> PathBuf {
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

pub fn seed() -> u64 {
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
pub fn free_udp_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + (seed() % 40_000) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("::1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP port found");
}

/// Temporary directory and daemons, killed by PID and removed on drop even when a test fails.
pub struct Lab {
    pub dir: PathBuf,
    pub children: Vec<Child>,
    pub cmdport: u16,
    /// gnomond's NTP port.
    pub port: u16,
    pub socket: PathBuf,
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
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    pub fn spawn(&mut self, program: &Path, conf: &Path, log: &str) {
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
    pub fn start() -> Lab {
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
            cmdport,
            port,
            socket: socket.clone(),
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
    pub fn wait_synchronised(&mut self) {
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

    pub fn udp_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.cmdport.to_string(),
            "-n".into(),
        ]
    }

    pub fn socket_args(&self) -> Vec<String> {
        vec!["-h".into(), self.socket.display().to_string(), "-n".into()]
    }
}

pub fn run(program: &Path, conn: &[String], cmd: &[&str]) -> Output {
    Command::new(program)
        .args(conn)
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn chronyc(conn: &[String], cmd: &[&str]) -> Output {
    run(&require_tool("chronyc"), conn, cmd)
}

pub fn gnomonc(conn: &[String], cmd: &[&str]) -> Output {
    run(Path::new(env!("CARGO_BIN_EXE_gnomonc")), conn, cmd)
}
