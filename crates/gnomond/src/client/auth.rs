//! The client's authentication glue between the daemon and the engine
//! (`gnomon_core::association::engine::auth` says what the daemon must do):
//!
//! * `keyfile`: the keys keys.rs loaded once for the NTP server are handed to the engine, and
//!   again whenever `rekey` re-read the file (keys.rs's generation number changes);
//! * `authselectmode` as chrony's;
//! * `nts`: the engine's key-exchange requests are turned into [`NtsKeClient`]s verified
//!   against the source's `certset` ([`super::trust`]) and run on the helper threads of
//!   [`super::nts_ke`]; their results go back to the engine in the poll loop. The `certset`
//!   travels with the source's request (`NtsKeRequest::certset`), so sources or pools sharing
//!   a name keep their own sets. A request that cannot start (helper threads not started, no
//!   trusted certificates, bad name) fails at once with that cause logged, so the source backs
//!   off as after any failed exchange and never falls back to unauthenticated NTP.

use super::config::SourcePlan;
use super::nts_ke::NtsKeRunner;
use super::Client;
use crate::clock::DaemonClock;
use gnomon_conf::Settings;
use gnomon_core::association::Engine;
use gnomon_core::nts_client::{NtsKeClientError, NtsTrust};
use std::collections::BTreeMap;

/// Why a key exchange the engine asked for could not start.
#[derive(Debug)]
pub enum KeStartError {
    /// The NTS-KE helper threads could not be started.
    Helpers(std::io::Error),
    /// The source's `certset` holds no trusted certificate.
    NoTrust(u32),
    /// The engine could not build the handshake (name, configuration).
    Client(NtsKeClientError),
}

