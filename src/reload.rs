//! The one reload path: read -> validate -> compile -> carry state over ->
//! swap. A file change, `SIGHUP` and `POST /api/v1/reload` all end here.
//!
//! A reload either applies whole or not at all: the new table is built off to
//! the side from a snapshot of what must survive (health cells of unchanged
//! probes, endpoint counters and runtime overrides, the GeoIP database when
//! its file is unchanged), then swapped in with one atomic store. Queries in
//! flight finish on the table they loaded; the next ones see the new one.

use crate::overrides::Kind;
use crate::snapshot::EndpointKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{self, Carry, ConfigErrors, ProbeSpec, Settings};
use crate::health::Status;
use crate::health::prober::Prober;
use crate::state::Shared;

/// How a rejected reload starts on the status page.
const REJECTED: &str = "configuration rejected";

/// What a successful reload changed.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Profiles now loaded.
    pub profiles: usize,
    /// Endpoints now loaded.
    pub endpoints: usize,
    /// Distinct probe targets now probed.
    pub probes: usize,
    /// Settings that changed but only take effect after a restart.
    pub restart_needed: Vec<String>,
}

/// What a dry-run reload found: how the candidate configuration on disk
/// would answer differently from the running one, at the running health.
#[derive(Clone, Debug, Serialize)]
pub struct DryRun {
    /// The answer diff.
    pub diff: crate::config::diff::AnswerDiff,
    /// The diff as text ([`crate::config::diff::AnswerDiff::render`]).
    pub text: String,
    /// Settings that would change but only take effect after a restart.
    pub restart_needed: Vec<String>,
    /// Warnings of the candidate (accepted, worth a look).
    pub warnings: Vec<String>,
    /// A probe changed an endpoint's status while the diff was computed:
    /// the two sides may have seen different health; run it again.
    pub health_changed: bool,
}

