//! Who is in the cluster and whose observations count, as this node sees
//! it. Pure: each round the cluster task feeds it what gossip knows of
//! every node generation (its heartbeat, whether the phi-accrual detector
//! still trusts it, its digest), and reads back the nodes to count, the
//! nodes to list, and what changed.
//!
//! The rules, in the order they apply:
//!
//! - **Dead needs two things**: the failure detector's suspicion (phi above
//!   `phi_threshold`) *and* silence for at least `dead_after`. Phi alone
//!   follows the rate at which heartbeats happen to arrive, which is high
//!   on a quiet network and falls apart when a core is busy; the floor
//!   keeps a loaded but live node alive.
//! - **This node's own stall is not the others' silence.** When this node
//!   finds its own timers fired late (it was stopped, or starved of CPU),
//!   the time it was not running is not counted as anyone's silence
//!   ([`Membership::stalled`]).
//! - **A node that falls silent keeps its vote for `vote_hold`**: its last
//!   observations still count in quorums for that long after it is
//!   declared dead. A node that stops hearing everyone at once (its own
//!   network, or the minority side of a partition) therefore keeps
//!   answering as the cluster last agreed for `vote_hold`, then decides
//!   with the nodes it still hears. A node that says it is leaving (a
//!   clean shutdown) is dropped at once.
//! - **One generation per name**: a restarted node is a new generation of
//!   the same name. The newest generation heard recently speaks for the
//!   name; an older one that keeps beating beside it (two processes with
//!   one name) is reported.
//! - Dead nodes stay listed for `forget_after`, or until forgotten.
//! - **Drift** is measured against the configuration digest most live
//!   nodes run, not against this node's.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chitchat::ChitchatId;

/// The timing rules (from `[cluster]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Time between gossip rounds.
    pub gossip_interval: Duration,
    /// Least silence before a node can be declared dead.
    pub dead_after: Duration,
    /// How long a dead node's last observations keep counting.
    pub vote_hold: Duration,
    /// How long a dead node stays listed.
    pub forget_after: Duration,
}

impl Timing {
    /// A generation heard within this is "beating now" (for choosing
    /// between generations of one name).
    fn recent(&self) -> Duration {
        (self.gossip_interval * 4).max(Duration::from_millis(400))
    }
}

/// What gossip says of one node generation this round.
#[derive(Clone, Debug)]
pub struct Seen<'a> {
    /// The generation.
    pub id: &'a ChitchatId,
    /// Its heartbeat counter.
    pub heartbeat: u64,
    /// The phi-accrual detector still trusts it.
    pub phi_live: bool,
    /// It said it is leaving (a clean shutdown).
    pub left: bool,
    /// Its configuration digest ("" before it said).
    pub digest: &'a str,
    /// Its software version.
    pub version: &'a str,
}

/// One generation as this node follows it.
#[derive(Clone, Debug)]
struct Gen {
    heartbeat: u64,
    first_seen: Instant,
    /// Its heartbeat last advanced (or it was first seen).
    heard_at: Instant,
    /// The advance before that.
    heard_before: Option<Instant>,
    /// In the last round's gossip state.
    present: bool,
    alive: bool,
    ever_alive: bool,
    left: bool,
    died_at: Option<Instant>,
    digest: String,
    version: String,
}

/// How a listed node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Heard: counted.
    Alive,
    /// Declared dead at `since`; its last observations count until `until`.
    Held {
        /// When it was declared dead.
        since: Instant,
        /// When its vote stops counting.
        until: Instant,
    },
    /// Dead since then (or first seen dead then); not counted.
    Dead {
        /// When it was declared dead (or first seen).
        since: Instant,
    },
}

impl Standing {
    /// Its observations count in quorums.
    pub fn counted(self) -> bool {
        !matches!(self, Standing::Dead { .. })
    }

    /// `alive`, `held` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Alive => "alive",
            Standing::Held { .. } => "held",
            Standing::Dead { .. } => "dead",
        }
    }
}

