//! The latency table: how long a round trip takes from each client network
//! (an IPv4 /24 or IPv6 /56, [`Network`]) to each endpoint, learned from
//! measurements (real user beacons, operators' own samples, the cluster's
//! peers) and read by performance routing. A leaf: it knows networks,
//! clocks and files, never the configuration or routing.
//!
//! # The estimate
//!
//! Per (network, endpoint): an exponentially weighted mean of ln(RTT),
//! reported as its exponential (a geometric mean, so one 10 s outlier
//! moves a 20 ms estimate by a factor, not by seconds; a sample more than
//! 4x off an established estimate is clamped to 4x), the number of samples
//! behind it, decayed with age (`half_life`: a sample a half-life old
//! counts a half), and the newest sample's time. The mean weighs samples by
//! their decayed count, but never less than 1/32 for a new one, so an
//! estimate follows a network whose latency changed within ~30 samples.
//! Routing uses it once the decayed count reaches `min_samples`.
//!
//! # Bounds and concurrency
//!
//! At most `max_networks` networks (and 16 endpoints a network); a new
//! network in a full table drops the network with the fewest decayed
//! samples (the oldest and least used) from its shard. Rows are 20 bytes
//! in 4096 copy-on-write shards (`table`): the DNS path loads a shard
//! without a lock or allocation; writers (one at a time, under a mutex the
//! DNS path never takes) copy one shard per write.

mod file;
mod persist;
mod policy;
mod read;
mod rows;
mod table;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};

pub use file::{FileError, FileTable, stamp as file_stamp};
pub use persist::{load as load_saved, path_for as saved_path, save};

use crate::netblock::Network;
use policy::check;
pub use policy::{Band, Policy, Rejected, reaches};
pub use read::{Behind, From, Lookup, Reader};
pub use rows::network_of_key;
use rows::{Mapping, Sample, apply, clone_with_room, from_bf16, join, merge_weight, split};
use table::{Row, Sharded};

/// Longest round trip accepted: longer is a broken measurement.
pub const MAX_RTT: Duration = Duration::from_secs(60);
/// Endpoints kept per network (the weakest goes for a new one).
pub const MAX_ENDPOINTS_PER_NETWORK: usize = 16;
/// Client networks kept per resolver network.
pub const MAX_CLIENTS_PER_RESOLVER: usize = 8;
/// Default `min_samples`.
pub const DEFAULT_MIN_SAMPLES: u32 = 30;
/// Default `max_networks`.
pub const DEFAULT_MAX_NETWORKS: usize = 1_000_000;
/// Default `half_life`.
pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(86_400);
/// Records kept for the cluster to gossip (the newest; see
/// [`Latency::outbox_since`]).
pub const OUTBOX: usize = 4096;

/// Smallest weight a new sample gets in the mean.
const ALPHA_MIN: f64 = 1.0 / 32.0;
/// ln(4): how far an established estimate lets one sample pull.
const CLAMP: f64 = 1.386_294_361;
/// Fixed point of ln(ms) in a row.
const LN_SCALE: f64 = 2048.0;
/// Rows whose decayed count fell below this are dropped (about 4.3
/// half-lives after the last sample of a single-sample row).
const FORGET_BELOW: f32 = 0.05;

/// An endpoint's identity in the table, from its name `PROFILE/ENDPOINT`:
/// a 32-bit FNV-1a hash, the same on every node, across reloads and
/// versions (saved files and gossip carry it). The profile is compared as
/// a DNS name (any case, with or without the trailing dot), the endpoint as
/// written. Computed when the configuration compiles, so the answer path
/// never hashes a string.
pub fn endpoint_id(name: &str) -> u32 {
    match name.split_once('/') {
        Some((profile, endpoint)) => endpoint_id_of(profile, endpoint),
        None => endpoint_id_of("", name),
    }
}

/// [`endpoint_id`] of `profile` and `endpoint` given apart.
pub fn endpoint_id_of(profile: &str, endpoint: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    let profile = profile.trim();
    for b in profile.strip_suffix('.').unwrap_or(profile).bytes() {
        eat(b.to_ascii_lowercase());
    }
    eat(b'/');
    for b in endpoint.bytes() {
        eat(b);
    }
    (h ^ (h >> 32)) as u32
}

