//! The admin API end to end: every endpoint, the token, reload, runtime
//! overrides, metrics after known traffic, nested roll-up, and that no
//! secret shows anywhere.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;
use switchyard::health::Status;

use crate::backend::wait_until;
use crate::harness::*;

const NAME: &str = "todoapi.tm.example.test.";

#[test]
fn healthz_status_and_page() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    assert_eq!(
        http(s.admin, "GET", "/healthz", None),
        (200, "ok\n".to_string())
    );
    let (code, doc) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(code, 200);
    let p = &doc["profiles"][0];
    assert_eq!(p["name"], NAME);
    assert_eq!(p["routing"], "priority");
    assert_eq!(p["status"], "CheckingEndpoints");
    let e = &p["endpoints"][0];
    assert_eq!(e["name"], "primary");
    assert_eq!(e["target"], "203.0.113.10");
    assert_eq!(e["status"], "CheckingEndpoint");
    assert!(e["since"].is_string());
    assert_eq!(e["consecutive_failures"], 0);
    assert!(e["last_probe"].is_null());
    s.set_status(NAME, "primary", Status::Degraded);
    let (_, doc) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(doc["profiles"][0]["status"], "Degraded");
    assert_eq!(doc["profiles"][0]["endpoints"][0]["status"], "Degraded");
    let (code, page) = http(s.admin, "GET", "/", None);
    assert_eq!(code, 200);
    assert!(page.contains("<title>Switchyard status</title>") && page.contains("/api/v1/status"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
}

#[test]
fn explain_tells_the_answer_and_why() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    s.set_status(NAME, "primary", Status::Degraded);
    let (code, doc) = json(
        s.admin,
        "GET",
        "/api/v1/explain?name=todoapi.tm.example.test&type=A&client=192.0.2.1",
        None,
    );
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["rcode"], "NOERROR");
    assert_eq!(
        doc["answers"][0],
        "todoapi.tm.example.test. 30 A 198.51.100.20"
    );
    assert_eq!(doc["ttl"], 30);
    let steps: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        steps.iter().any(|s| s.contains("routing: priority")),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| s.contains("chosen: secondary")),
        "{steps:?}"
    );
    let excluded = &doc["excluded"][0];
    assert_eq!(excluded["endpoint"], "todoapi.tm.example.test/primary");
    assert!(
        excluded["reason"]
            .as_str()
            .unwrap()
            .starts_with("Degraded since "),
        "{excluded}"
    );
    // The answer agrees with what DNS says.
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
    // Names that are not profiles, and bad input.
    let (_, doc) = json(
        s.admin,
        "GET",
        "/api/v1/explain?name=nope.tm.example.test",
        None,
    );
    assert_eq!(doc["rcode"], "NXDOMAIN");
    let (_, doc) = json(s.admin, "GET", "/api/v1/explain?name=example.com", None);
    assert_eq!(doc["rcode"], "REFUSED");
    for bad in [
        "",
        "?name=a.test&type=BOGUS",
        "?name=a.test&client=nope",
        "?name=a.test&ecs=1.2.3.0/40",
    ] {
        let path = format!("/api/v1/explain{bad}");
        assert_eq!(json(s.admin, "GET", &path, None).0, 400, "{path}");
    }
}

