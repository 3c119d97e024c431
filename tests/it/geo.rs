//! Performance, geographic and subnet routing with GeoIP and EDNS Client
//! Subnet, end to end: databases written at test time, queries with ECS
//! options over UDP and TCP, IPv4 and IPv6.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use switchyard::health::Status;

use crate::backend::*;
use crate::geodb::{self, Schema};
use crate::harness::*;

/// An ECS option (code 8) for `addr/prefix`, exactly as RFC 7871 lays it out.
pub fn ecs_option(addr: &str, prefix: u8) -> Vec<u8> {
    let ip: IpAddr = addr.parse().unwrap();
    let (family, octets): (u16, Vec<u8>) = match ip {
        IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        IpAddr::V6(v6) => (2, v6.octets().to_vec()),
    };
    let n = (prefix as usize).div_ceil(8);
    let mut data = family.to_be_bytes().to_vec();
    data.push(prefix);
    data.push(0);
    data.extend_from_slice(&octets[..n]);
    raw_option(8, &data)
}

pub fn raw_option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut o = code.to_be_bytes().to_vec();
    o.extend_from_slice(&(data.len() as u16).to_be_bytes());
    o.extend_from_slice(data);
    o
}

/// A query whose OPT record carries `option`.
pub fn query_with_option(name: &str, t: RecordType, option: &[u8]) -> Vec<u8> {
    let mut q = build(name, t, Opts::default()).to_vec().unwrap();
    let n = q.len();
    q[n - 2..].copy_from_slice(&(option.len() as u16).to_be_bytes());
    q.extend_from_slice(option);
    q
}

/// Sends `pkt` over UDP or TCP and parses the reply.
fn ask(addr: SocketAddr, pkt: &[u8], tcp: bool) -> Message {
    let raw = if tcp {
        tcp_raw(addr, &[pkt.to_vec()]).remove(0)
    } else {
        udp_raw(addr, pkt, TIMEOUT).expect("no reply")
    };
    Message::from_vec(&raw).unwrap()
}

/// The answer's first address and the ECS scope echoed (None: no ECS option).
fn ecs_answer(
    s: &TestServer,
    name: &str,
    subnet: &str,
    prefix: u8,
    tcp: bool,
) -> (Option<String>, Option<u8>) {
    let addr = if tcp { s.v6() } else { s.v4() };
    let m = ask(
        addr,
        &query_with_option(name, RecordType::A, &ecs_option(subnet, prefix)),
        tcp,
    );
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{name} {subnet}"
    );
    (addrs(&m).into_iter().next(), scope(&m))
}

fn scope(m: &Message) -> Option<u8> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
        _ => None,
    }
}

fn geo_fixture(schema: Schema, extra: &str, profiles: &[(&str, &str)]) -> Fixture {
    let fx = Fixture::new(
        &format!("[geoip]\ndatabase = \"geo.mmdb\"\n{extra}"),
        profiles,
    );
    geodb::write(&fx.dir.path().join("geo.mmdb"), schema);
    fx
}

const NEAREST: &str = r#"
name = "nearest.tm.example.test."
routing = "performance"
ttl = 60
[monitor]
protocol = "tcp"
port = 9
[[endpoints]]
name = "eu"
target = "192.0.2.1"
location = "westeurope"
[[endpoints]]
name = "us"
target = "192.0.2.2"
location = "eastus"
[[endpoints]]
name = "apac"
target = "192.0.2.3"
location = "australiaeast"
"#;

