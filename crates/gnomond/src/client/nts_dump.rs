//! The NTS client's saved sessions in `ntsdumpdir` (chrony.conf: "a directory for the client to
//! save NTS cookies it received from the server in order to avoid making an NTS-KE request
//! when chronyd is started again ... in files named by the IP address of the NTS-KE server
//! (e.g. 1.2.3.4.nts)"). The file layout is gnomond's own (chronyd's files are not read: a
//! source switching daemons simply makes one new key exchange):
//!
//! ```text
//! GNTS1
//! name <certificate name>
//! ntp <NTP address:port>
//! started <Unix seconds of the key exchange>
//! keyid <successful key exchanges so far>   (optional: files of older gnomonds lack it)
//! c2s <64 hex digits>
//! s2c <64 hex digits>
//! cookie <hex>            (1 to 8 lines)
//! ```
//!
//! Files are written at exit, atomically and 0600 (`nts_ke::dump::write_file`): they hold
//! keys. A file is removed as soon as it has been read, so a cookie saved once is sent at
//! most once even if the daemon crashes later. Reading is total: anything malformed is
//! rejected with the reason and a new key exchange follows. So is a session whose key
//! exchange started after the time of reading (a clock that went back, a tampered file):
//! its age would read negative and postpone the `ntsrefresh` re-key by the difference.

use gnomon_core::nts::SessionKeys;
use gnomon_core::nts_client::cookie_jar::{is_valid_cookie, MAX_COOKIES};
use gnomon_core::nts_client::SavedSession;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// First line of a file.
const MAGIC: &str = "GNTS1";
/// Longest file read, octets (a full one is about 4.5 kB).
const MAX_LEN: u64 = 16 * 1024;

/// Why a saved session was not used.
#[derive(Debug)]
pub enum DumpError {
    /// The file could not be read.
    Io(std::io::Error),
    /// Not text, or over the size limit.
    NotText,
    /// The first line is not the format's.
    BadMagic,
    /// A line is missing or malformed (which one).
    BadField(&'static str),
    /// More than eight cookies, or a malformed one.
    BadCookie,
    /// The session's key exchange started later than now (both Unix seconds).
    StartedInFuture {
        /// The saved start.
        started: f64,
        /// The time of reading.
        now: f64,
    },
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Io(e) => write!(f, "{e}"),
            DumpError::NotText => f.write_str("not a text file of the expected size"),
            DumpError::BadMagic => f.write_str("unknown format"),
            DumpError::BadField(name) => write!(f, "missing or invalid {name}"),
            DumpError::BadCookie => f.write_str("invalid cookie"),
            DumpError::StartedInFuture { started, now } => write!(
                f,
                "session started in the future ({:.0} s after now)",
                started - now
            ),
        }
    }
}

impl std::error::Error for DumpError {}

