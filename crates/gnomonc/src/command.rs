//! chronyc's command language: parses one command line and runs it against the session
//! (features.md §1.5). Report commands live in `sources`, `ntpdata` and `system`; this module
//! handles argument syntax, the plain status commands (`200 OK`) and `waitsync`.

use crate::session::{CmdError, Mode, Session};
use crate::{ntpdata, sources, system};
use gnomon_cmdmon::{
    add_flags, AccessOp, AddSource, Addr, GlobalFloatField, LocalParams, Request, SourceFloatField,
    SourceIntField, SourceType,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::time::Duration;

/// What the caller does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

fn syntax(msg: &str) -> CmdError {
    CmdError::Syntax(msg.to_string())
}

/// Parses an address or resolves a host name (forward lookup only when a name is given).
pub fn parse_addr(s: &str) -> Option<Addr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Addr::from(ip));
    }
    (s, 0)
        .to_socket_addrs()
        .ok()?
        .next()
        .map(|a| Addr::from(a.ip()))
}

fn full_mask(a: &Addr) -> Addr {
    match a {
        Addr::V6(_) => Addr::V6(Ipv6Addr::from(u128::MAX)),
        _ => Addr::V4(Ipv4Addr::BROADCAST),
    }
}

fn bits_mask(a: &Addr, bits: u32) -> Addr {
    match a {
        Addr::V6(_) => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            Addr::V6(Ipv6Addr::from(m))
        }
        _ => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            Addr::V4(Ipv4Addr::from(m))
        }
    }
}

/// `[MASK/ADDR | ADDR/BITS | ADDR]` of online/offline/burst → (mask, address); empty = all.
fn parse_mask_addr(arg: Option<&str>) -> Option<(Addr, Addr)> {
    let Some(arg) = arg else {
        return Some((Addr::Unspec, Addr::Unspec));
    };
    match arg.split_once('/') {
        Some((a, b)) => {
            if let Ok(bits) = b.parse::<u32>() {
                let addr = parse_addr(a)?;
                Some((bits_mask(&addr, bits), addr))
            } else {
                Some((parse_addr(a)?, parse_addr(b)?))
            }
        }
        None => {
            let addr = parse_addr(arg)?;
            Some((full_mask(&addr), addr))
        }
    }
}

/// [`parse_mask_addr`] with chronyc's messages: a lone name that does not resolve, or a bad
/// `MASK/ADDR`/`ADDR/BITS` pair.
fn mask_addr_arg(arg: Option<&str>) -> Result<(Addr, Addr), CmdError> {
    parse_mask_addr(arg).ok_or_else(|| match arg {
        Some(a) if !a.contains('/') => syntax("Could not get address for hostname"),
        _ => syntax("Invalid syntax for mask/address"),
    })
}

/// `[all] [SUBNET]` of allow/deny/cmdallow/cmddeny → (all, ip, bits). chronyc sends bits -1
/// when no subnet is given... except that the daemon then uses the address's full length.
fn parse_subnet(args: &[&str]) -> Option<(bool, Addr, i32)> {
    let (all, rest) = match args.first() {
        Some(&"all") => (true, &args[1..]),
        _ => (false, args),
    };
    match rest.first() {
        None => Some((all, Addr::Unspec, 0)),
        Some(s) => {
            let (ip, bits) = match s.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits.parse::<i32>().ok()?)),
                None => (*s, None),
            };
            // chronyc accepts a partial IPv4 address ("10", "10.1") meaning a /8 or /16 subnet.
            let (addr, implied) = match ip.parse::<IpAddr>() {
                Ok(ip) => (Addr::from(ip), if ip.is_ipv4() { 32 } else { 128 }),
                Err(_) => {
                    let parts: Vec<&str> = ip.split('.').collect();
                    if parts.is_empty() || parts.len() > 3 {
                        return None;
                    }
                    let mut oct = [0u8; 4];
                    for (i, p) in parts.iter().enumerate() {
                        oct[i] = p.parse().ok()?;
                    }
                    (Addr::V4(Ipv4Addr::from(oct)), 8 * parts.len() as i32)
                }
            };
            Some((all, addr, bits.unwrap_or(implied)))
        }
    }
}

/// Most retries `retries` accepts (chronyc 4.3 refuses 31).
const MAX_RETRIES: u32 = 30;