#[test]
fn both_database_schemas_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for schema in [Schema::City, Schema::Flat, Schema::CountryOnly] {
        let path = dir.path().join(format!("{schema:?}.mmdb"));
        geodb::write(&path, schema);
        let db = switchyard::geo::GeoDb::open(&path).unwrap();
        let f = db.lookup("8.8.8.0".parse().unwrap());
        let loc = f.location.unwrap();
        assert_eq!(loc.country, Some(*b"US"), "{schema:?}");
        assert_eq!(f.prefix, 24);
        let sub = loc
            .subdivision
            .map(|i| switchyard::geo::SUBDIVISIONS[i as usize].code);
        match schema {
            Schema::City | Schema::Flat => assert_eq!(sub, Some("US-CA"), "{schema:?}"),
            Schema::CountryOnly => assert_eq!(sub, None),
        }
        // Coordinates: the record's, or the country's representative point.
        let p = loc.point.unwrap();
        let mountain_view = switchyard::geo::Point::new(37.39, -122.08);
        let km = p.km_to(&mountain_view);
        match schema {
            Schema::CountryOnly => assert!(km > 1000.0, "country centroid, not the record's point"),
            _ => assert!(km < 1.0, "{schema:?}: {km} km"),
        }
        // IPv6.
        let f = db.lookup("2001:db8:e000::".parse().unwrap());
        assert_eq!(f.location.unwrap().country, Some(*b"DE"));
        assert_eq!(f.prefix, 40);
        // Not in the database.
        assert!(db.lookup("100.64.0.0".parse().unwrap()).location.is_none());
    }
}

#[test]
fn performance_routes_to_the_nearest_by_ecs_or_resolver() {
    for schema in [Schema::City, Schema::Flat, Schema::CountryOnly] {
        let s = geo_fixture(schema, "", &[("nearest.toml", NEAREST)]).start();
        for tcp in [false, true] {
            let n = "nearest.tm.example.test.";
            assert_eq!(
                ecs_answer(&s, n, "81.2.69.0", 24, tcp),
                (Some("192.0.2.1".into()), Some(24)),
                "{schema:?} GB"
            );
            assert_eq!(
                ecs_answer(&s, n, "1.2.3.0", 24, tcp).0.as_deref(),
                Some("192.0.2.3"),
                "{schema:?} AU"
            );
            assert_eq!(
                ecs_answer(&s, n, "8.8.8.0", 24, tcp).0.as_deref(),
                Some("192.0.2.2"),
                "{schema:?} US"
            );
            assert_eq!(
                ecs_answer(&s, n, "2001:db8:e000::", 48, tcp),
                (Some("192.0.2.1".into()), Some(40)),
                "{schema:?} DE v6"
            );
            // The database network decides the scope: shorter than the
            // source prefix when the network is larger, longer when the
            // source prefix spans networks (RFC 7871 §7.2.1).
            assert_eq!(
                ecs_answer(&s, n, "9.9.9.0", 24, tcp).1,
                Some(16),
                "{schema:?}"
            );
            assert_eq!(
                ecs_answer(&s, n, "200.160.0.0", 16, tcp).1,
                Some(20),
                "{schema:?}"
            );
            // Unknown location: list order.
            assert_eq!(
                ecs_answer(&s, n, "100.64.1.0", 24, tcp).0.as_deref(),
                Some("192.0.2.1")
            );
        }
        // No ECS: the resolver's address (127.0.0.1 / ::1 are Irish here), no ECS option back.
        for addr in [s.v4(), s.v6()] {
            let m = udp(addr, "nearest.tm.example.test.", RecordType::A);
            assert_eq!(addrs(&m), ["192.0.2.1"]);
            assert_eq!(scope(&m), None);
        }
        // Failover to the next nearest: Europe down, Britain goes to the US.
        s.set_status("nearest.tm.example.test.", "eu", Status::Degraded);
        assert_eq!(
            ecs_answer(&s, "nearest.tm.example.test.", "81.2.69.0", 24, false)
                .0
                .as_deref(),
            Some("192.0.2.2")
        );
    }
}

/// Endpoints from the most specific region (a US state) to `WORLD`.
fn geo() -> ProfileToml {
    ProfileToml::new("geo.tm.example.test.", "geographic")
        .ttl(60)
        .set_monitor("protocol", "tcp")
        .set_monitor("port", 9)
        .endpoint("california", "192.0.2.11")
        .set_endpoint("california", "regions", ["US-CA"])
        .endpoint("usa", "192.0.2.12")
        .set_endpoint("usa", "regions", ["US"])
        .endpoint("americas", "192.0.2.13")
        .set_endpoint("americas", "regions", ["GEO-NA", "GEO-SA"])
        .endpoint("europe", "192.0.2.14")
        .set_endpoint("europe", "regions", ["GEO-EU"])
        .endpoint("world", "192.0.2.15")
        .set_endpoint("world", "regions", ["WORLD"])
}

