//! What an on-call operator needs (issue 13), through the real server.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::*;
use switchyard::health::Status;

const NAME: &str = "todoapi.tm.example.test.";

fn ttls(s: &TestServer) -> Vec<u32> {
    udp(s.v4(), NAME, RecordType::A)
        .answers
        .iter()
        .map(|r| r.ttl)
        .collect()
}

/// `ttl_degraded`: the shorter TTL while an endpoint is not Online, and
/// for `ttl` seconds after any status change; `ttl` once settled; explain
/// says which and why.
#[test]
fn ttl_degraded_while_unsettled_and_after_a_change() {
    let profile = ProfileToml::todoapi().ttl(2).set("ttl_degraded", 1).build();
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start();
    // Not probed yet: CheckingEndpoint is not Online.
    assert_eq!(ttls(&s), [1]);
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    // Just changed: still short.
    assert_eq!(ttls(&s), [1]);
    // Settled after `ttl` seconds without a change.
    let start = Instant::now();
    while ttls(&s) != [2] {
        assert!(start.elapsed() < Duration::from_secs(5), "never settled");
        std::thread::sleep(Duration::from_millis(100));
    }
    let explain = |s: &TestServer| {
        let (code, doc) = json(
            s.admin,
            "GET",
            "/api/v1/explain?name=todoapi.tm.example.test&type=A",
            None,
        );
        assert_eq!(code, 200, "{doc}");
        doc["steps"].to_string()
    };
    let steps = explain(&s);
    assert!(
        steps.contains("TTL 2 (ttl): every endpoint is Online and none changed in the last 2s"),
        "{steps}"
    );
    // The secondary fails: the answer stays the primary, with the short TTL.
    s.set_status(NAME, "secondary", Status::Degraded);
    let m = udp(s.v4(), NAME, RecordType::A);
    assert_eq!(addrs(&m), ["203.0.113.10"]);
    assert_eq!(m.answers[0].ttl, 1);
    let steps = explain(&s);
    assert!(
        steps.contains("TTL 1 (ttl_degraded): endpoint secondary is Degraded"),
        "{steps}"
    );
    // Over TCP too.
    assert_eq!(tcp(s.v4(), NAME, RecordType::A).answers[0].ttl, 1);
    // Without ttl_degraded nothing changes: always `ttl`.
    let plain = Fixture::new(
        "",
        &[("todoapi.toml", &ProfileToml::todoapi().ttl(2).build())],
    )
    .start();
    assert_eq!(ttls(&plain), [2]);
}

/// `sticky = "client-subnet"`: each client network keeps its endpoint
/// (ECS /24, scope echoed), networks spread by weight, and when an
/// endpoint goes down only its networks move.
#[test]
fn sticky_weights_keep_a_network_on_its_endpoint() {
    use crate::geo::{ecs_option, query_with_option};
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let mut p = ProfileToml::new("canary.tm.example.test.", "weighted")
        .set("sticky", "client-subnet")
        .set_monitor("protocol", "tcp")
        .set_monitor("port", 9);
    for i in 1..=4 {
        p = p
            .endpoint(&format!("e{i}"), &format!("192.0.2.{i}"))
            .set_endpoint(&format!("e{i}"), "weight", 1);
    }
    let s = Fixture::new("", &[("canary.toml", &p.build())]).start();
    let name = "canary.tm.example.test.";
    for i in 1..=4 {
        s.set_status(name, &format!("e{i}"), Status::Online);
    }
    let ask = |net: &str, prefix: u8| -> (String, Option<u8>) {
        let q = query_with_option(name, RecordType::A, &ecs_option(net, prefix));
        let m = Message::from_vec(&udp_raw(s.v4(), &q, TIMEOUT).unwrap()).unwrap();
        let scope = match m.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
            Some(EdnsOption::Subnet(c)) => Some(c.scope_prefix()),
            _ => None,
        };
        (addrs(&m).pop().unwrap_or_default(), scope)
    };
    let nets: Vec<String> = (0..64).map(|i| format!("198.51.{i}.0")).collect();
    let hosts: Vec<String> = (0..64).map(|i| format!("198.51.{i}.77")).collect();
    let first: Vec<String> = nets.iter().map(|n| ask(n, 24).0).collect();
    for ((n, host), a) in nets.iter().zip(&hosts).zip(&first) {
        for _ in 0..3 {
            assert_eq!(
                ask(n, 24),
                (a.clone(), Some(24)),
                "{n} moved without a change"
            );
        }
        // A /32 inside the /24 is the same network; the scope says /24.
        assert_eq!(ask(host, 32), (a.clone(), Some(24)), "{host}");
    }
    let spread: std::collections::BTreeSet<&String> = first.iter().collect();
    assert_eq!(spread.len(), 4, "64 networks over 4 endpoints: {first:?}");
    // e2 goes down: its networks move, every other network stays.
    s.set_status(name, "e2", Status::Degraded);
    for (n, a) in nets.iter().zip(&first) {
        let now = ask(n, 24).0;
        if a == "192.0.2.2" {
            assert_ne!(now, "192.0.2.2", "{n}");
        } else {
            assert_eq!(&now, a, "{n}: only e2's networks move");
        }
    }
    // Back up: every network is where it was.
    s.set_status(name, "e2", Status::Online);
    let again: Vec<String> = nets.iter().map(|n| ask(n, 24).0).collect();
    assert_eq!(again, first);
}

