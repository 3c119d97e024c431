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

mod generation;
mod model;

pub use model::{Change, Listed, Seen, Standing, Timing};

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chitchat::ChitchatId;

use generation::{Gen, speaker, transition, twins};

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

/// What listing the names gives, before drift is measured.
#[derive(Default)]
struct Relisted {
    changes: Vec<Change>,
    listed: Vec<Listed>,
    /// Names dead for `forget_after`: no longer listed.
    expired: Vec<String>,
    /// Another process under this node's name: its address.
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
            let g = self
                .gens
                .entry(s.id.clone())
                .or_insert_with(|| Gen::new(s.heartbeat, now));
            g.follow(&s, now, self.timing.dead_after);
        }
        // Generations gossip no longer carries (collected): dead.
        for g in self.gens.values_mut().filter(|g| !g.present) {
            g.set_alive(false, now);
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

    /// Lists one entry per name and derives the changes.
    fn relist(&mut self, now: Instant) -> Vec<Change> {
        let mut out = Relisted::default();
        for (name, mut gens) in self.by_name() {
            gens.sort_by_key(|(id, _)| std::cmp::Reverse(id.generation_id));
            self.list_name(name, &gens, now, &mut out);
        }
        let Relisted {
            mut changes,
            mut listed,
            expired,
            my_twin,
        } = out;
        self.expire(expired, &mut changes);
        let majority = self.majority(&listed);
        let drift_changes = self.drift(&mut listed, &majority);
        self.my_twin = my_twin;
        changes.extend(drift_changes);
        self.majority = Some(majority);
        self.listed = listed;
        changes
    }

    /// The generations known, by name (forgotten names left out).
    fn by_name(&self) -> BTreeMap<&str, Vec<(&ChitchatId, &Gen)>> {
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
        by_name
    }

    /// Lists one name (`gens`: its generations, newest first) into `out`:
    /// the generation that speaks for it, how it stands, its twin, and
    /// what changed; or, for this node's own name, only its twin; or
    /// nothing once it has been dead for `forget_after`.
    fn list_name(
        &self,
        name: &str,
        gens: &[(&ChitchatId, &Gen)],
        now: Instant,
        out: &mut Relisted,
    ) {
        let t = self.timing;
        let (id, g) = speaker(gens, now, &t);
        let mine = name == &*self.me.node_id;
        let twins = twins(gens, mine, now, &t);
        if mine {
            // This node's own generation is listed by the caller; other
            // generations of its name only as twins.
            let twin = twins.first().map(|t| t.0);
            if twin.is_some() && self.my_twin.is_none() {
                out.changes.push(Change::Twin {
                    name: name.to_string(),
                    at: twins,
                });
            }
            out.my_twin = twin;
            return;
        }
        let standing = g.standing(now, &t);
        if let Standing::Dead { since } = standing
            && now.saturating_duration_since(since) >= t.forget_after
        {
            out.expired.push(name.to_string());
            return;
        }
        let twin = twins
            .iter()
            .find(|(a, g)| *g != id.generation_id || *a != id.gossip_advertise_addr)
            .map(|t| t.0);
        let addr = id.gossip_advertise_addr;
        let prev = self.last.get(name).copied();
        if let Some(change) = transition(name, addr, prev.map(|p| p.0), standing, g.left, now) {
            out.changes.push(change);
        }
        if twin.is_some() && prev.is_none_or(|p| p.2.is_none()) {
            out.changes.push(Change::Twin {
                name: name.to_string(),
                at: twins.clone(),
            });
        }
        out.listed.push(Listed {
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

    /// Drops the names dead for `forget_after`, saying so when they were
    /// listed.
    fn expire(&mut self, expired: Vec<String>, changes: &mut Vec<Change>) {
        for name in expired {
            if self.last.remove(&name).is_some() {
                changes.push(Change::Expired(name.clone()));
            }
            // Forget its generations once gossip has let go of them too.
            self.gens.retain(|id, g| *id.node_id != *name || g.present);
        }
    }

    /// The digest drift is measured against.
    fn majority(&self, listed: &[Listed]) -> String {
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
        match (tops.next(), tops.next()) {
            (Some((d, _)), None) => d.to_string(),
            _ => self.my_digest.clone(),
        }
    }

    /// Marks each listed node drifted or not against `majority`, and this
    /// node too; returns the drift changes. Remembers how each name heard
    /// alive stands (standing, drift, twin) for the next round's changes.
    fn drift(&mut self, listed: &mut [Listed], majority: &str) -> Vec<Change> {
        let mut drift_changes = Vec::new();
        for l in listed {
            l.drifted = !l.digest.is_empty() && l.digest != majority;
            let was = self.last.get(l.id.node_id.as_ref()).map(|p| p.1);
            if !l.digest.is_empty() && was.is_some_and(|w| w != l.drifted)
                || was.is_none() && l.drifted
            {
                drift_changes.push(Change::Drift {
                    name: l.id.node_id.to_string(),
                    drifted: l.drifted,
                    digest: l.digest.clone(),
                    majority: majority.to_string(),
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
                majority: majority.to_string(),
            });
        }
        self.me_drifted = me_drifted;
        drift_changes
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
