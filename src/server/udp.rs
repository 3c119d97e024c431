//! UDP: one blocking socket per listen address, served by dedicated threads.
//!
//! Blocking `recv_from`/`send_to` on OS threads is the cheapest UDP loop
//! there is (no readiness polling, no task wake-ups); each thread keeps its
//! own answer scratch space and snapshot cache, so threads share nothing
//! but the socket and the atomically swapped routing table.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;

use crate::dns::rrl::refused_source_port;
use crate::state::Serving;

/// How often an idle worker checks for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Starts `workers` threads answering on `socket` until `stop` is set.
pub fn spawn(
    socket: UdpSocket,
    workers: usize,
    serving: Arc<Serving>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    socket.set_read_timeout(Some(POLL))?;
    let local = socket.local_addr()?;
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers.max(1) {
        let sock = socket.try_clone()?;
        let serving = serving.clone();
        let stop = stop.clone();
        let h = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || serve(sock, local, &serving, &stop))?;
        handles.push(h);
    }
    Ok(handles)
}

fn serve(sock: UdpSocket, local: SocketAddr, serving: &Serving, stop: &AtomicBool) {
    #[cfg(target_os = "linux")]
    batch::serve(sock, local, serving, stop);
    #[cfg(not(target_os = "linux"))]
    simple::serve(sock, local, serving, stop);
}

/// Handles a receive error; returns normally so the loop goes on.
fn receive_error(local: SocketAddr, e: &std::io::Error) {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {}
        // ICMP errors from earlier sends surface here on Linux.
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {}
        _ => {
            warn!(%local, error = %e, "udp receive failed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Batched receive and send: one `recvmmsg` takes every datagram already
/// queued (up to [`batch::BATCH`]), one `sendmmsg` sends all their answers.
/// Under load this divides the system-call cost, which dominates the CPU
/// spent per query; when idle it behaves like `recv_from`.
#[cfg(target_os = "linux")]
mod batch {
    use std::io::{IoSlice, IoSliceMut};
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    use nix::sys::socket::{
        ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
    };

    use super::{receive_error, refused_source_port, send_one};
    use crate::dns::answer::{Answerer, Transport};
    use crate::server::respond::{Snapshots, respond};
    use crate::state::Serving;
    use crate::traffic::Pending;

    /// Datagrams taken per system call.
    pub const BATCH: usize = 16;
    /// Receive buffer per datagram (queries are small; larger ones are cut and get FORMERR).
    const BUF: usize = 4096;

    fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = a.as_sockaddr_in() {
            Some(SocketAddr::V4((*v4).into()))
        } else {
            a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
        }
    }

    pub fn serve(sock: UdpSocket, local: SocketAddr, serving: &Serving, stop: &AtomicBool) {
        let fd = sock.as_raw_fd();
        // This loop's own query counters, and answers per endpoint counted
        // per batch: nothing another worker writes is written per query.
        let mut snapshots = Snapshots::new(serving).counting_in(serving.metrics.worker());
        let mut slips = 0u32;
        let mut traffic = Pending::default();
        let mut answerer = Answerer::default()
            .with_latency(serving.latency.clone())
            .tallied();
        let mut bufs: Box<[[u8; BUF]; BATCH]> = Box::new([[0; BUF]; BATCH]);
        let mut outs: [Vec<u8>; BATCH] = std::array::from_fn(|_| Vec::with_capacity(1232));
        let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut lens = [0usize; BATCH];
        let mut peers: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        let mut woke = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let received = {
                let mut iovs = bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
                let result = recvmmsg(
                    fd,
                    &mut recv_headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_WAITFORONE,
                    None,
                );
                // In a cluster, every wake-up (a batch, or the idle
                // timeout) tells the gate how long this loop was away.
                let held = serving.gate.armed() && {
                    let now = Instant::now();
                    let held = serving.gate.check(woke, now);
                    woke = now;
                    held
                };
                match result {
                    Ok(msgs) => {
                        let mut n = 0;
                        for m in msgs {
                            lens[n] = m.bytes;
                            peers[n] = m.address;
                            n += 1;
                        }
                        if held {
                            serving.gate.held(n as u64);
                            continue;
                        }
                        n
                    }
                    Err(errno) => {
                        // Nothing to answer (the idle timeout, mostly):
                        // what this loop answered goes to the Traffic View.
                        traffic.flush(&serving.traffic);
                        receive_error(local, &std::io::Error::from(errno));
                        continue;
                    }
                }
            };
            // One clock read for the batch's answers (their drain
            // bookkeeping, health-aware TTLs, the Traffic View's second).
            let _clock = crate::clock::Batch::start();
            let cx = snapshots.context();
            let mut replies = 0;
            for i in 0..received {
                let Some(peer_addr) = peers[i]
                    .as_ref()
                    .and_then(to_std)
                    .filter(|p| !refused_source_port(p.port()))
                else {
                    continue;
                };
                let pkt = &bufs[i][..lens[i].min(BUF)];
                let out = &mut outs[replies];
                if respond(
                    &cx,
                    &mut answerer,
                    &mut slips,
                    &mut traffic,
                    Transport::Udp,
                    pkt,
                    peer_addr,
                    out,
                ) {
                    // The addresses answered move up to match `outs`
                    // (only after a query went unanswered).
                    if replies != i {
                        peers[replies] = peers[i];
                    }
                    replies += 1;
                }
            }
            traffic.after_batch(&serving.traffic);
            // Every answer is in its endpoint's counters (and its drain
            // bookkeeping) before any goes out.
            answerer.settle();
            if replies == 0 {
                continue;
            }
            let slices = outs.each_ref().map(|o| [IoSlice::new(o)]);
            let no_cmsgs: [ControlMessage<'_>; 0] = [];
            let sent = match sendmmsg(
                fd,
                &mut send_headers,
                slices[..replies].iter(),
                &peers[..replies],
                no_cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => results.count(),
                Err(_) => 0,
            };
            // sendmmsg stops at the first failing datagram: send the rest one
            // by one so one bad peer never costs the others their answers.
            for j in sent..replies {
                if let Some(peer) = peers[j].as_ref().and_then(to_std) {
                    send_one(&sock, &mut outs[j], peer);
                }
            }
        }
    }
}

/// Sends one answer on its own. An answer larger than the link's MTU
/// (sockets never fragment: see `app::sockets`) goes out truncated instead,
/// so the client retries over TCP rather than waiting in vain.
#[cfg(target_os = "linux")]
fn send_one(sock: &UdpSocket, out: &mut Vec<u8>, peer: SocketAddr) {
    let mut result = sock.send_to(out, peer);
    if matches!(&result, Err(e) if e.raw_os_error() == Some(nix::libc::EMSGSIZE))
        && crate::dns::wire::truncate_response(out)
    {
        tracing::debug!(%peer, "answer larger than the link's MTU: sent truncated");
        result = sock.send_to(out, peer);
    }
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "udp send failed");
    }
}