/// A round trip estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimate, in milliseconds.
    pub rtt_ms: f64,
    /// Samples behind it, decayed to now.
    pub samples: f64,
    /// When the newest sample was taken (Unix seconds).
    pub newest: u32,
    /// From the latency file (`[latency] file`), not learned.
    pub from_file: bool,
}

/// One measurement as ingested and gossiped: `samples` round trips of
/// about `rtt_ms` (a geometric mean) from `net` to endpoint `ep`, taken at
/// `at` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// The client network.
    pub net: Network,
    /// [`endpoint_id`] of `PROFILE/ENDPOINT`.
    pub ep: u32,
    /// The round trip, in milliseconds.
    pub rtt_ms: f64,
    /// How many samples it stands for.
    pub samples: u32,
    /// Unix seconds.
    pub at: u32,
}

/// What a node gossips of what it took in itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gossiped {
    /// A measurement.
    Sample(Record),
    /// A resolver seen asking for a client network (one beacon).
    Resolver {
        /// The resolver's network.
        resolver: Network,
        /// The client's network.
        client: Network,
        /// Unix seconds.
        at: u32,
    },
}

/// Queues `g` for gossip under the next number (the oldest dropped when
/// full).
fn push_outbox(w: &mut Writer, g: Gossiped) {
    w.seq += 1;
    if w.outbox.len() == OUTBOX {
        w.outbox.pop_front();
    }
    let seq = w.seq;
    w.outbox.push_back((seq, g));
}

/// Counters, read by metrics and the API.
#[derive(Debug, Default)]
pub struct Stats {
    /// Samples recorded from this node's own ingest (beacons, the API).
    pub accepted: AtomicU64,
    /// Samples received from the cluster's peers.
    pub from_cluster: AtomicU64,
    /// Samples refused ([`Rejected`]).
    pub rejected: AtomicU64,
    /// Networks dropped to make room.
    pub evicted: AtomicU64,
    /// Networks in the learned table.
    pub networks: AtomicUsize,
    /// Resolver networks mapped.
    pub resolvers: AtomicUsize,
    /// Bytes the table holds.
    pub bytes: AtomicUsize,
}

/// What the single writer keeps.
#[derive(Default)]
struct Writer {
    /// Networks per shard.
    nets: Vec<u32>,
    /// Resolver networks per shard.
    resolvers: Vec<u32>,
    /// The newest local records, for gossip: (sequence, record).
    outbox: VecDeque<(u64, Gossiped)>,
    /// The last sequence number given.
    seq: u64,
    /// Changed since the last save.
    dirty: bool,
}

/// The shared latency table: the answer path reads it, real user
/// measurements, the admin API, the latency file and the cluster write it.
/// `Send + Sync`; one per process (`Serving::latency`).
pub struct Latency {
    samples: Sharded<Sample>,
    resolvers: Sharded<Mapping>,
    /// The latency file's rows: written by the file watcher.
    file: ArcSwap<FileTable>,
    /// How many (0: readers skip loading it).
    file_rows: AtomicUsize,
    /// `[latency]`: written at start-up and by reloads.
    policy: ArcSwap<Policy>,
    writer: Mutex<Writer>,
    /// Woken when a local record is queued (the cluster task publishes it).
    waker: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
    /// Counters.
    pub stats: Stats,
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency")
            .field("networks", &self.stats.networks.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new(Policy::default())
    }
}

impl Latency {
    /// An empty table.
    pub fn new(policy: Policy) -> Latency {
        let l = Latency {
            samples: Sharded::default(),
            resolvers: Sharded::default(),
            file: ArcSwap::from_pointee(FileTable::default()),
            file_rows: AtomicUsize::new(0),
            policy: ArcSwap::from_pointee(policy),
            writer: Mutex::new(Writer {
                nets: vec![0; table::SHARDS],
                resolvers: vec![0; table::SHARDS],
                ..Writer::default()
            }),
            waker: std::sync::OnceLock::new(),
            stats: Stats::default(),
        };
        l.update_bytes();
        l
    }

