//! Connection slots for a TCP service (DNS over TCP, the admin API).
//!
//! A slot is taken when a connection is accepted and given back when it
//! ends. Two limits apply, as in NSD and Knot:
//!
//! - **per client** (a /32 for IPv4, a /64 for IPv6): a client at its limit
//!   has new connections closed at once, so one address cannot take every
//!   slot;
//! - **in total**: at the cap a connection is closed to admit the new one,
//!   so clients that hold every slot (or reconnect as soon as they are
//!   closed) cannot lock others out. The one closed is chosen fairly and
//!   idle first: from the network (a /24, or a /48 for IPv6) holding the
//!   most slots, first a connection that never asked anything in its grace
//!   period ([`GRACE`]), then the one idle longest (sparing requests in
//!   progress), and only then a newcomer still in its grace period. A
//!   flood from one network thus evicts its own connections before anyone
//!   else's, and since even a newcomer can be evicted when every slot is
//!   one, clients that connect and say nothing cannot hold the slots.
//!
//! "Idle" counts from the last time the connection did useful work (a
//! complete DNS query answered, an HTTP request read or a response
//! written), as the service reports with [`Conn::touch`]. The table is only
//! touched on accept and close, under a short lock; queries never take it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// How long a new connection is spared from eviction while it has not
/// sent its first query: time for its query to arrive over a slow path.
pub const GRACE: Duration = Duration::from_millis(500);

/// One connection's shared state: when it last did useful work, whether a
/// request is in progress, and the signal that it was chosen for eviction.
#[derive(Debug)]
pub struct Conn {
    /// Microseconds since the table's epoch.
    last: AtomicU64,
    /// When it was admitted, microseconds since the table's epoch.
    admitted: u64,
    /// A request has arrived and its response is not written yet.
    busy: AtomicBool,
    /// It has sent a query (or request): out of its grace period.
    proven: AtomicBool,
    evict: CancellationToken,
    epoch: Instant,
}

impl Conn {
    /// Records useful work now (the connection is not idle, and has
    /// asked something).
    #[inline]
    pub fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        if !self.proven.load(Ordering::Relaxed) {
            self.proven.store(true, Ordering::Relaxed);
        }
    }

    /// Marks a request in progress (`true`) or answered (`false`): a busy
    /// connection is evicted only when every connection is busy.
    #[inline]
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
    }

    /// Resolves when the connection was evicted to make room for another.
    pub fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.evict.cancelled()
    }

    /// True once evicted.
    pub fn is_evicted(&self) -> bool {
        self.evict.is_cancelled()
    }

    /// Eviction rank: 0 never asked anything and its grace period is over,
    /// 1 has asked, 2 a newcomer in its grace period (lower goes first).
    fn rank(&self, now: u64) -> u8 {
        if self.proven.load(Ordering::Relaxed) {
            1
        } else if now.saturating_sub(self.admitted) < GRACE.as_micros() as u64 {
            2
        } else {
            0
        }
    }

    /// Closes the connection now, as an eviction does (its task sees
    /// [`Conn::evicted`] resolve); its slot is given back when the task ends.
    pub fn close(&self) {
        self.evict.cancel();
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
    /// Index in the table and generation (an index is reused).
    at: (usize, u64),
    /// The connection's shared state.
    pub conn: Arc<Conn>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(self.at);
    }
}

#[derive(Debug)]
struct Live {
    generation: u64,
    client: u128,
    network: u128,
    conn: Arc<Conn>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    /// The table, by index; `free` lists the empty indexes.
    live: Vec<Option<Live>>,
    free: Vec<usize>,
    count: usize,
    per_client: FxHashMap<u128, u32>,
    per_network: FxHashMap<u128, u32>,
}

/// Most entries looked at to choose a connection to evict: the whole table
/// up to this size, a window of it (starting anywhere) beyond, so a full
/// table of 65,535 costs an accept no more than one of 4,096.
const SCAN: usize = 4096;

impl Inner {
    fn remove(&mut self, index: usize) -> Option<Live> {
        let l = self.live.get_mut(index)?.take()?;
        self.free.push(index);
        self.count -= 1;
        decrement(&mut self.per_client, l.client);
        decrement(&mut self.per_network, l.network);
        Some(l)
    }
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

/// The network key for fair eviction: the /24 of an IPv4 address, the /48
/// of an IPv6 one.
pub fn network_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()) & !0xFF,
        IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 80) - 1),
    }
}

