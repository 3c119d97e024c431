//! Stage: `[cluster]` (gossip between name servers) and `[prober]`
//! (where probes leave from).

use super::*;
use crate::config::{ClusterSettings, ProberSettings};
use crate::health::quorum::Quorum;

/// Smallest cluster key: shorter secrets are guessable.
const MIN_KEY_LEN: usize = 16;

/// Default `phi_threshold`: chitchat's and Cassandra's.
pub const PHI_THRESHOLD: f64 = 8.0;

/// Default `dead_after`: no false death with both cores of a 2-core VM
/// saturated by other work for minutes (see the README's cluster figures).
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// Default `vote_hold`.
pub const VOTE_HOLD: Duration = Duration::from_secs(10);

impl Loader<'_> {
    /// `[cluster]`, checked.
    pub(super) fn cluster(
        &mut self,
        src: usize,
        raw: &Spanned<crate::config::raw::RawCluster>,
    ) -> Option<ClusterSettings> {
        let c = raw.get_ref();
        let errors_before = self.diag.errors.len();
        let node = match &c.node {
            Some(n) => {
                let name = n.get_ref().trim().to_string();
                if !valid_node_name(&name) {
                    self.err(
                        src,
                        n,
                        "cluster.node",
                        "node names are 1-64 letters, digits, `-`, `_` or `.`",
                    );
                }
                name
            }
            None => default_node_name(),
        };
        let listen = match c.listen.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
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
                    self.err(
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
                    self.err(
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
            self.warn(
                src,
                raw_a,
                "cluster.advertise",
                "gossip leaves from `listen`, and other nodes drop packets that do not come from the advertised address: with NAT or a port mapping between nodes they never join",
            );
        }
        let mut seeds = Vec::new();
        for (i, s) in c.seeds.iter().enumerate() {
            let text = s.get_ref().trim();
            let ok = text.parse::<SocketAddr>().is_ok()
                || text.rsplit_once(':').is_some_and(|(host, port)| {
                    port.parse::<u16>().is_ok_and(|p| p != 0)
                        && DomainName::parse(host, None).is_ok()
                });
            if ok {
                seeds.push(text.to_string());
            } else {
                self.err(
                    src,
                    s,
                    &format!("cluster.seeds[{i}]"),
                    format!("`{text}` is not an address or host name with a port, e.g. \"198.51.100.53:7946\""),
                );
            }
        }
        let key = self.secret(src, &c.key, "cluster.key");
        if let crate::config::secret::SecretSource::File(p) = c.key.get_ref() {
            use std::os::unix::fs::PermissionsExt;
            let path = base_dir(&self.sources[src].path).join(p);
            if let Ok(m) = std::fs::metadata(&path)
                && m.permissions().mode() & 0o077 != 0
            {
                self.warn(
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
        if let Some(k) = &key
            && k.expose().trim().len() < MIN_KEY_LEN
        {
            self.err(
                src,
                &c.key,
                "cluster.key",
                format!("the cluster key must be at least {MIN_KEY_LEN} characters; make one with `head -c 32 /dev/urandom | base64 > cluster.key`"),
            );
        }
        let quorum = match &c.quorum {
            Some(q) => self.quorum(src, q, "cluster.quorum")?,
            None => Quorum::Majority,
        };
        let gossip_interval = self.bounded_duration(
            src,
            c.gossip_interval.as_ref(),
            "cluster.gossip_interval",
            Duration::from_millis(250),
            Duration::from_millis(50)..=Duration::from_secs(10),
        );
        let warm_start = self.bounded_duration(
            src,
            c.warm_start.as_ref(),
            "cluster.warm_start",
            Duration::from_secs(5),
            Duration::ZERO..=Duration::from_secs(60),
        );
        let phi_threshold = match &c.phi_threshold {
            Some(p) if (1.0..=100.0).contains(p.get_ref()) => *p.get_ref(),
            Some(p) => {
                self.err(
                    src,
                    p,
                    "cluster.phi_threshold",
                    "must be between 1 and 100 (the default, 8, suspects a node after about 8 mean heartbeat intervals of silence)",
                );
                PHI_THRESHOLD
            }
            None => PHI_THRESHOLD,
        };
        let dead_after = self.bounded_duration(
            src,
            c.dead_after.as_ref(),
            "cluster.dead_after",
            DEAD_AFTER,
            Duration::from_millis(500)..=Duration::from_secs(600),
        );
        if let Some(d) = &c.dead_after
            && dead_after < gossip_interval * 4
        {
            self.err(
                src,
                d,
                "cluster.dead_after",
                format!(
                    "must be at least 4 gossip intervals ({}): a node is heard about once a round",
                    humantime::format_duration(gossip_interval * 4)
                ),
            );
        }
        let vote_hold = self.bounded_duration(
            src,
            c.vote_hold.as_ref(),
            "cluster.vote_hold",
            VOTE_HOLD,
            Duration::ZERO..=Duration::from_secs(3600),
        );
        let forget_dead_after = self.bounded_duration(
            src,
            c.forget_dead_after.as_ref(),
            "cluster.forget_dead_after",
            Duration::from_secs(3600),
            Duration::from_secs(10)..=Duration::from_secs(30 * 86_400),
        );
        if self.diag.errors.len() > errors_before {
            return None;
        }
        Some(ClusterSettings {
            node,
            listen: listen?,
            advertise: advertise?,
            seeds,
            key: key?,
            quorum,
            gossip_interval,
            warm_start,
            phi_threshold,
            dead_after,
            vote_hold,
            forget_dead_after,
        })
    }

    /// A quorum: "any", "majority", "all" or a number of nodes.
    pub(super) fn quorum(
        &mut self,
        src: usize,
        q: &Spanned<crate::config::raw::RawQuorum>,
        field: &str,
    ) -> Option<Quorum> {
        use crate::config::raw::RawQuorum;
        match q.get_ref() {
            RawQuorum::Word(w) => {
                let parsed = Quorum::parse(w);
                if parsed.is_none() {
                    self.err(
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
                self.err(
                    src,
                    q,
                    field,
                    format!(
                        "{n} nodes: a quorum is 1 to 64 nodes, or \"any\", \"majority\", \"all\""
                    ),
                );
                None
            }
        }
    }

    /// `[prober]`, checked.
    pub(super) fn prober(
        &mut self,
        src: usize,
        raw: &crate::config::raw::RawProber,
    ) -> ProberSettings {
        let mut p = ProberSettings::default();
        if let Some(v) = &raw.source_v4 {
            match v.get_ref().parse::<std::net::Ipv4Addr>() {
                Ok(a) => p.source_v4 = Some(a),
                Err(_) => self.err(
                    src,
                    v,
                    "prober.source_v4",
                    format!(
                        "`{}` is not an IPv4 address (no port), e.g. \"192.0.2.53\"",
                        v.get_ref()
                    ),
                ),
            }
        }
        if let Some(v) = &raw.source_v6 {
            match v.get_ref().parse::<std::net::Ipv6Addr>() {
                Ok(a) => p.source_v6 = Some(a),
                Err(_) => self.err(
                    src,
                    v,
                    "prober.source_v6",
                    format!(
                        "`{}` is not an IPv6 address (no port), e.g. \"2001:db8::53\"",
                        v.get_ref()
                    ),
                ),
            }
        }
        p
    }

    /// A duration within `range`, or `default` when not given.
    pub(super) fn bounded_duration(
        &mut self,
        src: usize,
        v: Option<&Spanned<String>>,
        field: &str,
        default: Duration,
        range: std::ops::RangeInclusive<Duration>,
    ) -> Duration {
        let Some(v) = v else { return default };
        match self.duration(src, v, field) {
            Some(d) if range.contains(&d) => d,
            Some(_) => {
                self.err(
                    src,
                    v,
                    field,
                    format!(
                        "must be between {} and {}",
                        humantime::format_duration(*range.start()),
                        humantime::format_duration(*range.end())
                    ),
                );
                default
            }
            None => default,
        }
    }
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