#[test]
fn runtime_overrides_and_the_token() {
    let fx = Fixture::new(
        "state_file = \"switchyard.state\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = { file = \"admin.token\" }",
        &[("todoapi.toml", TODOAPI)],
    );
    std::fs::write(fx.dir.path().join("admin.token"), "t0ken-5ecret\n").unwrap();
    let state = fx.dir.path().join("switchyard.state");
    let s = fx.start();
    let path = "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/disable";
    let (code, body) = http(s.admin, "POST", path, None);
    assert_eq!(code, 401);
    assert!(body.contains("needs the admin token"), "{body}");
    let (code, body) = http(s.admin, "POST", path, Some("wrong"));
    assert_eq!(code, 401);
    assert!(body.contains("is not this server's admin token"), "{body}");
    assert!(!body.contains("t0ken"), "{body}");
    let (code, doc) = json(s.admin, "POST", path, Some("t0ken-5ecret"));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["status"], "Disabled");
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
    // Reads need no token.
    let (_, st) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(
        st["profiles"][0]["endpoints"][0]["disabled_at_runtime"],
        true
    );
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("\"primary\""), "{saved}");
    // Unknown names are 404s.
    let bad = "/api/v1/profiles/todoapi.tm.example.test/endpoints/tertiary/disable";
    assert_eq!(http(s.admin, "POST", bad, Some("t0ken-5ecret")).0, 404);
    // A reload keeps the override.
    assert_eq!(
        http(s.admin, "POST", "/api/v1/reload", Some("t0ken-5ecret")).0,
        200
    );
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
    // So does a restart.
    let fixture = stop(s);
    let s = fixture.start();
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
    let enable = "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/enable";
    let (code, doc) = json(s.admin, "POST", enable, Some("t0ken-5ecret"));
    assert_eq!(
        (code, doc["status"].as_str()),
        (200, Some("CheckingEndpoint"))
    );
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
    // The state file keeps the enable, with its version (so that in a
    // cluster the latest change wins), and no longer lists it as disabled.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["disabled"], serde_json::json!([]), "{saved}");
    assert_eq!(saved["overrides"][0]["endpoint"], "primary", "{saved}");
    assert_eq!(saved["overrides"][0]["disabled"], false, "{saved}");
    // The token appears in no response.
    for p in [
        "/",
        "/api/v1/status",
        "/metrics",
        "/api/v1/explain?name=todoapi.tm.example.test",
    ] {
        assert!(
            !http(s.admin, "GET", p, None).1.contains("t0ken-5ecret"),
            "{p}"
        );
    }
}

/// Stops a server and gives its fixture back (to start it again).
fn stop(s: TestServer) -> Fixture {
    s.into_fixture()
}

#[test]
fn reload_applies_valid_changes_and_rejects_broken_ones_whole() {
    let fx = Fixture::new("", &[("todoapi.toml", TODOAPI)]);
    let profiles = fx.dir.path().join("profiles");
    let s = fx.start();
    // Valid: a new profile, via the API. Written out, not built: an error
    // below is located by line and column in this text.
    let canary = |target: &str| {
        format!(
            "name = \"canary.tm.example.test.\"\nrouting = \"weighted\"\n[[endpoints]]\nname = \"a\"\ntarget = \"{target}\"\n"
        )
    };
    std::fs::write(profiles.join("canary.toml"), canary("192.0.2.7")).unwrap();
    let (code, doc) = json(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["summary"]["profiles"], 2);
    assert_eq!(
        addrs(&udp(s.v4(), "canary.tm.example.test.", RecordType::A)),
        ["192.0.2.7"]
    );
    // Broken: every error back, nothing applied.
    std::fs::write(profiles.join("canary.toml"), canary("192.0.2.300")).unwrap();
    std::fs::write(
        profiles.join("todoapi.toml"),
        ProfileToml::todoapi().ttl(-1).build(),
    )
    .unwrap();
    let (code, doc) = json(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 422, "{doc}");
    let errors: Vec<&str> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("canary.toml:5:10: endpoints[0].target")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("todoapi.toml:4:7: ttl")),
        "{errors:?}"
    );
    assert_eq!(
        addrs(&udp(s.v4(), "canary.tm.example.test.", RecordType::A)),
        ["192.0.2.7"]
    );
    let m = metrics(s.admin);
    assert!(
        m.contains("switchyard_config_reloads_total{result=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_config_reloads_total{result=\"rejected\"} 1"),
        "{m}"
    );
    // The rejection is on the status page while it stands...
    let (_, st) = json(s.admin, "GET", "/api/v1/status", None);
    let problems = st["problems"].as_array().unwrap();
    assert!(!problems.is_empty(), "{st}");
    assert!(
        problems.iter().all(|p| p["message"]
            .as_str()
            .unwrap()
            .starts_with("configuration rejected")),
        "{st}"
    );
    // ...and gone once a reload succeeds: the page tells what is wrong now.
    std::fs::write(profiles.join("canary.toml"), canary("192.0.2.7")).unwrap();
    std::fs::write(profiles.join("todoapi.toml"), TODOAPI).unwrap();
    let (code, doc) = json(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200, "{doc}");
    let (_, st) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(st["problems"], serde_json::json!([]), "{st}");
}

