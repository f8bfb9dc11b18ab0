//! An NTS pool (`pool NAME nts`) against a real chronyd 4.3 NTS server, in a private network
//! namespace so that the name (`localhost`, which resolves from /etc/hosts without any DNS
//! query) never leads a lookup off the machine. For the pool to have two members, gnomond runs
//! in a private mount namespace whose /etc/hosts gives `localhost` two addresses, 127.0.0.1
//! and 127.0.0.2 (both on the namespace's loopback; the machine's /etc/hosts is untouched).
//! Each of the two members makes its own key exchange with the pool's name as the certificate
//! name and is reached, gnomond synchronises, and chronyd counts the requests as authenticated
//! (catalogue case 22 for pool members: no member is ever used unauthenticated); with a
//! certificate it does not trust, no member synchronises and chronyd sees no authenticated
//! request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod support;

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// A chronyd NTS server on every IPv4 address of the private namespace's loopback (127/8)
/// and on ::1 (`local stratum 5`): it, its NTP port, its NTS-KE port and its Unix command
/// socket (kept in `dir`). Only ever started inside a [`Netns`], which has nothing but `lo`.
fn nts_server(dir: &Path, cert: &Path, key: &Path) -> (Chronyd, u16, u16, PathBuf) {
    let port = free_udp_port();
    let ntsport = free_tcp_port();
    let sockdir = dir.join("sock");
    std::fs::create_dir(&sockdir).unwrap();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = sockdir.join("chronyd.sock");
    let c = Chronyd::start(&format!(
        "port {port}\nbindaddress ::1\nallow 127.0.0.0/8\nallow ::1\n\
         local stratum 5\ncmdport 0\nbindcmdaddress {}\nntsport {ntsport}\nntsservercert {}\n\
         ntsserverkey {}\nntsdumpdir {}",
        socket.display(),
        cert.display(),
        key.display(),
        dir.display()
    ));
    wait_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
        "chronyd",
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", ntsport)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "chronyd's NTS-KE port did not open:\n{}",
            c.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (c, port, ntsport, socket)
}

/// chronyd's `serverstats` line starting with `label`.
fn serverstat(socket: &Path, label: &str) -> u64 {
    let out = run_bounded(
        Command::new(require_tool("chronyc"))
            .args(["-n", "-h"])
            .arg(socket)
            .arg("serverstats"),
        Duration::from_secs(5),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no serverstats from chronyd:\n{text}{out:?}"))
}

/// Gives the calling thread, and every process it starts from now on, a private mount
/// namespace in which /etc/hosts is `hosts` (a bind mount that never propagates back: the
/// namespace's mounts are made private first). The namespace ends with the thread and its
/// children, so nothing needs undoing; the machine's /etc/hosts is never touched.
#[allow(unsafe_code)]
fn private_hosts(hosts: &Path) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let root = CString::new("/").unwrap();
    let target = CString::new("/etc/hosts").unwrap();
    let source = CString::new(hosts.as_os_str().as_bytes()).unwrap();
    let err = || std::io::Error::last_os_error();
    // SAFETY: plain system calls with NUL-terminated strings that outlive them; unshare affects
    // only this thread (CLONE_FS unshares its file-system attributes from the other threads).
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS | libc::CLONE_FS),
            0,
            "unshare(CLONE_NEWNS): {}",
            err()
        );
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "making the mounts private: {}",
            err()
        );
        assert_eq!(
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null()
            ),
            0,
            "bind-mounting {} on /etc/hosts: {}",
            hosts.display(),
            err()
        );
    }
}

/// The `^` lines of a `sources` listing.
fn source_lines(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| l.starts_with('^'))
        .map(str::to_string)
        .collect()
}

#[test]
fn nts_pool_members_each_key_exchange_and_synchronise_in_a_namespace() {
    let ns = Netns::new();
    in_netns(&ns, || {
        let dir = TempDir::new("sec-nts-pool");
        let (cert, key) = make_cert(dir.path(), "server");
        let (c, port, ntsport, socket) = nts_server(dir.path(), &cert, &key);
        // The readiness probe counts as an accepted NTS-KE connection: only later ones matter.
        let probes = serverstat(&socket, "NTS-KE connections accepted");
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.2 localhost\n").unwrap();
        private_hosts(&hosts);
        let d = Daemon::start(&format!(
            "pool localhost port {port} nts ntsport {ntsport} iburst minpoll -2 maxpoll -2 \
             maxsources 2\nallow 127.0.0.1\nntstrustedcerts {}\nnosystemcert",
            cert.display()
        ));
        let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(30));
        assert!(
            ok,
            "NTS pool not selected:\n{listing}\n--- gnomond\n{}\n--- chronyd\n{}",
            d.stderr(),
            c.output()
        );
        // Both addresses of the name become members named by the pool, each reached (an NTS
        // source takes only authenticated replies) after its own key exchange.
        let members = ["127.0.0.1", "127.0.0.2"];
        let reached = |lines: &[String], ip: &str| {
            lines.iter().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.get(1) == Some(&ip) && w.get(4).is_some_and(|r| *r != "0")
            })
        };
        let start = Instant::now();
        let mut lines = source_lines(&listing);
        let mut exchanges = 0;
        while start.elapsed() < Duration::from_secs(30) {
            lines = source_lines(&chronyc_sources(d.cmdport));
            exchanges = serverstat(&socket, "NTS-KE connections accepted") - probes;
            if members.iter().all(|ip| reached(&lines, ip)) && exchanges >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(
            lines.len() == 2 && members.iter().all(|ip| reached(&lines, ip)),
            "pool members (want both of {members:?}, reached): {lines:?}\n{}",
            d.stderr()
        );
        assert!(
            d.stderr().contains("(localhost)"),
            "members not named by the pool:\n{}",
            d.stderr()
        );
        assert!(
            exchanges >= 2,
            "{exchanges} key exchanges for 2 members:\n{}",
            d.stderr()
        );
        assert!(serverstat(&socket, "Authenticated NTP packets") > 0);
    });
}

#[test]
fn nts_pool_with_an_untrusted_certificate_never_synchronises() {
    let ns = Netns::new();
    in_netns(&ns, || {
        let dir = TempDir::new("sec-nts-pool-bad");
        let (cert, key) = make_cert(dir.path(), "server");
        let (other, _) = make_cert(dir.path(), "other");
        let (c, port, ntsport, socket) = nts_server(dir.path(), &cert, &key);
        // The readiness probes count as received packets: only later ones matter.
        let probes = serverstat(&socket, "NTP packets received");
        let d = Daemon::start(&format!(
            "pool localhost port {port} nts ntsport {ntsport} iburst minpoll -2 maxpoll -2 \
             maxsources 2\nallow 127.0.0.1\nntstrustedcerts {}\nnosystemcert",
            other.display()
        ));
        let (ok, listing) = wait_selected(d.cmdport, Duration::from_secs(8));
        assert!(
            !ok,
            "selected with an untrusted certificate:\n{listing}\n{}\n{}",
            d.stderr(),
            c.output()
        );
        // Key exchanges were attempted (so the refusal is the certificate's), yet nothing
        // unauthenticated reached the server.
        assert!(serverstat(&socket, "NTS-KE connections accepted") >= 1);
        assert_eq!(serverstat(&socket, "NTP packets received"), probes);
        assert_eq!(serverstat(&socket, "Authenticated NTP packets"), 0);
    });
}
