//! chronyc `local` at run time, end to end on loopback, checked against chronyd 4.3 doing the
//! same. B (127.0.0.3) is configured `local stratum 10 orphan`; A (127.0.0.2) has no `local`
//! and follows B (`tracking`: 7F000003, stratum 11). Then on A:
//!
//! * `local stratum 10 orphan distance 0`: A is now an orphan-group member. B (stratum 10,
//!   reference ID 127.0.0.3) is above the requests' source address 127.0.0.1 that A's own
//!   reference ID is compared with, so A holds B back (`selectdata`: `O`) and, with nothing
//!   else selectable and a zero `local distance`, serves its local reference (7F7F0101,
//!   stratum 10). B keeps its own (A's address is larger than B's 127.0.0.1 too).
//! * `local off`: orphan mode is off again; B is an ordinary source and A follows it again.
//!
//! chronyd 4.3 as A shows exactly these `tracking`/`selectdata` figures (the same assertions
//! run against it); so does gnomond, whose engine takes the command's orphan setting.
//!
//! `makestep` under plain `-x` is here too: chronyd -x cannot step its clock, logs "Could not
//! step system clock" and answers `500 Failure`; gnomond now does the same (gnomond's `-X`
//! simulated clock still steps, see control_sources.rs).

// Tests read the real clocks and fail loudly on a broken environment.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// How long a role change may take.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

fn chronyc(socket: &Path, args: &str) -> (String, i32) {
    let mut cmd = Command::new(require_tool("chronyc"));
    cmd.args(["-n", "-h"])
        .arg(socket)
        .args(args.split_whitespace());
    let out = run_bounded(&mut cmd, Duration::from_secs(10));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (text, out.status.code().unwrap_or(-1))
}

/// A directory only its owner may enter (chronyd refuses a command socket anywhere else).
fn private_dir(tmp: &TempDir) -> PathBuf {
    let dir = tmp.join("run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Either daemon in role A, with its Unix command socket.
enum Member {
    Gnomond(Daemon),
    Chronyd(Chronyd, PathBuf, #[allow(dead_code)] TempDir),
}

impl Member {
    fn socket(&self) -> &Path {
        match self {
            Member::Gnomond(d) => &d.socket,
            Member::Chronyd(_, s, _) => s,
        }
    }

    fn log(&self) -> String {
        match self {
            Member::Gnomond(d) => d.stderr(),
            Member::Chronyd(c, _, _) => c.output(),
        }
    }
}

/// B: `local stratum 10 orphan` on 127.0.0.3, polling A.
fn member_b(port: u16, a_port: u16) -> Daemon {
    Daemon::start_on_port(
        port,
        &format!(
            "bindaddress 127.0.0.3\nallow 127.0.0.0/8\n\
             server 127.0.0.2 port {a_port} minpoll -2 maxpoll -2 iburst\n\
             local stratum 10 orphan"
        ),
        &[],
        Ready::PidFile,
    )
}

/// A's lines: no `local`, polling B.
fn a_conf(port: u16, b_port: u16) -> String {
    format!(
        "port {port}\nbindaddress 127.0.0.2\nallow 127.0.0.0/8\n\
         server 127.0.0.3 port {b_port} minpoll -2 maxpoll -2 iburst\nmakestep 0.001 -1"
    )
}

fn reference(tracking: &str) -> (String, f64) {
    let id = tracking
        .lines()
        .find(|l| l.starts_with("Reference ID"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    (id, tracking_value(tracking, "Stratum").unwrap_or(-1.0))
}

/// The `selectdata` state letter of the source at `ip`.
fn select_state(socket: &Path, ip: &str) -> Option<char> {
    chronyc(socket, "selectdata")
        .0
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(ip))
        .and_then(|l| l.chars().next())
}

/// Waits until `member`'s tracking shows reference `id` at `stratum` and its state for B is
/// `b_state`; on failure the last `tracking` and `selectdata`.
fn wait_for(member: &Member, id: &str, stratum: f64, b_state: char) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < SETTLE_LIMIT {
        let t = chronyc(member.socket(), "tracking").0;
        let state = select_state(member.socket(), "127.0.0.3");
        if reference(&t) == (id.to_string(), stratum) && state == Some(b_state) {
            return Ok(());
        }
        last = format!("{t}{}", chronyc(member.socket(), "selectdata").0);
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

fn hand_over_and_back(a: &Member, b: &Daemon) {
    let fail = |what: &str, last: String| -> ! {
        panic!(
            "{what}:\n{last}\nA's log:\n{}\nB's log:\n{}",
            a.log(),
            b.stderr()
        )
    };
    // Following B (`*`), which serves its local reference.
    if let Err(last) = wait_for(a, "7F000003", 11.0, '*') {
        fail("A does not follow B", last);
    }
    assert_eq!(
        chronyc(a.socket(), "local stratum 10 orphan distance 0"),
        ("200 OK\n".into(), 0)
    );
    if let Err(last) = wait_for(a, "7F7F0101", 10.0, 'O') {
        fail(
            "A did not become an orphan serving its local reference",
            last,
        );
    }
    let bt = chronyc(&b.socket, "tracking").0;
    assert_eq!(reference(&bt), ("7F7F0101".to_string(), 10.0), "{bt}");
    assert_eq!(chronyc(a.socket(), "local off"), ("200 OK\n".into(), 0));
    if let Err(last) = wait_for(a, "7F000003", 11.0, '*') {
        fail("A did not follow B again after `local off`", last);
    }
}

#[test]
fn orphan_mode_by_command_holds_back_the_group_as_configured() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let b = member_b(pb, pa);
    let a = Member::Gnomond(Daemon::start_on_port(
        pa,
        &a_conf(pa, pb),
        &[],
        Ready::PidFile,
    ));
    hand_over_and_back(&a, &b);
}

#[test]
fn chronyd_takes_orphan_mode_by_command_the_same_way() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let b = member_b(pb, pa);
    let tmp = TempDir::new("chronyd-local");
    let socket = private_dir(&tmp).join("chronyd.sock");
    let c = Chronyd::start(&format!(
        "cmdport 0\nbindcmdaddress {}\n{}",
        socket.display(),
        a_conf(pa, pb)
    ));
    let a = Member::Chronyd(c, socket, tmp);
    hand_over_and_back(&a, &b);
}

#[test]
fn makestep_under_x_fails_as_chronyds() {
    // No `-X`: the null clock stands for a clock gnomond may not touch, as chronyd's -x.
    let g = Daemon::start("allow 127.0.0.1\nlocal stratum 8");
    assert_eq!(chronyc(&g.socket, "makestep"), ("500 Failure\n".into(), 1));
    // The makestep directive's settings are still taken.
    assert_eq!(chronyc(&g.socket, "makestep 0.1 3"), ("200 OK\n".into(), 0));
    let tmp = TempDir::new("chronyd-makestep");
    let socket = private_dir(&tmp).join("chronyd.sock");
    let c = Chronyd::start(&format!(
        "port 0\ncmdport 0\nbindcmdaddress {}\nlocal stratum 8",
        socket.display()
    ));
    let start = Instant::now();
    while chronyc(&socket, "tracking").1 != 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", c.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(chronyc(&socket, "makestep"), ("500 Failure\n".into(), 1));
    assert!(c.output().contains("Could not step system clock"));
    assert!(g.stderr().contains("Could not step system clock"));
}