#[test]
fn file_changes_reload_within_a_second() {
    let fx = Fixture::new("", &[("todoapi.toml", TODOAPI)]);
    let profiles = fx.dir.path().join("profiles");
    let s = fx.start();
    let start = std::time::Instant::now();
    std::fs::write(
        profiles.join("todoapi.toml"),
        ProfileToml::todoapi()
            .set_endpoint("primary", "target", "203.0.113.99")
            .build(),
    )
    .unwrap();
    let took = wait_until(Duration::from_secs(5), || {
        addrs(&udp(s.v4(), NAME, RecordType::A)) == ["203.0.113.99"]
    })
    .expect("change not applied");
    // 250 ms of quiet, then the reload: well within a second on an idle
    // machine; the bound leaves room for a busy CI host.
    assert!(start.elapsed() < Duration::from_secs(2), "took {took:?}");
    // A half-written file (an editor's save in progress) is rejected, then
    // the complete one applies.
    let full = ProfileToml::todoapi()
        .set_endpoint("primary", "target", "203.0.113.77")
        .build();
    let rejected = s.shared.serving.metrics.reloads(false);
    std::fs::write(profiles.join("todoapi.toml"), &full[..full.len() / 2]).unwrap();
    wait_until(Duration::from_secs(10), || {
        s.shared.serving.metrics.reloads(false) > rejected
    })
    .expect("the half-written file was not rejected");
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["203.0.113.99"]);
    std::fs::write(profiles.join("todoapi.toml"), &full).unwrap();
    wait_until(Duration::from_secs(5), || {
        addrs(&udp(s.v4(), NAME, RecordType::A)) == ["203.0.113.77"]
    })
    .expect("complete file not applied");
    // A storm of 100 writes in a second settles on the last one.
    for i in 0..100 {
        std::fs::write(
            profiles.join("todoapi.toml"),
            ProfileToml::todoapi()
                .set_endpoint("primary", "target", format!("10.0.0.{i}"))
                .build(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_until(Duration::from_secs(5), || {
        addrs(&udp(s.v4(), NAME, RecordType::A)) == ["10.0.0.99"]
    })
    .expect("storm did not settle");
    // A deleted profile disappears; the name answers NXDOMAIN.
    std::fs::remove_file(profiles.join("todoapi.toml")).unwrap();
    wait_until(Duration::from_secs(5), || {
        udp(s.v4(), NAME, RecordType::A).metadata.response_code
            == hickory_proto::op::ResponseCode::NXDomain
    })
    .expect("deleted profile still served");
}

#[test]
fn no_query_is_lost_or_half_applied_during_reloads() {
    let fx = Fixture::new("", &[("todoapi.toml", TODOAPI)]);
    let s = fx.start();
    let stop_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (addr, flag) = (s.v4(), stop_flag.clone());
    let load = std::thread::spawn(move || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        let mut n = 0u32;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let q = build(NAME, RecordType::A, Opts::default());
            sock.send_to(&q.to_vec().unwrap(), addr).unwrap();
            let mut buf = [0u8; 1500];
            let (len, _) = sock
                .recv_from(&mut buf)
                .expect("a query went unanswered during a reload");
            let m = hickory_proto::op::Message::from_vec(&buf[..len]).unwrap();
            *seen.entry(addrs(&m).join(",")).or_insert(0) += 1;
            n += 1;
        }
        (n, seen)
    });
    for i in 0..20 {
        let target = if i % 2 == 0 {
            "203.0.113.55"
        } else {
            "203.0.113.10"
        };
        std::fs::write(
            s.dir().join("profiles/todoapi.toml"),
            ProfileToml::todoapi()
                .set_endpoint("primary", "target", target)
                .build(),
        )
        .unwrap();
        assert_eq!(http(s.admin, "POST", "/api/v1/reload", None).0, 200);
    }
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, seen) = load.join().unwrap();
    assert!(n > 100, "only {n} queries");
    // Every answer is one configuration or the other, never a mix or nothing.
    for k in seen.keys() {
        assert!(k == "203.0.113.10" || k == "203.0.113.55", "{seen:?}");
    }
}

