//! One node generation as this node follows it, and the pure rules over
//! the generations of one name: when a generation is alive (phi and the
//! `dead_after` floor), which one speaks for the name, which are twins, how
//! the name stands, and what changed since the last round.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chitchat::ChitchatId;

use super::model::{Change, Seen, Standing, Timing};

/// One generation as this node follows it.
#[derive(Clone, Debug)]
pub(super) struct Gen {
    pub(super) heartbeat: u64,
    pub(super) first_seen: Instant,
    /// Its heartbeat last advanced (or it was first seen).
    pub(super) heard_at: Instant,
    /// The advance before that.
    pub(super) heard_before: Option<Instant>,
    /// In the last round's gossip state.
    pub(super) present: bool,
    pub(super) alive: bool,
    pub(super) ever_alive: bool,
    pub(super) left: bool,
    pub(super) died_at: Option<Instant>,
    pub(super) digest: String,
    pub(super) version: String,
}

impl Gen {
    /// A generation first seen now, at `heartbeat`.
    pub(super) fn new(heartbeat: u64, now: Instant) -> Gen {
        Gen {
            heartbeat,
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
        }
    }

    /// Takes what gossip says of it this round. Dead needs two things: the
    /// failure detector's suspicion and silence for at least `dead_after`.
    pub(super) fn follow(&mut self, s: &Seen<'_>, now: Instant, dead_after: Duration) {
        self.present = true;
        if s.heartbeat > self.heartbeat {
            self.heartbeat = s.heartbeat;
            self.heard_before = Some(self.heard_at);
            self.heard_at = now;
        }
        self.left |= s.left;
        if self.digest != s.digest {
            self.digest = s.digest.to_string();
        }
        if self.version != s.version {
            self.version = s.version.to_string();
        }
        let silent = now.saturating_duration_since(self.heard_at);
        let alive = !self.left
            && (s.phi_live
                // Suspected, but not silent long enough yet.
                || (self.ever_alive && self.alive && silent < dead_after));
        self.set_alive(alive, now);
    }

    pub(super) fn set_alive(&mut self, alive: bool, now: Instant) {
        if alive {
            self.alive = true;
            self.ever_alive = true;
            self.died_at = None;
        } else if self.alive {
            self.alive = false;
            self.died_at = Some(now);
        }
    }

    /// Alive and heard recently: "beating now" (for choosing between
    /// generations of one name).
    fn beating(&self, now: Instant, t: &Timing) -> bool {
        self.alive && now.saturating_duration_since(self.heard_at) < t.recent()
    }

    /// How the name it speaks for stands: alive; dead but its vote held
    /// for `vote_hold` (not after a clean leave); or dead.
    pub(super) fn standing(&self, now: Instant, t: &Timing) -> Standing {
        if self.alive {
            Standing::Alive
        } else {
            let since = self.died_at.unwrap_or(self.first_seen);
            let until = since + t.vote_hold;
            if self.ever_alive && !self.left && self.died_at.is_some() && now < until {
                Standing::Held { since, until }
            } else {
                Standing::Dead { since }
            }
        }
    }
}

/// The generation that speaks for a name (`gens` newest first): the newest
/// generation beating now, else the newest alive, else the newest.
pub(super) fn speaker<'a>(
    gens: &[(&'a ChitchatId, &'a Gen)],
    now: Instant,
    t: &Timing,
) -> (&'a ChitchatId, &'a Gen) {
    gens.iter()
        .find(|(_, g)| g.beating(now, t))
        .or_else(|| gens.iter().find(|(_, g)| g.alive))
        .copied()
        .unwrap_or(gens[0])
}

/// Two processes under one name (`gens` newest first): an older generation
/// that beat twice since a newer one appeared (a restart's old generation
/// stops beating), or, for this node's own name (`mine`), any other
/// generation beating. Their addresses and generations.
pub(super) fn twins(
    gens: &[(&ChitchatId, &Gen)],
    mine: bool,
    now: Instant,
    t: &Timing,
) -> Vec<(SocketAddr, u64)> {
    let beating = |g: &Gen| g.beating(now, t);
    let mut twins: Vec<(SocketAddr, u64)> = Vec::new();
    if mine {
        for (oid, og) in gens {
            if og.alive && og.heard_before.is_some_and(|b| b > og.first_seen) {
                twins.push((oid.gossip_advertise_addr, oid.generation_id));
            }
        }
    } else {
        for (nid, ng) in gens.iter().filter(|(_, g)| g.alive) {
            for (oid, og) in gens
                .iter()
                .filter(|(o, g)| g.alive && o.generation_id < nid.generation_id && beating(g))
            {
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
    twins
}

/// What changed for a name from how it stood last round (`prev`, `None`:
/// not listed then) to how it stands now: joined, alive again, dead (and
/// for how long its vote is held), left, or its hold ended.
pub(super) fn transition(
    name: &str,
    addr: SocketAddr,
    prev: Option<Standing>,
    standing: Standing,
    left: bool,
    now: Instant,
) -> Option<Change> {
    match (prev, standing) {
        (None, Standing::Alive) => Some(Change::Joined(name.into(), addr)),
        (Some(Standing::Held { .. } | Standing::Dead { .. }), Standing::Alive) => {
            Some(Change::AliveAgain(name.into(), addr))
        }
        (Some(Standing::Alive), Standing::Held { until, .. }) => Some(Change::Dead(
            name.into(),
            addr,
            until.saturating_duration_since(now),
        )),
        (Some(Standing::Alive), Standing::Dead { .. }) if left => {
            Some(Change::Left(name.into(), addr))
        }
        (Some(Standing::Alive), Standing::Dead { .. }) => {
            Some(Change::Dead(name.into(), addr, Duration::ZERO))
        }
        (Some(Standing::Held { .. }), Standing::Dead { .. }) => {
            Some(Change::HoldEnded(name.into()))
        }
        _ => None,
    }
}