/// A number read the way chronyc reads `-p`, `timeout` and `retries` (C `atoi`): leading blanks, a
/// sign and the digits that follow; anything else ends it, no digits give 0, and the value
/// saturates at the `long` range before being cut to 32 bits (`timeout 2147483648` is too
/// short for chronyc too).
pub fn c_atoi(s: &str) -> i32 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
    }
    v as i32
}

/// `N/M` of `burst` read like C `sscanf("%d/%d")`: each number is a sign and digits, and
/// whatever follows the second is ignored (chronyc sends `burst 1/2/3` as 1 of 2).
fn good_total(arg: &str) -> Option<(i32, i32)> {
    fn int(s: &str) -> Option<(i32, &str)> {
        let s = s.trim_start();
        let sign = usize::from(s.starts_with(['-', '+']));
        let end = sign + s[sign..].bytes().take_while(u8::is_ascii_digit).count();
        (end > sign).then(|| (c_atoi(&s[..end]), &s[end..]))
    }
    let (good, rest) = int(arg)?;
    let (total, _) = int(rest.strip_prefix('/')?)?;
    Some((good, total))
}

fn parse_num<T: std::str::FromStr>(s: Option<&&str>) -> Option<T> {
    s.and_then(|v| v.parse().ok())
}

/// `add server|pool|peer NAME [options]` with the server directive's defaults.
fn parse_add(args: &[&str]) -> Result<Request, CmdError> {
    let bad = || syntax("Invalid syntax for add command");
    let source_type = match args.first() {
        Some(&"server") => SourceType::Server,
        Some(&"pool") => SourceType::Pool,
        Some(&"peer") => SourceType::Peer,
        _ => return Err(bad()),
    };
    let name = args.get(1).ok_or_else(bad)?;
    let mut a = AddSource {
        source_type,
        name: name.as_bytes().to_vec(),
        port: 123,
        minpoll: 6,
        maxpoll: 10,
        presend_minpoll: 100,
        min_stratum: 0,
        poll_target: 8,
        version: 0,
        max_sources: 4,
        min_samples: -1,
        max_samples: -1,
        authkey: 0,
        nts_port: 4460,
        max_delay: 3.0,
        max_delay_ratio: 0.0,
        max_delay_dev_ratio: 10.0,
        min_delay: 0.0,
        asymmetry: 1.0,
        offset: 0.0,
        flags: add_flags::ONLINE,
        filter_length: 0,
        cert_set: 0,
        max_delay_quant: 0.0,
        max_unreach: 0,
    };
    let mut it = args[2..].iter();
    while let Some(opt) = it.next() {
        let mut flag = |f: u32| a.flags |= f;
        match *opt {
            "iburst" => flag(add_flags::IBURST),
            "burst" => flag(add_flags::BURST),
            "prefer" => flag(add_flags::PREFER),
            "noselect" => flag(add_flags::NOSELECT),
            "trust" => flag(add_flags::TRUST),
            "require" => flag(add_flags::REQUIRE),
            "xleave" => flag(add_flags::INTERLEAVED),
            "nts" => flag(add_flags::NTS),
            "copy" => flag(add_flags::COPY),
            "auto_offline" => flag(add_flags::AUTOOFFLINE),
            "offline" => a.flags &= !add_flags::ONLINE,
            "ipv4" => flag(add_flags::IPV4),
            "ipv6" => flag(add_flags::IPV6),
            key => {
                let v = it.next().ok_or_else(bad)?;
                let int = || v.parse::<i64>().map_err(|_| bad());
                let float = || v.parse::<f64>().map_err(|_| bad());
                match key {
                    "port" => a.port = int()? as u32,
                    "minpoll" => a.minpoll = int()? as i32,
                    "maxpoll" => a.maxpoll = int()? as i32,
                    "presend" => a.presend_minpoll = int()? as i32,
                    "minstratum" => a.min_stratum = int()? as u32,
                    "polltarget" => a.poll_target = int()? as u32,
                    "version" => a.version = int()? as u32,
                    "maxsources" => a.max_sources = int()? as u32,
                    "minsamples" => a.min_samples = int()? as i32,
                    "maxsamples" => a.max_samples = int()? as i32,
                    "key" => a.authkey = int()? as u32,
                    "ntsport" => a.nts_port = int()? as u32,
                    "filter" => a.filter_length = int()? as i32,
                    "certset" => a.cert_set = int()? as u32,
                    "maxdelay" => a.max_delay = float()?,
                    "maxdelayratio" => a.max_delay_ratio = float()?,
                    "maxdelaydevratio" => a.max_delay_dev_ratio = float()?,
                    "mindelay" => a.min_delay = float()?,
                    "asymmetry" => a.asymmetry = float()?,
                    "offset" => a.offset = float()?,
                    "maxdelayquant" => a.max_delay_quant = float()?,
                    "maxunreach" => a.max_unreach = int()? as i32,
                    _ => return Err(bad()),
                }
            }
        }
    }
    Ok(Request::AddSource(Box::new(a)))
}

