//! One AF_XDP socket and its worker thread: frames in from the receive
//! ring, each query answered by the same [`respond`] the sockets path
//! calls, the answer written over the query's frame and sent on the
//! transmit ring; sent frames come back through the completion ring and
//! go to the fill ring again. Nothing is allocated per packet.

use std::ffi::CString;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

use super::frame;
use super::kernel::Frames;
use crate::dns::answer::{Answerer, Transport};
use crate::dns::rrl::refused_source_port;
use crate::server::respond::{Snapshots, respond};
use crate::state::Serving;
use crate::traffic::Pending;

/// Frames per queue, and the size of each ring.
const FRAMES: u32 = 4096;
/// Bytes per frame: an Ethernet frame of the default MTU fits after the
/// kernel's 256 bytes of headroom.
const FRAME: u32 = 2048;
/// Descriptors taken from the receive ring at once.
const BATCH: usize = 64;
/// Most `sendto` calls per batch (each sends up to 32 frames).
const KICKS: usize = 8;
/// Frames the kernel sends per `sendto` in copy mode (`TX_BATCH_SIZE`):
/// answers wait on the transmit ring until this many are queued or the
/// receive ring is empty, so one call sends what several small batches
/// answered.
const TX_BUDGET: u32 = 32;
/// How long an idle worker waits for frames before it looks at `stop`.
const POLL: Duration = Duration::from_millis(100);

/// A worker's counts, read by `/metrics`; padded to its own cache line so
/// workers on different cores never share one.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Counts {
    /// Queries answered.
    pub answered: AtomicU64,
    /// Frames dropped: malformed, refused, rate limited, held while the
    /// node was stalled, or no room to send.
    pub dropped: AtomicU64,
}

/// An AF_XDP socket bound to one queue of an interface, with its rings
/// and frame memory (declared so that the rings and sockets drop before
/// the memory they point into).
pub struct Queue {
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    user: User,
    /// Owns the rings above (dropped after them, before `frames`).
    _umem: Umem,
    frames: Frames,
    /// Largest frame the interface sends (its MTU plus the Ethernet header).
    max_frame: usize,
}

impl Queue {
    /// Creates and binds the socket for `queue` of `interface`.
    pub fn open(interface: &str, queue: u32, mtu: usize) -> Result<Queue, String> {
        let errno = |what: &str, e: xdpilone::Errno| {
            format!(
                "{what} for {interface}@{queue}: {e}{}",
                super::program::errno_hint(Some(e.get_raw().abs()))
            )
        };
        let frames = Frames::new(FRAMES as usize, FRAME as usize)
            .map_err(|e| format!("cannot map the frame memory for {interface}@{queue}: {e}"))?;
        let umem = frames
            .umem(UmemConfig {
                fill_size: FRAMES,
                complete_size: FRAMES,
                frame_size: FRAME,
                headroom: 0,
                flags: 0,
            })
            .map_err(|e| errno("cannot create the AF_XDP socket", e))?;
        let name =
            CString::new(interface).map_err(|_| format!("{interface:?}: not an interface name"))?;
        let mut info = IfInfo::invalid();
        info.from_name(&name)
            .map_err(|e| errno("no such interface", e))?;
        info.set_queue(queue);
        let sock =
            Socket::with_shared(&info, &umem).map_err(|e| errno("cannot open the socket", e))?;
        let device = umem
            .fq_cq(&sock)
            .map_err(|e| errno("cannot map the fill ring", e))?;
        let user = umem
            .rx_tx(
                &sock,
                &SocketConfig {
                    rx_size: NonZeroU32::new(FRAMES),
                    tx_size: NonZeroU32::new(FRAMES),
                    bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP,
                },
            )
            .map_err(|e| errno("cannot size the rings", e))?;
        let rx = user
            .map_rx()
            .map_err(|e| errno("cannot map the receive ring", e))?;
        let tx = user
            .map_tx()
            .map_err(|e| errno("cannot map the transmit ring", e))?;
        umem.bind(&user)
            .map_err(|e| errno("cannot bind the socket", e))?;
        let mut q = Queue {
            rx,
            tx,
            device,
            user,
            _umem: umem,
            frames,
            max_frame: mtu + 14,
        };
        // Every frame starts on the fill ring, for the kernel to receive into.
        let mut fill = q.device.fill(FRAMES);
        let n = fill.insert((0..u64::from(FRAMES)).map(|i| i * u64::from(FRAME)));
        fill.commit();
        drop(fill);
        if n != FRAMES {
            return Err(format!(
                "{interface}@{queue}: the fill ring took {n} of {FRAMES} frames"
            ));
        }
        Ok(q)
    }