#[test]
fn geographic_most_specific_then_less_specific() {
    let s = geo_fixture(Schema::City, "", &[("geo.toml", &geo().build())]).start();
    let n = "geo.tm.example.test.";
    let ask = |subnet: &str| ecs_answer(&s, n, subnet, 24, false);
    assert_eq!(
        ask("8.8.8.0"),
        (Some("192.0.2.11".into()), Some(24)),
        "subdivision"
    );
    assert_eq!(
        ask("9.9.9.0").0.as_deref(),
        Some("192.0.2.12"),
        "country (US-NY has no endpoint)"
    );
    assert_eq!(
        ask("200.160.0.0").0.as_deref(),
        Some("192.0.2.13"),
        "group GEO-SA"
    );
    assert_eq!(
        ask("81.2.69.0").0.as_deref(),
        Some("192.0.2.14"),
        "group GEO-EU"
    );
    assert_eq!(ask("1.2.3.0").0.as_deref(), Some("192.0.2.15"), "WORLD");
    assert_eq!(
        ask("100.64.0.0").0.as_deref(),
        Some("192.0.2.15"),
        "unknown -> WORLD"
    );
    // The matched endpoint down: the next less specific answers.
    s.set_status(n, "california", Status::Degraded);
    assert_eq!(ask("8.8.8.0").0.as_deref(), Some("192.0.2.12"));
    s.set_status(n, "usa", Status::Degraded);
    assert_eq!(ask("8.8.8.0").0.as_deref(), Some("192.0.2.13"));
    s.set_status(n, "americas", Status::Degraded);
    assert_eq!(ask("8.8.8.0").0.as_deref(), Some("192.0.2.15"));
    // Everything that matches down: on_all_down (serve-all) answers the most specific.
    s.set_status(n, "world", Status::Degraded);
    assert_eq!(ask("8.8.8.0").0.as_deref(), Some("192.0.2.11"));
}

#[test]
fn geographic_without_world_is_nodata_for_the_unmatched() {
    let profile = geo().set_endpoint("world", "regions", ["GEO-AP"]).build();
    let s = geo_fixture(Schema::CountryOnly, "", &[("geo.toml", &profile)]).start();
    let q = query_with_option(
        "geo.tm.example.test.",
        RecordType::A,
        &ecs_option("100.64.0.0", 24),
    );
    let m = ask(s.v4(), &q, false);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty(), "NODATA");
    assert_eq!(m.authorities.len(), 1);
    // Country-only database: US-CA cannot match, US does.
    let q = query_with_option(
        "geo.tm.example.test.",
        RecordType::A,
        &ecs_option("8.8.8.0", 24),
    );
    assert_eq!(addrs(&ask(s.v4(), &q, true)), ["192.0.2.12"]);
}

const OFFICE: &str = r#"
name = "office.tm.example.test."
routing = "subnet"
ttl = 60
[[endpoints]]
name = "internal"
target = "10.10.0.10"
subnets = ["10.0.0.0/8", "fd00::/8"]
[[endpoints]]
name = "partners"
target = "192.0.2.51"
subnets = ["198.51.100.0-198.51.100.127"]
[[endpoints]]
name = "loopback-resolvers"
target = "192.0.2.53"
subnets = ["127.0.0.1/32", "::1/128"]
[[endpoints]]
name = "public"
target = "192.0.2.52"
"#;

