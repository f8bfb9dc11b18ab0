//! Every chrony.conf block of the deployment seeds (/work/shared/seeds), one fixture each under
//! tests/seeds/, with its expected verdict: what chronyd 4.3 does with it (checked live) and
//! what our lint reports.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::chronyd_p;
use gnomon_conf::lint::lint_file;
use gnomon_conf::load_file;
use std::path::PathBuf;

struct Expect {
    file: &'static str,
    /// `None` = chronyd accepts; otherwise its fatal message with the path replaced by `F`.
    fatal: Option<&'static str>,
    /// Further lines chronyd would reject once the first is fixed.
    more_fatal: &'static [&'static str],
    lint: &'static [&'static str],
}

const SEEDS: &[Expect] = &[
    Expect {
        file: "000-core-server.conf",
        fatal: None,
        more_fatal: &[],
        lint: &["pool-not-ntp-pool"],
    },
    Expect {
        file: "000-client.conf",
        fatal: None,
        more_fatal: &[],
        lint: &[],
    },
    Expect {
        file: "001-main-settings.conf",
        fatal: Some("Could not parse ratelimit directive at line 24 in file F"),
        more_fatal: &[],
        lint: &[
            "port-zero-with-allow",
            "smear-mixed",
            "smear-with-leapsectz",
        ],
    },
    Expect {
        file: "001-main-settings-as-published.conf",
        fatal: Some("Could not parse server directive at line 6 in file F"),
        more_fatal: &[
            "Too many arguments for port directive at line 7 in file F",
            "Could not parse allow directive at line 8 in file F",
            "Could not parse ratelimit directive at line 9 in file F",
            "Invalid log parameter at line 10 in file F",
            "Too many arguments for driftfile directive at line 11 in file F",
            "Too many arguments for makestep directive at line 12 in file F",
        ],
        // The joined `allow` line is fatal, so nothing is allowed for `local` to serve.
        lint: &["local-without-allow"],
    },
    Expect {
        file: "001-access-control.conf",
        fatal: Some("Could not parse ratelimit directive at line 11 in file F"),
        more_fatal: &[],
        lint: &["deny-all-overrides-allow"],
    },
    Expect {
        file: "001-nts.conf",
        fatal: None,
        more_fatal: &[],
        lint: &["nts-without-ntsdumpdir", "nts-server-without-ntp-server"],
    },
    Expect {
        file: "001-performance.conf",
        fatal: Some("Invalid directive at line 2 in file F"),
        more_fatal: &[
            "Invalid directive at line 7 in file F",
            "Invalid directive at line 8 in file F",
        ],
        lint: &[],
    },
    Expect {
        file: "001-sysctl-pasted.conf",
        fatal: Some("Invalid directive at line 2 in file F"),
        more_fatal: &[
            "Invalid directive at line 3 in file F",
            "Invalid directive at line 4 in file F",
            "Invalid directive at line 5 in file F",
            "Invalid directive at line 6 in file F",
        ],
        lint: &[],
    },
    Expect {
        file: "002-dual-stack-peer.conf",
        fatal: None,
        more_fatal: &[],
        lint: &["smear-mixed", "local-peers-without-orphan"],
    },
    Expect {
        file: "004-basic.conf",
        fatal: None,
        more_fatal: &[],
        lint: &["ntpd-local-clock"],
    },
    Expect {
        file: "004-primary-server-s1.conf",
        fatal: None,
        more_fatal: &[],
        lint: &["ntpd-local-clock"],
    },
    Expect {
        file: "004-backup-server-s2.conf",
        fatal: None,
        more_fatal: &[],
        lint: &["ntpd-local-clock"],
    },
    Expect {
        file: "004-client.conf",
        fatal: None,
        more_fatal: &[],
        lint: &[],
    },
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/seeds")
        .join(name)
}

#[test]
fn every_seed_fixture_is_listed() {
    let dir = fixture("");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SEEDS.iter().map(|e| e.file.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn seed_verdicts_match_chronyd_and_lint() {
    let mut problems = Vec::new();
    for e in SEEDS {
        let path = fixture(e.file);
        let f = path.display().to_string();
        let expected_fatal = e.fatal.map(|m| m.replace(" F", &format!(" {f}")));
        let theirs = chronyd_p(&path);
        if theirs.fatal != expected_fatal {
            problems.push(format!(
                "{}: chronyd said {:?}, expected {:?}",
                e.file, theirs.fatal, expected_fatal
            ));
        }
        match load_file(&path) {
            Ok(c) => {
                if !theirs.ok {
                    problems.push(format!("{}: we accept, chronyd rejects", e.file));
                } else if c.to_chrony_text() != theirs.stdout {
                    problems.push(format!("{}: -p output differs", e.file));
                }
            }
            Err(err) => {
                if Some(err.chrony_message()) != theirs.fatal {
                    problems.push(format!(
                        "{}: our error {:?} vs chronyd {:?}",
                        e.file,
                        err.chrony_message(),
                        theirs.fatal
                    ));
                }
            }
        }
        let report = lint_file(&path);
        let more: Vec<String> = report
            .more_fatal
            .iter()
            .map(|x| x.chrony_message())
            .collect();
        let want_more: Vec<String> = e
            .more_fatal
            .iter()
            .map(|m| m.replace(" F", &format!(" {f}")))
            .collect();
        if more != want_more {
            problems.push(format!(
                "{}: more fatal {more:?}, expected {want_more:?}",
                e.file
            ));
        }
        if report.ids() != e.lint {
            problems.push(format!(
                "{}: lint {:?}, expected {:?}\n{report}",
                e.file,
                report.ids(),
                e.lint
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn seed_001_errors_carry_fix_hints() {
    let r = lint_file(&fixture("001-performance.conf"));
    let text = r.to_string();
    assert!(
        text.contains("Invalid directive at line 2")
            && text.contains("did you mean `sched_priority`?"),
        "{text}"
    );
    assert!(
        text.contains("`minpoll` is an option of `server`/`pool`/`peer` lines"),
        "{text}"
    );
    let r = lint_file(&fixture("001-access-control.conf"));
    assert!(r.to_string().contains("chrony has no `ntp` keyword"), "{r}");
}
