//! One round of the combining task, stage by stage: publish this node's
//! observations, follow who counts, answer the re-sync marks of peers back
//! from a stall, combine everyone's observations, and show the outcome.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chitchat::{Chitchat, ChitchatId};

use super::announce::announce;
use super::combine::{Combined, Heard};
use super::keys::{
    ACK, DIGEST, FORGET, IMPAIRED, LEFT, SYNC, VERSION, encode_impaired, impaired_note,
};
use super::membership::{Change, Membership, Seen, Timing};
use super::node::Cluster;
use super::own::Own;
use super::view::Me;
use crate::state::Shared;

/// What the combining task keeps between rounds.
pub(super) struct RoundState {
    /// Who counts (see [`super::membership`]).
    pub(super) members: Membership,
    /// What this node publishes of its own observations.
    own: Own,
    /// What combining remembers.
    combined: Combined,
    /// Re-syncs after stalls so far.
    pub(super) resyncs: u64,
}

impl RoundState {
    pub(super) fn new(me: ChitchatId, timing: Timing) -> RoundState {
        RoundState {
            members: Membership::new(me, timing),
            own: Own::default(),
            combined: Combined::default(),
            resyncs: 0,
        }
    }
}

impl Cluster {
    /// Publishes this node's changed observations (gossiping them at once
    /// to every live node), then combines everyone's into the cells.
    pub(super) async fn round(&self, shared: &Shared, st: &mut RoundState) {
        let probes = shared.probes.load_full();
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        if !st.own.follows(&probes) {
            st.own.follow(&probes, guard.self_node_state());
            st.combined.reset(probes.len());
        }
        // 1. Whether this node votes at all (set before its observations,
        // so no peer counts one made while its prober was impaired), then
        // its own observations.
        let episode = shared.impairment.current();
        let mine = encode_impaired(episode.as_ref());
        let me = guard.self_node_state();
        let stopped_or_resumed = me.get(IMPAIRED).unwrap_or_default() != mine;
        if stopped_or_resumed {
            me.set(IMPAIRED, &mine);
        }
        let changed = st.own.publish(&probes, guard.self_node_state()) || stopped_or_resumed;
        let my_digest = st.own.publish_digest(shared, guard.self_node_state());
        // 2. Who counts.
        let now = std::time::Instant::now();
        let changes = self.who_counts(&mut st.members, &guard, now, &my_digest);
        let live: Vec<(ChitchatId, Option<std::time::Instant>)> = st
            .members
            .counted()
            .map(|(id, held)| (id.clone(), held))
            .collect();
        self.answer_resync_marks(&live, &mut guard);
        if changed {
            self.spread(&live);
        }
        // 3. Combine, where an input changed (or every FULL_EVERY, which
        // refreshes the probe summaries shown).
        let states: Vec<_> = live.iter().map(|(id, _)| guard.node_state(id)).collect();
        let heard = Heard {
            live: &live,
            impaired: states
                .iter()
                .map(|s| impaired_note(s.and_then(|s| s.get(IMPAIRED))))
                .collect(),
            states,
            members: &st.members,
            now,
            me_impaired: impaired_note(Some(&mine)),
        };
        self.combine(shared, &probes, &st.own.keys, &mut st.combined, &heard);
        drop(heard);
        // 4. What the API and the page show.
        let mut impaired: std::collections::HashMap<String, String> = st
            .members
            .listed()
            .iter()
            .filter_map(|l| {
                let note = impaired_note(guard.node_state(&l.id)?.get(IMPAIRED))?;
                Some((l.id.node_id.to_string(), note))
            })
            .collect();
        if let Some(note) = impaired_note(Some(&mine)) {
            impaired.insert(self.node.clone(), note);
        }
        let me_id = guard.self_chitchat_id().clone();
        let my_beat: u64 = guard.node_state(&me_id).map_or(0, |s| s.heartbeat().into());
        drop(guard);
        for change in changes {
            announce(shared, &self.node, change);
        }
        let me = Me {
            address: me_id.gossip_advertise_addr,
            heartbeat: my_beat,
            digest: my_digest,
            impaired,
        };
        let summary = self.summary(&st.members, &st.combined.inputs, &live, me, now);
        shared.cluster.store(Some(Arc::new(summary)));
    }

    /// Feeds the membership what gossip knows of every node generation,
    /// then forgets the nodes forgotten on another node; returns what
    /// changed.
    fn who_counts(
        &self,
        members: &mut Membership,
        guard: &Chitchat,
        now: Instant,
        my_digest: &str,
    ) -> Vec<Change> {
        let phi_live: std::collections::HashSet<&ChitchatId> = guard.live_nodes().collect();
        let seen: Vec<Seen<'_>> = guard
            .node_states()
            .iter()
            .map(|(id, state)| Seen {
                id,
                heartbeat: state.heartbeat().into(),
                phi_live: phi_live.contains(id),
                left: state.get(LEFT).is_some(),
                digest: state.get(DIGEST).unwrap_or_default(),
                version: state.get(VERSION).unwrap_or_default(),
            })
            .collect();
        let mut changes = members.update(now, my_digest, seen);
        // Nodes forgotten on another node (`switchyard cluster forget`).
        let forgets: Vec<(String, u64)> = members
            .counted()
            .filter(|(_, held)| held.is_none())
            .filter_map(|(id, _)| guard.node_state(id))
            .flat_map(|state| {
                state.iter_prefix(FORGET).filter_map(|(k, v)| {
                    Some((k.strip_prefix(FORGET)?.to_string(), v.value.parse().ok()?))
                })
            })
            .collect();
        for (name, generation) in forgets {
            if name != self.node && members.forget_gossiped(&name, generation, now) {
                changes.push(Change::Forgotten(name));
            }
        }
        changes
    }

    /// Answers the re-sync marks of peers back from a stall, at once: when
    /// the answer reaches such a peer, so has everything this node set
    /// before it (see [`super::keys::SYNC`]).
    fn answer_resync_marks(&self, live: &[(ChitchatId, Option<Instant>)], guard: &mut Chitchat) {
        let marks: Vec<(String, String, SocketAddr)> = live
            .iter()
            .filter_map(|(id, _)| {
                let mark = guard.node_state(id)?.get(SYNC)?;
                Some((
                    format!("{ACK}{}", id.node_id),
                    mark.to_string(),
                    id.gossip_advertise_addr,
                ))
            })
            .collect();
        for (key, mark, addr) in marks {
            if guard.self_node_state().get(&key) != Some(mark.as_str()) {
                guard.self_node_state().set(key, mark);
                let _ = self.handle.gossip(addr);
            }
        }
    }

    /// Gossips at once with every peer heard (not held), so a changed
    /// observation reaches them now rather than at their turn.
    fn spread(&self, live: &[(ChitchatId, Option<Instant>)]) {
        for (id, held) in live {
            if held.is_none() {
                let _ = self.handle.gossip(id.gossip_advertise_addr);
            }
        }
    }
}
