//! The configuration exactly as written: serde structs, strict (unknown keys
//! are errors), with spans kept for every value that validation may blame.
//! Nothing outside `config` sees these types.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::secret::SecretSource;

/// `switchyard.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `[dns]`
    #[serde(default)]
    pub dns: RawDns,
    /// `[admin]`
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[geoip]`
    pub geoip: Option<RawGeoip>,
    /// `[profiles]`
    #[serde(default)]
    pub profiles: RawProfilesDir,
    /// Runtime overrides file.
    pub state_file: Option<Spanned<String>>,
    /// `[cluster]`
    pub cluster: Option<Spanned<RawCluster>>,
    /// `[prober]`
    #[serde(default)]
    pub prober: RawProber,
    /// `[[zones]]`
    #[serde(default)]
    pub zones: Vec<Spanned<RawZone>>,
    /// `[[notify]]`
    #[serde(default)]
    pub notify: Vec<Spanned<RawNotify>>,
    /// `[latency]`
    #[serde(default)]
    pub latency: RawLatency,
    /// `[rum]`
    pub rum: Option<Spanned<RawRum>>,
    /// `[traffic]`
    #[serde(default)]
    pub traffic: RawTraffic,
}

/// `[rum]`: real user measurements.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRum {
    /// The public HTTP(S) listener: script, token and beacons.
    pub listen: Spanned<String>,
    /// The zone whose names carry the per-beacon tokens.
    pub zone: Spanned<String>,
    /// The addresses token names resolve to.
    pub answer: Spanned<Vec<Spanned<String>>>,
    /// Certificate chain (PEM) for HTTPS.
    pub tls_cert: Option<Spanned<String>>,
    /// Private key (PEM) for HTTPS.
    pub tls_key: Option<Spanned<String>>,
    /// Beacons a second per client network.
    pub beacons_per_second: Option<Spanned<i64>>,
    /// Largest beacon body.
    pub max_body: Option<Spanned<SizeSpec>>,
    /// How long a token is accepted.
    pub token_lifetime: Option<Spanned<String>>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    /// `[[rum.keys]]`
    #[serde(default)]
    pub keys: Vec<Spanned<RawRumKey>>,
}

/// `[[rum.keys]]`: the key a page embeds, and what it measures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRumKey {
    /// The key (a secret: never logged or shown).
    pub key: Spanned<SecretSource>,
    /// The profiles whose endpoints it measures.
    pub profiles: Spanned<Vec<Spanned<String>>>,
}

/// `[latency]`: the latency table performance routing reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    /// Operators' own measurements (CSV), re-read when it changes.
    pub file: Option<Spanned<String>>,
    /// Decayed samples an estimate needs before routing uses it.
    pub min_samples: Option<Spanned<i64>>,
    /// Latencies within this of the best count as equal (`"10%"`, `"10ms"`).
    pub band: Option<Spanned<String>>,
    /// Client networks kept.
    pub max_networks: Option<Spanned<i64>>,
    /// A sample this old counts a half.
    pub half_life: Option<Spanned<String>>,
}

/// `[traffic]`: the Traffic View.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    /// Record answered queries (on by default).
    pub enabled: Option<bool>,
    /// Space-Saving counters per pane (k).
    pub networks: Option<Spanned<i64>>,
    /// Records the queue holds.
    pub queue: Option<Spanned<i64>>,
}

/// `[[notify]]`: a webhook target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// Unique; the metrics' `target` label.
    pub name: Spanned<String>,
    /// `http://` or `https://` URL: a string, `{ env }` or `{ file }`.
    pub url: Spanned<SecretSource>,
    /// `"json"` (default) or `"slack"`.
    pub format: Option<Spanned<String>>,
    /// HMAC-SHA256 signing secret.
    pub secret: Option<Spanned<SecretSource>>,
    /// Events sent (default: all).
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
    /// Flap window per endpoint.
    pub coalesce: Option<Spanned<String>>,
    /// Bound of one attempt.
    pub timeout: Option<Spanned<String>>,
    /// How long a message is retried.
    pub retry_for: Option<Spanned<String>>,
    /// Messages waiting for this target.
    pub queue: Option<Spanned<i64>>,
    /// Extra trusted CA certificates (PEM), for https.
    pub ca_cert: Option<Spanned<String>>,
}