    /// The policy in force.
    pub fn policy(&self) -> Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// Applies `[latency]` (a reload). A smaller `max_networks` takes
    /// effect as networks arrive (each shard drops down to its share).
    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    /// Replaces the latency file's rows.
    pub fn set_file(&self, file: FileTable) {
        self.file_rows.store(file.len(), Ordering::Relaxed);
        self.file.store(Arc::new(file));
        self.update_bytes();
    }

    /// The latency file's rows.
    pub fn file(&self) -> Guard<Arc<FileTable>> {
        self.file.load()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One measured round trip from a client network to an endpoint
    /// (`PROFILE/ENDPOINT`): the single ingest point of local
    /// measurements (beacons, the admin API). Also queued for the cluster.
    pub fn record(
        &self,
        net: Network,
        endpoint: &str,
        rtt: Duration,
        now: SystemTime,
    ) -> Result<(), Rejected> {
        self.record_many(net, endpoint, rtt, 1, now)
    }

    /// [`Latency::record`] for `samples` round trips whose geometric mean
    /// is `rtt` (an operator's aggregate).
    pub fn record_many(
        &self,
        net: Network,
        endpoint: &str,
        rtt: Duration,
        samples: u64,
        now: SystemTime,
    ) -> Result<(), Rejected> {
        let rec = match check(endpoint, rtt, samples) {
            Ok(()) => Record {
                net,
                ep: endpoint_id(endpoint),
                rtt_ms: rtt.as_secs_f64() * 1000.0,
                samples: samples as u32,
                at: crate::clock::unix_secs(now),
            },
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.ingest(&[rec], true);
        Ok(())
    }

    /// A resolver seen asking on behalf of a client network (one beacon's
    /// weight). Also queued for the cluster.
    pub fn record_resolver(&self, resolver: Network, client: Network, now: SystemTime) {
        let at = crate::clock::unix_secs(now);
        self.map_resolver(resolver, client, at, true);
        if let Some(w) = self.waker.get() {
            w.notify_one();
        }
    }

    /// Adds one beacon's weight to the mapping of `resolver` to `client`
    /// at `at` (Unix seconds): this node's own (`local`: queued for
    /// gossip) or a peer's.
    pub fn map_resolver(&self, resolver: Network, client: Network, at: u32, local: bool) {
        let policy = self.policy.load();
        let mut w = self.lock();
        if local {
            push_outbox(
                &mut w,
                Gossiped::Resolver {
                    resolver,
                    client,
                    at,
                },
            );
        }
        let r = resolver.key();
        let shard = table::shard_of(r);
        let mut rows = clone_with_room(&self.resolvers.shard(shard), 1);
        let (lo, hi) = table::range_of(&rows, r);
        let client_key = client.key();
        match rows[lo..hi].binary_search_by_key(&client_key, |m| m.sub()) {
            Ok(i) => {
                let m = &mut rows[lo + i];
                let (weight, newest) =
                    merge_weight(&policy, f64::from(m.weight), m.newest, 1.0, at);
                m.weight = weight as f32;
                m.newest = newest;
            }
            Err(_) => {
                if lo == hi && w.resolvers[shard] as usize >= policy.resolvers_per_shard() {
                    let score = |m: &Mapping| {
                        f64::from(m.weight) * policy.decay(at.saturating_sub(m.newest))
                    };
                    if let Some(gone) = table::weakest(&rows, r, score) {
                        table::remove_network(&mut rows, gone);
                        w.resolvers[shard] -= 1;
                    }
                }
                let (lo, hi) = table::range_of(&rows, r);
                if hi - lo >= MAX_CLIENTS_PER_RESOLVER {
                    let weakest = (lo..hi)
                        .min_by(|&a, &b| {
                            let s = |m: &Mapping| {
                                f64::from(m.weight) * policy.decay(at.saturating_sub(m.newest))
                            };
                            s(&rows[a]).total_cmp(&s(&rows[b]))
                        })
                        .unwrap_or(lo);
                    rows.remove(weakest);
                }
                if lo == hi {
                    w.resolvers[shard] += 1;
                }
                let (lo, hi) = table::range_of(&rows, r);
                let at_i = lo + rows[lo..hi].partition_point(|m| m.sub() < client_key);
                rows.insert(
                    at_i,
                    Mapping {
                        resolver: split(r),
                        client: split(client_key),
                        newest: at,
                        weight: 1.0,
                    },
                );
            }
        }
        self.resolvers.store(shard, rows);
        w.dirty = true;
        self.stats.resolvers.store(
            w.resolvers.iter().map(|&n| n as usize).sum(),
            Ordering::Relaxed,
        );
        drop(w);
        self.update_bytes();
    }

    /// Records measurements: this node's own (`local`: counted as
    /// accepted and queued for gossip) or a peer's.
    pub fn ingest(&self, records: &[Record], local: bool) {
        if records.is_empty() {
            return;
        }
        let policy = self.policy.load();
        let mut w = self.lock();
        // One copy per shard touched.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| table::shard_of(records[i].net.key()));
        let mut i = 0;
        while i < order.len() {
            let shard = table::shard_of(records[order[i]].net.key());
            let mut j = i;
            while j < order.len() && table::shard_of(records[order[j]].net.key()) == shard {
                j += 1;
            }
            let mut rows = clone_with_room(&self.samples.shard(shard), j - i);
            for &k in &order[i..j] {
                let added = apply(
                    &policy,
                    &mut rows,
                    &records[k],
                    w.nets[shard] as usize,
                    &self.stats,
                );
                w.nets[shard] = (w.nets[shard] as i64 + added) as u32;
            }
            self.samples.store(shard, rows);
            i = j;
        }
        let n: u64 = records
            .iter()
            .map(|r| u64::from(r.samples.min(1_000_000)))
            .sum();
        if local {
            self.stats.accepted.fetch_add(n, Ordering::Relaxed);
            for r in records {
                push_outbox(&mut w, Gossiped::Sample(*r));
            }
        } else {
            self.stats.from_cluster.fetch_add(n, Ordering::Relaxed);
        }
        w.dirty = true;
        self.stats
            .networks
            .store(w.nets.iter().map(|&n| n as usize).sum(), Ordering::Relaxed);
        drop(w);
        self.update_bytes();
        if local && let Some(w) = self.waker.get() {
            w.notify_one();
        }
    }

    /// Wakes `waker` whenever a local record is queued (the cluster task
    /// sets it once).
    pub fn set_waker(&self, waker: Arc<tokio::sync::Notify>) {
        let _ = self.waker.set(waker);
    }

    /// The local records queued after sequence `after`, oldest first, at
    /// most `max`, with the last sequence number given.
    pub fn outbox_since(&self, after: u64, max: usize) -> (Vec<(u64, Gossiped)>, u64) {
        let w = self.lock();
        let out = w
            .outbox
            .iter()
            .filter(|(s, _)| *s > after)
            .take(max)
            .copied()
            .collect();
        (out, w.seq)
    }

    /// Whether anything changed since the last call (the saver asks).
    pub fn take_dirty(&self) -> bool {
        std::mem::take(&mut self.lock().dirty)
    }

    /// Marks the table changed (a save that failed is tried again).
    pub fn mark_dirty(&self) {
        self.lock().dirty = true;
    }

    /// Drops rows decayed below use (run every minute by the saver).
    pub fn forget_old(&self, now: SystemTime) {
        let at = crate::clock::unix_secs(now);
        let policy = self.policy.load();
        let mut w = self.lock();
        let mut changed = false;
        for shard in 0..table::SHARDS {
            let cur = self.samples.shard(shard);
            let stale = |s: &Sample| {
                from_bf16(s.weight) * policy.decay(at.saturating_sub(s.newest))
                    < f64::from(FORGET_BELOW)
            };
            if cur.iter().any(stale) {
                let rows: Vec<Sample> = cur.iter().filter(|s| !stale(s)).copied().collect();
                w.nets[shard] = table::networks(&rows) as u32;
                self.samples.store(shard, rows);
                changed = true;
            }
            let cur = self.resolvers.shard(shard);
            let stale = |m: &Mapping| {
                f64::from(m.weight) * policy.decay(at.saturating_sub(m.newest))
                    < f64::from(FORGET_BELOW)
            };
            if cur.iter().any(stale) {
                let rows: Vec<Mapping> = cur.iter().filter(|m| !stale(m)).copied().collect();
                w.resolvers[shard] = table::networks(&rows) as u32;
                self.resolvers.store(shard, rows);
                changed = true;
            }
        }
        if changed {
            w.dirty = true;
            self.stats
                .networks
                .store(w.nets.iter().map(|&n| n as usize).sum(), Ordering::Relaxed);
            self.stats.resolvers.store(
                w.resolvers.iter().map(|&n| n as usize).sum(),
                Ordering::Relaxed,
            );
        }
        drop(w);
        self.update_bytes();
    }

    /// Replaces the learned table with saved rows (start-up), keeping
    /// each shard within its bound (the weakest networks dropped).
    fn restore(&self, samples: Vec<Sample>, maps: Vec<Mapping>) {
        let policy = self.policy.load();
        let now = crate::clock::unix_secs_now();
        let mut w = self.lock();
        let mut by_shard: Vec<Vec<Sample>> = vec![Vec::new(); table::SHARDS];
        for s in samples {
            by_shard[table::shard_of(s.net())].push(s);
        }
        for (i, mut rows) in by_shard.into_iter().enumerate() {
            rows.sort_by_key(|s| (s.net(), s.sub()));
            rows.dedup_by_key(|s| (s.net(), s.sub()));
            let score =
                |s: &Sample| from_bf16(s.weight) * policy.decay(now.saturating_sub(s.newest));
            while table::networks(&rows) > policy.per_shard() {
                match table::weakest(&rows, u64::MAX, score) {
                    Some(gone) => table::remove_network(&mut rows, gone),
                    None => break,
                }
            }
            w.nets[i] = table::networks(&rows) as u32;
            self.samples.store(i, rows);
        }
        let mut by_shard: Vec<Vec<Mapping>> = vec![Vec::new(); table::SHARDS];
        for m in maps {
            by_shard[table::shard_of(m.net())].push(m);
        }
        for (i, mut rows) in by_shard.into_iter().enumerate() {
            rows.sort_by_key(|m| (m.net(), m.sub()));
            rows.dedup_by_key(|m| (m.net(), m.sub()));
            let score =
                |m: &Mapping| f64::from(m.weight) * policy.decay(now.saturating_sub(m.newest));
            while table::networks(&rows) > policy.resolvers_per_shard() {
                match table::weakest(&rows, u64::MAX, score) {
                    Some(gone) => table::remove_network(&mut rows, gone),
                    None => break,
                }
            }
            w.resolvers[i] = table::networks(&rows) as u32;
            self.resolvers.store(i, rows);
        }
        self.stats
            .networks
            .store(w.nets.iter().map(|&n| n as usize).sum(), Ordering::Relaxed);
        self.stats.resolvers.store(
            w.resolvers.iter().map(|&n| n as usize).sum(),
            Ordering::Relaxed,
        );
        drop(w);
        self.update_bytes();
    }

    fn update_bytes(&self) {
        let b = self.samples.bytes() + self.resolvers.bytes() + self.file.load().bytes();
        self.stats.bytes.store(b, Ordering::Relaxed);
    }

    /// Every learned row, for the API and saving: (network, endpoint id,
    /// estimate at `now`).
    pub fn for_each(&self, now: u32, mut f: impl FnMut(Network, u32, Estimate)) {
        let policy = self.policy.load();
        self.samples.for_each(|s| {
            f(
                network_of_key(join(s.net)),
                s.ep,
                Estimate {
                    rtt_ms: (f64::from(s.ln) / LN_SCALE).exp(),
                    samples: from_bf16(s.weight) * policy.decay(now.saturating_sub(s.newest)),
                    newest: s.newest,
                    from_file: false,
                },
            )
        });
    }

    /// Every resolver mapping: (resolver, client, weight at `newest`,
    /// newest).
    pub fn for_each_mapping(&self, mut f: impl FnMut(Network, Network, f64, u32)) {
        self.resolvers.for_each(|m| {
            f(
                network_of_key(join(m.resolver)),
                network_of_key(join(m.client)),
                f64::from(m.weight),
                m.newest,
            )
        });
    }
}

#[cfg(test)]
mod tests;
