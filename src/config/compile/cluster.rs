//! Stage: `[cluster]` (gossip between name servers) and `[prober]`
//! (where probes leave from; its static stability keys are read by
//! `stability.rs`).

use super::*;
use crate::config::keys;
use crate::config::{ClusterSettings, ProberSettings};
use crate::health::quorum::Quorum;

/// Smallest cluster key: shorter secrets are guessable.
const MIN_KEY_LEN: usize = 16;

/// Default `phi_threshold`: chitchat's and Cassandra's.
pub const PHI_THRESHOLD: f64 = 8.0;

/// `[cluster]`, checked: every key is read (so one run reports every
/// problem), and the settings stand only if every one was right.
pub(super) fn cluster(
    r: &mut Report,
    src: usize,
    raw: &Spanned<crate::config::raw::RawCluster>,
) -> Option<ClusterSettings> {
    let c = raw.get_ref();
    let node = node_name(r, src, c);
    let (listen, advertise) = addresses(r, src, c);
    let seeds = seeds(r, src, c);
    let key = cluster_key(r, src, c);
    let quorum = match &c.quorum {
        Some(q) => quorum(r, src, q, "cluster.quorum"),
        None => Some(Quorum::Majority),
    };
    let timing = timing(r, src, c);
    let timing = timing?;
    Some(ClusterSettings {
        node: node?,
        listen: listen?,
        advertise: advertise?,
        seeds: seeds?,
        key: key?,
        quorum: quorum?,
        gossip_interval: timing.gossip_interval,
        warm_start: timing.warm_start,
        phi_threshold: timing.phi_threshold,
        dead_after: timing.dead_after,
        vote_hold: timing.vote_hold,
        forget_dead_after: timing.forget_dead_after,
    })
}

/// `node`, or the host name.
fn node_name(r: &mut Report, src: usize, c: &crate::config::raw::RawCluster) -> Option<String> {
    let Some(n) = &c.node else {
        return Some(default_node_name());
    };
    let name = n.get_ref().trim().to_string();
    if !valid_node_name(&name) {
        r.err(
            src,
            n,
            "cluster.node",
            "node names are 1-64 letters, digits, `-`, `_` or `.`",
        );
        return None;
    }
    Some(name)
}

/// `listen` and `advertise` (which defaults to `listen`, when other nodes
/// can reach that).
fn addresses(
    r: &mut Report,
    src: usize,
    c: &crate::config::raw::RawCluster,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let listen = match c.listen.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            r.err(
                src,
                &c.listen,
                "cluster.listen",
                format!(
                    "`{}` is not an address with a port, e.g. \"192.0.2.53:7946\"",
                    c.listen.get_ref()
                ),
            );
            None
        }
    };
    let advertise = match &c.advertise {
        Some(a) => match a.get_ref().parse::<SocketAddr>() {
            Ok(addr) if !addr.ip().is_unspecified() && addr.port() != 0 => Some(addr),
            _ => {
                r.err(
                    src,
                    a,
                    "cluster.advertise",
                    "give the address and port other nodes reach this one at, e.g. \"192.0.2.53:7946\"",
                );
                None
            }
        },
        None => match listen {
            Some(l) if l.ip().is_unspecified() || l.port() == 0 => {
                r.err(
                    src,
                    &c.listen,
                    "cluster.listen",
                    "other nodes cannot reach an unspecified address or port 0: set `advertise` to the address and port they should use",
                );
                None
            }
            other => other,
        },
    };
    if let (Some(l), Some(a), Some(raw_a)) = (listen, advertise, &c.advertise)
        && (l.port() != a.port() || (!l.ip().is_unspecified() && l.ip() != a.ip()))
    {
        r.warn(
            src,
            raw_a,
            "cluster.advertise",
            "gossip leaves from `listen`, and other nodes drop packets that do not come from the advertised address: with NAT or a port mapping between nodes they never join",
        );
    }
    (listen, advertise)
}

/// `seeds`: addresses or host names, with ports.
fn seeds(r: &mut Report, src: usize, c: &crate::config::raw::RawCluster) -> Option<Vec<String>> {
    let mut seeds = Some(Vec::new());
    for (i, s) in c.seeds.iter().enumerate() {
        let text = s.get_ref().trim();
        let ok = text.parse::<SocketAddr>().is_ok()
            || text.rsplit_once(':').is_some_and(|(host, port)| {
                port.parse::<u16>().is_ok_and(|p| p != 0) && DomainName::parse(host, None).is_ok()
            });
        if ok {
            if let Some(seeds) = &mut seeds {
                seeds.push(text.to_string());
            }
        } else {
            r.err(
                src,
                s,
                &format!("cluster.seeds[{i}]"),
                format!("`{text}` is not an address or host name with a port, e.g. \"198.51.100.53:7946\""),
            );
            seeds = None;
        }
    }
    seeds
}

