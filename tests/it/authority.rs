//! The rest of an authoritative server (issue 12): a profile at the zone
//! apex, wildcards as RFC 4592 answers them (its §2.2.1 example zone), and
//! delegations with referrals, over UDP and TCP.

use std::net::SocketAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::harness::*;
use switchyard::health::Status;

/// RFC 4592 §2.2.1's example zone as `example.test.`, with an apex profile
/// and a wildcard profile next to it.
pub const ZONE: &str = r#"
[[zones]]
origin = "example.test."
ttl = 3600
ns = ["ns.example.test."]
soa = { minimum = 60 }
records = [
  { name = "ns", type = "A", value = "192.0.2.53" },
  { name = "@", type = "MX", value = "10 host1" },
  { name = "*", type = "TXT", value = "this is a wildcard" },
  { name = "*", type = "MX", value = "10 host1" },
  { name = "sub.*", type = "TXT", value = "this is not a wildcard" },
  { name = "host1", type = "A", value = "192.0.2.1" },
  { name = "_ssh._tcp.host1", type = "SRV", value = "0 0 22 host1" },
  { name = "_ssh._tcp.host2", type = "SRV", value = "0 0 22 host2" },
  { name = "subdel", type = "NS", value = "ns.example.com." },
  { name = "subdel", type = "NS", value = "ns.subdel" },
  { name = "ns.subdel", type = "A", value = "192.0.2.54" },
  { name = "ns.subdel", type = "AAAA", value = "2001:db8::54" },
  { name = "signed", type = "NS", value = "ns.signed" },
  { name = "ns.signed", type = "A", value = "192.0.2.55" },
  { name = "signed", type = "DS", value = "12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF" },
  { name = "alias", type = "CNAME", value = "acme.tenants" },
  { name = "into-subdel", type = "CNAME", value = "www.subdel" },
]
"#;

/// The apex profile: priority, primary then secondary, monitored.
pub fn apex_profile() -> String {
    ProfileToml::new("example.test.", "priority")
        .ttl(30)
        .set_monitor("protocol", "tcp")
        .set_monitor("port", 9)
        .set_monitor("interval", "10s")
        .set_monitor("timeout", "5s")
        .endpoint("primary", "203.0.113.10")
        .set_endpoint("primary", "priority", 1)
        .endpoint("secondary", "198.51.100.20")
        .set_endpoint("secondary", "priority", 2)
        .build()
}

/// Every customer name below `tenants` is answered by one weighted profile.
pub fn tenants_profile() -> String {
    ProfileToml::new("*.tenants.example.test.", "weighted")
        .ttl(30)
        .endpoint("blue", "192.0.2.80")
        .set_endpoint("blue", "weight", 1)
        .build()
}

pub fn start() -> TestServer {
    Fixture::with_zone(
        "",
        ZONE,
        &[
            ("apex.toml", &apex_profile()),
            ("tenants.toml", &tenants_profile()),
        ],
    )
    .start()
}

/// One query over both transports; the two replies must agree.
fn both(addr: SocketAddr, name: &str, t: RecordType) -> Message {
    let u = udp(addr, name, t);
    let t_ = tcp(addr, name, t);
    assert_eq!(
        (
            u.metadata.response_code,
            answers(&u),
            u.metadata.authoritative
        ),
        (
            t_.metadata.response_code,
            answers(&t_),
            t_.metadata.authoritative
        ),
        "UDP and TCP differ for {name} {t}"
    );
    assert_eq!(
        authority(&u),
        authority(&t_),
        "UDP and TCP authority differ for {name} {t}"
    );
    u
}

fn authority(m: &Message) -> Vec<String> {
    m.authorities
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

fn additional(m: &Message) -> Vec<String> {
    m.additionals
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

fn owners(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.name.to_string()).collect()
}

fn assert_nodata(m: &Message, what: &str) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{what}");
    assert!(m.answers.is_empty(), "{what}: {:?}", answers(m));
    assert!(m.metadata.authoritative, "{what}");
    assert_eq!(authority(m).len(), 1, "{what}: the SOA");
    assert!(authority(m)[0].starts_with("example.test. SOA"), "{what}");
}