/// `local [stratum N] [orphan] [distance D]` or `local off` (sent as LOCAL2, like chronyc 4.3).
fn parse_local(args: &[&str]) -> Result<Request, CmdError> {
    let bad = || syntax("Invalid syntax for local command");
    let mut p = LocalParams {
        on: true,
        stratum: 10,
        distance: 1.0,
        orphan: false,
        activate: 0.0,
        wait_synced: 0.0,
        wait_unsynced: 0.0,
    };
    if args == ["off"] {
        p.on = false;
        p.stratum = 0;
        p.distance = 0.0;
        return Ok(Request::Local2(p));
    }
    let mut it = args.iter();
    while let Some(o) = it.next() {
        match *o {
            "stratum" => p.stratum = parse_num(it.next()).ok_or_else(bad)?,
            "distance" => p.distance = parse_num(it.next()).ok_or_else(bad)?,
            "orphan" => p.orphan = true,
            _ => return Err(bad()),
        }
    }
    Ok(Request::Local2(p))
}

/// Years `settime` accepts: wide enough for any real date, narrow enough that the day and
/// second arithmetic below cannot overflow.
const SETTIME_YEARS: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;

/// Days from 1970-01-01 to a civil date (proleptic Gregorian); `y` within [`SETTIME_YEARS`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `settime` argument → Unix seconds. Accepts `HH:MM[:SS]` (today), `YYYY-MM-DD HH:MM[:SS]`
/// and `Mon DD, YYYY HH:MM[:SS]`, all read as UTC (chronyc reads local time; the two agree on
/// UTC machines).
pub fn parse_settime(args: &[&str], now_unix: u64) -> Option<u64> {
    let hms = |t: &str| -> Option<i64> {
        let p: Vec<&str> = t.split(':').collect();
        if p.len() < 2 || p.len() > 3 {
            return None;
        }
        let h: i64 = p[0].parse().ok().filter(|h| (0..24).contains(h))?;
        let m: i64 = p[1].parse().ok().filter(|m| (0..60).contains(m))?;
        let s: i64 = match p.get(2) {
            Some(s) => s.parse().ok().filter(|s| (0..61).contains(s))?,
            None => 0,
        };
        Some(h * 3600 + m * 60 + s)
    };
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let (days, time) = match args {
        [t] => ((now_unix / 86400) as i64, hms(t)?),
        [date, t] => {
            let p: Vec<&str> = date.split('-').collect();
            let [y, m, d] = p.as_slice() else { return None };
            let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
            if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !SETTIME_YEARS.contains(&y) {
                return None;
            }
            (days_from_civil(y, m, d), hms(t)?)
        }
        [mon, day, year, t] => {
            let m = MONTHS
                .iter()
                .position(|x| mon.to_ascii_lowercase().starts_with(x))? as u32
                + 1;
            let d: u32 = day
                .trim_end_matches(',')
                .parse()
                .ok()
                .filter(|d| (1..=31).contains(d))?;
            let y: i64 = year.parse().ok().filter(|y| SETTIME_YEARS.contains(y))?;
            (days_from_civil(y, m, d), hms(t)?)
        }
        _ => return None,
    };
    u64::try_from(days * 86400 + time).ok()
}

