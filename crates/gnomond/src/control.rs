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
//! Source reports and source/discipline commands go through [`SourceReports`]: the
//! synchronisation engine plugs in by implementing it. Its default command bodies answer what
//! chronyd answers when it cannot act: no source matches (`503 No such source`), `makestep`,
//! `add`, `dfreq`/`doffset` fail (`500 Failure`). Handled here: `settime`/`manual on` and
//! `smoothing` are not enabled (`505`), RTC commands have no RTC (`513`).

use crate::command_socket::Peer;
use crate::ntp_server::CoreResponder;
use crate::reports::{self, CommandCounters, EngineParam, SourceReports};
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

/// The command server's state.
#[derive(Debug)]
pub struct Control<S: SourceReports> {
    cmd_access: AccessTable,
    counters: CommandCounters,
    log_file: Option<PathBuf>,
    sources: S,
    shutdown: bool,
    /// A run-time `allow`/`deny` changed the NTP access table since the last look.
    ntp_access_changed: bool,
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
    /// `cyclelogs`) and the source reports (through which run-time engine settings go).
    pub fn new(cmd_access: AccessTable, log_file: Option<PathBuf>, sources: S) -> Control<S> {
        Control {
            cmd_access,
            counters: CommandCounters::default(),
            log_file,
            sources,
            shutdown: false,
            ntp_access_changed: false,
        }
    }

    /// Whether a run-time `allow`/`deny` changed the NTP access table since the last call
    /// (the scheduler then opens or closes NTP sockets).
    pub fn take_ntp_access_change(&mut self) -> bool {
        std::mem::take(&mut self.ntp_access_changed)
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
                // The statistics logs (statlog.rs, written by client.rs) start new files too.
                crate::statlog::request_reopen();
                ok
            }
            Request::Shutdown => {
                tracing::info!("Received shutdown command");
                self.shutdown = true;
                ok
            }
            // keys.rs: re-read the key file (and externally managed NTS keys).
            Request::Rekey => {
                crate::keys::rekey(ntp.server_mut());
                ok
            }
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
            // chronyd -x cannot step its clock: it logs the failure and answers `500 Failure`.
            // gnomond's null clock started with an artificial error (`-X`) simulates a clock
            // that can, for end-to-end tests of the discipline.
            Request::MakeStep if !crate::client::commands::clock_can_step() => {
                tracing::error!("Could not step system clock");
                status(Status::Failed)
            }
            Request::MakeStep => status(self.sources.make_step()),
            Request::ModifyGlobalFloat { field, value } => self.global_float(field, value),
            Request::ModifyMakestep { limit, threshold } => {
                if !threshold.is_finite() {
                    return status(Status::Invalid);
                }
                self.sources
                    .set_engine_param(EngineParam::Makestep(threshold, limit));
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
            Ok(()) => {
                self.ntp_access_changed |= !command;
                (Status::Success, ReplyBody::Null)
            }
            Err(_) => (Status::BadSubnet, ReplyBody::Null),
        }
    }

    /// `local`/`local off`: what the NTP server serves now, and the engine's local reference
    /// and orphan mode from its next turn (queued as a source command). chronyd 4.3 logs
    /// nothing.
    fn local(&mut self, p: &LocalParams, ntp: &mut CoreResponder) -> (Status, ReplyBody) {
        if !p.on {
            ntp.set_local(None);
            self.sources.set_local(None);
            return (Status::Success, ReplyBody::Null);
        }
        let stratum = match u8::try_from(p.stratum) {
            Ok(s) if (1..=15).contains(&s) => s,
            _ => return (Status::Invalid, ReplyBody::Null),
        };
        // chronyd 4.3 takes any distance (`local distance -1` is 200 OK: the local reference
        // activates at once); only a value that is no number is refused.
        if !p.distance.is_finite() {
            return (Status::Invalid, ReplyBody::Null);
        }
        ntp.set_local(Some(stratum));
        self.sources
            .set_local(Some(gnomon_core::reference::LocalConfig {
                stratum,
                distance: p.distance,
                orphan: p.orphan,
            }));
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
                    self.sources
                        .set_engine_param(EngineParam::MaxUpdateSkew(value));
                    Status::Success
                }
                GlobalFloatField::ReselectDistance if value >= 0.0 => {
                    self.sources
                        .set_engine_param(EngineParam::ReselectDistance(value));
                    Status::Success
                }
                _ => Status::Invalid,
            }
        };
        (s, ReplyBody::Null)
    }
}

#[cfg(test)]
mod tests;