fn decrement(map: &mut FxHashMap<u128, u32>, key: u128) {
    if let Some(n) = map.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            map.remove(&key);
        }
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
        self.lock().count
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a connection from `peer`: refused when the client is
    /// at its limit; at the total cap, another connection is evicted (its
    /// [`Conn::evicted`] resolves) to make room, chosen as the module
    /// documentation says.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Admission {
        let client = client_key(peer);
        let network = network_key(peer);
        let now = self.epoch.elapsed().as_micros() as u64;
        let mut inner = self.lock();
        if self.per_client < self.capacity
            && inner.per_client.get(&client).copied().unwrap_or(0) as usize >= self.per_client
        {
            drop(inner);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Admission::ClientFull;
        }
        if inner.count >= self.capacity {
            let n = inner.live.len();
            let start = if n > SCAN { fastrand::usize(..n) } else { 0 };
            let victim = (0..n.min(SCAN))
                .map(|k| (start + k) % n)
                .filter_map(|i| inner.live[i].as_ref().map(|l| (i, l)))
                .min_by_key(|(_, l)| {
                    (
                        std::cmp::Reverse(inner.per_network.get(&l.network).copied().unwrap_or(0)),
                        l.conn.rank(now),
                        l.conn.busy.load(Ordering::Relaxed),
                        l.conn.last.load(Ordering::Relaxed),
                        // Ties (the same microsecond): the older admission.
                        l.generation,
                    )
                })
                .map(|(i, _)| i);
            if let Some(i) = victim
                && let Some(l) = inner.remove(i)
            {
                l.conn.evict.cancel();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        inner.generation += 1;
        let generation = inner.generation;
        let conn = Arc::new(Conn {
            last: AtomicU64::new(now),
            admitted: now,
            busy: AtomicBool::new(false),
            proven: AtomicBool::new(false),
            evict: CancellationToken::new(),
            epoch: self.epoch,
        });
        let live = Live {
            generation,
            client,
            network,
            conn: conn.clone(),
        };
        let index = match inner.free.pop() {
            Some(i) => {
                inner.live[i] = Some(live);
                i
            }
            None => {
                inner.live.push(Some(live));
                inner.live.len() - 1
            }
        };
        inner.count += 1;
        *inner.per_client.entry(client).or_insert(0) += 1;
        *inner.per_network.entry(network).or_insert(0) += 1;
        drop(inner);
        Admission::Admitted(Slot {
            slots: self.clone(),
            at: (index, generation),
            conn,
        })
    }

    fn release(&self, (index, generation): (usize, u64)) {
        let mut inner = self.lock();
        // Another connection's when this one was evicted and its index
        // handed over: the generation tells.
        if inner
            .live
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|l| l.generation == generation)
        {
            inner.remove(index);
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
            other => panic!("not admitted: {other:?}"),
        }
    }

    fn pause() {
        std::thread::sleep(std::time::Duration::from_millis(3));
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
        pause();
        let b = admitted(t.admit(ip("192.0.2.1")));
        pause();
        let c = admitted(t.admit(ip("192.0.2.1")));
        pause();
        for s in [&b, &c, &a] {
            s.conn.touch(); // a works last: b is now the longest idle
            pause();
        }
        let d = admitted(t.admit(ip("192.0.2.9")));
        assert!(b.conn.is_evicted());
        assert!(!a.conn.is_evicted() && !c.conn.is_evicted() && !d.conn.is_evicted());
        assert_eq!(t.len(), 3);
        // The evicted slot's late drop does not free anyone else's.
        drop(b);
        assert_eq!(t.len(), 3);
        // Its client count went with it: the client may connect again.
        d.conn.touch();
        let _e = admitted(t.admit(ip("192.0.2.1")));
        assert!(c.conn.is_evicted());
        assert_eq!(t.evicted.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_network_holding_the_most_slots_gives_one_up() {
        let t = Slots::new(4, 4);
        let legit = admitted(t.admit(ip("198.51.100.7")));
        legit.conn.touch();
        pause();
        // Three connections from one /24, busier than the legit one.
        let flood: Vec<_> = (1..=3)
            .map(|i| {
                let s = admitted(t.admit(ip(&format!("203.0.113.{i}"))));
                s.conn.touch();
                s
            })
            .collect();
        let _new = admitted(t.admit(ip("192.0.2.1")));
        assert!(!legit.conn.is_evicted(), "the lone client was evicted");
        assert_eq!(flood.iter().filter(|s| s.conn.is_evicted()).count(), 1);
    }

    #[test]
    fn silent_connections_go_before_those_that_asked() {
        let t = Slots::new(2, 2);
        let asked = admitted(t.admit(ip("192.0.2.1")));
        asked.conn.touch();
        pause();
        let silent = admitted(t.admit(ip("198.51.100.1")));
        std::thread::sleep(GRACE + std::time::Duration::from_millis(20));
        // `asked` has been idle longer, but `silent` never asked anything.
        let _new = admitted(t.admit(ip("203.0.113.1")));
        assert!(silent.conn.is_evicted() && !asked.conn.is_evicted());
    }

    #[test]
    fn a_large_table_is_scanned_in_a_window() {
        let t = Slots::new(SCAN * 2, SCAN * 2);
        let held: Vec<_> = (0..SCAN * 2)
            .map(|i| {
                let s = admitted(t.admit(ip(&format!("10.{}.{}.1", i / 256, i % 256))));
                s.conn.touch();
                s
            })
            .collect();
        // Each newcomer asks at once: on a busy machine the 100 admissions
        // can outlast the grace period, and a newcomer that never asked
        // would then rightly go first.
        let new: Vec<_> = (0..100)
            .map(|i| {
                let s = admitted(t.admit(ip(&format!("172.16.{i}.1"))));
                s.conn.touch();
                s
            })
            .collect();
        assert_eq!(t.len(), SCAN * 2);
        assert!(new.iter().all(|s| !s.conn.is_evicted()));
        assert_eq!(held.iter().filter(|s| s.conn.is_evicted()).count(), 100);
    }

    #[test]
    fn requests_in_progress_and_newcomers_are_spared() {
        let t = Slots::new(2, 2);
        let a = admitted(t.admit(ip("192.0.2.1")));
        let b = admitted(t.admit(ip("192.0.2.1")));
        a.conn.touch();
        b.conn.touch();
        a.conn.set_busy(true);
        let c = admitted(t.admit(ip("192.0.2.2")));
        assert!(b.conn.is_evicted() && !a.conn.is_evicted());
        // c has not asked anything yet: in its grace period the busy a goes.
        let d = admitted(t.admit(ip("192.0.2.3")));
        assert!(a.conn.is_evicted() && !c.conn.is_evicted());
        // Every slot a newcomer in its grace period: the oldest goes, so
        // connections that say nothing cannot hold the slots.
        let _e = admitted(t.admit(ip("192.0.2.4")));
        assert!(c.conn.is_evicted() && !d.conn.is_evicted());
    }
}