    /// The socket's descriptor, for the program's queue map.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.user.as_raw_fd()
    }

    /// Answers until `stop` is set.
    pub fn serve(mut self, serving: &Serving, stop: &AtomicBool, counts: &Counts) {
        // As the sockets' UDP loop: its own query counters, answers per
        // endpoint added up per batch, one clock read per batch.
        let mut snapshots = Snapshots::new(serving).counting_in(serving.metrics.worker());
        let mut answerer = Answerer::default()
            .with_latency(serving.latency.clone())
            .tallied();
        let mut slips = 0u32;
        let mut traffic = Pending::default();
        let mut out: Vec<u8> = Vec::with_capacity(4096);
        // Frames to give back to the kernel's fill ring.
        let mut free: Vec<u64> = Vec::with_capacity(FRAMES as usize);
        let mut received = [XdpDesc::default(); BATCH];
        let mut sending = [XdpDesc::default(); BATCH];
        let mut woke = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            self.recycle(&mut free);
            let n = self.receive(&mut received);
            let held = serving.gate.armed() && {
                let now = Instant::now();
                let held = serving.gate.check(woke, now);
                woke = now;
                held
            };
            if n == 0 {
                traffic.flush(&serving.traffic);
                // With need-wakeup, `poll` drives the transmit before it
                // sleeps (in copy mode it sends a `sendto`'s worth; in
                // zero-copy it wakes the driver): kick only for more.
                if self.tx.pending() > TX_BUDGET {
                    self.kick();
                }
                self.wait();
                continue;
            }
            if held {
                serving.gate.held(n as u64);
                free.extend(received[..n].iter().map(|d| d.addr));
                counts.dropped.fetch_add(n as u64, Ordering::Relaxed);
                continue;
            }
            let _clock = crate::clock::Batch::start();
            let cx = snapshots.context();
            let mut replies = 0;
            for d in &received[..n] {
                let answered = self.frames.chunk(d.addr).and_then(|chunk| {
                    let len = (d.len as usize).min(chunk.len());
                    let q = match frame::parse(&chunk[..len]) {
                        Ok(q) => q,
                        Err(e) => {
                            tracing::debug!(error = ?e, len, "xdp: frame dropped");
                            return None;
                        }
                    };
                    if refused_source_port(q.peer.port()) {
                        return None;
                    }
                    let pkt = &chunk[q.payload.clone()];
                    if !respond(
                        &cx,
                        &mut answerer,
                        &mut slips,
                        &mut traffic,
                        Transport::Udp,
                        pkt,
                        q.peer,
                        &mut out,
                    ) {
                        return None;
                    }
                    let room = chunk.len().min(self.max_frame);
                    frame::write_answer(&q, &out, &mut chunk[..room]).or_else(|| {
                        // Larger than the link: truncated, as the sockets
                        // send it, so the client retries over TCP.
                        if !crate::dns::wire::truncate_response(&mut out) {
                            return None;
                        }
                        frame::write_answer(&q, &out, &mut chunk[..room])
                    })
                });
                match answered {
                    Some(len) => {
                        sending[replies] = XdpDesc {
                            addr: d.addr,
                            len: len as u32,
                            options: 0,
                        };
                        replies += 1;
                    }
                    None => free.push(d.addr),
                }
            }
            traffic.after_batch(&serving.traffic);
            // The batch's bookkeeping is stored before its answers leave.
            answerer.settle();
            let sent = self.transmit(&sending[..replies]);
            // What the transmit ring had no room for is dropped.
            free.extend(sending[sent..replies].iter().map(|d| d.addr));
            counts.answered.fetch_add(sent as u64, Ordering::Relaxed);
            counts
                .dropped
                .fetch_add((n - sent) as u64, Ordering::Relaxed);
        }
    }

    /// Frames the kernel finished sending, and `free`, back to the fill ring.
    fn recycle(&mut self, free: &mut Vec<u64>) {
        {
            let mut done = self.device.complete(FRAMES);
            while let Some(addr) = done.read() {
                free.push(addr);
            }
            done.release();
        }
        if free.is_empty() {
            return;
        }
        // As for the transmit ring: ask again to refresh a short count.
        let mut n = 0;
        while n < free.len() {
            let mut fill = self.device.fill((free.len() - n) as u32);
            let k = fill.insert(free[n..].iter().copied()) as usize;
            fill.commit();
            drop(fill);
            if k == 0 {
                break;
            }
            n += k;
        }
        free.drain(..n);
        if self.device.needs_wakeup() {
            self.device.wake();
        }
    }

    /// Takes what the receive ring holds, up to `into.len()` frames.
    fn receive(&mut self, into: &mut [XdpDesc; BATCH]) -> usize {
        let mut rx = self.rx.receive(BATCH as u32);
        let mut n = 0;
        while let Some(d) = rx.read() {
            into[n] = d;
            n += 1;
        }
        rx.release();
        n
    }

    /// Puts `descs` on the transmit ring, and kicks the kernel once a
    /// `sendto`'s worth is queued (the loop kicks for the rest before it
    /// sleeps); returns how many the ring took.
    fn transmit(&mut self, descs: &[XdpDesc]) -> usize {
        if descs.is_empty() {
            return 0;
        }
        // A reservation is served from the ring's cached free count, which
        // may be short; asking again for the rest refreshes it.
        let mut n = 0;
        while n < descs.len() {
            let mut tx = self.tx.transmit((descs.len() - n) as u32);
            let k = tx.insert(descs[n..].iter().copied()) as usize;
            tx.commit();
            drop(tx);
            if k == 0 {
                break;
            }
            n += k;
        }
        if self.tx.pending() >= TX_BUDGET {
            self.kick();
        }
        n
    }

    /// Has the kernel send what the transmit ring holds. In copy mode one
    /// `sendto` sends at most 32 frames (the kernel's per-call budget): kick
    /// until the ring is empty, or the kernel stops taking frames (its
    /// queue is full; the next batch kicks again).
    fn kick(&mut self) {
        for _ in 0..KICKS {
            if self.tx.pending() == 0 || !self.tx.needs_wakeup() {
                return;
            }
            let before = self.tx.pending();
            self.tx.wake();
            if self.tx.pending() == before {
                return;
            }
        }
    }

    /// Sleeps until frames arrive, or [`POLL`].
    fn wait(&self) {
        super::kernel::wait_readable(self.rx.as_raw_fd(), POLL);
    }
}
