//! Start-up and shutdown: load without binding, bind every socket, report
//! the bound addresses, then serve until told to stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::net::fds::{self, Budget, Wanted};
use crate::net::slots::Slots;
use crate::reload::{self, Reloader};
use crate::state::Shared;

/// Attempts to find a port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 32;

/// What to run besides the DNS listeners.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Probe endpoints (off in tests that set statuses themselves).
    pub probing: bool,
    /// Watch the configuration files and reload on change.
    pub watch: bool,
    /// Serve the admin API.
    pub admin: bool,
    /// Connection limits of the admin API.
    pub admin_limits: crate::admin::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            probing: true,
            watch: true,
            admin: true,
            admin_limits: crate::admin::Limits::default(),
        }
    }
}

/// A server with every socket bound, ready to [`Server::run`].
pub struct Server {
    config: Config,
    shared: Arc<Shared>,
    reloader: Arc<Reloader>,
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<tokio::net::TcpListener>,
    admin: Option<tokio::net::TcpListener>,
    dns_addrs: Vec<SocketAddr>,
    options: Options,
    /// SIGHUP, registered before the configuration was loaded (a hangup
    /// then is held, and applied once serving).
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Server {
    /// Binds UDP and TCP on every `dns.listen` address (same port for both;
    /// port 0 picks one free for both), and the admin API. Applies the
    /// runtime overrides of the state file. Must be called inside a tokio
    /// runtime.
    pub fn bind(config: Config) -> Result<Server> {
        Self::bind_with(config, Options::default())
    }

    /// [`Server::bind`] with options.
    pub fn bind_with(mut config: Config, options: Options) -> Result<Server> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut dns_addrs = Vec::new();
        for addr in &config.settings.dns.listen {
            let (u, t) = bind_pair(*addr)
                .with_context(|| format!("cannot listen on {addr} (dns.listen)"))?;
            dns_addrs.push(u.local_addr()?);
            udp.push(u);
            tcp.push(t);
        }
        let admin = if options.admin {
            let addr = config.settings.admin.listen;
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} (admin.listen)"))?;
            l.set_nonblocking(true)?;
            Some(tokio::net::TcpListener::from_std(l)?)
        } else {
            None
        };
        let (overrides, recovered) = match &config.settings.state_file {
            Some(path) => crate::state_file::load_at_start(path),
            None => Default::default(),
        };
        let table = std::mem::take(&mut config.table);
        if let Some(path) = &config.settings.state_file {
            crate::config::serials::keep(path, &table);
        }
        let now = crate::clock::now_millis();
        for (key, record) in &overrides {
            if let Some(ep) = table.endpoint_by_key(key) {
                // Enables too: they release holds (`failback = manual`).
                ep.runtime.apply(crate::overrides::state(Some(record)));
            }
        }
        for (key, _) in overrides.iter().filter(|(_, o)| o.in_force(now)) {
            let (profile, endpoint) = (key.profile(), key.endpoint());
            match table.endpoint_by_key(key) {
                Some(_) => {
                    info!(
                        profile,
                        endpoint, "endpoint disabled at runtime (kept in the state file)"
                    );
                }
                None => warn!(
                    profile,
                    endpoint, "state file disables an endpoint the configuration does not have"
                ),
            }
        }
        let node = config
            .settings
            .cluster
            .as_ref()
            .map_or_else(|| "local".to_string(), |c| c.node.clone());
        let shared = Arc::new(Shared::new(table, config.geo.take(), overrides, node));
        shared.notify.configure(config.settings.notify.clone());
        shared.rrl.store(
            config
                .settings
                .dns
                .rate_limit
                .clone()
                .map(|c| Arc::new(crate::dns::rrl::RateLimiter::new(c))),
        );
        if let Some(r) = recovered {
            error!("{r}");
            shared.report_state_problem(r.to_string());
        }
        shared
            .admin_token
            .store(config.settings.admin.token.clone().map(Arc::new));
        shared
            .admin_tokens
            .store(Arc::new(config.settings.admin.tokens.clone()));
        if let Some(path) = &config.settings.state_file {
            crate::state_file::restore_extras(path, &shared);
        }
        if let Some(path) = &config.settings.state_file
            && options.probing
        {
            let (n, age) = crate::state_file::restore_statuses(path, &config.probes);
            if n > 0 {
                info!(
                    targets = n,
                    saved_s_ago = age.as_secs(),
                    "starting with the statuses saved before the restart (trusted for up to {}s; the prober takes over at its first decisions)",
                    crate::state_file::TRUST_SAVED.as_secs()
                );
            }
        }
        let reloader = Arc::new(Reloader::new(
            config.path.clone(),
            shared.clone(),
            config.settings.clone(),
            std::mem::take(&mut config.probes),
        ));
        Ok(Server {
            config,
            shared,
            reloader,
            udp,
            tcp,
            admin,
            dns_addrs,
            options,
            hangup: None,
        })
    }

    /// Reloads on this SIGHUP stream (registered early by the caller, so a
    /// hangup that arrived while the configuration loaded is applied now).
    pub fn with_hangup(mut self, hangup: tokio::signal::unix::Signal) -> Server {
        self.hangup = Some(hangup);
        self
    }

    /// The bound DNS addresses (UDP and TCP share each).
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns_addrs
    }

    /// The bound admin API address, if served.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The state shared with the listeners: routing table, GeoIP database,
    /// counters.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The reload path.
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.config.path.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops every listener.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let settings = self.config.settings.clone();
        let budget = self.fd_budget();
        let workers = match settings.dns.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // Notifications stop after the rest, once what is queued is sent.
        let notify_stop = CancellationToken::new();
        self.shared.notify.start(
            Arc::new(NotifyView(self.shared.clone())),
            notify_stop.clone(),
        );
        if self.options.probing {
            let n = self
                .reloader
                .start_prober(shutdown.clone(), budget.probes)
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the prober: {e}"))?;
            info!(targets = n, "prober started");
        }
        let mut cluster = None;
        if let Some(c) = &settings.cluster {
            let started = crate::cluster::Cluster::start(
                c,
                settings.state_file.clone(),
                self.shared.clone(),
                shutdown.clone(),
            )
            .await
            .with_context(|| {
                format!("cannot start the cluster on {} (cluster.listen)", c.listen)
            })?;
            started.warm_start(&self.shared, c.warm_start).await;
            let _ = self.shared.cluster_stats.set(started.stats.clone());
            cluster = Some(started);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for sock in self.udp {
            threads.extend(crate::server::udp::spawn(
                sock,
                workers,
                self.shared.clone(),
                stop.clone(),
            )?);
        }
        let mut tasks = tokio::task::JoinSet::new();
        // One slot table for every DNS listener: the cap is the server's.
        let slots = Slots::new(budget.tcp, settings.dns.max_tcp_per_client);
        let _ = self.shared.dns_slots.set(slots.clone());
        for listener in self.tcp {
            tasks.spawn(crate::server::tcp::serve(
                listener,
                self.shared.clone(),
                slots.clone(),
                settings.dns.tcp_idle_timeout,
                shutdown.clone(),
            ));
        }
        if self.options.watch
            && settings.watch
            && let Some(w) = reload::Watch::start(self.reloader.clone(), &settings)
        {
            tasks.spawn(w.run(shutdown.clone()));
        } else if !settings.watch {
            tracing::info!(
                "profiles.watch = false: edits apply on SIGHUP or `switchyard reload` (`switchyard check --diff` shows them first)"
            );
        }
        tasks.spawn(sighup(self.reloader.clone(), self.hangup, shutdown.clone()));
        if let Some(listener) = self.admin {
            let addr = listener.local_addr()?;
            let state = crate::admin::AdminState::new(
                self.shared.clone(),
                self.reloader.clone(),
                self.options.probing,
                addr.ip().is_loopback(),
                cluster.clone(),
            );
            let limits = crate::admin::Limits {
                connections: budget.admin,
                ..self.options.admin_limits
            };
            let slots = Slots::new(limits.connections, limits.connections);
            let _ = self.shared.admin_slots.set(slots.clone());
            tasks.spawn(crate::admin::serve(
                listener,
                state,
                slots,
                limits.header_timeout,
                shutdown.clone(),
            ));
            info!(address = %addr, "admin API listening");
        }
        self.shared.ready.store(true, Ordering::Relaxed);
        // Under systemd (Type=notify) the unit is started now, and only now
        // may `systemctl reload` send its SIGHUP. Without NOTIFY_SOCKET
        // this does nothing.
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let t = self.shared.table.load();
        info!(
            addresses = ?self.dns_addrs,
            zones = t.zones.len(),
            profiles = t.profiles.len(),
            endpoints = t.endpoints.len(),
            udp_workers = workers,
            "dns listening (udp and tcp)"
        );
        match &settings.dns.rate_limit {
            Some(r) => info!(
                responses_per_second = r.responses_per_second,
                nxdomains_per_second = r.nxdomains_per_second,
                errors_per_second = r.errors_per_second,
                total_per_second = r.total_per_second,
                slip = r.slip,
                networks = format!("/{} /{}", r.ipv4_prefix, r.ipv6_prefix),
                exempt = ?r.exempt,
                "udp rate limiting on"
            ),
            None => warn!("udp rate limiting off ([dns.rate_limit] enabled = false)"),
        }
        info!(
            cookies = t.cookies.is_some(),
            secret = match &t.cookies {
                Some(c) if c.configured => "configured",
                Some(_) => "random",
                None => "none",
            },
            tcp_per_client = settings.dns.max_tcp_per_client,
            "dns cookies and tcp limits"
        );
        for z in &t.zones {
            if let Some(s) = &z.signer {
                info!(
                    zone = %z.origin,
                    key_tag = s.key.key_tag(),
                    algorithm = s.key.algorithm().name(),
                    signature_validity_days = s.validity() / 86_400,
                    "dnssec: signing answers to queries with DO"
                );
            }
        }
        drop(t);
        if let Some(path) = settings.state_file.clone()
            && self.options.probing
        {
            tasks.spawn(save_statuses(path, self.shared.clone(), shutdown.clone()));
        }
        tasks.spawn(note_expiries(self.shared.clone(), shutdown.clone()));
        shutdown.cancelled().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        self.shared.ready.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let left = self.shared.notify.flush(NOTIFY_FLUSH).await;
        if left > 0 {
            warn!(
                messages = left,
                "stopping with notifications not delivered (receivers did not answer within {}s)",
                NOTIFY_FLUSH.as_secs()
            );
        }
        notify_stop.cancel();
        if let Some(c) = &cluster {
            // The others drop this node's vote at once, rather than hold it.
            c.leave().await;
        }
        while tasks.join_next().await.is_some() {}
        // UDP workers notice within their poll interval.
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        info!("stopped");
        Ok(())
    }
}

