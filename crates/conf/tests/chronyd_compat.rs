//! Our parser against the real chronyd 4.3: same accept/reject decision, same fatal wording,
//! same `-p` output, line by line and for a configuration using many directives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::{chronyd_p, TempDir};
use gnomon_conf::load_file;

/// Lines whose fate does not depend on DNS or on the local machine.
const LINES: &[&str] = &[
    // accepted
    "server 192.0.2.1 iburst",
    "SERVER 192.0.2.1 IBURST MINPOLL 3",
    "server ntp.example.com iburst minpoll 4 maxpoll 8 key 3",
    "server a minpoll +3",
    "server a minpoll 30",
    "server a maxsources 2",
    "peer 172.16.3.101",
    "pool 2.rocky.pool.ntp.org iburst maxsources 2",
    "pool a maxsources 17",
    "server a maxdelayquant 0.5",
    "server a extfield F323",
    "server a extfield 0xF323",
    "server a version 3 certset 1 copy filter 3",
    "server a nts key 1",
    "server a asymmetry 0.5 offset 1 mindelay 1 presend 1 polltarget 1 minstratum 1 ntsport 1",
    "server a auto_offline offline burst iburst noselect prefer require trust xleave",
    "server a minsamples 1 maxsamples 2 maxdelayratio 2 maxdelaydevratio 3 maxdelay inf",
    "server [::1]",
    "server ::1 port 11123",
    "server 127.127.1.0 iburst",
    "port 0",
    "port 1x",
    "port 70000",
    "port -1",
    "port 0x10",
    "cmdport 99999",
    "clientloglimit -5",
    "clientloglimit 1x",
    "maxsamples 1.5",
    "acquisitionport 1x",
    "dscp 46",
    "combinelimit 1x",
    "maxdistance 1x",
    "minsources 2",
    "fallbackdrift 1 2x",
    "makestep 1 3x",
    "makestep 1.0 -1",
    "maxchange 1 2 3x",
    "smoothtime 400 0.001 leaponly",
    "smoothtime 1 2x",
    "tempcomp /a 1 2 3 4 5x",
    "tempcomp /a 1 /b",
    "tempcomp /a 1 2",
    "broadcast 1x 192.0.2.255",
    "broadcast 10 192.0.2.255 1x",
    "initstepslew 10",
    "allow",
    "allow all",
    "deny all",
    "allow 192.168",
    "allow 10/8",
    "allow 10.1/16",
    "allow 10.0.0.1/8",
    "allow 1.2.3",
    "allow 1.2.3.4/33",
    "allow ::1",
    "allow 2001:db8::/32",
    "allow 2001:db8::/129",
    "allow fe80::/10",
    "allow 0/0",
    "allow ::/0",
    "allow all 1.2.3.4",
    "allow +3",
    "allow 1.+2",
    "allow 1.2.3.4/+8",
    "allow 01.2",
    "allow 00000001.2",
    "allow 1.2/33",
    "allow 10/08",
    "allow ::ffff:1.2.3.4/120",
    "smoothtime 1.2.3 4",
    "makestep 1 2.5",
    "ntstrustedcerts 0x10 /a",
    "cmdallow all 1.2",
    "cmddeny",
    "ratelimit",
    "ratelimit interval 1 burst 16",
    "ratelimit Interval 1",
    "ratelimit interval -20 burst 300 leak 5",
    "ratelimit interval 1 interval 2",
    "ntsratelimit interval 1",
    "cmdratelimit interval -4 burst 1 leak 1",
    "local",
    "local stratum 10",
    "local stratum 15",
    "local Stratum 3",
    "local stratum +3",
    "local orphan distance 1.5",
    "local distance 1 orphan stratum 5",
    "local orphan orphan",
    "log",
    "log tracking measurements statistics",
    "log rawmeasurements measurements statistics tracking rtc refclocks tempcomp selection",
    "hwtimestamp eth0",
    "hwtimestamp *",
    "hwtimestamp eth0 minpoll 1 minsamples 1 maxsamples 2 precision 1e-9 txcomp 1 rxcomp 1 nocrossts rxfilter all",
    "hwtimestamp eth0 rxfilter ntp",
    "refclock SHM 0",
    "refclock SHM 0 refid GPS poll 3",
    "refclock PPS /dev/pps0 lock NMEA refid PPS",
    "refclock SOCK /run/a.sock:opt",
    "refclock FOO 0",
    "refclock shm 0",
    "refclock SHM 0 poll 1prefer",
    "refclock SHM 0 refid ABCDprefer",
    "refclock SHM 0:perm=0644 refid GPS",
    "refclock PHC /dev/ptp0 poll 0 dpoll -2 offset 0.1 delay 0.2 stratum 1 precision 1e-7 maxdispersion 1 filter 4 prefer noselect trust require tai local minsamples 1 maxsamples 4 rate 1 maxlockage 2 width 0.1 pps",
    "bindcmdaddress /",
    "bindcmdaddress ::1",
    "bindcmdaddress /var/run/x.sock",
    "bindaddress ::",
    "bindacqaddress 192.0.2.1",
    "authselectmode require",
    "leapsecmode slew",
    "leapsectz right/UTC",
    "ntstrustedcerts 1 /a",
    "ntstrustedcerts /a",
    "driftfile /var/lib/chrony/drift",
    "keyfile /nonexistent/keys",
    "sourcedir",
    "sourcedir /nonexistent",
    "dumponexit",
    "dumponexit 1",
    "ntscachedir /x",
    "sched_priority 200",
    "mailonchange root@localhost 0.5",
    "manual",
    "rtcsync",
    "lock_all",
    "noclientlog",
    "nosystemcert",
    "rtconutc",
    "  leapsectz   right/UTC   ",
    "\x0Bport\x0B5\x0C",
    "rtcsync\0 junk",
    "server 192.0.2.1\r",
    "# comment",
    "; comment",
    "! comment",
    "% comment",
    "   # indented comment",
    "",
    // rejected
    "schedrr 1",
    "minpoll 4",
    "maxpoll 10",
    "kernel.time_adj=0",
    "ratelimit ntp interval 1 burst 8",
    "server",
    "server 1.2.3.4 foo",
    "server 1.2.3.4 minpoll",
    "server 1.2.3.4 minpoll x",
    "server a minpoll 4x",
    "server a key x",
    "server a key 1x",
    "server a maxdelay 1x",
    "server a extfield F324",
    "server a extfield 1",
    "server a ipv4",
    "server a maxunreach 3",
    "server a port 1x",
    "server 10.0.0.1 iburst # comment",
    "pool",
    "peer",
    "port",
    "port x",
    "port 1 2",
    "allow 300.1.1.1",
    "allow 1.2.3.4 5",
    "allow 1.2.3.4.5",
    "allow fe80::1%eth0",
    "allow 1.2.3.4/-1",
    "allow 1.2.3.4/",
    "allow /8",
    "allow 1.2.3.4/24x",
    "allow all all",
    "allow 1.2.3.4/ 24",
    "allow -3",
    "allow 256",
    "allow 1..2",
    "allow 1.2.3.256",
    "allow 3/8x",
    "allow 1.2.3.4/8/9",
    "allow 1.2.",
    "allow .1",
    "allow [::1]",
    "allow -1.2",
    "makestep 1.2.3 4",
    "fallbackdrift 1x 2",
    "makestep",
    "makestep 1",
    "makestep a b",
    "makestep 1 2 3",
    "makestep 1x 3",
    "driftfile",
    "driftfile /a b",
    "driftfile /a interval 5",
    "rtcsync 1",
    "local stratum 0",
    "local stratum 16",
    "local stratum 3x",
    "local foo",
    "local distance 1x",
    "local stratum",
    "local activate 0.1",
    "bindaddress foo",
    "bindaddress 1.2.3.4 5",
    "bindcmdaddress foo",
    "log foo",
    "log Tracking",
    "minsamples x",
    "combinelimit x",
    "clientloglimit x",
    "fallbackdrift 1",
    "fallbackdrift 1 2 3",
    "hwtimestamp",
    "hwtimestamp eth0 eth1",
    "hwtimestamp eth0 rxfilter foo",
    "hwtimestamp eth0 minpoll 1x",
    "hwtimestamp * foo",
    "hwtimestamp eth0 maxpoll 2",
    "smoothtime 1",
    "smoothtime 1 2 foo",
    "leapsecmode foo",
    "leapsecmode",
    "authselectmode foo",
    "authselectmode prefer mix",
    "authselectmode",
    "keyfile",
    "user",
    "user a b",
    "pidfile",
    "leapsectz a b",
    "manual 1",
    "lock_all 1",
    "ratelimit interval 1x",
    "ratelimit kod 2",
    "ratelimit burst",
    "ratelimit interval 1 burst 2 leak 3 foo 4",
    "ntstrustedcerts 1 /a /b",
    "ntstrustedcerts x /a",
    "mailonchange a",
    "mailonchange a 1 2",
    "maxchange 1 2",
    "tempcomp /a 1 2 3 4 5 6",
    "tempcomp /a 1 2 3 4",
    "tempcomp",
    "broadcast 10 1.2.3.4 123 5",
    "broadcast 10",
    "broadcast 10 foo",
    "broadcast",
    "initstepslew x",
    "initstepslew",
    "refclock",
    "refclock SHM",
    "refclock SHM 0 poll x",
    "refclock SHM 0 foo",
    "refclock SHM 0 poll 1x",
    "refclock SHM 0 refid ABCDEFG",
    "refclock SHM 0 rate 1.5",
    "refclock SHM 0 lock",
    "refclock SHM 0 lock ABCDE",
    "refclock SHM 0 maxunreach 3",
    "confdir",
    "include",
    "ntscachedir",
    "acquisitionport",
    "cmdport",
    "refresh 100",
    "opencommands tracking",
];

