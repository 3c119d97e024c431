//! The diff as an operator reads it (`switchyard check --diff`): a block
//! per name that changes, then a count.

use std::fmt::Write as _;

use super::model::{AnswerDiff, Change, Detail};

/// At most this many keys are listed on one line of the text; the JSON
/// has them all.
const KEYS_SHOWN: usize = 12;

fn keys_text(keys: &[String]) -> String {
    if keys.len() <= KEYS_SHOWN {
        return keys.join(", ");
    }
    format!(
        "{} and {} more",
        keys[..KEYS_SHOWN].join(", "),
        keys.len() - KEYS_SHOWN
    )
}

impl AnswerDiff {
    /// The diff as an operator reads it: a block per name that changes,
    /// then a count (or `no change in answers`).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for n in &self.names {
            match n.change {
                Change::Added | Change::Removed => {
                    let verb = if n.change == Change::Added {
                        "added"
                    } else {
                        "removed"
                    };
                    let _ = write!(s, "{}: {verb} ({}", n.name, n.kind);
                    if let Some(summary) = &n.summary {
                        let _ = write!(s, ", {summary}");
                    }
                    s.push_str(")\n");
                }
                Change::Changed => {
                    let _ = writeln!(s, "{} ({})", n.name, n.kind);
                    render_details(&mut s, &n.details);
                }
            }
        }
        if self.names.is_empty() {
            let _ = writeln!(
                s,
                "no change in answers ({} name{} compared)",
                self.unchanged,
                if self.unchanged == 1 { "" } else { "s" }
            );
        } else {
            let _ = writeln!(
                s,
                "{} name{} change{}, {} unchanged",
                self.names.len(),
                if self.names.len() == 1 { "" } else { "s" },
                if self.names.len() == 1 { "s" } else { "" },
                self.unchanged
            );
        }
        s
    }
}

fn render_details(s: &mut String, details: &[Detail]) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let weights: Vec<&Detail> = details.iter().filter(|d| d.aspect == "weight").collect();
    let mut weights_done = false;
    for d in details {
        match d.aspect.as_str() {
            "weight" => {
                if weights_done {
                    continue;
                }
                weights_done = true;
                let parts: Vec<String> = weights
                    .iter()
                    .map(|w| {
                        let name = w.keys.join(", ");
                        let (s0, s1) = w.share.unwrap_or((0, 0));
                        if w.old == w.new {
                            format!("{name} {} ({s0}% -> {s1}%)", opt(&w.old))
                        } else {
                            format!("{name} {} -> {} ({s0}% -> {s1}%)", opt(&w.old), opt(&w.new))
                        }
                    })
                    .collect();
                let _ = writeln!(s, "  weights: {}", parts.join(", "));
            }
            "clients" if d.old == d.new => {
                let _ = writeln!(s, "  {}: unchanged ({})", keys_text(&d.keys), opt(&d.old));
            }
            "clients" => {
                let _ = writeln!(
                    s,
                    "  {}: {} -> {}",
                    keys_text(&d.keys),
                    opt(&d.old),
                    opt(&d.new)
                );
            }
            _ => {
                let head = if d.keys.is_empty() {
                    d.aspect.clone()
                } else {
                    format!("{} {}", d.aspect, keys_text(&d.keys))
                };
                let change = match (&d.old, &d.new) {
                    (Some(o), Some(n)) => format!("{o} -> {n}"),
                    (None, Some(n)) => n.clone(),
                    (Some(o), None) => o.clone(),
                    (None, None) => String::new(),
                };
                match &d.note {
                    Some(note) if change.is_empty() => {
                        let _ = writeln!(s, "  {head}: {note}");
                    }
                    Some(note) => {
                        let _ = writeln!(s, "  {head}: {note}: {change}");
                    }
                    None => {
                        let _ = writeln!(s, "  {head}: {change}");
                    }
                }
            }
        }
    }
}
