//! Real user measurements (`[rum]`) on the real binary: the public
//! listener's script, tokens and beacons; the token names the DNS side
//! answers and records; every kind of bad input refused and counted by
//! result, never stored; slow and numerous clients bounded.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::backend::wait_until;
use crate::harness::*;

/// The key pages embed in these tests.
pub const KEY: &str = "rum-test-key-0123456789";

/// The profile measured: `eu` (westeurope) and `us` (eastus), performance
/// routing, each with a `rum_url` on its own server.
pub fn profile(eu_url: &str, us_url: &str) -> String {
    format!(
        r#"
name = "app.tm.example.test."
routing = "performance"
ttl = 1
[[endpoints]]
name = "eu"
target = "192.0.2.1"
location = "westeurope"
rum_url = "{eu_url}"
[[endpoints]]
name = "us"
target = "192.0.2.2"
location = "eastus"
rum_url = "{us_url}"
"#
    )
}

/// `[rum]` listening on `listen`, token names answered with `answer`,
/// `extra` lines added to the table.
pub fn rum_section(listen: &str, answer: &str, extra: &str) -> String {
    format!(
        "[rum]\nlisten = \"{listen}\"\nzone = \"rum.tm.example.test.\"\nanswer = [\"{answer}\"]\n{extra}\n[[rum.keys]]\nkey = \"{KEY}\"\nprofiles = [\"app.tm.example.test.\"]\n"
    )
}

/// The real binary with `rum` (`[rum]`, and whatever else it holds) and
/// the test GeoIP database.
pub fn start(rum: &str, profile: &str) -> Proc {
    let fx = Fixture::new(
        &format!("[geoip]\ndatabase = \"geo.mmdb\"\n{rum}"),
        &[("app.toml", profile)],
    );
    crate::geodb::write(&fx.dir.path().join("geo.mmdb"), crate::geodb::Schema::City);
    let p = Proc::start(fx);
    p.wait_for_log("rum listening", Duration::from_secs(10));
    p
}

/// The rum listener's address, from its log line.
pub fn rum_addr(p: &Proc) -> SocketAddr {
    let log = p.log();
    let line = log
        .lines()
        .find(|l| l.contains("rum listening"))
        .expect("no rum listening line");
    let a = line.split("address=").nth(1).unwrap();
    a.split_whitespace().next().unwrap().parse().unwrap()
}

/// One HTTP/1.1 request from `from` (any local address), `Connection:
/// close`; the status and body.
pub fn request(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    request_with(from, addr, method, path, "", body)
}