/// `[cluster]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// This node's unique name (default: the host name).
    pub node: Option<Spanned<String>>,
    /// Gossip address (UDP).
    pub listen: Spanned<String>,
    /// The address other nodes reach this one at (default: `listen`).
    pub advertise: Option<Spanned<String>>,
    /// Some other nodes' gossip addresses.
    #[serde(default)]
    pub seeds: Vec<Spanned<String>>,
    /// The shared secret that authenticates and encrypts gossip.
    pub key: Spanned<SecretSource>,
    /// "any" | "majority" | "all" | a number.
    pub quorum: Option<Spanned<RawQuorum>>,
    /// Time between gossip rounds.
    pub gossip_interval: Option<Spanned<String>>,
    /// How long a starting node waits for its peers before answering.
    pub warm_start: Option<Spanned<String>>,
    /// The failure detector's suspicion threshold (phi).
    pub phi_threshold: Option<Spanned<f64>>,
    /// Least silence before a node is declared dead.
    pub dead_after: Option<Spanned<String>>,
    /// How long a dead node's last observations keep counting.
    pub vote_hold: Option<Spanned<String>>,
    /// How long a dead node stays listed.
    pub forget_dead_after: Option<Spanned<String>>,
}

/// A quorum as written: a word or a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawQuorum {
    /// "any", "majority", "all".
    Word(String),
    /// A number of nodes.
    Count(i64),
}

/// `[prober]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProber {
    /// IPv4 source address of probes.
    pub source_v4: Option<Spanned<String>>,
    /// IPv6 source address of probes.
    pub source_v6: Option<Spanned<String>>,
    /// Share of the healthy probe targets failing together that means
    /// this host is the one failing (0: off).
    pub impaired_share: Option<Spanned<f64>>,
    /// Fewest probe targets the share is judged on.
    pub impaired_min_targets: Option<Spanned<i64>>,
    /// Targets that must always be reachable: `tcp://host:port`,
    /// `http://host/path`, `https://host/path`.
    pub canaries: Option<Spanned<Vec<Spanned<String>>>>,
    /// Time between canary probes.
    pub canary_interval: Option<Spanned<String>>,
    /// Canary probe deadline.
    pub canary_timeout: Option<Spanned<String>>,
}

/// `[dns]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// Addresses to serve UDP and TCP on.
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// Honour EDNS Client Subnet.
    pub ecs: Option<bool>,
    /// Close idle TCP connections after this long.
    pub tcp_idle_timeout: Option<Spanned<String>>,
    /// Most TCP connections open at once.
    pub max_tcp_connections: Option<Spanned<i64>>,
    /// Most TCP connections per client (/32 or /64).
    pub max_tcp_per_client: Option<Spanned<i64>>,
    /// UDP worker threads per listen address.
    pub udp_workers: Option<Spanned<i64>>,
    /// `[dns.rate_limit]`
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    /// `[dns.cookies]`
    pub cookies: Option<Spanned<RawCookies>>,
    /// Server identifier for NSID (RFC 5001).
    pub nsid: Option<Spanned<String>>,
    /// Most signatures kept in the signature cache (signed zones).
    pub signature_cache: Option<Spanned<i64>>,
    /// New signatures a second, the whole server (signed zones).
    pub signatures_per_second: Option<Spanned<i64>>,
    /// New signatures a second per client over TCP or with a valid cookie.
    pub signatures_per_client: Option<Spanned<i64>>,
    /// `[dns.xdp]`
    pub xdp: Option<Spanned<RawXdp>>,
}

/// `[dns.xdp]`: the AF_XDP fast path for UDP queries (Linux).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawXdp {
    /// Interfaces to serve, `"eth0"` (every queue) or `"eth0@0"` (one).
    pub interfaces: Option<Spanned<Vec<Spanned<String>>>>,
    /// Addresses and ports answered through XDP, `"ADDR:PORT"`.
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// `"error"` (default) or `"sockets"`: what to do when XDP cannot start.
    pub fallback: Option<Spanned<String>>,
}

/// `[dns.rate_limit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// On by default.
    pub enabled: Option<bool>,
    /// Positive responses per second per network, name and type.
    pub responses_per_second: Option<Spanned<i64>>,
    /// NXDOMAIN responses per second per network.
    pub nxdomains_per_second: Option<Spanned<i64>>,
    /// Error responses per second per network.
    pub errors_per_second: Option<Spanned<i64>>,
    /// Responses of every kind per second per network (0: no total).
    pub total_per_second: Option<Spanned<i64>>,
    /// Every n-th limited response is sent truncated.
    pub slip: Option<Spanned<i64>>,
    /// Client network prefix, IPv4.
    pub ipv4_prefix: Option<Spanned<i64>>,
    /// Client network prefix, IPv6.
    pub ipv6_prefix: Option<Spanned<i64>>,
    /// Networks never limited.
    pub exempt: Option<Spanned<Vec<Spanned<String>>>>,
    /// Counters in the table.
    pub table_size: Option<Spanned<i64>>,
}

