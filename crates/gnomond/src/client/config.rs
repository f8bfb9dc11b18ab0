//! The configuration of the synchronisation engine from the daemon's settings: chrony's
//! `server`/`pool`/`peer` options and the selection and discipline directives (chrony.conf
//! meanings and defaults), translated into `gnomon_core::association` types.

use gnomon_conf::{Settings, SourceKind as ConfKind, SourceSpec};
use gnomon_core::association::{EngineConfig, OneShot, SourceAuth, SourceConfig, SourceKind};
use gnomon_core::nts_client::NtsSource;
use gnomon_core::reference::leap_table::LeapTable;
use gnomon_core::reference::{LeapMode, LocalConfig, ReferenceConfig};
use gnomon_core::selection::{SelectOptions, SelectionConfig};

/// How a configured source is reached once its name is resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePlan {
    /// Host name or address as written.
    pub host: String,
    /// UDP port of the source.
    pub port: u16,
    /// `pool` (resolved by the engine's requests, several members) or a single address.
    pub pool_max: Option<usize>,
    /// Engine options.
    pub cfg: SourceConfig,
    /// `key N` / `nts` + `ntsport` (authentication).
    pub auth: SourceAuth,
    /// `certset` (NTS trust set, default 0).
    pub certset: u32,
}

/// `key N`, or `nts` with the source's `ntsport` (and chrony's default `ntsrefresh`:
/// [`source_plans`] applies the configured one); the certificate is checked for the name as
/// written (a pool's name for its members, as chrony does). `peer` has no NTS.
pub fn source_auth(kind: ConfKind, s: &SourceSpec) -> SourceAuth {
    let nts = (s.nts && kind != ConfKind::Peer).then(|| NtsSource {
        server_name: s.host.clone(),
        ke_port: s.ntsport,
        certset: s.certset.unwrap_or(0),
        ..NtsSource::new(&s.host)
    });
    SourceAuth { key: s.key, nts }
}

/// `auth` with the `ntsrefresh` interval (seconds) for an NTS source.
pub fn with_refresh(mut auth: SourceAuth, ntsrefresh: i32) -> SourceAuth {
    if let Some(nts) = &mut auth.nts {
        nts.refresh = u32::try_from(ntsrefresh.max(1)).unwrap_or(1);
    }
    auth
}

/// `authselectmode` in the engine's terms.
pub fn auth_select_mode(settings: &Settings) -> gnomon_core::selection::AuthSelectMode {
    use gnomon_conf::AuthSelectMode as C;
    use gnomon_core::selection::AuthSelectMode as E;
    match settings.authselectmode {
        C::Require => E::Require,
        C::Prefer => E::Prefer,
        C::Mix => E::Mix,
        C::Ignore => E::Ignore,
    }
}

fn to_i8(v: i32) -> i8 {
    i8::try_from(v.clamp(-7, 24)).unwrap_or(6)
}

fn count(v: Option<i32>) -> usize {
    v.map_or(0, |n| usize::try_from(n.max(0)).unwrap_or(0))
}

/// Engine options of one source directive.
pub fn source_config(kind: ConfKind, s: &SourceSpec) -> SourceConfig {
    SourceConfig {
        kind: match kind {
            ConfKind::Server => SourceKind::Server,
            ConfKind::Pool => SourceKind::PoolMember,
            ConfKind::Peer => SourceKind::Peer,
        },
        minpoll: to_i8(s.minpoll),
        maxpoll: to_i8(s.maxpoll),
        iburst: s.iburst,
        burst: s.burst,
        select: SelectOptions {
            prefer: s.prefer,
            noselect: s.noselect,
            trust: s.trust,
            require: s.require,
        },
        offline: s.offline,
        presend: s.presend.map(to_i8),
        minstratum: u8::try_from(s.minstratum.clamp(0, 15)).unwrap_or(0),
        polltarget: u32::try_from(s.polltarget.clamp(6, 60)).unwrap_or(8),
        maxdelay: s.maxdelay,
        // chrony: 0 (the default) disables the test.
        maxdelayratio: (s.maxdelayratio > 0.0).then_some(s.maxdelayratio),
        maxdelaydevratio: s.maxdelaydevratio,
        version: s
            .version
            .and_then(|v| u8::try_from(v.clamp(1, 4)).ok())
            .unwrap_or(4),
        filter: s
            .filter
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0),
        minsamples: count(s.minsamples),
        maxsamples: count(s.maxsamples),
        // ---- measurement and selection options (source_config.rs in core) ----
        offset: if s.offset.is_finite() { s.offset } else { 0.0 },
        // chrony's default 1.0 (outside -0.5..=0.5) means "estimate it".
        asymmetry: (s.asymmetry.abs() <= 0.5).then_some(s.asymmetry),
        mindelay: (s.mindelay > 0.0 && s.mindelay.is_finite()).then_some(s.mindelay),
        maxdelayquant: (s.maxdelayquant > 0.0).then_some(s.maxdelayquant),
        // `copy` does not work in the peer directive (chrony.conf).
        copy: s.copy && kind != ConfKind::Peer,
        auto_offline: s.auto_offline,
        maxunreach: s.maxunreach.map(|n| u32::try_from(n.max(0)).unwrap_or(0)),
        // `xleave`: client/server interleaved mode for servers and pool members; symmetric
        // interleaved mode is not implemented (warned, [`unsupported_options`]).
        xleave: s.xleave && kind != ConfKind::Peer,
    }
}