/// [`request`] with more header lines (`extra`, each ending in CRLF).
pub fn request_with(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = match from {
        Some(ip) => tcp_from(ip, addr).unwrap(),
        None => TcpStream::connect_timeout(&addr, TIMEOUT).unwrap(),
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

/// Reads a response to the end of the connection.
pub fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// A token for `KEY` issued to a client at `from`.
pub fn token(p: &Proc, from: Option<IpAddr>) -> String {
    let (code, body) = request(
        from,
        rum_addr(p),
        "GET",
        &format!("/rum/config?key={KEY}"),
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// A beacon's body.
pub fn beacon(key: &str, token: &str, results: &[(&str, f64)]) -> Vec<u8> {
    let results: Vec<_> = results
        .iter()
        .map(|(e, ms)| serde_json::json!({ "endpoint": e, "ms": ms }))
        .collect();
    serde_json::json!({ "key": key, "token": token, "results": results })
        .to_string()
        .into_bytes()
}

/// `switchyard_rum_beacons_total{result="RESULT"}`.
pub fn beacons(p: &Proc, result: &str) -> u64 {
    counter(
        p,
        &format!("switchyard_rum_beacons_total{{result=\"{result}\"}}"),
    )
}

/// A counter's value (0 when absent).
pub fn counter(p: &Proc, series: &str) -> u64 {
    let (_, body) = http(p.admin(), "GET", "/metrics", None);
    body.lines()
        .find(|l| l.starts_with(&format!("{series} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits (10 s at most: scrapes within a second share one encoding) until
/// the counter reads `want`.
pub fn wait_counter(p: &Proc, series: &str, want: u64) {
    wait_until(Duration::from_secs(10), || counter(p, series) == want)
        .unwrap_or_else(|| panic!("{series} is {}, not {want}", counter(p, series)));
}

const EU: &str = "app.tm.example.test./eu";
const US: &str = "app.tm.example.test./us";

fn plain() -> Proc {
    start(
        &rum_section(
            "127.0.0.1:0",
            "127.0.0.1",
            "beacons_per_second = 5\ntoken_lifetime = \"10s\"",
        ),
        &profile("http://127.0.0.2:9/rum.txt", "http://127.0.0.3:9/rum.txt"),
    )
}

#[test]
fn the_script_and_a_token_are_served_with_the_endpoints_to_measure() {
    let p = plain();
    let rum = rum_addr(&p);
    let (code, script) = request(None, rum, "GET", "/rum.js", b"");
    assert_eq!(code, 200);
    assert!(script.contains("sendBeacon") && script.len() < 6144);
    let (code, body) = request(None, rum, "GET", &format!("/rum/config?key={KEY}"), b"");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["zone"], "rum.tm.example.test");
    assert_eq!(v["endpoints"][0]["endpoint"], EU);
    assert_eq!(v["endpoints"][1]["url"], "http://127.0.0.3:9/rum.txt");
    let token = v["token"].as_str().unwrap();
    assert_eq!(token.len(), 48);
    // The token's name resolves to `answer`, with a short TTL.
    let m = udp(
        p.v4(),
        &format!("{token}.rum.tm.example.test."),
        hickory_proto::rr::RecordType::A,
    );
    assert_eq!(addrs(&m), ["127.0.0.1"]);
    assert_eq!(m.answers[0].ttl, 60);
    // An unknown key gets no token; the key is in no log line.
    let (code, _) = request(None, rum, "GET", "/rum/config?key=nope", b"");
    assert_eq!(code, 403);
    let (_, metrics) = http(p.admin(), "GET", "/metrics", None);
    assert!(!p.log().contains(KEY) && !metrics.contains(KEY));
}

#[test]
fn a_beacon_is_stored_once_and_ties_its_token_lookup() {
    let p = plain();
    let rum = rum_addr(&p);
    let t = token(&p, None);
    // The browser's resolver (here: this test, from 127.0.0.1) asks for
    // the token's name.
    udp(
        p.v4(),
        &format!("{t}.rum.tm.example.test."),
        hickory_proto::rr::RecordType::AAAA,
    );
    let body = beacon(KEY, &t, &[(EU, 42.5), (US, 90.0)]);
    assert_eq!(request(None, rum, "POST", "/rum/beacon", &body).0, 204);
    wait_counter(&p, "switchyard_rum_beacons_total{result=\"stored\"}", 1);
    assert_eq!(counter(&p, "switchyard_rum_samples_total"), 2);
    assert_eq!(counter(&p, "switchyard_rum_resolver_joins_total"), 1);
    // The same token again.
    assert_eq!(request(None, rum, "POST", "/rum/beacon", &body).0, 403);
    wait_counter(&p, "switchyard_rum_beacons_total{result=\"replayed\"}", 1);
    assert_eq!(counter(&p, "switchyard_rum_samples_total"), 2);
}

#[test]
fn bad_beacons_are_refused_counted_by_reason_and_never_stored() {
    let p = plain();
    let rum = rum_addr(&p);
    let post = |body: &[u8]| request(None, rum, "POST", "/rum/beacon", body).0;
    // Each from its own loopback address, so the rate never decides.
    let from = |n: u8| Some(IpAddr::from([127, 0, n, 1]));
    let post_from = |n: u8, body: &[u8]| request(from(n), rum, "POST", "/rum/beacon", body).0;
    let t = |n: u8| token(&p, from(n));
    let cases: Vec<(&str, u16)> = vec![
        (
            "unknown_key",
            post_from(1, &beacon("not-the-key-0123456789", &t(1), &[(EU, 20.0)])),
        ),
        // A token of the right shape that this server never made.
        (
            "bad_token",
            post(&beacon(KEY, &"ab".repeat(24), &[(EU, 20.0)])),
        ),
        // A token issued to another network.
        (
            "bad_token",
            post_from(2, &beacon(KEY, &t(3), &[(EU, 20.0)])),
        ),
        ("malformed", post(b"{\"key\": ")),
        ("malformed", post(b"<html>")),
        (
            "bad_timing",
            post_from(4, &beacon(KEY, &t(4), &[(EU, -5.0)])),
        ),
        (
            "bad_timing",
            post_from(5, &beacon(KEY, &t(5), &[(EU, 0.0)])),
        ),
        (
            "bad_timing",
            post_from(6, &beacon(KEY, &t(6), &[(EU, 7_200_000.0)])),
        ),
        (
            "unknown_endpoint",
            post_from(
                7,
                &beacon(KEY, &t(7), &[("other.tm.example.test./x", 20.0)]),
            ),
        ),
        ("too_large", post(&vec![b'x'; 5000])),
    ];
    for (result, code) in &cases {
        assert!(matches!(code, 400 | 403 | 413), "{result}: HTTP {code}");
    }
    for result in [
        "unknown_key",
        "bad_token",
        "malformed",
        "bad_timing",
        "unknown_endpoint",
        "too_large",
    ] {
        let want = cases.iter().filter(|(r, _)| *r == result).count() as u64;
        wait_counter(
            &p,
            &format!("switchyard_rum_beacons_total{{result=\"{result}\"}}"),
            want,
        );
    }
    assert_eq!(beacons(&p, "stored"), 0);
    assert_eq!(counter(&p, "switchyard_rum_samples_total"), 0);
}

#[test]
fn a_huge_body_is_refused_before_it_is_read() {
    let p = plain();
    let rum = rum_addr(&p);
    // A declared gigabyte: the answer comes before any of it is sent.
    let mut s = TcpStream::connect(rum).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST /rum/beacon HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        .unwrap();
    let (code, body) = read_response(&mut s);
    assert_eq!(code, 413, "{body}");
    // Chunked, with no length: cut off at `max_body`.
    let mut s = TcpStream::connect(rum).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST /rum/beacon HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 8192, "y".repeat(8192));
    let _ = s.write_all(chunk.as_bytes());
    let (code, _) = read_response(&mut s);
    assert_eq!(code, 413);
    wait_counter(&p, "switchyard_rum_beacons_total{result=\"too_large\"}", 2);
}

#[test]
fn an_expired_token_is_refused_and_a_lookup_never_seen_is_given_up() {
    let p = plain();
    let issued = Instant::now();
    let t = token(&p, None);
    // A beacon whose token's name no resolver asks for: stored, then
    // waited on for the token's life.
    let lone = token(&p, None);
    let b = beacon(KEY, &lone, &[(EU, 20.0)]);
    assert_eq!(
        request(None, rum_addr(&p), "POST", "/rum/beacon", &b).0,
        204
    );
    // `token_lifetime = "10s"`: wait until it has surely passed (expiry
    // is counted in whole seconds).
    while issued.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _) = request(
        None,
        rum_addr(&p),
        "POST",
        "/rum/beacon",
        &beacon(KEY, &t, &[(EU, 20.0)]),
    );
    assert_eq!(code, 403);
    wait_counter(&p, "switchyard_rum_beacons_total{result=\"expired\"}", 1);
    wait_counter(&p, "switchyard_rum_resolver_misses_total", 1);
    assert_eq!(beacons(&p, "stored"), 1);
    assert_eq!(counter(&p, "switchyard_rum_resolver_joins_total"), 0);
}

#[test]
fn a_flood_from_one_network_is_limited_to_its_rate() {
    let p = plain();
    let rum = rum_addr(&p);
    // Tokens from other networks' buckets... no: tokens are bound to the
    // network they were issued to, so take them first (token requests
    // have a bucket of their own), within the rate.
    let mut tokens = Vec::new();
    while tokens.len() < 5 {
        let (code, body) = request(None, rum, "GET", &format!("/rum/config?key={KEY}"), b"");
        if code == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            tokens.push(v["token"].as_str().unwrap().to_string());
        } else {
            assert_eq!(code, 429);
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    // 30 beacons at once from 127.0.0.0/24 (5 a second, a second's
    // burst): at most 5 + what refills while they are sent get through.
    let started = Instant::now();
    let mut codes = Vec::new();
    for i in 0..30 {
        let t = &tokens[i % tokens.len()];
        codes.push(
            request(
                None,
                rum,
                "POST",
                "/rum/beacon",
                &beacon(KEY, t, &[(EU, 20.0)]),
            )
            .0,
        );
    }
    let took = started.elapsed().as_secs_f64();
    let limited = codes.iter().filter(|c| **c == 429).count() as u64;
    let allowed = 30 - limited;
    assert!(
        (allowed as f64) <= 5.0 + 5.0 * took + 1.0,
        "{allowed} let through in {took:.2}s"
    );
    assert!(limited >= 10, "{codes:?}");
    wait_counter(
        &p,
        "switchyard_rum_beacons_total{result=\"rate_limited\"}",
        limited,
    );
    // The other network is not limited by it.
    let other = Some(IpAddr::from([127, 0, 9, 1]));
    let t = token(&p, other);
    assert_eq!(
        request(
            other,
            rum,
            "POST",
            "/rum/beacon",
            &beacon(KEY, &t, &[(EU, 20.0)])
        )
        .0,
        204
    );
}

#[test]
fn slow_and_numerous_clients_cannot_exhaust_the_listener() {
    let p = plain();
    let rum = rum_addr(&p);
    // Slowloris: connections that never finish their headers.
    let mut slow: Vec<TcpStream> = (0..40)
        .filter_map(|_| {
            let mut s = TcpStream::connect(rum).ok()?;
            s.write_all(b"GET /rum.js HTTP/1.1\r\nHost: x\r\n").ok()?;
            Some(s)
        })
        .collect();
    // Another client still gets the script.
    let other = Some(IpAddr::from([127, 0, 7, 1]));
    assert_eq!(request(other, rum, "GET", "/rum.js", b"").0, 200);
    // The slow ones are closed: past the header timeout (5 s), or at once
    // beyond the per-client limit.
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in &mut slow {
        s.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10)),
        ))
        .unwrap();
        let mut buf = [0u8; 512];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false;
                }
                Err(_) => break true,
            }
        };
        assert!(
            closed && Instant::now() < deadline,
            "a slow client was kept open"
        );
    }
}

