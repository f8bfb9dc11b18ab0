//! Helpers shared by the integration tests: run the real chronyd 4.3 in print mode.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Outcome of `chronyd -x -p -f FILE`.
#[derive(Debug)]
pub struct Chronyd {
    pub ok: bool,
    pub stdout: String,
    /// Text after "Fatal error : " on stderr, if any.
    pub fatal: Option<String>,
    pub stderr: String,
}

/// Locate chronyd; panics (loudly) when it is missing: CI installs it.
pub fn chronyd_path() -> PathBuf {
    for p in ["/usr/sbin/chronyd", "/usr/bin/chronyd", "/sbin/chronyd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("chronyd not found: these tests compare against the real chronyd 4.3 (apt-get install chrony)");
}

/// Run chronyd in print-config mode without CAP_SYS_TIME (same as /work/shared/tools/noclock)
/// and, where permitted, in a fresh network namespace so that a host name in a test line can
/// never cause DNS traffic (chronyd resolves `allow HOST` while reading the file).
pub fn chronyd_p(file: &Path) -> Chronyd {
    let run = |isolate: bool| {
        let mut cmd = if isolate {
            let mut c = Command::new("unshare");
            c.args(["-n", "--", "setpriv"]);
            c
        } else {
            Command::new("setpriv")
        };
        cmd.args(["--bounding-set=-sys_time", "--inh-caps=-sys_time", "--"])
            .arg(chronyd_path())
            .args(["-x", "-p", "-f"])
            .arg(file)
            .output()
            .expect("run setpriv + chronyd")
    };
    let mut out = run(true);
    if String::from_utf8_lossy(&out.stderr).starts_with("unshare:") {
        // No permission for namespaces (unprivileged CI): the corpora avoid host names anyway.
        out = run(false);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let fatal = stderr
        .lines()
        .find_map(|l| l.split_once("Fatal error : ").map(|(_, m)| m.to_string()));
    Chronyd {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        fatal,
        stderr,
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("gnomon-conf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
