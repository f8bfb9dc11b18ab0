//! Black-box comparison with the real chronyc 4.3 against a real chronyd 4.3 on loopback.
//!
//! Two chronyd run under `noclock … -x`: a `local stratum 8` server and a client of it (plus two
//! sources that never answer). Both tools talk to the client daemon through a caching relay on a
//! Unix socket: the first time a request (command code + payload, ignoring sequence and attempt)
//! is seen it is forwarded to chronyd and the reply is remembered; the same request later gets
//! the same reply bytes (with its own sequence). chronyc runs first, then gnomonc, so both see
//! identical daemon state even for ticking fields (LastRx, offsets, counters), and stdout,
//! stderr and exit status must match byte for byte. The relay also checks that gnomonc sent the
//! same request payloads as chronyc.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: failures should panic

use std::collections::HashMap;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn noclock() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/noclock");
    if repo.exists() {
        repo
    } else {
        PathBuf::from("/work/shared/tools/noclock")
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A free UDP port on 127.0.0.1 in 20000–60000, seeded by pid and a counter.
fn free_port(salt: u32) -> u16 {
    let base = std::process::id()
        .wrapping_mul(2654435761)
        .wrapping_add(salt.wrapping_mul(7919));
    for i in 0..2000u32 {
        let p = 20000 + (base.wrapping_add(i * 13) % 40000) as u16;
        if UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port");
}

/// (who and which command, request datagram) for every request the relay saw.
type RequestLog = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct Lab {
    dir: PathBuf,
    daemons: Vec<Child>,
    stop: Arc<AtomicBool>,
    relay: Option<std::thread::JoinHandle<()>>,
    requests: RequestLog,
    cmdport: u16,
    server_port: u16,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        if let Some(h) = self.relay.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_daemon(dir: &Path, name: &str, conf: &str) -> Child {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).unwrap();
    Command::new(noclock())
        .args(["chronyd", "-x", "-d", "-u", "root", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap()
}

/// Caching relay between the tools and chronyd's Unix socket.
fn relay(
    front: UnixDatagram,
    up: UnixDatagram,
    stop: Arc<AtomicBool>,
    tag: Arc<Mutex<String>>,
    log: RequestLog,
) {
    let mut cache: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    front
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    up.set_read_timeout(Some(Duration::from_millis(3000)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = front.recv_from(&mut buf) else {
            continue;
        };
        let req = buf[..n].to_vec();
        if n < 20 {
            continue;
        }
        // Key: everything except attempt (6..8) and sequence (8..12).
        let key: Vec<u8> = req[..6].iter().chain(&req[12..]).copied().collect();
        log.lock()
            .unwrap()
            .push((tag.lock().unwrap().clone(), req.clone()));
        let reply = match cache.get(&key) {
            Some(r) => Some(r.clone()),
            None => {
                let _ = up.send(&req);
                let mut rb = [0u8; 2048];
                match up.recv(&mut rb) {
                    Ok(m) => {
                        cache.insert(key, rb[..m].to_vec());
                        Some(rb[..m].to_vec())
                    }
                    Err(_) => None,
                }
            }
        };
        if let (Some(mut r), Some(path)) = (reply, from.as_pathname()) {
            if r.len() >= 20 {
                r[16..20].copy_from_slice(&req[8..12]);
            }
            let _ = front.send_to(&r, path);
        }
    }
}

fn lab(name: &str, salt: u32, tag: Arc<Mutex<String>>) -> Lab {
    let dir = std::env::temp_dir().join(format!("gnomonc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sock")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("sock"), std::fs::Permissions::from_mode(0o770)).unwrap();
    }
    let server_port = free_port(salt + 1);
    let client_port = free_port(salt + 2);
    let cmdport = free_port(salt + 3);
    let dead1 = free_port(salt + 4);
    let d = dir.display();
    let mut daemons = vec![start_daemon(
        &dir,
        "server",
        &format!("port {server_port}\ncmdport 0\nlocal stratum 8\nallow 127.0.0.1\npidfile {d}/server.pid\n"),
    )];
    daemons.push(start_daemon(
        &dir,
        "client",
        &format!(
            "port {client_port}\ncmdport {cmdport}\nbindcmdaddress 127.0.0.1\nbindcmdaddress {d}/sock/chronyd.sock\n\
             server localhost port {server_port} iburst minpoll 0 maxpoll 0\nserver 127.0.0.2 port {dead1}\n\
             allow 127.0.0.1\npidfile {d}/client.pid\ndumpdir {d}\nmanual\nsmoothtime 400 0.001\n"
        ),
    ));
    let sock = dir.join("sock/chronyd.sock");
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let front = UnixDatagram::bind(dir.join("sock/relay.sock")).unwrap();
    let up = UnixDatagram::bind(dir.join("sock/relay-up.sock")).unwrap();
    up.connect(&sock).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (s2, r2) = (stop.clone(), requests.clone());
    let relay = std::thread::spawn(move || relay(front, up, s2, tag, r2));
    Lab {
        dir,
        daemons,
        stop,
        relay: Some(relay),
        requests,
        cmdport,
        server_port,
    }
}

struct Run {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn run(prog: &str, args: &[&str]) -> Run {
    let o = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code(),
    }
}

const GNOMONC: &str = env!("CARGO_BIN_EXE_gnomonc");

/// The current UTC time of day as HH:MM:SS (chronyc's settime reads local time; the test
/// machines run in UTC, and a few seconds of error only change the sample's offset).
#[allow(clippy::disallowed_methods)]
fn utc_hms() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 86400;
    format!("{:02}:{:02}:{:02}", t / 3600, t % 3600 / 60, t % 60)
}

#[test]
fn reports_and_commands_match_chronyc_byte_for_byte() {
    if !have("chronyd") || !have("chronyc") {
        panic!("chronyd/chronyc 4.3 are required for this test (apt-get install chrony)");
    }
    let tag = Arc::new(Mutex::new(String::new()));
    let lab = lab("golden", 0, tag.clone());
    let relay = lab.dir.join("sock/relay.sock");
    let relay = relay.to_str().unwrap();
    // Wait (bounded) until the client daemon has selected its server (asking chronyd
    // directly: the relay would keep answering with the first, unsynchronised, reply).
    let direct = lab.dir.join("sock/chronyd.sock");
    let direct = direct.to_str().unwrap();
    let mut synced = false;
    for _ in 0..150 {
        let r = run(GNOMONC, &["-h", direct, "-n", "-c", "sources"]);
        if r.stdout.contains("^,*,127.0.0.1") {
            synced = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(synced, "chronyd did not synchronise to its local server");
    // One manual-input sample so that `manual list` has a row.
    let now = utc_hms();
    let st = run("chronyc", &["-h", direct, "settime", &now]);
    assert_eq!(st.code, Some(0), "settime: {}{}", st.stdout, st.stderr);
    // Let a few more samples in so sourcestats/ntpdata have data; restarting the cache per
    // command is not needed: each distinct request is fetched once.
    std::thread::sleep(Duration::from_secs(2));

    let settime = format!("settime {}", utc_hms());
    let add = format!("add server 127.0.0.3 port {} iburst", lab.server_port + 1);
    let commands: Vec<String> = [
        "tracking",
        "sources",
        "sources -v",
        "sources -a",
        "sourcestats",
        "sourcestats -v",
        "selectdata",
        "selectdata -v",
        "authdata",
        "authdata -v",
        "activity",
        "serverstats",
        "clients",
        "clients -k",
        "clients -p 1",
        "ntpdata",
        "ntpdata 127.0.0.1",
        "sourcename 127.0.0.2",
        "sourcename 127.0.0.1",
        "sourcename 1.2.3.4",
        "waitsync 1",
        "rtcdata",
        "smoothing",
        "manual list",
        "burst 2/2",
        "burst 1/2 127.0.0.1",
        "burst 2",
        "offline 255.255.255.0/127.0.0.0",
        "online 127.0.0.2",
        "online",
        "makestep",
        "makestep 0.1 3",
        "reselect",
        "cyclelogs",
        "dump",
        "refresh",
        "reload sources",
        &add,
        &add,
        &settime,
        "delete 127.0.0.3",
        "delete 127.0.0.9",
        "delete",
        "allow 10.0.0.0/8",
        "deny all 10.1.0.0/16",
        "allow 2001:db8::/32",
        "allow",
        "cmdallow 192.168.0.0/16",
        "accheck 10.0.0.1",
        "cmdaccheck 127.0.0.1",
        "local stratum 10",
        "local off",
        "maxpoll 127.0.0.2 9",
        "minpoll 127.0.0.2 5",
        "maxdelay 127.0.0.2 0.5",
        "maxdelaydevratio 127.0.0.2 8",
        "polltarget 127.0.0.2 9",
        "minstratum 127.0.0.2 2",
        "reselectdist 0.0001",
        "maxupdateskew 100",
        "rekey",
        "onoffline",
        "reset sources",
        "bogus",
        "tracking extra words",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut succeeded = 0;
    // Without -n both tools resolve addresses to names (here through /etc/hosts: 127.0.0.1 is
    // localhost); the "-N" marker below stands for that run.
    let configured = [
        "tracking -C",
        "sources -C",
        "sourcestats -C",
        "selectdata -C",
        "authdata -C",
        "ntpdata -C",
    ];
    let named = [
        "tracking -N",
        "sources -N",
        "sourcestats -N",
        "selectdata -N",
        "authdata -N",
        "clients -N",
    ];
    for cmd in commands
        .iter()
        .map(String::as_str)
        .chain(named)
        .chain(configured)
        .chain(["shutdown"])
    {
        let (cmd, resolve) = match cmd.strip_suffix(" -N") {
            Some(c) => (c, true),
            None => (cmd, false),
        };
        // "-C" marks a run with chronyc's -N (configured source names). gnomonc pipelines
        // those lookups, so only the set of requests is compared, not their order.
        let (cmd, configured_names) = match cmd.strip_suffix(" -C") {
            Some(c) => (c, true),
            None => (cmd, false),
        };
        for csv in [false, true] {
            let mut args = vec!["-h", relay];
            if !resolve {
                args.push("-n");
            }
            if csv {
                args.push("-c");
            }
            if configured_names {
                args.push("-N");
            }
            args.extend(cmd.split(' '));
            *tag.lock().unwrap() = format!("chronyc {cmd} {csv} {resolve} {configured_names}");
            let a = run("chronyc", &args);
            *tag.lock().unwrap() = format!("gnomonc {cmd} {csv} {resolve} {configured_names}");
            let b = run(GNOMONC, &args);
            compared += 1;
            if a.code == Some(0) && !a.stdout.is_empty() {
                succeeded += 1;
            }
            if cmd == "sources" && !csv && !resolve && !configured_names {
                assert!(
                    a.stdout.contains("^* 127.0.0.1"),
                    "chronyc sources: {}",
                    a.stdout
                );
            }
            if a.stdout != b.stdout || a.stderr != b.stderr || a.code != b.code {
                failures.push(format!(
                    "`{}`:\n--- chronyc ({:?})\n{}{}--- gnomonc ({:?})\n{}{}",
                    args[2..].join(" "),
                    a.code,
                    a.stdout,
                    a.stderr,
                    b.code,
                    b.stdout,
                    b.stderr
                ));
            }
            let log = lab.requests.lock().unwrap();
            let payloads = |who: &str| -> Vec<Vec<u8>> {
                log.iter()
                    .filter(|(t, _)| {
                        t == &format!("{who} {cmd} {csv} {resolve} {configured_names}")
                    })
                    .map(|(_, r)| r[..6].iter().chain(&r[12..]).copied().collect())
                    .collect()
            };
            let (mut pa, mut pb) = (payloads("chronyc"), payloads("gnomonc"));
            if configured_names {
                pa.sort();
                pb.sort();
            }
            if pa != pb {
                failures.push(format!(
                    "`{cmd}` (csv {csv}): request payloads differ from chronyc's"
                ));
            }
        }
    }
    // --json: every report is one valid JSON document with its documented fields.
    for (cmd, key) in [
        ("tracking", "reference_id"),
        ("sources", "sources"),
        ("sourcestats", "sourcestats"),
        ("selectdata", "selectdata"),
        ("authdata", "authdata"),
        ("activity", "online"),
        ("serverstats", "ntp_packets_received"),
        ("clients", "clients"),
        ("ntpdata", "ntpdata"),
    ] {
        let r = run(GNOMONC, &["-h", relay, "--json", cmd]);
        assert_eq!(r.code, Some(0), "{cmd}: {}{}", r.stdout, r.stderr);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{cmd}: {e}: {}", r.stdout));
        assert!(v.get(key).is_some(), "{cmd}: no {key} in {v}");
        if cmd == "sources" {
            assert_eq!(v["sources"][0]["state"], "selected", "{v}");
            assert!(v["sources"][0]["error_s"].as_f64().unwrap() > 0.0);
        }
    }
    assert!(compared > 100);
    // Guard against a vacuous pass where both tools fail the same way.
    assert!(succeeded > 70, "only {succeeded} chronyc runs succeeded");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn udp_errors_match_chronyc() {
    if !have("chronyd") || !have("chronyc") {
        panic!("chronyd/chronyc 4.3 are required for this test (apt-get install chrony)");
    }
    let lab = lab("udp", 100, Arc::new(Mutex::new(String::new())));
    let port = lab.cmdport.to_string();
    let closed = free_port(109).to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["-h", "127.0.0.1", "-p", &port, "-n", "clients"],
        vec!["-h", "127.0.0.1", "-p", &port, "-n", "-c", "clients"],
        vec!["-h", "127.0.0.1", "-p", &port, "-n", "serverstats"],
        vec!["-h", "127.0.0.1", "-p", &port, "-n", "burst", "2/2"],
        vec!["-h", "127.0.0.1", "-p", &port, "-n", "ntpdata", "1.2.3.4"],
        vec!["-h", "127.0.0.1", "-p", &closed, "-n", "tracking"],
        vec!["-h", "/nonexistent/dir/chronyd.sock", "tracking"],
        vec!["-h", "127.0.0.1", "-p", &port, "-m", "bogus", "activity"],
        // chronyc reads -p with atoi(): no "invalid port", just port 0.
        vec!["-h", "127.0.0.1", "-p", "x", "tracking"],
    ];
    // Argument errors, found before any request is sent (or sent to the closed port: 506).
    let lines = [
        "timeout 99",
        "timeout x",
        "timeout 2147483648",
        "timeout 99999999999",
        "timeout 100",
        "retries x",
        "retries 30",
        "retries 31",
        "retries -1",
        "sourcename",
        "sourcename foo.invalid",
        "accheck foo.invalid",
        "cmdaccheck",
        "ntpdata foo.invalid",
        "delete foo.invalid",
        "delete",
        "maxpoll",
        "minpoll 1.2.3.4",
        "maxdelay 1.2.3.4 x",
        "polltarget foo.invalid 3",
        "burst 1/2/3",
        "burst 1x/2",
        "burst 1/x",
        "burst 1/2 foo.invalid",
        "burst 1/2 x/8",
        "offline foo.invalid",
        "online foo.invalid/8",
        "online 1.2.3.4 5",
        "offline 1.2.3.4/8 x",
        "ntpdata 1.2.3.4 5",
        "accheck 1.2.3.4 x",
        "delete 1.2.3.4 x",
        "maxpoll 1.2.3.4 5x",
        "maxdelay 1.2.3.4 1x",
        "waitsync 2 0 0 0.1",
        "manual delete x",
        "manual delete 1x",
        "makestep 1",
        "makestep 1x 2",
        "makestep 1 2 3",
        "local stratum 16",
        "dfreq x",
        "doffset 1x",
        "reselectdist x",
        "clients -x",
        "reload",
        "reset x",
        "help",
    ];
    let mut cases = cases;
    for l in &lines {
        let mut args = vec!["-h", "127.0.0.1", "-p", closed.as_str()];
        args.extend(l.split(' '));
        cases.push(args);
    }
    for args in cases {
        let a = run("chronyc", &args);
        let b = run(GNOMONC, &args);
        assert_eq!(
            (a.stdout, a.stderr, a.code),
            (b.stdout, b.stderr, b.code),
            "{args:?}"
        );
    }
}