/// `dig +short` of the profile at `dns` for ECS `subnet`.
fn answer_for(dns: SocketAddr, subnet: &str) -> String {
    crate::browser::dig(dns, Some(subnet))
}

#[test]
fn a_beacon_to_one_node_changes_every_nodes_answer() {
    let ports: Vec<u16> = (0..3).map(|_| crate::cluster::free_udp_port()).collect();
    let app = profile("http://127.0.0.2:9/rum.txt", "http://127.0.0.3:9/rum.txt");
    let tail = format!(
        "[geoip]\ndatabase = \"geo.mmdb\"\n[latency]\nmin_samples = 1\n{}",
        rum_section("127.0.0.1:0", "127.0.0.1", "")
    );
    let nodes: Vec<Proc> = (1..=3)
        .map(|n| {
            let fx = crate::cluster::node_fixture_full(
                n,
                &ports,
                "rum-cluster-key-0123456789",
                &app,
                "",
                &tail,
            );
            crate::geodb::write(&fx.dir.path().join("geo.mmdb"), crate::geodb::Schema::City);
            let p = Proc::start(fx);
            p.wait_for_log("rum listening", Duration::from_secs(10));
            p
        })
        .collect();
    let dns: Vec<SocketAddr> = nodes.iter().map(|p| p.v4()).collect();
    // 127.0.0.0/24 (Ireland) starts on the nearest, eu; 198.51.100.0/24
    // (nowhere in the database) on the first listed, eu too.
    for d in &dns {
        assert_eq!(answer_for(*d, "127.0.0.0/24"), "192.0.2.1");
        assert_eq!(answer_for(*d, "198.51.100.0/24"), "192.0.2.1");
    }
    // A token from node 1; the browser's resolver asks node 2 for its
    // name (with ECS 198.51.100.0/24); the beacon reaches node 3.
    let t = token(&nodes[0], None);
    let name = format!("{t}.rum.tm.example.test.");
    let q = crate::geo::query_with_option(
        &name,
        hickory_proto::rr::RecordType::A,
        &crate::geo::ecs_option("198.51.100.0", 24),
    );
    assert!(udp_raw(dns[1], &q, TIMEOUT).is_some());
    let sent = Instant::now();
    let body = beacon(KEY, &t, &[(EU, 300.0), (US, 20.0)]);
    assert_eq!(
        request(None, rum_addr(&nodes[2]), "POST", "/rum/beacon", &body).0,
        204
    );
    // The lookup node 2 saw reaches node 3 by gossip, which ties it.
    wait_until(Duration::from_secs(10), || {
        counter(&nodes[2], "switchyard_rum_resolver_joins_total") == 1
    })
    .unwrap_or_else(|| panic!("node 3 never joined the beacon; log:\n{}", nodes[2].log()));
    let joined = sent.elapsed();
    // Every node: the beacon's network and the resolver's both go to us.
    for i in [2, 0, 1] {
        let d = &dns[i];
        for subnet in ["127.0.0.0/24", "198.51.100.0/24"] {
            wait_until(Duration::from_secs(10), || {
                answer_for(*d, subnet) == "192.0.2.2"
            })
            .unwrap_or_else(|| {
                let (_, why) = json(
                    nodes[i].admin(),
                    "GET",
                    &format!("/api/v1/explain?name=app.tm.example.test.&ecs={subnet}"),
                    None,
                );
                panic!(
                    "node {} still answers {} for {subnet}: {}",
                    i + 1,
                    answer_for(*d, subnet),
                    why["steps"]
                )
            });
        }
    }
    eprintln!(
        "joined on node 3 {:?} after the beacon; every node answering by it {:?} after",
        joined,
        sent.elapsed()
    );
}

