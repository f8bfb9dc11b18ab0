//! `selectdata`'s state column (chronyc(1)) against chronyd 4.3: for each configuration a
//! chronyd -x client and a gnomond -x client poll the same three chronyd servers on loopback
//! (127.0.0.2–4, `local stratum` 2–4), and both must reach the states chronyd 4.3 showed in
//! black-box runs of that configuration, with the matching `sources` symbols:
//!
//! | configuration                   | 127.0.0.2 | 127.0.0.3 | 127.0.0.4 |
//! |---------------------------------|-----------|-----------|-----------|
//! | `prefer` on .3                  | `P` (`-`) | `*` (`*`) | `P` (`-`) |
//! | `trust` on .3                   | `T` (`?`) | `*` (`*`) | `T` (`?`) |
//! | `minsources 4`                  | `W` (`-`) | `W` (`-`) | `W` (`-`) |
//! | `require` on unreachable .7     | `W` (`-`) | `s` (`?`) | `W` (`-`) |
//! | `local stratum 3 orphan`        | `*` (`*`) | `O` (`?`) | `O` (`?`) |
//! | `maxdistance 1e-6`, .3 noselect | `d` (`?`) | `N` (`?`) | —         |
//!
//! The Score column stays 1.0 in all of them for both daemons (chronyd's reselection score only
//! moves when a source better than the selected one keeps coming close; gnomond does not model
//! it).

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// How long the states may take to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(25);

/// chronyc over a Unix command socket (chronyd answers `selectdata` nowhere else).
fn chronyc(socket: &Path, args: &str) -> String {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .args(["-n", "-h"])
            .arg(socket)
            .args(args.split_whitespace()),
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Three chronyd servers, 127.0.0.N at stratum N (N = 2, 3, 4), with their ports.
struct Servers {
    _daemons: Vec<Chronyd>,
    ports: [u16; 3],
}

fn servers() -> Servers {
    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    let daemons = (0..3)
        .map(|i| {
            let n = i + 2;
            Chronyd::start(&format!(
                "port {}\ncmdport 0\nbindcmdaddress /\nbindaddress 127.0.0.{n}\n\
                 allow 127.0.0.0/8\nlocal stratum {n}",
                ports[i]
            ))
        })
        .collect();
    Servers {
        _daemons: daemons,
        ports,
    }
}

/// `(address, selectdata state, sources symbol)` rows.
fn states(socket: &Path) -> Vec<(String, char, char)> {
    let select = chronyc(socket, "selectdata");
    let sources = chronyc(socket, "sources");
    select
        .lines()
        .skip(2)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let state = w.next()?.chars().next()?;
            let ip = w.next()?.to_string();
            let symbol = sources
                .lines()
                .find(|s| s.split_whitespace().nth(1) == Some(ip.as_str()))?
                .chars()
                .nth(1)?;
            Some((ip, state, symbol))
        })
        .collect()
}

fn wait_states(socket: &Path, want: &[(&str, char, char)]) -> Result<(), String> {
    let want: Vec<(String, char, char)> = want
        .iter()
        .map(|(ip, s, y)| (ip.to_string(), *s, *y))
        .collect();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < SETTLE_LIMIT {
        if states(socket) == want {
            return Ok(());
        }
        last = format!(
            "{}{}",
            chronyc(socket, "selectdata"),
            chronyc(socket, "sources")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

/// Runs both clients with the source lines `sources(ports)` and `extra` directives and checks
/// both reach `want`.
fn compare(sources: impl Fn(&[u16; 3]) -> String, extra: &str, want: &[(&str, char, char)]) {
    let s = servers();
    let conf = format!("{}\n{extra}", sources(&s.ports));
    // chronyd wants its command socket in a directory only its owner may enter.
    let tmp = TempDir::new("chronyd-selectdata");
    let run = tmp.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = run.join("chronyd.sock");
    let c = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\n{conf}",
        socket.display()
    ));
    let g = Daemon::start_with(&conf, &[], Ready::PidFile);
    if let Err(last) = wait_states(&socket, want) {
        panic!("chronyd does not show {want:?}:\n{last}\n{}", c.output());
    }
    if let Err(last) = wait_states(&g.socket, want) {
        panic!(
            "gnomond does not show {want:?} as chronyd does:\n{last}\n{}",
            g.stderr()
        );
    }
    for line in chronyc(&g.socket, "selectdata").lines().skip(2) {
        assert_eq!(line.split_whitespace().nth(6), Some("1.0"), "{line}");
    }
}

fn line(ip: &str, port: u16, options: &str) -> String {
    format!("server {ip} port {port} minpoll -2 maxpoll -2 iburst {options}\n")
}

fn three(options: [&'static str; 3]) -> impl Fn(&[u16; 3]) -> String {
    move |p: &[u16; 3]| {
        (0..3)
            .map(|i| line(&format!("127.0.0.{}", i + 2), p[i], options[i]))
            .collect()
    }
}

#[test]
fn sources_beside_a_prefer_source_are_p() {
    compare(
        three(["", "prefer", ""]),
        "",
        &[
            ("127.0.0.2", 'P', '-'),
            ("127.0.0.3", '*', '*'),
            ("127.0.0.4", 'P', '-'),
        ],
    );
}

#[test]
fn sources_not_inside_the_trusted_interval_are_t() {
    compare(
        three(["", "trust", ""]),
        "",
        &[
            ("127.0.0.2", 'T', '?'),
            ("127.0.0.3", '*', '*'),
            ("127.0.0.4", 'T', '?'),
        ],
    );
}

#[test]
fn truechimers_short_of_minsources_are_w() {
    compare(
        three(["", "", ""]),
        "minsources 4",
        &[
            ("127.0.0.2", 'W', '-'),
            ("127.0.0.3", 'W', '-'),
            ("127.0.0.4", 'W', '-'),
        ],
    );
}

#[test]
fn truechimers_without_the_required_source_are_w() {
    // 127.0.0.7 runs nothing: the required source is never heard from.
    let sources = |p: &[u16; 3]| {
        format!(
            "{}{}{}",
            line("127.0.0.2", p[0], ""),
            line("127.0.0.7", p[1], "require"),
            line("127.0.0.4", p[2], "")
        )
    };
    compare(
        sources,
        "",
        &[
            ("127.0.0.2", 'W', '-'),
            ("127.0.0.7", 's', '?'),
            ("127.0.0.4", 'W', '-'),
        ],
    );
}

#[test]
fn orphan_group_members_are_o() {
    compare(
        three(["", "", ""]),
        "local stratum 3 orphan",
        &[
            ("127.0.0.2", '*', '*'),
            ("127.0.0.3", 'O', '?'),
            ("127.0.0.4", 'O', '?'),
        ],
    );
}

#[test]
fn too_distant_sources_are_d_and_noselect_n() {
    let sources = |p: &[u16; 3]| {
        format!(
            "{}{}",
            line("127.0.0.2", p[0], ""),
            line("127.0.0.3", p[1], "noselect")
        )
    };
    compare(
        sources,
        "maxdistance 0.000001",
        &[("127.0.0.2", 'd', '?'), ("127.0.0.3", 'N', '?')],
    );
}
