//! Pushed health: `PUT /api/v1/health/{profile}/{endpoint}` and
//! Alertmanager webhooks (`POST /api/v1/alertmanager`, payloads in
//! Alertmanager's webhook format, version 4) against the real binary,
//! alone and in a two-node cluster, answering over DNS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::backend::*;
use crate::harness::*;

const NAME: &str = "shop.tm.example.test.";
const TOKEN: &str = "push-test-token";

/// An HTTP/1.1 request with a body, as a client would send it.
pub(crate) fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

fn answer(p: &Proc) -> String {
    addrs(&udp(p.v4(), NAME, RecordType::A))
        .pop()
        .unwrap_or_default()
}

fn endpoint(p: &Proc, name: &str) -> Value {
    let (code, body) = http(p.admin(), "GET", "/api/v1/status", None);
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["profiles"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()
        .clone()
}

/// The API monitor on each endpoint and, on both, a push monitor that
/// Alertmanager and operators set.
fn shop(api_primary: u16, api_secondary: u16, on_stale: &str) -> String {
    let fast = "interval = \"200ms\"\ntimeout = \"150ms\"\ntolerated_failures = 0\n";
    format!(
        "name = \"{NAME}\"\nrouting = \"priority\"\nttl = 1\n\
         [[monitors]]\nname = \"api\"\nprotocol = \"http\"\npath = \"/health\"\n{fast}\
         [[monitors]]\nname = \"alerts\"\nprotocol = \"push\"\non_stale = \"{on_stale}\"\nttl = \"10m\"\n\
         [[endpoints]]\nname = \"primary\"\ntarget = \"203.0.113.10\"\nprobe = {{ address = \"127.0.0.1\", port = {api_primary} }}\n\
         [[endpoints]]\nname = \"secondary\"\ntarget = \"203.0.113.20\"\nprobe = {{ address = \"127.0.0.1\", port = {api_secondary} }}\n"
    )
}

/// An Alertmanager webhook payload (version 4), as Alertmanager sends it.
fn alertmanager_payload(status: &str, alerts: Vec<Value>) -> String {
    json!({
        "receiver": "switchyard",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "page"},
        "commonAnnotations": {"summary": "5xx above 5%"},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0
    })
    .to_string()
}