/// `settime TIME`: one manual-input sample; prints what chronyd did with it.
fn settime(s: &mut Session, args: &[&str]) -> Result<(), CmdError> {
    let sec =
        parse_settime(args, crate::now_unix()).ok_or_else(|| syntax("Could not parse date"))?;
    let req = Request::Settime {
        time: gnomon_cmdmon::Timespec { sec, nsec: 0 },
    };
    let gnomon_cmdmon::ReplyBody::ManualTimestamp {
        offset,
        dfreq_ppm,
        new_afreq_ppm,
    } = s.request(&req, gnomon_cmdmon::ReplyCode::ManualTimestamp2)?
    else {
        return Err(CmdError::BadReply);
    };
    s.line("200 OK");
    s.line(&format!(
        "Clock was {offset:.2} seconds fast.  Frequency change = {dfreq_ppm:.2}ppm, new frequency = {new_afreq_ppm:.2}ppm"
    ));
    Ok(())
}

/// Hash functions and ciphers a key can be generated for (chronyd 4.3 built with +SECHASH).
const KEY_TYPES: [&str; 11] = [
    "MD5", "SHA1", "SHA256", "SHA384", "SHA512", "SHA3-224", "SHA3-256", "SHA3-384", "SHA3-512",
    "AES128", "AES256",
];

/// `keygen [ID [TYPE [BITS]]]` → (id, type, key length in bytes), as chronyc 4.3 sizes keys:
/// hashes get BITS (default 160) rounded up to bytes, at least 80 and at most 4096 bits;
/// ciphers get their own key length.
pub fn keygen_params(args: &[&str]) -> Result<(u32, String, usize), CmdError> {
    let bad = || syntax("Invalid syntax for keygen command");
    let id: u32 = args
        .first()
        .map_or(Ok(1), |v| v.parse().map_err(|_| bad()))?;
    let kind = args.get(1).copied().unwrap_or("SHA1");
    if !KEY_TYPES.contains(&kind) {
        return Err(syntax(&format!("Unknown hash function or cipher {kind}")));
    }
    let bits: u64 = args
        .get(2)
        .map_or(Ok(160), |v| v.parse().map_err(|_| bad()))?;
    let len = match kind {
        "AES128" => 16,
        "AES256" => 32,
        _ => bits.div_ceil(8).clamp(10, 512) as usize,
    };
    Ok((id, kind.to_string(), len))
}

/// `keygen`: a random key line for a chrony key file, from the OS's random device.
fn keygen(s: &mut Session, args: &[&str]) -> Result<(), CmdError> {
    use std::io::Read;
    let (id, kind, len) = keygen_params(args)?;
    let mut key = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| syntax(&format!("Could not read random data: {e}")))?;
    let hex: String = key.iter().map(|b| format!("{b:02X}")).collect();
    s.line(&format!("{id} {kind} HEX:{hex}"));
    Ok(())
}

/// Runs a command that answers with a status only and prints it (`200 OK`, `208 …`).
fn simple(s: &mut Session, req: Request) -> Result<(), CmdError> {
    let st = s.request_status(&req)?;
    if s.mode == Mode::Json {
        s.line(&serde_json::json!({"status": st.code(), "text": st.text()}).to_string());
    } else {
        s.line(&st.text());
    }
    Ok(())
}

/// `waitsync [tries [maxcorr [maxskew [interval]]]]`.
fn waitsync(s: &mut Session, args: &[&str]) -> Result<(), CmdError> {
    let bad = || syntax("Invalid syntax for waitsync command");
    let max_tries: u32 = args
        .first()
        .map_or(Ok(0), |v| v.parse().map_err(|_| bad()))?;
    let max_corr: f64 = args
        .get(1)
        .map_or(Ok(0.0), |v| v.parse().map_err(|_| bad()))?;
    let max_skew: f64 = args
        .get(2)
        .map_or(Ok(0.0), |v| v.parse().map_err(|_| bad()))?;
    let interval: f64 = args
        .get(3)
        .map_or(Ok(10.0), |v| v.parse().map_err(|_| bad()))?;
    let interval = if interval.is_finite() && interval > 0.0 {
        interval.min(3600.0)
    } else {
        10.0
    };
    let mut i = 1u32;
    loop {
        let t = system::fetch_tracking(s)?;
        let corr = t.current_correction.abs();
        match s.mode {
            Mode::Csv => s.line(&format!(
                "{},{:08X},{:.9},{:.3}",
                i, t.ref_id, corr, t.skew_ppm
            )),
            _ => s.line(&format!(
                "try: {}, refid: {:08X}, correction: {:.9}, skew: {:.3}",
                i, t.ref_id, corr, t.skew_ppm
            )),
        }
        crate::flush(s);
        let synced = t.ref_id != 0 && t.leap_status != 3;
        if synced
            && (max_corr == 0.0 || corr <= max_corr)
            && (max_skew == 0.0 || t.skew_ppm <= max_skew)
        {
            return Ok(());
        }
        if max_tries != 0 && i >= max_tries {
            return Err(CmdError::Silent);
        }
        i = i.saturating_add(1);
        std::thread::sleep(Duration::from_secs_f64(interval));
    }
}

