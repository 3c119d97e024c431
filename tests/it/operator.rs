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
        let (code, doc) = crate::admin::json(
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
