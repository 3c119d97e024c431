//! Starting the XDP path (`[dns.xdp]`), or falling back to sockets, and
//! saying which path answers.

use std::sync::Arc;

use anyhow::Result;
use tracing::warn;

use super::Server;
use crate::state::UdpPath;

#[cfg(target_os = "linux")]
pub use crate::server::xdp::Running;

/// Nothing runs off Linux.
#[cfg(not(target_os = "linux"))]
pub struct Running;

#[cfg(not(target_os = "linux"))]
impl Running {
    /// Nothing to wait for.
    pub fn join(self) {}
}

#[cfg(target_os = "linux")]
fn start(
    x: &crate::config::XdpSettings,
    serving: Arc<crate::state::Serving>,
) -> Result<Running, String> {
    crate::server::xdp::start(x, serving)
}

#[cfg(not(target_os = "linux"))]
fn start(_: &crate::config::XdpSettings, _: Arc<crate::state::Serving>) -> Result<Running, String> {
    Err("XDP needs Linux".into())
}

impl Server {
    /// Starts the XDP path when `[dns.xdp]` asks for it. When it cannot
    /// start: an error naming the cause, or with `fallback = "sockets"` a
    /// warning (and a problem on the status page) and sockets alone.
    pub(super) fn start_xdp(&self, settings: &crate::config::Settings) -> Result<Option<Running>> {
        let Some(x) = &settings.dns.xdp else {
            let _ = self.shared.udp_path.set(UdpPath::Sockets);
            return Ok(None);
        };
        match start(x, self.shared.serving.clone()) {
            Ok(running) => {
                let view = view(&running);
                let _ = self.shared.udp_path.set(UdpPath::Xdp(view));
                Ok(Some(running))
            }
            Err(e) if x.fallback_to_sockets => {
                warn!(error = %e, "xdp: cannot start; answering with sockets alone (dns.xdp.fallback = \"sockets\")");
                self.shared
                    .report_problem(format!("XDP did not start, sockets answer: {e}"));
                let _ = self.shared.udp_path.set(UdpPath::Fallback(e));
                Ok(None)
            }
            Err(e) => Err(anyhow::anyhow!(
                "dns.xdp: {e} (or set dns.xdp.fallback = \"sockets\" to serve without XDP)"
            )),
        }
    }
}

/// What status and metrics read of the running XDP path.
#[cfg(target_os = "linux")]
fn view(running: &Running) -> Arc<dyn crate::state::XdpView> {
    Arc::new(View(running.status.clone()))
}

#[cfg(not(target_os = "linux"))]
fn view(_: &Running) -> Arc<dyn crate::state::XdpView> {
    unreachable!("no XDP path off Linux")
}

#[cfg(target_os = "linux")]
#[derive(Debug)]
struct View(Arc<crate::server::xdp::Status>);

#[cfg(target_os = "linux")]
impl crate::state::XdpView for View {
    fn interfaces(&self) -> Vec<(String, &'static str, Vec<u32>)> {
        self.0
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), i.mode.as_str(), i.queues.clone()))
            .collect()
    }

    fn listen(&self) -> Vec<std::net::SocketAddr> {
        self.0.listen.clone()
    }

    fn packets(&self) -> [u64; 4] {
        self.0.packets()
    }
}
