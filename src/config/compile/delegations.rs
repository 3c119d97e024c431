//! Stage: zone cuts. A name below its apex with NS records delegates its
//! subtree to other name servers: queries at or below it get a referral.
//! The cut holds NS (and DS) only; below it, only the glue addresses of
//! its own name servers.

use super::*;

impl Loader<'_> {
    /// Marks cuts and the names below them, and rejects what cannot be
    /// there. `defined_at[i]` is where node `i` was first written.
    pub(super) fn delegations(&mut self, defined_at: &[At], sources: &[NodeSources]) {
        let record_at = |node: usize, rtype: u16, table: &Snapshot| -> Option<At> {
            let set = table.nodes[node]
                .records
                .iter()
                .position(|s| s.rtype == rtype)?;
            let s = sources.iter().find(|s| s.node as usize == node)?;
            s.sets.get(set)?.first().cloned()
        };
        let n = self.table.nodes.len();
        for id in 0..n {
            let node = &self.table.nodes[id];
            let apex = self.table.zones[node.zone as usize].origin == node.name;
            if !apex && node.set(rtype::NS).is_some() {
                self.table.nodes[id].cut = Some(id as NodeId);
            }
        }
        for id in 0..n {
            // The nearest cut above this name, in its zone.
            let node = &self.table.nodes[id];
            let origin = &self.table.zones[node.zone as usize].origin;
            let mut above = None;
            let mut cur = node.name.parent();
            while let Some(name) = cur {
                if !name.is_within(origin) {
                    break;
                }
                if let Some(c) = self.table.node_id(name.wire())
                    && self.table.nodes[c as usize].cut == Some(c)
                {
                    above = Some(c);
                }
                cur = name.parent();
            }
            let name = node.name.clone();
            if node.cut == Some(id as NodeId) {
                if let Some(c) = above {
                    let msg = format!(
                        "{name} is below the delegation {}: delegate it from the child zone",
                        self.table.nodes[c as usize].name
                    );
                    self.located_error(defined_at.get(id), msg);
                    continue;
                }
                let others: Vec<u16> = node
                    .records
                    .iter()
                    .map(|s| s.rtype)
                    .filter(|&t| t != rtype::NS && t != rtype::DS)
                    .collect();
                for t in others {
                    let at = record_at(id, t, &self.table);
                    let msg = format!(
                        "{name} is delegated (it has NS records), so it holds only NS and DS here; its {} record belongs in the child zone",
                        crate::proto::rr::type_name(t)
                    );
                    self.located_error(at.as_ref().or(defined_at.get(id)), msg);
                }
                continue;
            }
            let Some(cut) = above else {
                if node.set(rtype::DS).is_some() {
                    let at = record_at(id, rtype::DS, &self.table);
                    let msg = if self.table.zones[node.zone as usize].origin == name {
                        format!(
                            "{name} is a zone apex: its DS records belong in the parent zone (`switchyard dnssec ds` prints them)"
                        )
                    } else {
                        format!(
                            "DS records belong at a delegation: {name} has no NS records (add them, or remove the DS)"
                        )
                    };
                    self.located_error(at.as_ref(), msg);
                }
                continue;
            };
            self.table.nodes[id].cut = Some(cut);
            let node = &self.table.nodes[id];
            let cut_name = self.table.nodes[cut as usize].name.clone();
            let is_ns_host = self.table.nodes[cut as usize]
                .set(rtype::NS)
                .is_some_and(|s| s.rrs.iter().any(|rr| rr.target() == Some(&name)));
            let hint = format!(
                "{name} is below the delegation {cut_name}: names there belong to the child zone"
            );
            if node.profile.is_some() {
                self.located_error(defined_at.get(id), format!("profile {hint}"));
                continue;
            }
            let bad: Vec<u16> = node
                .records
                .iter()
                .map(|s| s.rtype)
                .filter(|&t| !(is_ns_host && (t == rtype::A || t == rtype::AAAA)))
                .collect();
            for t in bad {
                let at = record_at(id, t, &self.table);
                let msg = if t == rtype::A || t == rtype::AAAA {
                    format!(
                        "{hint}; only the addresses of its name servers (glue) may be given here"
                    )
                } else {
                    hint.clone()
                };
                self.located_error(at.as_ref().or(defined_at.get(id)), msg);
            }
        }
        // Name servers inside the delegated subtree need glue.
        for id in 0..n {
            let node = &self.table.nodes[id];
            if node.cut != Some(id as NodeId) {
                continue;
            }
            let Some(ns) = node.set(rtype::NS) else {
                continue;
            };
            let missing: Vec<DomainName> = ns
                .rrs
                .iter()
                .filter_map(|rr| rr.target())
                .filter(|t| t.is_within(&node.name))
                .filter(|t| {
                    !self.table.node_id(t.wire()).is_some_and(|g| {
                        let g = &self.table.nodes[g as usize];
                        g.set(rtype::A).is_some() || g.set(rtype::AAAA).is_some()
                    })
                })
                .cloned()
                .collect();
            let at = record_at(id, rtype::NS, &self.table);
            let cut_name = node.name.clone();
            for host in missing {
                let msg = format!(
                    "{host} is inside the delegation {cut_name} and needs glue: add an A or AAAA record for it"
                );
                self.located_error(at.as_ref(), msg);
            }
        }
    }

    /// An error at `at`, or about the configuration as a whole when the
    /// place is unknown.
    fn located_error(&mut self, at: Option<&At>, msg: String) {
        match at {
            Some(at) => self.r.error(at, msg),
            None => {
                let path = self
                    .r
                    .sources
                    .first()
                    .map(|s| s.path.clone())
                    .unwrap_or_default();
                self.r.diag.file_error(&path, msg);
            }
        }
    }

    /// A profile at a zone apex answers addresses: a nested child that
    /// could answer a CNAME would put one at the apex.
    pub(super) fn check_apex_profiles(&mut self) {
        let mut problems = Vec::new();
        for p in &self.table.profiles {
            let node = &self.table.nodes[p.node as usize];
            if self.table.zones[node.zone as usize].origin != node.name {
                continue;
            }
            let mut stack: Vec<ProfileId> = vec![];
            for ep in self.table.endpoints_of(p) {
                if let Target::Nested(c) = ep.target {
                    stack.push(c);
                }
            }
            let mut seen = 0;
            while let Some(c) = stack.pop() {
                seen += 1;
                if seen > 1000 {
                    break;
                }
                let child = &self.table.profiles[c as usize];
                for ep in self.table.endpoints_of(child) {
                    match &ep.target {
                        Target::Host(h) => problems.push((
                            p.source.clone(),
                            format!(
                                "profile {} is at the zone apex, and its nested profile {} answers the host name {h} (a CNAME, which cannot live at the apex): nest only profiles that answer addresses",
                                p.name, child.name
                            ),
                        )),
                        Target::Nested(g) => stack.push(*g),
                        _ => {}
                    }
                }
            }
        }
        for (path, msg) in problems {
            self.r.diag.file_error(&path, msg);
        }
    }
}