fn flags(args: &[&str]) -> (bool, bool) {
    (args.contains(&"-a"), args.contains(&"-v"))
}

/// Parses and runs one command line.
pub fn run(s: &mut Session, line: &str) -> Result<Flow, CmdError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Ok(Flow::Continue);
    };
    // A source address, resolved if it is a name: chronyc's two messages for a missing
    // argument and for a name that does not resolve.
    let addr_arg = |i: usize| {
        let a = args
            .get(i)
            .ok_or_else(|| syntax("Invalid syntax for address"))?;
        parse_addr(a).ok_or_else(|| syntax("Could not get address for hostname"))
    };
    // `sourcename`, `accheck`, `cmdaccheck`: one message for every failure.
    let read_addr = |i: usize| {
        args.get(i)
            .and_then(|a| parse_addr(a))
            .ok_or_else(|| syntax("Could not read address"))
    };
    match cmd {
        "tracking" => system::tracking(s)?,
        "sources" => {
            let (a, v) = flags(args);
            sources::sources(s, a, v)?
        }
        "sourcestats" => {
            let (a, v) = flags(args);
            sources::sourcestats(s, a, v)?
        }
        "selectdata" => {
            let (a, v) = flags(args);
            sources::selectdata(s, a, v)?
        }
        "authdata" => {
            let (a, v) = flags(args);
            sources::authdata(s, a, v)?
        }
        "activity" => system::activity(s)?,
        "serverstats" => system::serverstats(s)?,
        "clients" => {
            let mut min_hits = 0;
            let (mut nke, mut reset) = (false, false);
            let mut it = args.iter();
            while let Some(a) = it.next() {
                match *a {
                    "-k" => nke = true,
                    "-r" => reset = true,
                    "-p" => {
                        min_hits = parse_num(it.next())
                            .ok_or_else(|| syntax("Invalid syntax for clients command"))?
                    }
                    _ => return Err(syntax("Invalid syntax for clients command")),
                }
            }
            system::clients(s, min_hits, nke, reset)?
        }
        "ntpdata" => {
            let addr = match args.first() {
                Some(_) => Some(addr_arg(0)?),
                None => None,
            };
            ntpdata::ntpdata(s, addr)?
        }
        "sourcename" => sources::sourcename(s, read_addr(0)?)?,
        "rtcdata" => system::rtcdata(s)?,
        "smoothing" => system::smoothing(s)?,
        "waitsync" => waitsync(s, args)?,
        "settime" => settime(s, args)?,
        "keygen" => keygen(s, args)?,
        "manual" => match args.first().copied() {
            Some("list") => system::manual_list(s)?,
            Some("on") => simple(s, Request::Manual { option: 1 })?,
            Some("off") => simple(s, Request::Manual { option: 0 })?,
            Some("reset") => simple(s, Request::Manual { option: 2 })?,
            Some("delete") => {
                let index = parse_num(args.get(1))
                    .ok_or_else(|| syntax("Invalid syntax for manual command"))?;
                simple(s, Request::ManualDelete { index })?
            }
            _ => return Err(syntax("Invalid syntax for manual command")),
        },
        "burst" => {
            let (n_good, n_total) = args
                .first()
                .and_then(|a| good_total(a))
                .ok_or_else(|| syntax("Invalid syntax for burst command"))?;
            let (mask, address) = mask_addr_arg(args.get(1).copied())?;
            simple(
                s,
                Request::Burst {
                    mask,
                    address,
                    n_good,
                    n_total,
                },
            )?
        }
        "online" | "offline" => {
            let (mask, address) = mask_addr_arg(args.first().copied())?;
            let req = if cmd == "online" {
                Request::Online { mask, address }
            } else {
                Request::Offline { mask, address }
            };
            simple(s, req)?
        }
        "makestep" => match args {
            [] => simple(s, Request::MakeStep)?,
            [t, l] => {
                let bad = || syntax("Invalid syntax for makestep command");
                let threshold = t.parse().map_err(|_| bad())?;
                let limit = l.parse().map_err(|_| bad())?;
                simple(s, Request::ModifyMakestep { limit, threshold })?
            }
            _ => return Err(syntax("Invalid syntax for makestep command")),
        },
        "reselect" => simple(s, Request::Reselect)?,
        "cyclelogs" => simple(s, Request::CycleLogs)?,
        "dump" => simple(s, Request::Dump)?,
        "refresh" => simple(s, Request::Refresh)?,
        "shutdown" => simple(s, Request::Shutdown)?,
        "rekey" => simple(s, Request::Rekey)?,
        "writertc" => simple(s, Request::WriteRtc)?,
        "trimrtc" => simple(s, Request::TrimRtc)?,
        "onoffline" => simple(s, Request::OnOffline)?,
        "reload" if args.first() == Some(&"sources") => simple(s, Request::ReloadSources)?,
        "reset" if args.first() == Some(&"sources") => simple(s, Request::ResetSources)?,
        "add" => {
            let req = parse_add(args)?;
            simple(s, req)?
        }
        "delete" => simple(s, Request::DelSource { ip: addr_arg(0)? })?,
        "accheck" => simple(s, Request::AcCheck { ip: read_addr(0)? })?,
        "cmdaccheck" => simple(s, Request::CmdAcCheck { ip: read_addr(0)? })?,
        "allow" | "deny" | "cmdallow" | "cmddeny" => {
            let (all, ip, subnet_bits) =
                parse_subnet(args).ok_or_else(|| syntax("Could not read address"))?;
            let op = match (cmd, all) {
                ("allow", false) => AccessOp::Allow,
                ("allow", true) => AccessOp::AllowAll,
                ("deny", false) => AccessOp::Deny,
                ("deny", true) => AccessOp::DenyAll,
                ("cmdallow", false) => AccessOp::CmdAllow,
                ("cmdallow", true) => AccessOp::CmdAllowAll,
                ("cmddeny", false) => AccessOp::CmdDeny,
                _ => AccessOp::CmdDenyAll,
            };
            simple(
                s,
                Request::Access {
                    op,
                    ip,
                    subnet_bits,
                },
            )?
        }
        "local" => {
            let req = parse_local(args)?;
            simple(s, req)?
        }
        "minpoll" | "maxpoll" | "minstratum" | "polltarget" => {
            let field = match cmd {
                "minpoll" => SourceIntField::Minpoll,
                "maxpoll" => SourceIntField::Maxpoll,
                "minstratum" => SourceIntField::Minstratum,
                _ => SourceIntField::Polltarget,
            };
            let value =
                parse_num(args.get(1)).ok_or_else(|| syntax("Invalid syntax for address value"))?;
            simple(
                s,
                Request::ModifySourceInt {
                    field,
                    address: addr_arg(0)?,
                    value,
                },
            )?
        }
        "maxdelay" | "maxdelayratio" | "maxdelaydevratio" => {
            let field = match cmd {
                "maxdelay" => SourceFloatField::Maxdelay,
                "maxdelayratio" => SourceFloatField::Maxdelayratio,
                _ => SourceFloatField::Maxdelaydevratio,
            };
            let value =
                parse_num(args.get(1)).ok_or_else(|| syntax("Invalid syntax for address value"))?;
            simple(
                s,
                Request::ModifySourceFloat {
                    field,
                    address: addr_arg(0)?,
                    value,
                },
            )?
        }
        "maxupdateskew" | "dfreq" | "doffset" | "reselectdist" => {
            let field = match cmd {
                "maxupdateskew" => GlobalFloatField::Maxupdateskew,
                "dfreq" => GlobalFloatField::Dfreq,
                "doffset" => GlobalFloatField::Doffset,
                _ => GlobalFloatField::ReselectDistance,
            };
            let value = parse_num(args.first())
                .ok_or_else(|| syntax(&format!("Invalid syntax for {cmd} command")))?;
            simple(s, Request::ModifyGlobalFloat { field, value })?
        }
        "smoothtime" => match args.first().copied() {
            Some("reset") => simple(s, Request::SmoothTime { option: 0 })?,
            Some("activate") => simple(s, Request::SmoothTime { option: 1 })?,
            _ => return Err(syntax("Invalid syntax for smoothtime command")),
        },
        "timeout" => {
            let ms = c_atoi(args.first().copied().unwrap_or(""));
            if ms < 100 {
                return Err(syntax(&format!("Timeout {ms} is too short")));
            }
            if let Some(c) = s.client.as_mut() {
                c.timeout = Duration::from_millis(ms.unsigned_abs().into());
            }
        }
        "retries" => {
            let n = c_atoi(args.first().copied().unwrap_or(""));
            let n = u32::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_RETRIES)
                .ok_or_else(|| syntax("Invalid maximum number of retries"))?;
            if let Some(c) = s.client.as_mut() {
                c.retries = n;
            }
        }
        "dns" => match args.first().copied() {
            Some("-n") => s.numeric = true,
            Some("+n") => s.numeric = false,
            Some("-4") | Some("-6") | Some("-46") => {}
            _ => return Err(syntax("Unrecognized dns command")),
        },
        "exit" | "quit" => return Ok(Flow::Quit),
        "help" => s.out.push_str(HELP_COMMANDS),
        _ => return Err(syntax("Unrecognized command")),
    }
    Ok(Flow::Continue)
}

