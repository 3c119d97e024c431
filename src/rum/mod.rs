//! Real user measurements (`[rum]`): an optional public HTTP(S) listener
//! that serves a small script to the operator's pages, hands each page
//! view a token, and takes the beacon the script posts back: the round
//! trip the visitor's browser measured to each endpoint of the profiles
//! its key measures, and (through the token) which resolver asked
//! Switchyard for the token's name.
//!
//! ```text
//! page ── GET /rum.js ──────────────► script (cached)
//!      ── GET /rum/config?key= ─────► token + endpoints' rum_url
//!      ── fetch rum_url, each ──────► endpoint (timed)
//!      ── fetch <token>.<rum.zone> ─► resolver ─► Switchyard DNS:
//!                                       sightings (token → resolver, ECS)
//!      ── POST /rum/beacon ─────────► checked (key, token, timings, rate)
//!            ├─ each endpoint: latency.record(client net, endpoint, rtt)
//!            └─ token's sighting (here, or gossiped by another node;
//!               waited for while the token lives): the resolver's network
//!               is tied to the client's (latency.record_resolver)
//! ```
//!
//! Here: the state the handlers share ([`Rum`]) and what a beacon does;
//! `server` is the listener (connection slots, header and body timeouts,
//! TLS), `token` makes and checks tokens, `beacon` reads the body, `limit`
//! is the per-network rate, `script` is `/rum.js`.

mod beacon;
mod limit;
mod script;
mod server;
pub mod token;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config::RumSettings;
use crate::metrics::Beacon as Result;
use crate::netblock::Network;
use crate::sightings::{Sighting, Token};
use crate::state::Serving;

pub use server::{serve, tls_config};

/// Beacons waiting for their token's lookup to be seen (in a cluster, the
/// resolver may have asked another node; gossip brings it within a few
/// rounds). Beyond this many the oldest is given up.
pub const PENDING_CAP: usize = 4096;
/// How often waiting beacons are checked against the sightings.
pub const JOIN_EVERY: Duration = Duration::from_millis(200);

/// A page's key, as the handlers use it.
#[derive(Debug)]
struct Key {
    secret: crate::secret::Secret,
    id: [u8; 8],
    /// Normalised profile names.
    profiles: Vec<String>,
}

/// A stored beacon waiting for its token's lookup.
#[derive(Clone, Copy, Debug)]
struct Pending {
    token: Token,
    client: Network,
    /// Give up after this (Unix ms): the token's expiry.
    until_ms: u64,
}

/// The state every handler shares. Never holds a key or token in
/// anything it logs or shows.
#[derive(Debug)]
pub struct Rum {
    settings: RumSettings,
    keys: Vec<Key>,
    minter: token::Minter,
    limiter: Mutex<limit::Limiter>,
    used: Mutex<token::Used>,
    pending: Mutex<VecDeque<Pending>>,
    serving: Arc<Serving>,
}

impl Rum {
    /// The state for `settings` over the running server; tokens under a
    /// secret derived from `cluster_key` (so every node accepts them), or
    /// a random one when alone.
    pub fn new(settings: RumSettings, serving: Arc<Serving>, cluster_key: Option<&[u8]>) -> Rum {
        let keys = settings
            .keys
            .iter()
            .map(|k| Key {
                id: token::key_id(k.key.expose()),
                secret: k.key.clone(),
                profiles: k.profiles.clone(),
            })
            .collect();
        Rum {
            minter: token::Minter::new(cluster_key),
            limiter: Mutex::new(limit::Limiter::new(settings.beacons_per_second)),
            used: Mutex::default(),
            pending: Mutex::default(),
            keys,
            settings,
            serving,
        }
    }

    /// The key a page gave, compared in constant time.
    fn key(&self, given: &str) -> Option<&Key> {
        self.keys
            .iter()
            .find(|k| token::same(k.secret.expose().as_bytes(), given.as_bytes()))
    }

    /// Takes one from the network's bucket.
    fn allow(&self, net: Network, kind: limit::Kind) -> bool {
        let now = crate::clock::now_millis();
        self.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(net, kind, now)
    }

    /// The endpoints `key` measures: (`PROFILE/ENDPOINT`, `rum_url`), in
    /// the running configuration.
    fn endpoints(&self, key: &Key) -> Vec<(String, String)> {
        let table = self.serving.table.load();
        let mut out = Vec::new();
        for name in &key.profiles {
            let Some(p) = table.profile_by_name(name) else {
                continue;
            };
            for e in table.endpoints_of(p) {
                if let Some(url) = &e.rum_url {
                    let id = crate::snapshot::EndpointKey::new(name, &e.name);
                    out.push((id.to_string(), url.to_string()));
                }
            }
        }
        out
    }

