//! Black-box agreement with chronyd 4.3 on which NTP packets are well-formed.
//!
//! A chronyd (`local stratum 10`, under `noclock … -x`, on a free loopback port, with an MD5
//! key) is sent packets built with this crate's encoders. For every probe whose authentication
//! is absent or valid, chronyd answers exactly when `Packet::decode` accepts it, and every
//! answer decodes, echoes our transmit timestamp and, when keyed, carries a MAC that verifies
//! over `Packet::authenticated_part`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: failures should panic

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gnomon_wire::extension::{
    encode_extension_field_min, FIELD_EXP_MONO_ROOT, MIN_LAST_EXTENSION_FIELD_LEN,
};
use gnomon_wire::{encode_mac, Header, Mode, NtpTimestamp, Packet};
use md5::{Digest, Md5};

const KEY_1: [u8; 16] = *b"gnomon-wire-key1";

/// 28 octets announcing an extension field of length 18 (not a multiple of 4).
const BAD_LENGTH_FIELD: [u8; 28] = {
    let mut b = [0u8; 28];
    b[1] = 1;
    b[3] = 18;
    b
};

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

/// A free UDP port on 127.0.0.1 in 20000–60000, derived from the pid.
fn free_port() -> u16 {
    let base = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(17);
    for i in 0..2000u32 {
        let p = 20000 + (base.wrapping_add(i * 31) % 40000) as u16;
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port");
}

/// chronyd and its directory; killed and removed on drop, even when the test fails.
struct Chronyd {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_chronyd() -> Chronyd {
    assert!(
        have("chronyd"),
        "chronyd 4.3 is required for this test (apt-get install chrony)"
    );
    let port = free_port();
    let dir =
        std::env::temp_dir().join(format!("gnomon-wire-interop-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hex: String = KEY_1.iter().map(|b| format!("{b:02X}")).collect();
    std::fs::write(dir.join("keys"), format!("1 MD5 HEX:{hex}\n")).unwrap();
    let conf = format!(
        "allow 127.0.0.1\nbindaddress 127.0.0.1\nport {port}\nlocal stratum 10\ncmdport 0\n\
         pidfile {d}/chronyd.pid\nkeyfile {d}/keys\n",
        d = dir.display()
    );
    std::fs::write(dir.join("chronyd.conf"), conf).unwrap();
    let child = Command::new(noclock())
        .args(["chronyd", "-x", "-d", "-u", "root", "-f"])
        .arg(dir.join("chronyd.conf"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("chronyd.log")).unwrap())
        .spawn()
        .expect("start chronyd under noclock");
    Chronyd { child, dir, port }
}

fn request_header(version: u8, tx: NtpTimestamp) -> Header {
    Header {
        version,
        mode: Mode::Client,
        poll: 6,
        precision: -20,
        transmit_timestamp: tx,
        ..Header::default()
    }
}

/// Header + fields (type, total length) + optional MD5 MAC with key 1 (or a raw trailer).
fn build(version: u8, tx: NtpTimestamp, fields: &[(u16, usize)], trailer: Trailer) -> Vec<u8> {
    let mut buf = vec![0u8; 1400];
    let mut n = request_header(version, tx)
        .encode_to_slice(&mut buf)
        .unwrap();
    for &(t, len) in fields {
        let value: &[u8] = if t == FIELD_EXP_MONO_ROOT {
            &[0xf5, 0xbe, 0xdd, 0x9a]
        } else {
            &[]
        };
        n += encode_extension_field_min(&mut buf[n..], t, value, len).unwrap();
    }
    match trailer {
        Trailer::None => {}
        Trailer::Md5 => {
            let digest: [u8; 16] = Md5::new_with_prefix(KEY_1)
                .chain_update(&buf[..n])
                .finalize()
                .into();
            n += encode_mac(&mut buf[n..], 1, &digest).unwrap();
        }
        Trailer::Raw(bytes) => {
            buf[n..n + bytes.len()].copy_from_slice(bytes);
            n += bytes.len();
        }
    }
    buf.truncate(n);
    buf
}

#[derive(Clone, Copy)]
enum Trailer {
    None,
    Md5,
    Raw(&'static [u8]),
}

fn exchange(sock: &UdpSocket, port: u16, req: &[u8], wait: Duration) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.send_to(req, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        match sock.recv_from(&mut buf) {
            // Skip late answers to earlier probes: the reply must echo this request's tx.
            Ok((n, _)) if n >= 48 && buf[24..32] == req[40..48] => return Some(buf[..n].to_vec()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[test]
fn chronyd_answers_exactly_the_packets_we_accept() {
    let daemon = start_chronyd();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();

    // Wait (bounded) for chronyd to bind its port.
    let mut counter = 0u32;
    let mut next_tx = || {
        counter += 1;
        NtpTimestamp::from_parts(0xeeac_0000 + counter, 0x1234_5678)
    };
    let ready = (0..50).any(|_| {
        exchange(
            &sock,
            daemon.port,
            &build(4, next_tx(), &[], Trailer::None),
            Duration::from_millis(100),
        )
        .is_some()
    });
    assert!(
        ready,
        "chronyd did not answer; see {}",
        daemon.dir.join("chronyd.log").display()
    );

    type Probe = (
        &'static str,
        u8,
        &'static [(u16, usize)],
        Trailer,
        Option<usize>,
    );
    let probes: &[Probe] = &[
        ("plain v4", 4, &[], Trailer::None, Some(0)),
        ("plain v3", 3, &[], Trailer::None, Some(0)),
        ("plain v2", 2, &[], Trailer::None, Some(0)),
        ("plain v1", 1, &[], Trailer::None, Some(0)),
        ("v0", 0, &[], Trailer::None, None),
        ("v5", 5, &[], Trailer::None, None),
        ("v4 md5", 4, &[], Trailer::Md5, Some(0)),
        ("v3 md5", 3, &[], Trailer::Md5, Some(0)),
        ("v4 field 28", 4, &[(0x1234, 28)], Trailer::None, Some(0)),
        (
            "v4 F323 28",
            4,
            &[(FIELD_EXP_MONO_ROOT, MIN_LAST_EXTENSION_FIELD_LEN)],
            Trailer::None,
            Some(1),
        ),
        ("v4 field 16", 4, &[(0x1234, 16)], Trailer::None, None),
        (
            "v4 field 16+16",
            4,
            &[(0x1234, 16), (0x1235, 16)],
            Trailer::None,
            None,
        ),
        (
            "v4 field 16+28",
            4,
            &[(0x1234, 16), (0x1235, 28)],
            Trailer::None,
            Some(0),
        ),
        (
            "v4 field 16 + md5",
            4,
            &[(0x1234, 16)],
            Trailer::Md5,
            Some(0),
        ),
        (
            "v4 field 1024 + md5",
            4,
            &[(0x1234, 1024)],
            Trailer::Md5,
            Some(0),
        ),
        (
            "v4 field 1092 (1140 total)",
            4,
            &[(0x1234, 1092)],
            Trailer::None,
            Some(0),
        ),
        (
            "v4 field 1096 (1144 total)",
            4,
            &[(0x1234, 1096)],
            Trailer::None,
            None,
        ),
        ("v4 8-byte trailer", 4, &[], Trailer::Raw(&[0; 8]), None),
        ("v4 16-byte trailer", 4, &[], Trailer::Raw(&[0; 16]), None),
        ("v4 unaligned", 4, &[], Trailer::Raw(&[0; 2]), None),
        (
            "v4 field with length 18",
            4,
            &[],
            Trailer::Raw(&BAD_LENGTH_FIELD),
            None,
        ),
    ];

    let mut failures = Vec::new();
    for &(name, version, fields, trailer, expected_fields) in probes {
        let req = build(version, next_tx(), fields, trailer);
        let accepted = Packet::decode(&req).is_ok();
        // Positive answers come within milliseconds on loopback; silence is waited for briefly.
        let wait = Duration::from_millis(if accepted { 2000 } else { 300 });
        let reply = exchange(&sock, daemon.port, &req, wait);
        if accepted != reply.is_some() || accepted != expected_fields.is_some() {
            failures.push(format!(
                "{name}: decode accepted={accepted}, chronyd answered={}",
                reply.is_some()
            ));
            continue;
        }
        let Some(reply) = reply else { continue };
        let p = Packet::decode(&reply).unwrap_or_else(|e| panic!("{name}: reply {e}"));
        assert_eq!(p.header.mode, Mode::Server, "{name}");
        assert_eq!(p.header.version, version, "{name}");
        let sent = Header::decode(&req).unwrap();
        assert_eq!(p.header.origin_timestamp, sent.transmit_timestamp, "{name}");
        assert_eq!(
            p.extensions.iter().count(),
            expected_fields.unwrap(),
            "{name}"
        );
        match trailer {
            Trailer::Md5 => {
                let mac = p.mac.unwrap_or_else(|| panic!("{name}: reply has no MAC"));
                assert_eq!(mac.key_id, 1, "{name}");
                let expect: [u8; 16] = Md5::new_with_prefix(KEY_1)
                    .chain_update(p.authenticated_part(&reply))
                    .finalize()
                    .into();
                assert_eq!(mac.digest, expect, "{name}");
            }
            _ => assert_eq!(p.mac, None, "{name}"),
        }
    }
    assert!(
        failures.is_empty(),
        "disagreements with chronyd:\n{}",
        failures.join("\n")
    );
}