/// One node (one name) as listed.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The generation that speaks for the name.
    pub id: ChitchatId,
    /// Alive, held or dead.
    pub standing: Standing,
    /// Its heartbeat last advanced.
    pub heard_at: Instant,
    /// Its heartbeat counter.
    pub heartbeat: u64,
    /// Its configuration digest.
    pub digest: String,
    /// Its version.
    pub version: String,
    /// Its digest differs from the one most live nodes run.
    pub drifted: bool,
    /// Another live process gossips under this name: its address.
    pub twin: Option<SocketAddr>,
    /// This node.
    pub this_node: bool,
    /// Ever heard alive (a node gossip knew of before it was heard is
    /// listed dead, and joins when first heard).
    pub ever_alive: bool,
}

/// A change in membership, for the log and notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// First heard.
    Joined(String, SocketAddr),
    /// Heard again after it was dead.
    AliveAgain(String, SocketAddr),
    /// Declared dead; its vote is held until `held` from now.
    Dead(String, SocketAddr, Duration),
    /// Said it is leaving.
    Left(String, SocketAddr),
    /// Its held vote stopped counting.
    HoldEnded(String),
    /// Dropped from the list after `forget_after`.
    Expired(String),
    /// Forgotten on another node's request.
    Forgotten(String),
    /// Two live processes gossip under one name.
    Twin {
        /// The name.
        name: String,
        /// Their addresses (and generations).
        at: Vec<(SocketAddr, u64)>,
    },
    /// Its configuration digest now differs from the majority's (or
    /// agrees again).
    Drift {
        /// The node.
        name: String,
        /// Drifted now.
        drifted: bool,
        /// Its digest.
        digest: String,
        /// The digest most live nodes run.
        majority: String,
    },
}

/// The membership as this node follows it.
pub struct Membership {
    me: ChitchatId,
    my_digest: String,
    timing: Timing,
    gens: HashMap<ChitchatId, Gen>,
    /// What each name stood at last round (for changes).
    last: BTreeMap<String, (Standing, bool, Option<SocketAddr>)>,
    /// Names forgotten on request, with the newest generation then known:
    /// listed again only if a newer one appears or one beats again.
    forgotten: HashMap<String, (u64, Instant)>,
    majority: Option<String>,
    listed: Vec<Listed>,
    me_drifted: bool,
    my_twin: Option<SocketAddr>,
}

impl Membership {
    /// A membership seen from `me`.
    pub fn new(me: ChitchatId, timing: Timing) -> Membership {
        Membership {
            me,
            my_digest: String::new(),
            timing,
            gens: HashMap::new(),
            last: BTreeMap::new(),
            forgotten: HashMap::new(),
            majority: None,
            listed: Vec::new(),
            me_drifted: false,
            my_twin: None,
        }
    }

    /// New timing rules (a reload).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// This node did not run for `by` (its timers fired that late): that
    /// time is nobody's silence.
    pub fn stalled(&mut self, by: Duration) {
        for g in self.gens.values_mut() {
            g.heard_at += by;
            g.heard_before = g.heard_before.map(|t| t + by);
            g.died_at = g.died_at.map(|t| t + by);
        }
    }