/// The sources to poll, in configuration order (the global `minsamples`/`maxsamples` apply
/// where a source sets none).
pub fn source_plans(settings: &Settings) -> Vec<SourcePlan> {
    settings
        .sources
        .iter()
        .map(|src| {
            let mut cfg = source_config(src.kind, &src.spec);
            if src.spec.minsamples.is_none() {
                cfg.minsamples = count(settings.minsamples);
            }
            if src.spec.maxsamples.is_none() {
                cfg.maxsamples = count(settings.maxsamples);
            }
            SourcePlan {
                host: src.spec.host.clone(),
                port: src.spec.port,
                pool_max: (src.kind == ConfKind::Pool)
                    .then(|| usize::try_from(src.spec.maxsources.clamp(1, 16)).unwrap_or(4)),
                cfg,
                auth: with_refresh(source_auth(src.kind, &src.spec), settings.ntsrefresh),
                certset: src.spec.certset.unwrap_or(0),
            }
        })
        .collect()
}

/// Source options the engine does not implement yet for a `kind` source, by chrony name
/// (warned about when the source is added, at start or at run time). `copy`, `auto_offline`,
/// `maxunreach`, `maxdelayquant`, `mindelay`, `asymmetry` and `offset` are implemented (core's
/// source_config.rs); `xleave` for servers and pools (core's association/interleaved.rs), not
/// for peers (symmetric interleaved mode).
pub fn unsupported_options(kind: ConfKind, s: &SourceSpec) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 2] = [
        ("xleave", s.xleave && kind == ConfKind::Peer),
        ("extfield", !s.extfields.is_empty()),
    ];
    checks
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name)
        .collect()
}

/// The engine configuration: selection (`minsources`, `maxdistance`, `maxjitter`,
/// `combinelimit`, `reselectdist`, `stratumweight`), discipline (`makestep`, `maxchange`,
/// `maxupdateskew`, `maxslewrate`, `maxdrift`, `corrtimeratio`, `maxclockerror`,
/// `leapsecmode`) and the one-shot mode; the leap table is [`load_leap_table`]'s. `local`
/// decides in the engine when the local reference is active (`distance`) and which sources
/// orphan mode holds back; the NTP server module serves it when the engine reports it active.
pub fn engine_config(
    settings: &Settings,
    one_shot: Option<(OneShot, f64)>,
    seed: u64,
) -> EngineConfig {
    let selection = SelectionConfig {
        max_distance: settings.maxdistance,
        max_jitter: settings.maxjitter,
        min_sources: usize::try_from(settings.minsources.max(1)).unwrap_or(1),
        combine_limit: settings.combinelimit,
        reselect_dist: settings.reselectdist,
        stratum_weight: settings.stratumweight,
    };
    let reference = ReferenceConfig {
        max_slew_rate_ppm: settings.maxslewrate,
        makestep: settings.makestep.map(|(t, l)| (t, i64::from(l))),
        maxchange: settings
            .maxchange
            .map(|(o, s, i)| (o, u64::try_from(s.max(0)).unwrap_or(0), i64::from(i))),
        max_update_skew_ppm: settings.maxupdateskew,
        max_drift_ppm: settings.maxdrift,
        corr_time_ratio: settings.corrtimeratio,
        max_clock_error_ppm: settings.maxclockerror,
        leap_mode: match settings.leapsecmode {
            gnomon_conf::LeapSecMode::System => LeapMode::System,
            gnomon_conf::LeapSecMode::Slew => LeapMode::Slew,
            gnomon_conf::LeapSecMode::Step => LeapMode::Step,
            gnomon_conf::LeapSecMode::Ignore => LeapMode::Ignore,
        },
        // ---- sync: `local` distance/orphan semantics in the engine (reference.rs,
        // selection/orphan.rs); what is served in local mode stays the NTP server's ----
        local: settings
            .local
            .as_ref()
            .filter(|_| one_shot.is_none())
            .map(|l| LocalConfig {
                stratum: l.stratum.clamp(1, 15) as u8,
                distance: l.distance,
                orphan: l.orphan,
            }),
    };
    EngineConfig {
        selection,
        reference,
        one_shot,
        leap_table: None,
        seed,
    }
}

