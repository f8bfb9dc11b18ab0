//! chronyc's command language: parses one command line and runs it against the session
//! (features.md §1.5). Report commands live in `sources`, `ntpdata` and `system`; this module
//! handles argument syntax, the plain status commands (`200 OK`) and `waitsync`.

use crate::c_number::{c_atoi, c_double, c_double_prefix, c_int, c_int_prefix, good_total};
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
            "stratum" => {
                p.stratum = parse_num(it.next())
                    .filter(|n| (1..=15).contains(n))
                    .ok_or_else(bad)?
            }
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
    // sscanf("%d %lf %lf %lf"): the scan stops at the first word that is not a number or
    // has anything after its number; what was not read keeps its default.
    let mut max_tries = 0i32;
    let mut limits = [0.0, 0.0, 10.0]; // max correction, max skew, interval
    for (k, w) in args.iter().enumerate().take(4) {
        let rest = if k == 0 {
            c_int_prefix(w).map(|(v, rest)| {
                max_tries = v;
                rest
            })
        } else {
            c_double_prefix(w).map(|(v, rest)| {
                limits[k - 1] = v;
                rest
            })
        };
        if rest.is_none_or(|r| !r.is_empty()) {
            break;
        }
    }
    // chronyc waits forever unless the count is positive.
    let max_tries = u32::try_from(max_tries).unwrap_or(0);
    let [max_corr, max_skew, interval] = limits;
    let interval = if interval.is_finite() && interval > 0.0 {
        interval.min(3600.0)
    } else {
        10.0
    };
    let mut i = 1u32;
    loop {
        // Like chronyc, a try without an answer prints its error and waits for the next.
        let t = match system::fetch_tracking(s) {
            Ok(t) => Some(t),
            Err(e) if !e.to_stderr() => {
                s.line(&e.message());
                crate::flush(s);
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(t) = t {
            if report_try(s, i, &t, max_corr, max_skew) {
                return Ok(());
            }
        }
        if max_tries != 0 && i >= max_tries {
            return Err(CmdError::Silent);
        }
        i = i.saturating_add(1);
        std::thread::sleep(Duration::from_secs_f64(interval));
    }
}

/// Prints one `waitsync` try; true when the daemon is synchronised within the limits.
fn report_try(
    s: &mut Session,
    i: u32,
    t: &gnomon_cmdmon::Tracking,
    max_corr: f64,
    max_skew: f64,
) -> bool {
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
    synced && (max_corr == 0.0 || corr <= max_corr) && (max_skew == 0.0 || t.skew_ppm <= max_skew)
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
    // For some commands chronyc takes the rest of the line as the address.
    let rest = args.join(" ");
    let addr_arg = |i: usize| {
        let a = args
            .get(i)
            .ok_or_else(|| syntax("Invalid syntax for address"))?;
        parse_addr(a).ok_or_else(|| syntax("Could not get address for hostname"))
    };
    // `sourcename`, `accheck`, `cmdaccheck`: one message for every failure.
    let read_addr = || parse_addr(&rest).ok_or_else(|| syntax("Could not read address"));
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
                    // chronyc ignores anything else.
                    _ => {}
                }
            }
            system::clients(s, min_hits, nke, reset)?
        }
        "ntpdata" => {
            // The rest of the line is the address, so extra words make it invalid.
            let addr = match args.first() {
                Some(_) => Some(
                    parse_addr(&rest)
                        .ok_or_else(|| syntax("Could not get address for hostname"))?,
                ),
                None => None,
            };
            ntpdata::ntpdata(s, addr)?
        }
        "sourcename" => sources::sourcename(s, read_addr()?)?,
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
                let index = args
                    .get(1)
                    .and_then(|a| c_int(a))
                    .ok_or_else(|| syntax("Bad syntax for manual delete command"))?;
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
            // `MASK/ADDR` or `ADDR/BITS` is the first word; without a slash the rest of
            // the line is a host name.
            let arg = match args.first() {
                Some(a) if a.contains('/') => Some(*a),
                Some(_) => Some(rest.as_str()),
                None => None,
            };
            let (mask, address) = mask_addr_arg(arg)?;
            let req = if cmd == "online" {
                Request::Online { mask, address }
            } else {
                Request::Offline { mask, address }
            };
            simple(s, req)?
        }
        "makestep" => match args {
            [] => simple(s, Request::MakeStep)?,
            // sscanf("%lf %d"): a third word is ignored, trailing garbage after the
            // threshold ends the scan.
            [t, l, ..] => {
                let bad = || syntax("Bad syntax for makestep command");
                let (threshold, after) = c_double_prefix(t).ok_or_else(bad)?;
                if !after.is_empty() {
                    return Err(bad());
                }
                let limit = c_int(l).ok_or_else(bad)?;
                simple(s, Request::ModifyMakestep { limit, threshold })?
            }
            _ => return Err(syntax("Bad syntax for makestep command")),
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
        "reload" | "reset" => return Err(syntax(&format!("Invalid syntax for {cmd} command"))),
        "add" => {
            let req = parse_add(args)?;
            simple(s, req)?
        }
        "delete" => simple(s, Request::DelSource { ip: addr_arg(0)? })?,
        "accheck" => simple(s, Request::AcCheck { ip: read_addr()? })?,
        "cmdaccheck" => simple(s, Request::CmdAcCheck { ip: read_addr()? })?,
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
            let value = args
                .get(1)
                .and_then(|a| c_int(a))
                .ok_or_else(|| syntax("Invalid syntax for address value"))?;
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
            let value = args
                .get(1)
                .and_then(|a| c_double(a))
                .ok_or_else(|| syntax("Invalid syntax for address value"))?;
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
            // chronyc: `dfreq`/`doffset` say "Invalid value"; `maxupdateskew` and
            // `reselectdist` fail without a word.
            let value = args.first().and_then(|a| c_double(a)).ok_or(match cmd {
                "dfreq" | "doffset" => syntax("Invalid value"),
                _ => CmdError::Silent,
            })?;
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
        "help" => s.out.push_str(crate::help::HELP_COMMANDS),
        _ => return Err(syntax("Unrecognized command")),
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests;
