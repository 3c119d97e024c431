//! Pushed health: statuses set from outside (`PUT /api/v1/health/...`,
//! Alertmanager webhooks) for an endpoint's `protocol = "push"` monitor,
//! each with a time to live. Pure: the store keeps what was pushed, and
//! [`decide`] says what a push monitor counts as at a given time.

use std::collections::HashMap;

use super::Status;

/// What an expired push (or none yet) counts as: `on_stale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnStale {
    /// Online: no news is good news (alerts that stopped firing).
    Up,
    /// Degraded: a heartbeat that must keep coming.
    Down,
    /// The last pushed status stays (CheckingEndpoint before the first).
    Last,
}

impl OnStale {
    /// As configured.
    pub fn as_str(self) -> &'static str {
        match self {
            OnStale::Up => "up",
            OnStale::Down => "down",
            OnStale::Last => "last",
        }
    }
}

/// A push monitor's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PushSettings {
    /// What an expired push (or none yet) counts as.
    pub on_stale: OnStale,
    /// How long a push that gives no `ttl` counts (Alertmanager's alerts
    /// among them).
    pub ttl: std::time::Duration,
}

/// Most sources (the API, each alert) kept per push monitor: beyond it the
/// oldest is dropped.
pub const MAX_SOURCES: usize = 64;

/// One pushed status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// Online or Degraded.
    pub status: Status,
    /// Why, as given (cleaned: one line, bounded).
    pub reason: String,
    /// When it was made (ms since the epoch).
    pub at_ms: u64,
    /// When it expires (ms since the epoch).
    pub expires_ms: u64,
    /// The node that received it.
    pub node: String,
}

/// Which push monitor: the profile (as normalised), endpoint and monitor.
pub type InputKey = (String, String, String);

/// Every push received, by monitor and by source (`api`, or
/// `alert:<fingerprint>`): a newer push from the same source replaces the
/// older.
#[derive(Clone, Debug, Default)]
pub struct Store {
    inputs: HashMap<InputKey, HashMap<String, Push>>,
    /// Pushes received by this node: `[api, alertmanager]` x `[rejected,
    /// accepted]`, for metrics.
    pub counts: [[u64; 2]; 2],
}

impl Store {
    /// Counts one push received by this node.
    pub fn count(&mut self, alertmanager: bool, accepted: bool) {
        self.counts[usize::from(alertmanager)][usize::from(accepted)] += 1;
    }

    /// Records `push` from `source` unless the store has a newer one from
    /// it; returns whether it changed anything.
    pub fn put(&mut self, key: InputKey, source: &str, push: Push) -> bool {
        let sources = self.inputs.entry(key).or_default();
        if let Some(old) = sources.get(source)
            && (old.at_ms, &old.node) >= (push.at_ms, &push.node)
        {
            return false;
        }
        if !sources.contains_key(source)
            && sources.len() >= MAX_SOURCES
            && let Some(oldest) = sources
                .iter()
                .min_by_key(|(_, p)| p.at_ms)
                .map(|(s, _)| s.clone())
        {
            sources.remove(&oldest);
        }
        sources.insert(source.to_string(), push);
        true
    }

    /// The pushes of one monitor.
    pub fn get(&self, key: &InputKey) -> Vec<&Push> {
        self.inputs
            .get(key)
            .map(|s| s.values().collect())
            .unwrap_or_default()
    }

    /// Every push, with its monitor and source (for the cluster).
    pub fn all(&self) -> impl Iterator<Item = (&InputKey, &str, &Push)> {
        self.inputs
            .iter()
            .flat_map(|(k, s)| s.iter().map(move |(src, p)| (k, src.as_str(), p)))
    }

    /// Forgets pushes expired for longer than `keep_ms` (the latest of each
    /// monitor stays, for `on_stale = "last"`).
    pub fn prune(&mut self, now_ms: u64, keep_ms: u64) {
        for sources in self.inputs.values_mut() {
            let latest = sources.values().map(|p| p.at_ms).max().unwrap_or(0);
            sources.retain(|_, p| p.at_ms == latest || p.expires_ms + keep_ms > now_ms);
        }
        self.inputs.retain(|_, s| !s.is_empty());
    }
}