/// `[dns.cookies]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCookies {
    /// On by default.
    pub enabled: Option<bool>,
    /// 32 hex digits; random at start when absent.
    pub secret: Option<Spanned<SecretSource>>,
    /// Still accepted (the secret before a rotation).
    pub previous_secret: Option<Spanned<SecretSource>>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// HTTP listen address.
    pub listen: Option<Spanned<String>>,
    /// Bearer token for non-GET requests.
    pub token: Option<Spanned<SecretSource>>,
    /// Named bearer tokens: overrides record the name of the one used.
    pub tokens: Option<Spanned<std::collections::BTreeMap<String, Spanned<SecretSource>>>>,
}

/// `[geoip]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoip {
    /// MaxMind DB file.
    pub database: Option<Spanned<String>>,
}

/// `[profiles]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfilesDir {
    /// Directory of `*.toml` profiles.
    pub dir: Option<Spanned<String>>,
    /// Largest profile file read.
    pub max_file_size: Option<Spanned<SizeSpec>>,
    /// Reload when the configuration files change (default true).
    pub watch: Option<bool>,
}

/// A size: bytes, or a string with a unit (`"1MiB"`, `"512KiB"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// Bytes.
    Bytes(i64),
    /// With a unit.
    Text(String),
}

/// `[[zones]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    /// Zone apex.
    pub origin: Spanned<String>,
    /// Default TTL of static records.
    pub ttl: Option<Spanned<i64>>,
    /// Apex NS host names.
    pub ns: Spanned<Vec<Spanned<String>>>,
    /// SOA fields.
    pub soa: Option<Spanned<RawSoa>>,
    /// Static records.
    #[serde(default)]
    pub records: Vec<Spanned<RawRecord>>,
    /// DNSSEC: sign this zone's answers online.
    pub dnssec: Option<Spanned<RawDnssec>>,
}

/// `dnssec = { key = { file = "keys/ZONE.key" } }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnssec {
    /// The signing key (combined KSK/ZSK).
    pub key: Spanned<RawKeyRef>,
    /// Further keys published in DNSKEY (and CDS/CDNSKEY) without signing:
    /// the incoming or outgoing key of a rollover.
    #[serde(default)]
    pub publish: Vec<Spanned<RawKeyRef>>,
    /// How long signatures are valid (`"7d"`).
    pub signature_validity: Option<Spanned<String>>,
}

/// `{ file = "keys/ZONE.key" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyRef {
    /// A key file written by `switchyard dnssec keygen`.
    pub file: Spanned<String>,
}

/// `soa = { ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSoa {
    /// Primary name server.
    pub mname: Option<Spanned<String>>,
    /// Responsible mailbox as a name.
    pub rname: Option<Spanned<String>>,
    /// Serial; derived from load time when absent.
    pub serial: Option<Spanned<i64>>,
    /// Refresh seconds.
    pub refresh: Option<Spanned<i64>>,
    /// Retry seconds.
    pub retry: Option<Spanned<i64>>,
    /// Expire seconds.
    pub expire: Option<Spanned<i64>>,
    /// Negative-caching TTL.
    pub minimum: Option<Spanned<i64>>,
}

/// A static record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    /// Owner, relative to the origin unless it ends with a dot.
    pub name: Spanned<String>,
    /// Record type.
    #[serde(rename = "type")]
    pub rtype: Spanned<String>,
    /// Value in presentation format.
    pub value: Spanned<String>,
    /// TTL override.
    pub ttl: Option<Spanned<i64>>,
}

/// `profiles/<name>.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// The name answered.
    pub name: Spanned<String>,
    /// Routing method.
    pub routing: Spanned<String>,
    /// Answer TTL.
    pub ttl: Option<Spanned<i64>>,
    /// Answer TTL while the profile is not settled (an endpoint not Online,
    /// or a status change within `ttl`).
    pub ttl_degraded: Option<Spanned<i64>>,
    /// `"client-subnet"`: weighted and multivalue choose by a consistent
    /// hash of the client's network.
    pub sticky: Option<Spanned<String>>,
    /// `"manual"`: an endpoint back from Degraded stays out until resumed.
    pub failback: Option<Spanned<String>>,
    /// With `failback = "manual"`: a held endpoint comes back by itself
    /// after this long Online.
    pub failback_after: Option<Spanned<String>>,
    /// `false` answers NXDOMAIN.
    pub enabled: Option<bool>,
    /// Policy when all eligible endpoints are Degraded.
    pub on_all_down: Option<Spanned<String>>,
    /// Multivalue answer size.
    pub max_answers: Option<Spanned<i64>>,
    /// In a cluster: the quorum rule for this profile's endpoints.
    pub quorum: Option<Spanned<RawQuorum>>,
    /// Health monitoring.
    pub monitor: Option<Spanned<RawMonitor>>,
    /// Named monitors (instead of `[monitor]`), combined per endpoint.
    #[serde(default)]
    pub monitors: Vec<Spanned<RawMonitor>>,
    /// Shed new traffic from an endpoint whose reported load is above
    /// this.
    pub shed_above: Option<Spanned<toml::Value>>,
    /// How much of it, in per cent.
    pub shed_percent: Option<Spanned<i64>>,
    /// How the named monitors combine: `"all"`, `"any"` or
    /// `{ at_least = N }` (checked by the compiler, which says what is
    /// wrong better than serde's untagged enums).
    pub health: Option<Spanned<toml::Value>>,
    /// Endpoints.
    #[serde(default)]
    pub endpoints: Vec<Spanned<RawEndpoint>>,
}

