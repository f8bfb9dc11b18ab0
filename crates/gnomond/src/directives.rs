//! Which configuration directives gnomond acts on so far: the one list to extend as features
//! land. Directives that parse but are not in it are reported at start-up with their file and
//! line, so nobody believes a setting is in force when it is not.

use gnomon_conf::{Config, Directive, LogKind};

/// Directives gnomond implements. `include` and `confdir` are handled while the files are read.
pub const IMPLEMENTED: &[&str] = &[
    // NTP server
    "port",
    "bindaddress",
    "allow",
    "deny",
    "local",
    "ratelimit",
    "clientloglimit",
    "noclientlog",
    // command server
    "cmdport",
    "bindcmdaddress",
    "cmdallow",
    "cmddeny",
    "cmdratelimit",
    // process
    "pidfile",
    "user",
    "lock_all",
    "sched_priority",
    // synchronisation (client.rs)
    "server",
    "pool",
    "peer",
    "driftfile",
    "makestep",
    "maxchange",
    "minsources",
    "maxdistance",
    "maxjitter",
    "combinelimit",
    "reselectdist",
    "stratumweight",
    "minsamples",
    "maxsamples",
    "maxupdateskew",
    "maxslewrate",
    "maxdrift",
    "corrtimeratio",
    "maxclockerror",
    "leapsecmode",
    "leapsectz",
    "leapseclist",
    // authentication (keys.rs, nts_ke.rs)
    "keyfile",
    "ntsservercert",
    "ntsserverkey",
    "ntsport",
    "ntsprocesses",
    "maxntsconnections",
    "ntsdumpdir",
    "ntsrotate",
    "ntsratelimit",
    "ntsntpserver",
    // authentication, client side (client/auth.rs, client/nts_ke.rs)
    "ntstrustedcerts",
    "nosystemcert",
    "nocerttimecheck",
    "ntsrefresh",
    "authselectmode",
    // statistics logs (statlog.rs: tracking, measurements, statistics)
    "logdir",
    "log",
    "logbanner",
    "logchange",
    // configuration files
    "include",
    "confdir",
    // metrics endpoint (metrics.rs; Gnomon extensions)
    "metricsport",
    "bindmetricsaddress",
    "metricsallownonlocal",
];

/// Whether gnomond acts on the directive called `name`.
pub fn is_implemented(name: &str) -> bool {
    IMPLEMENTED.contains(&name)
}

/// Start-up warnings, one per line, `FILE:LINE: message`: directives chronyd reads but no
/// longer supports, and directives gnomond parses but does not act on yet.
pub fn unimplemented_warnings(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = config
        .unimplemented_warnings(|d| is_implemented(d.name()))
        .iter()
        .map(|w| w.to_string())
        .collect();
    // `log` is implemented for its statistics files only: name the words that write nothing.
    for e in &config.entries {
        let Directive::Log(kinds) = &e.directive else {
            continue;
        };
        for kind in kinds {
            let note = match kind {
                LogKind::Tracking | LogKind::Measurements | LogKind::Statistics => continue,
                LogKind::RawMeasurements => {
                    "is written like `measurements` (accepted samples only)"
                }
                LogKind::Rtc | LogKind::RefClocks | LogKind::TempComp | LogKind::Selection => {
                    "is recognised but not implemented yet; nothing is written for it"
                }
            };
            let word = LogKind::ALL
                .iter()
                .find(|(_, k)| k == kind)
                .map_or("?", |(w, _)| *w);
            out.push(format!("{}: log `{word}` {note}", e.location));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unimplemented_directives_are_named_with_their_line() {
        let lines: Vec<String> = ["port 11123", "rtcfile /var/lib/x", "allow 127.0.0.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let config = gnomon_conf::load_lines(&lines).unwrap();
        let w = unimplemented_warnings(&config);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains(":2: directive `rtcfile`"), "{w:?}");
    }

    #[test]
    fn log_words_that_write_nothing_are_named_with_their_line() {
        let lines: Vec<String> = [
            "log tracking rtc",
            "log statistics selection rawmeasurements",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let config = gnomon_conf::load_lines(&lines).unwrap();
        let w = unimplemented_warnings(&config);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(
            w[0].contains(":1: log `rtc` is recognised but not"),
            "{w:?}"
        );
        assert!(w[1].contains(":2: log `selection`"), "{w:?}");
        assert!(
            w[2].contains(":2: log `rawmeasurements` is written like"),
            "{w:?}"
        );
    }

    #[test]
    fn file_directives_are_named_file_colon_line() {
        let dir = std::env::temp_dir().join(format!("gnomond-dirs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.conf");
        std::fs::write(&path, "# c\nallow 127.0.0.1\nrtcsync\n").unwrap();
        let config = gnomon_conf::load_file(&path).unwrap();
        let w = unimplemented_warnings(&config);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with(&format!("{}:3: directive `rtcsync`", path.display())),
            "{w:?}"
        );
    }
}
