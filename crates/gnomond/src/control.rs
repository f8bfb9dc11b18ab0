//! The command server: answers chrony's control protocol (cmdmon v6, features.md §4) on the
//! command sockets, as chronyd 4.3 does.
//!
//! Order for each datagram, as observed from chronyd 4.3: a UDP sender that is neither
//! localhost nor allowed by `cmdallow`/`cmddeny` gets nothing; a malformed datagram (length,
//! type, reserved bytes) gets nothing and is not counted; everything else, protocol versions
//! below 5 included (then dropped), counts as a command hit
//! ("Command packets received"; UDP senders also in the client log, shown by `clients`) and
//! UDP senders other than localhost go through `cmdratelimit`. Then the request is classified
//! by `gnomon_cmdmon::classify` (error statuses), UDP requests outside the monitoring subset get
//! `501 Not authorised`, and the rest are dispatched, one function per report in
//! [`crate::reports`]. A reply is never longer than its request (`gnomon_cmdmon::answer`).
//!
//! Without the synchronisation engine, commands that need it answer what chronyd answers when it
//! cannot do them: no source matches (`503 No such source`), `makestep` fails (`500 Failure`),
//! `add` fails (`500 Failure`), `dfreq`/`doffset` fail (`500 Failure`: nothing disciplines the
//! clock), `settime`/`manual on` and `smoothing` are not enabled (`505`), RTC commands have no
//! RTC (`513`).

use crate::command_socket::Peer;
use crate::ntp_server::CoreResponder;
use crate::reports::{self, CommandCounters, SourceReports};
use crate::responder::Counters;
use gnomon_cmdmon::server::{classify, open_by_default, DropReason, Incoming};
use gnomon_cmdmon::{
    answer, AccessOp, Addr, GlobalFloatField, LocalParams, ReplyBody, ReplyCode, Request,
    RequestHeader, Status,
};
use gnomon_core::access::{AccessRule, AccessTable};
use gnomon_core::client_log::Service;
use gnomon_wire::NtpTimestamp;
use std::net::IpAddr;
use std::path::PathBuf;

/// The times a command is handled at.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// CLOCK_MONOTONIC, seconds.
    pub mono: f64,
    /// The daemon's (corrected) real time.
    pub ntp: NtpTimestamp,
    /// The same as Unix seconds (resolves NTP eras).
    pub unix: i64,
}

/// Run-time settings that commands change and the synchronisation engine will read; kept
/// here, validated, until it lands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineParams {
    /// `makestep` threshold (s) and limit (updates), from MODIFY_MAKESTEP.
    pub makestep: Option<(f64, i32)>,
    /// `maxupdateskew`, ppm.
    pub max_update_skew: f64,
    /// `reselectdist`, seconds.
    pub reselect_distance: f64,
}

/// The command server's state.
#[derive(Debug)]
pub struct Control<S: SourceReports> {
    cmd_access: AccessTable,
    counters: CommandCounters,
    log_file: Option<PathBuf>,
    sources: S,
    params: EngineParams,
    shutdown: bool,
}

fn is_localhost(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(a) => {
            a == std::net::Ipv6Addr::LOCALHOST
                || a.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
        }
    }
}

/// An access rule from a command's address and prefix length; `None` for a bad subnet.
fn access_rule(allow: bool, all: bool, ip: &Addr, bits: i32) -> Option<AccessRule> {
    let subnet = match ip.ip() {
        None if *ip == Addr::Unspec => None,
        None => return None,
        Some(a) => {
            let max = if a.is_ipv4() { 32 } else { 128 };
            // chronyc sends -1 for "the whole address".
            let bits = if bits < 0 { max } else { bits };
            Some((a, u8::try_from(bits).ok().filter(|b| i32::from(*b) <= max)?))
        }
    };
    Some(AccessRule { allow, all, subnet })
}

impl<S: SourceReports> Control<S> {
    /// A command server with the `cmdallow`/`cmddeny` table, the `-l` log file (for
    /// `cyclelogs`), the source reports and the configured engine parameters.
    pub fn new(
        cmd_access: AccessTable,
        log_file: Option<PathBuf>,
        sources: S,
        params: EngineParams,
    ) -> Control<S> {
        Control {
            cmd_access,
            counters: CommandCounters::default(),
            log_file,
            sources,
            params,
            shutdown: false,
        }
    }

