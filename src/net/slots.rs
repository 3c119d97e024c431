//! Connection slots for a TCP service (DNS over TCP, the admin API).
//!
//! A slot is taken when a connection is accepted and given back when it
//! ends. Two limits apply, as in NSD and Knot:
//!
//! - **per client** (a /32 for IPv4, a /64 for IPv6): a client at its limit
//!   has new connections closed at once, so one address cannot take every
//!   slot;
//! - **in total**: at the cap, the connection that has been idle longest is
//!   closed to admit the new one, so clients that hold every slot (or
//!   reconnect as soon as they are closed) cannot lock others out.
//!
//! "Idle" counts from the last time the connection did useful work (a
//! complete DNS query answered, an HTTP request read or a response
//! written), as the service reports with [`Conn::touch`]. The table is only
//! touched on accept and close, under a short lock; queries never take it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustc_hash::FxHashMap;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// One connection's shared state: when it last did useful work, whether a
/// request is in progress, and the signal that it was chosen for eviction.
#[derive(Debug)]
pub struct Conn {
    /// Microseconds since the table's epoch.
    last: AtomicU64,
    /// A request has arrived and its response is not written yet.
    busy: AtomicBool,
    /// Not read from yet: its request may be waiting unread while the
    /// accept loop runs, so it is not judged idle until its first read.
    fresh: AtomicBool,
    evict: CancellationToken,
    epoch: Instant,
}

impl Conn {
    /// Records useful work now (the connection is not idle).
    #[inline]
    pub fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// Marks a request in progress (`true`) or answered (`false`): a busy
    /// connection is evicted only when every connection is busy.
    #[inline]
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
    }

    /// Records that the connection's socket has been read from once.
    #[inline]
    pub fn read_attempted(&self) {
        if self.fresh.load(Ordering::Relaxed) {
            self.fresh.store(false, Ordering::Relaxed);
        }
    }

    /// Resolves when the connection was evicted to make room for another.
    pub fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.evict.cancelled()
    }

    /// True once evicted.
    pub fn is_evicted(&self) -> bool {
        self.evict.is_cancelled()
    }
}

/// The result of [`Slots::admit`].
#[derive(Debug)]
pub enum Admission {
    /// Serve the connection; dropping the slot gives it back.
    Admitted(Slot),
    /// The client already has its limit of connections: close this one.
    ClientFull,
}

/// A taken slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// The connection's shared state.
    pub conn: Arc<Conn>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(self.id);
    }
}

#[derive(Debug)]
struct Live {
    client: u128,
    conn: Arc<Conn>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    live: FxHashMap<u64, Live>,
    per_client: FxHashMap<u128, u32>,
}

/// The slot table of one service (shared by all its listeners).
#[derive(Debug)]
pub struct Slots {
    inner: Mutex<Inner>,
    capacity: usize,
    per_client: usize,
    epoch: Instant,
    /// Connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// Connections closed because their client was at its limit.
    pub refused: AtomicU64,
}

/// The per-client key: the /32 of an IPv4 address (IPv4-mapped IPv6
/// included), the /64 of an IPv6 one.
pub fn client_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 64) - 1),
    }
}