/// Portable loop: one `recv_from`, one `send_to` per query.
#[cfg(not(target_os = "linux"))]
mod simple {
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::atomic::{AtomicBool, Ordering};

    use tracing::debug;

    use super::{receive_error, refused_source_port};
    use crate::dns::answer::{Answerer, Transport};
    use crate::server::respond::{Snapshots, respond};
    use crate::state::Serving;
    use crate::traffic::Pending;

    pub fn serve(sock: UdpSocket, local: SocketAddr, serving: &Serving, stop: &AtomicBool) {
        let mut snapshots = Snapshots::new(serving).counting_in(serving.metrics.worker());
        let mut slips = 0u32;
        let mut traffic = Pending::default();
        let mut answerer = Answerer::default().with_latency(serving.latency.clone());
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::with_capacity(4096);
        let mut woke = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let result = sock.recv_from(&mut buf);
            let held = serving.gate.armed() && {
                let now = std::time::Instant::now();
                let held = serving.gate.check(woke, now);
                woke = now;
                held
            };
            let (n, peer) = match result {
                Ok(_) if held => {
                    serving.gate.held(1);
                    continue;
                }
                Ok(x) => x,
                Err(e) => {
                    receive_error(local, &e);
                    continue;
                }
            };
            if refused_source_port(peer.port()) {
                continue;
            }
            let cx = snapshots.context();
            let sent = respond(
                &cx,
                &mut answerer,
                &mut slips,
                &mut traffic,
                Transport::Udp,
                &buf[..n],
                peer,
                &mut out,
            );
            traffic.flush(&serving.traffic);
            if !sent {
                continue;
            }
            if let Err(e) = sock.send_to(&out, peer) {
                debug!(%peer, error = %e, "udp send failed");
            }
        }
    }
}
