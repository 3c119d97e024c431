//! What notifications read of the running server.

use std::sync::Arc;

use crate::state::Shared;

/// What notifications read of the running server: what profiles serve
/// ([`crate::snapshot::Profile::serving`]) and what a profile's name answers
/// now, from the real answer path ([`crate::dns::inspect::answer_for`]).
pub(super) struct NotifyView(pub(super) Arc<Shared>);

impl crate::notify::View for NotifyView {
    fn node(&self) -> String {
        self.0.node.clone()
    }

    fn endpoint_status(&self, profile: &str, endpoint: &str) -> Option<(&'static str, String)> {
        let table = self.0.serving.table.load();
        let p = table.profile_by_name(profile)?;
        let ep = table.endpoint_by_key(&crate::snapshot::EndpointKey::new(profile, endpoint))?;
        let effective = table.effective(p, ep);
        let why = match effective.why {
            crate::routing::Why::Held { .. } => effective.why.to_string(),
            _ => String::new(),
        };
        Some((effective.status.as_str(), why))
    }

    fn serving(&self) -> Vec<(String, &'static str)> {
        let table = self.0.serving.table.load();
        table
            .profiles
            .iter()
            .map(|p| (p.name.to_string(), p.serving(&table)))
            .collect()
    }

    /// The answer is that of A and AAAA queries for the profile's name from
    /// loopback without ECS: client-aware and random methods may answer
    /// other clients otherwise.
    fn profile_now(&self, profile: &str) -> Option<(&'static str, crate::notify::payload::Answer)> {
        let table = self.0.serving.table.load();
        let p = table.profile_by_name(profile)?;
        let serving = p.serving(&table);
        let geo = self.0.serving.geo.load();
        let name = p.name.to_string();
        let client = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut answer = crate::notify::payload::Answer::default();
        for qtype in ["A", "AAAA"] {
            let Ok(view) =
                crate::dns::inspect::answer_for(&table, geo.as_deref(), &name, qtype, client, None)
            else {
                continue;
            };
            if qtype == "A" {
                answer.rcode = view.rcode.clone();
            }
            for line in &view.answers {
                // `name TTL TYPE data`
                if let Some(data) = line.splitn(4, ' ').nth(3)
                    && !answer.records.iter().any(|r| r == data)
                {
                    answer.records.push(data.to_string());
                }
            }
        }
        Some((serving, answer))
    }
}
