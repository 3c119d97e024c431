//! The AF_XDP fast path (`[dns.xdp]`, Linux): an XDP program steers UDP
//! datagrams for our addresses to one AF_XDP socket per receive queue,
//! each served by its own thread with the same answer function as the
//! sockets path ([`crate::server::respond`]); every other frame goes to the
//! kernel. DNS over TCP, and what the program passes (fragments, VLAN
//! tags, IP options, IPv6 extension headers), are answered by the sockets
//! of `dns.listen`, which stay open.

mod frame;
mod kernel;
mod program;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tracing::{info, warn};

use crate::config::XdpSettings;
use crate::state::Serving;

pub use program::{Mode, built as program_built};

/// An interface the XDP path serves.
#[derive(Debug, Clone)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// How the program runs there.
    pub mode: Mode,
    /// The queues with a socket of ours.
    pub queues: Vec<u32>,
}

/// What the XDP path is doing, for `status` and `/metrics`.
#[derive(Debug)]
pub struct Status {
    /// The interfaces served.
    pub interfaces: Vec<Interface>,
    /// The addresses answered through XDP.
    pub listen: Vec<SocketAddr>,
    counts: Vec<Arc<worker::Counts>>,
    /// Taken (and so detached) when the workers stop.
    program: Mutex<Option<program::Program>>,
}

impl Status {
    /// Frames so far, by action: passed to the kernel (the program's
    /// per-CPU counts), redirected to our sockets, answered and dropped
    /// (malformed, refused, rate limited, held while stalled: the
    /// workers').
    pub fn packets(&self) -> [u64; 4] {
        let (passed, _) = self
            .program
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.counts()))
            .unwrap_or_default();
        let sum = |f: fn(&worker::Counts) -> u64| self.counts.iter().map(|c| f(c)).sum();
        let answered = sum(|c| c.answered.load(Ordering::Relaxed));
        let dropped = sum(|c| c.dropped.load(Ordering::Relaxed));
        // Every frame redirected is answered or dropped by a worker (one
        // counter less per packet in the program).
        [passed, answered + dropped, answered, dropped]
    }
}

/// The running XDP path: its threads, and the program (detached when this
/// is dropped, after the threads stop).
pub struct Running {
    /// What it serves.
    pub status: Arc<Status>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Running {
    /// Stops the workers and waits for them (within their poll
    /// interval), then detaches the program: frames go to the kernel again.
    pub fn join(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        if let Ok(mut p) = self.status.program.lock() {
            p.take();
        }
    }
}

/// Starts the XDP path: loads and attaches the program, opens a socket
/// per queue and starts its worker. Any failure stops what was started
/// and names the cause.
pub fn start(settings: &XdpSettings, serving: Arc<Serving>) -> Result<Running, String> {
    // The workers' own flag: a failed start stops them and nothing else.
    let stop = Arc::new(AtomicBool::new(false));
    let mut program = program::Program::load(&settings.listen).map_err(|e| e.to_string())?;
    let mut threads = Vec::new();
    let mut interfaces = Vec::new();
    let mut all_counts = Vec::new();
    // Started queue by queue; on an error the caller sets `stop`, and the
    // threads already started end.
    let started = (|| {
        for (name, only) in &settings.interfaces {
            let mtu = kernel::mtu(name).map_err(|e| no_interface(name, &e))?;
            let ids: Vec<u32> = match only {
                Some(q) => vec![*q],
                None => match kernel::rx_queues(name).map_err(|e| no_interface(name, &e))? {
                    Some(n) => (0..n).collect(),
                    None => {
                        warn!(interface = %name, "xdp: the driver does not say how many queues it has: serving queue 0 alone (name queues as \"{name}@N\" to serve others)");
                        vec![0]
                    }
                },
            };
            for &q in &ids {
                let counts = Arc::new(worker::Counts::default());
                let (fd, thread) = spawn(name, q, mtu, &serving, &stop, &counts)?;
                threads.push(thread);
                all_counts.push(counts);
                program.add_socket(q, &fd).map_err(|e| e.to_string())?;
            }
            let mode = program.attach(name).map_err(|e| e.to_string())?;
            if mode == Mode::Generic {
                warn!(interface = %name, "xdp: the driver cannot run XDP programs: generic mode, which costs about what sockets cost");
            }
            interfaces.push(Interface {
                name: name.clone(),
                mode,
                queues: ids,
            });
        }
        Ok::<(), String>(())
    })();
    if let Err(e) = started {
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        return Err(e);
    }
    let status = Arc::new(Status {
        interfaces,
        listen: settings.listen.clone(),
        counts: all_counts,
        program: Mutex::new(Some(program)),
    });
    for i in &status.interfaces {
        info!(interface = %i.name, mode = i.mode.as_str(), queues = ?i.queues, listen = ?status.listen, "xdp: answering udp");
    }
    Ok(Running {
        status,
        threads,
        stop,
    })
}

/// Starts the worker of `interface`@`queue`: the thread opens the socket
/// (its memory never leaves the thread) and sends back its descriptor.
fn spawn(
    interface: &str,
    queue: u32,
    mtu: usize,
    serving: &Arc<Serving>,
    stop: &Arc<AtomicBool>,
    counts: &Arc<worker::Counts>,
) -> Result<(std::os::fd::RawFd, JoinHandle<()>), String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (serving, stop, counts) = (serving.clone(), stop.clone(), counts.clone());
    let name = interface.to_string();
    let thread = std::thread::Builder::new()
        .name(format!("dns-xdp-{interface}@{queue}"))
        .spawn(move || match worker::Queue::open(&name, queue, mtu) {
            Ok(q) => {
                let _ = tx.send(Ok(q.fd()));
                q.serve(&serving, &stop, &counts);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| format!("cannot start the XDP worker for {interface}@{queue}: {e}"))?;
    match rx.recv() {
        Ok(Ok(fd)) => Ok((fd, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(format!(
                "the XDP worker for {interface}@{queue} ended at start"
            ))
        }
    }
}

/// Why `name` cannot be served.
fn no_interface(name: &str, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(nix::libc::ENODEV) {
        format!(
            "no interface {name} here: dns.xdp.interfaces names interfaces of this machine (`ip link`)"
        )
    } else {
        format!("cannot read interface {name}: {e}")
    }
}
