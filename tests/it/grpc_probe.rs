//! The grpc probe against a real gRPC health server on loopback
//! (`grpc_backend.rs`): every outcome and failure reason of one probe, over
//! plaintext HTTP/2 and TLS, then the real server and prober moving DNS
//! answers as a backend's serving status changes or the server goes away.

use std::time::Duration;

use hickory_proto::rr::RecordType;
use switchyard::health::Status;
use switchyard::health::probe::{FailureKind, Outcome, Target};

use crate::backend::*;
use crate::grpc_backend::*;
use crate::harness::*;

/// A one-endpoint profile probed with `monitor` (TOML lines) at the
/// endpoint `endpoint` (TOML lines), and its probe.
fn target(monitor: &str, endpoint: &str) -> (Target, Fixture) {
    let profile = format!(
        "name = \"p.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\n{monitor}\n[[endpoints]]\nname = \"e\"\n{endpoint}\n"
    );
    let fx = Fixture::new("", &[("p.toml", &profile)]);
    let config = switchyard::config::load(&fx.config_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.probes.len(), 1);
    let spec = &config.probes[0];
    let tls = spec
        .tls
        .as_ref()
        .map(|k| switchyard::health::tls::client_config(k).unwrap());
    (Target::new(spec, tls).unwrap(), fx)
}

/// A grpc probe of 127.0.0.1:`port` with `extra` monitor lines.
fn grpc(port: u16, extra: &str) -> (Target, Fixture) {
    target(
        &format!(
            "protocol = \"grpc\"\nport = {port}\ntimeout = \"1s\"\ninterval = \"2s\"\n{extra}"
        ),
        "target = \"127.0.0.1\"",
    )
}

