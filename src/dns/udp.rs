//! UDP: one blocking socket per listen address, served by dedicated threads.
//!
//! Blocking `recv_from`/`send_to` on OS threads is the cheapest UDP loop
//! there is (no readiness polling, no task wake-ups); each thread keeps its
//! own answer scratch space and snapshot cache, so threads share nothing
//! but the socket and the atomically swapped routing table.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use tracing::{debug, warn};

use super::answer::{Answerer, Transport};
use crate::metrics::Metrics;
use crate::routing::RoutingTable;

/// How often an idle worker checks for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Source ports we never answer: replies there would feed reflection loops
/// with echo/daytime/chargen/time services.
fn is_abusive_port(port: u16) -> bool {
    matches!(port, 0 | 7 | 13 | 19 | 37)
}

/// Starts `workers` threads answering on `socket` until `stop` is set.
pub fn spawn(
    socket: UdpSocket,
    workers: usize,
    table: Arc<ArcSwap<RoutingTable>>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    socket.set_read_timeout(Some(POLL))?;
    let local = socket.local_addr()?;
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers.max(1) {
        let sock = socket.try_clone()?;
        let table = table.clone();
        let metrics = metrics.clone();
        let stop = stop.clone();
        let h = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || serve(sock, local, &table, &metrics, &stop))?;
        handles.push(h);
    }
    Ok(handles)
}

fn serve(
    sock: UdpSocket,
    local: SocketAddr,
    table: &ArcSwap<RoutingTable>,
    metrics: &Metrics,
    stop: &AtomicBool,
) {
    let mut cache = Cache::new(table);
    let mut answerer = Answerer::default();
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {}
                    // ICMP errors from earlier sends surface here on Linux.
                    ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {}
                    _ => {
                        warn!(%local, error = %e, "udp receive failed");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                continue;
            }
        };
        if is_abusive_port(peer.port()) {
            continue;
        }
        let snapshot = cache.load();
        let Some(summary) = answerer.answer(snapshot, &buf[..n], Transport::Udp, &mut out) else {
            continue;
        };
        metrics.query(Transport::Udp, summary.rcode);
        debug!(%peer, rcode = summary.rcode, truncated = summary.truncated, len = out.len(), "udp answer");
        if let Err(e) = sock.send_to(&out, peer) {
            debug!(%peer, error = %e, "udp send failed");
        }
    }
}