    /// Whether a `shutdown` command was served.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown
    }

    /// The counters so far.
    pub fn counters(&self) -> CommandCounters {
        self.counters
    }

    /// The source reports (read by the metrics endpoint, metrics.rs).
    pub fn sources(&self) -> &S {
        &self.sources
    }

    /// The reply to one datagram from `peer`, or `None` to send nothing.
    pub fn handle(
        &mut self,
        datagram: &[u8],
        peer: &Peer,
        ntp: &mut CoreResponder,
        io: &Counters,
        now: Now,
    ) -> Option<Vec<u8>> {
        let udp = match peer {
            Peer::Udp(addr) => {
                let ip = addr.ip();
                let local = is_localhost(ip);
                if !local && !self.cmd_access.allowed(ip) {
                    return None;
                }
                Some((*addr, local))
            }
            Peer::Unix(_) => None,
        };
        let incoming = classify(datagram);
        match incoming {
            // chronyd counts (and rate-limits) an old-version request before dropping it.
            Incoming::Drop(DropReason::OldVersion(_)) => {}
            Incoming::Drop(_) => return None,
            _ => {}
        }
        self.counters.hits += 1;
        if let Some((addr, local)) = udp {
            if local {
                // Localhost is logged (for `clients`) but never rate limited.
                ntp.server_mut()
                    .client_log_mut()
                    .log_access(addr.ip(), Service::Command, now.mono);
            } else if !ntp
                .server_mut()
                .check_service(addr, Service::Command, now.mono)
            {
                self.counters.drops += 1;
                return None;
            }
        }
        match incoming {
            Incoming::Drop(_) => None,
            Incoming::Reject(reply) => Some(reply),
            Incoming::Request {
                header,
                request,
                len,
            } => {
                if udp.is_some() && !open_by_default(header.command) {
                    return Some(answer(&header, len, Status::Unauth, ReplyBody::Null));
                }
                let (status, body) = self.dispatch(&header, request, len, ntp, io, now);
                Some(answer(&header, len, status, body))
            }
        }
    }

    fn dispatch(
        &mut self,
        header: &RequestHeader,
        request: Request,
        len: usize,
        ntp: &mut CoreResponder,
        io: &Counters,
        now: Now,
    ) -> (Status, ReplyBody) {
        let ok = (Status::Success, ReplyBody::Null);
        let status = |s: Status| (s, ReplyBody::Null);
        let report = |r: Result<ReplyBody, Status>| match r {
            Ok(body) => (Status::Success, body),
            Err(s) => (s, ReplyBody::Null),
        };
        let newer = |code: ReplyCode| ReplyCode::for_request(header.command, len) == Some(code);
        match request {
            Request::Null => ok,
            // Reports.
            Request::Tracking => {
                let reference = ntp.reference_at(now.ntp, now.mono);
                (
                    Status::Success,
                    // The engine's view while synchronised (client.rs), else the server's.
                    ReplyBody::Tracking(
                        self.sources
                            .tracking()
                            .unwrap_or_else(|| reports::tracking(&reference, now.unix)),
                    ),
                )
            }
            Request::NSources => (
                Status::Success,
                ReplyBody::NSources {
                    n_sources: self.sources.n_sources(),
                },
            ),
            Request::SourceData { index } => {
                report(self.sources.source_data(index).map(ReplyBody::SourceData))
            }
            Request::SourceStats { index } => {
                report(self.sources.source_stats(index).map(ReplyBody::SourceStats))
            }
            Request::SelectData { index } => {
                report(self.sources.select_data(index).map(ReplyBody::SelectData))
            }
            Request::NtpData { ip } => report(self.sources.ntp_data(&ip).map(|d| {
                if newer(ReplyCode::NtpData2) {
                    ReplyBody::NtpData2(d)
                } else {
                    ReplyBody::NtpData(d)
                }
            })),
            Request::AuthData { ip } => {
                report(self.sources.auth_data(&ip).map(ReplyBody::AuthData))
            }
            Request::NtpSourceName { ip } => report(
                self.sources
                    .source_name(&ip)
                    .map(|name| ReplyBody::NtpSourceName { name }),
            ),
            Request::Activity => (
                Status::Success,
                ReplyBody::Activity(self.sources.activity()),
            ),
            Request::ServerStats => {
                let stats = reports::server_stats(&ntp.stats(), &self.counters, io);
                let body = if newer(ReplyCode::ServerStats4) {
                    ReplyBody::ServerStats4(stats)
                } else {
                    ReplyBody::ServerStats3(stats)
                };
                (Status::Success, body)
            }
            Request::ClientAccessesByIndex {
                first_index,
                n_clients,
                min_hits,
                reset,
            } => report(
                reports::client_accesses(
                    ntp.server_mut().client_log_mut(),
                    first_index,
                    n_clients,
                    min_hits,
                    reset != 0,
                    now.mono,
                )
                .map(ReplyBody::ClientAccesses),
            ),
            Request::ManualList => (
                Status::Success,
                ReplyBody::ManualList {
                    n_samples: 0,
                    samples: Vec::new(),
                },
            ),
            // Access rules.
            Request::Access {
                op,
                ip,
                subnet_bits,
            } => self.access(op, &ip, subnet_bits, ntp),
            Request::AcCheck { ip } => match ip.ip() {
                Some(a) if ntp.server().access().allowed(a) => status(Status::AccessAllowed),
                Some(_) => status(Status::AccessDenied),
                None => status(Status::BadSubnet),
            },
            Request::CmdAcCheck { ip } => match ip.ip() {
                Some(a) if self.cmd_access.allowed(a) => status(Status::AccessAllowed),
                Some(_) => status(Status::AccessDenied),
                None => status(Status::BadSubnet),
            },
            // The local reference.
            Request::Local2(p) | Request::Local3(p) => self.local(&p, ntp),
            // Daemon housekeeping.
            Request::CycleLogs => {
                if let Some(path) = &self.log_file {
                    if let Err(e) = crate::logging::reopen_file(path) {
                        tracing::error!("Could not open log file {} : {e}", path.display());
                    }
                }
                ok
            }
            Request::Shutdown => {
                tracing::info!("Received shutdown command");
                self.shutdown = true;
                ok
            }
            // No keys to reload (no symmetric keys yet).
            Request::Rekey => ok,
            // Source and discipline commands: the source engine's answer.
            Request::Dump
            | Request::Reselect
            | Request::Refresh
            | Request::ResetSources
            | Request::ReloadSources => status(self.sources.housekeeping(header.command)),
            Request::OnOffline => status(self.sources.on_offline()),
            Request::Online { mask, address } => {
                status(self.sources.set_online(&mask, &address, true))
            }
            Request::Offline { mask, address } => {
                status(self.sources.set_online(&mask, &address, false))
            }
            Request::Burst {
                mask,
                address,
                n_good,
                n_total,
            } => status(self.sources.burst(&mask, &address, n_good, n_total)),
            Request::ModifySourceInt {
                field,
                address,
                value,
            } => status(self.sources.modify_int(field, &address, value)),
            Request::ModifySourceFloat {
                field,
                address,
                value,
            } => status(self.sources.modify_float(field, &address, value)),
            Request::DelSource { ip } => status(self.sources.delete_source(&ip)),
            Request::ModifySelectOpts {
                address,
                ref_id,
                mask,
                options,
            } => status(
                self.sources
                    .modify_select_opts(&address, ref_id, mask, options),
            ),
            Request::ModifyOffset {
                address,
                ref_id,
                offset,
            } => status(self.sources.modify_offset(&address, ref_id, offset)),
            Request::AddSource(source) => status(self.sources.add_source(&source)),
            Request::MakeStep => status(self.sources.make_step()),
            Request::ModifyGlobalFloat { field, value } => self.global_float(field, value),
            Request::ModifyMakestep { limit, threshold } => {
                if !threshold.is_finite() {
                    return status(Status::Invalid);
                }
                self.params.makestep = Some((threshold, limit));
                ok
            }
            Request::Manual { option } => match option {
                0 | 2 => ok,
                1 => status(Status::NotEnabled),
                _ => status(Status::Invalid),
            },
            Request::ManualDelete { .. } => status(Status::BadSample),
            Request::Settime { .. } | Request::Smoothing | Request::SmoothTime { .. } => {
                status(Status::NotEnabled)
            }
            Request::WriteRtc | Request::RtcReport | Request::TrimRtc => status(Status::NoRtc),
        }
    }

    fn access(
        &mut self,
        op: AccessOp,
        ip: &Addr,
        bits: i32,
        ntp: &mut CoreResponder,
    ) -> (Status, ReplyBody) {
        let (allow, all, command) = match op {
            AccessOp::Allow => (true, false, false),
            AccessOp::AllowAll => (true, true, false),
            AccessOp::Deny => (false, false, false),
            AccessOp::DenyAll => (false, true, false),
            AccessOp::CmdAllow => (true, false, true),
            AccessOp::CmdAllowAll => (true, true, true),
            AccessOp::CmdDeny => (false, false, true),
            AccessOp::CmdDenyAll => (false, true, true),
        };
        let Some(rule) = access_rule(allow, all, ip, bits) else {
            return (Status::BadSubnet, ReplyBody::Null);
        };
        let table = if command {
            &mut self.cmd_access
        } else {
            ntp.server_mut().access_mut()
        };
        match table.apply(&rule) {
            Ok(()) => (Status::Success, ReplyBody::Null),
            Err(_) => (Status::BadSubnet, ReplyBody::Null),
        }
    }

    fn local(&mut self, p: &LocalParams, ntp: &mut CoreResponder) -> (Status, ReplyBody) {
        if !p.on {
            ntp.set_local(None);
            tracing::info!("Local reference mode disabled");
            return (Status::Success, ReplyBody::Null);
        }
        let stratum = match u8::try_from(p.stratum) {
            Ok(s) if (1..=15).contains(&s) => s,
            _ => return (Status::Invalid, ReplyBody::Null),
        };
        if !p.distance.is_finite() || p.distance < 0.0 {
            return (Status::Invalid, ReplyBody::Null);
        }
        ntp.set_local(Some(stratum));
        tracing::info!("Local reference mode enabled (stratum {stratum})");
        (Status::Success, ReplyBody::Null)
    }

    fn global_float(&mut self, field: GlobalFloatField, value: f64) -> (Status, ReplyBody) {
        let s = if !value.is_finite() {
            Status::Invalid
        } else {
            match field {
                GlobalFloatField::Dfreq | GlobalFloatField::Doffset => {
                    self.sources.adjust_clock(field, value)
                }
                GlobalFloatField::Maxupdateskew if value > 0.0 => {
                    self.params.max_update_skew = value;
                    Status::Success
                }
                GlobalFloatField::ReselectDistance if value >= 0.0 => {
                    self.params.reselect_distance = value;
                    Status::Success
                }
                _ => Status::Invalid,
            }
        };
        (s, ReplyBody::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::NoSources;
    use gnomon_cmdmon::{decode_reply, encode_request, Reply};
    use std::net::SocketAddr;

    fn daemon(lines: &[&str]) -> (Control<NoSources>, CoreResponder) {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        let config = gnomon_conf::load_lines(&lines).unwrap();
        let limit = config.directives().any(|d| d.name() == "cmdratelimit");
        let settings = config.settings();
        let ntp = CoreResponder::new(&settings, 7, limit).unwrap();
        let access = crate::ntp_server::access_table(&settings.cmd_access).unwrap();
        let params = EngineParams {
            makestep: None,
            max_update_skew: 1000.0,
            reselect_distance: 1e-4,
        };
        (Control::new(access, None, NoSources, params), ntp)
    }

    fn now(mono: f64) -> Now {
        Now {
            mono,
            ntp: NtpTimestamp::from_unix(1_800_000_000, 0),
            unix: 1_800_000_000,
        }
    }

    const UNIX: Peer = Peer::Unix(None);

    fn udp(ip: &str) -> Peer {
        Peer::Udp(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    fn send(
        c: &mut Control<NoSources>,
        ntp: &mut CoreResponder,
        peer: &Peer,
        req: &Request,
    ) -> Option<Reply> {
        let pkt = encode_request(req, 0, 0x55);
        let r = c.handle(&pkt, peer, ntp, &Counters::default(), now(100.0))?;
        assert!(r.len() <= pkt.len(), "reply longer than request");
        Some(decode_reply(&r).unwrap())
    }

    fn status(c: &mut Control<NoSources>, ntp: &mut CoreResponder, p: &Peer, r: Request) -> Status {
        send(c, ntp, p, &r).unwrap().status
    }

    fn v4(s: &str) -> Addr {
        Addr::V4(s.parse().unwrap())
    }

    fn allow(ip: &str, bits: i32) -> Request {
        Request::Access {
            op: AccessOp::Allow,
            ip: v4(ip),
            subnet_bits: bits,
        }
    }

    fn local(on: bool, stratum: i32) -> Request {
        Request::Local3(LocalParams {
            on,
            stratum,
            distance: 1.0,
            orphan: false,
            activate: 0.0,
            wait_synced: 0.0,
            wait_unsynced: 0.0,
        })
    }

    fn tracking(c: &mut Control<NoSources>, ntp: &mut CoreResponder) -> gnomon_cmdmon::Tracking {
        match send(c, ntp, &UNIX, &Request::Tracking).unwrap().body {
            ReplyBody::Tracking(t) => t,
            b => panic!("{b:?}"),
        }
    }

    #[test]
    fn privileged_command_over_udp_is_not_authorised_and_changes_nothing() {
        let (mut c, mut ntp) = daemon(&[]);
        let lo = udp("127.0.0.1");
        assert_eq!(
            status(&mut c, &mut ntp, &lo, allow("10.0.0.0", 8)),
            Status::Unauth
        );
        assert_eq!(
            status(&mut c, &mut ntp, &lo, local(true, 3)),
            Status::Unauth
        );
        assert_eq!(
            status(&mut c, &mut ntp, &lo, Request::Shutdown),
            Status::Unauth
        );
        assert!(!c.shutdown_requested());
        assert!(!ntp.server().access().allowed("10.1.2.3".parse().unwrap()));
        assert_eq!(tracking(&mut c, &mut ntp).stratum, 0);
        // Monitoring works over UDP.
        assert_eq!(
            status(&mut c, &mut ntp, &lo, Request::Tracking),
            Status::Success
        );
    }

    #[test]
    fn run_time_allow_and_deny_change_ntp_access() {
        let (mut c, mut ntp) = daemon(&[]);
        let check = |c: &mut Control<NoSources>, ntp: &mut CoreResponder| {
            status(c, ntp, &UNIX, Request::AcCheck { ip: v4("10.1.1.1") })
        };
        assert_eq!(check(&mut c, &mut ntp), Status::AccessDenied);
        assert_eq!(
            status(&mut c, &mut ntp, &UNIX, allow("10.0.0.0", 8)),
            Status::Success
        );
        assert_eq!(check(&mut c, &mut ntp), Status::AccessAllowed);
        let deny = Request::Access {
            op: AccessOp::Deny,
            ip: v4("10.1.0.0"),
            subnet_bits: 16,
        };
        assert_eq!(status(&mut c, &mut ntp, &UNIX, deny), Status::Success);
        assert_eq!(check(&mut c, &mut ntp), Status::AccessDenied);
        assert_eq!(
            status(&mut c, &mut ntp, &UNIX, allow("10.0.0.0", 40)),
            Status::BadSubnet
        );
        assert!(ntp.server().access().allowed("10.2.0.1".parse().unwrap()));
    }

    #[test]
    fn cmdallow_admits_a_remote_host_which_was_silently_dropped() {
        let (mut c, mut ntp) = daemon(&[]);
        let remote = udp("127.0.0.2");
        assert_eq!(send(&mut c, &mut ntp, &remote, &Request::Tracking), None);
        assert_eq!(c.counters().hits, 0, "denied hosts are not counted");
        let cmdallow = Request::Access {
            op: AccessOp::CmdAllow,
            ip: v4("127.0.0.2"),
            subnet_bits: 32,
        };
        assert_eq!(status(&mut c, &mut ntp, &UNIX, cmdallow), Status::Success);
        assert_eq!(
            status(
                &mut c,
                &mut ntp,
                &UNIX,
                Request::CmdAcCheck {
                    ip: v4("127.0.0.2")
                }
            ),
            Status::AccessAllowed
        );
        assert_eq!(
            status(&mut c, &mut ntp, &remote, Request::Tracking),
            Status::Success
        );
    }

    #[test]
    fn cmdratelimit_drops_remote_floods_but_never_localhost() {
        let (mut c, mut ntp) = daemon(&["cmdallow 127.0.0.2", "cmdratelimit interval 4 burst 1"]);
        let (remote, lo) = (udp("127.0.0.2"), udp("127.0.0.1"));
        let answered = (0..20)
            .filter(|_| send(&mut c, &mut ntp, &remote, &Request::Tracking).is_some())
            .count();
        assert!(answered < 20, "rate limit never dropped");
        assert!(c.counters().drops > 0);
        for _ in 0..20 {
            assert!(send(&mut c, &mut ntp, &lo, &Request::Tracking).is_some());
        }
        assert_eq!(c.counters().hits, 40);
    }

    #[test]
    fn local_command_switches_reference_and_rejects_bad_stratum() {
        let (mut c, mut ntp) = daemon(&[]);
        assert_eq!(
            status(&mut c, &mut ntp, &UNIX, local(true, 99)),
            Status::Invalid
        );
        assert_eq!(tracking(&mut c, &mut ntp).stratum, 0);
        assert_eq!(
            status(&mut c, &mut ntp, &UNIX, local(true, 6)),
            Status::Success
        );
        let t = tracking(&mut c, &mut ntp);
        assert_eq!((t.ref_id, t.stratum, t.leap_status), (0x7F7F_0101, 6, 0));
        assert_eq!(t.ref_time.sec, 1_800_000_000);
        assert_eq!(
            status(&mut c, &mut ntp, &UNIX, local(false, 0)),
            Status::Success
        );
        assert_eq!(tracking(&mut c, &mut ntp).leap_status, 3);
    }

    #[test]
    fn nonsense_values_are_rejected_and_state_kept() {
        let (mut c, mut ntp) = daemon(&[]);
        let skew = |v: f64| Request::ModifyGlobalFloat {
            field: GlobalFloatField::Maxupdateskew,
            value: v,
        };
        assert_eq!(status(&mut c, &mut ntp, &UNIX, skew(-5.0)), Status::Invalid);
        assert_eq!(c.params.max_update_skew, 1000.0);
        assert_eq!(status(&mut c, &mut ntp, &UNIX, skew(50.0)), Status::Success);
        assert_eq!(c.params.max_update_skew, 50.0);
        let maxpoll = Request::ModifySourceInt {
            field: gnomon_cmdmon::SourceIntField::Maxpoll,
            address: v4("192.0.2.1"),
            value: 99,
        };
        assert_eq!(
            status(&mut c, &mut ntp, &UNIX, maxpoll),
            Status::NoSuchSource
        );
    }

    #[test]
    fn shutdown_over_unix_socket_stops_the_daemon() {
        let (mut c, mut ntp) = daemon(&[]);
        assert_eq!(
            status(&mut c, &mut ntp, &UNIX, Request::Shutdown),
            Status::Success
        );
        assert!(c.shutdown_requested());
    }

    #[test]
    fn serverstats_counts_commands_and_adapts_to_request_length() {
        let (mut c, mut ntp) = daemon(&[]);
        for _ in 0..3 {
            send(&mut c, &mut ntp, &udp("127.0.0.1"), &Request::Tracking);
        }
        let reply = send(&mut c, &mut ntp, &UNIX, &Request::ServerStats).unwrap();
        match reply.body {
            ReplyBody::ServerStats3(s) => assert_eq!(s.cmd_hits, 4),
            b => panic!("{b:?}"),
        }
        let mut long = encode_request(&Request::ServerStats, 0, 1);
        long.resize(gnomon_cmdmon::reply_length(ReplyCode::ServerStats4), 0);
        let r = c
            .handle(&long, &UNIX, &mut ntp, &Counters::default(), now(101.0))
            .unwrap();
        assert!(matches!(
            decode_reply(&r).unwrap().body,
            ReplyBody::ServerStats4(_)
        ));
    }

    #[test]
    fn malformed_datagrams_are_not_counted_but_old_versions_are() {
        let (mut c, mut ntp) = daemon(&[]);
        let good = encode_request(&Request::Tracking, 0, 1);
        let io = Counters::default();
        let lo = udp("127.0.0.1");
        let mut send = |pkt: &[u8]| c.handle(pkt, &lo, &mut ntp, &io, now(5.0));
        assert_eq!(send(&good[..20]), None);
        let mut bad_type = good.clone();
        bad_type[1] = 2;
        assert_eq!(send(&bad_type), None);
        let mut reserved = good.clone();
        reserved[2] = 1;
        assert_eq!(send(&reserved), None);
        let mut oversized = good.clone();
        oversized.resize(900, 0);
        assert_eq!(send(&oversized), None);
        let mut old = good.clone();
        old[0] = 4;
        assert_eq!(send(&old), None);
        assert_eq!(c.counters().hits, 1, "only the old-version request counts");
    }

    #[test]
    fn garbage_is_dropped_or_answered_never_longer_than_itself() {
        let (mut c, mut ntp) = daemon(&[]);
        let mut seed = 0x1234_5678_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for i in 0..3000 {
            let len = (next() % 900) as usize;
            let mut pkt: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them look like requests, to get past the header checks.
            if i % 2 == 0 && len >= 12 {
                pkt[0] = 6;
                pkt[1] = 1;
                pkt[2] = 0;
                pkt[3] = 0;
                pkt[4] = 0;
                pkt[5] = (next() % 80) as u8;
            }
            for peer in [&UNIX, &udp("127.0.0.1")] {
                if let Some(r) = c.handle(&pkt, peer, &mut ntp, &Counters::default(), now(1.0)) {
                    assert!(r.len() <= pkt.len(), "{} > {}", r.len(), pkt.len());
                    assert!(decode_reply(&r).is_ok());
                }
            }
        }
    }
}