fn alert(status: &str, labels: Value, fingerprint: &str) -> Value {
    json!({
        "status": status,
        "labels": labels,
        "annotations": {"summary": "5xx above 5%"},
        "startsAt": "2026-12-07T04:00:00.000Z",
        "endsAt": if status == "resolved" { "2026-12-07T04:10:00.000Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=rate",
        "fingerprint": fingerprint
    })
}

fn wait_answer(p: &Proc, want: &str) {
    wait_until(Duration::from_secs(20), || answer(p) == want).unwrap_or_else(|| {
        panic!(
            "not answering {want}: {} / {}",
            endpoint(p, "primary"),
            p.log()
        )
    });
}

#[test]
fn pushes_and_alerts_take_an_endpoint_out_and_back() {
    let api_p = Backend::http(Mode::Ok);
    let api_s = Backend::http(Mode::Ok);
    let extra = format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n");
    let p = Proc::start(Fixture::new(
        &extra,
        &[("shop.toml", &shop(api_p.port(), api_s.port(), "up"))],
    ));
    wait_until(Duration::from_secs(20), || {
        endpoint(&p, "primary")["status"] == "Online"
            && endpoint(&p, "secondary")["status"] == "Online"
    })
    .unwrap_or_else(|| panic!("not Online: {}", p.log()));
    wait_answer(&p, "203.0.113.10");
    let admin = p.admin();
    let put = |path: &str, token: Option<&str>, body: &str| send(admin, "PUT", path, token, body);

    // Bad pushes: clear errors, nothing changes.
    let path = "/api/v1/health/shop.tm.example.test/primary";
    assert_eq!(put(path, None, r#"{"status":"Degraded"}"#).0, 401);
    let (code, body) = put(
        "/api/v1/health/shop.tm.example.test/nowhere",
        Some(TOKEN),
        r#"{"status":"Degraded"}"#,
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no endpoint `nowhere`"), "{body}");
    let (code, body) = put(path, Some(TOKEN), r#"{"status":"Held"}"#);
    assert!(
        code == 400 && body.contains("\\\"Online\\\" or \\\"Degraded\\\""),
        "{code} {body}"
    );
    let (code, body) = put(
        path,
        Some(TOKEN),
        r#"{"status":"Degraded","ttl":"10 years"}"#,
    );
    assert!(
        code == 400 && body.contains("between 1s and 7d"),
        "{code} {body}"
    );
    let (code, body) = put(path, Some(TOKEN), "not json");
    assert!(
        code == 400 && body.contains("must be JSON"),
        "{code} {body}"
    );
    let big = format!(
        r#"{{"status":"Degraded","reason":"{}"}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(put(path, Some(TOKEN), &big).0, 413);
    assert_eq!(answer(&p), "203.0.113.10");
    assert_eq!(endpoint(&p, "primary")["status"], "Online");

    // A push with a short time to live: out, then back by itself
    // (on_stale = "up").
    let (code, body) = put(
        path,
        Some(TOKEN),
        r#"{"status":"Degraded","ttl":"3s","reason":"deploy in progress"}"#,
    );
    assert_eq!(code, 200, "{body}");
    wait_answer(&p, "203.0.113.20");
    let e = endpoint(&p, "primary");
    let why = e["why"].as_str().unwrap();
    assert!(
        why.contains("alerts (push: pushed Degraded until ")
            && why.contains("deploy in progress (by admin API)); api ok"),
        "{why}"
    );
    assert_eq!(
        endpoint(&p, "secondary")["status"],
        "Online",
        "another endpoint is untouched"
    );
    wait_answer(&p, "203.0.113.10");
    assert!(
        endpoint(&p, "primary")["monitors"]["monitors"][1]["pushed"]
            .as_str()
            .unwrap()
            .contains("push expired at")
    );

    // Alertmanager: a firing alert for the primary, and one without the
    // labels (rejected, counted); then the alert resolves.
    let labels = json!({"alertname": "HighErrorRate", "severity": "page",
        "switchyard_profile": "shop.tm.example.test", "switchyard_endpoint": "primary"});
    let firing = alertmanager_payload(
        "firing",
        vec![
            alert("firing", labels.clone(), "c7e2d1f0a1b2c3d4"),
            alert(
                "firing",
                json!({"alertname": "DiskFull"}),
                "0a0b0c0d0e0f0102",
            ),
        ],
    );
    let (code, body) = send(admin, "POST", "/api/v1/alertmanager", Some(TOKEN), &firing);
    assert_eq!(code, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["accepted"], 1, "{reply}");
    assert_eq!(reply["rejected"][0]["alert"], "DiskFull", "{reply}");
    assert!(
        reply["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("switchyard_profile")
    );
    wait_answer(&p, "203.0.113.20");
    assert!(
        endpoint(&p, "primary")["why"]
            .as_str()
            .unwrap()
            .contains("alert HighErrorRate firing: 5xx above 5%")
    );
    let resolved = alertmanager_payload(
        "resolved",
        vec![alert("resolved", labels, "c7e2d1f0a1b2c3d4")],
    );
    assert_eq!(
        send(
            admin,
            "POST",
            "/api/v1/alertmanager",
            Some(TOKEN),
            &resolved
        )
        .0,
        200
    );
    wait_answer(&p, "203.0.113.10");
    let (code, body) = send(
        admin,
        "POST",
        "/api/v1/alertmanager",
        Some(TOKEN),
        "{\"nope\": 1}",
    );
    assert_eq!(code, 400, "{body}");
    let (_, metrics) = http(admin, "GET", "/metrics", None);
    for line in [
        "switchyard_health_pushes_total{via=\"alertmanager\",result=\"accepted\"} 2",
        "switchyard_health_pushes_total{via=\"alertmanager\",result=\"rejected\"} 2",
        "switchyard_health_pushes_total{via=\"api\",result=\"accepted\"} 1",
    ] {
        assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    }
    assert!(p.log().contains("alert rejected"), "{}", p.log());
}

#[test]
fn a_push_to_one_node_counts_on_every_node() {
    use crate::cluster::{KEY, free_udp_port, node_fixture_full};
    let api_p = Backend::http(Mode::Ok);
    let api_s = Backend::http(Mode::Ok);
    let ports = [free_udp_port(), free_udp_port()];
    let profile = shop(api_p.port(), api_s.port(), "last");
    let start = |n: usize| {
        let fx = node_fixture_full(n, &ports, KEY, "", "", "");
        std::fs::write(fx.dir.path().join("profiles/todoapi.toml"), &profile).unwrap();
        Proc::start(fx)
    };
    let (ns1, ns2) = (start(1), start(2));
    // on_stale = "last": CheckingEndpoint before the first push, answered.
    for p in [&ns1, &ns2] {
        wait_answer(p, "203.0.113.10");
    }
    let (code, body) = send(
        ns1.admin(),
        "PUT",
        "/api/v1/health/shop.tm.example.test/primary?monitor=alerts",
        None,
        r#"{"status":"Degraded","ttl":"2s","reason":"maintenance"}"#,
    );
    assert_eq!(code, 200, "{body}");
    // Both nodes take it out; after the ttl, "last" keeps it out.
    for p in [&ns1, &ns2] {
        wait_answer(p, "203.0.113.20");
    }
    wait_until(Duration::from_secs(20), || {
        endpoint(&ns2, "primary")["why"]
            .as_str()
            .unwrap()
            .contains("push expired at")
    })
    .unwrap_or_else(|| panic!("{}", endpoint(&ns2, "primary")));
    assert_eq!(answer(&ns2), "203.0.113.20");
    // An Online push on the other node brings it back on both.
    let (code, _) = send(
        ns2.admin(),
        "PUT",
        "/api/v1/health/shop.tm.example.test/primary",
        None,
        r#"{"status":"Online","ttl":"1h"}"#,
    );
    assert_eq!(code, 200);
    for p in [&ns1, &ns2] {
        wait_answer(p, "203.0.113.10");
    }
}
