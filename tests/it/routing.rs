//! Routing methods end to end: statuses set as the prober would, answers read
//! over real sockets.

use std::collections::HashMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use switchyard::health::Status;

use crate::harness::*;

const NAME: &str = "todoapi.tm.example.test.";

#[test]
fn priority_fails_over_and_back() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
    s.set_status(NAME, "primary", Status::Degraded);
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
    // The CNAME alias follows too.
    assert_eq!(
        addrs(&udp(s.v6(), "www.tm.example.test.", RecordType::A)),
        ["198.51.100.20"]
    );
    s.set_status(NAME, "primary", Status::Online);
    assert_eq!(addrs(&tcp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
}

#[test]
fn on_all_down_over_the_wire() {
    for (policy, rcode, want) in [
        ("serve-all", ResponseCode::NoError, vec!["203.0.113.10"]),
        ("nodata", ResponseCode::NoError, vec![]),
        ("nxdomain", ResponseCode::NXDomain, vec![]),
        ("servfail", ResponseCode::ServFail, vec![]),
        ("secondary", ResponseCode::NoError, vec!["198.51.100.20"]),
    ] {
        let profile = ProfileToml::todoapi().set("on_all_down", policy).build();
        let s = Fixture::new("", &[("todoapi.toml", &profile)]).start();
        s.set_status(NAME, "primary", Status::Degraded);
        s.set_status(NAME, "secondary", Status::Degraded);
        let m = udp(s.v4(), NAME, RecordType::A);
        assert_eq!(m.metadata.response_code, rcode, "{policy}");
        assert_eq!(addrs(&m), want, "{policy}");
        // One endpoint back: normal routing again.
        s.set_status(NAME, "secondary", Status::Online);
        assert_eq!(
            addrs(&udp(s.v4(), NAME, RecordType::A)),
            ["198.51.100.20"],
            "{policy}"
        );
    }
}

#[test]
fn disabled_profile_is_nxdomain_and_disabled_endpoints_are_skipped() {
    let profile = ProfileToml::todoapi().set("enabled", false).build();
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start();
    let m = udp(s.v4(), NAME, RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);

    let profile = ProfileToml::todoapi()
        .set_endpoint("primary", "enabled", false)
        .build();
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start();
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
}

const WEIGHTED: &str = r#"
name = "canary.tm.example.test."
routing = "weighted"
ttl = 5
[monitor]
protocol = "tcp"
port = 443
[[endpoints]]
name = "stable"
target = "192.0.2.10"
weight = 75
[[endpoints]]
name = "canary"
target = "192.0.2.11"
weight = 25
[[endpoints]]
name = "spare"
target = "192.0.2.12"
weight = 1000
enabled = false
"#;

#[test]
fn weighted_follows_weights_per_query() {
    let s = Fixture::new("", &[("canary.toml", WEIGHTED)]).start();
    let n = 2000;
    let mut counts: HashMap<String, u32> = HashMap::new();
    for i in 0..n {
        let addr = if i % 2 == 0 { s.v4() } else { s.v6() };
        let m = udp(addr, "canary.tm.example.test.", RecordType::A);
        let got = addrs(&m);
        assert_eq!(got.len(), 1);
        *counts.entry(got[0].clone()).or_default() += 1;
    }
    let stable = counts.get("192.0.2.10").copied().unwrap_or(0) as f64 / n as f64;
    // Binomial sd at n=2000 is ~1 point; 5 points is 5 sd.
    assert!((stable - 0.75).abs() < 0.05, "{counts:?}");
    assert!(
        !counts.contains_key("192.0.2.12"),
        "disabled endpoint answered"
    );

    // A Degraded endpoint gets nothing; the rest share its traffic.
    s.set_status("canary.tm.example.test.", "stable", Status::Degraded);
    for _ in 0..50 {
        assert_eq!(
            addrs(&udp(s.v4(), "canary.tm.example.test.", RecordType::A)),
            ["192.0.2.11"]
        );
    }
}

const MULTI: &str = r#"
name = "pool.tm.example.test."
routing = "multivalue"
ttl = 20
max_answers = 3
[monitor]
protocol = "tcp"
port = 80
[[endpoints]]
name = "a"
target = "192.0.2.21"
[[endpoints]]
name = "b"
target = "192.0.2.22"
[[endpoints]]
name = "c"
target = "192.0.2.23"
[[endpoints]]
name = "d"
target = "192.0.2.24"
[[endpoints]]
name = "e"
target = "192.0.2.25"
[[endpoints]]
name = "v6a"
target = "2001:db8::21"
[[endpoints]]
name = "v6b"
target = "2001:db8::22"
"#;

#[test]
fn multivalue_random_subsets_per_family() {
    let s = Fixture::new("", &[("pool.toml", MULTI)]).start();
    let mut firsts: HashMap<String, u32> = HashMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let m = udp(s.v4(), "pool.tm.example.test.", RecordType::A);
        let got = addrs(&m);
        assert_eq!(got.len(), 3, "max_answers");
        let mut uniq = got.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 3, "distinct: {got:?}");
        assert!(got.iter().all(|a| a.starts_with("192.0.2.")));
        assert!(m.answers.iter().all(|r| r.ttl == 20));
        *firsts.entry(got[0].clone()).or_default() += 1;
        seen.extend(got);
    }
    assert_eq!(seen.len(), 5, "every endpoint appears");
    assert_eq!(firsts.len(), 5, "order is random: {firsts:?}");

    let m = udp(s.v4(), "pool.tm.example.test.", RecordType::AAAA);
    let mut got = addrs(&m);
    got.sort();
    assert_eq!(got, ["2001:db8::21", "2001:db8::22"]);

    // ANY mixes families.
    let m = tcp(s.v4(), "pool.tm.example.test.", RecordType::ANY);
    assert_eq!(addrs(&m).len(), 3);

    // Degraded endpoints are left out.
    for n in ["a", "b", "c"] {
        s.set_status("pool.tm.example.test.", n, Status::Degraded);
    }
    for _ in 0..20 {
        let mut got = addrs(&udp(s.v4(), "pool.tm.example.test.", RecordType::A));
        got.sort();
        assert_eq!(got, ["192.0.2.24", "192.0.2.25"]);
    }
}

#[test]
fn host_name_targets_are_cnames() {
    let profile = r#"
name = "static.tm.example.test."
routing = "priority"
ttl = 60
[[endpoints]]
name = "cdn"
target = "static-a.cdn.example.net"
[[endpoints]]
name = "local"
target = "ns1.tm.example.test."
"#;
    let s = Fixture::new("", &[("static.toml", profile)]).start();
    for t in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::TXT,
        RecordType::ANY,
    ] {
        let m = udp(s.v4(), "static.tm.example.test.", t);
        assert_eq!(answers(&m), ["CNAME static-a.cdn.example.net."], "{t}");
        assert_eq!(m.answers[0].ttl, 60);
    }
}