fn metrics(addr: SocketAddr) -> String {
    let (code, body) = http(addr, "GET", "/metrics", None);
    assert_eq!(code, 200);
    body
}

#[test]
fn metrics_match_the_traffic() {
    let canary = "name = \"canary.tm.example.test.\"\nrouting = \"weighted\"\n[monitor]\nprotocol = \"tcp\"\nport = 9\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.7\"\nweight = 1\n[[endpoints]]\nname = \"b\"\ntarget = \"192.0.2.8\"\nweight = 1\n";
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI), ("canary.toml", canary)]).start();
    let mut got = std::collections::HashMap::new();
    for _ in 0..40 {
        let a = addrs(&udp(s.v4(), "canary.tm.example.test.", RecordType::A)).remove(0);
        *got.entry(a).or_insert(0u32) += 1;
    }
    for _ in 0..7 {
        tcp(s.v4(), NAME, RecordType::A);
    }
    udp(s.v4(), "nope.tm.example.test.", RecordType::A);
    s.set_status(NAME, "primary", Status::Degraded);
    let m = metrics(s.admin);
    let a = got.get("192.0.2.7").copied().unwrap_or(0);
    let b = got.get("192.0.2.8").copied().unwrap_or(0);
    assert!(
        m.contains(&format!(
            "switchyard_answers_total{{profile=\"canary.tm.example.test.\",endpoint=\"a\"}} {a}"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "switchyard_answers_total{{profile=\"canary.tm.example.test.\",endpoint=\"b\"}} {b}"
        )),
        "{m}"
    );
    assert!(
        m.contains(
            "switchyard_answers_total{profile=\"todoapi.tm.example.test.\",endpoint=\"primary\"} 7"
        ),
        "{m}"
    );
    assert!(
        m.contains("switchyard_dns_queries_total{transport=\"udp\",rcode=\"NOERROR\"} 40"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_dns_queries_total{transport=\"tcp\",rcode=\"NOERROR\"} 7"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_dns_queries_total{transport=\"udp\",rcode=\"NXDOMAIN\"} 1"),
        "{m}"
    );
    assert!(
        m.contains(
            "switchyard_endpoint_up{profile=\"todoapi.tm.example.test.\",endpoint=\"primary\"} 0"
        ),
        "{m}"
    );
    assert!(m.contains("switchyard_endpoint_status{profile=\"todoapi.tm.example.test.\",endpoint=\"primary\",status=\"Degraded\"} 1"), "{m}");
    assert!(m.contains("switchyard_endpoint_status{profile=\"todoapi.tm.example.test.\",endpoint=\"primary\",status=\"Online\"} 0"), "{m}");
    assert!(
        m.contains("# TYPE switchyard_probe_duration_seconds histogram"),
        "{m}"
    );
    assert!(m.contains("switchyard_probe_failures_total{profile=\"todoapi.tm.example.test.\",endpoint=\"primary\",reason=\"timeout\"} 0"), "{m}");
    assert!(m.trim_end().ends_with("# EOF"));
}

#[test]
fn bad_requests_get_4xx_and_never_hurt() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    assert_eq!(http(s.admin, "GET", "/nope", None).0, 404);
    assert_eq!(http(s.admin, "DELETE", "/api/v1/status", None).0, 405);
    assert_eq!(
        http(
            s.admin,
            "POST",
            "/api/v1/profiles/x/endpoints/y/explode",
            None
        )
        .0,
        404
    );
    // Raw garbage, an oversized body, a header flood.
    for raw in [
        b"\x16\x03\x01\x02\x00garbage\r\n\r\n".to_vec(),
        format!(
            "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{}",
            "x".repeat(70_000)
        )
        .into_bytes(),
        format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(5000)).into_bytes(),
    ] {
        let mut c = TcpStream::connect(s.admin).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = c.write_all(&raw);
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || head.starts_with("HTTP/1.1 4"), "{head}");
    }
    assert_eq!(http(s.admin, "GET", "/healthz", None).0, 200);
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
}