/// Summary printed by `help`.
pub const HELP_COMMANDS: &str = "\
System clock:               
tracking                    Display system time information
makestep                    Correct clock by stepping immediately
makestep <threshold> <updates>
                            Configure automatic clock stepping
maxupdateskew <skew>        Modify maximum valid skew to update frequency
waitsync [<max-tries> [<max-correction> [<max-skew> [<interval>]]]]
                            Wait until synchronised in specified limits
                            
Time sources:               
sources [-a] [-v]           Display information about current sources
sourcestats [-a] [-v]       Display statistics about collected measurements
selectdata [-a] [-v]        Display information about source selection
reselect                    Force reselecting synchronisation source
reselectdist <dist>         Modify reselection distance
                            
NTP sources:                
activity                    Check how many NTP sources are online/offline
authdata [-a] [-v]          Display information about authentication
ntpdata [<address>]         Display information about last valid measurement
add server <name> [options] Add new NTP server
add pool <name> [options]   Add new pool of NTP servers
add peer <name> [options]   Add new NTP peer
delete <address>            Remove server or peer
burst <n-good>/<n-max> [[<mask>/]<address>]
                            Start rapid set of measurements
maxdelay <address> <delay>  Modify maximum valid sample delay
maxdelayratio <address> <ratio>
                            Modify maximum valid delay/minimum ratio