/// `key`: long enough, and warned about when its file is readable by
/// others.
fn cluster_key(r: &mut Report, src: usize, c: &crate::config::raw::RawCluster) -> Option<Secret> {
    let key = r.secret(src, &c.key, "cluster.key");
    if let crate::config::secret::SecretSource::File(p) = c.key.get_ref() {
        use std::os::unix::fs::PermissionsExt;
        let path = base_dir(&r.sources[src].path).join(p);
        if let Ok(m) = std::fs::metadata(&path)
            && m.permissions().mode() & 0o077 != 0
        {
            r.warn(
                src,
                &c.key,
                "cluster.key",
                format!(
                    "{} can be read by other users (mode {:o}): `chmod 600` it",
                    path.display(),
                    m.permissions().mode() & 0o777
                ),
            );
        }
    }
    match key {
        Some(k) if k.expose().trim().len() < MIN_KEY_LEN => {
            r.err(
                src,
                &c.key,
                "cluster.key",
                format!("the cluster key must be at least {MIN_KEY_LEN} characters; make one with `head -c 32 /dev/urandom | base64 > cluster.key`"),
            );
            None
        }
        k => k,
    }
}

/// The cluster's timing: gossip, failure detection, how long the dead
/// keep their vote and their place in the list.
struct Timing {
    gossip_interval: Duration,
    warm_start: Duration,
    phi_threshold: f64,
    dead_after: Duration,
    vote_hold: Duration,
    forget_dead_after: Duration,
}

/// The timing keys, from the key table's ranges and defaults.
fn timing(r: &mut Report, src: usize, c: &crate::config::raw::RawCluster) -> Option<Timing> {
    let gossip_interval = r.bounded(
        src,
        c.gossip_interval.as_ref(),
        None,
        &keys::GOSSIP_INTERVAL,
    );
    let warm_start = r.bounded(src, c.warm_start.as_ref(), None, &keys::WARM_START);
    let phi_threshold = match &c.phi_threshold {
        Some(p) if (1.0..=100.0).contains(p.get_ref()) => Some(*p.get_ref()),
        Some(p) => {
            r.err(
                src,
                p,
                "cluster.phi_threshold",
                "must be between 1 and 100 (the default, 8, suspects a node after about 8 mean heartbeat intervals of silence)",
            );
            None
        }
        None => Some(PHI_THRESHOLD),
    };
    let mut dead_after = r.bounded(src, c.dead_after.as_ref(), None, &keys::DEAD_AFTER);
    if let (Some(d), Some(after), Some(gossip)) = (&c.dead_after, dead_after, gossip_interval)
        && after < gossip * 4
    {
        r.err(
            src,
            d,
            "cluster.dead_after",
            format!(
                "must be at least 4 gossip intervals ({}): a node is heard about once a round",
                keys::dur(gossip * 4)
            ),
        );
        dead_after = None;
    }
    let vote_hold = r.bounded(src, c.vote_hold.as_ref(), None, &keys::VOTE_HOLD);
    let forget_dead_after = r.bounded(
        src,
        c.forget_dead_after.as_ref(),
        None,
        &keys::FORGET_DEAD_AFTER,
    );
    Some(Timing {
        gossip_interval: gossip_interval?,
        warm_start: warm_start?,
        phi_threshold: phi_threshold?,
        dead_after: dead_after?,
        vote_hold: vote_hold?,
        forget_dead_after: forget_dead_after?,
    })
}

/// A quorum: "any", "majority", "all" or a number of nodes.
pub(super) fn quorum(
    r: &mut Report,
    src: usize,
    q: &Spanned<crate::config::raw::RawQuorum>,
    field: &str,
) -> Option<Quorum> {
    use crate::config::raw::RawQuorum;
    match q.get_ref() {
        RawQuorum::Word(w) => {
            let parsed = Quorum::parse(w);
            if parsed.is_none() {
                r.err(
                    src,
                    q,
                    field,
                    format!("`{w}` is not a quorum: use \"any\", \"majority\", \"all\" or a number of nodes"),
                );
            }
            parsed
        }
        RawQuorum::Count(n) if (1..=64).contains(n) => Some(Quorum::Count(*n as u32)),
        RawQuorum::Count(n) => {
            r.err(
                src,
                q,
                field,
                format!("{n} nodes: a quorum is 1 to 64 nodes, or \"any\", \"majority\", \"all\""),
            );
            None
        }
    }
}