impl Server {
    /// Raises the descriptor limit and fits the connection caps and probe
    /// concurrency into it, saying so when the configured caps do not fit.
    fn fd_budget(&self) -> Budget {
        let settings = &self.config.settings;
        let limit = fds::raise_limit();
        let want = Wanted {
            tcp: settings.dns.max_tcp_connections,
            admin: if self.admin.is_some() {
                self.options.admin_limits.connections
            } else {
                0
            },
            // Room for the configuration to grow by reloads; a probe that
            // waits for a permit is delayed, never failed.
            probes: (self.reloader.probe_targets() * 2)
                .clamp(64, crate::health::prober::MAX_IN_FLIGHT),
            listeners: self.udp.len() + self.tcp.len() + usize::from(self.admin.is_some()),
        };
        let budget = Budget::plan(limit, want);
        if let Some(limit) = budget.limit {
            if budget.tcp < want.tcp {
                warn!(
                    limit,
                    configured = want.tcp,
                    serving = budget.tcp,
                    "dns.max_tcp_connections does not fit in the file descriptor limit (RLIMIT_NOFILE); \
                     fewer TCP connections will be served: raise the limit (LimitNOFILE= in systemd)"
                );
            }
            if budget.admin < want.admin || budget.probes < want.probes {
                warn!(
                    limit,
                    admin_connections = budget.admin,
                    probes_in_flight = budget.probes,
                    "the file descriptor limit also cuts the admin API's connections and the probes in flight"
                );
            }
            info!(
                limit,
                tcp_connections = budget.tcp,
                admin_connections = budget.admin,
                probes_in_flight = budget.probes,
                reserved = fds::RESERVED,
                "file descriptors"
            );
        }
        budget
    }
}

