//! The keys of a profile, its monitor and its endpoints that are not
//! carried over and were not reported where they were read: reported last,
//! grouped so that a key repeated in every endpoint is one line.

use std::collections::BTreeMap;

use serde_json::Value;

use super::cx::{Cx, short};
use super::keys::{ENDPOINT_KEYS, Fate, KeyTable, MONITOR_KEYS, PROFILE_KEYS, fate, is_empty};
use crate::import::arm::{Flat, FoundProfile};

impl Cx<'_> {
    /// Reports every key of the profile (and its monitor and endpoints)
    /// that is not carried over and was not reported where it was read:
    /// dropped ones one line each, keys of another routing method one line
    /// per key, and the keys that describe the Azure resource together.
    pub(super) fn not_carried_over(&mut self, f: &FoundProfile, routing: &str) {
        let mut resource: Vec<String> = Vec::new();
        let monitor = f
            .profile
            .fields
            .get("monitorConfig")
            .map(|m| Flat::new(String::new(), m));
        let mut objects: Vec<(&Flat, &str, KeyTable)> = vec![(&f.profile, "", PROFILE_KEYS)];
        if let Some(m) = &monitor {
            objects.push((m, "monitorConfig.", MONITOR_KEYS));
        }
        for (flat, prefix, table) in objects {
            for (k, v) in &flat.fields {
                if is_empty(v) {
                    continue;
                }
                match fate(table, k) {
                    Some(Fate::Resource) => resource.push(format!("{prefix}{k}")),
                    Some(Fate::Dropped(level, why)) => {
                        let at = f.profile.path(&format!("{prefix}{k}"));
                        self.say(level, &at, format!("{} {why}", short(v)));
                    }
                    _ => {}
                }
            }
        }
        let mut unused: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut endpoint_resource: Vec<String> = Vec::new();
        for e in &f.endpoints {
            let name = e.fields.get("name").and_then(Value::as_str).unwrap_or("?");
            for (k, v) in &e.fields {
                if is_empty(v) || self.expressions.contains(&e.path(k)) {
                    continue;
                }
                match fate(ENDPOINT_KEYS, k) {
                    Some(Fate::Only(method)) if method != routing => {
                        unused
                            .entry(k.clone())
                            .or_default()
                            .push((e.path(k), format!("{} ({name})", short(v))));
                    }
                    Some(Fate::Resource) if !endpoint_resource.contains(k) => {
                        endpoint_resource.push(k.clone());
                    }
                    Some(Fate::Dropped(level, why)) => {
                        self.say(level, &e.path(k), format!("{} ({name}) {why}", short(v)));
                    }
                    _ => {}
                }
            }
        }
        for seen in unused.values() {
            let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
            let at = indexes_together(&paths);
            let values: Vec<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
            self.note(
                &at,
                format!(
                    "{} not carried over: {routing} routing does not use it (nor does Azure's)",
                    values.join(", ")
                ),
            );
        }
        resource.sort_by_key(|k| (k.contains('.'), k.clone()));
        endpoint_resource.sort();
        resource.extend(endpoint_resource.iter().map(|k| format!("endpoints[].{k}")));
        if !resource.is_empty() {
            // In a template, which profile.
            let at = if f.profile.at.is_empty() {
                resource.join(", ")
            } else {
                format!("{}: {}", f.profile.at, resource.join(", "))
            };
            self.note(
                &at,
                "not carried over: they describe the Azure resource and its state at export (Switchyard probes for itself), not how it routes",
            );
        }
    }
}

/// JSON paths that differ only in one index, written as one:
/// `endpoints[0].weight`, `endpoints[2].weight` -> `endpoints[0,2].weight`;
/// others are listed.
fn indexes_together(paths: &[&str]) -> String {
    let split = |p: &str| -> Option<(String, String, String)> {
        let open = p.find('[')?;
        let close = open + p[open..].find(']')?;
        let index = &p[open + 1..close];
        index.bytes().all(|b| b.is_ascii_digit()).then(|| {
            (
                p[..open].to_string(),
                index.to_string(),
                p[close + 1..].to_string(),
            )
        })
    };
    let parts: Option<Vec<_>> = paths.iter().map(|p| split(p)).collect();
    match parts {
        Some(parts)
            if parts.len() > 1
                && parts
                    .iter()
                    .all(|(a, _, c)| *a == parts[0].0 && *c == parts[0].2) =>
        {
            let indexes: Vec<&str> = parts.iter().map(|(_, i, _)| i.as_str()).collect();
            format!("{}[{}]{}", parts[0].0, indexes.join(","), parts[0].2)
        }
        _ => paths.join(", "),
    }
}
