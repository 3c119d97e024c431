//! TCP (RFC 7766): length-prefixed messages, pipelining, an idle timeout,
//! and connection slots with a per-client limit and eviction of the
//! longest-idle connection at the cap ([`crate::net::slots`]).
//!
//! Every complete query is answered as soon as it has arrived, whatever
//! follows it: the answers to everything complete in one read go out in one
//! write, even when part of the next message is already buffered, and a
//! client that half-closes still gets the answer to every complete query.
//!
//! A connection costs little: its buffers are allocated when data arrives
//! and released when large, and the answering state (scratch space, GeoIP
//! cache) belongs to the runtime's worker thread, not the connection.
//! The idle timeout counts from the last complete query, so a client that
//! trickles bytes is closed as surely as a silent one.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::dns::answer::{Answerer, Transport};
use crate::net::slots::{Admission, Conn, Slots};
use crate::server::respond::{Context, respond};
use crate::state::Serving;
use crate::traffic::Pending;

/// Buffers larger than this are freed once drained, so a connection that
/// once carried a large message does not keep its memory.
const KEEP: usize = 4096;
/// Read room for a message whose length is not known yet.
const FIRST_READ: usize = 512;
/// Answers buffered before they are written: a client that pipelines
/// queries and never reads cannot make the server hold more than this
/// (plus one answer) for it.
const OUT_MAX: usize = 16 * 1024;
/// Largest query accepted over TCP, as over UDP: a question and an OPT
/// with its options never come near it, and a connection announcing a
/// larger message is closed, so no client can make the server buffer
/// tens of kilobytes for it.
pub const MAX_QUERY: usize = 4096;

/// Accepts connections until `shutdown`; each connection runs in its own
/// task and holds a slot of `slots` (serving by every DNS listener).
pub async fn serve(
    listener: TcpListener,
    serving: Arc<Serving>,
    slots: Arc<Slots>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let local = listener.local_addr().ok();
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning, and say so
                // at most once a minute.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    warn!(?local, error = %e, "tcp accept failed");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.admit(peer.ip()) {
            Admission::Admitted(slot) => slot,
            Admission::ClientFull => {
                debug!(%peer, "tcp connection limit per client reached; closing");
                continue;
            }
        };
        let serving = serving.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let conn = slot.conn.clone();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = conn.evicted() => debug!(%peer, "tcp connection closed to make room (longest idle)"),
                r = connection(stream, peer, &serving, idle, &conn) => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "tcp connection ended");
                    }
                }
            }
            drop(slot);
        });
    }
}

/// Reads the length prefix of the message at the start of `buf`.
fn frame_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 2).then(|| u16::from_be_bytes([buf[0], buf[1]]) as usize)
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "idle timeout")
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    serving: &Serving,
    idle: Duration,
    conn: &Conn,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut inbuf: Vec<u8> = Vec::new();
    let mut outbuf: Vec<u8> = Vec::new();
    let mut deadline = Instant::now() + idle;
    let mut eof = false;
    loop {
        // Answer every complete message received so far (up to OUT_MAX of
        // answers at a time).
        let mut at = 0;
        let mut malformed = false;
        while outbuf.len() < OUT_MAX
            && let Some(len) = frame_len(&inbuf[at..])
        {
            if !(12..=MAX_QUERY).contains(&len) {
                // Not even a header, or larger than any query: nothing
                // sensible to reply to.
                malformed = true;
                break;
            }
            let Some(msg) = inbuf.get(at + 2..at + 2 + len) else {
                break;
            };
            answer_into(serving, msg, peer, &mut outbuf);
            at += 2 + len;
        }
        if at > 0 {
            inbuf.drain(..at);
            conn.touch();
            deadline = Instant::now() + idle;
        }
        if !outbuf.is_empty() {
            timeout_at(deadline, stream.write_all(&outbuf))
                .await
                .map_err(|_| timed_out())??;
            if outbuf.capacity() > KEEP {
                outbuf = Vec::new();
            } else {
                outbuf.clear();
            }
        }
        if malformed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "message shorter than a header or longer than a query",
            ));
        }
        if frame_len(&inbuf).is_some_and(|len| inbuf.len() >= 2 + len) {
            // More complete queries wait: answer them before reading more.
            continue;
        }
        if eof {
            // Half-closed: every complete query has its answer.
            return Ok(());
        }
        if inbuf.capacity() > KEEP && inbuf.len() <= KEEP / 2 {
            // What was large is drained: keep the rest in a small buffer.
            inbuf = inbuf.clone();
        }
        // Room for the message in progress (at most MAX_QUERY: checked
        // above once its length is known), or for a typical query.
        let want = match frame_len(&inbuf) {
            Some(len) if len <= MAX_QUERY => (2 + len).saturating_sub(inbuf.len()),
            Some(_) => 0,
            None => FIRST_READ,
        };
        inbuf.reserve(want.max(2));
        let n = timeout_at(deadline, stream.read_buf(&mut inbuf))
            .await
            .map_err(|_| timed_out())??;
        eof = n == 0;
    }
}

thread_local! {
    /// The answering state of this runtime worker thread: connections come
    /// and go, this stays (and its GeoIP cache stays warm).
    static WORKER: RefCell<Option<(Answerer, Vec<u8>)>> = const { RefCell::new(None) };
}

/// Answers `msg` and appends the framed reply (if any) to `out`.
fn answer_into(serving: &Serving, msg: &[u8], peer: SocketAddr, out: &mut Vec<u8>) {
    if serving.gate.holding_now() {
        // Re-syncing with the cluster after a stall (see `crate::stall`).
        serving.gate.held(1);
        return;
    }
    WORKER.with_borrow_mut(|w| {
        let (answerer, reply) = w.get_or_insert_with(|| {
            (
                Answerer::default().with_latency(serving.latency.clone()),
                Vec::new(),
            )
        });
        let snapshot = serving.table.load();
        let geo = serving.geo.load();
        let cx = Context {
            table: &snapshot,
            geo: geo.as_deref(),
            rrl: None,
            now: 0,
            serving,
            queries: None,
        };
        let mut traffic = Pending::default();
        let sent = respond(
            &cx,
            answerer,
            &mut 0,
            &mut traffic,
            Transport::Tcp,
            msg,
            peer,
            reply,
        );
        traffic.flush(&serving.traffic);
        if !sent {
            return;
        }
        out.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        out.extend_from_slice(reply);
        if reply.capacity() > KEEP * 4 {
            *reply = Vec::new();
        }
    });
}