/// Reloads on SIGHUP until `shutdown`.
async fn sighup(
    reloader: Arc<Reloader>,
    early: Option<tokio::signal::unix::Signal>,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(mut hup) = early.or_else(|| signal(SignalKind::hangup()).ok()) else {
        warn!("cannot listen for SIGHUP; reload with POST /api/v1/reload");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            s = hup.recv() => if s.is_none() { return },
        }
        let _ = reloader.reload("SIGHUP").await;
    }
}

/// Binds UDP then TCP on the same address; with port 0, retries until one
/// port is free for both.
fn bind_pair(addr: SocketAddr) -> Result<(std::net::UdpSocket, tokio::net::TcpListener)> {
    let attempts = if addr.port() == 0 { PORT_ATTEMPTS } else { 1 };
    let mut last_err = None;
    for _ in 0..attempts {
        let udp = udp_socket(addr)?;
        let port = udp.local_addr()?.port();
        match tcp_listener(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.map_or_else(|| anyhow::anyhow!("no free port"), Into::into))
}

fn udp_socket(addr: SocketAddr) -> Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Let [::]:53 and 0.0.0.0:53 be configured side by side.
        s.set_only_v6(true)?;
    }
    // Absorb bursts; the kernel caps this at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}

/// How long a stop waits for queued notifications to be delivered.
const NOTIFY_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// Logs timed overrides (`--for`) as they run out, adding each to the
/// history, and holds as `failback_after` ends them, and notifies both.
/// They end by themselves on every node; this only says so. It sleeps
/// until the next such deadline, woken early by any event (a new override,
/// a status change that starts a hold, a reload), never polling.
async fn note_expiries(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut since = crate::clock::now_millis();
    let mut held: std::collections::HashMap<crate::snapshot::EndpointKey, (u64, u64)> =
        Default::default();
    loop {
        let now = crate::clock::now_millis();
        let ended: Vec<_> = shared
            .overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, o)| o.disabled && o.until.is_some_and(|u| since <= u && u < now))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        since = now;
        for (key, o) in ended {
            info!(
                profile = key.profile(),
                endpoint = key.endpoint(),
                action = o.kind().as_str(),
                "runtime override ran out (--for): the endpoint is back"
            );
            let mut end =
                crate::overrides::Override::new(false, o.until.unwrap_or(now), &o.node, Some(&o));
            end.at = o.until.unwrap_or(now);
            end.by = Some(format!(
                "expiry of the {} by {}",
                o.kind().as_str(),
                o.by.as_deref().unwrap_or("?")
            ));
            shared.record_history(&key, &end);
            shared.notify.emit(
                crate::notify::Event::override_applied(key.profile(), key.endpoint(), &end)
                    .with_old("Disabled"),
            );
        }
        // Holds that `failback_after` ended: the endpoint is answered again.
        let table = shared.table.load();
        let mut still = std::collections::HashMap::new();
        for p in &table.profiles {
            for e in table.endpoints_of(p).iter().filter(|e| e.hold.is_some()) {
                let key = crate::snapshot::EndpointKey::new(p.name.as_str(), &e.name);
                match e.hold_now() {
                    Some(h) => {
                        still.insert(key, h);
                    }
                    None => {
                        if let Some((_, until)) = held.get(&key)
                            && *until != 0
                            && now >= *until
                            && table.status(e) == crate::health::Status::Online
                        {
                            shared.notify.status_changed(
                                crate::notify::ChangeSource::HoldEnded,
                                key.profile(),
                                key.endpoint(),
                                crate::health::Status::Held,
                                crate::health::Status::Online,
                                "failback_after passed: answered again",
                            );
                        }
                    }
                }
            }
        }
        held = still;
        let now = crate::clock::now_millis();
        let next = shared
            .overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, o)| o.disabled)
            .filter_map(|(_, o)| o.until)
            .chain(held.values().map(|&(_, until)| until))
            .filter(|&u| u >= now)
            .min();
        // Just past the deadline (holds end on whole seconds); a minute at
        // most, as a safety net against a missed event or a step of the wall clock.
        let wait = next.map_or(60_000, |u| u - now + 20).min(60_000);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            _ = shared.notify.event() => {}
        }
    }
}

