//! The schema's bounded keys in one declarative table: each key's name,
//! type, range, default and meaning. The compiler reads a key's range and
//! default from here (`compile::report::Report::bounded`), so the error
//! message, the default applied and the reference tables in
//! `profiles/README.md` (checked against this table by a test) cannot drift
//! apart. Knot's configuration schema and vector's component configs are
//! the models; keys whose checks are more than a range (addresses, names,
//! secrets) are checked by their stage.

use std::time::Duration;

/// One key of the schema.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// Its dotted name (`cluster.dead_after`); in a table of an array,
    /// without the index (`notify.timeout`).
    pub name: &'static str,
    /// Its type, range and default.
    pub kind: Kind,
    /// What it means, in a few words.
    pub doc: &'static str,
}

/// A key's type, with its range and default.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A duration (`"500ms"`, `"10s"`) within `min..=max`.
    Duration {
        /// Applied when the key is left out.
        default: Duration,
        /// Least allowed.
        min: Duration,
        /// Most allowed.
        max: Duration,
    },
    /// An integer within `min..=max`.
    Int {
        /// Applied when the key is left out.
        default: i64,
        /// Least allowed.
        min: i64,
        /// Most allowed.
        max: i64,
    },
}

impl Key {
    /// The range as the reference tables write it: `50ms..10s`, `1..1000`.
    pub fn range_text(&self) -> String {
        match self.kind {
            Kind::Duration { min, max, .. } => format!("{}..{}", dur(min), dur(max)),
            Kind::Int { min, max, .. } => format!("{min}..{max}"),
        }
    }

    /// The default as the reference tables write it: `"250ms"`, `8`.
    pub fn default_text(&self) -> String {
        match self.kind {
            Kind::Duration { default, .. } => format!("`\"{}\"`", dur(default)),
            Kind::Int { default, .. } => default.to_string(),
        }
    }

    /// An integer key's range, as (least, most).
    pub const fn range(&self) -> (i64, i64) {
        match self.kind {
            Kind::Int { min, max, .. } => (min, max),
            Kind::Duration { .. } => panic!("not an integer key"),
        }
    }

    /// A duration key's default.
    pub const fn default_duration(&self) -> Duration {
        match self.kind {
            Kind::Duration { default, .. } => default,
            Kind::Int { .. } => panic!("not a duration key"),
        }
    }

    /// An integer key's default.
    pub const fn default_int(&self) -> i64 {
        match self.kind {
            Kind::Int { default, .. } => default,
            Kind::Duration { .. } => panic!("not an integer key"),
        }
    }
}

