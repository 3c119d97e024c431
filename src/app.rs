//! Start-up and shutdown: load without binding, bind every socket, report
//! the bound addresses, then serve until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;
use crate::dns;
use crate::metrics::Metrics;
use crate::state::Shared;

/// Attempts to find a port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 32;

/// A server with every socket bound, ready to [`Server::run`].
pub struct Server {
    config: Config,
    shared: Arc<Shared>,
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<tokio::net::TcpListener>,
    dns_addrs: Vec<SocketAddr>,
    probing: bool,
}

impl Server {
    /// Binds UDP and TCP on every `dns.listen` address (same port for both;
    /// port 0 picks one free for both). Must be called inside a tokio runtime.
    pub fn bind(mut config: Config) -> Result<Server> {
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
        let shared = Arc::new(Shared {
            table: ArcSwap::from_pointee(std::mem::take(&mut config.table)),
            geo: arc_swap::ArcSwapOption::new(config.geo.take()),
            metrics: Metrics::default(),
        });
        Ok(Server {
            config,
            shared,
            udp,
            tcp,
            dns_addrs,
            probing: true,
        })
    }

    /// Turns the prober off: monitored endpoints keep whatever status their
    /// health cells hold. For tests that set statuses themselves.
    pub fn without_probing(mut self) -> Self {
        self.probing = false;
        self
    }

    /// The bound DNS addresses (UDP and TCP share each).
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns_addrs
    }

    /// The state shared with the listeners: routing table, GeoIP database,
    /// counters.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops every listener.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let dns_settings = &self.config.settings.dns;
        let workers = match dns_settings.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for sock in self.udp {
            threads.extend(dns::udp::spawn(
                sock,
                workers,
                self.shared.clone(),
                stop.clone(),
            )?);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.tcp {
            tasks.spawn(dns::tcp::serve(
                listener,
                self.shared.clone(),
                dns_settings.tcp_idle_timeout,
                dns_settings.max_tcp_connections,
                shutdown.clone(),
            ));
        }
        let prober = if self.probing {
            let t = self.shared.table.load();
            Some(
                crate::health::prober::spawn(&self.config.probes, &t, shutdown.clone())
                    .map_err(|e| anyhow::anyhow!("cannot start the prober: {e}"))?,
            )
        } else {
            None
        };
        if let Some(path) = self.config.settings.geoip_database.clone() {
            tasks.spawn(crate::geo::watch::watch(
                path,
                self.shared.clone(),
                shutdown.clone(),
            ));
        }
        let t = self.shared.table.load();
        info!(
            addresses = ?self.dns_addrs,
            zones = t.zones.len(),
            profiles = t.profiles.len(),
            endpoints = t.endpoints.len(),
            udp_workers = workers,
            "dns listening (udp and tcp)"
        );
        drop(t);
        shutdown.cancelled().await;
        stop.store(true, Ordering::Relaxed);
        while tasks.join_next().await.is_some() {}
        if let Some(p) = prober {
            let _ = p.await;
        }
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

/// Grace period for in-flight work at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