/// `[monitor]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// `[[monitors]]`: the name endpoints refer to it by.
    pub name: Option<Spanned<String>>,
    /// `[[monitors]]`: up while its check fails.
    pub invert: Option<Spanned<bool>>,
    /// `[[monitors]]`: probe this host (or address) instead of the
    /// endpoint's, e.g. a database the endpoint depends on.
    pub address: Option<Spanned<String>>,
    /// `protocol = "push"`: what an expired push counts as.
    pub on_stale: Option<Spanned<String>>,
    /// `protocol = "push"`: how long a push without its own `ttl` counts.
    pub ttl: Option<Spanned<String>>,
    /// http | https | tcp | dns | grpc | push
    pub protocol: Option<Spanned<String>>,
    /// Port.
    pub port: Option<Spanned<i64>>,
    /// Path with optional `{key}`.
    pub path: Option<Spanned<String>>,
    /// Secret substituted for `{key}`.
    pub key: Option<Spanned<SecretSource>>,
    /// Probe interval.
    pub interval: Option<Spanned<String>>,
    /// Probe timeout.
    pub timeout: Option<Spanned<String>>,
    /// Failures tolerated before Degraded.
    pub tolerated_failures: Option<Spanned<i64>>,
    /// Successes needed to come back Online.
    pub required_successes: Option<Spanned<i64>>,
    /// Accepted status codes or ranges.
    pub expected_status: Option<Spanned<Vec<Spanned<StatusSpec>>>>,
    /// Extra request headers.
    pub headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// Verify the server certificate.
    pub tls_verify: Option<bool>,
    /// Extra trusted CA certificates (PEM).
    pub ca_cert: Option<Spanned<String>>,
    /// Client certificate (PEM).
    pub client_cert: Option<Spanned<String>>,
    /// Client key (PEM).
    pub client_key: Option<Spanned<String>>,
    /// Substring the body must contain.
    pub body_match: Option<Spanned<String>>,
    /// HTTPS: warn below this much certificate lifetime left.
    pub cert_warning: Option<Spanned<String>>,
    /// dns: the name asked.
    pub query_name: Option<Spanned<String>>,
    /// dns: the record type asked.
    pub query_type: Option<Spanned<String>>,
    /// dns: `udp` or `tcp`.
    pub transport: Option<Spanned<String>>,
    /// dns: the rcode a healthy server answers.
    pub expected_rcode: Option<Spanned<String>>,
    /// dns: an address, name or text one answer record must be.
    pub expected_answer: Option<Spanned<String>>,
    /// grpc: over TLS (ALPN h2) instead of plaintext HTTP/2 (h2c).
    pub tls: Option<Spanned<bool>>,
    /// grpc: the service name asked about (none: the server as a whole).
    pub service: Option<Spanned<String>>,
}

/// `200` or `"200-299"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    /// One code.
    Code(i64),
    /// `"200"` or `"200-299"`.
    Text(String),
}