#[test]
fn subnet_routing_with_ranges_fallback_and_scopes() {
    let s = geo_fixture(Schema::City, "", &[("office.toml", OFFICE)]).start();
    let n = "office.tm.example.test.";
    assert_eq!(
        ecs_answer(&s, n, "10.20.30.0", 24, false),
        (Some("10.10.0.10".into()), Some(8))
    );
    assert_eq!(
        ecs_answer(&s, n, "fd12:3456::", 48, true),
        (Some("10.10.0.10".into()), Some(8))
    );
    // A range that is not a CIDR: the largest aligned block inside it
    // around the address, even when that is finer than the source prefix
    // (the range covers only half of 198.51.100.0/24).
    assert_eq!(
        ecs_answer(&s, n, "198.51.100.0", 24, false),
        (Some("192.0.2.51".into()), Some(25))
    );
    assert_eq!(
        ecs_answer(&s, n, "198.51.100.0", 25, false),
        (Some("192.0.2.51".into()), Some(25))
    );
    // The ECS address is used to its source prefix: a /32 past the range
    // gets the fallback, scoped to the block around it that no range touches.
    assert_eq!(
        ecs_answer(&s, n, "198.51.100.200", 32, false),
        (Some("192.0.2.52".into()), Some(25))
    );
    assert_eq!(
        ecs_answer(&s, n, "198.51.100.100", 32, false),
        (Some("192.0.2.51".into()), Some(25))
    );
    // No match: the fallback, scoped to the gap around the address.
    let (a, sc) = ecs_answer(&s, n, "203.0.113.0", 24, false);
    assert_eq!(a.as_deref(), Some("192.0.2.52"));
    assert!(sc.unwrap() > 0 && sc.unwrap() <= 24, "{sc:?}");
    // The resolver's own address is used in full: 127.0.0.1/32 and ::1 match.
    for addr in [s.v4(), s.v6()] {
        assert_eq!(addrs(&udp(addr, n, RecordType::A)), ["192.0.2.53"]);
    }
    // ECS source prefix 0: the client is not used (fallback, scope 0).
    assert_eq!(
        ecs_answer(&s, n, "10.0.0.0", 0, false),
        (Some("192.0.2.52".into()), Some(0))
    );
}

#[test]
fn client_independent_answers_have_scope_zero() {
    let s = geo_fixture(Schema::City, "", &[("todoapi.toml", TODOAPI)]).start();
    assert_eq!(
        ecs_answer(&s, "todoapi.tm.example.test.", "81.2.69.0", 24, false),
        (Some("203.0.113.10".into()), Some(0))
    );
    let m = ask(
        s.v4(),
        &query_with_option(
            "ns1.tm.example.test.",
            RecordType::A,
            &ecs_option("81.2.69.0", 24),
        ),
        false,
    );
    assert_eq!(scope(&m), Some(0));
    let m = ask(
        s.v4(),
        &query_with_option(
            "nope.tm.example.test.",
            RecordType::A,
            &ecs_option("81.2.69.0", 24),
        ),
        true,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(scope(&m), Some(0));
}

#[test]
fn malformed_ecs_is_formerr() {
    let s = geo_fixture(Schema::City, "", &[("nearest.toml", NEAREST)]).start();
    let n = "nearest.tm.example.test.";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("family 3", raw_option(8, &[0, 3, 24, 0, 1, 2, 3])),
        (
            "prefix longer than IPv4",
            raw_option(8, &[0, 1, 33, 0, 1, 2, 3, 4, 5]),
        ),
        ("prefix longer than IPv6", raw_option(8, &[0, 2, 129, 0])),
        (
            "bits beyond the prefix",
            raw_option(8, &[0, 1, 20, 0, 10, 20, 31]),
        ),
        (
            "too many address bytes",
            raw_option(8, &[0, 1, 8, 0, 10, 0]),
        ),
        (
            "too few address bytes",
            raw_option(8, &[0, 1, 24, 0, 10, 20]),
        ),
        (
            "scope set in a query",
            raw_option(8, &[0, 1, 24, 24, 10, 20, 30]),
        ),
        ("truncated", raw_option(8, &[0, 1])),
    ];
    for (what, opt) in cases {
        for tcp in [false, true] {
            let m = ask(s.v4(), &query_with_option(n, RecordType::A, &opt), tcp);
            assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
        }
    }
    // Still serving.
    assert_eq!(
        ecs_answer(&s, n, "81.2.69.0", 24, false).0.as_deref(),
        Some("192.0.2.1")
    );
}