maxdelaydevratio <address> <ratio>
                            Modify maximum valid delay/deviation ratio
minpoll <address> <poll>    Modify minimum polling interval
maxpoll <address> <poll>    Modify maximum polling interval
minstratum <address> <stratum>
                            Modify minimum stratum
offline [[<mask>/]<address>]
                            Set sources in subnet to offline status
online [[<mask>/]<address>] Set sources in subnet to online status
onoffline                   Set all sources to online or offline status
                            according to network configuration
polltarget <address> <target>
                            Modify poll target
refresh                     Refresh IP addresses
reload sources              Re-read *.sources files
sourcename <address>        Display original name
                            
Manual time input:          
manual off|on|reset         Disable/enable/reset settime command
manual list                 Show previous settime entries
manual delete <index>       Delete previous settime entry
settime <time>              Set daemon time
                            (e.g. Sep 25, 2015 16:30:05 or 16:30:05)
                            
NTP access:                 
accheck <address>           Check whether address is allowed
clients [-p <packets>] [-k] [-r]
                            Report on clients that accessed the server
serverstats                 Display statistics of the server
allow [<subnet>]            Allow access to subnet as a default
allow all [<subnet>]        Allow access to subnet and all children
deny [<subnet>]             Deny access to subnet as a default
deny all [<subnet>]         Deny access to subnet and all children
local [options]             Serve time even when not synchronised
local off                   Don't serve time when not synchronised
smoothtime reset|activate   Reset/activate time smoothing
smoothing                   Display current time smoothing state
                            