#[test]
fn every_line_gets_chronyds_verdict_wording_and_print() {
    let dir = TempDir::new("lines");
    let file = dir.0.join("one.conf");
    let mut mismatches = Vec::new();
    for line in LINES {
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let theirs = chronyd_p(&file);
        let ours = load_file(&file);
        let verdict = match (&ours, theirs.ok) {
            (Ok(c), true) => {
                let text = c.to_chrony_text();
                (text != theirs.stdout)
                    .then(|| format!("print: ours {text:?} chronyd {:?}", theirs.stdout))
            }
            (Err(e), false) => {
                let msg = e.chrony_message();
                (Some(&msg) != theirs.fatal.as_ref())
                    .then(|| format!("wording: ours {msg:?} chronyd {:?}", theirs.fatal))
            }
            (Ok(_), false) => {
                // Accepted on purpose: directives and options newer than 4.3, flagged by lint.
                let c = ours.as_ref().unwrap();
                let newer = gnomon_conf::lint::lint(c)
                    .iter()
                    .any(|f| f.id == "newer-than-chrony-4.3");
                (!newer).then(|| format!("we accept, chronyd rejects: {:?}", theirs.fatal))
            }
            (Err(e), true) => Some(format!("we reject ({e}), chronyd accepts")),
        };
        if let Some(v) = verdict {
            mismatches.push(format!("{line:?}: {v}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn many_directive_config_prints_like_chronyd() {
    let dir = TempDir::new("many");
    let d = &dir.0;
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    std::fs::create_dir_all(d.join("conf2.d")).unwrap();
    std::fs::write(d.join("conf.d/10-a.conf"), "rtcsync\n# c\n\nminsources 2\n").unwrap();
    std::fs::write(d.join("conf2.d/05-b.conf"), "maxdistance 16\n").unwrap();
    std::fs::write(d.join("conf2.d/10-a.conf"), "manual\n").unwrap();
    std::fs::write(d.join("inc-1.conf"), "cmdport 11323\n").unwrap();
    std::fs::write(d.join("inc-2.conf"), "\tbindcmdaddress   127.0.0.1\n").unwrap();
    let main = format!(
        "# Main\npool 0.pool.ntp.org iburst maxsources 4\nServer\t192.0.2.10  iburst prefer minpoll 4 maxpoll 6\n\
peer 172.16.3.101 key 1\nrefclock SHM 0 refid GPS poll 3 offset 0.5\nallow 192.168.1.0/24\ndeny 192.168.1.7\n\
cmdallow 10/8\nratelimit interval 1 burst 16\nclientloglimit 100000\nlocal stratum 10 orphan\n\
makestep 1.0 3\ndriftfile /var/lib/chrony/drift\nkeyfile /etc/chrony/chrony.keys\nlogdir /var/log/chrony\n\
log tracking measurements statistics\nleapsectz right/UTC\nhwtimestamp eth0 rxfilter ntp\n\
ntsservercert /etc/c.crt\nntsserverkey /etc/c.key\nntsport 4460\nntsprocesses 4\nlock_all\n\
sched_priority 1\nconfdir {0}/conf.d {0}/conf2.d\ninclude {0}/inc-*.conf\nsourcedir {0}/sources.d\n\
dumpdir /var/lib/chrony\nmaxupdateskew 100\nsmoothtime 400 0.001 leaponly\ncorrtimeratio 3\n\
authselectmode mix\nport 11123\nuser _chrony\npidfile /run/x.pid\n",
        d.display()
    );
    std::fs::write(d.join("main.conf"), main).unwrap();
    let theirs = chronyd_p(&d.join("main.conf"));
    assert!(theirs.ok, "chronyd rejected: {}", theirs.stderr);
    let ours = load_file(&d.join("main.conf")).unwrap();
    assert_eq!(ours.to_chrony_text(), theirs.stdout);
}

#[test]
fn include_errors_match_chronyd() {
    let dir = TempDir::new("inc");
    let d = &dir.0;
    // Missing literal include.
    std::fs::write(
        d.join("a.conf"),
        format!("rtcsync\ninclude {}/missing.conf\n", d.display()),
    )
    .unwrap();
    // Error inside an included file names that file.
    std::fs::write(d.join("bad.conf"), "rtcsync\nfoo 1\n").unwrap();
    std::fs::write(
        d.join("b.conf"),
        format!("\n\ninclude {}/bad.conf\n", d.display()),
    )
    .unwrap();
    // Self include: level limit.
    std::fs::write(
        d.join("c.conf"),
        format!("include {}/c.conf\n", d.display()),
    )
    .unwrap();
    // Too many arguments.
    std::fs::write(
        d.join("e.conf"),
        format!("include {0}/bad.conf {0}/x\n", d.display()),
    )
    .unwrap();
    for f in ["a.conf", "b.conf", "c.conf", "e.conf", "nonexistent.conf"] {
        let p = d.join(f);
        let theirs = chronyd_p(&p);
        let ours = load_file(&p).unwrap_err();
        assert!(!theirs.ok);
        assert_eq!(Some(ours.chrony_message()), theirs.fatal, "{f}");
    }
}

#[test]
fn directories_and_bad_globs_include_nothing_like_chronyd() {
    let dir = TempDir::new("incdir");
    let d = &dir.0;
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/x.conf"), "manual\n").unwrap();
    std::fs::write(
        d.join("m.conf"),
        format!(
            "include {0}/sub\ninclude {0}/[\ninclude {0}/s*/x.conf\nrtcsync\n",
            d.display()
        ),
    )
    .unwrap();
    let theirs = chronyd_p(&d.join("m.conf"));
    assert!(theirs.ok, "{}", theirs.stderr);
    assert_eq!(
        load_file(&d.join("m.conf")).unwrap().to_chrony_text(),
        theirs.stdout
    );
}

#[test]
fn include_depth_limit_is_chronyds() {
    let dir = TempDir::new("depth");
    let d = &dir.0;
    for leaf in [9usize, 10] {
        for i in 0..leaf {
            std::fs::write(
                d.join(format!("l{i}.conf")),
                format!("include {}/l{}.conf\n", d.display(), i + 1),
            )
            .unwrap();
        }
        std::fs::write(d.join(format!("l{leaf}.conf")), "rtcsync\n").unwrap();
        let theirs = chronyd_p(&d.join("l0.conf"));
        let ours = load_file(&d.join("l0.conf"));
        assert_eq!(theirs.ok, ours.is_ok(), "leaf at level {leaf}");
    }
}

#[test]
fn command_line_directives_print_and_fail_like_chronyd() {
    let run = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--bounding-set=-sys_time", "--inh-caps=-sys_time", "--"])
            .arg(common::chronyd_path())
            .args(["-x", "-p"])
            .args(args)
            .output()
            .unwrap()
    };
    let good = ["SERVER   192.0.2.1  iburst", "rtcsync", "# c", "allow 10/8"];
    let out = run(&good);
    assert!(out.status.success());
    let lines: Vec<String> = good.iter().map(|s| s.to_string()).collect();
    let ours = gnomon_conf::load_lines(&lines).unwrap();
    assert_eq!(ours.to_chrony_text(), String::from_utf8_lossy(&out.stdout));

    let bad = ["rtcsync", "server a minpoll x"];
    let out = run(&bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
    let ours = gnomon_conf::load_lines(&lines).unwrap_err();
    assert!(
        stderr.contains(&format!("Fatal error : {}", ours.chrony_message())),
        "{stderr}"
    );
}
