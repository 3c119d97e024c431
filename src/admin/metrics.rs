//! `/metrics`: the server's counters, read at scrape time and encoded by
//! `prometheus-client` (which escapes label values). The answer path only
//! ever bumps plain atomics; nothing here is on it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::dns::Transport;
use crate::dns::wire::rcode;
use crate::health::probe::{FailureKind, LocalFault};
use crate::health::{HealthCell, Status};
use crate::metrics::{Metrics, RCODES};
use crate::snapshot::{Endpoint, Health, Profile, Snapshot};
use crate::state::Shared;

/// Reads [`Shared`] on each scrape.
#[derive(Debug)]
pub struct Collector {
    shared: Arc<Shared>,
}

impl Collector {
    /// A collector over the running server.
    pub fn new(shared: Arc<Shared>) -> Collector {
        Collector { shared }
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// An endpoint with its profile's name and the profile: what the
/// per-endpoint series are labelled by and read from.
type Row<'a> = (&'a str, &'a Endpoint, &'a Profile);

/// A monitored endpoint's profile and endpoint names and health cell.
type Cell<'a> = (&'a str, &'a str, &'a HealthCell);

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &*self.shared;
        let table = shared.serving.table.load();
        let m = &shared.serving.metrics;
        queries(&mut enc, m)?;
        // Per-endpoint series, labelled by profile and endpoint name.
        let endpoints = endpoints(&table);
        answers(&mut enc, &endpoints)?;
        drains(&mut enc, shared, &endpoints)?;
        statuses(&mut enc, &table, &endpoints)?;
        probes(&mut enc, &endpoints)?;
        monitors(&mut enc, &endpoints)?;
        pushes(&mut enc, shared)?;
        certificates(&mut enc, &endpoints)?;
        rate_limits(&mut enc, shared)?;
        cluster(&mut enc, shared)?;
        tcp_connections(&mut enc, shared)?;
        host_problems(&mut enc, m)?;
        impairment(&mut enc, shared)?;
        notify(&mut enc, shared)?;
        reloads(&mut enc, m)?;
        dnssec(&mut enc, &table)?;
        rum(&mut enc, m)?;
        latency(&mut enc, shared)?;
        traffic(&mut enc, shared)?;
        super::udp_path::metrics(&mut enc, shared)?;
        Ok(())
    }
}

/// Real user measurements: beacons by result, tokens issued, samples
/// recorded, beacons tied to a resolver or not. Never a key or a token.
fn rum(enc: &mut DescriptorEncoder, m: &Metrics) -> Result<(), std::fmt::Error> {
    let r = &m.rum;
    let mut e = enc.encode_descriptor(
        "switchyard_rum_beacons",
        "Real-user-measurement beacons received, by result (stored, or why rejected: nothing of a rejected beacon is kept)",
        None,
        MetricType::Counter,
    )?;
    for b in crate::metrics::Beacon::ALL {
        let labels: Labels = vec![("result", b.as_str())];
        ConstCounter::new(r.beacons(b)).encode(e.encode_family(&labels)?)?;
    }
    for (name, help, n) in [
        (
            "switchyard_rum_tokens",
            "Measurement tokens issued (GET /rum/config)",
            &r.tokens,
        ),
        (
            "switchyard_rum_samples",
            "Round-trip samples recorded from stored beacons (one per endpoint measured)",
            &r.samples,
        ),
        (
            "switchyard_rum_resolver_joins",
            "Stored beacons tied to the resolver that looked their token name up (the resolver mapping)",
            &r.joined,
        ),
        (
            "switchyard_rum_resolver_misses",
            "Stored beacons whose token name no resolver was seen asking for within the token's lifetime",
            &r.unjoined,
        ),
    ] {
        let e = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(n.load(Ordering::Relaxed)).encode(e)?;
    }
    Ok(())
}