#[test]
fn ecs_can_be_turned_off() {
    let s = geo_fixture(
        Schema::City,
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\necs = false",
        &[("nearest.toml", NEAREST)],
    )
    .start();
    // The option is ignored (not echoed) and the resolver's address decides (Ireland).
    let m = ask(
        s.v4(),
        &query_with_option(
            "nearest.tm.example.test.",
            RecordType::A,
            &ecs_option("1.2.3.0", 24),
        ),
        false,
    );
    assert_eq!(addrs(&m), ["192.0.2.1"]);
    assert_eq!(scope(&m), None);
}

#[test]
fn replaced_database_is_picked_up_and_a_corrupt_one_rejected() {
    let fx = geo_fixture(Schema::City, "", &[("nearest.toml", NEAREST)]);
    let db = fx.dir.path().join("geo.mmdb");
    let s = fx.start();
    let n = "nearest.tm.example.test.";
    assert_eq!(
        ecs_answer(&s, n, "100.64.1.0", 24, false).0.as_deref(),
        Some("192.0.2.1")
    );
    // A new database that puts 100.64.0.0/10 in Australia, written then renamed into place.
    let tmp = db.with_extension("new");
    let mut w = mmdb_writer::Writer::new("GeoIP2-City");
    #[derive(serde::Serialize)]
    struct C<'a> {
        country_code: &'a str,
    }
    w.insert(
        "100.64.0.0/10".parse::<ipnet::IpNet>().unwrap(),
        &C { country_code: "AU" },
    )
    .unwrap();
    std::fs::write(&tmp, w.to_bytes().unwrap()).unwrap();
    std::fs::rename(&tmp, &db).unwrap();
    wait_until(Duration::from_secs(5), || {
        ecs_answer(&s, n, "100.64.1.0", 24, false).0.as_deref() == Some("192.0.2.3")
    })
    .expect("new database not loaded");
    // Garbage replaces it: rejected, the last good database keeps serving.
    let rejected = s.shared.serving.metrics.reloads(false);
    std::fs::write(&tmp, b"definitely not a MaxMind database").unwrap();
    std::fs::rename(&tmp, &db).unwrap();
    wait_until(Duration::from_secs(10), || {
        s.shared.serving.metrics.reloads(false) > rejected
    })
    .expect("the garbage database was not rejected");
    assert_eq!(
        ecs_answer(&s, n, "100.64.1.0", 24, false).0.as_deref(),
        Some("192.0.2.3")
    );
}

#[test]
fn performance_fails_over_to_the_next_nearest_with_the_real_prober() {
    let eu = Backend::http(Mode::Ok);
    let us = Backend::http(Mode::Ok);
    let profile = format!(
        r#"
name = "nearest.tm.example.test."
routing = "performance"
ttl = 5
[monitor]
protocol = "http"
interval = "200ms"
timeout = "100ms"
tolerated_failures = 0
[[endpoints]]
name = "eu"
target = "192.0.2.1"
location = "westeurope"
probe = {{ address = "127.0.0.1", port = {} }}
[[endpoints]]
name = "us"
target = "192.0.2.2"
location = "eastus"
probe = {{ address = "127.0.0.1", port = {} }}
"#,
        eu.port(),
        us.port()
    );
    let s = geo_fixture(Schema::City, "", &[("nearest.toml", &profile)]).start_probing();
    let n = "nearest.tm.example.test.";
    let gb = || ecs_answer(&s, n, "81.2.69.0", 24, false).0;
    wait_until(Duration::from_secs(3), || {
        gb().as_deref() == Some("192.0.2.1")
    })
    .expect("eu first");
    eu.set(Mode::Unavailable);
    wait_until(Duration::from_secs(3), || {
        gb().as_deref() == Some("192.0.2.2")
    })
    .expect("failover to us");
    eu.set(Mode::Ok);
    wait_until(Duration::from_secs(3), || {
        gb().as_deref() == Some("192.0.2.1")
    })
    .expect("failback");
}
