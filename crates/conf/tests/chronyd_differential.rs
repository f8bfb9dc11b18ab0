//! Differential test against the real chronyd 4.3: a fixed pseudo-random set of
//! directive-shaped lines (known names, numbers in C-ish forms, option keywords) must get the
//! same verdict, wording and `-p` output from us and from chronyd. Lines that would make
//! chronyd resolve host names (access rules, `initstepslew` hosts) only use numeric words, so
//! the test never causes DNS traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::{chronyd_p, TempDir};
use gnomon_conf::{load_file, DIRECTIVE_NAMES};

const WORDS: &[&str] = &[
    "0",
    "1",
    "-1",
    "+3",
    "15",
    "16",
    "1x",
    "1.5",
    "1e-3",
    "x",
    "inf",
    "70000",
    "0x10",
    "10/8",
    "192.0.2.1",
    "::1",
    "2001:db8::/32",
    "1.2.3",
    "all",
    "iburst",
    "minpoll",
    "maxpoll",
    "key",
    "stratum",
    "orphan",
    "distance",
    "interval",
    "burst",
    "leak",
    "poll",
    "refid",
    "prefer",
    "leaponly",
    "rxfilter",
    "ntp",
    "tracking",
    "statistics",
    "/var/lib/x",
    "eth0",
    "*",
    "slew",
    "mix",
    "nts",
    "maxsources",
    "F323",
    "#",
    "SHM",
];

/// Small deterministic generator (xorshift), so the corpus is the same on every run.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

fn may_resolve(name: &str, args: &[&str]) -> bool {
    let hostlike = |w: &&str| w.chars().any(|c| c.is_ascii_alphabetic()) && !w.contains(':');
    match name {
        "allow" | "deny" | "cmdallow" | "cmddeny" => {
            let rest = if args.first() == Some(&"all") {
                &args[1..]
            } else {
                args
            };
            rest.iter().any(hostlike)
        }
        "initstepslew" => args.len() > 1,
        "include" | "confdir" | "sourcedir" => true,
        _ => false,
    }
}

#[test]
fn random_directive_lines_match_chronyd() {
    let dir = TempDir::new("diff");
    let file = dir.0.join("d.conf");
    let mut g = Gen(0x7777_0000_1234_0001);
    let mut checked = 0;
    let mut mismatches = Vec::new();
    while checked < 600 {
        let name = g.pick(DIRECTIVE_NAMES);
        let n = (g.next() % 7) as usize;
        let args: Vec<&str> = (0..n).map(|_| g.pick(WORDS)).collect();
        if may_resolve(name, &args) {
            continue;
        }
        checked += 1;
        let line = std::iter::once(name)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let theirs = chronyd_p(&file);
        match (load_file(&file), theirs.ok) {
            (Ok(c), true) if c.to_chrony_text() == theirs.stdout => {}
            (Err(e), false) if Some(e.chrony_message()) == theirs.fatal => {}
            (Ok(c), false)
                if gnomon_conf::lint::lint(&c)
                    .iter()
                    .any(|f| f.id == "newer-than-chrony-4.3") => {}
            // Directives added after 4.3: chronyd says "Invalid directive"; we parse them as
            // newer chrony does, so a bad argument gets that directive's own error.
            (Err(_), false)
                if gnomon_conf::directive::NEWER_THAN_4_3
                    .iter()
                    .any(|(d, _)| *d == name) => {}
            // Gnomon's own directives: chronyd rejects every one of them as invalid; we
            // accept well-formed lines with a lint warning and reject bad arguments.
            (Ok(c), false)
                if gnomon_conf::lint::lint(&c)
                    .iter()
                    .any(|f| f.id == "gnomon-extension") => {}
            (Err(_), false) if gnomon_conf::GNOMON_EXTENSIONS.contains(&name) => {}
            (ours, _) => mismatches.push(format!(
                "{line:?}: ours {:?} / chronyd ok={} {:?}",
                ours.map(|c| c.to_chrony_text())
                    .map_err(|e| e.chrony_message()),
                theirs.ok,
                theirs.fatal
            )),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