Monitoring access:          
cmdaccheck <address>        Check whether address is allowed
cmdallow [<subnet>]         Allow access to subnet as a default
cmdallow all [<subnet>]     Allow access to subnet and all children
cmddeny [<subnet>]          Deny access to subnet as a default
cmddeny all [<subnet>]      Deny access to subnet and all children
                            
Real-time clock:            
rtcdata                     Print current RTC performance parameters
trimrtc                     Correct RTC relative to system clock
writertc                    Save RTC performance parameters to file
                            
Other daemon commands:      
cyclelogs                   Close and re-open log files
dump                        Dump measurements and NTS keys/cookies
rekey                       Re-read keys
reset sources               Drop all measurements
shutdown                    Stop daemon
                            
Client commands:            
dns -n|+n                   Disable/enable resolving IP addresses to hostnames
dns -4|-6|-46               Resolve hostnames only to IPv4/IPv6/both addresses
timeout <milliseconds>      Set initial response timeout
retries <retries>           Set maximum number of retries
keygen [<id> [<type> [<bits>]]]
                            Generate key for key file
exit|quit                   Leave the program
help                        Generate this help
                            
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_sizes_keys_like_chronyc() {
        assert_eq!(keygen_params(&[]).unwrap(), (1, "SHA1".into(), 20));
        assert_eq!(keygen_params(&["9", "MD5", "64"]).unwrap().2, 10);
        assert_eq!(keygen_params(&["2", "SHA1", "81"]).unwrap().2, 11);
        assert_eq!(keygen_params(&["2", "SHA1", "5000"]).unwrap().2, 512);
        assert_eq!(keygen_params(&["2", "AES256", "64"]).unwrap().2, 32);
        assert_eq!(
            keygen_params(&["2", "sha256"]).unwrap_err().message(),
            "Unknown hash function or cipher sha256"
        );
        assert_eq!(
            keygen_params(&["x"]).unwrap_err().message(),
            "Invalid syntax for keygen command"
        );
    }

    #[test]
    fn numbers_are_read_like_c_atoi_and_sscanf() {
        assert_eq!(c_atoi("150x"), 150);
        assert_eq!(c_atoi("x"), 0);
        assert_eq!(c_atoi(""), 0);
        assert_eq!(c_atoi("  -5"), -5);
        assert_eq!(c_atoi("2147483648"), i32::MIN);
        assert_eq!(c_atoi("99999999999"), 1_215_752_191);
        assert_eq!(c_atoi("99999") as u16, 34_463);
        assert_eq!(c_atoi("999999999999999999999999"), -1);
        assert_eq!(good_total("1/2/3"), Some((1, 2)));
        assert_eq!(good_total("-1/+2"), Some((-1, 2)));
        assert_eq!(good_total("1x/2"), None);
        assert_eq!(good_total("1/x"), None);
        assert_eq!(good_total("/2"), None);
    }

    #[test]
    fn settime_rejects_years_whose_seconds_would_overflow() {
        let now = 1_795_316_483;
        for args in [
            &["9223372036854775807-01-01", "00:00"][..],
            &["-9223372036854775808-03-01", "00:00"],
            &["Jan", "1,", "9223372036854775807", "00:00"],
            &["Mar", "1,", "-9223372036854775808", "00:00"],
            &["1000001-01-01", "00:00"],
        ] {
            assert_eq!(parse_settime(args, now), None, "{args:?}");
        }
        // Before 1970 there is no Unix second to send; far future years still parse.
        assert_eq!(parse_settime(&["1969-12-31", "23:59:59"], now), None);
        assert_eq!(
            parse_settime(&["1000000-01-01", "00:00"], now),
            Some(31_494_784_780_800)
        );
    }

    #[test]
    fn settime_formats_read_as_utc() {
        let now = 1_795_317_650; // 2026-11-22 03:20:50
        assert_eq!(parse_settime(&["03:20:50"], now), Some(now));
        assert_eq!(parse_settime(&["03:20"], now), Some(now - 50));
        assert_eq!(parse_settime(&["2026-11-22", "03:20:50"], now), Some(now));
        assert_eq!(
            parse_settime(&["Nov", "22,", "2026", "03:20:50"], now),
            Some(now)
        );
        assert_eq!(parse_settime(&["25:00"], now), None);
        assert_eq!(parse_settime(&[], now), None);
    }
}
