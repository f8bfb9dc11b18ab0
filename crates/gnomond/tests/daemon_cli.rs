//! gnomond's command line against chronyd 4.3's, black-box: option errors, usage, version,
//! `-p`, configuration errors before anything is bound, trailing directives, `--lint`, and the
//! refusal to run without `-x`.
// Helpers outside #[test] functions panic on a broken environment and read the real clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use support::{run_gnomond, TempDir};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn invalid_option_prints_getopt_message_and_usage_and_exits_1() {
    let out = run_gnomond(&["-Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "gnomond: invalid option -- 'Z'\n");
    assert!(text(&out.stdout).starts_with("Usage: gnomond [OPTION]... [DIRECTIVE]...\n"));
}

#[test]
fn missing_option_argument_is_reported_like_getopt() {
    let out = run_gnomond(&["-L"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "gnomond: option requires an argument -- 'L'\n"
    );
}

#[test]
fn non_numeric_level_is_a_fatal_invalid_argument() {
    let out = run_gnomond(&["-L", "abc"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.ends_with("Z Fatal error : Invalid argument abc\n"),
        "{err}"
    );
}

#[test]
fn help_has_chronyd_layout_with_our_name() {
    let out = run_gnomond(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let ours = text(&out.stdout);
    let chronyd = std::process::Command::new("chronyd")
        .arg("--help")
        .output()
        .expect("chronyd is installed by .ci/run (install-peers.sh)");
    let theirs = text(&chronyd.stdout).replace("chronyd", "gnomond");
    // Every line chronyd prints is ours too, option column and text alike; we add `--lint`.
    let ours_lines: Vec<&str> = ours.lines().collect();
    for line in theirs.lines() {
        assert!(ours_lines.contains(&line), "missing help line {line:?}");
    }
    assert_eq!(ours_lines.len(), theirs.lines().count() + 1);
    assert!(ours.contains("  --lint\tCheck configuration and exit\n"));
    assert_eq!(run_gnomond(&["-h"]).stdout, out.stdout);
}

#[test]
fn version_line_has_chronyd_shape() {
    for flag in ["-v", "--version"] {
        let out = run_gnomond(&[flag]);
        assert_eq!(out.status.code(), Some(0));
        let line = text(&out.stdout);
        assert!(
            line.starts_with(&format!(
                "gnomond (gnomon) version {} (",
                env!("CARGO_PKG_VERSION")
            )),
            "{line}"
        );
        assert!(line.ends_with(")\n") && line.contains("+NTP"), "{line}");
    }
}

#[test]
fn print_config_prints_parsed_directives_and_exits_0() {
    let dir = TempDir::new("cli-p");
    let conf = dir.join("a.conf");
    std::fs::write(
        &conf,
        "# comment\nport   11123\n\nallow 127.0.0.1\nlocal stratum 10\n",
    )
    .unwrap();
    let out = run_gnomond(&["-p", "-f", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "port 11123\nallow 127.0.0.1\nlocal stratum 10\n"
    );
}

#[test]
fn trailing_directives_replace_the_config_file() {
    let out = run_gnomond(&[
        "-p",
        "-f",
        "/nonexistent/file.conf",
        "port 5",
        "allow 10.0.0.0/8",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "port 5\nallow 10.0.0.0/8\n");
}

#[test]
fn bad_config_line_names_file_and_line_and_exits_1_before_binding() {
    let dir = TempDir::new("cli-bad");
    let conf = dir.join("bad.conf");
    let port = support::free_udp_port();
    let pidfile = dir.join("g.pid");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nallow 127.0.0.1\npidfile {}\nport abc\n",
            pidfile.display()
        ),
    )
    .unwrap();
    let out = run_gnomond(&["-x", "-d", "-u", "root", "-f", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "Fatal error : Could not parse port directive at line 4 in file {}",
            conf.display()
        )),
        "{err}"
    );
    // Nothing was bound or created.
    assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok());
    assert!(!pidfile.exists());
}

#[test]
fn unknown_directive_is_fatal_like_chronyd() {
    let out = run_gnomond(&["-p", "bogus directive"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Fatal error : Invalid directive at line 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_config_file_is_fatal() {
    let out = run_gnomond(&["-x", "-d", "-f", "/nonexistent/gnomond.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(
        "Fatal error : Could not open /nonexistent/gnomond.conf : No such file or directory"
    ));
}

#[test]
fn without_x_gnomond_refuses_to_start() {
    let dir = TempDir::new("cli-nox");
    let pidfile = dir.join("g.pid");
    let out = run_gnomond(&[
        "-d",
        "-u",
        "root",
        &format!("pidfile {}", pidfile.display()),
        "port 0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("gnomond can only run with -x"));
    assert!(!pidfile.exists());
}

#[test]
fn lint_exit_status_follows_findings() {
    let clean = run_gnomond(&[
        "--lint",
        "port 11123",
        "allow 127.0.0.1",
        "local stratum 10",
    ]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));
    assert!(clean.stdout.is_empty());
    let fatal = run_gnomond(&["--lint", "schedrr 1"]);
    assert_eq!(fatal.status.code(), Some(2));
    assert!(
        text(&fatal.stdout).contains("Invalid directive"),
        "{}",
        text(&fatal.stdout)
    );
}

#[test]
fn unimplemented_directive_is_warned_with_file_and_line() {
    // The harness writes port, pidfile, cmdport and bindcmdaddress first: rtconutc is line 6.
    let d = support::Daemon::start("allow 127.0.0.1\nrtconutc");
    let log = d.stderr();
    assert!(
        log.contains(&format!("{}:6: directive `rtconutc`", d.config.display())),
        "{log}"
    );
}

#[test]
fn fatal_errors_reach_the_terminal_in_chronyd_shape_without_d() {
    // -n: syslog, and "Fatal error : ..." on stderr without a timestamp.
    let out = run_gnomond(&["-n", "-x", "-f", "/nonexistent/g.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Fatal error : Could not open /nonexistent/g.conf : No such file or directory\n"
    );
    // About to detach: the bare message, as chronyd's waiting parent prints it.
    let out = run_gnomond(&["-x", "--", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "Invalid directive at line 1\n");
}