/// The answer path: queries answered, by transport and response code.
fn queries(enc: &mut DescriptorEncoder, m: &Metrics) -> Result<(), std::fmt::Error> {
    let mut e = enc.encode_descriptor(
        "switchyard_dns_queries",
        "DNS queries answered, by transport and response code",
        None,
        MetricType::Counter,
    )?;
    for t in [Transport::Udp, Transport::Tcp] {
        for code in RCODES.iter().copied().chain([u16::MAX]) {
            let labels: Labels = vec![("transport", t.as_str()), ("rcode", rcode::name(code))];
            ConstCounter::new(m.queries(t, code)).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Every endpoint of every profile, in the table's order.
fn endpoints(table: &Snapshot) -> Vec<Row<'_>> {
    table
        .profiles
        .iter()
        .flat_map(|p| {
            table
                .endpoints_of(p)
                .iter()
                .map(move |e| (p.name.as_str(), e, p))
        })
        .collect()
}

/// Times each endpoint was returned in an answer.
fn answers(enc: &mut DescriptorEncoder, endpoints: &[Row]) -> Result<(), std::fmt::Error> {
    let mut e = enc.encode_descriptor(
        "switchyard_answers",
        "Times each endpoint was returned in an answer",
        None,
        MetricType::Counter,
    )?;
    for (p, ep, _) in endpoints {
        let labels: Labels = vec![("profile", p), ("endpoint", &ep.name)];
        ConstCounter::new(ep.runtime.answers.load(Ordering::Relaxed))
            .encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Drains in force: when the last cached answer naming each expires
/// (the same figure the status API shows).
fn drains(
    enc: &mut DescriptorEncoder,
    shared: &Shared,
    endpoints: &[Row],
) -> Result<(), std::fmt::Error> {
    let drains: Vec<_> = {
        let all = shared.overrides.lock().unwrap_or_else(|p| p.into_inner());
        let now = crate::clock::now_millis();
        endpoints
            .iter()
            .filter_map(|(p, ep, _)| {
                let key = crate::snapshot::EndpointKey::new(p, &ep.name);
                let o = all.get(&key).filter(|o| o.drain && o.in_force(now))?;
                let d = super::status::override_view(ep, Some(o), now)?.drain?;
                Some((*p, &*ep.name, d.drained_at_unix))
            })
            .collect()
    };
    let mut e = enc.encode_descriptor(
        "switchyard_endpoint_drained_at_seconds",
        "Drained endpoints: when the last answer naming it leaves resolver caches (Unix time; its last answer from this node plus that answer's TTL)",
        None,
        MetricType::Gauge,
    )?;
    for (p, ep, at) in &drains {
        let labels: Labels = vec![("profile", p), ("endpoint", ep)];
        ConstGauge::new(*at as i64).encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Health as the answers see it: each endpoint's status (and whether it
/// is answerable), and what each profile serves.
fn statuses(
    enc: &mut DescriptorEncoder,
    table: &Snapshot,
    endpoints: &[Row],
) -> Result<(), std::fmt::Error> {
    let mut e = enc.encode_descriptor(
        "switchyard_endpoint_up",
        "1 when the endpoint is answerable (Online, CheckingEndpoint, Unmonitored), else 0",
        None,
        MetricType::Gauge,
    )?;
    for (p, ep, profile) in endpoints {
        let labels: Labels = vec![("profile", p), ("endpoint", &ep.name)];
        let up = i64::from(table.shown_status(profile, ep).is_answerable());
        ConstGauge::new(up).encode(e.encode_family(&labels)?)?;
    }

    let mut e = enc.encode_descriptor(
        "switchyard_endpoint_status",
        "1 for the endpoint's current status, 0 for the others",
        None,
        MetricType::Gauge,
    )?;
    for (p, ep, profile) in endpoints {
        let current = table.shown_status(profile, ep);
        for s in Status::ALL {
            let labels: Labels = vec![
                ("profile", p),
                ("endpoint", &ep.name),
                ("status", s.as_str()),
            ];
            ConstGauge::new(i64::from(s == current)).encode(e.encode_family(&labels)?)?;
        }
    }

    let mut e = enc.encode_descriptor(
        "switchyard_profile_serving",
        "1 for what the profile serves now (healthy, unmonitored, unverified, failing open: on_all_down applies, not answering), 0 for the others",
        None,
        MetricType::Gauge,
    )?;
    for p in &table.profiles {
        let current = p.serving(table);
        for s in Profile::SERVING {
            let labels: Labels = vec![("profile", p.name.as_str()), ("serving", s)];
            ConstGauge::new(i64::from(s == current)).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// The health probes of the monitored endpoints: status changes, latency
/// and failures by reason.
fn probes(enc: &mut DescriptorEncoder, endpoints: &[Row]) -> Result<(), std::fmt::Error> {
    let cells: Vec<Cell> = endpoints
        .iter()
        .filter_map(|(p, ep, _)| match &ep.health {
            Health::Monitored(c) => Some((*p, &*ep.name, &**c)),
            _ => None,
        })
        .collect();

    let mut e = enc.encode_descriptor(
        "switchyard_endpoint_transitions",
        "Endpoint status changes (flaps)",
        None,
        MetricType::Counter,
    )?;
    for (p, name, cell) in &cells {
        let labels: Labels = vec![("profile", p), ("endpoint", name)];
        ConstCounter::new(cell.stats.transitions.load(Ordering::Relaxed))
            .encode(e.encode_family(&labels)?)?;
    }

    let mut e = enc.encode_descriptor(
        "switchyard_probe_duration_seconds",
        "Health probe latency",
        None,
        MetricType::Histogram,
    )?;
    for (p, name, cell) in &cells {
        let labels: Labels = vec![("profile", p), ("endpoint", name)];
        cell.stats.duration.encode(e.encode_family(&labels)?)?;
    }

    let mut e = enc.encode_descriptor(
        "switchyard_probe_failures",
        "Failed health probes, by reason",
        None,
        MetricType::Counter,
    )?;
    for (p, name, cell) in &cells {
        for k in FailureKind::ALL {
            let labels: Labels = vec![("profile", p), ("endpoint", name), ("reason", k.as_str())];
            let n = cell.stats.failures[k as usize].load(Ordering::Relaxed);
            ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Each named monitor of each endpoint (`[[monitors]]`): 1 while its
/// check counts as up (after `invert`), 0 while down; absent until it is
/// decided. Bounded: at most 16 monitors per profile.
fn monitors(enc: &mut DescriptorEncoder, endpoints: &[Row]) -> Result<(), std::fmt::Error> {
    use crate::health::combine::Verdict;
    let mut e = enc.encode_descriptor(
        "switchyard_monitor_up",
        "Named monitor of an endpoint up (1) or down (0), after invert",
        None,
        MetricType::Gauge,
    )?;
    for (p, ep, _) in endpoints {
        for input in ep.monitors.iter().flat_map(|m| m.inputs.iter()) {
            let up = match input.verdict() {
                Verdict::Up => 1,
                Verdict::Down => 0,
                Verdict::Unknown => continue,
            };
            let labels: Labels = vec![
                ("profile", p),
                ("endpoint", &ep.name),
                ("monitor", &input.name),
            ];
            ConstGauge::new(up).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Health pushed to this node, by way in and result.
fn pushes(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let counts = shared
        .pushes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .counts;
    let mut e = enc.encode_descriptor(
        "switchyard_health_pushes",
        "Health pushed to this node (PUT /api/v1/health, Alertmanager), accepted or rejected",
        None,
        MetricType::Counter,
    )?;
    for (i, via) in ["api", "alertmanager"].into_iter().enumerate() {
        for (j, result) in ["rejected", "accepted"].into_iter().enumerate() {
            let labels: Labels = vec![("via", via), ("result", result)];
            ConstCounter::new(counts[i][j]).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// HTTPS probes: when the certificate each endpoint last presented
/// expires, and the profile's `cert_warning` to compare it with (the
/// shipped `SwitchyardCertificateExpiringSoon` alert does).
fn certificates(enc: &mut DescriptorEncoder, endpoints: &[Row]) -> Result<(), std::fmt::Error> {
    let certs: Vec<_> = endpoints
        .iter()
        .filter_map(|(p, ep, _)| Some((*p, &*ep.name, ep.certificate()?)))
        .collect();
    let mut e = enc.encode_descriptor(
        "switchyard_probe_certificate_expiration_timestamp_seconds",
        "HTTPS probes: when the leaf certificate the endpoint last presented expires (its notAfter, Unix time)",
        None,
        MetricType::Gauge,
    )?;
    for (p, name, cert) in &certs {
        let labels: Labels = vec![("profile", p), ("endpoint", name)];
        ConstGauge::new(cert.not_after_unix()).encode(e.encode_family(&labels)?)?;
    }
    let mut e = enc.encode_descriptor(
        "switchyard_probe_certificate_warning_seconds",
        "HTTPS probes: the monitor's cert_warning (status warns, and a notification is sent, when less than this is left)",
        None,
        MetricType::Gauge,
    )?;
    for (p, name, cert) in &certs {
        let labels: Labels = vec![("profile", p), ("endpoint", name)];
        ConstGauge::new(cert.warn_within.as_secs() as i64).encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Response rate limiting, when it is on: responses dropped or slipped,
/// by class.
fn rate_limits(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let rrl = shared.serving.rrl.load();
    let Some(rrl) = rrl.as_deref() else {
        return Ok(());
    };
    let mut e = enc.encode_descriptor(
        "switchyard_rate_limited",
        "UDP responses over the rate limit, by class (responses, nodata, nxdomains, errors; total: within its class's rate but over the network's total_per_second) and action (dropped, or slipped: sent truncated or as BADCOOKIE)",
        None,
        MetricType::Counter,
    )?;
    let classes = crate::dns::rrl::Class::ALL
        .into_iter()
        .map(|c| (c.as_str(), rrl.limited(c)))
        .chain([("total", rrl.limited_by_total())]);
    for (class, (dropped, slipped)) in classes {
        for (action, n) in [("dropped", dropped), ("slipped", slipped)] {
            let labels: Labels = vec![("class", class), ("action", action)];
            ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// The cluster, when this node is in one: gossip traffic and what was
/// rejected, re-syncs after stalls and the queries held meanwhile; then
/// the nodes' observations and states as gossip last brought them.
fn cluster(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    if let Some(stats) = shared.cluster_stats.get() {
        let mut e = enc.encode_descriptor(
            "switchyard_cluster_gossip_bytes",
            "Gossip bytes (UDP payload), by direction (sent, received: accepted only)",
            None,
            MetricType::Counter,
        )?;
        for (dir, n) in [
            ("sent", &stats.bytes_sent),
            ("received", &stats.bytes_received),
        ] {
            let labels: Labels = vec![("direction", dir)];
            ConstCounter::new(n.load(Ordering::Relaxed)).encode(e.encode_family(&labels)?)?;
        }
        let mut e = enc.encode_descriptor(
            "switchyard_cluster_gossip_rejected",
            "Gossip packets dropped, by reason (malformed, authentication: another key or tampered with, address: replayed from elsewhere, stale)",
            None,
            MetricType::Counter,
        )?;
        for (i, reason) in crate::metrics::GOSSIP_REJECTS.iter().enumerate() {
            let labels: Labels = vec![("reason", reason)];
            ConstCounter::new(stats.rejected[i].load(Ordering::Relaxed))
                .encode(e.encode_family(&labels)?)?;
        }
        let e = enc.encode_descriptor(
            "switchyard_cluster_resyncs",
            "Re-syncs with the cluster after this node stalled (its timers fired several gossip rounds late: stopped, or starved of CPU)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(
            shared
                .serving
                .metrics
                .cluster_resyncs
                .load(Ordering::Relaxed),
        )
        .encode(e)?;
        let e = enc.encode_descriptor(
            "switchyard_dns_held_queries",
            "DNS queries not answered while this node re-synced with its cluster after a stall (they waited out the stall; their resolvers have asked another server)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(shared.serving.gate.held_total()).encode(e)?;
    }
    if let Some(c) = shared.cluster.load().as_deref() {
        let mut o = enc.encode_descriptor(
            "switchyard_cluster_observations",
            "Probe targets by each live node's own observed status (as gossip last brought it)",
            None,
            MetricType::Gauge,
        )?;
        for (node, status, n) in &c.observations {
            let labels: Labels = vec![("node", node.as_str()), ("status", status)];
            ConstGauge::new(*n as i64).encode(o.encode_family(&labels)?)?;
        }
        let mut e = enc.encode_descriptor(
            "switchyard_cluster_nodes",
            "Cluster nodes this node knows of, this one included, by state (alive, dead) and whether their configuration differs from the one most live nodes run (drifted)",
            None,
            MetricType::Gauge,
        )?;
        for (state, alive) in [("alive", true), ("dead", false)] {
            for (drifted, d) in [("false", false), ("true", true)] {
                let n = c
                    .nodes
                    .iter()
                    .filter(|n| n.alive == alive && n.drifted == d)
                    .count();
                let labels: Labels = vec![("state", state), ("drifted", drifted)];
                ConstGauge::new(n as i64).encode(e.encode_family(&labels)?)?;
            }
        }
    }
    Ok(())
}

/// TCP connections of the DNS and admin services: open now, and closed
/// by the server's limits.
fn tcp_connections(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let services = [
        ("dns", shared.dns_slots.get()),
        ("admin", shared.admin_slots.get()),
    ];
    let mut e = enc.encode_descriptor(
        "switchyard_tcp_connections",
        "TCP connections open now, by service (dns, admin)",
        None,
        MetricType::Gauge,
    )?;
    for (service, slots) in services {
        if let Some(s) = slots {
            let labels: Labels = vec![("service", service)];
            ConstGauge::new(s.len() as i64).encode(e.encode_family(&labels)?)?;
        }
    }
    let mut e = enc.encode_descriptor(
        "switchyard_tcp_connections_closed",
        "TCP connections closed by the server's limits: evicted (the longest idle, to admit a new one at the cap) or client_limit (the client already had its limit)",
        None,
        MetricType::Counter,
    )?;
    for (service, slots) in services {
        if let Some(s) = slots {
            for (reason, n) in [("evicted", &s.evicted), ("client_limit", &s.refused)] {
                let labels: Labels = vec![("service", service), ("reason", reason)];
                ConstCounter::new(n.load(Ordering::Relaxed)).encode(e.encode_family(&labels)?)?;
            }
        }
    }
    Ok(())
}

/// This host's own problems: probes it could not send, and its state
/// file.
fn host_problems(enc: &mut DescriptorEncoder, m: &Metrics) -> Result<(), std::fmt::Error> {
    let mut e = enc.encode_descriptor(
        "switchyard_prober_faults",
        "Probes not sent for a reason of this host's (not counted against any endpoint), by reason",
        None,
        MetricType::Counter,
    )?;
    for f in LocalFault::ALL {
        let labels: Labels = vec![("reason", f.as_str())];
        let n = m.prober_faults.0[f as usize].load(Ordering::Relaxed);
        ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
    }

    let e = enc.encode_descriptor(
        "switchyard_state_file_problems",
        "State file problems: unusable at start (moved aside) or overrides not saved",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(m.state_file_problems.load(Ordering::Relaxed)).encode(e)?;
    Ok(())
}

/// Static stability: whether this node's prober is impaired (every
/// status frozen), its episodes, and its canaries.
fn impairment(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let i = &shared.impairment;
    let e = enc.encode_descriptor(
        "switchyard_prober_impaired",
        "1 while this node's prober is impaired (it is the one failing): every status is frozen, and in a cluster it does not vote",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(i64::from(i.is_impaired())).encode(e)?;
    let e = enc.encode_descriptor(
        "switchyard_prober_impaired_episodes",
        "Episodes of prober impairment (statuses frozen) since the server started",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(i.episodes()).encode(e)?;
    let view = i.view();
    let mut e = enc.encode_descriptor(
        "switchyard_prober_canary_up",
        "1 when the canary's last probe reached it, 0 when it failed (absent until probed)",
        None,
        MetricType::Gauge,
    )?;
    for c in view.canaries.iter() {
        if let Some(up) = c.up {
            let labels: Labels = vec![("canary", &c.target)];
            ConstGauge::new(i64::from(up)).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Notifications, by `[[notify]]` target: delivered, given up on,
/// dropped, retried, and waiting.
fn notify(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let targets = shared.notify.stats();
    for (name, help, read) in [
        (
            "switchyard_notify_sent",
            "Notifications delivered (a 2xx answer), by [[notify]] target",
            (|s| &s.sent) as fn(&crate::notify::TargetStats) -> &std::sync::atomic::AtomicU64,
        ),
        (
            "switchyard_notify_failed",
            "Notifications given up on (retry_for passed, or a 4xx that retrying cannot fix), by target",
            |s| &s.failed,
        ),
        (
            "switchyard_notify_dropped",
            "Notifications dropped because the target's queue was full (target=\"\": the dispatcher's queue, before any target)",
            |s| &s.dropped,
        ),
        (
            "switchyard_notify_retries",
            "Notification attempts retried, by target",
            |s| &s.retries,
        ),
    ] {
        let mut e = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (target, stats) in &targets {
            let labels: Labels = vec![("target", target.as_str())];
            ConstCounter::new(read(stats).load(Ordering::Relaxed))
                .encode(e.encode_family(&labels)?)?;
        }
        if name == "switchyard_notify_dropped" {
            let labels: Labels = vec![("target", "")];
            ConstCounter::new(shared.notify.lost()).encode(e.encode_family(&labels)?)?;
        }
    }
    let mut e = enc.encode_descriptor(
        "switchyard_notify_queued",
        "Notifications waiting to be sent (or retried), by target",
        None,
        MetricType::Gauge,
    )?;
    for (target, stats) in &targets {
        let labels: Labels = vec![("target", target.as_str())];
        ConstGauge::new(stats.queued.load(Ordering::Relaxed) as i64)
            .encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Configuration reloads, applied or rejected.
fn reloads(enc: &mut DescriptorEncoder, m: &Metrics) -> Result<(), std::fmt::Error> {
    let mut e = enc.encode_descriptor(
        "switchyard_config_reloads",
        "Configuration reloads, applied (ok) or rejected",
        None,
        MetricType::Counter,
    )?;
    for (result, ok) in [("ok", true), ("rejected", false)] {
        let labels: Labels = vec![("result", result)];
        ConstCounter::new(m.reloads(ok)).encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

/// DNSSEC, when a zone is signed: signatures from the cache or made for
/// the answer, the cache's size, and signatures the budget refused.
fn dnssec(enc: &mut DescriptorEncoder, table: &Snapshot) -> Result<(), std::fmt::Error> {
    // Signed zones share one signature cache.
    if let Some(cache) = table.zones.iter().find_map(|z| z.signer.as_ref()) {
        let (hits, misses, capacity) = cache.cache.stats();
        let mut e = enc.encode_descriptor(
            "switchyard_dnssec_signatures",
            "RRSIGs put in answers, from the signature cache (cached) or made for the answer (signed)",
            None,
            MetricType::Counter,
        )?;
        for (source, n) in [("cached", hits), ("signed", misses)] {
            let labels: Labels = vec![("source", source)];
            ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
        }
        let e = enc.encode_descriptor(
            "switchyard_dnssec_signature_cache_capacity",
            "Most signatures the cache holds (dns.signature_cache)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(capacity as i64).encode(e)?;
    }
    if let Some(budget) = &table.sign_budget {
        use crate::dnssec::budget::Refusal;
        let mut e = enc.encode_descriptor(
            "switchyard_dnssec_signatures_refused",
            "New signatures refused by the signing budget: budget (dns.signatures_per_second: none left, or less than half for clients over UDP without a valid cookie) or client (a client over TCP or with a valid cookie past dns.signatures_per_client); the answer was sent truncated over UDP, SERVFAIL over TCP",
            None,
            MetricType::Counter,
        )?;
        for (reason, why) in [("budget", Refusal::Budget), ("client", Refusal::Client)] {
            let labels: Labels = vec![("reason", reason)];
            ConstCounter::new(budget.refused(why)).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// The latency table: its size, its memory, and the samples it took in
/// (`learned`: this node's own ingest; `cluster`: from peers; `rejected`)
/// and the networks it dropped to make room.
fn latency(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let stats = &shared.serving.latency.stats;
    let gauge = |enc: &mut DescriptorEncoder, name: &str, help: &str, v: usize| {
        let e = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(v as i64).encode(e)
    };
    gauge(
        enc,
        "switchyard_latency_networks",
        "Client networks in the latency table",
        stats.networks.load(Ordering::Relaxed),
    )?;
    gauge(
        enc,
        "switchyard_latency_bytes",
        "Memory the latency table holds, in bytes",
        stats.bytes.load(Ordering::Relaxed),
    )?;
    let mut e = enc.encode_descriptor(
        "switchyard_latency_samples",
        "Latency samples by result: learned (this node's ingest), cluster (from peers), rejected",
        None,
        MetricType::Counter,
    )?;
    for (result, n) in [
        ("learned", &stats.accepted),
        ("cluster", &stats.from_cluster),
        ("rejected", &stats.rejected),
    ] {
        let labels: Labels = vec![("result", result)];
        ConstCounter::new(n.load(Ordering::Relaxed)).encode(e.encode_family(&labels)?)?;
    }
    let e = enc.encode_descriptor(
        "switchyard_latency_evicted_networks",
        "Client networks dropped from the full latency table (the fewest decayed samples first)",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(stats.evicted.load(Ordering::Relaxed)).encode(e)
}

/// The Traffic View: queries recorded by profile and client country (the
/// only client label: bounded by the countries there are), queries not
/// recorded because the queue was full, and the memory it holds.
fn traffic(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let queue = &shared.serving.traffic;
    let (mut totals, bytes) = {
        let views = shared.traffic.lock().unwrap_or_else(|p| p.into_inner());
        let totals: Vec<(String, String, u64)> = views
            .totals()
            .map(|(p, c, n)| {
                let country = c.map_or_else(
                    || "unknown".to_string(),
                    |c| String::from_utf8_lossy(&c).into_owned(),
                );
                (p.to_string(), country, n)
            })
            .collect();
        (totals, views.bytes())
    };
    totals.sort();
    let mut e = enc.encode_descriptor(
        "switchyard_traffic_queries",
        "Queries the Traffic View recorded, by profile and client country (\"unknown\": not in the GeoIP database)",
        None,
        MetricType::Counter,
    )?;
    for (profile, country, n) in &totals {
        let labels: Labels = vec![("profile", profile), ("country", country)];
        ConstCounter::new(*n).encode(e.encode_family(&labels)?)?;
    }
    let e = enc.encode_descriptor(
        "switchyard_traffic_dropped",
        "Queries the Traffic View did not record because its queue was full",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(queue.dropped()).encode(e)?;
    let e = enc.encode_descriptor(
        "switchyard_traffic_memory_bytes",
        "Memory the Traffic View holds: its queue, panes, sketches and caches",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new((queue.bytes() + bytes) as i64).encode(e)?;
    Ok(())
}
