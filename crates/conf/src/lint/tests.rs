use super::*;
use crate::load_lines;

fn ids(lines: &[&str]) -> Vec<&'static str> {
    let v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    lint(&load_lines(&v).unwrap())
        .iter()
        .map(|f| f.id)
        .collect()
}

#[test]
fn port_zero_with_allow_is_an_error() {
    assert_eq!(ids(&["port 0", "allow 10/8"]), vec!["port-zero-with-allow"]);
    assert!(ids(&["port 0"]).is_empty());
}

#[test]
fn metrics_directives_warn_as_extensions_and_nonlocal_bind_is_an_error() {
    assert_eq!(ids(&["metricsport 9123"]), vec!["gnomon-extension"]);
    assert_eq!(
        ids(&["metricsport 9123", "bindmetricsaddress 192.0.2.1"]),
        vec![
            "metrics-nonlocal-bind",
            "gnomon-extension",
            "gnomon-extension"
        ]
    );
    assert_eq!(
        ids(&[
            "metricsport 9123",
            "bindmetricsaddress 192.0.2.1",
            "metricsallownonlocal"
        ]),
        vec!["gnomon-extension"; 3]
    );
    assert_eq!(
        ids(&["metricsport 9123", "bindmetricsaddress ::1"]),
        vec!["gnomon-extension"; 2]
    );
}

#[test]
fn ntpd_local_clock_address_is_flagged() {
    assert_eq!(
        ids(&["server 127.127.1.0 iburst"]),
        vec!["ntpd-local-clock"]
    );
}

#[test]
fn smearing_mix_and_leapsectz_are_flagged() {
    let f = ids(&[
        "server time.google.com iburst",
        "pool pool.ntp.org iburst",
        "leapsectz right/UTC",
    ]);
    assert_eq!(f, vec!["smear-mixed", "smear-with-leapsectz"]);
    assert!(ids(&["server time1.google.com", "server time2.google.com"]).is_empty());
}

#[test]
fn deny_all_after_allow_denies_everyone() {
    assert_eq!(
        ids(&["allow 10/8", "deny all"]),
        vec!["deny-all-overrides-allow"]
    );
    assert!(ids(&["deny all", "allow 10/8"]).is_empty());
}

#[test]
fn lint_lines_reports_every_fatal_line_and_the_rest() {
    let lines: Vec<String> = ["schedrr 1", "port 0", "minpoll 4", "allow 10/8"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = lint_lines(&lines);
    assert_eq!(
        r.fatal.as_ref().map(|e| e.chrony_message()).as_deref(),
        Some("Invalid directive at line 1")
    );
    assert_eq!(r.more_fatal.len(), 1);
    assert_eq!(r.ids(), vec!["port-zero-with-allow"]);
    assert_eq!(r.exit_code(), 2);
}

#[test]
fn finding_display_names_file_line_and_hint() {
    let c = load_lines(&["port 0".into(), "allow".into()]).unwrap();
    let f = &lint(&c)[0];
    assert_eq!(
        f.to_string(),
        "<command line>:1: error: `port 0` disables the NTP server socket, so the `allow` rules serve nobody (hint: remove `port 0` (it only makes sense on a pure client)) [port-zero-with-allow]"
    );
}
