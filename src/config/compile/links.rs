//! Stage: what links profiles and names once all are read: nested
//! profiles, CNAME targets and loops, glue, and the probes' log labels.

use super::*;
use crate::snapshot::Lookup;

impl Loader<'_> {
    /// Points nested endpoints at their child profiles, rejecting unknown
    /// children, loops and nesting deeper than ten.
    pub(super) fn resolve_nested(&mut self) {
        let nested = std::mem::take(&mut self.nested);
        for NestedRef {
            endpoint,
            child: name,
            at,
        } in &nested
        {
            let child = self.table.profiles.iter().position(|p| p.name == *name);
            let ep = &mut self.table.endpoints[*endpoint as usize];
            match child {
                Some(c) if c as u32 == ep.profile => {
                    let msg = format!(
                        "{name} is this endpoint's own profile: a profile cannot nest itself"
                    );
                    self.r.error(at, msg);
                }
                Some(c) => {
                    ep.target = Target::Nested(c as u32);
                    if let Health::Nested { child, .. } = &mut ep.health {
                        *child = c as u32;
                    }
                }
                None => {
                    let msg = format!("no profile is named {name}");
                    self.r.error(at, msg);
                }
            }
        }
        if !self.r.diag.ok() {
            return;
        }
        // Depth of nesting below each profile; a profile on the current path
        // again is a loop.
        fn depth(t: &Snapshot, p: usize, path: &mut Vec<usize>) -> Result<usize, Vec<usize>> {
            if path.contains(&p) {
                path.push(p);
                return Err(path.clone());
            }
            path.push(p);
            let mut d = 0;
            for ep in t.endpoints_of(&t.profiles[p]) {
                if let Target::Nested(c) = ep.target {
                    d = d.max(1 + depth(t, c as usize, path)?);
                }
            }
            path.pop();
            Ok(d)
        }
        for NestedRef { endpoint, at, .. } in &nested {
            let p = self.table.endpoints[*endpoint as usize].profile as usize;
            match depth(&self.table, p, &mut Vec::new()) {
                Err(cycle) => {
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|&i| self.table.profiles[i].name.as_str())
                        .collect();
                    let msg = format!("nested profiles form a loop: {}", names.join(" -> "));
                    self.r.error(at, msg);
                    return;
                }
                Ok(d) if d > crate::routing::MAX_NESTING => {
                    let msg = format!(
                        "profiles are nested {d} deep; at most {} levels are allowed",
                        crate::routing::MAX_NESTING
                    );
                    self.r.error(at, msg);
                    return;
                }
                Ok(_) => {}
            }
        }
    }

    /// Creates nodes (with empty non-terminals), resolves links, and checks
    /// what needs the whole picture: glue, CNAME loops.
    pub(super) fn finish(&mut self) {
        if !self.r.diag.ok() {
            return;
        }
        self.resolve_nested();
        if !self.r.diag.ok() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut sources: Vec<NodeSources> = Vec::new();
        let mut defined_at: Vec<At> = Vec::new();
        for p in pending {
            let (records, ats): (Vec<RrSet>, Vec<Vec<At>>) =
                p.records.into_iter().map(|s| (s.set, s.ats)).unzip();
            let id = self.table.nodes.len() as NodeId;
            if !records.is_empty() {
                sources.push(NodeSources {
                    node: id,
                    sets: ats,
                });
            }
            self.table.add_node(Node {
                name: p.name.clone(),
                zone: p.zone,
                records,
                profile: p.profile,
                wildcard: None,
                cut: None,
                types: Default::default(),
                has_children: false,
            });
            defined_at.push(p.at);
            if let Some(pid) = p.profile {
                self.table.profiles[pid as usize].node = id;
            }
            if self.table.zones[p.zone as usize].origin == p.name {
                self.table.zones[p.zone as usize].apex = id;
            }
        }
        // Empty non-terminals: every ancestor up to the apex exists.
        let names: Vec<(DomainName, ZoneId)> = self
            .table
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.zone))
            .collect();
        for (name, zone) in names {
            let origin = self.table.zones[zone as usize].origin.clone();
            let mut cur = name.parent();
            while let Some(n) = cur {
                if !n.is_within(&origin) || self.table.node_id(n.wire()).is_some() {
                    break;
                }
                self.table.add_node(Node {
                    name: n.clone(),
                    zone,
                    records: Vec::new(),
                    profile: None,
                    wildcard: None,
                    cut: None,
                    types: Default::default(),
                    has_children: false,
                });
                cur = n.parent();
            }
        }
        // Wildcards: a `*` first label makes the name its parent's wildcard.
        for id in 0..self.table.nodes.len() {
            let node = &self.table.nodes[id];
            if node.name.wire().starts_with(b"\x01*")
                && let Some(parent) = node.name.parent()
                && let Some(pid) = self.table.node_id(parent.wire())
            {
                self.table.nodes[pid as usize].wildcard = Some(id as NodeId);
            }
        }
        for i in 0..self.table.nodes.len() {
            if let Some(parent) = self.table.nodes[i].name.parent()
                && let Some(p) = self.table.node_id(parent.wire())
            {
                self.table.nodes[p as usize].has_children = true;
            }
        }
        self.nested_zones();
        self.delegations(&defined_at, &sources);
        if !self.r.diag.ok() {
            return;
        }
        // Links from record data to nodes.
        // A name that exists links to its node (glue below a delegation
        // too: referrals add its addresses); one that does not, to the
        // wildcard that answers it or to NXDOMAIN in its zone.
        let link_of = |table: &Snapshot, rr: &WireRr| -> Link {
            let Some(target) = rr.target() else {
                return Link::None;
            };
            if let Some(id) = table.node_id(target.wire()) {
                return Link::Node(id);
            }
            match table.lookup(target.wire()) {
                Lookup::Found(id) | Lookup::Wildcard(id) => Link::Node(id),
                Lookup::NxDomain(z) => Link::Missing(z),
                Lookup::Delegated(_) | Lookup::Outside => Link::None,
            }
        };
        for i in 0..self.table.nodes.len() {
            let links: Vec<Vec<Link>> = self.table.nodes[i]
                .records
                .iter()
                .map(|s| s.rrs.iter().map(|rr| link_of(&self.table, rr)).collect())
                .collect();
            for (set, l) in self.table.nodes[i].records.iter_mut().zip(links) {
                for (rr, link) in set.rrs.iter_mut().zip(l) {
                    rr.link = link;
                }
            }
        }
        for i in 0..self.table.endpoints.len() {
            let link = link_of(&self.table, &self.table.endpoints[i].rr);
            self.table.endpoints[i].rr.link = link;
        }
        self.node_types();
        self.zone_serials();
        self.sign_budget();
        self.check_glue();
        self.check_apex_profiles();
        self.check_cname_loops(&sources);
        self.check_host_targets();
        // Each probe's (profile, endpoint) names, for the prober's logs.
        let t = &self.table;
        let names = |id: u32| -> Option<(Arc<str>, Arc<str>)> {
            let ep = t.endpoints.get(id as usize)?;
            let profile = t.profiles.get(ep.profile as usize)?;
            Some((profile.name.as_str().into(), (*ep.name).into()))
        };
        for spec in &mut self.probes {
            spec.labels = spec.endpoints.iter().filter_map(|&id| names(id)).collect();
            spec.monitor_labels = spec
                .monitor_of
                .iter()
                .filter_map(|(id, monitor)| {
                    let (p, e) = names(*id)?;
                    Some((p, e, monitor.clone()))
                })
                .collect();
        }
    }

    /// Zones inside other zones of ours: the parent answers the child's DS,
    /// made from the child's keys when it is signed.
    fn nested_zones(&mut self) {
        for z in 0..self.table.zones.len() {
            let origin = self.table.zones[z].origin.clone();
            let parent = self
                .table
                .zones
                .iter()
                .enumerate()
                .filter(|(_, p)| p.origin != origin && origin.is_within(&p.origin))
                .max_by_key(|(_, p)| p.origin.wire().len())
                .map(|(i, _)| i as ZoneId);
            self.table.zones[z].parent = parent;
            let (Some(p), Some(_)) = (parent, &self.table.zones[z].signer) else {
                continue;
            };
            let ttl = |t: &Snapshot, zone: usize| {
                t.nodes[t.zones[zone].apex as usize]
                    .set(rtype::SOA)
                    .and_then(|s| s.rrs.first())
                    .map_or(3600, |rr| rr.ttl())
            };
            let parent_ttl = ttl(&self.table, p as usize);
            let apex = &self.table.nodes[self.table.zones[z].apex as usize];
            let ds: Vec<WireRr> = apex
                .set(rtype::CDS)
                .map(|s| {
                    s.rrs
                        .iter()
                        .filter_map(|rr| WireRr::from_rdata(rtype::DS, parent_ttl, rr.rdata()).ok())
                        .collect()
                })
                .unwrap_or_default();
            self.table.zones[z].parent_ds = ds;
        }
    }

    /// Each zone's content digest, and its serial unless configured: the
    /// same as before for the same content, else one that follows it
    /// (`config::serials`), from the running zones on a reload and from
    /// the serials file at start.
    fn zone_serials(&mut self) {
        for z in 0..self.table.zones.len() {
            let digest = crate::config::serials::zone_digest(&self.table, z as ZoneId);
            let zone = &mut self.table.zones[z];
            zone.digest = digest;
            if zone.serial_configured {
                continue;
            }
            let before = self.run.serial_history.get(zone.origin.as_str()).copied();
            let serial = crate::config::serials::serial_for(digest, before);
            zone.serial = serial;
            zone.negative_soa = zone.negative_soa.with_soa_serial(serial);
            let apex = zone.apex as usize;
            if let Some(set) = self
                .table
                .nodes
                .get_mut(apex)
                .and_then(|n| n.records.iter_mut().find(|s| s.rtype == rtype::SOA))
            {
                for rr in &mut set.rrs {
                    *rr = rr.with_soa_serial(serial);
                }
            }
        }
    }

    /// The signing budget, when a zone is signed and it limits anything:
    /// the running one when its settings are unchanged (its counts go on).
    fn sign_budget(&mut self) {
        use crate::dnssec::budget::SignBudget;
        let c = self.run.signing;
        if !self.table.signed() || (c.per_second == 0 && c.per_client == 0) {
            return;
        }
        self.table.sign_budget = Some(match &self.run.carry.sign_budget {
            Some(b) if b.config() == c => b.clone(),
            _ => Arc::new(SignBudget::new(c)),
        });
    }

    /// What each name can answer, for signed denials: its static types
    /// and the types its profile's endpoints (nested ones followed) answer.
    fn node_types(&mut self) {
        fn profile_types(t: &Snapshot, p: ProfileId, depth: usize, bits: &mut rr::TypeBitmap) {
            let Some(p) = t.profiles.get(p as usize) else {
                return;
            };
            for ep in t.endpoints_of(p) {
                match ep.target {
                    Target::V4(_) => bits.set(rtype::A),
                    Target::V6(_) => bits.set(rtype::AAAA),
                    Target::Host(_) => bits.set(rtype::CNAME),
                    Target::Nested(c) if depth < crate::routing::MAX_NESTING => {
                        profile_types(t, c, depth + 1, bits)
                    }
                    Target::Nested(_) => {}
                }
            }
        }
        for i in 0..self.table.nodes.len() {
            let mut bits = rr::TypeBitmap::default();
            let node = &self.table.nodes[i];
            for s in &node.records {
                bits.set(s.rtype);
            }
            if let Some(p) = node.profile {
                profile_types(&self.table, p, 0, &mut bits);
            }
            self.table.nodes[i].types = bits;
        }
    }

    /// Warns about host-name targets inside a zone we serve that name
    /// nothing there: every answer through them ends in NXDOMAIN.
    pub(super) fn check_host_targets(&mut self) {
        for Located { value: host, at } in std::mem::take(&mut self.host_targets) {
            if let crate::snapshot::Lookup::NxDomain(z) = self.table.lookup(host.wire()) {
                let zone = self.table.zones[z as usize].origin.clone();
                let src = &self.r.sources[at.src];
                self.r.diag.warn(
                    src,
                    at.span.clone(),
                    &at.field,
                    format!(
                        "{host} is inside zone {zone}, which this server answers, and nothing is named so there: answers through this endpoint will be NXDOMAIN"
                    ),
                );
            }
        }
    }

    /// Rejects name servers inside their zone without an address there.
    pub(super) fn check_glue(&mut self) {
        let ns_hosts = std::mem::take(&mut self.ns_hosts);
        for NsHost { zone, host, at } in ns_hosts {
            if self.table.zone_of(&host) != Some(zone) {
                continue;
            }
            let has_addr = self.table.node_id(host.wire()).is_some_and(|id| {
                let node = &self.table.nodes[id as usize];
                node.set(rtype::A).is_some() || node.set(rtype::AAAA).is_some()
            });
            if !has_addr {
                self.r.error(
                    &at,
                    format!("{host} is inside the zone but has no A or AAAA record: add one to `records` (glue)"),
                );
            }
        }
    }

    /// Rejects CNAME chains that loop, through static CNAMEs and profile
    /// endpoints whose host-name targets are in our zones.
    pub(super) fn check_cname_loops(&mut self, sources: &[NodeSources]) {
        let n = self.table.nodes.len();
        // Edges: node -> (next node, where the edge was written).
        let mut edges: Vec<Vec<(NodeId, Option<At>)>> = vec![Vec::new(); n];
        let where_of: FxHashMap<NodeId, &Vec<Vec<At>>> =
            sources.iter().map(|s| (s.node, &s.sets)).collect();
        for (i, node) in self.table.nodes.iter().enumerate() {
            for (si, set) in node.records.iter().enumerate() {
                if set.rtype != rtype::CNAME {
                    continue;
                }
                if let Link::Node(to) = set.rrs[0].link {
                    let at = where_of
                        .get(&(i as NodeId))
                        .and_then(|w| w.get(si))
                        .and_then(|w| w.first())
                        .cloned();
                    edges[i].push((to, at));
                }
            }
            if let Some(pid) = node.profile {
                let p = &self.table.profiles[pid as usize];
                for ep in self.table.endpoints_of(p) {
                    if let Link::Node(to) = ep.rr.link {
                        edges[i].push((to, None));
                    }
                    // A nested endpoint answers with its child's
                    // targets, as if the name were the child's.
                    if let Target::Nested(child) = ep.target
                        && let Some(c) = self.table.profiles.get(child as usize)
                    {
                        edges[i].push((c.node, None));
                    }
                }
            }
        }
        // Iterative DFS with colours: 0 new, 1 on stack, 2 done.
        let mut colour = vec![0u8; n];
        for start in 0..n {
            if colour[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            colour[start] = 1;
            while let Some(&mut (v, ref mut next)) = stack.last_mut() {
                if let Some((to, at)) = edges[v].get(*next).cloned() {
                    *next += 1;
                    let to = to as usize;
                    if colour[to] == 1 {
                        let from = self.table.nodes[v].name.clone();
                        let msg = format!(
                            "CNAME loop: {from} leads back to {} through CNAMEs in our zones",
                            self.table.nodes[to].name
                        );
                        match at {
                            Some(at) => self.r.error(&at, msg),
                            None => {
                                let path = self.profile_source(v);
                                self.r.diag.file_error(&path, msg);
                            }
                        }
                        return;
                    }
                    if colour[to] == 0 {
                        colour[to] = 1;
                        stack.push((to, 0));
                    }
                } else {
                    colour[v] = 2;
                    stack.pop();
                }
            }
        }
    }

    pub(super) fn profile_source(&self, node: usize) -> PathBuf {
        match self.table.nodes[node].profile {
            Some(pid) => self.table.profiles[pid as usize].source.clone(),
            None => self
                .r
                .sources
                .first()
                .map(|s| s.path.clone())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::snapshot::Target;

    #[test]
    fn nested_profiles_point_at_their_child_and_loops_are_rejected() {
        let child = "name = \"eu.tm.example.test.\"\nrouting = \"priority\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n";
        let parent = profile(
            "routing = \"priority\"\n[[endpoints]]\nname = \"eu\"\nprofile = \"eu.tm.example.test.\"\npriority = 1\n[[endpoints]]\nname = \"b\"\ntarget = \"192.0.2.9\"\npriority = 2\n",
        );
        let c = load_text("", &[("eu.toml", child), ("p.toml", &parent)]).unwrap();
        let t = &c.table;
        let p = t.profile_by_name("p.tm.example.test.").unwrap();
        let eu = t
            .profiles
            .iter()
            .position(|q| q.name.as_str() == "eu.tm.example.test.")
            .unwrap();
        assert_eq!(t.endpoints_of(p)[0].target, Target::Nested(eu as u32));
        let selfish = profile(
            "routing = \"priority\"\n[[endpoints]]\nname = \"me\"\nprofile = \"p.tm.example.test.\"\n",
        );
        let e = errors(load_text("", &[("p.toml", &selfish)]));
        assert!(e[0].contains("a profile cannot nest itself"), "{e:?}");
    }
}
