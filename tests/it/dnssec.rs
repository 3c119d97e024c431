//! DNSSEC online signing (issue 12), checked by real validators: Unbound
//! with a trust anchor made by `switchyard dnssec ds` and
//! `module-config: "subnetcache validator iterator"` resolves through the
//! real binary and must set AD on every kind of answer; `delv` (BIND's
//! validating lookup tool) must say "fully validated"; a trust anchor for
//! another key must make every answer SERVFAIL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::backend::{Backend, Mode, wait_until};
use crate::harness::*;
use crate::unbound::Unbound;

const ZONE: &str = "tm.example.test.";
const CHILD: &str = "sub.tm.example.test.";

/// `switchyard dnssec keygen` into `dir/keys/NAME.key`; returns its path.
fn keygen(dir: &Path, zone: &str, name: &str, algorithm: &str) -> PathBuf {
    let path = dir.join("keys").join(format!("{name}.key"));
    let out = Command::new(bin())
        .args([
            "dnssec",
            "keygen",
            "--zone",
            zone,
            "--algorithm",
            algorithm,
            "--out",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" IN DS "), "keygen prints the DS: {text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    path
}

/// `switchyard dnssec ds`: the DS line for the key.
fn ds(zone: &str, key: &Path) -> String {
    let out = Command::new(bin())
        .args(["dnssec", "ds", "--zone", zone, "--key"])
        .arg(key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find(|l| l.contains(" DS "))
        .unwrap_or_else(|| panic!("no DS in {text}"))
        .to_string()
}

/// The RDATA of a DS line (`KEYTAG ALG DIGESTTYPE DIGEST`).
fn ds_rdata(line: &str) -> String {
    let at = line.find(" DS ").unwrap();
    line[at + 4..].trim().to_string()
}

fn probe(port: u16) -> Toml {
    Toml::raw(format!("{{ address = \"127.0.0.1\", port = {port} }}"))
}

/// The parent zone's server: a priority profile probed on two local
/// backends, weighted and geographic profiles, static records, a wildcard,
/// an unsigned delegation and a signed one (`sub`, served by the child).
struct Parent {
    proc: Proc,
    primary: Backend,
    _secondary: Backend,
    ds: String,
}

fn start_parent(child_ds: &str, child_ns: SocketAddr) -> Parent {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let records = format!(
        r#"  {{ name = "*.wild", type = "TXT", value = "wildcard" }},
  {{ name = "sub", type = "NS", value = "ns.sub" }},
  {{ name = "ns.sub", type = "A", value = "{}" }},
  {{ name = "sub", type = "DS", value = "{child_ds}" }},
"#,
        child_ns.ip()
    );
    // Zones nested inside the signed one: an unsigned one and a signed one,
    // whose DS the parent side must answer.
    let zone = zone_with_records(&records)
        + "dnssec = { key = { file = \"keys/parent.key\" } }\n"
        + &nested_zone("kid", None)
        + &nested_zone("kid2", Some("keys/kid2.key"));
    let todo = ProfileToml::new("todoapi.tm.example.test.", "priority")
        .ttl(1)
        .set_monitor("protocol", "http")
        .set_monitor("path", "/Health/{key}")
        .set_monitor("key", "k")
        .set_monitor("interval", "200ms")
        .set_monitor("timeout", "100ms")
        .set_monitor("tolerated_failures", 0)
        .set_monitor("required_successes", 1)
        .endpoint("primary", "203.0.113.10")
        .set_endpoint("primary", "priority", 1)
        .set_endpoint("primary", "probe", probe(primary.port()))
        .endpoint("secondary", "198.51.100.20")
        .set_endpoint("secondary", "priority", 2)
        .set_endpoint("secondary", "probe", probe(secondary.port()))
        .build();
    let canary = ProfileToml::new("canary.tm.example.test.", "weighted")
        .ttl(1)
        .endpoint("stable", "192.0.2.31")
        .set_endpoint("stable", "weight", 9)
        .endpoint("canary", "192.0.2.32")
        .set_endpoint("canary", "weight", 1)
        .build();
    let geo = std::fs::read_to_string(switchyard::fuzzing::example_dir().join("profiles/geo.toml"))
        .unwrap();
    let geoip = format!(
        "[geoip]\ndatabase = \"{}\"",
        repo().join("geoip/geo-whois-asn-country.mmdb").display()
    );
    // Both families in one multivalue answer (ANY must stay one RRset).
    let mut mix = ProfileToml::new("mix.tm.example.test.", "multivalue").set("max_answers", 6);
    for i in 1..=3 {
        mix = mix
            .endpoint(&format!("v4-{i}"), &format!("192.0.2.{i}"))
            .endpoint(&format!("v6-{i}"), &format!("2001:db8::{i}"));
    }
    // A disabled profile with a name below it: never NXDOMAIN for a name
    // that has names below it.
    let par = ProfileToml::new("par.tm.example.test.", "priority")
        .set("enabled", false)
        .endpoint("a", "192.0.2.9")
        .build();
    let kidpar = ProfileToml::new("kid.par.tm.example.test.", "priority")
        .endpoint("a", "192.0.2.10")
        .build();
    let fx = Fixture::with_zone(
        &geoip,
        &zone,
        &[
            ("todo.toml", &todo),
            ("canary.toml", &canary),
            ("geo.toml", &geo),
            ("mix.toml", &mix.build()),
            ("par.toml", &par),
            ("kidpar.toml", &kidpar),
        ],
    );
    let key = keygen(fx.dir.path(), ZONE, "parent", "ecdsap256sha256");
    keygen(
        fx.dir.path(),
        &format!("kid2.{ZONE}"),
        "kid2",
        "ecdsap256sha256",
    );
    let ds = ds(ZONE, &key);
    // Without --key, `ds` reads the zone's keys from the configuration.
    let out = Command::new(bin())
        .arg("-c")
        .arg(fx.config_path())
        .args(["dnssec", "ds", "--zone", ZONE])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ds, "{out:?}");
    let proc = Proc::start(fx);
    Parent {
        proc,
        primary,
        _secondary: secondary,
        ds,
    }
}

/// A `[[zones]]` block for `NAME.tm.example.test.` (signed with `key`).
fn nested_zone(name: &str, key: Option<&str>) -> String {
    let dnssec = key
        .map(|k| format!("dnssec = {{ key = {{ file = \"{k}\" }} }}\n"))
        .unwrap_or_default();
    format!(
        r#"
[[zones]]
origin = "{name}.{ZONE}"
ns = ["ns1.{ZONE}"]
records = [{{ name = "www", type = "A", value = "192.0.2.70" }}]
{dnssec}"#
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The child zone `sub.tm.example.test.`, signed with Ed25519, on its own
/// server; returns it and its DS.
fn start_child() -> (Proc, String) {
    let zone = format!(
        r#"
[[zones]]
origin = "{CHILD}"
ns = ["ns.{CHILD}"]
records = [
  {{ name = "ns", type = "A", value = "127.0.0.1" }},
  {{ name = "www", type = "A", value = "192.0.2.77" }},
]
dnssec = {{ key = {{ file = "keys/child.key" }} }}
"#
    );
    let fx = Fixture::with_zone("", &zone, &[]);
    let key = keygen(fx.dir.path(), CHILD, "child", "ed25519");
    let ds = ds_rdata(&ds(CHILD, &key));
    (Proc::start(fx), ds)
}

/// Unbound validating with `anchor`, the parent and child zones stubbed
/// to their servers.
fn validator(anchor: &str, parent: SocketAddr, child: SocketAddr) -> Unbound {
    Unbound::start(
        &format!(
            r#"  val-log-level: 2
  module-config: "subnetcache validator iterator"
  send-client-subnet: 127.0.0.1
  client-subnet-always-forward: yes
  max-client-subnet-ipv4: 24
  trust-anchor: "{anchor}"
"#
        ),
        &[(ZONE, parent), (CHILD, child)],
    )
}

impl Unbound {
    /// `dig +dnssec` through Unbound: (status, AD set, answer lines).
    fn ask(&self, name: &str, t: &str, extra: &[&str]) -> (String, bool, Vec<String>) {
        let out = Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string(), name, t, "+dnssec"])
            .args(["+time=5", "+tries=1"])
            .args(extra)
            .output()
            .expect("cannot run dig");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let status = text
            .lines()
            .find_map(|l| l.split("status: ").nth(1))
            .map(|s| s.split(',').next().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no status in:\n{text}"));
        let ad = text
            .lines()
            .find(|l| l.starts_with(";; flags:"))
            .is_some_and(|l| l.split(';').nth(2).unwrap_or("").contains(" ad"));
        let answers = text
            .lines()
            .skip_while(|l| !l.starts_with(";; ANSWER SECTION"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        (status, ad, answers)
    }

    fn secure(&self, name: &str, t: &str, extra: &[&str]) -> (String, Vec<String>) {
        let (status, ad, answers) = self.ask(name, t, extra);
        assert!(ad, "{name} {t}: no AD ({status}, {answers:?})");
        (status, answers)
    }
}

/// Whether an answer line contains `needle` (spaces ignored: dig splits
/// long hex and base64 fields).
fn has(answers: &[String], needle: &str) -> bool {
    let needle: String = needle.split_whitespace().collect();
    answers
        .iter()
        .any(|a| a.split_whitespace().collect::<String>().contains(&needle))
}

#[test]
fn a_validating_resolver_sets_ad_on_every_kind_of_answer() {
    let (child, child_ds) = start_child();
    let parent = start_parent(&child_ds, child.v4());
    let u = validator(&parent.ds, parent.proc.v4(), child.v4());
    let todo = "todoapi.tm.example.test.";
    // Wait for the first probes: the primary answers.
    wait_until(Duration::from_secs(10), || {
        has(&u.ask(todo, "A", &[]).2, "203.0.113.10")
    })
    .expect("primary never answered");

    // A priority answer, before and after a failover.
    let (status, a) = u.secure(todo, "A", &[]);
    assert_eq!(status, "NOERROR");
    assert!(has(&a, "203.0.113.10") && has(&a, "RRSIG"), "{a:?}");
    parent.primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(10), || {
        has(&u.ask(todo, "A", &[]).2, "198.51.100.20")
    })
    .expect("no failover");
    let (_, a) = u.secure(todo, "A", &[]);
    assert!(has(&a, "198.51.100.20"), "{a:?}");
    // Weighted and geographic, with ECS.
    let (_, a) = u.secure("canary.tm.example.test.", "A", &["+subnet=198.51.100.0/24"]);
    assert!(has(&a, "192.0.2.31") || has(&a, "192.0.2.32"), "{a:?}");
    let (_, a) = u.secure("geo.tm.example.test.", "A", &["+subnet=81.2.69.0/24"]);
    assert!(has(&a, "192.0.2.41"), "GB -> europe: {a:?}");
    let (_, a) = u.secure("geo.tm.example.test.", "A", &["+subnet=8.8.8.0/24"]);
    assert!(has(&a, "192.0.2.43"), "US -> americas: {a:?}");
    // Static records, the apex, the keys.
    let (_, a) = u.secure(ZONE, "TXT", &[]);
    assert!(has(&a, "v=spf1"), "{a:?}");
    let (_, a) = u.secure("mail.tm.example.test.", "A", &[]);
    assert!(has(&a, "192.0.2.25"), "{a:?}");
    u.secure(ZONE, "SOA", &[]);
    u.secure(ZONE, "NS", &[]);
    let (_, a) = u.secure(ZONE, "DNSKEY", &[]);
    assert!(has(&a, "DNSKEY 257 3 13"), "{a:?}");
    let (_, a) = u.secure(ZONE, "CDS", &[]);
    assert!(has(&a, &ds_rdata(&parent.ds)), "CDS is the DS: {a:?}");
    u.secure(ZONE, "CDNSKEY", &[]);
    // A CNAME chain into a profile.
    let (_, a) = u.secure("www.tm.example.test.", "A", &[]);
    assert!(has(&a, "CNAME") && has(&a, "198.51.100.20"), "{a:?}");
    // NXDOMAIN (compact: NOERROR with an NSEC naming NXNAME) and NODATA.
    let (status, _) = u.secure("nope.tm.example.test.", "A", &[]);
    assert!(status == "NXDOMAIN" || status == "NOERROR", "{status}");
    let (status, a) = u.secure("ns1.tm.example.test.", "AAAA", &[]);
    assert_eq!((status.as_str(), a.len()), ("NOERROR", 0));
    let (status, a) = u.secure("ent.tm.example.test.", "A", &[]);
    assert_eq!(
        (status.as_str(), a.len()),
        ("NOERROR", 0),
        "empty non-terminal"
    );
    // A wildcard answer.
    let (_, a) = u.secure("anything.wild.tm.example.test.", "TXT", &[]);
    assert!(has(&a, "wildcard"), "{a:?}");
    // The signed delegation: the child's answer validates through the DS
    // the parent serves at the cut.
    let (_, a) = u.secure("www.sub.tm.example.test.", "A", &[]);
    assert!(has(&a, "192.0.2.77"), "{a:?}");
    let (_, a) = u.secure(CHILD, "DS", &[]);
    assert!(has(&a, &child_ds), "{a:?}");
    // The unsigned delegation: the proof that it has no DS validates.
    let (status, a) = u.secure("delegated.tm.example.test.", "DS", &[]);
    assert_eq!((status.as_str(), a.len()), ("NOERROR", 0));
}

#[test]
fn a_trust_anchor_for_another_key_fails_validation() {
    let (child, child_ds) = start_child();
    let parent = start_parent(&child_ds, child.v4());
    let other_dir = tempfile::tempdir().unwrap();
    let other = keygen(other_dir.path(), ZONE, "other", "ecdsap256sha256");
    let u = validator(&ds(ZONE, &other), parent.proc.v4(), child.v4());
    for (name, t) in [
        ("mail.tm.example.test.", "A"),
        ("canary.tm.example.test.", "A"),
        ("nope.tm.example.test.", "A"),
    ] {
        let (status, ad, _) = u.ask(name, t, &[]);
        assert_eq!((status.as_str(), ad), ("SERVFAIL", false), "{name} {t}");
    }
    // With CD (checking disabled) the data is there: it is the key.
    let (status, _, a) = u.ask("mail.tm.example.test.", "A", &["+cd"]);
    assert_eq!(status, "NOERROR");
    assert!(has(&a, "192.0.2.25"), "{a:?}");
}

/// delv validates on its own (through Unbound as its resolver, checking
/// disabled there), from the same trust anchor.
#[test]
fn delv_fully_validates_the_answers() {
    let (child, child_ds) = start_child();
    let parent = start_parent(&child_ds, child.v4());
    let u = validator(&parent.ds, parent.proc.v4(), child.v4());
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("anchors.conf");
    let rdata = ds_rdata(&parent.ds);
    let mut f = rdata.split_whitespace();
    let (tag, alg, dt) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
    let digest: String = f.collect();
    std::fs::write(
        &anchors,
        format!("trust-anchors {{ \"{ZONE}\" static-ds {tag} {alg} {dt} \"{digest}\"; }};\n"),
    )
    .unwrap();
    for (name, t, want) in [
        ("mail.tm.example.test.", "A", "fully validated"),
        ("todoapi.tm.example.test.", "A", "fully validated"),
        ("anything.wild.tm.example.test.", "TXT", "fully validated"),
        (
            "nope.tm.example.test.",
            "A",
            "negative response, fully validated",
        ),
        (
            "ns1.tm.example.test.",
            "AAAA",
            "negative response, fully validated",
        ),
    ] {
        let out = Command::new("delv")
            .arg(format!("@{}", u.addr.ip()))
            .args(["-p", &u.addr.port().to_string(), "-a"])
            .arg(&anchors)
            .arg(format!("+root={ZONE}"))
            .args([name, t])
            .output()
            .expect("cannot run delv; run the tests with scripts/test.sh");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(want), "delv {name} {t}:\n{text}");
    }
}

/// The test zone signed, served in-process, with a TXT record that fits
/// in 512 bytes unsigned but not with its RRSIG, and a multivalue profile.
fn signed_server() -> TestServer {
    let big = format!(
        "  {{ name = \"big\", type = \"TXT\", value = \"{}\" }},\n",
        "x".repeat(420)
    );
    let zone = zone_with_records(&big) + "dnssec = { key = { file = \"keys/tm.key\" } }\n";
    let mut pool = ProfileToml::new("pool.tm.example.test.", "multivalue").set("max_answers", 8);
    for i in 0..8 {
        pool = pool.endpoint(&format!("v6-{i}"), &format!("2001:db8::{}", i + 1));
    }
    let fx = Fixture::with_zone("", &zone, &[("pool.toml", &pool.build())]);
    keygen(fx.dir.path(), ZONE, "tm", "ecdsap256sha256");
    fx.start()
}

/// A query with DO, and CO (RFC 9824 compact answers OK) when asked.
fn signed_query(name: &str, t: hickory_proto::rr::RecordType, size: u16, co: bool) -> Vec<u8> {
    let mut q = build(
        name,
        t,
        Opts {
            edns: Some(size),
            dnssec_ok: true,
        },
    )
    .to_vec()
    .unwrap();
    // The OPT record is last, without options: its flags' high byte.
    let n = q.len();
    assert_eq!(&q[n - 10..n - 8], &[0, 41]);
    if co {
        q[n - 4] |= 0x40;
    }
    q
}

fn types(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.record_type().to_string())
        .collect()
}

#[test]
fn compact_denial_nxname_and_unsigned_clients() {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;
    let s = signed_server();
    let ask =
        |pkt: &[u8]| Message::from_vec(&udp_raw(s.v4(), pkt, TIMEOUT).expect("no reply")).unwrap();
    // NXDOMAIN, compact: NOERROR with SOA, NSEC (NXNAME) and their RRSIGs.
    let m = ask(&signed_query(
        "nope.tm.example.test.",
        RecordType::A,
        1232,
        false,
    ));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(types(&m.authorities), ["SOA", "NSEC", "RRSIG", "RRSIG"]);
    let nsec = m.authorities[1].to_string();
    assert!(nsec.contains("\\000.nope.tm.example.test."), "{nsec}");
    // hickory-proto 0.26 prints NXNAME (128) as "Unknown".
    assert!(
        nsec.ends_with("RRSIG NSEC Unknown") || nsec.contains("NXNAME"),
        "{nsec}"
    );
    // The same with CO set: the NXDOMAIN rcode is restored.
    let m = ask(&signed_query(
        "nope.tm.example.test.",
        RecordType::A,
        1232,
        true,
    ));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(types(&m.authorities), ["SOA", "NSEC", "RRSIG", "RRSIG"]);
    // Without DO: today's answer, unsigned.
    let m = udp(s.v4(), "nope.tm.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(types(&m.authorities), ["SOA"]);
    let m = udp(s.v4(), "mail.tm.example.test.", RecordType::A);
    assert_eq!(types(&m.answers), ["A"]);
    // An explicit NXNAME query is a format error (RFC 9824 §3.5).
    let m = ask(&signed_query(
        "mail.tm.example.test.",
        RecordType::Unknown(128),
        1232,
        false,
    ));
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // The signatures are counted: the second NXDOMAIN's SOA came from the
    // cache, the first one's was made.
    let (_, metrics) = http(s.admin, "GET", "/metrics", None);
    let count = |source: &str| -> u64 {
        let prefix = format!("switchyard_dnssec_signatures_total{{source=\"{source}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
    };
    assert!(count("cached") >= 1 && count("signed") >= 2, "{metrics}");
    assert!(metrics.contains("switchyard_dnssec_signature_cache_capacity 65536"));
    // A referral in a signed zone: NS unsigned, the NSEC proving no DS signed.
    let m = ask(&signed_query(
        "x.delegated.tm.example.test.",
        RecordType::A,
        1232,
        false,
    ));
    assert!(!m.metadata.authoritative);
    assert_eq!(types(&m.authorities), ["NS", "NSEC", "RRSIG"]);
    assert!(
        m.authorities[2].to_string().contains("NSEC"),
        "{}",
        m.authorities[2]
    );
}

#[test]
fn large_signed_answers_truncate_over_udp_and_come_whole_over_tcp() {
    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;
    let s = signed_server();
    let q = signed_query("big.tm.example.test.", RecordType::TXT, 512, false);
    let m = Message::from_vec(&udp_raw(s.v4(), &q, TIMEOUT).unwrap()).unwrap();
    assert!(
        m.metadata.truncation,
        "the TXT and its RRSIG exceed 512 bytes"
    );
    assert!(m.answers.is_empty());
    let m = Message::from_vec(&tcp_raw(s.v4(), &[q]).remove(0)).unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!(types(&m.answers), ["TXT", "RRSIG"]);
    // Unsigned, the same answer fits.
    let m = udp_opts(
        s.v4(),
        "big.tm.example.test.",
        RecordType::TXT,
        Opts {
            edns: Some(512),
            dnssec_ok: false,
        },
    );
    assert!(!m.metadata.truncation);
    assert_eq!(types(&m.answers), ["TXT"]);
    // Within the default 1232 bytes, the signed multivalue answer is whole.
    let q = signed_query("pool.tm.example.test.", RecordType::AAAA, 1232, false);
    let m = Message::from_vec(&udp_raw(s.v4(), &q, TIMEOUT).unwrap()).unwrap();
    assert_eq!(m.answers.len(), 9, "{:?}", types(&m.answers));
    assert_eq!(types(&m.answers).last().unwrap(), "RRSIG");
}

/// What an adversarial review found (issue 12): each of these was bogus
/// (SERVFAIL through a validator) or wrong before its fix.
#[test]
fn a_validating_resolver_accepts_the_corner_cases() {
    let (child, child_ds) = start_child();
    let parent = start_parent(&child_ds, child.v4());
    let u = validator(&parent.ds, parent.proc.v4(), child.v4());
    // ANY at a profile answering both families: each family's records
    // together, each RRset signed whole.
    for _ in 0..10 {
        let q = signed_query(
            "mix.tm.example.test.",
            hickory_proto::rr::RecordType::ANY,
            1232,
            false,
        );
        let m = hickory_proto::op::Message::from_vec(&tcp_raw(parent.proc.v4(), &[q]).remove(0))
            .unwrap();
        let t = types(&m.answers);
        let data: Vec<&String> = t.iter().filter(|t| *t != "RRSIG").collect();
        let mut runs = data.clone();
        runs.dedup();
        assert_eq!(runs.len(), 2, "two contiguous RRsets: {t:?}");
        assert_eq!(t.iter().filter(|t| *t == "RRSIG").count(), 2, "{t:?}");
        // Interleaved, they were signed as four partial sets (bogus).
    }
    u.secure("mix.tm.example.test.", "A", &[]);
    u.secure("mix.tm.example.test.", "AAAA", &[]);
    // Queries for the NSEC and RRSIG types themselves.
    for (name, t) in [
        ("nope.tm.example.test.", "NSEC"),
        ("ns1.tm.example.test.", "NSEC"),
        ("ns1.tm.example.test.", "RRSIG"),
        ("tm.example.test.", "NSEC"),
    ] {
        let (status, ad, a) = u.ask(name, t, &[]);
        assert!(ad && status == "NOERROR", "{name} {t}: {status} {ad} {a:?}");
    }
    // Zones nested in the signed zone: the parent side answers their DS
    // (the signed child's DS, the unsigned one's proof of none).
    let (_, a) = u.secure("www.kid2.tm.example.test.", "A", &[]);
    assert!(has(&a, "192.0.2.70"), "{a:?}");
    let (status, ad, a) = u.ask("www.kid.tm.example.test.", "A", &[]);
    assert_eq!(status, "NOERROR", "an insecure child: {a:?}");
    assert!(!ad && has(&a, "192.0.2.70"), "{a:?}");
    // A disabled profile with names below it: NODATA, not NXDOMAIN, and
    // the name below still answers.
    let (status, a) = u.secure("par.tm.example.test.", "A", &[]);
    assert_eq!((status.as_str(), a.len()), ("NOERROR", 0));
    let (_, a) = u.secure("kid.par.tm.example.test.", "A", &[]);
    assert!(has(&a, "192.0.2.10"), "{a:?}");
}

/// RFC 9824 §4: a query with CO gets CO back (and the NXDOMAIN rcode).
#[test]
fn compact_answers_ok_is_echoed() {
    use hickory_proto::rr::RecordType;
    let s = signed_server();
    let reply = udp_raw(
        s.v4(),
        &signed_query("nope.tm.example.test.", RecordType::A, 1232, true),
        TIMEOUT,
    )
    .unwrap();
    // The OPT record is last: its flags are the 3rd and 2nd bytes from the
    // end of its fixed part (no options here).
    let n = reply.len();
    assert_eq!(&reply[n - 10..n - 8], &[0, 41], "OPT last");
    assert_eq!(reply[n - 4] & 0xC0, 0xC0, "DO and CO echoed");
    assert_eq!(reply[3] & 0x0F, 3, "NXDOMAIN");
}

/// `delv` (validating on its own, from a trust anchor for `ds`) asks the
/// server at `addr` directly: its output, stdout and stderr.
fn delv_at(addr: SocketAddr, ds: &str, name: &str, t: &str) -> String {
    delv_in(ZONE, addr, ds, name, t)
}

/// [`delv_at`] for the zone `zone` (the trust anchor's, and delv's root).
pub(crate) fn delv_in(zone: &str, addr: SocketAddr, ds: &str, name: &str, t: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("anchors.conf");
    let rdata = ds_rdata(ds);
    let mut f = rdata.split_whitespace();
    let (tag, alg, dt) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
    let digest: String = f.collect();
    std::fs::write(
        &anchors,
        format!("trust-anchors {{ \"{zone}\" static-ds {tag} {alg} {dt} \"{digest}\"; }};\n"),
    )
    .unwrap();
    let out = Command::new("delv")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "-a"])
        .arg(&anchors)
        .arg(format!("+root={zone}"))
        .args([name, t])
        .output()
        .expect("cannot run delv; run the tests with scripts/test.sh");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Issue 20 item 9: a query for type NSEC at a name of a signed zone gets
/// that name's NSEC as the answer, signed (its bitmap: the types there,
/// RRSIG and NSEC), and is never followed through a CNAME (NSEC and RRSIG
/// live beside it). Before, it got a denial whose bitmap lacked NSEC
/// itself (delv: "no valid RRSIG") and, at a CNAME, the CNAME's target.
#[test]
fn queries_for_nsec_and_rrsig_validate() {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;
    let zone = zone_with_records("  { name = \"*.wild\", type = \"TXT\", value = \"w\" },\n")
        + "dnssec = { key = { file = \"keys/tm.key\" } }\n";
    let fx = Fixture::with_zone("", &zone, &[("todoapi.toml", TODOAPI)]);
    let key = keygen(fx.dir.path(), ZONE, "tm", "ecdsap256sha256");
    let ds = ds(ZONE, &key);
    let s = fx.start();
    // (name, the NSEC's bitmap as delv prints it).
    for (name, bitmap) in [
        ("ns1.tm.example.test.", "A RRSIG NSEC"),
        ("www.tm.example.test.", "CNAME RRSIG NSEC"),
        ("todoapi.tm.example.test.", "A RRSIG NSEC"),
        ("tm.example.test.", "NS SOA MX TXT"),
        ("ent.tm.example.test.", "RRSIG NSEC"),
        ("x.wild.tm.example.test.", "TXT RRSIG NSEC"),
    ] {
        let text = delv_at(s.v4(), &ds, name, "NSEC");
        assert!(
            text.contains("; fully validated") && !text.contains("negative response"),
            "delv {name} NSEC:\n{text}"
        );
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l.contains("\tNSEC\t"))
            .unwrap_or_else(|| panic!("no NSEC answer for {name}:\n{text}"));
        assert!(line.contains(bitmap), "{name}: {line}");
        assert!(
            line.contains(&format!("\\000.{name}")),
            "compact: the next name is the owner's successor: {line}"
        );
        assert!(
            !text.contains("CNAME\t"),
            "{name}: a CNAME followed:\n{text}"
        );
    }
    // A name that does not exist: its compact denial's NSEC is the answer
    // (NXNAME in its bitmap says the name does not exist).
    let text = delv_at(s.v4(), &ds, "nope.tm.example.test.", "NSEC");
    assert!(
        text.contains("; fully validated") && text.contains("TYPE128"),
        "delv nope NSEC:\n{text}"
    );
    // RRSIG queries: where the name has no CNAME, a validated denial (the
    // bitmap leaves RRSIG out: a NODATA proof has to); at a CNAME, the
    // CNAME and its RRSIG, not followed. Validators do not validate an
    // answer to an RRSIG query that has records (Unbound passes it on
    // without AD; delv, like BIND's resolver, never completes one, even
    // an answer holding only the RRSIG), so that one is checked for not
    // failing.
    let text = delv_at(s.v4(), &ds, "ns1.tm.example.test.", "RRSIG");
    assert!(
        text.contains("negative response, fully validated"),
        "delv ns1 RRSIG:\n{text}"
    );
    let u = validator(&ds, s.v4(), s.v4());
    for (name, t) in [
        ("www.tm.example.test.", "NSEC"),
        ("ns1.tm.example.test.", "NSEC"),
        ("ns1.tm.example.test.", "RRSIG"),
        ("nope.tm.example.test.", "NSEC"),
    ] {
        let (status, ad, a) = u.ask(name, t, &[]);
        assert!(ad && status == "NOERROR", "{name} {t}: {status} {ad} {a:?}");
    }
    let (status, _, a) = u.ask("www.tm.example.test.", "RRSIG", &[]);
    assert_eq!(status, "NOERROR", "{a:?}");
    assert!(has(&a, "CNAME todoapi.tm.example.test."), "{a:?}");
    let m = Message::from_vec(
        &udp_raw(
            s.v4(),
            &signed_query("www.tm.example.test.", RecordType::RRSIG, 1232, false),
            TIMEOUT,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(types(&m.answers), ["CNAME", "RRSIG"], "{m:?}");
    assert!(m.authorities.is_empty(), "not followed: {m:?}");
    // Without DO, an NSEC query gets what an unsigned zone answers: NODATA
    // (and the CNAME followed), no NSEC.
    let m = udp(s.v4(), "ns1.tm.example.test.", RecordType::NSEC);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        (types(&m.answers), types(&m.authorities)),
        (vec![], vec!["SOA".to_string()])
    );
    let m = udp(s.v4(), "nope.tm.example.test.", RecordType::NSEC);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

/// Issue 20 item 11: new signatures have a budget. Random names with DO
/// each need one (the compact denial's NSEC); past the server's budget an
/// unproven client (UDP without a cookie) gets a truncated answer, a
/// client over TCP gets SERVFAIL past its own rate, and answers whose
/// signatures are cached are never refused.
#[test]
fn new_signatures_have_a_budget_and_each_proven_client_a_rate() {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;
    let zone = zone_with_records("") + "dnssec = { key = { file = \"keys/tm.key\" } }\n";
    let fx = Fixture::with_zone(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nsignatures_per_second = 100\nsignatures_per_client = 10",
        &zone,
        &[],
    );
    keygen(fx.dir.path(), ZONE, "tm", "ecdsap256sha256");
    let s = fx.start();
    let dnssec_ok = Opts {
        edns: Some(1232),
        dnssec_ok: true,
    };
    // Signed (and cached) while the budget is full.
    let m = udp_opts(s.v4(), "mail.tm.example.test.", RecordType::A, dnssec_ok);
    assert_eq!(types(&m.answers), ["A", "RRSIG"]);

    // 300 new names at once over UDP (loopback: exempt from rate limiting,
    // as a flood from many networks is).
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let start = std::time::Instant::now();
    for i in 0..300u16 {
        let mut q = build(
            &format!("flood{i}.tm.example.test."),
            RecordType::A,
            dnssec_ok,
        );
        q.metadata.id = i;
        sock.send_to(&q.to_vec().unwrap(), s.v4()).unwrap();
    }
    let (mut signed, mut truncated) = (0, 0);
    let mut buf = [0u8; 4096];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty() && m.authorities.is_empty());
            truncated += 1;
        } else {
            assert_eq!(types(&m.authorities), ["SOA", "NSEC", "RRSIG", "RRSIG"]);
            signed += 1;
        }
    }
    let took = start.elapsed().as_secs_f64() - 0.5;
    // Unproven clients get half the bucket (50), then the refill (100/s).
    let most = 50 + (100.0 * took).ceil() as usize + 2;
    eprintln!("300 new names over UDP in {took:.2} s: {signed} signed, {truncated} truncated");
    assert!(
        signed <= most && signed >= 25,
        "{signed} signed in {took:.2} s"
    );
    // The rest truncated (a few datagrams may be lost on a busy machine).
    assert!(truncated >= 150, "{truncated} truncated");

    // A cached signature is never refused.
    let m = udp_opts(s.v4(), "mail.tm.example.test.", RecordType::A, dnssec_ok);
    assert_eq!(types(&m.answers), ["A", "RRSIG"], "{m:?}");

    // Over TCP (a proven address): 10 new signatures a second, then
    // SERVFAIL.
    let start = std::time::Instant::now();
    let pkts: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            build(
                &format!("tcp{i}.tm.example.test."),
                RecordType::A,
                dnssec_ok,
            )
            .to_vec()
            .unwrap()
        })
        .collect();
    let replies = tcp_raw(s.v4(), &pkts);
    let seconds = start.elapsed().as_secs() as usize + 1;
    let codes: Vec<ResponseCode> = replies
        .iter()
        .map(|r| Message::from_vec(r).unwrap().metadata.response_code)
        .collect();
    let answered = codes
        .iter()
        .filter(|c| **c == ResponseCode::NoError)
        .count();
    let servfail = codes
        .iter()
        .filter(|c| **c == ResponseCode::ServFail)
        .count();
    eprintln!("60 new names over TCP: {answered} answered, {servfail} SERVFAIL");
    assert_eq!(answered + servfail, 60);
    assert!(
        (10..=10 * (seconds + 1)).contains(&answered),
        "{answered} in {seconds} s"
    );

    let (_, metrics) = http(s.admin, "GET", "/metrics", None);
    for reason in ["budget", "client"] {
        let prefix = format!("switchyard_dnssec_signatures_refused_total{{reason=\"{reason}\"}} ");
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"));
        assert!(n > 0, "{prefix}{n}");
    }
}