#[test]
fn the_listener_speaks_https_with_tls_cert_and_tls_key() {
    let ck = rcgen::generate_simple_self_signed(vec!["rum.example.test".to_string()]).unwrap();
    let fx = Fixture::new(
        &format!(
            "[geoip]\ndatabase = \"geo.mmdb\"\n{}",
            rum_section(
                "127.0.0.1:0",
                "127.0.0.1",
                "tls_cert = \"rum.pem\"\ntls_key = \"rum.key\""
            )
        ),
        &[(
            "app.toml",
            &profile("https://127.0.0.2:9/rum.txt", "https://127.0.0.3:9/rum.txt"),
        )],
    );
    std::fs::write(fx.dir.path().join("rum.pem"), ck.cert.pem()).unwrap();
    std::fs::write(
        fx.dir.path().join("rum.key"),
        ck.signing_key.serialize_pem(),
    )
    .unwrap();
    crate::geodb::write(&fx.dir.path().join("geo.mmdb"), crate::geodb::Schema::City);
    let p = Proc::start(fx);
    p.wait_for_log("rum listening", Duration::from_secs(10));
    assert!(p.log().contains("https=true"));
    // A client that trusts the certificate, asking by its name.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("rum.example.test").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(rum_addr(&p)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /rum.js HTTP/1.1\r\nHost: rum.example.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("sendBeacon"));
    // Plain HTTP on the TLS port gets nowhere.
    let (code, _) = request(None, rum_addr(&p), "GET", "/rum.js", b"");
    assert_ne!(code, 200);
}

