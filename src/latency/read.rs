//! Reading the table on the answer path: a [`Reader`] loads the policy and
//! the latency file once per decision; each [`Lookup`] loads the one shard
//! of each network it looks at. No lock, no allocation.

use std::sync::Arc;

use arc_swap::Guard;

use super::rows::{Sample, from_bf16, join, network_of_key};
use super::table::Rows;
use super::{Estimate, FileTable, LN_SCALE, Latency, MAX_CLIENTS_PER_RESOLVER, Policy};
use crate::netblock::Network;

/// Where a performance decision looks for latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// The client's own network (ECS).
    Client(Network),
    /// The client networks seen behind a resolver network, weighted by
    /// their beacons.
    Behind(Network),
    /// The resolver's own network.
    Resolver(Network),
}

impl From {
    /// The network looked up.
    pub fn network(self) -> Network {
        match self {
            From::Client(n) | From::Behind(n) | From::Resolver(n) => n,
        }
    }
}

impl std::fmt::Display for From {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            From::Client(n) => write!(f, "client network {n} (ECS)"),
            From::Behind(n) => write!(f, "client networks seen behind resolver network {n}"),
            From::Resolver(n) => write!(f, "resolver network {n}"),
        }
    }
}

/// The table as one decision reads it: the policy and the latency file,
/// loaded once, at `now`.
pub struct Reader<'a> {
    latency: &'a Latency,
    /// The policy in force.
    pub policy: Guard<Arc<Policy>>,
    /// The latency file's rows, loaded only when it has any.
    file: Option<Guard<Arc<FileTable>>>,
    now: u32,
}

impl Latency {
    /// A reader at `now` (Unix seconds).
    #[inline]
    pub fn reader(&self, now: u32) -> Reader<'_> {
        Reader {
            latency: self,
            policy: self.policy.load(),
            file: (self.file_rows.load(std::sync::atomic::Ordering::Relaxed) > 0)
                .then(|| self.file.load()),
            now,
        }
    }

    /// [`Reader::clients_of`] at `now`.
    pub fn clients_of(&self, resolver: Network, now: u32) -> Behind {
        self.reader(now).clients_of(resolver)
    }
}

/// Client networks seen behind a resolver, with weights.
#[derive(Debug, Clone, Copy)]
pub struct Behind {
    clients: [(Network, f64); MAX_CLIENTS_PER_RESOLVER],
    len: usize,
}

impl Default for Behind {
    fn default() -> Self {
        Behind {
            clients: [(Network::V4(0), 0.0); MAX_CLIENTS_PER_RESOLVER],
            len: 0,
        }
    }
}

impl Behind {
    /// The clients and their weights, strongest first.
    pub fn as_slice(&self) -> &[(Network, f64)] {
        &self.clients[..self.len]
    }
}