impl std::fmt::Display for KeStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeStartError::Helpers(e) => write!(f, "could not start NTS-KE helper threads : {e}"),
            KeStartError::NoTrust(set) => {
                write!(f, "no trusted certificates (certificate set {set})")
            }
            KeStartError::Client(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for KeStartError {}

/// What the client keeps for authentication.
#[derive(Debug)]
pub struct ClientAuth {
    /// Started with the first NTS source (at start-up, or a source added by command).
    runner: Option<NtsKeRunner>,
    /// Loaded with the first NTS source.
    trust: Option<BTreeMap<u32, NtsTrust>>,
    trust_config: super::trust::TrustConfig,
    key_gen: u64,
    /// `ntsdumpdir`: sessions saved at exit and restored at start (nts_dump.rs).
    dump_dir: Option<std::path::PathBuf>,
    /// Sources whose saved session was already looked for.
    looked_up: std::collections::BTreeSet<gnomon_core::association::SourceId>,
    /// `ntsrefresh`, for sources added by command or `reload sources` too.
    ntsrefresh: i32,
}

impl ClientAuth {
    /// Configures `engine` (keys, `authselectmode`) and, when a source uses `nts`, loads the
    /// trust sets and starts the key-exchange helpers.
    pub fn new(
        settings: &Settings,
        plans: &[SourcePlan],
        engine: &mut Engine,
    ) -> std::io::Result<ClientAuth> {
        let (key_gen, keys) = crate::keys::loaded();
        engine.set_keys(keys);
        engine.set_auth_select_mode(super::config::auth_select_mode(settings));
        let nts: Vec<&SourcePlan> = plans.iter().filter(|p| p.auth.nts.is_some()).collect();
        let mut auth = ClientAuth {
            runner: None,
            trust: None,
            trust_config: super::trust::TrustConfig::from_settings(settings),
            key_gen,
            dump_dir: settings.ntsdumpdir.clone(),
            looked_up: Default::default(),
            ntsrefresh: settings.ntsrefresh,
        };
        if !nts.is_empty() {
            // At start-up, so that problems are logged (and fatal) before any poll.
            auth.runner = Some(NtsKeRunner::start()?);
            let trust = auth
                .trust
                .insert(super::trust::trust_sets(&auth.trust_config));
            for p in &nts {
                if !trust.contains_key(&p.certset) {
                    tracing::warn!(
                        "No trusted certificates for NTS source {} (certificate set {})",
                        p.host,
                        p.certset
                    );
                }
            }
        }
        Ok(auth)
    }

    /// The helpers (started by `start` on first use, again after a failed start) and the
    /// trust of set `certset`.
    fn nts_with(
        &mut self,
        certset: u32,
        start: impl FnOnce() -> std::io::Result<NtsKeRunner>,
    ) -> Result<(&mut NtsKeRunner, &NtsTrust), KeStartError> {
        if self.runner.is_none() {
            self.runner = Some(start().map_err(KeStartError::Helpers)?);
        }
        let config = &self.trust_config;
        let trust = self
            .trust
            .get_or_insert_with(|| super::trust::trust_sets(config))
            .get(&certset)
            .ok_or(KeStartError::NoTrust(certset))?;
        let runner = self
            .runner
            .as_mut()
            .ok_or_else(|| KeStartError::Helpers(std::io::ErrorKind::NotFound.into()))?;
        Ok((runner, trust))
    }

    /// The authentication of a source added after start-up (`add`, `reload sources`): its
    /// `key`/`nts` with the configured `ntsrefresh` and its `certset`, as for a configuration
    /// line.
    pub fn plan_auth(
        &mut self,
        kind: gnomon_conf::SourceKind,
        spec: &gnomon_conf::SourceSpec,
    ) -> gnomon_core::association::SourceAuth {
        let auth =
            super::config::with_refresh(super::config::source_auth(kind, spec), self.ntsrefresh);
        if let Some(nts) = &auth.nts {
            let set = nts.certset;
            let config = &self.trust_config;
            let trust = self
                .trust
                .get_or_insert_with(|| super::trust::trust_sets(config));
            if !trust.contains_key(&set) {
                tracing::warn!(
                    "No trusted certificates for NTS source {} (certificate set {set})",
                    spec.host
                );
            }
        }
        auth
    }

    /// The descriptor of the key-exchange helpers' results, when any NTS source exists.
    pub fn fd(&self) -> Option<i32> {
        self.runner.as_ref().map(NtsKeRunner::fd)
    }
}

impl Client {
    /// `nocerttimecheck N`: certificate validity times are not checked during the first N
    /// clock updates (daemon.rs passes `Settings::nocerttimecheck`).
    pub fn set_no_cert_time_check(&mut self, updates: u32) {
        self.engine.set_no_cert_time_check(updates);
    }

    /// Gives the engine the keys again after `rekey` loaded new ones.
    pub(super) fn reload_keys(&mut self) {
        if crate::keys::generation() == self.auth.key_gen {
            return;
        }
        let (gen, keys) = crate::keys::loaded();
        self.engine.set_keys(keys);
        self.auth.key_gen = gen;
    }

    /// Gives NTS sources added since the last call their session saved in `ntsdumpdir`, if
    /// any (read once, then removed), so they need no key exchange now.
    pub(super) fn restore_sessions(&mut self, now: f64) {
        let Some(dir) = self.auth.dump_dir.clone() else {
            return;
        };
        for (id, ke_ip) in self.engine.nts_sources_awaiting_keys() {
            if !self.auth.looked_up.insert(id) {
                continue;
            }
            match super::nts_dump::take(&dir, ke_ip, now) {
                Ok(Some(saved)) => {
                    if self.engine.restore_nts_session(id, &saved, now) {
                        tracing::debug!(
                            "Loaded {} NTS cookies for {ke_ip} from {}",
                            saved.cookies.len(),
                            dir.display()
                        );
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    "Could not load NTS cookies from {} : {e}",
                    super::nts_dump::path(&dir, ke_ip).display()
                ),
            }
        }
    }

    /// At exit: saves every NTS session in `ntsdumpdir`.
    pub(super) fn save_sessions(&mut self) {
        let Some(dir) = self.auth.dump_dir.clone() else {
            return;
        };
        for (_, saved) in self.engine.take_nts_sessions() {
            if let Err(e) = super::nts_dump::save(&dir, &saved) {
                tracing::warn!(
                    "Could not save NTS cookies to {} : {e}",
                    super::nts_dump::path(&dir, saved.ke_ip).display()
                );
            }
        }
    }

    /// Starts the key exchanges the engine asked for.
    pub(super) fn start_key_exchanges<C: DaemonClock>(&mut self, clock: &mut C) {
        let requests = self.engine.take_nts_ke_requests();
        if requests.is_empty() {
            return;
        }
        let now = clock.read();
        for (id, req) in requests {
            let ke = match self.auth.nts_with(req.certset, NtsKeRunner::start) {
                Ok((runner, trust)) => {
                    let mono = crate::os::clock::monotonic();
                    match self.engine.nts_ke_client_with(id, trust, mono, now) {
                        Ok(ke) => {
                            tracing::debug!(
                                "Starting NTS-KE session with {} ({})",
                                req.addr,
                                req.server_name
                            );
                            runner.run(id, ke, req.addr, &req.server_name);
                            continue;
                        }
                        Err(e) => KeStartError::Client(e),
                    }
                }
                Err(e) => e,
            };
            tracing::warn!(
                "Could not start NTS-KE session with {} ({}) : {ke}",
                req.addr,
                req.server_name
            );
            self.engine.nts_ke_finished(id, None, None, now);
        }
    }

    /// Hands finished key exchanges to the engine (the helpers' descriptor was readable).
    pub(super) fn take_key_exchanges<C: DaemonClock>(&mut self, clock: &mut C) {
        let Some(runner) = self.auth.runner.as_mut() else {
            return;
        };
        let done = runner.take();
        let now = clock.read();
        for f in done {
            match f.result {
                Ok(outcome) => {
                    tracing::debug!(
                        "Got {} NTS cookies from {} ({})",
                        outcome.cookies.len(),
                        f.addr,
                        f.name
                    );
                    self.engine
                        .nts_ke_finished(f.id, Some(outcome), f.resolved, now);
                }
                Err(e) => {
                    tracing::warn!("NTS-KE session with {} ({}) failed : {e}", f.addr, f.name);
                    self.engine.nts_ke_finished(f.id, None, None, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No helpers yet, no trusted certificate in any set.
    fn bare() -> ClientAuth {
        ClientAuth {
            runner: None,
            trust: Some(BTreeMap::new()),
            trust_config: Default::default(),
            key_gen: 0,
            dump_dir: None,
            looked_up: Default::default(),
            ntsrefresh: 3600,
        }
    }

    #[test]
    fn same_name_sources_keep_their_own_certset() {
        let mut auth = bare();
        let mut a = gnomon_conf::SourceSpec::new("ntp.example");
        a.nts = true;
        a.certset = Some(1);
        let mut b = a.clone();
        b.certset = Some(2);
        let kind = gnomon_conf::SourceKind::Pool;
        let first = auth.plan_auth(kind, &a).nts.unwrap();
        let second = auth.plan_auth(kind, &b).nts.unwrap();
        // The first source's set is not overwritten by the second's.
        assert_eq!((first.certset, second.certset), (1, 2));
        assert_eq!(first.server_name, second.server_name);
        assert_eq!(first.refresh, 3600);
        let plain = auth.plan_auth(kind, &gnomon_conf::SourceSpec::new("x"));
        assert!(plain.nts.is_none());
    }

    #[test]
    fn helper_start_failure_is_reported_as_such() {
        let mut auth = bare();
        let r = auth.nts_with(0, || Err(std::io::Error::other("no threads")));
        let e = r.err().unwrap();
        assert!(matches!(e, KeStartError::Helpers(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("helper") && text.contains("no threads"),
            "{text}"
        );
        assert!(!text.contains("trusted"), "{text}");
        assert!(auth.runner.is_none());
        // Started on a later request; then the missing trust set is the cause.
        let e = auth.nts_with(5, NtsKeRunner::start).err().unwrap();
        assert!(matches!(e, KeStartError::NoTrust(5)), "{e:?}");
        assert_eq!(e.to_string(), "no trusted certificates (certificate set 5)");
        assert!(auth.runner.is_some());
    }
}