/// What a push monitor counts as at `now_ms`, why, and when that may change
/// by itself (the next expiry): Degraded while any unexpired push says so,
/// else Online while one says so, else what `on_stale` says.
pub fn decide(pushes: &[&Push], now_ms: u64, on_stale: OnStale) -> (Status, String, Option<u64>) {
    let fresh: Vec<&&Push> = pushes.iter().filter(|p| p.expires_ms > now_ms).collect();
    let next = fresh.iter().map(|p| p.expires_ms).min();
    let until =
        |p: &Push| crate::clock::rfc3339_seconds(crate::clock::from_unix_millis(p.expires_ms));
    let down: Vec<String> = fresh
        .iter()
        .filter(|p| p.status == Status::Degraded)
        .map(|p| format!("pushed Degraded until {}: {}", until(p), p.reason))
        .collect();
    if !down.is_empty() {
        return (Status::Degraded, down.join("; "), next);
    }
    if let Some(p) = fresh.iter().max_by_key(|p| p.at_ms) {
        return (
            Status::Online,
            format!("pushed Online until {}: {}", until(p), p.reason),
            next,
        );
    }
    let latest = pushes.iter().max_by_key(|p| p.at_ms);
    let status = match (on_stale, latest) {
        (OnStale::Up, _) => Status::Online,
        (OnStale::Down, _) => Status::Degraded,
        (OnStale::Last, Some(p)) => p.status,
        (OnStale::Last, None) => Status::CheckingEndpoint,
    };
    let why = match latest {
        None => format!("no push yet (on_stale = \"{}\")", on_stale.as_str()),
        Some(p) => format!(
            "push expired at {} (on_stale = \"{}\"; it said {}: {})",
            until(p),
            on_stale.as_str(),
            p.status,
            p.reason
        ),
    };
    (status, why, None)
}

/// A reason as shown and kept: one line, at most 200 characters.
pub fn clean_reason(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(status: Status, at_ms: u64, expires_ms: u64) -> Push {
        Push {
            status,
            reason: format!("r{at_ms}"),
            at_ms,
            expires_ms,
            node: "n".into(),
        }
    }

    #[test]
    fn degraded_wins_while_fresh_then_on_stale_decides() {
        let a = push(Status::Online, 10, 100);
        let b = push(Status::Degraded, 20, 50);
        let (s, why, next) = decide(&[&a, &b], 30, OnStale::Up);
        assert_eq!((s, next), (Status::Degraded, Some(50)));
        assert!(
            why.contains("pushed Degraded until") && why.ends_with("r20"),
            "{why}"
        );
        assert_eq!(decide(&[&a, &b], 60, OnStale::Up).0, Status::Online);
        // Both expired: on_stale.
        assert_eq!(decide(&[&a, &b], 200, OnStale::Up).0, Status::Online);
        assert_eq!(decide(&[&a, &b], 200, OnStale::Down).0, Status::Degraded);
        assert_eq!(decide(&[&a, &b], 200, OnStale::Last).0, Status::Degraded);
        let (_, why, next) = decide(&[&a, &b], 200, OnStale::Last);
        assert!(
            why.starts_with("push expired at") && next.is_none(),
            "{why}"
        );
        // Nothing pushed yet.
        assert_eq!(decide(&[], 0, OnStale::Up).0, Status::Online);
        assert_eq!(decide(&[], 0, OnStale::Last).0, Status::CheckingEndpoint);
    }

    #[test]
    fn a_source_keeps_its_newest_push_and_sources_are_bounded() {
        let mut s = Store::default();
        let k: InputKey = ("p".into(), "e".into(), "m".into());
        assert!(s.put(k.clone(), "api", push(Status::Degraded, 20, 90)));
        assert!(!s.put(k.clone(), "api", push(Status::Online, 10, 90)));
        assert_eq!(s.get(&k)[0].status, Status::Degraded);
        for i in 0..(MAX_SOURCES as u64 + 5) {
            s.put(
                k.clone(),
                &format!("alert:{i}"),
                push(Status::Online, 100 + i, 900),
            );
        }
        assert_eq!(s.get(&k).len(), MAX_SOURCES);
        s.prune(10_000, 1_000);
        assert_eq!(s.get(&k).len(), 1, "the latest stays for on_stale = last");
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(clean_reason(" a\nb\tc "), "a b c");
        assert_eq!(clean_reason(&"x".repeat(500)).len(), 200);
    }
}