impl Slots {
    /// A table of `capacity` slots, at most `per_client` per client (no
    /// per-client limit when it is `capacity` or more: a client holding
    /// every slot then gives up its own longest-idle connection).
    pub fn new(capacity: usize, per_client: usize) -> Arc<Slots> {
        Arc::new(Slots {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            per_client: per_client.clamp(1, capacity.max(1)),
            epoch: Instant::now(),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots per client.
    pub fn per_client(&self) -> usize {
        self.per_client
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a connection from `peer`: refused when the client is
    /// at its limit; at the total cap, the longest-idle connection is
    /// evicted (its [`Conn::evicted`] resolves) to make room.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Admission {
        let client = client_key(peer);
        let mut inner = self.lock();
        if self.per_client < self.capacity
            && inner.per_client.get(&client).copied().unwrap_or(0) as usize >= self.per_client
        {
            drop(inner);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Admission::ClientFull;
        }
        if inner.live.len() >= self.capacity {
            // O(n) over at most `capacity` entries, only when full: the
            // longest idle, sparing connections not read from yet and
            // requests in progress while it can (under a reconnect flood,
            // a newcomer is otherwise evicted before its request is read).
            let oldest = inner
                .live
                .iter()
                .min_by_key(|(id, l)| {
                    (
                        l.conn.fresh.load(Ordering::Relaxed),
                        l.conn.busy.load(Ordering::Relaxed),
                        l.conn.last.load(Ordering::Relaxed),
                        **id,
                    )
                })
                .map(|(id, _)| *id);
            if let Some(id) = oldest
                && let Some(l) = inner.live.remove(&id)
            {
                forget_client(&mut inner, l.client);
                l.conn.evict.cancel();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let conn = Arc::new(Conn {
            last: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            fresh: AtomicBool::new(true),
            evict: CancellationToken::new(),
            epoch: self.epoch,
        });
        conn.touch();
        inner.live.insert(
            id,
            Live {
                client,
                conn: conn.clone(),
            },
        );
        *inner.per_client.entry(client).or_insert(0) += 1;
        drop(inner);
        Admission::Admitted(Slot {
            slots: self.clone(),
            id,
            conn,
        })
    }

    fn release(&self, id: u64) {
        let mut inner = self.lock();
        // Absent when it was evicted: its slot was handed over already.
        if let Some(l) = inner.live.remove(&id) {
            forget_client(&mut inner, l.client);
        }
    }
}

fn forget_client(inner: &mut Inner, client: u128) {
    if let Some(n) = inner.per_client.get_mut(&client) {
        *n -= 1;
        if *n == 0 {
            inner.per_client.remove(&client);
        }
    }
}

/// An I/O stream that reports every byte read or written as useful work,
/// for request-response protocols like HTTP: bytes read mark a request in
/// progress, bytes written mark it answered.
pub struct Touching<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S> Touching<S> {
    /// Wraps `inner`, touching `conn` on traffic.
    pub fn new(inner: S, conn: Arc<Conn>) -> Self {
        Touching { inner, conn }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Touching<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.conn.read_attempted();
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.touch();
            self.conn.set_busy(true);
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Touching<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.conn.touch();
            self.conn.set_busy(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.conn.touch();
            self.conn.set_busy(false);
        }
        r
    }

    // Vectored writes let hyper send a shared body (a metrics scrape)
    // without copying it into a buffer per connection.
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admitted(a: Admission) -> Slot {
        match a {
            Admission::Admitted(s) => s,
            Admission::ClientFull => panic!("refused"),
        }
    }

    #[test]
    fn per_client_limit_by_32_and_64() {
        let t = Slots::new(10, 2);
        let _a = admitted(t.admit(ip("192.0.2.1")));
        let _b = admitted(t.admit(ip("::ffff:192.0.2.1")));
        assert!(matches!(t.admit(ip("192.0.2.1")), Admission::ClientFull));
        let _c = admitted(t.admit(ip("192.0.2.2")));
        let _d = admitted(t.admit(ip("2001:db8::1")));
        let _e = admitted(t.admit(ip("2001:db8::ffff:2")));
        assert!(matches!(t.admit(ip("2001:db8::3")), Admission::ClientFull));
        let _f = admitted(t.admit(ip("2001:db8:0:1::1")));
        assert_eq!(t.refused.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_closed_connection_frees_its_client_slot() {
        let t = Slots::new(10, 1);
        let a = admitted(t.admit(ip("192.0.2.1")));
        drop(a);
        let _b = admitted(t.admit(ip("192.0.2.1")));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_evicted() {
        let t = Slots::new(3, 3);
        let a = admitted(t.admit(ip("192.0.2.1")));
        std::thread::sleep(std::time::Duration::from_millis(3));
        let b = admitted(t.admit(ip("192.0.2.1")));
        std::thread::sleep(std::time::Duration::from_millis(3));
        let c = admitted(t.admit(ip("192.0.2.1")));
        std::thread::sleep(std::time::Duration::from_millis(3));
        for s in [&a, &b, &c] {
            s.conn.read_attempted();
        }
        a.conn.touch(); // a works again: b is now the longest idle
        let d = admitted(t.admit(ip("198.51.100.1")));
        assert!(b.conn.is_evicted());
        assert!(!a.conn.is_evicted() && !c.conn.is_evicted() && !d.conn.is_evicted());
        assert_eq!(t.len(), 3);
        // The evicted slot's late drop does not free anyone else's.
        drop(b);
        assert_eq!(t.len(), 3);
        // Its client count went with it: the client may connect again.
        let _e = admitted(t.admit(ip("192.0.2.1")));
        assert!(c.conn.is_evicted());
        assert_eq!(t.evicted.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn requests_in_progress_are_spared() {
        let t = Slots::new(2, 2);
        let a = admitted(t.admit(ip("192.0.2.1")));
        let b = admitted(t.admit(ip("192.0.2.1")));
        a.conn.read_attempted();
        b.conn.read_attempted();
        a.conn.set_busy(true);
        let c = admitted(t.admit(ip("192.0.2.2")));
        assert!(b.conn.is_evicted() && !a.conn.is_evicted());
        // Not read from yet: spared while a connection that was can go.
        let d = admitted(t.admit(ip("192.0.2.3")));
        assert!(a.conn.is_evicted() && !c.conn.is_evicted());
        // Every connection fresh: the longest idle goes after all.
        let _e = admitted(t.admit(ip("192.0.2.4")));
        assert!(c.conn.is_evicted() && !d.conn.is_evicted());
    }
}