/// The file of the session with the key-exchange server at `ke_ip`.
pub fn path(dir: &Path, ke_ip: IpAddr) -> PathBuf {
    dir.join(format!("{ke_ip}.nts"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    // Digits only: `from_str_radix` alone would also take a sign ("+f").
    if t.len() % 2 != 0 || !t.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    t.chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// The file's text for `s`.
pub fn format(s: &SavedSession) -> Zeroizing<String> {
    let mut out = Zeroizing::new(format!(
        "{MAGIC}\nname {}\nntp {}\nstarted {}\nkeyid {}\nc2s {}\ns2c {}\n",
        s.server_name,
        s.ntp_addr,
        s.started,
        s.key_establishments,
        hex(&s.keys.c2s),
        hex(&s.keys.s2c)
    ));
    for c in &s.cookies {
        out.push_str("cookie ");
        out.push_str(&hex(c));
        out.push('\n');
    }
    out
}

fn key(value: Option<&str>, name: &'static str) -> Result<[u8; 32], DumpError> {
    let bytes = Zeroizing::new(value.and_then(unhex).ok_or(DumpError::BadField(name))?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| DumpError::BadField(name))
}

/// Parses a file's text (the session's key-exchange server is `ke_ip`).
pub fn parse(text: &str, ke_ip: IpAddr) -> Result<SavedSession, DumpError> {
    let mut lines = text.lines().peekable();
    if lines.next() != Some(MAGIC) {
        return Err(DumpError::BadMagic);
    }
    let mut field = |name: &'static str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or(DumpError::BadField(name))
    };
    let server_name = field("name")?.to_string();
    if server_name.is_empty() || server_name.len() > 255 {
        return Err(DumpError::BadField("name"));
    }
    let ntp_addr: SocketAddr = field("ntp")?
        .parse()
        .map_err(|_| DumpError::BadField("ntp"))?;
    let started: f64 = field("started")?
        .parse()
        .map_err(|_| DumpError::BadField("started"))?;
    if !started.is_finite() {
        return Err(DumpError::BadField("started"));
    }
    let key_establishments = match lines.peek().and_then(|l| l.strip_prefix("keyid ")) {
        Some(v) => {
            let n = v.parse().map_err(|_| DumpError::BadField("keyid"))?;
            lines.next();
            n
        }
        None => 1,
    };
    let mut field = |name: &'static str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or(DumpError::BadField(name))
    };
    let c2s = key(field("c2s").ok(), "c2s")?;
    let s2c = key(field("s2c").ok(), "s2c")?;
    let mut cookies = Vec::new();
    for line in lines {
        let c = line
            .strip_prefix("cookie ")
            .and_then(unhex)
            .ok_or(DumpError::BadCookie)?;
        if cookies.len() >= MAX_COOKIES || !is_valid_cookie(&c) {
            return Err(DumpError::BadCookie);
        }
        cookies.push(Zeroizing::new(c));
    }
    if cookies.is_empty() {
        return Err(DumpError::BadCookie);
    }
    Ok(SavedSession {
        server_name,
        ke_ip,
        ntp_addr,
        started,
        key_establishments,
        keys: SessionKeys { c2s, s2c },
        cookies,
    })
}

/// Saves `s` in `dir` (created if missing).
pub fn save(dir: &Path, s: &SavedSession) -> std::io::Result<()> {
    let name = format!("{}.nts", s.ke_ip);
    crate::nts_ke::dump::write_file(dir, &name, &format(s))
}

/// Reads and removes the saved session of `ke_ip` at `now` (daemon time base, Unix seconds);
/// `Ok(None)` when there is none, an error for one that cannot be used (including one that
/// started after `now`).
pub fn take(dir: &Path, ke_ip: IpAddr, now: f64) -> Result<Option<SavedSession>, DumpError> {
    use std::io::Read;
    let p = path(dir, ke_ip);
    let file = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DumpError::Io(e)),
    };
    let mut bytes = Zeroizing::new(Vec::new());
    let read = file.take(MAX_LEN + 1).read_to_end(&mut bytes);
    // Whatever it held, it is never used twice.
    let _ = std::fs::remove_file(&p);
    read.map_err(DumpError::Io)?;
    if bytes.len() as u64 > MAX_LEN {
        return Err(DumpError::NotText);
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| DumpError::NotText)?;
    let s = parse(text, ke_ip)?;
    if s.started_after(now) {
        return Err(DumpError::StartedInFuture {
            started: s.started,
            now,
        });
    }
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn session() -> SavedSession {
        SavedSession {
            server_name: "ntp.example".into(),
            ke_ip: "192.0.2.1".parse().unwrap(),
            ntp_addr: "[2001:db8::1]:1123".parse().unwrap(),
            started: 1_780_000_000.25,
            key_establishments: 4,
            keys: SessionKeys {
                c2s: [0xab; 32],
                s2c: [0x01; 32],
            },
            cookies: (0..8u8).map(|i| Zeroizing::new(vec![i; 100])).collect(),
        }
    }

    #[test]
    fn saved_session_is_written_0600_read_back_once() {
        let dir = std::env::temp_dir().join(format!("gnomond-ntsdump-{}", std::process::id()));
        let s = session();
        save(&dir, &s).unwrap();
        let p = path(&dir, s.ke_ip);
        assert_eq!(p.file_name().unwrap(), "192.0.2.1.nts");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = take(&dir, s.ke_ip, s.started + 10.0).unwrap().unwrap();
        assert_eq!(back.server_name, s.server_name);
        assert_eq!((back.ntp_addr, back.started), (s.ntp_addr, s.started));
        assert_eq!(back.keys, s.keys);
        assert_eq!(back.cookies, s.cookies);
        assert_eq!(back.key_establishments, 4);
        // Removed once read.
        assert!(!p.exists());
        assert!(take(&dir, s.ke_ip, s.started + 10.0).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_files_are_rejected_with_the_reason() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let good = format(&session());
        assert!(parse(&good, ip).is_ok());
        assert!(matches!(parse("", ip), Err(DumpError::BadMagic)));
        let cases: [(&str, &str); 6] = [
            ("keyid 4", "keyid four"),
            ("ntp [2001:db8::1]:1123", "ntp nowhere"),
            ("started 1780000000.25", "started NaN"),
            (&format!("c2s {}", "ab".repeat(32)), "c2s abc"),
            (
                &format!("s2c {}", "01".repeat(32)),
                &format!("s2c {}", "01".repeat(31)),
            ),
            ("name ntp.example", "name "),
        ];
        for (from, to) in cases {
            let bad = good.replace(from, to);
            assert!(
                matches!(parse(&bad, ip), Err(DumpError::BadField(_))),
                "{to}"
            );
        }
        let no_cookies: String = good
            .lines()
            .filter(|l| !l.starts_with("cookie"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(matches!(parse(&no_cookies, ip), Err(DumpError::BadCookie)));
        let nine = format!("{}cookie {}\n", &*good, "00".repeat(100));
        assert!(matches!(parse(&nine, ip), Err(DumpError::BadCookie)));
        let odd = good.replacen("cookie 00", "cookie 0", 1);
        assert!(matches!(parse(&odd, ip), Err(DumpError::BadCookie)));
    }

    #[test]
    fn session_started_in_the_future_is_rejected_and_removed() {
        let dir = std::env::temp_dir().join(format!("gnomond-ntsfuture-{}", std::process::id()));
        let s = session();
        save(&dir, &s).unwrap();
        let r = take(&dir, s.ke_ip, s.started - 3600.0);
        assert!(
            matches!(r, Err(DumpError::StartedInFuture { started, .. }) if started == s.started),
            "{r:?}"
        );
        let why = r.err().unwrap().to_string();
        assert_eq!(why, "session started in the future (3600 s after now)");
        // Never used later either.
        assert!(!path(&dir, s.ke_ip).exists());
        // A start exactly at the time of reading is fine.
        save(&dir, &s).unwrap();
        assert!(take(&dir, s.ke_ip, s.started).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hex_fields_take_digits_only() {
        assert_eq!(unhex("00ff7A"), Some(vec![0, 0xff, 0x7a]));
        for bad in ["+f", "-f", "+1+1", " f", "0x", "fg"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let good = format(&session());
        let signed_key = good.replace(
            &format!("c2s {}", "ab".repeat(32)),
            &format!("c2s +b{}", "ab".repeat(31)),
        );
        assert!(matches!(
            parse(&signed_key, ip),
            Err(DumpError::BadField("c2s"))
        ));
        let signed_cookie = good.replacen("cookie 00", "cookie +0", 1);
        assert!(matches!(
            parse(&signed_cookie, ip),
            Err(DumpError::BadCookie)
        ));
    }

    #[test]
    fn file_without_keyid_counts_one_key_exchange() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let old = format(&session()).replace("keyid 4\n", "");
        let s = parse(&old, ip).unwrap();
        assert_eq!((s.key_establishments, s.cookies.len()), (1, 8));
    }
}
