//! Which configuration directives gnomond acts on so far: the one list to extend as features
//! land. Directives that parse but are not in it are reported at start-up with their file and
//! line, so nobody believes a setting is in force when it is not.

use gnomon_conf::Config;

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
    config
        .unimplemented_warnings(|d| is_implemented(d.name()))
        .iter()
        .map(|w| w.to_string())
        .collect()
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