/// `[[endpoints]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Unique within the profile.
    pub name: Spanned<String>,
    /// IPv4, IPv6 or host name.
    pub target: Option<Spanned<String>>,
    /// Priority routing.
    pub priority: Option<Spanned<i64>>,
    /// Weighted routing.
    pub weight: Option<Spanned<i64>>,
    /// Performance routing: a cloud region name or `{ lat, lon }`, the
    /// endpoint's place for distance ranking. Checked whatever the method.
    #[allow(dead_code)]
    pub location: Option<Spanned<RawLocation>>,
    /// Geographic routing: `WORLD`, `GEO-xx` groups, countries and
    /// subdivisions this endpoint answers. Checked whatever the method.
    #[allow(dead_code)]
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
    /// Subnet routing: the client networks (CIDRs, ranges, addresses) this
    /// endpoint answers; none makes it the fallback. Checked whatever the
    /// method.
    pub subnets: Option<Spanned<Vec<Spanned<String>>>>,
    /// `false`: Disabled.
    pub enabled: Option<bool>,
    /// `true`: Unmonitored.
    pub always_serve: Option<bool>,
    /// Probe somewhere else.
    pub probe: Option<Spanned<RawProbe>>,
    /// Nested child profile.
    pub profile: Option<Spanned<String>>,
    /// Nested roll-up threshold.
    pub min_child_endpoints: Option<Spanned<i64>>,
    /// Real user measurements: the small object browsers fetch to time
    /// this endpoint.
    pub rum_url: Option<Spanned<String>>,
    /// The profile's named monitors this endpoint uses (default: all).
    pub monitors: Option<Spanned<Vec<Spanned<String>>>>,
    /// How they combine (default: the profile's `health`).
    pub health: Option<Spanned<toml::Value>>,
}

/// A region name or coordinates.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum RawLocation {
    /// A cloud region name.
    Region(String),
    /// `{ lat, lon }`
    Coordinates {
        /// Latitude in degrees.
        lat: f64,
        /// Longitude in degrees.
        lon: f64,
    },
}

/// `probe = { ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    /// Address or host to probe instead of the target.
    pub address: Option<Spanned<String>>,
    /// Port override.
    pub port: Option<Spanned<i64>>,
    /// Path override.
    pub path: Option<Spanned<String>>,
    /// Header overrides.
    pub headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

#[cfg(test)]
mod tests {
    //! The reference tables in `profiles/README.md` must list every key the
    //! parser accepts: the parser's own "expected one of" message is the
    //! source of truth.
    use super::*;

    fn fields<T: serde::de::DeserializeOwned>() -> Vec<String> {
        let err = toml::from_str::<T>("zz_not_a_key = 1")
            .err()
            .unwrap()
            .to_string();
        let list = err
            .split("expected one of")
            .nth(1)
            .unwrap_or_else(|| err.split("expected").nth(1).unwrap_or_default());
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
        let start = doc
            .find(heading)
            .unwrap_or_else(|| panic!("no section {heading}"));
        let rest = &doc[start + heading.len()..];
        let end = rest.find("\n## ").unwrap_or(rest.len());
        &rest[..end]
    }

    #[test]
    fn reference_tables_list_every_key() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/README.md"))
                .unwrap();
        let checks: Vec<(&str, Vec<String>, &str)> = vec![
            ("## Profile keys", fields::<RawProfile>(), ""),
            ("## `[monitor]` keys", fields::<RawMonitor>(), ""),
            ("## `[[endpoints]]` keys", fields::<RawEndpoint>(), ""),
            ("## Server configuration", fields::<RawServer>(), ""),
            ("## Server configuration", fields::<RawDns>(), "dns."),
            ("## Server configuration", fields::<RawAdmin>(), "admin."),
            (
                "## Server configuration",
                fields::<RawRateLimit>(),
                "dns.rate_limit.",
            ),
            (
                "## Server configuration",
                fields::<RawCookies>(),
                "dns.cookies.",
            ),
            ("## Server configuration", fields::<RawXdp>(), "dns.xdp."),
            ("## Server configuration", fields::<RawGeoip>(), "geoip."),
            (
                "## Server configuration",
                fields::<RawProfilesDir>(),
                "profiles.",
            ),
            ("### `[[zones]]`", fields::<RawZone>(), ""),
            (
                "## Server configuration",
                fields::<RawCluster>(),
                "cluster.",
            ),
            ("## Server configuration", fields::<RawProber>(), "prober."),
            ("## Server configuration", fields::<RawNotify>(), "notify."),
            ("## Server configuration", fields::<RawRum>(), "rum."),
            (
                "## Server configuration",
                fields::<RawRumKey>(),
                "rum.keys.",
            ),
            (
                "## Server configuration",
                fields::<RawLatency>(),
                "latency.",
            ),
        ];
        for (heading, keys, prefix) in checks {
            assert!(!keys.is_empty(), "{heading}: no keys read");
            let text = section(&doc, heading);
            for k in keys {
                let row = format!("| `{prefix}{k}` |");
                // Top-level tables are documented by their keys (`dns.listen`).
                let mention = format!("`{prefix}{k}");
                assert!(
                    text.contains(&row) || (prefix.is_empty() && text.contains(&mention)),
                    "profiles/README.md, {heading}: no row for `{prefix}{k}`"
                );
            }
        }
    }
}
