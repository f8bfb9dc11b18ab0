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
    // `sourcedir` files: read at start and by `reload sources` (client/commands.rs)
    "sourcedir",
    "driftfile",
    // the system clock driver leaves STA_UNSYNC set without it (clock/system.rs)
    "rtcsync",
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
    "fallbackdrift",
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
    // the old name of `ntsdumpdir` (conf's settings map it; lint suggests the new name)
    "ntscachedir",
    "ntsrotate",
    "ntsratelimit",
    "ntsntpserver",
    // authentication, client side (client/auth.rs, client/nts_ke.rs)
    "ntstrustedcerts",
    "nosystemcert",
    "nocerttimecheck",
    "ntsrefresh",
    "authselectmode",
    // statistics logs (statlog.rs: tracking, (raw)measurements, statistics, selection)
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

/// A combination of directives chronyd refuses to start with, as its fatal message (checked
/// black-box against chronyd 4.3: `rtcsync` with `rtcfile` exits with status 1).
pub fn fatal_conflict(config: &Config) -> Option<String> {
    let has = |name: &str| config.entries.iter().any(|e| e.directive.name() == name);
    (has("rtcsync") && has("rtcfile"))
        .then(|| "rtcfile directive cannot be used with rtcsync".to_string())
}

/// Start-up warnings, one per line, `FILE:LINE: message`: directives chronyd reads but no
/// longer supports, and directives gnomond parses but does not act on yet.
pub fn unimplemented_warnings(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = config
        .unimplemented_warnings(|d| is_implemented(d.name()))
        .iter()
        .map(|w| w.to_string())
        .collect();
    // `log`: chronyd 4.3 writes `rtc.log`, `refclocks.log` and `tempcomp.log` only while it
    // tracks the RTC (`rtcfile`), has reference clocks (`refclock`) or compensates for
    // temperature (`tempcomp`): without those directives it writes nothing for the three
    // words (checked black-box: `log rtc refclocks tempcomp` under chronyd -x left no file in
    // `logdir`), as gnomond. gnomond implements none of the three directives, so only a
    // configuration that has one differs from chronyd, and only then is the word named.
    // `tracking`, `measurements`, `rawmeasurements`, `statistics` and `selection` are
    // written as chronyd's (statlog.rs).
    let has = |name: &str| config.entries.iter().any(|e| e.directive.name() == name);
    // `local activate` (chrony 4.6) and `waitsynced`/`waitunsynced` (4.7) are read so that a
    // newer chrony.conf loads, but the local reference does not honour them yet: said once
    // per option, with the line (chronyd 4.3 refuses the options outright).
    for e in &config.entries {
        let Directive::Local(l) = &e.directive else {
            continue;
        };
        for (option, given) in [
            ("activate", l.activate.is_some()),
            ("waitsynced", l.waitsynced.is_some()),
            ("waitunsynced", l.waitunsynced.is_some()),
        ] {
            if given {
                out.push(format!(
                    "{}: option {option} of local is not implemented yet; it has no effect",
                    e.location
                ));
            }
        }
    }
    for e in &config.entries {
        let Directive::Log(kinds) = &e.directive else {
            continue;
        };
        for kind in kinds {
            let (needs, what) = match kind {
                LogKind::Tracking
                | LogKind::Measurements
                | LogKind::RawMeasurements
                | LogKind::Statistics
                | LogKind::Selection => continue,
                LogKind::Rtc => ("rtcfile", "RTC tracking"),
                LogKind::RefClocks => ("refclock", "reference clocks"),
                LogKind::TempComp => ("tempcomp", "temperature compensation"),
            };
            if !has(needs) {
                continue;
            }
            let word = LogKind::ALL
                .iter()
                .find(|(_, k)| k == kind)
                .map_or("?", |(w, _)| *w);
            out.push(format!(
                "{}: log `{word}` writes nothing: {what} (`{needs}`) is not implemented",
                e.location
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration these lines make.
    fn load(lines: &[&str]) -> Config {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        gnomon_conf::load_lines(&lines).unwrap()
    }

    #[test]
    fn unimplemented_directives_are_named_with_their_line() {
        let config = load(&["port 11123", "rtcfile /var/lib/x", "allow 127.0.0.1"]);
        let w = unimplemented_warnings(&config);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains(":2: directive `rtcfile`"), "{w:?}");
    }

    #[test]
    fn log_words_that_write_nothing_are_named_with_their_line() {
        let config = load(&[
            "log tracking rtc",
            "log statistics selection rawmeasurements refclocks tempcomp",
            "rtcfile /var/lib/chrony/rtc",
            "tempcomp /sys/class/hwmon/hwmon0/temp2_input 30 /etc/chrony.tempcomp",
        ]);
        let w: Vec<String> = unimplemented_warnings(&config)
            .into_iter()
            .filter(|w| w.contains(": log `"))
            .collect();
        // No `refclock` directive: chronyd writes no refclocks.log either.
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains(":1: log `rtc` writes nothing: RTC tracking (`rtcfile`)"),
            "{w:?}"
        );
        assert!(w[1].contains(":2: log `tempcomp` writes nothing"), "{w:?}");
    }

    #[test]
    fn rtcsync_with_rtcfile_is_refused_as_chronyd_refuses_it() {
        assert_eq!(
            fatal_conflict(&load(&["rtcsync", "rtcfile /var/lib/chrony/rtc"])).as_deref(),
            Some("rtcfile directive cannot be used with rtcsync")
        );
        assert_eq!(fatal_conflict(&load(&["rtcsync"])), None);
    }

    #[test]
    fn directives_gnomond_acts_on_are_not_warned_about() {
        let config = load(&["sourcedir /etc/chrony/sources.d", "ntscachedir /var/lib/x"]);
        assert_eq!(unimplemented_warnings(&config), Vec::<String>::new());
    }

    #[test]
    fn local_options_of_newer_chrony_are_named_as_having_no_effect() {
        let config = load(&[
            "local stratum 10 orphan",
            "local stratum 10 activate 0.5 waitunsynced 300",
        ]);
        let w = unimplemented_warnings(&config);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains(":2: option activate of local is not implemented yet"),
            "{w:?}"
        );
        assert!(w[1].contains(":2: option waitunsynced of local"), "{w:?}");
    }

    #[test]
    fn log_words_chronyd_leaves_empty_too_are_not_warned_about() {
        let config = load(&[
            "log tracking measurements rawmeasurements statistics selection",
            "log rtc refclocks tempcomp",
        ]);
        assert_eq!(unimplemented_warnings(&config), Vec::<String>::new());
    }

    #[test]
    fn file_directives_are_named_file_colon_line() {
        let dir = std::env::temp_dir().join(format!("gnomond-dirs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.conf");
        std::fs::write(&path, "# c\nallow 127.0.0.1\nrtconutc\n").unwrap();
        let config = gnomon_conf::load_file(&path).unwrap();
        let w = unimplemented_warnings(&config);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with(&format!("{}:3: directive `rtconutc`", path.display())),
            "{w:?}"
        );
    }
}