#[test]
fn sticky_is_for_weighted_and_multivalue_only() {
    let p = ProfileToml::todoapi()
        .set("sticky", "client-subnet")
        .build();
    let fx = Fixture::new("", &[("todoapi.toml", &p)]);
    let err = switchyard::config::load(&fx.config_path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sticky: only weighted and multivalue routing use it, not priority"),
        "{err}"
    );
}

/// The guard says what routing would answer, not its own reading of
/// `on_all_down`: with `on_all_down` naming the very endpoint disabled,
/// routing answers NODATA (an operator's "never answer this" wins), and so
/// does the guard (it said "endpoint primary (on_all_down)").
#[test]
fn the_guard_says_what_routing_would_answer() {
    let p = ProfileToml::todoapi().set("on_all_down", "primary").build();
    let s = Fixture::new("", &[("todoapi.toml", &p)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Degraded);
    let path = "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/disable";
    let (code, doc) = json(s.admin, "POST", path, None);
    assert_eq!(code, 409, "{doc}");
    let msg = doc["error"].as_str().unwrap();
    assert!(
        msg.contains("the profile would answer NODATA, since on_all_down = primary applies, but primary is taken out"),
        "{msg}"
    );
    // And routing does: forced, the answer is NODATA.
    let (code, doc) = json(s.admin, "POST", &format!("{path}?force=1"), None);
    assert_eq!(code, 200, "{doc}");
    let m = udp(s.v4(), NAME, RecordType::A);
    assert!(addrs(&m).is_empty(), "{m:?}");
    assert_eq!(
        m.metadata.response_code,
        hickory_proto::op::ResponseCode::NoError
    );
}

/// The guard: disabling the last answerable endpoint of a profile is
/// refused (409) with what the profile would answer instead, unless
/// forced; the CLI says the same and takes `--force`.
#[test]
fn disabling_the_last_answerable_endpoint_needs_force() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Degraded);
    let path = "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/disable";
    let (code, doc) = json(s.admin, "POST", path, None);
    assert_eq!(code, 409, "{doc}");
    let msg = doc["error"].as_str().unwrap();
    assert!(
        msg.contains("primary is the last answerable endpoint of todoapi.tm.example.test.")
            && msg.contains(
                "would answer secondary (198.51.100.20), since on_all_down = serve-all applies: route as if the Degraded were Online"
            ),
        "{msg}"
    );
    assert_eq!(
        addrs(&udp(s.v4(), NAME, RecordType::A)),
        ["203.0.113.10"],
        "unchanged"
    );
    // The CLI says so, and --force does it.
    let cli = |extra: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("--admin")
            .arg(s.admin.to_string())
            .args(["endpoint", "disable", NAME, "primary"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = cli(&[]);
    assert!(
        !ok && text.contains("refused: primary is the last answerable endpoint"),
        "{text}"
    );
    let (ok, text) = cli(&["--force"]);
    assert!(ok, "{text}");
    // Fail-open now answers the Degraded secondary.
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
    // With another endpoint answerable there is nothing to refuse.
    s.set_status(NAME, "secondary", Status::Online);
    let (code, doc) = json(
        s.admin,
        "POST",
        "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/enable",
        None,
    );
    assert_eq!(code, 200, "{doc}");
    let (code, doc) = json(s.admin, "POST", path, None);
    assert_eq!(code, 200, "{doc}");
}