/// Reads until the server closes the connection or `limit` passes;
/// returns whether it closed.
fn closed_within(c: &mut TcpStream, limit: Duration) -> bool {
    c.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn slow_and_numerous_admin_clients_are_cut_off() {
    let limits = switchyard::admin::Limits {
        connections: 8,
        header_timeout: Duration::from_millis(500),
    };
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start_with_admin_limits(limits);
    // Slowloris: half a request line, then nothing. Cut off after the
    // header timeout, not kept forever.
    let mut slow = TcpStream::connect(s.admin).unwrap();
    slow.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: 127")
        .unwrap();
    let started = std::time::Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)),
        "slow client kept"
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "cut after {took:?}");
    // An idle keep-alive connection is cut the same way after its response.
    let mut idle = TcpStream::connect(s.admin).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)),
        "idle client kept"
    );

    // A flood of idle connections: at the limit the longest idle is closed
    // to admit a newcomer, while the DNS server goes on answering. (The two
    // connections above free their slots just after closing: wait for it.)
    let slots = s.shared.admin_slots.get().expect("admin slots").clone();
    wait_until(Duration::from_secs(5), || slots.is_empty()).expect("slots freed");
    let mut held: Vec<TcpStream> = (0..limits.connections)
        .map(|_| {
            let c = TcpStream::connect(s.admin).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            c
        })
        .collect();
    let extra = TcpStream::connect(s.admin).unwrap();
    assert!(
        closed_within(&mut held[0], Duration::from_millis(400)),
        "at the limit, the longest idle was kept"
    );
    let mut extra = extra;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    extra.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
    assert_eq!(addrs(&tcp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
    // Closing them frees the slots.
    drop(held);
    let served = wait_until(Duration::from_secs(5), || {
        matches!(try_http(s.admin, "GET", "/healthz", None), Ok((200, _)))
    });
    assert!(served.is_some(), "slots not freed");
}

const PARENT: &str = r#"
name = "global.tm.example.test."
routing = "priority"
ttl = 20
[[endpoints]]
name = "eu"
profile = "eu.tm.example.test."
min_child_endpoints = 2
[[endpoints]]
name = "us"
profile = "us.tm.example.test."
"#;

/// A child profile of [`PARENT`]: `one` at `a`, then `two` at `b`.
fn child(region: &str, a: &str, b: &str) -> ProfileToml {
    ProfileToml::new(&format!("{region}.tm.example.test."), "priority")
        .ttl(5)
        .set_monitor("protocol", "tcp")
        .set_monitor("port", 9)
        .endpoint("one", a)
        .endpoint("two", b)
}

#[test]
fn nested_profiles_roll_up() {
    let eu = child("eu", "192.0.2.1", "192.0.2.2");
    let us = child("us", "192.0.2.11", "192.0.2.12");
    let s = Fixture::new(
        "",
        &[
            ("global.toml", PARENT),
            ("eu.toml", &eu.build()),
            ("us.toml", &us.build()),
        ],
    )
    .start();
    let g = "global.tm.example.test.";
    let m = udp(s.v4(), g, RecordType::A);
    assert_eq!(addrs(&m), ["192.0.2.1"]);
    assert_eq!(m.answers[0].ttl, 20, "the parent's TTL");
    assert_eq!(m.answers[0].name.to_ascii(), g);
    // eu needs 2 Online children: one Degraded (and one still Checking)
    // makes the nested endpoint Degraded, so the US answers.
    s.set_status("eu.tm.example.test.", "one", Status::Degraded);
    s.set_status("eu.tm.example.test.", "two", Status::Online);
    assert_eq!(addrs(&udp(s.v4(), g, RecordType::A)), ["192.0.2.11"]);
    let global = |doc: &Value| {
        doc["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == g)
            .unwrap()
            .clone()
    };
    let (_, doc) = json(s.admin, "GET", "/api/v1/status", None);
    let nested = &global(&doc)["endpoints"][0];
    assert_eq!(
        (nested["name"].as_str(), nested["status"].as_str()),
        (Some("eu"), Some("Degraded"))
    );
    assert_eq!(nested["target"], "profile eu.tm.example.test.");
    s.set_status("eu.tm.example.test.", "one", Status::Online);
    assert_eq!(addrs(&udp(s.v4(), g, RecordType::A)), ["192.0.2.1"]);
    // A disabled child profile stops the nested endpoint.
    let fx = stop(s);
    std::fs::write(
        fx.dir.path().join("profiles/eu.toml"),
        eu.set("enabled", false).build(),
    )
    .unwrap();
    let s = fx.start();
    assert_eq!(addrs(&udp(s.v4(), g, RecordType::A)), ["192.0.2.11"]);
    let (_, doc) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(global(&doc)["endpoints"][0]["status"], "Stopped");
    // Explain follows the nesting.
    let (_, doc) = json(
        s.admin,
        "GET",
        "/api/v1/explain?name=global.tm.example.test",
        None,
    );
    let steps = doc["steps"].to_string();
    assert!(
        steps.contains("nested profile us.tm.example.test."),
        "{steps}"
    );
}

#[test]
fn token_reloads_explain_is_uncounted_and_browsers_cannot_write() {
    let fx = Fixture::new(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = { file = \"admin.token\" }",
        &[("todoapi.toml", TODOAPI)],
    );
    std::fs::write(fx.dir.path().join("admin.token"), "old-token").unwrap();
    let s = fx.start();
    // A changed token applies on reload.
    std::fs::write(s.dir().join("admin.token"), "new-token").unwrap();
    assert_eq!(
        http(s.admin, "POST", "/api/v1/reload", Some("old-token")).0,
        200
    );
    assert_eq!(
        http(s.admin, "POST", "/api/v1/reload", Some("old-token")).0,
        401
    );
    assert_eq!(
        http(s.admin, "POST", "/api/v1/reload", Some("new-token")).0,
        200
    );
    // Explain does not count as traffic.
    for _ in 0..5 {
        http(
            s.admin,
            "GET",
            "/api/v1/explain?name=todoapi.tm.example.test",
            None,
        );
    }
    let (_, doc) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(doc["profiles"][0]["endpoints"][0]["answers"], 0);
    // A browser page elsewhere cannot write, nor reach the API by another name.
    let raw = |req: String| {
        let mut c = TcpStream::connect(s.admin).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        c.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let cross = raw(format!(
        "POST /api/v1/reload HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nAuthorization: Bearer new-token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        s.admin
    ));
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    let rebound = raw(
        "GET /api/v1/status HTTP/1.1\r\nHost: evil.example:8053\r\nConnection: close\r\n\r\n"
            .into(),
    );
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    let same = raw(format!(
        "POST /api/v1/reload HTTP/1.1\r\nHost: {0}\r\nOrigin: http://{0}\r\nAuthorization: Bearer new-token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        s.admin
    ));
    assert!(same.starts_with("HTTP/1.1 200"), "{same}");
}

/// Disabling an endpoint that is already disabled changes nothing, and
/// the log says so rather than reporting a change.
#[test]
fn a_repeated_override_is_not_logged_as_a_change() {
    let p = Proc::start(Fixture::new("", &[("todoapi.toml", TODOAPI)]));
    let path = "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/disable";
    for _ in 0..2 {
        let (code, doc) = json(p.admin(), "POST", path, None);
        assert_eq!(code, 200, "{doc}");
        assert_eq!(doc["status"], "Disabled");
    }
    let log = p.log();
    assert_eq!(log.matches("runtime override changed").count(), 1, "{log}");
}
