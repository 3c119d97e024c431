//! What the handle and the dispatcher share: the event queue between
//! them, the targets' configuration and counters, and the counts of events
//! lost and pending.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::event::Event;
use super::target::{TargetConfig, TargetStats};

/// The state behind a `Notifier` and its clones.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) tx: mpsc::Sender<Event>,
    pub(super) rx: Mutex<Option<mpsc::Receiver<Event>>>,
    pub(super) config: watch::Sender<Arc<Vec<TargetConfig>>>,
    /// Counters by target name, in configuration order.
    pub(super) stats: Mutex<Vec<(String, Arc<TargetStats>)>>,
    /// Events dropped before reaching any target (the dispatcher's queue
    /// was full).
    pub(super) lost: AtomicU64,
    /// When a drop was last logged (Unix ms), to log at most one a minute.
    pub(super) lost_logged: AtomicU64,
    /// Events emitted and not yet handed to the targets' queues.
    pub(super) pending: AtomicU64,
    /// Woken by every event, targets or not (see `Notifier::event`).
    pub(super) wake: tokio::sync::Notify,
}

impl Inner {
    /// Every target's counters, by name.
    pub(super) fn stats(&self) -> Vec<(String, Arc<TargetStats>)> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The counters of the target `name` (new ones if it has none).
    pub(super) fn stats_of(&self, name: &str) -> Arc<TargetStats> {
        self.stats()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_default()
    }
}
