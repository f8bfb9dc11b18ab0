//! Every file in the workspace's examples/ directory: zero lint errors, warnings only when the
//! file explains them with a `# lint-allow: ID` comment, and real chronyd 4.3 accepts it and
//! prints the same configuration as we do.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::chronyd_p;
use gnomon_conf::lint::{lint_file, Severity};
use gnomon_conf::load_file;
use std::path::PathBuf;

fn example_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_expected_examples_exist() {
    let names: Vec<String> = example_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "quickstart.conf",
        "core-server.conf",
        "client.conf",
        "hardened-server.conf",
        "dual-stack-peer-a.conf",
        "dual-stack-peer-b.conf",
    ] {
        assert!(names.iter().any(|n| n == want), "missing examples/{want}");
    }
}

#[test]
fn examples_lint_clean_and_chronyd_accepts_them() {
    let mut problems = Vec::new();
    for path in example_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let report = lint_file(&path);
        if let Some(e) = &report.fatal {
            problems.push(format!("{}: fatal: {e}", path.display()));
        }
        for f in &report.findings {
            let allowed = text.contains(&format!("# lint-allow: {}", f.id));
            if f.severity == Severity::Error || !allowed {
                problems.push(f.to_string());
            }
        }
        let theirs = chronyd_p(&path);
        if !theirs.ok {
            problems.push(format!(
                "{}: chronyd rejects: {}",
                path.display(),
                theirs.stderr
            ));
        } else if let Ok(c) = load_file(&path) {
            if c.to_chrony_text() != theirs.stdout {
                problems.push(format!(
                    "{}: -p output differs from chronyd",
                    path.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn quickstart_serves_loopback_on_unprivileged_ports() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.conf");
    let s = load_file(&path).unwrap().settings();
    assert_eq!((s.port, s.cmdport), (11123, 11323));
    assert!(s.serves_ntp());
    assert!(s.sources.is_empty());
    assert_eq!(s.local.map(|l| l.stratum), Some(10));
    assert!(s
        .access
        .iter()
        .any(|r| r.spec.matches("::1".parse().unwrap())));
    assert!(s.pidfile.starts_with("/tmp"));
}