/// Keeps the decided statuses in the state file (checked every second,
/// written when they changed, and once more at shutdown), so a restart
/// can start from them.
async fn save_statuses(path: PathBuf, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut last: Vec<(String, String, u64)> = Vec::new();
    let mut calls = 0u64;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        let stopping = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let statuses = crate::state_file::statuses_of(&shared.probes.load(), &shared.table.load());
        let now: Vec<(String, String, u64)> = statuses
            .iter()
            .map(|s| (s.probe.clone(), s.status.clone(), s.since))
            .collect();
        // Saved statuses are trusted for a while only: refresh them well
        // within that (every minute) even when nothing changed.
        calls += 1;
        let refresh = last != now || calls.is_multiple_of(60);
        last = now;
        if refresh || stopping {
            let (p, s) = (path.clone(), shared.clone());
            let result = tokio::task::spawn_blocking(move || crate::state_file::save(&p, &s))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            if let Err(e) = result {
                warn!(path = %path.display(), error = %e, "cannot save the decided statuses to the state file");
            }
        }
        if stopping {
            return;
        }
    }
}

/// What notifications read of the running server: what profiles serve
/// ([`crate::snapshot::Profile::serving`]) and what a profile's name answers
/// now, from the real answer path ([`crate::dns::inspect::answer_for`]).
struct NotifyView(Arc<Shared>);