/// Errors of the runtime override API.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// No such profile or endpoint.
    #[error("{0}")]
    NotFound(String),
    /// The state file could not be written (the override is applied anyway).
    #[error("the override is applied but could not be saved to {path}: {error}")]
    NotSaved {
        /// The state file.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

struct Live {
    settings: Settings,
    probes: Vec<ProbeSpec>,
    prober: Option<Prober>,
}

/// Owns reloading and runtime overrides.
pub struct Reloader {
    path: PathBuf,
    shared: Arc<Shared>,
    live: tokio::sync::Mutex<Live>,
    /// Read by `/healthz` without waiting for a reload to finish.
    prober_started: std::sync::atomic::AtomicBool,
}

pub use crate::snapshot::normalise_profile;

impl Reloader {
    /// A reloader for the configuration at `path`, currently described by
    /// `settings` and `probes` (already compiled into `shared`).
    pub fn new(
        path: PathBuf,
        shared: Arc<Shared>,
        settings: Settings,
        probes: Vec<ProbeSpec>,
    ) -> Reloader {
        publish_probes(&shared, &probes);
        Reloader {
            path,
            shared,
            live: tokio::sync::Mutex::new(Live {
                settings,
                probes,
                prober: None,
            }),
            prober_started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Distinct probe targets in the configuration being served.
    pub fn probe_targets(&self) -> usize {
        self.live.try_lock().map_or(0, |l| l.probes.len())
    }

    /// Starts the prober on the current probes, with at most `in_flight`
    /// probes running at once.
    pub async fn start_prober(
        &self,
        shutdown: CancellationToken,
        in_flight: usize,
    ) -> Result<usize, String> {
        let mut live = self.live.lock().await;
        let mut prober = Prober::new(shutdown, in_flight)
            .with_faults(self.shared.serving.metrics.prober_faults.clone())
            .on_change(self.shared.notify.endpoint_hook())
            .combining(self.shared.combine_wake.clone())
            .on_certificate(self.shared.notify.certificate_hook())
            .with_impairment(self.shared.impairment.clone())
            .on_episode(self.shared.notify.prober_hook());
        if live.settings.cluster.is_some() {
            prober = prober.clustered(self.shared.cluster_wake.clone());
        }
        let p = &live.settings.prober;
        prober.set_stability(p.impaired.clone(), &p.canaries)?;
        prober.update(&live.probes)?;
        let n = prober.len();
        live.prober = Some(prober);
        self.prober_started
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// True once the prober runs.
    pub fn prober_running(&self) -> bool {
        self.prober_started
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reloads everything now. On error nothing changes and every problem
    /// is returned (and logged).
    pub async fn reload(&self, trigger: &str) -> Result<Summary, ConfigErrors> {
        let mut live = self.live.lock().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        let result = self.reload_locked(&mut live, trigger).await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        if result.is_ok() {
            // What the page showed about earlier rejections is over.
            self.shared.resolve_problems(REJECTED);
        }
        if let Err(errors) = &result {
            let first = errors.0.first().map(|e| e.to_string()).unwrap_or_default();
            self.shared
                .notify
                .emit(crate::notify::Event::reload_rejected(format!(
                    "{trigger}: {} problem(s), the first: {first}",
                    errors.0.len()
                )));
            self.shared.report_problem(format!(
                "{REJECTED} ({trigger}), the previous one keeps serving: {} problem{}, the first: {first}",
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            ));
        }
        result
    }

    /// What a reload (or a dry run) of `table` keeps: its health, runtime
    /// state and the overrides.
    fn carry(&self, table: &crate::snapshot::Snapshot, live: &Live) -> Carry {
        let overrides = self.shared.overrides_now();
        Carry::from_running(
            table,
            &live.probes,
            overrides,
            self.shared.serving.geo.load_full(),
        )
    }

    /// The error for a load that did not finish (its task panicked).
    fn failed(&self, what: &str, e: tokio::task::JoinError) -> ConfigErrors {
        ConfigErrors(vec![config::ConfigError {
            file: self.path.clone(),
            line: 0,
            col: 0,
            field: String::new(),
            message: format!("{what} failed: {e}"),
        }])
    }

    async fn reload_locked(&self, live: &mut Live, trigger: &str) -> Result<Summary, ConfigErrors> {
        let carry = self.carry(&self.shared.serving.table.load(), live);
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load_with(&path, &carry))
            .await
            .unwrap_or_else(|e| Err(self.failed("reload", e)));
        let mut cfg = match loaded {
            Ok(cfg) => cfg,
            Err(errors) => {
                self.shared.serving.metrics.reload(false);
                for e in &errors.0 {
                    error!(
                        trigger = %trigger,
                        "configuration rejected, the previous one keeps serving: {e}"
                    );
                }
                return Err(errors);
            }
        };
        let restart_needed = restart_needed(&live.settings, &cfg.settings);
        for what in &restart_needed {
            warn!(setting = %what, "changed in the configuration; takes effect after a restart");
        }
        let table = std::mem::take(&mut cfg.table);
        let summary = Summary {
            profiles: table.profiles.len(),
            endpoints: table.endpoints.len(),
            probes: cfg.probes.len(),
            restart_needed,
        };
        let table = Arc::new(table);
        if let Some(prober) = live.prober.as_mut()
            && let Err(e) = prober.update(&cfg.probes).and_then(|()| {
                let p = &cfg.settings.prober;
                prober.set_stability(p.impaired.clone(), &p.canaries)
            })
        {
            // Only TLS material that vanished since validation gets here.
            self.shared.serving.metrics.reload(false);
            error!(
                trigger = %trigger,
                "configuration rejected, the previous one keeps serving: {e}"
            );
            return Err(ConfigErrors(vec![config::ConfigError {
                file: self.path.clone(),
                line: 0,
                col: 0,
                field: String::new(),
                message: e,
            }]));
        }
        self.shared.serving.geo.store(cfg.geo.take());
        self.shared.apply_latency(&cfg.settings.latency);
        if let Some(path) = cfg.settings.state_file.clone() {
            let t = table.clone();
            let _ =
                tokio::task::spawn_blocking(move || crate::config::serials::keep(&path, &t)).await;
        }
        let old = self.shared.serving.table.swap(table);
        // Answers given from the old table may still be queued for the
        // Traffic View: its drain resolves them against it.
        self.shared
            .traffic
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retire(old);
        // A new limiter only when its settings changed (counts restart).
        if live.settings.dns.rate_limit != cfg.settings.dns.rate_limit {
            self.shared.serving.rrl.store(
                cfg.settings
                    .dns
                    .rate_limit
                    .clone()
                    .map(|c| Arc::new(crate::dns::rrl::RateLimiter::new(c))),
            );
        }
        self.shared
            .admin_token
            .store(cfg.settings.admin.token.clone().map(Arc::new));
        self.shared
            .admin_tokens
            .store(Arc::new(cfg.settings.admin.tokens.clone()));
        self.shared.notify.configure(cfg.settings.notify.clone());
        let traffic = cfg.settings.traffic;
        self.shared
            .configure_traffic(traffic.enabled, traffic.networks);
        // `live.settings` is what runs: the settings a restart applies keep
        // their running values, so the next reload compares with those.
        let mut settings = cfg.settings;
        keep_running(&mut settings, &live.settings);
        live.settings = settings;
        live.probes = cfg.probes;
        publish_probes(&self.shared, &live.probes);
        self.shared.serving.metrics.reload(true);
        for w in &cfg.warnings {
            warn!("{w}");
        }
        info!(
            trigger = %trigger,
            profiles = summary.profiles,
            endpoints = summary.endpoints,
            probes = summary.probes,
            "configuration reloaded"
        );
        Ok(summary)
    }

    /// A dry-run reload: reads and compiles the configuration on disk as
    /// [`Reloader::reload`] does, with a detached copy of the running
    /// health and overrides ([`Carry::detached`]), and compares its answers
    /// with the running table's. Stops before the swap: nothing that runs
    /// changes (table, health, overrides, prober, state file, metrics,
    /// status page). A broken candidate returns the errors a reload would.
    ///
    /// With `staged`, the candidate has the staged profile files on top of
    /// the live ones ([`config::load_staged`]): what `switchyard apply`
    /// would change; the staged directory is returned with the diff.
    pub async fn dry_run(&self, staged: bool) -> Result<(DryRun, Option<PathBuf>), ConfigErrors> {
        // Serialised with reloads: the running table cannot be swapped
        // while the candidate is compared with it.
        let live = self.live.lock().await;
        let running = self.shared.serving.table.load_full();
        let carry = self.carry(&running, &live).detached();
        let probes = live.probes.clone();
        let path = self.path.clone();
        let work = tokio::task::spawn_blocking(move || {
            let before: Vec<Status> = probes.iter().map(|p| p.cell.get()).collect();
            let cfg = if staged {
                config::load_staged(&path, &carry)?
            } else {
                config::load_with(&path, &carry)?
            };
            let diff = crate::config::diff::diff(
                crate::config::diff::Side {
                    table: &running,
                    probes: &probes,
                },
                crate::config::diff::Side {
                    table: &cfg.table,
                    probes: &cfg.probes,
                },
            );
            let health_changed = probes.iter().zip(&before).any(|(p, s)| p.cell.get() != *s);
            let warnings = cfg.warnings.iter().map(|w| w.to_string()).collect();
            Ok((diff, cfg.settings, warnings, health_changed))
        });
        let (diff, settings, warnings, health_changed) = work
            .await
            .unwrap_or_else(|e| Err(self.failed("dry run", e)))?;
        let restart_needed = restart_needed(&live.settings, &settings);
        info!(
            changes = diff.names.len(),
            unchanged = diff.unchanged,
            staged,
            "dry-run reload: nothing applied"
        );
        let dry = DryRun {
            text: diff.render(),
            diff,
            restart_needed,
            warnings,
            health_changed,
        };
        Ok((
            dry,
            staged.then(|| config::staged_dir(&settings.profiles_dir)),
        ))
    }

    /// Applies a runtime override (disable, drain, shed, enable or resume)
    /// to an endpoint; it is kept in the state file and survives reloads
    /// and restarts, and in a cluster reaches every node. Returns the record
    /// made, the endpoint's new status and whether it was saved (false: no
    /// `state_file`, so it lasts until the next restart).
    pub async fn set_override(
        &self,
        profile: &str,
        endpoint: &str,
        change: Change,
    ) -> Result<Applied, OverrideError> {
        let live = self.live.lock().await;
        let table = self.shared.serving.table.load();
        let p = table
            .profile_by_name(profile)
            .ok_or_else(|| OverrideError::NotFound(format!("no profile named {profile}")))?;
        let ep = table
            .endpoints_of(p)
            .iter()
            .find(|e| &*e.name == endpoint)
            .ok_or_else(|| {
                OverrideError::NotFound(format!(
                    "profile {} has no endpoint named {endpoint}",
                    p.name
                ))
            })?;
        let key = EndpointKey::new(p.name.as_str(), endpoint);
        let was = table.status(ep);
        let changed;
        let record = {
            // The runtime state changes under the overrides lock, with its
            // record: the cluster task applies gossiped records the same
            // way, so the two cannot interleave.
            let mut all = self
                .shared
                .overrides
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let mut record = crate::overrides::Override::new(
                matches!(change.kind, Kind::Disable | Kind::Drain),
                crate::clock::now_millis(),
                &self.shared.node,
                all.get(&key),
            );
            record.drain = change.kind == Kind::Drain;
            record.resume = change.kind == Kind::Resume;
            record.until = change.until;
            record.shed = change.shed;
            record.over_ms = change.over_ms.filter(|_| change.kind == Kind::Drain);
            record.reason = change.reason;
            record.by = Some(change.by);
            all.insert(key.clone(), record.clone());
            let before = ep.runtime.override_now();
            ep.runtime.apply(crate::overrides::state(Some(&record)));
            changed = ep.runtime.override_now() != before;
            record
        };
        self.shared.record_history(&key, &record);
        // In a cluster: on every node within a gossip round.
        self.shared.cluster_wake.notify_one();
        let status = table.status(ep);
        // A resume that releases a hold changes the status only.
        if !changed && status != was {
            ep.runtime.touch();
        }
        let changed = changed || status != was;
        info!(
            profile = %p.name,
            endpoint = %endpoint,
            action = record.kind().as_str(),
            shed_percent = record.shed,
            over_ms = record.over_ms,
            until = record.until.map(|u| crate::clock::rfc3339_millis(crate::clock::from_unix_millis(u))),
            by = record.by.as_deref().unwrap_or(""),
            reason = record.reason.as_deref().unwrap_or(""),
            old = %was,
            new = %status,
            "{}",
            if changed {
                "runtime override changed"
            } else {
                "runtime override unchanged (already so)"
            }
        );
        if changed {
            self.shared.notify.emit(
                crate::notify::Event::override_applied(p.name.as_str(), endpoint, &record)
                    .with_old(was.as_str()),
            );
        }
        match &live.settings.state_file {
            Some(path) => {
                if let Err(error) = crate::state_file::save(path, &self.shared) {
                    let problem = format!(
                        "state file {}: cannot save the runtime overrides: {error}",
                        path.display()
                    );
                    error!("{problem}");
                    self.shared.report_state_problem(problem);
                    return Err(OverrideError::NotSaved {
                        path: path.clone(),
                        error,
                    });
                }
                Ok(Applied {
                    record,
                    status,
                    saved: true,
                })
            }
            None => {
                warn!(profile = %p.name, endpoint = %endpoint, "no state_file configured: this override lasts until the next restart");
                Ok(Applied {
                    record,
                    status,
                    saved: false,
                })
            }
        }
    }
}

/// A runtime override asked for.
#[derive(Clone, Debug)]
pub struct Change {
    /// Disable, drain, shed or enable (`resume` is an enable).
    pub kind: Kind,
    /// A disable, drain or shed that ends by itself then (ms since the
    /// epoch).
    pub until: Option<u64>,
    /// A shed (`percent`): the percentage of client networks moved away.
    pub shed: Option<u16>,
    /// A drain that ramps (`over`), for this long (ms).
    pub over_ms: Option<u64>,
    /// `--reason`.
    pub reason: Option<String>,
    /// Who: the admin token's name, or `admin API`.
    pub by: String,
}

/// What [`Reloader::set_override`] did.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The record made.
    pub record: crate::overrides::Override,
    /// The endpoint's status now.
    pub status: Status,
    /// Kept in the state file.
    pub saved: bool,
}

/// Hands the running probes and the configuration digest to the cluster
/// task, and wakes it and the task combining named monitors.
fn publish_probes(shared: &Shared, probes: &[ProbeSpec]) {
    let digest = crate::cluster::config_digest(&shared.serving.table.load(), probes);
    shared.config_digest.store(Arc::new(digest));
    shared.probes.store(Arc::new(probes.to_vec()));
    shared.cluster_wake.notify_one();
    shared.combine_wake.notify_one();
}

/// Copies from `running` the settings that only a restart applies.
fn keep_running(settings: &mut Settings, running: &Settings) {
    settings.dns.listen = running.dns.listen.clone();
    settings.admin.listen = running.admin.listen;
    settings.dns.udp_workers = running.dns.udp_workers;
    settings.dns.tcp_idle_timeout = running.dns.tcp_idle_timeout;
    settings.dns.max_tcp_connections = running.dns.max_tcp_connections;
    settings.dns.max_tcp_per_client = running.dns.max_tcp_per_client;
    settings.cluster = running.cluster.clone();
    settings.prober.source_v4 = running.prober.source_v4;
    settings.prober.source_v6 = running.prober.source_v6;
    settings.watch = running.watch;
    settings.rum = running.rum.clone();
    settings.traffic.queue = running.traffic.queue;
    settings.dns.xdp = running.dns.xdp.clone();
}

/// Settings that the configuration changes from what runs and only a
/// restart applies (sockets, threads, the TCP slot table).
fn restart_needed(old: &Settings, new: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if old.dns.listen != new.dns.listen {
        out.push("dns.listen".to_string());
    }
    if old.admin.listen != new.admin.listen {
        out.push("admin.listen".to_string());
    }
    if old.watch != new.watch {
        out.push("profiles.watch".to_string());
    }
    if old.dns.udp_workers != new.dns.udp_workers {
        out.push("dns.udp_workers".to_string());
    }
    if old.dns.tcp_idle_timeout != new.dns.tcp_idle_timeout {
        out.push("dns.tcp_idle_timeout".to_string());
    }
    if old.dns.max_tcp_connections != new.dns.max_tcp_connections {
        out.push("dns.max_tcp_connections".to_string());
    }
    if old.dns.max_tcp_per_client != new.dns.max_tcp_per_client {
        out.push("dns.max_tcp_per_client".to_string());
    }
    if old.traffic.queue != new.traffic.queue {
        out.push("traffic.queue".to_string());
    }
    if old.dns.xdp != new.dns.xdp {
        out.push("dns.xdp".to_string());
    }
    let cluster = |s: &Settings| {
        s.cluster.as_ref().map(|c| {
            (
                c.node.clone(),
                c.listen,
                c.advertise,
                c.seeds.clone(),
                c.key.expose().to_string(),
                c.quorum,
                c.gossip_interval,
                c.warm_start,
            )
        })
    };
    if cluster(old) != cluster(new) {
        out.push("cluster".to_string());
    }
    // The listener, its keys and limits (the endpoints' `rum_url` follow
    // reloads: they are in the table).
    if old.rum != new.rum {
        out.push("rum".to_string());
    }
    out
}

/// Watches the configuration file, the profiles directory and the GeoIP
/// database for changes. Registration happens in [`Watch::start`], before
/// the server reports ready, so no change after that is missed.
pub struct Watch {
    watcher: Box<dyn notify::Watcher + Send>,
    rx: tokio::sync::mpsc::UnboundedReceiver<()>,
    reloader: Arc<Reloader>,
    /// The profiles directory, watched once it exists: a missing one is
    /// read as empty, and its parent is watched for it to appear.
    profiles_dir: PathBuf,
    /// Set by the event handler when the profiles directory itself was
    /// created (or removed); read by [`Watch::run`], which then watches
    /// it again.
    profiles_dir_changed: Arc<std::sync::atomic::AtomicBool>,
}

impl Watch {
    /// Registers the watches. Falls back to polling when the platform
    /// watcher is unavailable; `None` when neither works.
    pub fn start(reloader: Arc<Reloader>, settings: &Settings) -> Option<Watch> {
        use notify::{RecursiveMode, Watcher};

        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut dirs: Vec<PathBuf> = vec![
            parent_dir(reloader.path()),
            settings.profiles_dir.clone(),
            // Where a missing profiles directory will appear.
            parent_dir(&settings.profiles_dir),
        ];
        if let Some(g) = &settings.geoip_database {
            dirs.push(parent_dir(g));
        }
        if let Some(f) = &settings.latency.file {
            dirs.push(parent_dir(f));
        }
        dirs.sort();
        dirs.dedup();
        // Only the files that make up the configuration count: not the state
        // file, editor swap files or anything else sharing a directory.
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let config_file = canon(reloader.path());
        // A missing directory does not canonicalize: its parent does.
        let profiles_dir = match (
            settings.profiles_dir.file_name(),
            std::fs::canonicalize(parent_dir(&settings.profiles_dir)),
        ) {
            (Some(name), Ok(parent)) if !settings.profiles_dir.exists() => parent.join(name),
            _ => canon(&settings.profiles_dir),
        };
        let geoip = settings.geoip_database.as_deref().map(canon);
        let latency_file = settings.latency.file.as_deref().map(canon);
        let dir_changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dir_flag = dir_changed.clone();
        let dir = profiles_dir.clone();
        let relevant = move |p: &Path| {
            if p == dir {
                dir_flag.store(true, std::sync::atomic::Ordering::Relaxed);
                return true;
            }
            p == config_file
                || p.parent() == Some(dir.as_path()) && p.extension().is_some_and(|e| e == "toml")
                || geoip.as_ref().is_some_and(|g| p == g)
                || latency_file.as_ref().is_some_and(|f| p == f)
        };
        let catch_up = tx.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !matches!(ev.kind, notify::EventKind::Access(_))
                && ev.paths.iter().any(|p| relevant(&canon(p)))
            {
                let _ = tx.send(());
            }
        };
        let mut watcher: Box<dyn Watcher + Send> = match notify::recommended_watcher(
            handler.clone(),
        ) {
            Ok(w) => Box::new(w),
            Err(e) => {
                warn!(error = %e, "file watcher unavailable; polling for changes every second");
                match notify::PollWatcher::new(
                    handler,
                    notify::Config::default().with_poll_interval(Duration::from_secs(1)),
                ) {
                    Ok(w) => Box::new(w),
                    Err(e) => {
                        error!(error = %e, "cannot watch the configuration; reload with SIGHUP or POST /api/v1/reload");
                        return None;
                    }
                }
            }
        };
        for d in &dirs {
            // A missing profiles directory is watched for from its parent.
            if d == &settings.profiles_dir && !d.exists() {
                continue;
            }
            if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
                warn!(dir = %d.display(), error = %e, "cannot watch directory for changes");
            }
        }
        // A change made between the load and now raised no event: catch up
        // by comparing modification times once (with slack for coarse file
        // system clocks; an extra reload of an unchanged file is harmless).
        if let Some(loaded_at) = reloader.shared.serving.table.load().loaded_at
            && changed_since(
                loaded_at - Duration::from_millis(50),
                reloader.path(),
                settings,
            )
        {
            let _ = catch_up.send(());
        }
        Some(Watch {
            watcher,
            rx,
            reloader,
            profiles_dir,
            profiles_dir_changed: dir_changed,
        })
    }

    /// Reloads once writes have settled (debounced), until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = self.rx.recv() => if ev.is_none() { return },
            }
            // Debounce: wait for 250 ms without events (at most 2 s), so an
            // editor's save or a storm of writes becomes one reload.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    ev = tokio::time::timeout(Duration::from_millis(250), self.rx.recv()) => match ev {
                        Ok(Some(())) if tokio::time::Instant::now() < deadline => continue,
                        Ok(None) => return,
                        _ => break,
                    }
                }
            }
            // The profiles directory appeared (or was made again): watch
            // it before the reload reads it, so no later write is missed.
            if self
                .profiles_dir_changed
                .swap(false, std::sync::atomic::Ordering::Relaxed)
                && self.profiles_dir.is_dir()
            {
                let _ = self.watcher.unwatch(&self.profiles_dir);
                if let Err(e) = self
                    .watcher
                    .watch(&self.profiles_dir, notify::RecursiveMode::NonRecursive)
                {
                    warn!(dir = %self.profiles_dir.display(), error = %e, "cannot watch directory for changes");
                } else {
                    info!(dir = %self.profiles_dir.display(), "watching the profiles directory");
                }
            }
            let _ = self.reloader.reload("file change").await;
        }
    }
}

/// True when a configuration file was modified after `t`.
fn changed_since(t: std::time::SystemTime, config: &Path, settings: &Settings) -> bool {
    let newer = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > t)
    };
    let profiles = std::fs::read_dir(&settings.profiles_dir)
        .map(|rd| rd.filter_map(|e| e.ok()).any(|e| newer(&e.path())))
        .unwrap_or(false);
    newer(config)
        || newer(&settings.profiles_dir)
        || profiles
        || settings.geoip_database.as_deref().is_some_and(newer)
        || settings.latency.file.as_deref().is_some_and(newer)
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