fn assert_nxdomain(m: &Message, what: &str) {
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{what}");
    assert!(m.answers.is_empty(), "{what}");
    assert!(authority(m)[0].starts_with("example.test. SOA"), "{what}");
}

#[test]
fn a_profile_at_the_apex_answers_addresses_next_to_soa_ns_and_records() {
    let s = start();
    let a = s.v4();
    let m = both(a, "example.test.", RecordType::A);
    assert_eq!(addrs(&m), ["203.0.113.10"]);
    assert_eq!(owners(&m), ["example.test."]);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers[0].ttl, 30, "the profile's TTL");
    // The chosen endpoint has no IPv6 address: NODATA, with the SOA.
    assert_nodata(&both(a, "example.test.", RecordType::AAAA), "apex AAAA");
    // The apex records are untouched.
    let m = both(a, "example.test.", RecordType::SOA);
    assert_eq!(m.answers[0].record_type(), RecordType::SOA);
    let m = both(a, "example.test.", RecordType::NS);
    assert_eq!(answers(&m), ["NS ns.example.test."]);
    assert_eq!(additional(&m), ["ns.example.test. A 192.0.2.53"]);
    let m = both(a, "example.test.", RecordType::MX);
    assert_eq!(answers(&m), ["MX 10 host1.example.test."]);
    assert_nodata(&both(a, "example.test.", RecordType::TXT), "apex TXT");
    // Failover at the apex, and explain agrees with it.
    s.set_status("example.test.", "primary", Status::Degraded);
    assert_eq!(
        addrs(&both(a, "example.test.", RecordType::A)),
        ["198.51.100.20"]
    );
    let (code, doc) = crate::harness::json(
        s.admin,
        "GET",
        "/api/v1/explain?name=example.test&type=A",
        None,
    );
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["answers"][0], "example.test. 30 A 198.51.100.20");
    let steps = doc["steps"].to_string();
    assert!(
        steps.contains("answered by profile example.test."),
        "{steps}"
    );
    assert!(steps.contains("chosen: secondary"), "{steps}");
    s.set_status("example.test.", "primary", Status::Online);
    assert_eq!(
        addrs(&both(a, "example.test.", RecordType::A)),
        ["203.0.113.10"]
    );
}

#[test]
fn wildcards_answer_as_rfc_4592_section_2_2_1_says() {
    let s = start();
    let a = s.v4();
    // host3.example. MX: synthesized from *.example, owned by the query name.
    let m = both(a, "host3.example.test.", RecordType::MX);
    assert_eq!(answers(&m), ["MX 10 host1.example.test."]);
    assert_eq!(owners(&m), ["host3.example.test."]);
    assert_eq!(additional(&m), ["host1.example.test. A 192.0.2.1"]);
    // host3.example. A: the wildcard exists without A: NODATA.
    assert_nodata(&both(a, "host3.example.test.", RecordType::A), "host3 A");
    // foo.bar.example. TXT: the closest encloser is the apex.
    let m = both(a, "foo.bar.example.test.", RecordType::TXT);
    assert_eq!(answers(&m), ["TXT this is a wildcard"]);
    assert_eq!(owners(&m), ["foo.bar.example.test."]);
    // host1.example. MX: the name exists, the wildcard does not apply.
    assert_nodata(&both(a, "host1.example.test.", RecordType::MX), "host1 MX");
    // sub.*.example. MX: exists (a `*` that is not first is a label).
    assert_nodata(&both(a, "sub.*.example.test.", RecordType::MX), "sub.* MX");
    let m = both(a, "sub.*.example.test.", RecordType::TXT);
    assert_eq!(answers(&m), ["TXT this is not a wildcard"]);
    // _telnet._tcp.host1.example. SRV: the closest encloser _tcp.host1 (an
    // empty non-terminal) has no wildcard.
    assert_nxdomain(
        &both(a, "_telnet._tcp.host1.example.test.", RecordType::SRV),
        "_telnet",
    );
    // _tcp.host1 itself exists, empty.
    assert_nodata(
        &both(a, "_tcp.host1.example.test.", RecordType::SRV),
        "_tcp.host1",
    );
    // ghost.*.example. MX: the closest encloser is *.example, and
    // *.*.example does not exist.
    assert_nxdomain(&both(a, "ghost.*.example.test.", RecordType::MX), "ghost.*");
    // x.host1.example.: host1 exists and has no wildcard child.
    assert_nxdomain(&both(a, "x.host1.example.test.", RecordType::A), "x.host1");
    // The wildcard itself is an ordinary name.
    let m = both(a, "*.example.test.", RecordType::TXT);
    assert_eq!(answers(&m), ["TXT this is a wildcard"]);
    // A query written in another case is answered for its own spelling.
    let m = udp(a, "HoSt9.Example.Test.", RecordType::TXT);
    assert_eq!(answers(&m), ["TXT this is a wildcard"]);
}

