//! Sharing `/metrics` encodings between scrapers, with a bounded number of
//! responses in flight (see [`ScrapeCache`]), and the body that holds a
//! scrape's permit while it is sent.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

/// The connection a request came on, for handlers that may close it.
#[derive(Clone)]
pub(super) struct ConnHandle(pub(super) Arc<crate::net::slots::Conn>);

/// Scrapes served at once; more wait their turn (bounded by the admin
/// connection cap).
const SCRAPES_IN_FLIGHT: usize = 4;
/// Scrapes within this long of an encoding share it.
pub(super) const SCRAPE_REUSE: Duration = Duration::from_secs(1);
/// A scrape waiting longer than this for a permit closes the connection of
/// the oldest scrape still sending (a client that stopped reading).
const SCRAPE_PREEMPT: Duration = Duration::from_secs(5);

/// `/metrics` costs memory in proportion to the endpoints (a few KiB each),
/// so scrapes share one encoding: one scraper encodes (on a blocking
/// thread) while concurrent ones wait and then send the same bytes, and at
/// most `SCRAPES_IN_FLIGHT` responses are in flight, each holding its
/// permit until its body is sent. Memory stays at a few encodings however
/// many scrapers there are; and clients that ask and never read cannot
/// keep the permits: a scrape that waits `SCRAPE_PREEMPT` closes the
/// connection of the oldest one still sending.
pub struct ScrapeCache {
    permits: Arc<tokio::sync::Semaphore>,
    pub(super) last: tokio::sync::Mutex<Option<(std::time::Instant, bytes::Bytes)>>,
    /// Responses being sent: (id, since, connection), oldest first.
    sending: Arc<std::sync::Mutex<Vec<(u64, std::time::Instant, ConnHandle)>>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Default for ScrapeCache {
    fn default() -> Self {
        ScrapeCache {
            permits: Arc::new(tokio::sync::Semaphore::new(SCRAPES_IN_FLIGHT)),
            last: tokio::sync::Mutex::new(None),
            sending: Arc::default(),
            next_id: Default::default(),
        }
    }
}

impl ScrapeCache {
    /// A permit to send a scrape, closing the oldest sender's connection
    /// when the wait grows long; `None` after 30 s.
    pub(super) async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let wait = SCRAPE_PREEMPT.min(give_up - tokio::time::Instant::now());
            match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
                Ok(p) => return p.ok(),
                Err(_) if tokio::time::Instant::now() >= give_up => return None,
                Err(_) => {
                    let sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some((_, since, conn)) = sending.first()
                        && since.elapsed() >= SCRAPE_PREEMPT
                    {
                        warn!(
                            "a metrics scrape has not been read for a while; closing its connection for another"
                        );
                        conn.0.close();
                    }
                }
            }
        }
    }

    /// Lists a response being sent on `conn`, for [`ScrapeCache::permit`]
    /// to close when it stalls, until the returned guard goes with its body.
    pub(super) fn track(&self, conn: ConnHandle) -> Sending {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, std::time::Instant::now(), conn));
        Sending {
            id,
            list: self.sending.clone(),
        }
    }
}

/// Removes a response from [`ScrapeCache::sending`] when its body goes.
pub(super) struct Sending {
    id: u64,
    list: Arc<std::sync::Mutex<Vec<(u64, std::time::Instant, ConnHandle)>>>,
}

impl Drop for Sending {
    fn drop(&mut self) {
        let mut l = self.list.lock().unwrap_or_else(|p| p.into_inner());
        l.retain(|(id, _, _)| *id != self.id);
    }
}

/// A response body that holds a scrape permit until it is sent (or the
/// client goes away). It hands the shared encoding to hyper in slices
/// (no copy), one at a time as the connection drains, so the permit lasts
/// as long as the sending does.
pub(super) struct PermitBody {
    data: bytes::Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _sending: Option<Sending>,
}

impl PermitBody {
    /// `data`, sent under `permit` (and listed in `sending`).
    pub(super) fn new(
        data: bytes::Bytes,
        permit: tokio::sync::OwnedSemaphorePermit,
        sending: Option<Sending>,
    ) -> PermitBody {
        PermitBody {
            data,
            _permit: permit,
            _sending: sending,
        }
    }
}

/// Bytes handed to hyper at a time.
const SCRAPE_SLICE: usize = 64 * 1024;

impl http_body::Body for PermitBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.data.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.data.len().min(SCRAPE_SLICE);
        let slice = self.data.split_to(n);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(slice))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.len() as u64)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }
}
