//! The command server's dispatch, access and counting rules, driven with encoded requests.

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
    (Control::new(access, None, NoSources), ntp)
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

fn send<S: SourceReports>(
    c: &mut Control<S>,
    ntp: &mut CoreResponder,
    peer: &Peer,
    req: &Request,
) -> Option<Reply> {
    let pkt = encode_request(req, 0, 0x55);
    let r = c.handle(&pkt, peer, ntp, &Counters::default(), now(100.0))?;
    assert!(r.len() <= pkt.len(), "reply longer than request");
    Some(decode_reply(&r).unwrap())
}

fn status<S: SourceReports>(
    c: &mut Control<S>,
    ntp: &mut CoreResponder,
    p: &Peer,
    r: Request,
) -> Status {
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
fn local_command_is_handed_to_the_engine_with_orphan_and_distance() {
    let (c0, mut ntp) = daemon(&[]);
    let mut c = Control::new(c0.cmd_access, None, OneSource::default());
    let taken = |c: &mut Control<OneSource>| std::mem::take(&mut c.sources.locals);
    let orphan = Request::Local3(LocalParams {
        on: true,
        stratum: 10,
        distance: 0.5,
        orphan: true,
        activate: 0.0,
        wait_synced: 0.0,
        wait_unsynced: 0.0,
    });
    assert_eq!(status(&mut c, &mut ntp, &UNIX, orphan), Status::Success);
    assert_eq!(
        taken(&mut c),
        vec![Some(gnomon_core::reference::LocalConfig {
            stratum: 10,
            distance: 0.5,
            orphan: true,
        })]
    );
    // A negative distance is taken, as chronyd takes it (`local distance -1`: 200 OK).
    let negative = Request::Local2(LocalParams {
        on: true,
        stratum: 10,
        distance: -1.0,
        orphan: false,
        activate: 0.0,
        wait_synced: 0.0,
        wait_unsynced: 0.0,
    });
    assert_eq!(status(&mut c, &mut ntp, &UNIX, negative), Status::Success);
    assert_eq!(
        taken(&mut c)
            .into_iter()
            .flatten()
            .map(|l| l.distance)
            .collect::<Vec<_>>(),
        vec![-1.0]
    );
    // A refused command changes nothing.
    assert_eq!(
        status(&mut c, &mut ntp, &UNIX, local(true, 99)),
        Status::Invalid
    );
    assert!(taken(&mut c).is_empty());
    assert_eq!(
        status(&mut c, &mut ntp, &UNIX, local(false, 0)),
        Status::Success
    );
    assert_eq!(taken(&mut c), vec![None]);
}

#[test]
fn nonsense_values_are_rejected_and_reach_nothing() {
    let (c0, mut ntp) = daemon(&[]);
    let mut c = Control::new(c0.cmd_access, None, OneSource::default());
    let skew = |v: f64| Request::ModifyGlobalFloat {
        field: GlobalFloatField::Maxupdateskew,
        value: v,
    };
    assert_eq!(status(&mut c, &mut ntp, &UNIX, skew(-5.0)), Status::Invalid);
    assert!(c.sources.params.is_empty());
    assert_eq!(status(&mut c, &mut ntp, &UNIX, skew(50.0)), Status::Success);
    assert_eq!(
        c.sources.params,
        vec![crate::reports::EngineParam::MaxUpdateSkew(50.0)]
    );
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

/// An engine stand-in that knows one source, to check that commands reach the engine.
#[derive(Default)]
struct OneSource {
    bursts: u32,
    added: Vec<Vec<u8>>,
    locals: Vec<Option<gnomon_core::reference::LocalConfig>>,
    params: Vec<crate::reports::EngineParam>,
}

impl SourceReports for OneSource {
    fn n_sources(&self) -> u32 {
        1
    }
    fn source_data(&self, i: i32) -> Result<gnomon_cmdmon::SourceData, Status> {
        NoSources.source_data(i)
    }
    fn source_stats(&self, i: u32) -> Result<gnomon_cmdmon::SourceStats, Status> {
        NoSources.source_stats(i)
    }
    fn select_data(&self, i: u32) -> Result<gnomon_cmdmon::SelectData, Status> {
        NoSources.select_data(i)
    }
    fn ntp_data(&self, ip: &Addr) -> Result<gnomon_cmdmon::NtpData, Status> {
        NoSources.ntp_data(ip)
    }
    fn auth_data(&self, ip: &Addr) -> Result<gnomon_cmdmon::AuthData, Status> {
        NoSources.auth_data(ip)
    }
    fn source_name(&self, ip: &Addr) -> Result<Vec<u8>, Status> {
        NoSources.source_name(ip)
    }
    fn activity(&self) -> gnomon_cmdmon::Activity {
        NoSources.activity()
    }
    fn burst(&mut self, _mask: &Addr, _address: &Addr, _good: i32, _total: i32) -> Status {
        self.bursts += 1;
        Status::Success
    }
    fn add_source(&mut self, source: &gnomon_cmdmon::AddSource) -> Status {
        self.added.push(source.name.clone());
        Status::Success
    }
    fn set_local(&mut self, local: Option<gnomon_core::reference::LocalConfig>) {
        self.locals.push(local);
    }
    fn set_engine_param(&mut self, param: crate::reports::EngineParam) {
        self.params.push(param);
    }
}

#[test]
fn source_commands_reach_the_engine_and_only_over_the_unix_socket() {
    let (c0, mut ntp) = daemon(&[]);
    let mut c = Control::new(c0.cmd_access, None, OneSource::default());
    let burst = encode_request(
        &Request::Burst {
            mask: Addr::Unspec,
            address: Addr::Unspec,
            n_good: 2,
            n_total: 4,
        },
        0,
        1,
    );
    let io = Counters::default();
    let r = c.handle(&burst, &udp("127.0.0.1"), &mut ntp, &io, now(1.0));
    assert_eq!(decode_reply(&r.unwrap()).unwrap().status, Status::Unauth);
    assert_eq!(c.sources().bursts, 0);
    let r = c.handle(&burst, &UNIX, &mut ntp, &io, now(1.0));
    assert_eq!(decode_reply(&r.unwrap()).unwrap().status, Status::Success);
    assert_eq!(c.sources().bursts, 1);
    let n = encode_request(&Request::NSources, 0, 2);
    match decode_reply(&c.handle(&n, &UNIX, &mut ntp, &io, now(1.0)).unwrap())
        .unwrap()
        .body
    {
        ReplyBody::NSources { n_sources } => assert_eq!(n_sources, 1),
        b => panic!("{b:?}"),
    }
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

#[test]
fn makestep_maxupdateskew_and_reselectdist_commands_reach_the_engine() {
    use crate::reports::EngineParam;
    let (c0, mut ntp) = daemon(&[]);
    let mut c = Control::new(c0.cmd_access, None, OneSource::default());
    let makestep = Request::ModifyMakestep {
        limit: 3,
        threshold: 0.5,
    };
    assert_eq!(status(&mut c, &mut ntp, &UNIX, makestep), Status::Success);
    for (field, value) in [
        (GlobalFloatField::Maxupdateskew, 50.0),
        (GlobalFloatField::ReselectDistance, 0.25),
        // Refused: nothing reaches the engine.
        (GlobalFloatField::Maxupdateskew, -1.0),
    ] {
        let _ = status(
            &mut c,
            &mut ntp,
            &UNIX,
            Request::ModifyGlobalFloat { field, value },
        );
    }
    assert_eq!(
        c.sources.params,
        vec![
            EngineParam::Makestep(0.5, 3),
            EngineParam::MaxUpdateSkew(50.0),
            EngineParam::ReselectDistance(0.25),
        ]
    );
}