impl crate::notify::View for NotifyView {
    fn node(&self) -> String {
        self.0.node.clone()
    }

    fn endpoint_status(&self, profile: &str, endpoint: &str) -> Option<(&'static str, String)> {
        let table = self.0.table.load();
        let p = table.profile_by_name(profile)?;
        let ep = table.endpoint_by_key(&crate::snapshot::EndpointKey::new(profile, endpoint))?;
        let effective = table.effective(p, ep);
        let why = match effective.why {
            crate::routing::Why::Held { .. } => effective.why.to_string(),
            _ => String::new(),
        };
        Some((effective.status.as_str(), why))
    }

    fn serving(&self) -> Vec<(String, &'static str)> {
        let table = self.0.table.load();
        table
            .profiles
            .iter()
            .map(|p| (p.name.to_string(), p.serving(&table)))
            .collect()
    }

    /// The answer is that of A and AAAA queries for the profile's name from
    /// loopback without ECS: client-aware and random methods may answer
    /// other clients otherwise.
    fn profile_now(&self, profile: &str) -> Option<(&'static str, crate::notify::payload::Answer)> {
        let table = self.0.table.load();
        let p = table.profile_by_name(profile)?;
        let serving = p.serving(&table);
        let geo = self.0.geo.load();
        let name = p.name.to_string();
        let client = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut answer = crate::notify::payload::Answer::default();
        for qtype in ["A", "AAAA"] {
            let Ok(view) =
                crate::dns::inspect::answer_for(&table, geo.as_deref(), &name, qtype, client, None)
            else {
                continue;
            };
            if qtype == "A" {
                answer.rcode = view.rcode.clone();
            }
            for line in &view.answers {
                // `name TTL TYPE data`
                if let Some(data) = line.splitn(4, ' ').nth(3)
                    && !answer.records.iter().any(|r| r == data)
                {
                    answer.records.push(data.to_string());
                }
            }
        }
        Some((serving, answer))
    }
}