    /// A token for a page view from `client` with `key`: `None` for an
    /// unknown key.
    fn issue(&self, given: &str, client: Network) -> Option<(String, Vec<(String, String)>)> {
        let key = self.key(given)?;
        let now = crate::clock::unix_secs(SystemTime::now());
        let expiry = now.saturating_add(self.settings.token_lifetime.as_secs() as u32);
        let t = self.minter.issue(&key.id, client, expiry);
        self.serving
            .metrics
            .rum
            .tokens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some((token::to_hex(&t), self.endpoints(key)))
    }

    /// Takes a beacon from `client` (its body read, within `max_body`):
    /// checks everything, then records its measurements and ties its
    /// token's resolver to `client`. Counts the result.
    fn take(&self, client: Network, body: &[u8]) -> Result {
        let result = self.check_and_store(client, body);
        self.serving.metrics.rum.beacon(result);
        result
    }

    fn check_and_store(&self, client: Network, body: &[u8]) -> Result {
        if !self.allow(client, limit::Kind::Beacon) {
            return Result::RateLimited;
        }
        let b = match beacon::parse(body) {
            Ok(b) => b,
            Err(why) => return why,
        };
        let Some(key) = self.key(&b.key) else {
            return Result::UnknownKey;
        };
        let now = SystemTime::now();
        let now_s = crate::clock::unix_secs(now);
        let expiry = match self.minter.check(&b.token, &key.id, client, now_s) {
            Ok(e) => e,
            Err(token::Invalid::Forged) => return Result::BadToken,
            Err(token::Invalid::Expired) => return Result::Expired,
        };
        let measured = self.endpoints(key);
        if b.results
            .iter()
            .any(|(e, _)| !measured.iter().any(|(id, _)| id == e))
        {
            return Result::UnknownEndpoint;
        }
        // Only now, with everything else right, is the token spent.
        let taken = self.used.lock().unwrap_or_else(|p| p.into_inner()).take(
            token::nonce(&b.token),
            expiry,
            now_s,
        );
        match taken {
            token::Take::First => {}
            token::Take::Again => return Result::Replayed,
            token::Take::Full => return Result::Refused,
        }
        for (endpoint, ms) in &b.results {
            let rtt = Duration::from_secs_f64(ms / 1000.0);
            if record(&self.serving, client, endpoint, rtt, now).is_err() {
                return Result::Refused;
            }
            self.serving
                .metrics
                .rum
                .samples
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let pending = Pending {
            token: b.token,
            client,
            until_ms: u64::from(expiry) * 1000,
        };
        if !self.join(&pending, now) {
            let mut q = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= PENDING_CAP {
                q.pop_front();
                self.count_unjoined(1);
            }
            q.push_back(pending);
        }
        Result::Stored
    }

    /// Ties the beacon's resolver to its client, if its token's lookup has
    /// been seen; true when it has.
    fn join(&self, p: &Pending, now: SystemTime) -> bool {
        let Some(seen) = self.serving.sightings.find(&p.token) else {
            return false;
        };
        tie(&self.serving, &seen, p.client, now);
        self.serving
            .metrics
            .rum
            .joined
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }

    fn count_unjoined(&self, n: u64) {
        self.serving
            .metrics
            .rum
            .unjoined
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Checks the waiting beacons against the sightings (gossip may have
    /// brought their lookups), giving up on those whose token expired.
    pub fn join_pending(&self) {
        let now = SystemTime::now();
        let now_ms = crate::clock::unix_millis(now);
        let waiting: Vec<Pending> = {
            let mut q = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            q.drain(..).collect()
        };
        let mut keep = Vec::new();
        let mut gave_up = 0;
        for p in waiting {
            if self.join(&p, now) {
                continue;
            }
            if p.until_ms < now_ms {
                gave_up += 1;
            } else {
                keep.push(p);
            }
        }
        self.count_unjoined(gave_up);
        if !keep.is_empty() {
            let mut q = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for p in keep.into_iter().rev() {
                q.push_front(p);
            }
            while q.len() > PENDING_CAP {
                q.pop_front();
                self.count_unjoined(1);
            }
        }
    }

    /// Beacons waiting for their token's lookup.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &RumSettings {
        &self.settings
    }
}

/// Records one measurement into the latency table.
fn record(
    serving: &Serving,
    client: Network,
    endpoint: &str,
    rtt: Duration,
    now: SystemTime,
) -> std::result::Result<(), crate::latency::Rejected> {
    serving.latency.record(client, endpoint, rtt, now)
}

/// Ties the network the resolver's queries are routed by to the client
/// network behind it (nothing when they are one network).
fn tie(serving: &Serving, seen: &Sighting, client: Network, now: SystemTime) {
    let resolver = seen.routed_by();
    if resolver == client {
        return;
    }
    serving.latency.record_resolver(resolver, client, now);
}