/// Where `leapsectz NAME` files are read from.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";
/// Largest leap table file read (the real ones are a few kB).
const MAX_LEAP_FILE: u64 = 1 << 20;

fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_LEAP_FILE)
        .read_to_end(&mut data)?;
    Ok(data)
}

/// The leap second table of `leapseclist FILE` (preferred, as chrony 4.3) or `leapsectz NAME`
/// (a TZif file under `zoneinfo`). A file that cannot be read or parsed is logged and ignored:
/// the sources' leap warnings are used instead.
pub fn load_leap_table(settings: &Settings, zoneinfo: &std::path::Path) -> Option<LeapTable> {
    let (path, list) = match (&settings.leapseclist, &settings.leapsectz) {
        (Some(list), _) => (list.clone(), true),
        (None, Some(tz)) => (zoneinfo.join(tz), false),
        (None, None) => return None,
    };
    let data = match read_bounded(&path) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("Could not read leap second table {} : {e}", path.display());
            return None;
        }
    };
    let table = if list {
        LeapTable::parse_leap_seconds_list(&String::from_utf8_lossy(&data))
    } else {
        LeapTable::parse_tzif(&data)
    };
    match table {
        Ok(t) => {
            // ---- leapseclist expiry (leap_table.rs), as chronyd >= 4.6 warns ----
            let now = crate::os::clock::realtime().as_f64();
            if let Some(w) = t.expiry_warning(&path.display().to_string(), now) {
                tracing::warn!("{w}");
            }
            Some(t)
        }
        Err(e) => {
            tracing::warn!("Leap second table {} ignored : {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lines: &[&str]) -> Settings {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        Settings::from_config(&gnomon_conf::load_lines(&lines).unwrap())
    }

    #[test]
    fn negative_polls_and_iburst_reach_the_engine() {
        let s = settings(&["server 127.0.0.1 port 12345 minpoll -2 maxpoll -2 iburst"]);
        let plans = source_plans(&s);
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(
            (p.host.as_str(), p.port, p.pool_max),
            ("127.0.0.1", 12345, None)
        );
        assert_eq!((p.cfg.minpoll, p.cfg.maxpoll, p.cfg.iburst), (-2, -2, true));
        assert_eq!(p.cfg.kind, SourceKind::Server);
        assert_eq!(p.cfg.maxdelayratio, None);
    }

    #[test]
    fn pool_keeps_maxsources_and_peer_is_symmetric() {
        let s = settings(&["pool ntp.example maxsources 2", "peer 10.0.0.1 prefer"]);
        let plans = source_plans(&s);
        assert_eq!(plans[0].pool_max, Some(2));
        assert_eq!(plans[0].cfg.kind, SourceKind::PoolMember);
        assert_eq!(plans[1].cfg.kind, SourceKind::Peer);
        assert!(plans[1].cfg.select.prefer);
    }

    #[test]
    fn unimplemented_source_options_are_named() {
        let s = settings(&["peer 127.0.0.1 xleave"]);
        assert_eq!(
            unsupported_options(s.sources[0].kind, &s.sources[0].spec),
            vec!["xleave"]
        );
        let s = settings(&["server 127.0.0.1 iburst minpoll 2"]);
        assert!(unsupported_options(s.sources[0].kind, &s.sources[0].spec).is_empty());
        let s = settings(&[
            "server 127.0.0.1 offset 0.01 asymmetry 0.2 mindelay 0.001 maxdelayquant 0.3 copy auto_offline maxunreach 3",
        ]);
        assert!(unsupported_options(s.sources[0].kind, &s.sources[0].spec).is_empty());
    }

    #[test]
    fn xleave_is_warned_only_for_peer_lines_and_reaches_server_and_pool_sources() {
        let s = settings(&[
            "server 127.0.0.1 xleave extfield F323",
            "pool pool.test xleave",
            "peer 127.0.0.2 xleave",
        ]);
        let warned = |i: usize| unsupported_options(s.sources[i].kind, &s.sources[i].spec);
        assert_eq!(warned(0), vec!["extfield"]);
        assert!(warned(1).is_empty());
        assert_eq!(warned(2), vec!["xleave"]);
        let plans = source_plans(&s);
        let xleave: Vec<bool> = plans.iter().map(|p| p.cfg.xleave).collect();
        assert_eq!(xleave, vec![true, true, false]);
    }

    #[test]
    fn measurement_options_reach_the_engine() {
        let s = settings(&[
            "server 127.0.0.1 offset 0.01 asymmetry -0.5 mindelay 0.001 maxdelayquant 0.3 copy auto_offline maxunreach 3",
            "peer 127.0.0.2 copy asymmetry 1.0",
            "server 127.0.0.3",
        ]);
        let plans = source_plans(&s);
        let c = &plans[0].cfg;
        assert_eq!(
            (c.offset, c.asymmetry, c.mindelay, c.maxdelayquant),
            (0.01, Some(-0.5), Some(0.001), Some(0.3))
        );
        assert!(c.copy && c.auto_offline);
        assert_eq!(c.maxunreach, Some(3));
        // `copy` does not apply to peers; asymmetry 1.0 is chrony's "estimate".
        assert!(!plans[1].cfg.copy);
        assert_eq!(plans[1].cfg.asymmetry, None);
        assert_eq!(plans[2].cfg, SourceConfig::default());
    }

    #[test]
    fn key_and_nts_options_reach_the_plan() {
        let s = settings(&[
            "server 127.0.0.1 key 7",
            "server ntp.example nts ntsport 4461 certset 2",
            "pool pool.example nts",
            "ntsrefresh 3600",
            "peer 10.0.0.1 key 3",
            "authselectmode require",
        ]);
        let plans = source_plans(&s);
        assert_eq!(plans[0].auth.key, Some(7));
        assert!(plans[0].auth.nts.is_none());
        let nts = plans[1].auth.nts.as_ref().unwrap();
        assert_eq!(
            (nts.server_name.as_str(), nts.ke_port),
            ("ntp.example", 4461)
        );
        assert_eq!(plans[1].certset, 2);
        assert_eq!(plans[2].auth.nts.as_ref().unwrap().ke_port, 4460);
        assert_eq!(plans[2].auth.nts.as_ref().unwrap().refresh, 3600);
        assert_eq!(plans[2].certset, 0);
        assert_eq!(plans[3].auth.key, Some(3));
        assert_eq!(
            auth_select_mode(&s),
            gnomon_core::selection::AuthSelectMode::Require
        );
        assert!(unsupported_options(s.sources[1].kind, &s.sources[1].spec).is_empty());
    }

    #[test]
    fn leap_list_is_loaded_and_garbage_ignored() {
        let dir = std::env::temp_dir().join(format!("gnomond-leap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("leap-seconds.list");
        // 1 Jan 2017 (NTP seconds 3692217600): TAI-UTC 37, the last leap second so far.
        std::fs::write(
            &list,
            "# comment\n3644697600 36\n3692217600 37 # 1 Jan 2017\n",
        )
        .unwrap();
        let s = settings(&[&format!("leapseclist {}", list.display())]);
        let t = load_leap_table(&s, std::path::Path::new(ZONEINFO)).unwrap();
        assert_eq!(t.tai_offset(1_800_000_000.0), Some(37));
        std::fs::write(&list, "not a list\n").unwrap();
        assert!(load_leap_table(&s, std::path::Path::new(ZONEINFO)).is_none());
        let tz = settings(&["leapsectz UTC"]);
        std::fs::write(dir.join("UTC"), b"garbage").unwrap();
        assert!(load_leap_table(&tz, &dir).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn selection_and_discipline_directives_are_carried() {
        let s = settings(&["minsources 2", "maxdistance 1.5", "makestep 0.1 3"]);
        let e = engine_config(&s, None, 7);
        assert_eq!(e.selection.min_sources, 2);
        assert_eq!(e.selection.max_distance, 1.5);
        assert_eq!(e.reference.makestep, Some((0.1, 3)));
        assert_eq!(e.seed, 7);
    }
}