    /// Takes this round's gossip state (every generation known, this node
    /// excluded or not) and returns what changed.
    pub fn update<'a>(
        &mut self,
        now: Instant,
        my_digest: &str,
        seen: impl IntoIterator<Item = Seen<'a>>,
    ) -> Vec<Change> {
        self.my_digest = my_digest.to_string();
        for g in self.gens.values_mut() {
            g.present = false;
        }
        for s in seen {
            if *s.id == self.me {
                continue;
            }
            let g = self.gens.entry(s.id.clone()).or_insert_with(|| Gen {
                heartbeat: s.heartbeat,
                first_seen: now,
                heard_at: now,
                heard_before: None,
                present: true,
                alive: false,
                ever_alive: false,
                left: false,
                died_at: None,
                digest: String::new(),
                version: String::new(),
            });
            g.present = true;
            if s.heartbeat > g.heartbeat {
                g.heartbeat = s.heartbeat;
                g.heard_before = Some(g.heard_at);
                g.heard_at = now;
            }
            g.left |= s.left;
            if g.digest != s.digest {
                g.digest = s.digest.to_string();
            }
            if g.version != s.version {
                g.version = s.version.to_string();
            }
            let silent = now.saturating_duration_since(g.heard_at);
            let alive = !g.left
                && (s.phi_live
                    // Suspected, but not silent long enough yet.
                    || (g.ever_alive && g.alive && silent < self.timing.dead_after));
            Self::set_alive(g, alive, now);
        }
        // Generations gossip no longer carries (collected): dead.
        for g in self.gens.values_mut().filter(|g| !g.present) {
            Self::set_alive(g, false, now);
        }
        // A forgotten name comes back when it beats again or restarts.
        self.forgotten.retain(|name, (generation, at)| {
            !self.gens.iter().any(|(id, g)| {
                *id.node_id == **name
                    && (id.generation_id > *generation || (g.alive && g.heard_at > *at))
            })
        });
        self.relist(now)
    }

    fn set_alive(g: &mut Gen, alive: bool, now: Instant) {
        if alive {
            g.alive = true;
            g.ever_alive = true;
            g.died_at = None;
        } else if g.alive {
            g.alive = false;
            g.died_at = Some(now);
        }
    }

    /// Lists one entry per name and derives the changes.
    fn relist(&mut self, now: Instant) -> Vec<Change> {
        let t = self.timing;
        let mut by_name: BTreeMap<&str, Vec<(&ChitchatId, &Gen)>> = BTreeMap::new();
        for (id, g) in &self.gens {
            if self.forgotten.contains_key(id.node_id.as_ref()) {
                continue;
            }
            by_name
                .entry(id.node_id.as_ref())
                .or_default()
                .push((id, g));
        }
        let mut changes = Vec::new();
        let mut listed = Vec::new();
        let mut expired = Vec::new();
        let mut my_twin = None;
        for (name, mut gens) in by_name {
            gens.sort_by_key(|(id, _)| std::cmp::Reverse(id.generation_id));
            let beating =
                |g: &Gen| g.alive && now.saturating_duration_since(g.heard_at) < t.recent();
            // The newest generation beating now, else the newest alive,
            // else the newest.
            let (id, g) = gens
                .iter()
                .find(|(_, g)| beating(g))
                .or_else(|| gens.iter().find(|(_, g)| g.alive))
                .copied()
                .unwrap_or(gens[0]);
            let mine = name == &*self.me.node_id;
            // Two processes under one name: an older generation that beat
            // twice since a newer one appeared (a restart's old generation
            // stops beating), or, for this node's own name, any other
            // generation beating.
            let mut twins: Vec<(SocketAddr, u64)> = Vec::new();
            if mine {
                for (oid, og) in &gens {
                    if og.alive && og.heard_before.is_some_and(|b| b > og.first_seen) {
                        twins.push((oid.gossip_advertise_addr, oid.generation_id));
                    }
                }
            } else {
                for (nid, ng) in gens.iter().filter(|(_, g)| g.alive) {
                    for (oid, og) in gens.iter().filter(|(o, g)| {
                        g.alive && o.generation_id < nid.generation_id && beating(g)
                    }) {
                        if og.heard_before.is_some_and(|b| b > ng.first_seen) && beating(ng) {
                            for x in [(*nid, *ng), (*oid, *og)] {
                                let a = (x.0.gossip_advertise_addr, x.0.generation_id);
                                if !twins.contains(&a) {
                                    twins.push(a);
                                }
                            }
                        }
                    }
                }
            }
            if mine {
                // This node's own generation is listed by the caller; other
                // generations of its name only as twins.
                let twin = twins.first().map(|t| t.0);
                if twin.is_some() && self.my_twin.is_none() {
                    changes.push(Change::Twin {
                        name: name.to_string(),
                        at: twins,
                    });
                }
                my_twin = twin;
                continue;
            }
            let standing = if g.alive {
                Standing::Alive
            } else {
                let since = g.died_at.unwrap_or(g.first_seen);
                let until = since + t.vote_hold;
                if g.ever_alive && !g.left && g.died_at.is_some() && now < until {
                    Standing::Held { since, until }
                } else {
                    Standing::Dead { since }
                }
            };
            if let Standing::Dead { since } = standing
                && now.saturating_duration_since(since) >= t.forget_after
            {
                expired.push(name.to_string());
                continue;
            }
            let twin = twins
                .iter()
                .find(|(a, g)| *g != id.generation_id || *a != id.gossip_advertise_addr)
                .map(|t| t.0);
            let addr = id.gossip_advertise_addr;
            let prev = self.last.get(name).copied();
            match (prev.map(|p| p.0), standing) {
                (None, Standing::Alive) => changes.push(Change::Joined(name.into(), addr)),
                (Some(Standing::Held { .. } | Standing::Dead { .. }), Standing::Alive) => {
                    changes.push(Change::AliveAgain(name.into(), addr))
                }
                (Some(Standing::Alive), Standing::Held { until, .. }) => changes.push(
                    Change::Dead(name.into(), addr, until.saturating_duration_since(now)),
                ),
                (Some(Standing::Alive), Standing::Dead { .. }) if g.left => {
                    changes.push(Change::Left(name.into(), addr))
                }
                (Some(Standing::Alive), Standing::Dead { .. }) => {
                    changes.push(Change::Dead(name.into(), addr, Duration::ZERO))
                }
                (Some(Standing::Held { .. }), Standing::Dead { .. }) => {
                    changes.push(Change::HoldEnded(name.into()))
                }
                _ => {}
            }
            if twin.is_some() && prev.is_none_or(|p| p.2.is_none()) {
                changes.push(Change::Twin {
                    name: name.to_string(),
                    at: twins.clone(),
                });
            }
            listed.push(Listed {
                id: (*id).clone(),
                standing,
                heard_at: g.heard_at,
                heartbeat: g.heartbeat,
                digest: g.digest.clone(),
                version: g.version.clone(),
                drifted: false,
                twin,
                this_node: false,
                ever_alive: g.ever_alive,
            });
        }
        for name in expired {
            if self.last.remove(&name).is_some() {
                changes.push(Change::Expired(name.clone()));
            }
            // Forget its generations once gossip has let go of them too.
            self.gens.retain(|id, g| *id.node_id != *name || g.present);
        }
        // Drift: against the digest most live nodes (this one included)
        // run; with no single most common one, against this node's.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        *counts.entry(self.my_digest.as_str()).or_default() += 1;
        for l in listed.iter().filter(|l| l.standing == Standing::Alive) {
            if !l.digest.is_empty() {
                *counts.entry(l.digest.as_str()).or_default() += 1;
            }
        }
        let top = counts.values().copied().max().unwrap_or(0);
        let mut tops = counts.iter().filter(|(_, n)| **n == top);
        let majority = match (tops.next(), tops.next()) {
            (Some((d, _)), None) => d.to_string(),
            _ => self.my_digest.clone(),
        };
        let mut drift_changes = Vec::new();
        for l in &mut listed {
            l.drifted = !l.digest.is_empty() && l.digest != majority;
            let was = self.last.get(l.id.node_id.as_ref()).map(|p| p.1);
            if !l.digest.is_empty() && was.is_some_and(|w| w != l.drifted)
                || was.is_none() && l.drifted
            {
                drift_changes.push(Change::Drift {
                    name: l.id.node_id.to_string(),
                    drifted: l.drifted,
                    digest: l.digest.clone(),
                    majority: majority.clone(),
                });
            }
            if l.ever_alive {
                self.last
                    .insert(l.id.node_id.to_string(), (l.standing, l.drifted, l.twin));
            }
        }
        let me_drifted = self.my_digest != majority;
        if me_drifted != self.me_drifted {
            drift_changes.push(Change::Drift {
                name: self.me.node_id.to_string(),
                drifted: me_drifted,
                digest: self.my_digest.clone(),
                majority: majority.clone(),
            });
        }
        self.me_drifted = me_drifted;
        self.my_twin = my_twin;
        changes.extend(drift_changes);
        self.majority = Some(majority);
        self.listed = listed;
        changes
    }

    /// The nodes other than this one, one per name, as of the last update.
    pub fn listed(&self) -> &[Listed] {
        &self.listed
    }

    /// The generations whose observations count now (alive or held), each
    /// with when its held vote ends (`None`: alive).
    pub fn counted(&self) -> impl Iterator<Item = (&ChitchatId, Option<Instant>)> {
        self.listed.iter().filter_map(|l| match l.standing {
            Standing::Alive => Some((&l.id, None)),
            Standing::Held { until, .. } => Some((&l.id, Some(until))),
            Standing::Dead { .. } => None,
        })
    }

    /// The configuration digest most live nodes run (as of the last update).
    pub fn majority_digest(&self) -> &str {
        self.majority.as_deref().unwrap_or(&self.my_digest)
    }

    /// This node runs another configuration than most live nodes.
    pub fn me_drifted(&self) -> bool {
        self.me_drifted
    }

    /// Another process gossips under this node's name: its address.
    pub fn my_twin(&self) -> Option<SocketAddr> {
        self.my_twin
    }

    /// The peers whose heartbeats a re-sync waits for: alive or held.
    pub fn expected(&self) -> Vec<(ChitchatId, u64)> {
        self.listed
            .iter()
            .filter(|l| l.standing.counted())
            .map(|l| (l.id.clone(), l.heartbeat))
            .collect()
    }

    /// Every address a node was heard at (a re-sync gossips to each).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut a: Vec<SocketAddr> = self
            .listed
            .iter()
            .map(|l| l.id.gossip_advertise_addr)
            .collect();
        a.sort();
        a.dedup();
        a
    }

    /// Stops listing `name` (a node removed on purpose). Refused while it
    /// is alive or its vote is held.
    pub fn forget(&mut self, name: &str, now: Instant) -> Result<u64, String> {
        let Some(l) = self.listed.iter().find(|l| &*l.id.node_id == name) else {
            return Err(format!("no node named {name} is listed"));
        };
        match l.standing {
            Standing::Alive => Err(format!(
                "{name} is alive (heard {} ago): stop it first",
                humantime::format_duration(Duration::from_millis(
                    now.saturating_duration_since(l.heard_at).as_millis() as u64
                ))
            )),
            Standing::Held { until, .. } => Err(format!(
                "{name} was declared dead only just now: its last observations count for {} more (cluster.vote_hold); forget it after that",
                humantime::format_duration(Duration::from_secs(
                    until.saturating_duration_since(now).as_secs() + 1
                ))
            )),
            Standing::Dead { .. } => {
                let newest = self
                    .gens
                    .keys()
                    .filter(|id| &*id.node_id == name)
                    .map(|id| id.generation_id)
                    .max()
                    .unwrap_or(0);
                self.forgotten.insert(name.to_string(), (newest, now));
                self.listed.retain(|l| &*l.id.node_id != name);
                self.last.remove(name);
                Ok(newest)
            }
        }
    }

    /// Another node forgot `name` at `generation` (gossip): forget it here
    /// too if it is dead here and no newer generation is known. True when
    /// it was forgotten now.
    pub fn forget_gossiped(&mut self, name: &str, generation: u64, now: Instant) -> bool {
        let dead = self
            .listed
            .iter()
            .any(|l| &*l.id.node_id == name && matches!(l.standing, Standing::Dead { .. }));
        let newer = self
            .gens
            .keys()
            .any(|id| &*id.node_id == name && id.generation_id > generation);
        dead && !newer && self.forget(name, now).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, generation: u64, port: u16) -> ChitchatId {
        ChitchatId::new(
            name.to_string(),
            generation,
            SocketAddr::from(([127, 0, 0, 1], port)),
        )
    }

    const T: Timing = Timing {
        gossip_interval: Duration::from_millis(250),
        dead_after: Duration::from_secs(3),
        vote_hold: Duration::from_secs(10),
        forget_after: Duration::from_secs(3600),
    };

    struct World {
        m: Membership,
        now: Instant,
        beats: HashMap<ChitchatId, (u64, bool, bool)>,
        digests: HashMap<ChitchatId, String>,
    }

    impl World {
        fn new() -> World {
            World {
                m: Membership::new(id("ns1", 1, 1), T),
                now: Instant::now(),
                beats: HashMap::new(),
                digests: HashMap::new(),
            }
        }

        /// One round, `d` after the last; `beating` advance their heartbeat
        /// and are trusted by phi; the rest are silent (phi as given).
        fn round(&mut self, d: Duration, beating: &[&ChitchatId]) -> Vec<Change> {
            self.now += d;
            for (id, (hb, phi, _)) in self.beats.iter_mut() {
                if beating.contains(&id) {
                    *hb += 1;
                    *phi = true;
                }
            }
            let seen: Vec<(ChitchatId, u64, bool, bool, String)> = self
                .beats
                .iter()
                .map(|(id, (hb, phi, left))| {
                    (
                        id.clone(),
                        *hb,
                        *phi,
                        *left,
                        self.digests.get(id).cloned().unwrap_or_else(|| "d".into()),
                    )
                })
                .collect();
            self.m.update(
                self.now,
                "d",
                seen.iter().map(|(id, hb, phi, left, d)| Seen {
                    id,
                    heartbeat: *hb,
                    phi_live: *phi,
                    left: *left,
                    digest: d,
                    version: "0.1.0",
                }),
            )
        }

        fn add(&mut self, id: &ChitchatId) {
            self.beats.insert(id.clone(), (1, false, false));
        }

        fn suspect(&mut self, id: &ChitchatId) {
            self.beats.get_mut(id).unwrap().1 = false;
        }

        fn standing(&self, name: &str) -> Option<&'static str> {
            self.m
                .listed()
                .iter()
                .find(|l| &*l.id.node_id == name)
                .map(|l| l.standing.as_str())
        }
    }

    const ROUND: Duration = Duration::from_millis(250);

    #[test]
    fn a_suspected_node_is_dead_only_after_dead_after_then_held() {
        let mut w = World::new();
        let ns2 = id("ns2", 1, 2);
        w.add(&ns2);
        let c = w.round(ROUND, &[&ns2]);
        assert_eq!(c, [Change::Joined("ns2".into(), ns2.gossip_advertise_addr)]);
        // Silent, and phi suspects it at once: still alive until 3 s.
        w.suspect(&ns2);
        for _ in 0..11 {
            assert!(w.round(ROUND, &[]).is_empty());
            assert_eq!(w.standing("ns2"), Some("alive"));
        }
        let c = w.round(ROUND, &[]);
        assert_eq!(
            c,
            [Change::Dead(
                "ns2".into(),
                ns2.gossip_advertise_addr,
                T.vote_hold
            )]
        );
        assert_eq!(w.standing("ns2"), Some("held"));
        assert_eq!(w.m.counted().count(), 1);
        // The hold ends after vote_hold: not counted.
        w.round(T.vote_hold - ROUND, &[]);
        assert_eq!(w.standing("ns2"), Some("held"));
        assert_eq!(w.round(ROUND, &[]), [Change::HoldEnded("ns2".into())]);
        assert_eq!(w.m.counted().count(), 0);
        // Back.
        let c = w.round(ROUND, &[&ns2]);
        assert_eq!(
            c,
            [Change::AliveAgain("ns2".into(), ns2.gossip_advertise_addr)]
        );
    }

    #[test]
    fn this_nodes_stall_is_nobodys_silence() {
        let mut w = World::new();
        let ns2 = id("ns2", 1, 2);
        let ns3 = id("ns3", 1, 3);
        w.add(&ns2);
        w.add(&ns3);
        w.round(ROUND, &[&ns2, &ns3]);
        w.suspect(&ns2);
        w.suspect(&ns3);
        // Stopped for 5 s: the first round after it sees everyone silent
        // for 5 s, but 4.75 s of it were this node's own.
        w.m.stalled(Duration::from_millis(4750));
        assert!(w.round(Duration::from_secs(5), &[]).is_empty());
        assert_eq!(w.standing("ns2"), Some("alive"));
        assert_eq!(w.standing("ns3"), Some("alive"));
        assert_eq!(w.round(ROUND, &[&ns2, &ns3]), []);
    }

    #[test]
    fn a_node_that_leaves_is_dropped_at_once() {
        let mut w = World::new();
        let ns2 = id("ns2", 1, 2);
        w.add(&ns2);
        w.round(ROUND, &[&ns2]);
        w.beats.get_mut(&ns2).unwrap().2 = true;
        let c = w.round(ROUND, &[&ns2]);
        assert_eq!(c, [Change::Left("ns2".into(), ns2.gossip_advertise_addr)]);
        assert_eq!(w.m.counted().count(), 0);
    }

    #[test]
    fn a_restart_replaces_the_old_generation_at_once_and_is_no_twin() {
        let mut w = World::new();
        let old = id("ns2", 1, 2);
        let new = id("ns2", 2, 2);
        w.add(&old);
        w.round(ROUND, &[&old]);
        w.add(&new);
        let c = w.round(ROUND, &[&new]);
        assert!(c.is_empty(), "{c:?}");
        let l = &w.m.listed()[0];
        assert_eq!(l.id, new);
        assert_eq!(w.m.counted().count(), 1);
        w.suspect(&old);
        for _ in 0..40 {
            let c = w.round(ROUND, &[&new]);
            assert!(c.is_empty(), "{c:?}");
        }
    }

    #[test]
    fn a_second_process_with_a_name_is_reported_and_the_real_one_comes_back() {
        let mut w = World::new();
        let real = id("ns2", 1, 2);
        let impostor = id("ns2", 5, 9);
        w.add(&real);
        w.round(ROUND, &[&real]);
        w.add(&impostor);
        w.round(ROUND, &[&real, &impostor]);
        w.round(ROUND, &[&real, &impostor]);
        let c = w.round(ROUND, &[&real, &impostor]);
        assert!(
            c.iter()
                .any(|c| matches!(c, Change::Twin { name, at } if name == "ns2" && at.len() == 2)),
            "{c:?}"
        );
        assert_eq!(w.m.listed()[0].twin, Some(real.gossip_advertise_addr));
        // The impostor goes (kill -9): within a few rounds the real one
        // speaks for the name again, alive.
        w.suspect(&impostor);
        for _ in 0..5 {
            w.round(ROUND, &[&real]);
        }
        let l = &w.m.listed()[0];
        assert_eq!(l.id, real, "{l:?}");
        assert_eq!(l.standing, Standing::Alive);
    }

    #[test]
    fn drift_is_against_the_majority() {
        let mut w = World::new();
        let ids: Vec<ChitchatId> = (2..=5).map(|n| id(&format!("ns{n}"), 1, n)).collect();
        for i in &ids {
            w.add(i);
        }
        w.digests.insert(ids[3].clone(), "odd".into());
        let all: Vec<&ChitchatId> = ids.iter().collect();
        let c = w.round(ROUND, &all);
        let drifted: Vec<&str> =
            w.m.listed()
                .iter()
                .filter(|l| l.drifted)
                .map(|l| l.id.node_id.as_ref())
                .collect();
        assert_eq!(drifted, ["ns5"]);
        assert_eq!(w.m.majority_digest(), "d");
        assert!(
            c.iter()
                .any(|c| matches!(c, Change::Drift { name, drifted: true, .. } if name == "ns5"))
        );
        // Seen from the odd node: the four others are not drifted; it is.
        let mut odd = World::new();
        odd.m = Membership::new(id("ns5", 1, 5), T);
        let others: Vec<ChitchatId> = (1..=4).map(|n| id(&format!("ns{n}"), 1, n)).collect();
        odd.now += ROUND;
        let seen: Vec<(ChitchatId, u64)> = others.iter().map(|i| (i.clone(), 2)).collect();
        odd.m.update(
            odd.now,
            "odd",
            seen.iter().map(|(id, hb)| Seen {
                id,
                heartbeat: *hb,
                phi_live: true,
                left: false,
                digest: "d",
                version: "0.1.0",
            }),
        );
        assert!(odd.m.listed().iter().all(|l| !l.drifted));
        assert!(odd.m.me_drifted());
    }

    #[test]
    fn dead_nodes_are_forgotten_on_request_or_after_forget_after() {
        let mut w = World::new();
        let ns2 = id("ns2", 1, 2);
        let ns3 = id("ns3", 1, 3);
        w.add(&ns2);
        w.add(&ns3);
        w.round(ROUND, &[&ns2, &ns3]);
        let e = w.m.forget("ns2", w.now).unwrap_err();
        assert!(e.contains("ns2 is alive"), "{e}");
        w.suspect(&ns2);
        w.suspect(&ns3);
        w.round(T.dead_after, &[]);
        let e = w.m.forget("ns2", w.now).unwrap_err();
        assert!(e.contains("vote_hold"), "{e}");
        w.round(T.vote_hold, &[]);
        assert_eq!(w.standing("ns2"), Some("dead"));
        w.m.forget("ns2", w.now).unwrap();
        w.round(ROUND, &[]);
        assert_eq!(w.standing("ns2"), None);
        assert_eq!(w.standing("ns3"), Some("dead"));
        // ns3 goes after forget_after by itself.
        let c = w.round(T.forget_after, &[]);
        assert_eq!(c, [Change::Expired("ns3".into())]);
        assert_eq!(w.standing("ns3"), None);
        // ns2 restarts: listed again.
        let ns2b = id("ns2", 2, 2);
        w.add(&ns2b);
        let c = w.round(ROUND, &[&ns2b]);
        assert_eq!(
            c,
            [Change::Joined("ns2".into(), ns2b.gossip_advertise_addr)]
        );
    }
}
