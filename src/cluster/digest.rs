//! The configuration digest nodes gossip, so each can tell whether the
//! others answer alike (drift).

use crate::health::spec::{ProbeSpec, hex};

/// A digest of the compiled configuration: zones and records, profiles,
/// endpoints and probes, not file names, comments or layout. Nodes with
/// equal digests answer alike.
pub fn config_digest(table: &crate::snapshot::Snapshot, probes: &[ProbeSpec]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    // Each zone's content digest: its SOA without the serial (which follows
    // each node's history of the content, `config::serials`, so nodes that
    // saw different versions may differ in it alone) and everything else
    // it answers.
    for z in &table.zones {
        ctx.update(format!("zone {} {:016x}\n", z.origin.as_str(), z.digest).as_bytes());
    }
    for n in &table.nodes {
        ctx.update(format!("node {}\n", n.name.as_str()).as_bytes());
        for s in n
            .records
            .iter()
            .filter(|s| s.rtype != crate::proto::rr::rtype::SOA)
        {
            ctx.update(format!("{s:?}\n").as_bytes());
        }
        ctx.update(format!("{:?} {:?} {:?}\n", n.profile, n.wildcard, n.cut).as_bytes());
    }
    for p in &table.profiles {
        ctx.update(
            format!(
                "profile {} {:?} {} {} {:?} {:?}\n",
                p.name.as_str(),
                p.routing,
                p.ttl,
                p.enabled,
                p.on_all_down,
                p.endpoints
            )
            .as_bytes(),
        );
    }
    for e in &table.endpoints {
        ctx.update(
            format!(
                "endpoint {} {} {:?} {} {} {:?}\n",
                e.name, e.profile, e.target, e.priority, e.weight, e.rr
            )
            .as_bytes(),
        );
    }
    let mut probes: Vec<String> = probes
        .iter()
        .map(|s| {
            let m = &s.monitor;
            format!(
                "probe {} {:?} {:?} {} {} {:?}\n",
                s.fingerprint(),
                m.interval,
                m.timeout,
                m.tolerated_failures,
                m.required_successes,
                m.quorum
            )
        })
        .collect();
    probes.sort();
    for p in probes {
        ctx.update(p.as_bytes());
    }
    hex(&ctx.finish().as_ref()[..8])
}
