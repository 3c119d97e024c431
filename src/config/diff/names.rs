//! Comparing name by name: the zones (signed or not), the static record
//! sets, and the profiles each side has (added, removed, or changed as
//! `profile.rs` finds).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::answers::answer;
use super::clients::Spec;
use super::model::{Change, Detail, NameDiff, Side};
use super::profile::profile_changes;
use crate::config::ProbeKey;
use crate::snapshot::EndpointKey;
use crate::snapshot::{ProfileId, Snapshot};

/// A name without its trailing dot.
fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_string()
}

pub(super) fn zones(old: &Snapshot, new: &Snapshot, out: &mut Vec<NameDiff>, compared: &mut usize) {
    let by_origin = |t: &Snapshot| -> BTreeMap<String, bool> {
        t.zones
            .iter()
            .map(|z| (bare(z.origin.as_str()), z.signer.is_some()))
            .collect()
    };
    let (o, n) = (by_origin(old), by_origin(new));
    let signed = |s: bool| if s { "signed" } else { "unsigned" };
    for name in o.keys().chain(n.keys()).collect::<BTreeSet<_>>() {
        *compared += 1;
        let (change, summary, details) = match (o.get(name), n.get(name)) {
            (Some(&a), Some(&b)) if a == b => continue,
            (Some(&a), Some(&b)) => (
                Change::Changed,
                None,
                vec![Detail::new(
                    "dnssec",
                    Some(signed(a).to_string()),
                    Some(signed(b).to_string()),
                )],
            ),
            (None, Some(&b)) => (Change::Added, Some(signed(b).to_string()), Vec::new()),
            (Some(&a), None) => (Change::Removed, Some(signed(a).to_string()), Vec::new()),
            (None, None) => continue,
        };
        out.push(NameDiff {
            name: name.clone(),
            kind: "zone".into(),
            change,
            summary,
            details,
        });
    }
}

/// Static records by name and type (SOA left out: unless set, its serial
/// follows the rest of the content, so it changes with any change).
type RecordSets = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn record_sets(t: &Snapshot) -> RecordSets {
    let mut all = RecordSets::new();
    for node in &t.nodes {
        for set in node.records.iter().filter(|s| s.rtype != 6) {
            let values: Vec<String> = set.rrs.iter().map(record_text).collect();
            all.entry(bare(node.name.as_str()))
                .or_default()
                .insert(rtype_name(set.rtype), values);
        }
    }
    all
}

use crate::proto::rr::type_name as rtype_name;

/// A record's TTL and data as a zone file writes them.
fn record_text(rr: &crate::proto::rr::WireRr) -> String {
    rr.data_text()
}

pub(super) fn records(
    old: &Snapshot,
    new: &Snapshot,
    out: &mut Vec<NameDiff>,
    compared: &mut usize,
) {
    let (o, n) = (record_sets(old), record_sets(new));
    // Names of zones that come or go are reported with the zone.
    let zone_of = |t: &Snapshot, name: &str| {
        crate::proto::name::DomainName::parse(name, None)
            .ok()
            .and_then(|d| t.zone_of(&d))
            .map(|z| bare(t.zones[z as usize].origin.as_str()))
    };
    for name in o.keys().chain(n.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (o.get(name), n.get(name));
        if zone_of(old, name) != zone_of(new, name) && (a.is_none() || b.is_none()) {
            continue;
        }
        *compared += 1;
        let list = |sets: &BTreeMap<String, Vec<String>>| {
            sets.iter()
                .map(|(t, v)| format!("{t} {}", v.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (change, summary, details) = match (a, b) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => {
                let types: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                let details = types
                    .into_iter()
                    .filter(|t| a.get(*t) != b.get(*t))
                    .map(|t| {
                        Detail::new(
                            t,
                            a.get(t).map(|v| v.join(", ")),
                            b.get(t).map(|v| v.join(", ")),
                        )
                    })
                    .collect();
                (Change::Changed, None, details)
            }
            (None, Some(b)) => (Change::Added, Some(list(b)), Vec::new()),
            (Some(a), None) => (Change::Removed, Some(list(a)), Vec::new()),
            (None, None) => continue,
        };
        out.push(NameDiff {
            name: name.clone(),
            kind: "records".into(),
            change,
            summary,
            details,
        });
    }
}

pub(super) fn profiles(
    old: Side<'_>,
    new: Side<'_>,
    out: &mut Vec<NameDiff>,
    compared: &mut usize,
) {
    let by_name = |t: &Snapshot| -> BTreeMap<String, ProfileId> {
        t.profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (bare(p.name.as_str()), i as ProfileId))
            .collect()
    };
    let (o, n) = (by_name(old.table), by_name(new.table));
    let (old_probes, new_probes) = (probe_keys(old), probe_keys(new));
    for name in o.keys().chain(n.keys()).collect::<BTreeSet<_>>() {
        *compared += 1;
        let entry = match (o.get(name), n.get(name)) {
            (Some(&a), Some(&b)) => {
                let details = profile_changes(old, a, new, b, &old_probes, &new_probes);
                if details.is_empty() {
                    continue;
                }
                NameDiff {
                    name: name.clone(),
                    kind: new.table.profiles[b as usize].routing.name().into(),
                    change: Change::Changed,
                    summary: None,
                    details,
                }
            }
            (None, Some(&b)) => NameDiff {
                name: name.clone(),
                kind: new.table.profiles[b as usize].routing.name().into(),
                change: Change::Added,
                summary: Some(format!("answers {}", answer(new.table, b, &Spec::Everyone))),
                details: Vec::new(),
            },
            (Some(&a), None) => NameDiff {
                name: name.clone(),
                kind: old.table.profiles[a as usize].routing.name().into(),
                change: Change::Removed,
                summary: Some(format!(
                    "was answering {}",
                    answer(old.table, a, &Spec::Everyone)
                )),
                details: Vec::new(),
            },
            (None, None) => continue,
        };
        out.push(entry);
    }
}

/// Each monitored endpoint's probe identity.
fn probe_keys<'a>(side: Side<'a>) -> HashMap<EndpointKey, &'a ProbeKey> {
    let t = side.table;
    let mut keys = HashMap::new();
    for spec in side.probes {
        for &id in &spec.endpoints {
            if let Some(e) = t.endpoints.get(id as usize)
                && let Some(p) = t.profiles.get(e.profile as usize)
            {
                keys.insert(EndpointKey::new(p.name.as_str(), &e.name), &spec.key);
            }
        }
    }
    keys
}
