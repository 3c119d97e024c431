//! Start-up and shutdown: load without binding, bind every socket, report
//! the bound addresses, then serve until told to stop.

mod notify_view;
mod sockets;
mod tasks;
mod xdp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::net::fds::{self, Budget, Wanted};
use crate::net::slots::Slots;
use crate::reload::{self, Reloader};
use crate::state::Shared;
use notify_view::NotifyView;
use sockets::bind_pair;
use tasks::{combine_monitors, drain_traffic, note_expiries, save_statuses, sighup};

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
    /// The public listener of real user measurements (`[rum]`).
    rum: Option<tokio::net::TcpListener>,
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
        let rum = match &config.settings.rum {
            Some(r) => {
                let l = std::net::TcpListener::bind(r.listen)
                    .with_context(|| format!("cannot listen on {} (rum.listen)", r.listen))?;
                l.set_nonblocking(true)?;
                Some(tokio::net::TcpListener::from_std(l)?)
            }
            None => None,
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
        for (key, o) in overrides.iter().filter(|(_, o)| o.in_force(now)) {
            let (profile, endpoint) = (key.profile(), key.endpoint());
            let action = o.kind().as_str();
            match table.endpoint_by_key(key) {
                Some(_) => {
                    info!(
                        profile,
                        endpoint, action, "endpoint overridden at runtime (kept in the state file)"
                    );
                }
                None => warn!(
                    profile,
                    endpoint,
                    action,
                    "state file overrides an endpoint the configuration does not have"
                ),
            }
        }
        let node = config
            .settings
            .cluster
            .as_ref()
            .map_or_else(|| "local".to_string(), |c| c.node.clone());
        let shared = Arc::new(
            Shared::new(table, config.geo.take(), overrides, node)
                .with_traffic_queue(config.settings.traffic.queue),
        );
        shared.notify.configure(config.settings.notify.clone());
        let traffic = config.settings.traffic;
        shared.configure_traffic(traffic.enabled, traffic.networks);
        shared.serving.rrl.store(
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
        shared.apply_latency(&config.settings.latency);
        restore_latency(&shared, config.settings.state_file.as_deref());
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
            rum,
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

    /// The bound address of the real-user-measurement listener, if served.
    pub fn rum_addr(&self) -> Option<SocketAddr> {
        self.rum.as_ref().and_then(|l| l.local_addr().ok())
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
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
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
            self.start_prober(&shutdown, budget.probes).await?;
        }
        let cluster = self.start_cluster(&settings, &shutdown).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = self.spawn_udp(workers, &stop)?;
        let xdp = match self.start_xdp(&settings) {
            Ok(x) => x,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                for t in threads.drain(..) {
                    let _ = t.join();
                }
                return Err(e);
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        self.serve_tcp(&mut tasks, &settings, budget.tcp, &shutdown);
        self.reload_on_change(&mut tasks, &settings, &shutdown);
        self.serve_admin(&mut tasks, budget.admin, cluster.clone(), &shutdown)?;
        self.serve_rum(&mut tasks, &settings, &shutdown)?;
        self.shared.ready.store(true, Ordering::Relaxed);
        // Under systemd (Type=notify) the unit is started now, and only now
        // may `systemctl reload` send its SIGHUP. Without NOTIFY_SOCKET
        // this does nothing.
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        self.log_serving(&settings, workers);
        if let Some(path) = settings.state_file.clone()
            && self.options.probing
        {
            tasks.spawn(save_statuses(path, self.shared.clone(), shutdown.clone()));
        }
        tasks.spawn(note_expiries(self.shared.clone(), shutdown.clone()));
        tasks.spawn(tasks::keep_latency(
            settings
                .state_file
                .as_deref()
                .map(crate::latency::saved_path),
            self.shared.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(combine_monitors(self.shared.clone(), shutdown.clone()));
        tasks.spawn(drain_traffic(self.shared.clone(), shutdown.clone()));
        shutdown.cancelled().await;
        self.stop(Running {
            stop,
            threads,
            xdp,
            tasks,
            notify_stop,
            cluster,
        })
        .await;
        Ok(())
    }
}

/// Loads the latency table saved beside the state file: a file that
/// cannot be used is reported, and the table starts empty.
fn restore_latency(shared: &Shared, state_file: Option<&std::path::Path>) {
    let Some(path) = state_file.map(crate::latency::saved_path) else {
        return;
    };
    match crate::latency::load_saved(&shared.serving.latency, &path) {
        Ok(0) => {}
        Ok(rows) => info!(file = %path.display(), rows, "latency table restored"),
        Err(e) => {
            warn!(error = %e, "latency table not restored: starting empty (measurements are learned again)");
            shared.report_problem(format!("latency table not restored, starting empty: {e}"));
        }
    }
}

/// What serving runs, for [`Server::stop`] to stop in order.
struct Running {
    /// Tells the UDP workers to stop.
    stop: Arc<AtomicBool>,
    /// The UDP workers.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The XDP path's workers and program, if it runs.
    xdp: Option<xdp::Running>,
    /// The TCP listeners, the admin API, the reload triggers and the
    /// savers.
    tasks: tokio::task::JoinSet<()>,
    /// Stops the notifications.
    notify_stop: CancellationToken,
    /// The cluster, left before the tasks are waited for.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// The stages of [`Server::run`], in the order it runs them.
impl Server {
    /// Starts probing the endpoints.
    async fn start_prober(&self, shutdown: &CancellationToken, in_flight: usize) -> Result<()> {
        let n = self
            .reloader
            .start_prober(shutdown.clone(), in_flight)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the prober: {e}"))?;
        info!(targets = n, "prober started");
        Ok(())
    }

    /// Joins the cluster, if one is configured, and waits (at most
    /// `cluster.warm_start`) for the peers' observations.
    async fn start_cluster(
        &self,
        settings: &crate::config::Settings,
        shutdown: &CancellationToken,
    ) -> Result<Option<Arc<crate::cluster::Cluster>>> {
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
        Ok(cluster)
    }

    /// Starts `workers` threads on each UDP socket.
    fn spawn_udp(
        &mut self,
        workers: usize,
        stop: &Arc<AtomicBool>,
    ) -> Result<Vec<std::thread::JoinHandle<()>>> {
        let mut threads = Vec::new();
        for sock in std::mem::take(&mut self.udp) {
            threads.extend(crate::server::udp::spawn(
                sock,
                workers,
                self.shared.serving.clone(),
                stop.clone(),
            )?);
        }
        Ok(threads)
    }

    /// Serves DNS over TCP on each listener, `connections` at most.
    fn serve_tcp(
        &mut self,
        tasks: &mut tokio::task::JoinSet<()>,
        settings: &crate::config::Settings,
        connections: usize,
        shutdown: &CancellationToken,
    ) {
        // One slot table for every DNS listener: the cap is the server's.
        let slots = Slots::new(connections, settings.dns.max_tcp_per_client);
        let _ = self.shared.dns_slots.set(slots.clone());
        for listener in std::mem::take(&mut self.tcp) {
            tasks.spawn(crate::server::tcp::serve(
                listener,
                self.shared.serving.clone(),
                slots.clone(),
                settings.dns.tcp_idle_timeout,
                shutdown.clone(),
            ));
        }
    }

    /// Reloads when the configuration files change (unless `watch =
    /// false`) and on SIGHUP.
    fn reload_on_change(
        &mut self,
        tasks: &mut tokio::task::JoinSet<()>,
        settings: &crate::config::Settings,
        shutdown: &CancellationToken,
    ) {
        if self.options.watch
            && settings.watch
            && let Some(w) = reload::Watch::start(self.reloader.clone(), settings)
        {
            tasks.spawn(w.run(shutdown.clone()));
        } else if !settings.watch {
            tracing::info!(
                "profiles.watch = false: edits apply on SIGHUP or `switchyard reload` (`switchyard check --diff` shows them first)"
            );
        }
        tasks.spawn(sighup(
            self.reloader.clone(),
            self.hangup.take(),
            shutdown.clone(),
        ));
    }

    /// Serves real user measurements, if `[rum]` is configured.
    fn serve_rum(
        &mut self,
        tasks: &mut tokio::task::JoinSet<()>,
        settings: &crate::config::Settings,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let (Some(listener), Some(r)) = (self.rum.take(), &settings.rum) else {
            return Ok(());
        };
        let addr = listener.local_addr()?;
        let tls = match &r.tls {
            Some((cert, key)) => Some(
                crate::rum::tls_config(cert, key)
                    .map_err(|e| anyhow::anyhow!("rum.tls_cert: {e}"))?,
            ),
            None => None,
        };
        let https = tls.is_some();
        let cluster_key = settings
            .cluster
            .as_ref()
            .map(|c| c.key.expose().trim().as_bytes().to_vec());
        let rum = Arc::new(crate::rum::Rum::new(
            r.clone(),
            self.shared.serving.clone(),
            cluster_key.as_deref(),
        ));
        tasks.spawn(crate::rum::serve(listener, rum, tls, shutdown.clone()));
        info!(address = %addr, https, zone = %r.zone, "rum listening");
        Ok(())
    }

    /// Serves the admin API, if it is served, `connections` at most.
    fn serve_admin(
        &mut self,
        tasks: &mut tokio::task::JoinSet<()>,
        connections: usize,
        cluster: Option<Arc<crate::cluster::Cluster>>,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        if let Some(listener) = self.admin.take() {
            let addr = listener.local_addr()?;
            let state = crate::admin::AdminState::new(
                self.shared.clone(),
                self.reloader.clone(),
                self.options.probing,
                addr.ip().is_loopback(),
                cluster,
            );
            let limits = crate::admin::Limits {
                connections,
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
        Ok(())
    }

    /// Says what is served: the DNS addresses and the table's size, rate
    /// limiting, cookies and TCP limits, and each signed zone.
    fn log_serving(&self, settings: &crate::config::Settings, workers: usize) {
        let t = self.shared.serving.table.load();
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
    }

    /// Stops serving: not ready, the UDP workers told to stop, queued
    /// notifications sent (for a while), the cluster left, then every
    /// task and worker waited for.
    async fn stop(&self, running: Running) {
        let Running {
            stop,
            threads,
            xdp,
            mut tasks,
            notify_stop,
            cluster,
        } = running;
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
            // The workers gone, the program is detached (the last
            // reference to its bpf_link is the status kept for the API).
            if let Some(x) = xdp {
                x.join();
            }
        })
        .await;
        info!("stopped");
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

/// How long a stop waits for queued notifications to be delivered.
const NOTIFY_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);
