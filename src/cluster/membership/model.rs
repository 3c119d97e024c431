//! What the membership takes in (the timing rules, what gossip says of a
//! node generation) and gives out (the nodes listed, how each stands, and
//! what changed).

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
    pub(super) fn recent(&self) -> Duration {
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
