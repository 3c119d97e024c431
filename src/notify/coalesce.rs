//! Flap coalescing, per target and (profile, endpoint): the first change
//! goes out at once and opens a window; changes within the window are held,
//! and at its end go out as one message with their count and the latest
//! status (so the last state is never lost), which opens the next window.
//! A window that ends with nothing held closes.

use std::collections::HashMap;

use tokio::time::{Duration, Instant};

use super::payload::Message;

/// What a window holds.
struct Held {
    /// The status before the first held change.
    first_old: Option<String>,
    /// The latest held message.
    latest: Message,
    /// Changes held.
    count: u32,
}

struct Window {
    ends: Instant,
    held: Option<Held>,
}

/// One target's windows.
pub struct Coalescer {
    window: Duration,
    open: HashMap<(String, String), Window>,
}

impl Coalescer {
    /// Windows of `window` (zero: nothing is held).
    pub fn new(window: Duration) -> Coalescer {
        Coalescer {
            window,
            open: HashMap::new(),
        }
    }

    /// Changes the window length (open windows keep their end).
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Offers a status change for `key` at `now`: returned to send now, or
    /// held (`None`).
    pub fn offer(&mut self, key: (String, String), m: Message, now: Instant) -> Option<Message> {
        if self.window.is_zero() {
            return Some(m);
        }
        match self.open.get_mut(&key) {
            Some(w) if w.ends > now => {
                let held = w.held.get_or_insert_with(|| Held {
                    first_old: m.old_status.clone(),
                    latest: m.clone(),
                    count: 0,
                });
                held.count += m.count.max(1);
                held.latest = m;
                None
            }
            _ => {
                self.open.insert(
                    key,
                    Window {
                        ends: now + self.window,
                        held: None,
                    },
                );
                Some(m)
            }
        }
    }

    /// The held messages whose window has ended by `now`, merged (count,
    /// first old status, latest everything else). Their windows start
    /// again; empty ones close.
    pub fn due(&mut self, now: Instant) -> Vec<Message> {
        let mut out = Vec::new();
        let window = self.window;
        self.open.retain(|_, w| {
            if w.ends > now {
                return true;
            }
            match w.held.take() {
                Some(h) => {
                    let mut m = h.latest;
                    m.old_status = h.first_old;
                    m.count = h.count;
                    out.push(m);
                    w.ends = now + window;
                    true
                }
                None => false,
            }
        });
        out
    }

    /// When the next window ends.
    pub fn next_end(&self) -> Option<Instant> {
        self.open.values().map(|w| w.ends).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Kind;

    fn change(old: &str, new: &str) -> Message {
        Message {
            id: String::new(),
            event: Kind::EndpointStatus,
            time: std::time::SystemTime::now(),
            node: "n".into(),
            profile: Some("p".into()),
            endpoint: Some("e".into()),
            peer: None,
            old_status: Some(old.into()),
            new_status: Some(new.into()),
            reason: String::new(),
            count: 1,
            serving: None,
            answer: None,
            summary: String::new(),
        }
    }

    fn key(e: &str) -> (String, String) {
        ("p".into(), e.into())
    }

    #[test]
    fn first_at_once_then_one_summary_per_window_with_the_latest() {
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        let mut c = Coalescer::new(w);
        assert!(
            c.offer(key("e"), change("Online", "Degraded"), t0)
                .is_some()
        );
        // Another endpoint has its own window.
        assert!(
            c.offer(key("f"), change("Online", "Degraded"), t0)
                .is_some()
        );
        for (i, (o, n)) in [
            ("Degraded", "Online"),
            ("Online", "Degraded"),
            ("Degraded", "Online"),
        ]
        .iter()
        .enumerate()
        {
            let at = t0 + Duration::from_secs(10 * (i as u64 + 1));
            assert!(c.offer(key("e"), change(o, n), at).is_none());
        }
        assert_eq!(c.next_end(), Some(t0 + w));
        assert!(c.due(t0 + Duration::from_secs(59)).is_empty());
        let out = c.due(t0 + w);
        assert_eq!(out.len(), 1, "f held nothing: its window just closes");
        assert_eq!(out[0].count, 3);
        assert_eq!(out[0].old_status.as_deref(), Some("Degraded"));
        assert_eq!(out[0].new_status.as_deref(), Some("Online"));
        // The summary opened the next window: a change within it is held.
        assert!(
            c.offer(
                key("e"),
                change("Online", "Degraded"),
                t0 + w + Duration::from_secs(1)
            )
            .is_none()
        );
        // f's window closed: its next change goes at once.
        assert!(
            c.offer(
                key("f"),
                change("Degraded", "Online"),
                t0 + w + Duration::from_secs(1)
            )
            .is_some()
        );
        let out = c.due(t0 + w * 2);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, 1);
        // Quiet for a window: closed, the next change is immediate.
        assert!(c.due(t0 + w * 3).is_empty());
        assert!(
            c.offer(key("e"), change("Degraded", "Online"), t0 + w * 3)
                .is_some()
        );
    }

    #[test]
    fn zero_window_holds_nothing() {
        let mut c = Coalescer::new(Duration::ZERO);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(c.offer(key("e"), change("a", "b"), t0).is_some());
        }
        assert_eq!(c.next_end(), None);
    }
}