#[test]
fn a_wildcard_profile_answers_every_name_below_it() {
    let s = start();
    let a = s.v4();
    for name in ["acme.tenants.example.test.", "a.b.tenants.example.test."] {
        let m = both(a, name, RecordType::A);
        assert_eq!(addrs(&m), ["192.0.2.80"], "{name}");
        assert_eq!(owners(&m), [name]);
    }
    // The parent is an empty non-terminal: NODATA, not the wildcard.
    assert_nodata(&both(a, "tenants.example.test.", RecordType::A), "tenants");
    assert_nodata(
        &both(a, "acme.tenants.example.test.", RecordType::AAAA),
        "AAAA",
    );
    // A CNAME into the wildcard follows it.
    let m = both(a, "alias.example.test.", RecordType::A);
    assert_eq!(
        answers(&m),
        ["CNAME acme.tenants.example.test.", "A 192.0.2.80"]
    );
    // Explain names the wildcard, and answers as DNS does.
    let (code, doc) = crate::harness::json(
        s.admin,
        "GET",
        "/api/v1/explain?name=zz.tenants.example.test&type=A",
        None,
    );
    assert_eq!(code, 200, "{doc}");
    assert_eq!(
        doc["answers"][0],
        "zz.tenants.example.test. 30 A 192.0.2.80"
    );
    assert!(
        doc["steps"][0]
            .as_str()
            .unwrap()
            .contains("the wildcard *.tenants.example.test. answers it"),
        "{doc}"
    );
}

#[test]
fn delegations_get_referrals_with_glue_and_ds() {
    let s = start();
    let a = s.v4();
    for name in [
        "subdel.example.test.",
        "host.subdel.example.test.",
        "a.b.subdel.example.test.",
        // Glue is the child's data, never answered as ours.
        "ns.subdel.example.test.",
    ] {
        let m = both(a, name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(
            !m.metadata.authoritative,
            "{name}: a referral is not authoritative"
        );
        assert!(m.answers.is_empty(), "{name}");
        let mut ns = authority(&m);
        ns.sort();
        assert_eq!(
            ns,
            [
                "subdel.example.test. NS ns.example.com.",
                "subdel.example.test. NS ns.subdel.example.test."
            ],
            "{name}"
        );
        assert_eq!(
            additional(&m),
            [
                "ns.subdel.example.test. A 192.0.2.54",
                "ns.subdel.example.test. AAAA 2001:db8::54"
            ],
            "{name}: in-bailiwick glue"
        );
    }
    // NS at the cut is a referral too.
    assert!(
        !both(a, "subdel.example.test.", RecordType::NS)
            .metadata
            .authoritative
    );
    // DS belongs to the parent side: answered authoritatively...
    let m = both(a, "signed.example.test.", RecordType::DS);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::DS);
    // ...or NODATA when the child is unsigned.
    assert_nodata(&both(a, "subdel.example.test.", RecordType::DS), "no DS");
    // A referral carries the DS when there is one.
    let m = both(a, "www.signed.example.test.", RecordType::A);
    let auth = authority(&m);
    assert!(
        auth.iter().any(|r| r.contains(" DS 12345 13 2 ")),
        "{auth:?}"
    );
    assert_eq!(additional(&m), ["ns.signed.example.test. A 192.0.2.55"]);
    // A CNAME into a delegation ends there: the child answers the rest.
    let m = both(a, "into-subdel.example.test.", RecordType::A);
    assert_eq!(answers(&m), ["CNAME www.subdel.example.test."]);
    assert!(m.metadata.authoritative);
}

