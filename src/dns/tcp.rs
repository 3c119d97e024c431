//! TCP (RFC 7766): length-prefixed messages, pipelining, an idle timeout
//! and a cap on open connections.
//!
//! Queries on one connection are answered in order as soon as they are read;
//! responses are flushed when no further query is already buffered, so a
//! pipelining client gets its answers in few segments. Every read and write
//! runs under the idle timeout, so a slow or silent client costs one task
//! and at most 64 KiB until it is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::answer::{Answerer, Transport};
use crate::state::Shared;

/// Accepts connections until `shutdown`; each connection runs in its own task.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    idle: Duration,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                warn!(?local, error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(%peer, "tcp connection limit reached; closing");
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = connection(stream, peer, &shared, idle) => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "tcp connection ended");
                    }
                }
            }
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    idle: Duration,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(4096, rd);
    let mut wr = BufWriter::with_capacity(8192, wr);
    let mut answerer = Answerer::default();
    let mut msg = Vec::new();
    let mut out = Vec::with_capacity(1024);
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "idle timeout");
    loop {
        let len = match timeout(idle, rd.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out()),
        };
        if len < 12 {
            // Not even a header: nothing sensible to reply to.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "message shorter than a header",
            ));
        }
        msg.resize(len, 0);
        match timeout(idle, rd.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out()),
        }
        let snapshot = shared.table.load();
        let geo = shared.geo.load();
        if let Some(summary) = answerer.answer(
            &snapshot,
            geo.as_deref(),
            &msg,
            Transport::Tcp,
            peer.ip(),
            &mut out,
        ) {
            shared.metrics.query(Transport::Tcp, summary.rcode);
            debug!(%peer, rcode = summary.rcode, len = out.len(), "tcp answer");
            let prefix = (out.len() as u16).to_be_bytes();
            let write = async {
                wr.write_all(&prefix).await?;
                wr.write_all(&out).await
            };
            timeout(idle, write).await.map_err(|_| timed_out())??;
        }
        // Flush once the pipeline of already-received queries is drained.
        if rd.buffer().is_empty() {
            timeout(idle, wr.flush()).await.map_err(|_| timed_out())??;
        }
    }
}