impl Reader<'_> {
    /// True when the table knows nothing at all (no learned row, no file
    /// row): no decision needs to look.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.file.is_none()
            && self
                .latency
                .stats
                .networks
                .load(std::sync::atomic::Ordering::Relaxed)
                == 0
    }

    /// The client networks seen behind resolver network `resolver`, with
    /// their beacon weights decayed to now, strongest first: at most
    /// [`MAX_CLIENTS_PER_RESOLVER`].
    #[inline]
    pub fn clients_of(&self, resolver: Network) -> Behind {
        let mut out = Behind::default();
        if self
            .latency
            .stats
            .resolvers
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            return out;
        }
        let rows = self.latency.resolvers.rows(resolver.key());
        for m in rows.as_slice().iter().take(MAX_CLIENTS_PER_RESOLVER) {
            out.clients[out.len] = (
                network_of_key(join(m.client)),
                f64::from(m.weight) * self.policy.decay(self.now.saturating_sub(m.newest)),
            );
            out.len += 1;
        }
        out.clients[..out.len].sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// Loads what is known from `from`.
    #[inline]
    pub fn lookup(&self, from: From) -> Lookup<'_> {
        let mut l = Lookup {
            reader: self,
            views: [const { None }; MAX_CLIENTS_PER_RESOLVER],
            n: 0,
        };
        let add = |l: &mut Lookup<'_>, net: Network, w: f64| {
            let key = net.key();
            l.views[l.n] = Some((w, key, self.latency.samples.rows(key)));
            l.n += 1;
        };
        match from {
            From::Client(net) | From::Resolver(net) => add(&mut l, net, 1.0),
            From::Behind(resolver) => {
                for &(net, w) in self.clients_of(resolver).as_slice() {
                    add(&mut l, net, w);
                }
            }
        }
        l
    }

    /// The estimate of `ep` from network `net` (its learned `rows`): the
    /// learned one when it alone has `min_samples`, else the file's row
    /// when there is one, else the learned one (not enough yet). Its
    /// latency as ln(ms): routing ranks on that, never needing `exp`.
    #[inline]
    fn raw(&self, rows: &[Sample], net: u64, ep: u32) -> Option<Raw> {
        let learned = rows.iter().find(|s| s.ep == ep).map(|s| Raw {
            ln: f64::from(s.ln) / LN_SCALE,
            samples: from_bf16(s.weight) * self.policy.decay(self.now.saturating_sub(s.newest)),
            newest: s.newest,
            from_file: false,
        });
        if learned.is_some_and(|e| super::policy::reaches(e.samples, self.policy.min_samples)) {
            return learned;
        }
        let file = self.file.as_ref().and_then(|f| f.get(net, ep));
        file.map(|e| Raw {
            ln: e.rtt_ms.ln(),
            samples: e.samples,
            newest: e.newest,
            from_file: true,
        })
        .or(learned)
    }
}

/// An estimate as ranked: its latency as ln(ms).
#[derive(Clone, Copy)]
struct Raw {
    ln: f64,
    samples: f64,
    newest: u32,
    from_file: bool,
}

/// The latencies known from one [`From`], as loaded: holds the shards it
/// read.
pub struct Lookup<'r> {
    reader: &'r Reader<'r>,
    views: [Option<(f64, u64, Rows<Sample>)>; MAX_CLIENTS_PER_RESOLVER],
    n: usize,
}

impl Lookup<'_> {
    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.reader.policy
    }

    /// True when nothing is known from it.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.views[..self.n].iter().flatten().all(|(_, net, rows)| {
            rows.as_slice().is_empty() && !self.reader.file.as_ref().is_some_and(|f| f.has(*net))
        })
    }

    /// The estimate of endpoint `ep`: for several client networks, their
    /// estimates' geometric mean weighted by beacons, with their samples
    /// summed.
    #[inline]
    pub fn get(&self, ep: u32) -> Option<Estimate> {
        self.raw(ep).map(|r| Estimate {
            rtt_ms: r.ln.exp(),
            samples: r.samples,
            newest: r.newest,
            from_file: r.from_file,
        })
    }

    /// ln(ms) of endpoint `ep`'s estimate when it has the samples routing
    /// needs ([`Lookup::get`] and [`Lookup::enough`] in one, without `exp`).
    #[inline]
    pub fn rank(&self, ep: u32) -> Option<f64> {
        self.raw(ep)
            .filter(|r| super::policy::reaches(r.samples, self.reader.policy.min_samples))
            .map(|r| r.ln)
    }

    #[inline]
    fn raw(&self, ep: u32) -> Option<Raw> {
        let r = self.reader;
        if self.n == 1 {
            let (_, net, rows) = self.views[0].as_ref()?;
            return r.raw(rows.as_slice(), *net, ep);
        }
        let (mut ln, mut weight, mut samples, mut newest, mut file) = (0.0, 0.0, 0.0, 0, true);
        for (w, net, rows) in self.views[..self.n].iter().flatten() {
            if let Some(e) = r.raw(rows.as_slice(), *net, ep) {
                ln += w * e.ln;
                weight += w;
                samples += e.samples;
                newest = newest.max(e.newest);
                file &= e.from_file;
            }
        }
        (weight > 0.0).then(|| Raw {
            ln: ln / weight,
            samples,
            newest,
            from_file: file,
        })
    }

    /// Whether `e` has the samples routing needs.
    #[inline]
    pub fn enough(&self, e: &Estimate) -> bool {
        super::policy::reaches(e.samples, self.reader.policy.min_samples)
    }
}