#[test]
fn behind_a_trusted_proxy_the_client_is_the_forwarded_address() {
    let p = start(
        &rum_section(
            "127.0.0.1:0",
            "127.0.0.1",
            "trusted_proxies = [\"127.0.0.1\"]",
        ),
        &profile("http://127.0.0.2:9/rum.txt", "http://127.0.0.3:9/rum.txt"),
    );
    let rum = rum_addr(&p);
    let proxy = Some(IpAddr::from([127, 0, 0, 1]));
    let other = Some(IpAddr::from([127, 0, 5, 1]));
    // The visitor 198.51.100.7, through the proxy; a spoofed hop before it
    // is not believed.
    let xff = "X-Forwarded-For: 203.0.113.9, 198.51.100.7\r\n";
    let (code, body) = request_with(
        proxy,
        rum,
        "GET",
        &format!("/rum/config?key={KEY}"),
        xff,
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let t = v["token"].as_str().unwrap().to_string();
    let b = beacon(KEY, &t, &[(EU, 20.0)]);
    // From anyone else the header is ignored: the token is not theirs.
    assert_eq!(
        request_with(other, rum, "POST", "/rum/beacon", xff, &b).0,
        403
    );
    assert_eq!(
        request_with(proxy, rum, "POST", "/rum/beacon", xff, &b).0,
        204
    );
    wait_counter(&p, "switchyard_rum_beacons_total{result=\"stored\"}", 1);
    assert_eq!(beacons(&p, "bad_token"), 1);
}