/// A duration in its largest whole unit (`250ms`, `10s`, `10m`, `1h`,
/// `30d`), as the reference tables and the messages write it; humantime
/// reads each back.
pub fn dur(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn duration(
    name: &'static str,
    default: Duration,
    min: Duration,
    max: Duration,
    doc: &'static str,
) -> Key {
    Key {
        name,
        kind: Kind::Duration { default, min, max },
        doc,
    }
}

const fn int(name: &'static str, default: i64, min: i64, max: i64, doc: &'static str) -> Key {
    Key {
        name,
        kind: Kind::Int { default, min, max },
        doc,
    }
}

/// `cluster.gossip_interval`.
pub const GOSSIP_INTERVAL: Key = duration(
    "cluster.gossip_interval",
    ms(250),
    ms(50),
    secs(10),
    "time between gossip rounds",
);
/// `cluster.warm_start`.
pub const WARM_START: Key = duration(
    "cluster.warm_start",
    secs(5),
    Duration::ZERO,
    secs(60),
    "the longest a starting node waits for its peers' state",
);
/// `cluster.dead_after`: no false death with both cores of a 2-core VM
/// saturated by other work for minutes (see the README's cluster figures).
pub const DEAD_AFTER: Key = duration(
    "cluster.dead_after",
    secs(3),
    ms(500),
    secs(600),
    "the least silence before a node is declared dead",
);
/// `cluster.vote_hold`.
pub const VOTE_HOLD: Key = duration(
    "cluster.vote_hold",
    secs(10),
    Duration::ZERO,
    secs(3600),
    "how long a dead node's last observations still count",
);
/// `cluster.forget_dead_after`.
pub const FORGET_DEAD_AFTER: Key = duration(
    "cluster.forget_dead_after",
    secs(3600),
    secs(10),
    secs(30 * 86_400),
    "how long a dead node stays listed",
);
/// `notify.coalesce`.
pub const NOTIFY_COALESCE: Key = duration(
    "notify.coalesce",
    secs(60),
    Duration::ZERO,
    secs(3600),
    "changes this close together go in one message",
);
/// `notify.timeout`.
pub const NOTIFY_TIMEOUT: Key = duration(
    "notify.timeout",
    secs(5),
    ms(100),
    secs(60),
    "one delivery attempt's deadline",
);
/// `notify.retry_for`.
pub const NOTIFY_RETRY_FOR: Key = duration(
    "notify.retry_for",
    secs(600),
    Duration::ZERO,
    secs(86_400),
    "how long a failed delivery is retried",
);

/// `dns.max_tcp_connections`.
pub const MAX_TCP_CONNECTIONS: Key = int(
    "dns.max_tcp_connections",
    1024,
    1,
    65535,
    "TCP connections open at once, all listeners together",
);
/// `dns.max_tcp_per_client`.
pub const MAX_TCP_PER_CLIENT: Key = int(
    "dns.max_tcp_per_client",
    64,
    1,
    65535,
    "TCP connections one client may hold",
);
/// `dns.udp_workers`.
pub const UDP_WORKERS: Key = int(
    "dns.udp_workers",
    0,
    0,
    64,
    "UDP threads per listen address; 0 = one per CPU",
);
/// `dns.signature_cache`.
pub const SIGNATURE_CACHE: Key = int(
    "dns.signature_cache",
    65536,
    64,
    16777216,
    "RRSIGs kept for signed zones",
);
/// `dns.signatures_per_second`.
pub const SIGNATURES_PER_SECOND: Key = int(
    "dns.signatures_per_second",
    2000,
    0,
    10000000,
    "new signatures per second, the whole server",
);
/// `dns.signatures_per_client`.
pub const SIGNATURES_PER_CLIENT: Key = int(
    "dns.signatures_per_client",
    200,
    0,
    1000000,
    "new signatures per second for each client",
);
/// `dns.rate_limit.responses_per_second`.
pub const RESPONSES_PER_SECOND: Key = int(
    "dns.rate_limit.responses_per_second",
    100,
    1,
    1000000,
    "answers per second per client network, name and type",
);
/// `dns.rate_limit.nxdomains_per_second`.
pub const NXDOMAINS_PER_SECOND: Key = int(
    "dns.rate_limit.nxdomains_per_second",
    20,
    1,
    1000000,
    "NXDOMAIN responses per second per client network",
);
/// `dns.rate_limit.errors_per_second`.
pub const ERRORS_PER_SECOND: Key = int(
    "dns.rate_limit.errors_per_second",
    10,
    1,
    1000000,
    "error responses per second per client network",
);
/// `dns.rate_limit.slip`.
pub const SLIP: Key = int(
    "dns.rate_limit.slip",
    2,
    0,
    10,
    "every slip-th limited response is sent truncated",
);
/// `dns.rate_limit.ipv4_prefix`.
pub const IPV4_PREFIX: Key = int(
    "dns.rate_limit.ipv4_prefix",
    24,
    8,
    32,
    "the client network of an IPv4 address",
);
/// `dns.rate_limit.ipv6_prefix`.
pub const IPV6_PREFIX: Key = int(
    "dns.rate_limit.ipv6_prefix",
    56,
    16,
    128,
    "the client network of an IPv6 address",
);
/// `dns.rate_limit.table_size`.
pub const TABLE_SIZE: Key = int(
    "dns.rate_limit.table_size",
    65536,
    1024,
    16777216,
    "rate-limit counters kept",
);

// A profile's keys (written without a prefix in its file).

/// `ttl`.
pub const TTL: Key = int(
    "ttl",
    60,
    0,
    2147483647,
    "TTL of a profile's answers, seconds (RFC 2181's largest)",
);
/// `max_answers`.
pub const MAX_ANSWERS: Key = int(
    "max_answers",
    8,
    1,
    10,
    "multivalue: most addresses per answer",
);
/// `weight`.
pub const WEIGHT: Key = int(
    "weight",
    1,
    1,
    1000,
    "weighted routing: an endpoint's relative share",
);
/// `tolerated_failures`.
pub const TOLERATED_FAILURES: Key = int(
    "tolerated_failures",
    3,
    0,
    9,
    "consecutive probe failures tolerated",
);
/// `required_successes`.
pub const REQUIRED_SUCCESSES: Key = int(
    "required_successes",
    1,
    1,
    10,
    "consecutive successes a Degraded endpoint needs",
);
/// `cert_warning` (in `[monitor]`, https only).
pub const CERT_WARNING: Key = duration(
    "cert_warning",
    secs(14 * 86_400),
    Duration::ZERO,
    secs(365 * 86_400),
    "warn when an HTTPS endpoint's certificate has less than this left",
);

/// `prober.impaired_min_targets`.
pub const IMPAIRED_MIN_TARGETS: Key = int(
    "prober.impaired_min_targets",
    crate::health::impaired::DEFAULT_MIN_TARGETS as i64,
    2,
    1_000_000,
    "fewest healthy probe targets the impaired share is judged on",
);
/// `prober.canary_interval`.
pub const CANARY_INTERVAL: Key = duration(
    "prober.canary_interval",
    secs(5),
    ms(100),
    secs(600),
    "time between canary probes",
);
/// `prober.canary_timeout`.
pub const CANARY_TIMEOUT: Key = duration(
    "prober.canary_timeout",
    secs(2),
    ms(50),
    secs(60),
    "canary probe deadline",
);
/// `traffic.networks`.
pub const TRAFFIC_NETWORKS: Key = int(
    "traffic.networks",
    256,
    16,
    4096,
    "client networks counted per Traffic View pane (Space-Saving counters, k)",
);
/// `traffic.queue`.
pub const TRAFFIC_QUEUE: Key = int(
    "traffic.queue",
    32768,
    64,
    1_048_576,
    "answers the Traffic View's queue holds between drains",
);

/// `rum.beacons_per_second`.
pub const RUM_BEACONS_PER_SECOND: Key = int(
    "rum.beacons_per_second",
    5,
    1,
    100000,
    "beacons a second from one client network",
);
/// `rum.token_lifetime`.
pub const RUM_TOKEN_LIFETIME: Key = duration(
    "rum.token_lifetime",
    secs(120),
    secs(10),
    secs(3600),
    "how long a measurement token is accepted",
);
/// `latency.min_samples`.
pub const LATENCY_MIN_SAMPLES: Key = int(
    "latency.min_samples",
    crate::latency::DEFAULT_MIN_SAMPLES as i64,
    1,
    1_000_000,
    "decayed samples an estimate needs before routing uses it",
);

/// `latency.max_networks`.
pub const LATENCY_MAX_NETWORKS: Key = int(
    "latency.max_networks",
    crate::latency::DEFAULT_MAX_NETWORKS as i64,
    4096,
    50_000_000,
    "client networks the latency table keeps",
);

/// `latency.half_life`.
pub const LATENCY_HALF_LIFE: Key = duration(
    "latency.half_life",
    crate::latency::DEFAULT_HALF_LIFE,
    Duration::from_secs(60),
    Duration::from_secs(365 * 86_400),
    "a latency sample this old counts a half",
);

/// Every key of the table, for the check of the reference tables.
pub const ALL: &[Key] = &[
    TTL,
    MAX_ANSWERS,
    WEIGHT,
    TOLERATED_FAILURES,
    REQUIRED_SUCCESSES,
    CERT_WARNING,
    MAX_TCP_CONNECTIONS,
    MAX_TCP_PER_CLIENT,
    UDP_WORKERS,
    SIGNATURE_CACHE,
    SIGNATURES_PER_SECOND,
    SIGNATURES_PER_CLIENT,
    RESPONSES_PER_SECOND,
    NXDOMAINS_PER_SECOND,
    ERRORS_PER_SECOND,
    SLIP,
    IPV4_PREFIX,
    IPV6_PREFIX,
    TABLE_SIZE,
    GOSSIP_INTERVAL,
    WARM_START,
    DEAD_AFTER,
    VOTE_HOLD,
    FORGET_DEAD_AFTER,
    NOTIFY_COALESCE,
    NOTIFY_TIMEOUT,
    NOTIFY_RETRY_FOR,
    IMPAIRED_MIN_TARGETS,
    CANARY_INTERVAL,
    CANARY_TIMEOUT,
    RUM_BEACONS_PER_SECOND,
    RUM_TOKEN_LIFETIME,
    LATENCY_MIN_SAMPLES,
    LATENCY_MAX_NETWORKS,
    LATENCY_HALF_LIFE,
    TRAFFIC_NETWORKS,
    TRAFFIC_QUEUE,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference tables in `profiles/README.md` give each key of the
    /// table its range and default as the table does (the compiler reads
    /// both from here, so the docs cannot say otherwise).
    #[test]
    fn the_reference_tables_agree_with_the_key_table() {
        let docs = include_str!("../../profiles/README.md");
        for key in ALL {
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", key.name)))
                .unwrap_or_else(|| panic!("profiles/README.md has no row for {}", key.name));
            let cells: Vec<&str> = row.split(" | ").map(str::trim).collect();
            assert!(
                cells.iter().any(|c| c.contains(&key.range_text())),
                "{}: the row does not give the range {}: {row}",
                key.name,
                key.range_text()
            );
            assert!(
                cells
                    .iter()
                    .any(|c| c.trim_end_matches(" |") == key.default_text()),
                "{}: the row does not give the default {}: {row}",
                key.name,
                key.default_text()
            );
        }
    }

    /// The defaults the lower layers start from (they cannot read this
    /// table: `dns` and `dnssec` sit below `config`) are the table's.
    #[test]
    fn the_lower_layers_defaults_are_the_tables() {
        let rrl = crate::dns::rrl::Config::default();
        let budget = crate::dnssec::budget::Config::default();
        for (key, value) in [
            (RESPONSES_PER_SECOND, i64::from(rrl.responses_per_second)),
            (NXDOMAINS_PER_SECOND, i64::from(rrl.nxdomains_per_second)),
            (ERRORS_PER_SECOND, i64::from(rrl.errors_per_second)),
            (SLIP, i64::from(rrl.slip)),
            (IPV4_PREFIX, i64::from(rrl.ipv4_prefix)),
            (IPV6_PREFIX, i64::from(rrl.ipv6_prefix)),
            (TABLE_SIZE, rrl.table_size as i64),
            (SIGNATURES_PER_SECOND, i64::from(budget.per_second)),
            (SIGNATURES_PER_CLIENT, i64::from(budget.per_client)),
        ] {
            assert_eq!(key.default_int(), value, "{}", key.name);
        }
    }

    #[test]
    fn durations_are_written_in_their_largest_whole_unit() {
        for (d, text) in [
            (ms(250), "250ms"),
            (secs(10), "10s"),
            (secs(90), "90s"),
            (secs(600), "10m"),
            (secs(3600), "1h"),
            (secs(30 * 86_400), "30d"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(dur(d), text);
            assert_eq!(humantime::parse_duration(text).unwrap(), d);
        }
    }
}
