//! Security catalogue case 32, the log bullet (ntpd-rs NTP-053): NTS cookies and keys never
//! appear in gnomond's logs, at the most verbose level (`-d -d`, debug messages). A gnomond
//! NTS server and a gnomond NTS client, both with `ntsdumpdir`, run to synchronisation; the
//! secrets are then read back from the dumps (the server's cookie keys in `ntskeys`, the
//! client's C2S/S2C keys and cookies in `127.0.0.1.nts`), and both logs are searched for them
//! in every encoding a log line could carry: hex in either case and Rust's `Debug` of a byte
//! slice (decimal list). The dumps' 0600 mode is checked too (the last bullet).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::*;

/// Hex strings of at least 32 digits in `text` (keys and cookies; never a timestamp).
fn hex_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|t| t.len() >= 32)
        .map(str::to_string)
        .collect()
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Asserts that no part of `secret` (hex) shows in `log` in any encoding: 16 consecutive hex
/// digits (8 octets) from anywhere in it, in either case, or the `Debug` list of its first 8
/// octets.
fn assert_absent(log: &str, what: &str, secret: &str) {
    let lower = log.to_ascii_lowercase();
    let s = secret.to_ascii_lowercase();
    for start in (0..s.len().saturating_sub(16)).step_by(2) {
        let piece = &s[start..start + 16];
        assert!(
            !lower.contains(piece),
            "{what} ({secret}) appears in the log as hex"
        );
    }
    let octets = unhex(&s);
    let debug = format!("{:?}", &octets[..8.min(octets.len())]);
    let debug = debug.trim_end_matches(']');
    assert!(
        !log.contains(debug),
        "{what} ({secret}) appears in the log as a Debug list"
    );
}

#[test]
fn case32_cookies_and_keys_never_appear_in_debug_logs() {
    let dir = TempDir::new("sec-secrets");
    let (cert, key) = make_cert(dir.path(), "server");
    let server_dump = dir.join("server-dump");
    let client_dump = dir.join("client-dump");
    let ntsport = free_tcp_port();
    let mut s = Daemon::start_with(
        &format!(
            "allow 127.0.0.1\nlocal stratum 3\nntsport {ntsport}\nntsservercert {}\n\
             ntsserverkey {}\nntsdumpdir {}",
            cert.display(),
            key.display(),
            server_dump.display()
        ),
        &["-d"],
        Ready::Answers,
    );
    let mut c = Daemon::start_with(
        &format!(
            "server 127.0.0.1 port {} nts ntsport {ntsport} iburst minpoll -2 maxpoll -2\n\
             ntstrustedcerts {}\nnosystemcert\nntsdumpdir {}",
            s.port,
            cert.display(),
            client_dump.display()
        ),
        &["-d"],
        Ready::PidFile,
    );
    let (ok, listing) = wait_selected(c.cmdport, Duration::from_secs(30));
    assert!(
        ok,
        "NTS client did not synchronise:\n{listing}\n{}\n{}",
        c.stderr(),
        s.stderr()
    );
    // A few more authenticated exchanges (each brings fresh cookies).
    std::thread::sleep(Duration::from_secs(2));
    assert!(c.terminate().success(), "{}", c.stderr());
    assert!(s.terminate().success(), "{}", s.stderr());
    let (clog, slog) = (c.stderr(), s.stderr());

    let session_file = client_dump.join("127.0.0.1.nts");
    let keys_file = server_dump.join("ntskeys");
    let mut secrets = Vec::new();
    for (file, what) in [
        (&session_file, "client session"),
        (&keys_file, "server keys"),
    ] {
        let mode = std::fs::metadata(file)
            .unwrap_or_else(|e| panic!("no {}: {e}\n{clog}\n{slog}", file.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{} mode {mode:o}", file.display());
        let text = std::fs::read_to_string(file).unwrap();
        let found = hex_tokens(&text);
        assert!(!found.is_empty(), "no secrets found in {what}:\n{text}");
        secrets.extend(found.into_iter().map(|h| (what, h)));
    }
    let session = std::fs::read_to_string(&session_file).unwrap();
    assert!(
        session.lines().any(|l| l.starts_with("cookie "))
            && session.lines().any(|l| l.starts_with("c2s ")),
        "unexpected session layout:\n{session}"
    );
    // Debug messages were on and the NTS path did log (the key exchange's debug lines).
    assert!(clog.contains("NTS cookies"), "no NTS debug output:\n{clog}");
    assert!(slog.contains("NTS-KE"), "no NTS-KE output:\n{slog}");
    for (what, secret) in &secrets {
        assert_absent(&clog, &format!("client log: {what}"), secret);
        assert_absent(&slog, &format!("server log: {what}"), secret);
    }
}