/// `[prober]`, checked.
pub(super) fn prober(
    r: &mut Report,
    src: usize,
    raw: &crate::config::raw::RawProber,
) -> Option<ProberSettings> {
    let source_v4 = match &raw.source_v4 {
        None => Some(None),
        Some(v) => match v.get_ref().parse::<std::net::Ipv4Addr>() {
            Ok(a) => Some(Some(a)),
            Err(_) => {
                r.err(
                    src,
                    v,
                    "prober.source_v4",
                    format!(
                        "`{}` is not an IPv4 address (no port), e.g. \"192.0.2.53\"",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let source_v6 = match &raw.source_v6 {
        None => Some(None),
        Some(v) => match v.get_ref().parse::<std::net::Ipv6Addr>() {
            Ok(a) => Some(Some(a)),
            Err(_) => {
                r.err(
                    src,
                    v,
                    "prober.source_v6",
                    format!(
                        "`{}` is not an IPv6 address (no port), e.g. \"2001:db8::53\"",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let stability =
        super::stability::stability(r, src, raw, source_v4.flatten(), source_v6.flatten());
    let (impaired, canaries) = stability?;
    Some(ProberSettings {
        source_v4: source_v4?,
        source_v6: source_v6?,
        impaired,
        canaries,
    })
}

fn valid_node_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The host name, which names a node unless `node` is set.
fn default_node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| valid_node_name(h))
        .unwrap_or_else(|| "switchyard".to_string())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    const KEY: &str = "key = \"0123456789abcdef0123\"\n";

    #[test]
    fn cluster_settings_and_defaults() {
        let c = load_text(
            &format!("[cluster]\nnode = \"ns1\"\nlisten = \"127.0.0.1:7946\"\nseeds = [\"127.0.0.1:7947\", \"ns2.example.test:7946\"]\n{KEY}"),
            &[],
        )
        .unwrap();
        let cl = c.settings.cluster.unwrap();
        assert_eq!(cl.node, "ns1");
        assert_eq!(cl.advertise, "127.0.0.1:7946".parse().unwrap());
        assert_eq!(cl.seeds.len(), 2);
        assert_eq!(cl.quorum, crate::health::quorum::Quorum::Majority);
        assert_eq!(cl.gossip_interval, std::time::Duration::from_millis(250));
    }

    #[test]
    fn cluster_mistakes_are_named() {
        for (extra, want) in [
            ("listen = \"0.0.0.0:7946\"\n", "set `advertise`"),
            ("listen = \"127.0.0.1\"\n", "not an address with a port"),
            (
                "listen = \"127.0.0.1:1\"\nquorum = \"most\"\n",
                "not a quorum",
            ),
            ("listen = \"127.0.0.1:1\"\nquorum = 0\n", "1 to 64 nodes"),
            (
                "listen = \"127.0.0.1:1\"\nseeds = [\"x y:1\"]\n",
                "cluster.seeds[0]",
            ),
            (
                "listen = \"127.0.0.1:1\"\ngossip_interval = \"1ms\"\n",
                "between 50ms and 10s",
            ),
            ("listen = \"127.0.0.1:1\"\nnode = \"a b\"\n", "node names"),
        ] {
            let e = errors(load_text(&format!("[cluster]\n{extra}{KEY}"), &[])).join("\n");
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = errors(load_text(
            "[cluster]\nlisten = \"127.0.0.1:1\"\nkey = \"short\"\n",
            &[],
        ))
        .join("\n");
        assert!(e.contains("at least 16 characters"), "{e}");
    }

    #[test]
    fn fingerprints_differ_by_node_only_in_the_source_address() {
        let profile = |tolerated: u32| {
            format!(
                "name = \"p.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\npath = \"/h\"\ntolerated_failures = {tolerated}\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\npriority = 1\n"
            )
        };
        let fp = |server: &str, tolerated: u32| {
            let c = load_text(server, &[("p.toml", &profile(tolerated))]).unwrap();
            c.probes[0].fingerprint()
        };
        let a = fp("[prober]\nsource_v4 = \"127.0.0.2\"\n", 1);
        assert_eq!(a, fp("[prober]\nsource_v4 = \"127.0.0.3\"\n", 1));
        assert_eq!(a, fp("", 1));
        assert_ne!(a, fp("", 2));
    }

    #[test]
    fn prober_sources() {
        let c = load_text("[prober]\nsource_v4 = \"127.0.0.2\"\n", &[]).unwrap();
        assert_eq!(
            c.settings.prober.source_v4,
            Some("127.0.0.2".parse().unwrap())
        );
        let e = errors(load_text("[prober]\nsource_v4 = \"::1\"\n", &[])).join("\n");
        assert!(e.contains("not an IPv4 address"), "{e}");
    }
}