/// The SOA serial `dig` shows at `addr` for `tm.example.test.`.
fn served_serial(addr: SocketAddr) -> u32 {
    let m = udp(addr, "tm.example.test.", RecordType::SOA);
    match m.answers.first().map(|r| &r.data) {
        Some(hickory_proto::rr::RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    }
}

/// RFC 1982: `b` follows `a`.
fn follows(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

/// Waits until the wall clock is past the second it reads now: a server
/// started after this loads in a later second than one started before.
fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let t = now();
    crate::backend::wait_until(std::time::Duration::from_secs(3), || now() > t)
        .expect("the clock did not move");
}

/// Issue 20 item 21: nodes with the same zone content serve the same SOA
/// serial whenever they loaded it (Zonemaster MULTIPLE_SOA_SERIALS; before,
/// the serial was the load time), a restart keeps it, and a change of
/// content raises it, on each node alike.
#[test]
fn soa_serials_follow_the_content_not_the_load_time() {
    let zone = |extra: &str| {
        format!(
            "[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns1.tm.example.test.\"]\nrecords = [\n  {{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" }},\n{extra}]\n"
        )
    };
    let node = || {
        Fixture::with_zone(
            "state_file = \"switchyard.state\"",
            &zone(""),
            &[("todoapi.toml", TODOAPI)],
        )
    };
    let a = Proc::start(node());
    let first = served_serial(a.v4());
    next_second();
    let b = Proc::start(node());
    assert_eq!(served_serial(b.v4()), first, "two nodes, one content");

    // A restart without change keeps it.
    next_second();
    let a = Proc::start(a.kill());
    assert_eq!(served_serial(a.v4()), first, "restarted");

    // A change of content raises it, on each node alike, whenever each
    // reloads it (the file watch applies the edit).
    let changed = config_toml_with_zone(
        "state_file = \"switchyard.state\"",
        &zone("  { name = \"new\", type = \"TXT\", value = \"x\" },\n"),
    );
    let edit = |p: &Proc, text: &str| {
        std::fs::write(p.dir().join("switchyard.toml"), text).unwrap();
        let before = served_serial(p.v4());
        crate::backend::wait_until(std::time::Duration::from_secs(10), || {
            served_serial(p.v4()) != before
        })
        .unwrap_or_else(|| panic!("the edit was not applied:\n{}", p.log()));
        served_serial(p.v4())
    };
    let second = edit(&a, &changed);
    assert!(follows(first, second), "{first} -> {second}");
    next_second();
    assert_eq!(
        edit(&b, &changed),
        second,
        "the same change on another node"
    );

    // A reload that changes nothing keeps it; so does a restart.
    let reloads = |p: &Proc| p.log().matches("configuration reloaded").count();
    let n = reloads(&b);
    b.signal("HUP");
    crate::backend::wait_until(std::time::Duration::from_secs(10), || reloads(&b) > n)
        .expect("no reload");
    assert_eq!(served_serial(b.v4()), second);
    let b = Proc::start(b.kill());
    assert_eq!(served_serial(b.v4()), second, "restarted after the change");

    // Back to the first content: still a new serial, and a larger one.
    let third = edit(
        &b,
        &config_toml_with_zone("state_file = \"switchyard.state\"", &zone("")),
    );
    assert!(follows(second, third), "{second} -> {third}");

    // An explicit serial is served as written.
    let fixed = Proc::start(Fixture::with_zone(
        "",
        &zone("").replace("records", "soa = { serial = 2026120601 }\nrecords"),
        &[],
    ));
    assert_eq!(served_serial(fixed.v4()), 2026120601);
}