fn failed(o: &Outcome) -> (FailureKind, String) {
    let f = o
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("probe succeeded: {o:?}"));
    (f.kind, f.reason.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_statuses_and_grpc_errors_are_named() {
    let b = GrpcBackend::plaintext();
    let (t, _fx) = grpc(b.port(), "headers = { \"x-probe\" = \"yes\" }");
    let o = t.run().await;
    assert!(o.is_success(), "{o:?}");
    assert_eq!(o.http_status, None);
    // What went over the wire: the standard call, with the deadline and
    // the configured metadata.
    let call = b.calls().pop().unwrap();
    assert_eq!(call.service, "");
    assert_eq!(call.authority, format!("127.0.0.1:{}", b.port()));
    assert_eq!(call.headers["content-type"], "application/grpc");
    assert_eq!(call.headers["te"], "trailers");
    assert_eq!(call.headers["grpc-timeout"], "1000m");
    assert_eq!(call.headers["x-probe"], "yes");

    b.set("", ServingStatus::NotServing);
    let o = t.run().await;
    assert_eq!(failed(&o), (FailureKind::Status, "grpc NOT_SERVING".into()));
    b.set("", ServingStatus::Unknown);
    assert_eq!(failed(&t.run().await).1, "grpc UNKNOWN");

    // A named service: unknown to the server until it registers it.
    let (named, _fx2) = grpc(b.port(), "service = \"todo.v1.Api\"");
    assert_eq!(
        failed(&named.run().await),
        (
            FailureKind::Status,
            "grpc status 5 NOT_FOUND: unknown service".into()
        )
    );
    b.set("todo.v1.Api", ServingStatus::Serving);
    let o = named.run().await;
    assert!(o.is_success(), "{o:?}");
    assert_eq!(b.calls().pop().unwrap().service, "todo.v1.Api");
    // The server as a whole is still UNKNOWN: the service's status is its own.
    assert_eq!(failed(&t.run().await).1, "grpc UNKNOWN");

    // A gRPC server without the health service.
    b.without_health_service();
    assert_eq!(
        failed(&t.run().await).1,
        "grpc status 12 UNIMPLEMENTED: unknown service grpc.health.v1.Health"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_not_a_grpc_server_fails_precisely() {
    // Nothing listening.
    let (t, _fx) = grpc(closed_port(), "");
    assert_eq!(
        failed(&t.run().await),
        (FailureKind::Connect, "connect refused".into())
    );
    // An HTTP/1.1 server answers the HTTP/2 preface with an error page.
    let http = Backend::http(Mode::Ok);
    let (t, _fx) = grpc(http.port(), "");
    let (kind, reason) = failed(&t.run().await);
    assert_eq!(kind, FailureKind::Protocol, "{reason}");
    // Read first, its answer is no HTTP/2; or, racing it, the connection
    // the server closed (with our frames unread) is reset and the answer
    // lost: both say what to look at.
    assert!(
        (reason.starts_with("protocol: not an HTTP/2 server (")
            && reason.contains("HTTP/1.1 server?"))
            || reason.starts_with("protocol: connection closed before a complete response"),
        "{reason}"
    );
    // A server that accepts and never answers: the probe's own timeout.
    let hang = Backend::http(Mode::Hang);
    let (t, _fx) = target(
        &format!(
            "protocol = \"grpc\"\nport = {}\ntimeout = \"300ms\"\ninterval = \"1s\"",
            hang.port()
        ),
        "target = \"127.0.0.1\"",
    );
    let start = std::time::Instant::now();
    assert_eq!(failed(&t.run().await).1, "timeout");
    // Bounded by the timeout, not by the server: generous, as the test
    // runs on a loaded machine (a hang would be forever).
    assert!(start.elapsed() < Duration::from_millis(300 + 4_000));
    // One that resets.
    let reset = Backend::http(Mode::Reset);
    let (t, _fx) = target(
        &format!(
            "protocol = \"grpc\"\nport = {}\ntimeout = \"5s\"\ninterval = \"10s\"",
            reset.port()
        ),
        "target = \"127.0.0.1\"",
    );
    let (kind, reason) = failed(&t.run().await);
    assert!(
        kind == FailureKind::Connect || kind == FailureKind::Protocol,
        "{kind:?} {reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_over_tls_verifies_like_https() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let b = GrpcBackend::tls(&pki);
    let tls = |extra: String| grpc(b.port(), &format!("tls = true\n{extra}"));
    // Trusted CA, certificate valid for 127.0.0.1.
    let (t, _fx) = tls(format!("ca_cert = \"{}\"", ca.display()));
    let o = t.run().await;
    assert!(o.is_success(), "{o:?}");
    // By name: connect to the address, present and verify `localhost`,
    // which is also the :authority.
    let (t, _fx) = tls(format!(
        "ca_cert = \"{}\"\nheaders = {{ Host = \"localhost\" }}",
        ca.display()
    ));
    let o = t.run().await;
    assert!(o.is_success(), "{o:?}");
    assert_eq!(b.calls().pop().unwrap().authority, "localhost");
    // NOT_SERVING over TLS.
    b.set("", ServingStatus::NotServing);
    assert_eq!(failed(&t.run().await).1, "grpc NOT_SERVING");
    b.set("", ServingStatus::Serving);
    // A CA the prober does not trust.
    let (t, _fx) = tls(String::new());
    let (kind, reason) = failed(&t.run().await);
    assert_eq!(kind, FailureKind::Tls);
    assert!(
        reason.starts_with("tls: ") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    // Unverified.
    let (t, _fx) = tls("tls_verify = false".into());
    assert!(t.run().await.is_success());
    // Plaintext HTTP/2 to a TLS port, and TLS to a plaintext one.
    let (t, _fx) = grpc(b.port(), "");
    let (kind, reason) = failed(&t.run().await);
    assert_eq!(kind, FailureKind::Protocol, "{reason}");
    // The TLS server may answer the preface with an alert or just close:
    // either way the reason points at `tls`.
    assert!(
        reason.ends_with("for a TLS port, set `tls = true`")
            || reason.ends_with("(a TLS port? set `tls = true`)"),
        "{reason}"
    );
    let plain = GrpcBackend::plaintext();
    let (t, _fx) = grpc(plain.port(), "tls = true\ntls_verify = false");
    let (kind, reason) = failed(&t.run().await);
    assert_eq!(kind, FailureKind::Tls, "{reason}");
    assert!(reason.contains("the port does not speak TLS"), "{reason}");
    // An HTTPS server that negotiates no ALPN protocol and speaks HTTP/1.1.
    let https = Backend::https(Mode::Ok, &pki, false);
    let (t, _fx) = grpc(
        https.port(),
        &format!("tls = true\nca_cert = \"{}\"", ca.display()),
    );
    let (kind, reason) = failed(&t.run().await);
    assert_eq!(kind, FailureKind::Protocol, "{reason}");
    assert!(reason.contains("negotiated no ALPN protocol"), "{reason}");
}

/// Two endpoints probed over gRPC every 400 ms, deciding on one probe,
/// `monitor` lines added. The 300 ms timeout leaves room for a TLS
/// handshake of the debug build on a busy machine.
fn grpc_profile(primary: u16, secondary: u16, monitor: &[(&str, Toml)]) -> String {
    let probe = |port: u16| Toml::raw(format!("{{ address = \"127.0.0.1\", port = {port} }}"));
    let mut p = ProfileToml::new("todoapi.tm.example.test.", "priority")
        .ttl(1)
        .set_monitor("protocol", "grpc")
        .set_monitor("port", 1)
        .set_monitor("interval", "400ms")
        .set_monitor("timeout", "300ms")
        .set_monitor("tolerated_failures", 0)
        .set_monitor("required_successes", 1)
        .endpoint("primary", "203.0.113.10")
        .set_endpoint("primary", "priority", 1)
        .set_endpoint("primary", "probe", probe(primary))
        .endpoint("secondary", "198.51.100.20")
        .set_endpoint("secondary", "priority", 2)
        .set_endpoint("secondary", "probe", probe(secondary));
    for (k, v) in monitor {
        p = p.set_monitor(k, v.clone());
    }
    p.build()
}

fn answer(s: &TestServer) -> String {
    addrs(&udp(s.v4(), "todoapi.tm.example.test.", RecordType::A))
        .pop()
        .unwrap_or_default()
}

fn status_of(s: &TestServer, endpoint: &str) -> Status {
    let table = s.shared.serving.table.load();
    table
        .endpoints
        .iter()
        .find(|e| &*e.name == endpoint)
        .unwrap()
        .status()
}

/// The primary's last probe error, as the status API shows it.
fn last_error(s: &TestServer) -> String {
    let (_, doc) = json(s.admin, "GET", "/api/v1/status", None);
    doc["profiles"][0]["endpoints"][0]["last_probe"]["error"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn serving_status_moves_dns_answers() {
    let primary = GrpcBackend::plaintext();
    let secondary = GrpcBackend::plaintext();
    for b in [&primary, &secondary] {
        b.set("todo.v1.Api", ServingStatus::Serving);
    }
    let profile = grpc_profile(
        primary.port(),
        secondary.port(),
        &[("service", "todo.v1.Api".into())],
    );
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start_probing();
    wait_until(Duration::from_secs(5), || {
        status_of(&s, "primary") == Status::Online && status_of(&s, "secondary") == Status::Online
    })
    .expect("both Online");
    assert_eq!(answer(&s), "203.0.113.10");
    assert!(primary.calls().iter().all(|c| c.service == "todo.v1.Api"));

    // The service stops serving (the server as a whole still would).
    primary.set("todo.v1.Api", ServingStatus::NotServing);
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20").expect("no failover");
    assert_eq!(status_of(&s, "primary"), Status::Degraded);
    wait_until(Duration::from_secs(5), || {
        last_error(&s) == "grpc NOT_SERVING"
    })
    .unwrap_or_else(|| panic!("last error: {}", last_error(&s)));

    primary.set("todo.v1.Api", ServingStatus::Serving);
    wait_until(Duration::from_secs(5), || answer(&s) == "203.0.113.10").expect("no failback");

    // The server forgets the service: the name is honoured, not the
    // server's overall SERVING.
    primary.remove("todo.v1.Api");
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20").expect("no failover");
    wait_until(Duration::from_secs(5), || {
        last_error(&s) == "grpc status 5 NOT_FOUND: unknown service"
    })
    .unwrap_or_else(|| panic!("last error: {}", last_error(&s)));

    // The server goes away.
    primary.set("todo.v1.Api", ServingStatus::Serving);
    wait_until(Duration::from_secs(5), || answer(&s) == "203.0.113.10").expect("no failback");
    drop(primary);
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20")
        .expect("no failover when the server is gone");
    assert_eq!(status_of(&s, "primary"), Status::Degraded);
    wait_until(Duration::from_secs(5), || {
        last_error(&s) == "connect refused"
    })
    .unwrap_or_else(|| panic!("last error: {}", last_error(&s)));
}

#[test]
fn over_tls_not_serving_and_server_gone_fail_over() {
    let pki = Pki::new();
    let primary = GrpcBackend::tls(&pki);
    let secondary = GrpcBackend::tls(&pki);
    let ca = pki.path("ca.pem").display().to_string();
    let profile = grpc_profile(
        primary.port(),
        secondary.port(),
        &[("tls", Toml::raw("true")), ("ca_cert", ca.as_str().into())],
    );
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start_probing();
    wait_until(Duration::from_secs(5), || {
        status_of(&s, "primary") == Status::Online && status_of(&s, "secondary") == Status::Online
    })
    .expect("both Online over TLS");
    assert_eq!(answer(&s), "203.0.113.10");

    primary.set("", ServingStatus::NotServing);
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20").expect("no failover");
    wait_until(Duration::from_secs(5), || {
        last_error(&s) == "grpc NOT_SERVING"
    })
    .unwrap_or_else(|| panic!("last error: {}", last_error(&s)));
    primary.set("", ServingStatus::Serving);
    wait_until(Duration::from_secs(5), || answer(&s) == "203.0.113.10").expect("no failback");

    drop(primary);
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20")
        .expect("no failover when the server is gone");
    assert_eq!(status_of(&s, "primary"), Status::Degraded);
}

/// Keys that mean nothing to a grpc probe, and grpc keys elsewhere: every
/// one reported by one `switchyard check`, with file, line and field.
#[test]
fn check_reports_every_misplaced_key() {
    let grpc = "name = \"g.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"grpc\"\npath = \"/health\"\nkey = \"k\"\nexpected_status = [200]\nbody_match = \"OK\"\nca_cert = \"ca.pem\"\nheaders = { \"grpc-timeout\" = \"1S\", te = \"x\" }\nservice = \"bad name\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n";
    // A right monitor: the endpoint's own probe keys are checked too.
    let endpoint = "name = \"e.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"grpc\"\nport = 50051\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\nprobe = { path = \"/x\", headers = { Connection = \"close\" } }\n";
    let http = "name = \"h.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\ntls = true\nservice = \"api\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n";
    let fx = Fixture::new(
        "",
        &[("g.toml", grpc), ("h.toml", http), ("e.toml", endpoint)],
    );
    std::fs::write(fx.dir.path().join("profiles").join("ca.pem"), "").unwrap();
    let out = std::process::Command::new(bin())
        .arg("check")
        .arg("--config")
        .arg(fx.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for expected in [
        "g.toml:3:1: monitor.port: grpc probes need a port",
        "g.toml:5:8: monitor.path: grpc probes have no path",
        "g.toml:6:7: monitor.key: grpc probes send no key",
        "g.toml:7:19: monitor.expected_status: grpc probes pass on SERVING",
        "g.toml:8:14: monitor.body_match: grpc probes have no body to match",
        "g.toml:9:11: monitor.ca_cert: CA certificates need TLS: set `tls = true`",
        "g.toml:10:30: monitor.headers.grpc-timeout: names starting with `grpc-` are reserved by gRPC",
        "g.toml:10:41: monitor.headers.te: set by the gRPC probe itself",
        "g.toml:11:11: monitor.service: must not contain spaces",
        "e.toml:9:18: endpoints[0].probe.path: grpc probes have no path",
        "e.toml:9:49: endpoints[0].probe.headers.Connection: HTTP/2 forbids connection-specific headers",
        "h.toml:5:7: monitor.tls: `tls` is for protocol = \"grpc\"; HTTP over TLS is protocol = \"https\"",
        "h.toml:6:11: monitor.service: `service` is for protocol = \"grpc\"",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
}
