//! The prober against real backends: every probe kind and failure reason,
//! then failover and failback over real DNS with the real prober running.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use switchyard::health::probe::{FailureKind, Outcome, Target};

use crate::backend::*;
use crate::harness::*;

/// Loads a one-endpoint profile with `monitor` and `endpoint` TOML lines and
/// returns its probe.
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

fn http_target(port: u16, extra: &str) -> (Target, Fixture) {
    target(
        &format!(
            "protocol = \"http\"\nport = {port}\ntimeout = \"400ms\"\ninterval = \"1s\"\n{extra}"
        ),
        "target = \"127.0.0.1\"",
    )
}

async fn run(t: &Target) -> (Outcome, Duration) {
    let start = Instant::now();
    let o = t.run().await;
    (o, start.elapsed())
}

fn failed(o: &Outcome) -> (FailureKind, String) {
    let f = o
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("probe succeeded: {o:?}"));
    (f.kind, f.reason.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn http_success_and_request_details() {
    let b = Backend::http(Mode::Ok);
    let (t, _fx) = target(
        &format!(
            "protocol = \"http\"\nport = {}\npath = \"/Health/{{key}}\"\nkey = \"s3cret key/1\"\nheaders = {{ \"X-Probe\" = \"yes\" }}",
            b.port()
        ),
        "target = \"api.example.com\"\nprobe = { address = \"127.0.0.1\" }",
    );
    let (o, _) = run(&t).await;
    assert!(o.is_success(), "{o:?}");
    assert_eq!(o.http_status, Some(200));
    let head = b.requests.lock().unwrap()[0].clone();
    // The key is substituted (percent-encoded) into the path.
    assert!(
        head.starts_with("GET /Health/s3cret%20key%2F1 HTTP/1.1\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    // Host defaults to the endpoint's host name even when probing an address.
    assert!(lower.contains("\r\nhost: api.example.com:"), "{head}");
    assert!(lower.contains("\r\nx-probe: yes\r\n"), "{head}");
    assert!(lower.contains("user-agent: switchyard-probe/"), "{head}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failure_reasons_are_precise_and_bounded_by_the_timeout() {
    let cases = [
        (Mode::Unavailable, "", FailureKind::Status, "status 503"),
        (Mode::Redirect, "", FailureKind::Status, "status 301"),
        (Mode::Hang, "", FailureKind::Timeout, "timeout"),
        (
            Mode::Trickle,
            "body_match = \"HealthCheck OK\"",
            FailureKind::Timeout,
            "timeout",
        ),
        (Mode::Garbage, "", FailureKind::Protocol, "protocol: "),
        (
            Mode::Ok,
            "body_match = \"All good\"",
            FailureKind::Body,
            "body mismatch",
        ),
        (
            Mode::Ok,
            "expected_status = [\"500-599\"]",
            FailureKind::Status,
            "status 200",
        ),
    ];
    for (mode, extra, kind, reason) in cases {
        let b = Backend::http(mode);
        let (t, _fx) = http_target(b.port(), extra);
        let (o, took) = run(&t).await;
        let (k, r) = failed(&o);
        assert_eq!(k, kind, "{mode:?} {extra}: {r}");
        assert!(
            r.starts_with(reason),
            "{mode:?}: `{r}` should start with `{reason}`"
        );
        assert!(took < Duration::from_millis(600), "{mode:?} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resets_and_refusals() {
    let b = Backend::http(Mode::Reset);
    let (t, _fx) = http_target(b.port(), "");
    let (o, _) = run(&t).await;
    let (_, r) = failed(&o);
    assert!(r.contains("reset") || r.contains("closed"), "{r}");

    let (t, _fx) = http_target(closed_port(), "");
    let (o, took) = run(&t).await;
    assert_eq!(
        failed(&o),
        (FailureKind::Connect, "connect refused".to_string())
    );
    assert!(took < Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_body_is_never_read_whole() {
    let b = Backend::http(Mode::Huge);
    // Status only: the body is not read at all.
    let (t, _fx) = http_target(b.port(), "");
    let (o, took) = run(&t).await;
    assert!(o.is_success(), "{o:?}");
    assert!(took < Duration::from_millis(300), "{took:?}");
    // body_match: only the first 64 KiB are searched.
    let (t, _fx) = http_target(b.port(), "body_match = \"needle\"");
    let (o, took) = run(&t).await;
    let (k, r) = failed(&o);
    assert_eq!(k, FailureKind::Body);
    assert!(r.contains("65536 bytes"), "{r}");
    assert!(took < Duration::from_millis(400), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_verification_and_client_certificates() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let b = Backend::https(Mode::Ok, &pki, false);
    let https = |extra: String| {
        target(
            &format!(
                "protocol = \"https\"\nport = {}\ntimeout = \"1s\"\ninterval = \"2s\"\n{extra}",
                b.port()
            ),
            "target = \"127.0.0.1\"",
        )
    };
    // Trusted CA, certificate valid for 127.0.0.1.
    let (t, _fx) = https(format!("ca_cert = \"{}\"", ca.display()));
    let (o, _) = run(&t).await;
    assert!(o.is_success(), "{o:?}");
    // Verified by name: connect to the address, present `localhost`.
    let (t, _fx) = https(format!(
        "ca_cert = \"{}\"\nheaders = {{ Host = \"localhost\" }}",
        ca.display()
    ));
    assert!(run(&t).await.0.is_success());
    // A name the certificate does not cover.
    let (t, _fx) = https(format!(
        "ca_cert = \"{}\"\nheaders = {{ Host = \"other.example\" }}",
        ca.display()
    ));
    let (o, _) = run(&t).await;
    let (k, r) = failed(&o);
    assert_eq!(k, FailureKind::Tls, "{r}");
    assert!(r.starts_with("tls: invalid peer certificate"), "{r}");
    assert!(r.contains("set a `Host` header"), "plain words: {r}");
    // Unknown CA.
    let (t, _fx) = https(String::new());
    let (o, _) = run(&t).await;
    let (k, r) = failed(&o);
    assert_eq!(k, FailureKind::Tls);
    assert!(r.contains("UnknownIssuer"), "{r}");
    assert!(
        r.contains("for a private CA, set `ca_cert`"),
        "plain words: {r}"
    );
    // Unverified.
    let (t, _fx) = https("tls_verify = false".into());
    assert!(run(&t).await.0.is_success());

    // Mutual TLS.
    let m = Backend::https(Mode::Ok, &pki, true);
    let mtls = |extra: String| {
        target(
            &format!(
                "protocol = \"https\"\nport = {}\ntimeout = \"1s\"\ninterval = \"2s\"\nca_cert = \"{}\"\n{extra}",
                m.port(),
                ca.display()
            ),
            "target = \"127.0.0.1\"",
        )
    };
    let (t, _fx) = mtls(String::new());
    let (o, _) = run(&t).await;
    assert!(!o.is_success(), "no client certificate must fail: {o:?}");
    let (t, _fx) = mtls(format!(
        "client_cert = \"{}\"\nclient_key = \"{}\"",
        pki.path("client.pem").display(),
        pki.path("client.key").display()
    ));
    let (o, _) = run(&t).await;
    assert!(o.is_success(), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_probes() {
    let b = Backend::http(Mode::Hang);
    let tcp = |port: u16| {
        target(
            &format!("protocol = \"tcp\"\nport = {port}\ntimeout = \"300ms\"\ninterval = \"1s\""),
            "target = \"127.0.0.1\"",
        )
    };
    let (t, _fx) = tcp(b.port());
    assert!(run(&t).await.0.is_success());
    let (t, _fx) = tcp(closed_port());
    assert_eq!(failed(&run(&t).await.0).1, "connect refused");
}

/// A todoapi-style profile whose endpoints are probed on loopback backends.
fn drill_profile(primary: u16, secondary: u16, interval: &str, timeout: &str) -> ProfileToml {
    ProfileToml::new("todoapi.tm.example.test.", "priority")
        .ttl(1)
        .set_monitor("protocol", "http")
        .set_monitor("path", "/Health/{key}")
        .set_monitor("key", "drill-key")
        .set_monitor("interval", interval)
        .set_monitor("timeout", timeout)
        .set_monitor("tolerated_failures", 0)
        .set_monitor("required_successes", 1)
        .endpoint("primary", "203.0.113.10")
        .set_endpoint("primary", "probe", probe(primary))
        .endpoint("secondary", "198.51.100.20")
        .set_endpoint("secondary", "probe", probe(secondary))
}

/// An endpoint's `probe`: a backend on loopback.
fn probe(port: u16) -> Toml {
    Toml::raw(format!("{{ address = \"127.0.0.1\", port = {port} }}"))
}

fn answer(s: &TestServer) -> String {
    addrs(&udp(s.v4(), "todoapi.tm.example.test.", RecordType::A))
        .pop()
        .unwrap_or_default()
}

#[test]
fn failover_and_failback_follow_health_over_dns() {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let profile = drill_profile(primary.port(), secondary.port(), "200ms", "100ms").build();
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start_probing();
    // First probes go out at start-up, not an interval later.
    assert!(wait_until(Duration::from_millis(150), || primary.request_count() > 0).is_some());
    assert_eq!(answer(&s), "203.0.113.10");

    primary.set(Mode::Unavailable);
    let took =
        wait_until(Duration::from_secs(3), || answer(&s) == "198.51.100.20").expect("no failover");
    // Worst case is one interval plus the probe.
    assert!(took < Duration::from_millis(600), "failover took {took:?}");

    primary.set(Mode::Ok);
    wait_until(Duration::from_secs(3), || answer(&s) == "203.0.113.10").expect("no failback");

    // A hanging primary fails over within interval + timeout (+ slack),
    // while DNS keeps answering at once.
    primary.set(Mode::Hang);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    wait_until(Duration::from_secs(3), || {
        let q = Instant::now();
        let a = answer(&s);
        slowest = slowest.max(q.elapsed());
        a == "198.51.100.20"
    })
    .expect("no failover on hang");
    assert!(start.elapsed() < Duration::from_millis(200 + 100 + 300));
    assert!(
        slowest < Duration::from_millis(100),
        "a DNS answer took {slowest:?}"
    );

    // Both down: fail open to the primary.
    secondary.set(Mode::Unavailable);
    primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(3), || {
        let st = s.shared.serving.table.load();
        st.endpoints
            .iter()
            .all(|e| e.status() == switchyard::health::Status::Degraded)
    })
    .expect("both degraded");
    assert_eq!(answer(&s), "203.0.113.10");
}

#[test]
fn identical_probes_are_shared_across_profiles() {
    let b = Backend::http(Mode::Ok);
    let profile = |name: &str| {
        format!(
            "name = \"{name}.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\nport = {}\ninterval = \"100ms\"\ntimeout = \"50ms\"\n[[endpoints]]\nname = \"e\"\ntarget = \"127.0.0.1\"\n",
            b.port()
        )
    };
    let (a, c) = (profile("a"), profile("c"));
    let fx = Fixture::new("", &[("a.toml", &a), ("c.toml", &c)]);
    let config = switchyard::config::load(&fx.config_path()).unwrap();
    assert_eq!(config.probes.len(), 1);
    assert_eq!(config.probes[0].endpoints.len(), 2);
    let s = fx.start_probing();
    let start = std::time::Instant::now();
    // Watched until ten probes have arrived (a second at 100 ms; twice as
    // many probes would bring them in half the time).
    wait_until(Duration::from_secs(10), || b.request_count() >= 10).expect("probed");
    let n = b.request_count();
    // One probe per 100 ms, not two: a busy host may send fewer, never
    // twice as many.
    let most = (start.elapsed().as_millis() / 100) as usize + 3;
    assert!(
        n <= most,
        "{n} requests in {:?}: the probe runs twice",
        start.elapsed()
    );
    // Every probe opened its own connection: a pooled one could hide a dead backend.
    let conns = b.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(conns >= n, "{conns} connections for {n} requests");
    drop(s);
}

#[test]
fn a_slow_backend_does_not_delay_others() {
    let hanging: Vec<Backend> = (0..20).map(|_| Backend::http(Mode::Hang)).collect();
    let good = Backend::http(Mode::Ok);
    let mut profiles = Vec::new();
    for (i, h) in hanging.iter().enumerate() {
        profiles.push((
            format!("h{i}.toml"),
            format!(
                "name = \"h{i}.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\nport = {}\ninterval = \"500ms\"\ntimeout = \"450ms\"\n[[endpoints]]\nname = \"e\"\ntarget = \"127.0.0.1\"\n",
                h.port()
            ),
        ));
    }
    profiles.push((
        "good.toml".into(),
        format!(
            "name = \"good.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\nport = {}\ninterval = \"100ms\"\ntimeout = \"50ms\"\n[[endpoints]]\nname = \"e\"\ntarget = \"127.0.0.1\"\n",
            good.port()
        ),
    ));
    let refs: Vec<(&str, &str)> = profiles
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let s = Fixture::new("", &refs).start_probing();
    // Every 100 ms despite the hanging backends: 8 probes come within a
    // second when nothing starves them (5 s allows for a busy host).
    let took = wait_until(Duration::from_secs(5), || good.request_count() >= 8);
    assert!(
        took.is_some(),
        "the good backend was probed only {} times in 5 s",
        good.request_count()
    );
    drop(s);
}

/// The real binary, at the most verbose log level, with failing probes of
/// every kind and every admin API surface called: neither the health key nor
/// the admin token shows up in a log line, a response, a metric or the page.
#[test]
fn health_keys_never_reach_the_logs() {
    let key = "K3Y-must-not-leak-7f3a";
    let unavailable = Backend::http(Mode::Unavailable);
    let garbage = Backend::http(Mode::Garbage);
    let pki = Pki::new();
    let tls = Backend::https(Mode::Ok, &pki, false);
    let mut profile = "name = \"todoapi.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\npath = \"/Health/{key}?k={key}\"\nkey = { env = \"TEST_HEALTH_KEY\" }\ninterval = \"200ms\"\ntimeout = \"100ms\"\ntolerated_failures = 0\n".to_string();
    for (i, port) in [unavailable.port(), garbage.port(), closed_port()]
        .iter()
        .enumerate()
    {
        profile.push_str(&format!(
            "[[endpoints]]\nname = \"e{i}\"\ntarget = \"192.0.2.{i}\"\nprobe = {{ address = \"127.0.0.1\", port = {port} }}\n"
        ));
    }
    let tls_profile = format!(
        "name = \"tls.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"https\"\nport = {}\npath = \"/Health/{{key}}\"\nkey = {{ env = \"TEST_HEALTH_KEY\" }}\ninterval = \"200ms\"\ntimeout = \"100ms\"\ntolerated_failures = 0\n[[endpoints]]\nname = \"tls\"\ntarget = \"127.0.0.1\"\n",
        tls.port()
    );
    let admin_port = closed_port();
    let token = "T0KEN-must-not-leak-9b2c";
    let fx = Fixture::new(
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken = {{ file = \"admin.token\" }}"
        ),
        &[("todoapi.toml", &profile), ("tls.toml", &tls_profile)],
    );
    std::fs::write(fx.dir.path().join("admin.token"), token).unwrap();
    let mut child = KillOnDrop(
        std::process::Command::new(bin())
            .args(["serve", "--config"])
            .arg(fx.config_path())
            .env("TEST_HEALTH_KEY", key)
            .env("RUST_LOG", "trace")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Drain the logs as they come (a trace-level log fills a pipe quickly).
    let drain = |r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut r = r;
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            all
        })
    };
    let stderr = drain(Box::new(child.0.stderr.take().unwrap()));
    let stdout = drain(Box::new(child.0.stdout.take().unwrap()));
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(admin).is_ok()
    })
    .expect("admin API up");
    // Every probe has failed once (so each failure kind was logged).
    wait_until(Duration::from_secs(10), || {
        let (code, body) = http(admin, "GET", "/api/v1/status", None);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        code == 200
            && doc["profiles"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p["endpoints"].as_array().into_iter().flatten())
                .all(|e| e["status"] != "CheckingEndpoint")
    })
    .expect("every endpoint decided");
    // Every API surface, with and without the token.
    let mut bodies = Vec::new();
    for (method, path, auth) in [
        ("GET", "/", None),
        ("GET", "/api/v1/status", None),
        ("GET", "/metrics", None),
        ("GET", "/api/v1/explain?name=todoapi.tm.example.test", None),
        ("POST", "/api/v1/reload", None),
        ("POST", "/api/v1/reload", Some(token)),
        (
            "POST",
            "/api/v1/profiles/todoapi.tm.example.test/endpoints/e0/disable",
            Some(token),
        ),
        (
            "POST",
            "/api/v1/profiles/todoapi.tm.example.test/endpoints/e0/disable",
            Some("wrong"),
        ),
    ] {
        let (_, body) = http(admin, method, path, auth);
        bodies.push(body);
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let err_bytes = stderr.join().unwrap();
    let out_bytes = stdout.join().unwrap();
    let log = String::from_utf8_lossy(&err_bytes);
    assert!(log.contains("endpoint status changed"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    for reason in [
        "status 503",
        "protocol: ",
        "connect refused",
        "tls: invalid peer certificate",
    ] {
        assert!(log.contains(reason), "no `{reason}` in:\n{log}");
    }
    for secret in [key, token] {
        assert!(
            !log.contains(secret),
            "a secret leaked into the log:\n{log}"
        );
        assert!(!String::from_utf8_lossy(&out_bytes).contains(secret));
        for b in &bodies {
            assert!(!b.contains(secret), "a secret leaked into a response: {b}");
        }
    }
    // The backends did receive it.
    assert!(unavailable.requests.lock().unwrap()[0].contains(key));
}

/// Reloads keep the health of unchanged probes, start new ones in
/// CheckingEndpoint, and stop probing removed ones.
#[test]
fn reload_carries_health_over() {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Unavailable);
    let profile = drill_profile(primary.port(), secondary.port(), "200ms", "100ms");
    let fx = Fixture::new("", &[("todoapi.toml", &profile.build())]);
    let path = fx.dir.path().join("profiles/todoapi.toml");
    let s = fx.start_probing();
    let status = |name: &str| {
        let t = s.shared.serving.table.load();
        let p = t.profile_by_name("todoapi.tm.example.test.").unwrap();
        t.endpoints_of(p)
            .iter()
            .find(|e| &*e.name == name)
            .map(|e| t.status(e))
    };
    wait_until(Duration::from_secs(3), || {
        status("primary") == Some(switchyard::health::Status::Online)
            && status("secondary") == Some(switchyard::health::Status::Degraded)
    })
    .expect("initial statuses");
    let since = |s: &TestServer| {
        let t = s.shared.serving.table.load();
        match &t.endpoints[0].health {
            switchyard::snapshot::Health::Monitored(c) => c.details().since,
            _ => unreachable!(),
        }
    };
    let before = since(&s);
    // An unrelated change (TTL) keeps both statuses and the primary's history.
    let profile = profile.ttl(2);
    std::fs::write(&path, profile.build()).unwrap();
    let (code, _) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200);
    assert_eq!(status("primary"), Some(switchyard::health::Status::Online));
    assert_eq!(
        status("secondary"),
        Some(switchyard::health::Status::Degraded)
    );
    assert_eq!(since(&s), before);
    // Pointing the secondary's probe elsewhere makes it a new probe...
    let third = Backend::http(Mode::Ok);
    let changed = profile
        .set_endpoint("secondary", "probe", probe(third.port()))
        .build();
    std::fs::write(&path, &changed).unwrap();
    assert_eq!(http(s.admin, "POST", "/api/v1/reload", None).0, 200);
    assert_ne!(
        status("secondary"),
        Some(switchyard::health::Status::Degraded)
    );
    wait_until(Duration::from_secs(3), || {
        status("secondary") == Some(switchyard::health::Status::Online)
    })
    .expect("new probe decides");
    // ...and the old target is no longer probed: watched while the
    // primary, probed on the same 200 ms interval, is probed four more
    // times (at least 600 ms).
    let n = secondary.request_count();
    let p = primary.request_count();
    wait_until(Duration::from_secs(10), || primary.request_count() >= p + 4)
        .expect("the primary is still probed");
    assert!(
        secondary.request_count() <= n + 1,
        "removed probe still running"
    );
}

/// `--log-format json`: one object per line; transitions are events with
/// profile, endpoint, old and new status and the reason.
#[test]
fn json_logs_carry_transition_events() {
    let down = Backend::http(Mode::Unavailable);
    let profile = drill_profile(down.port(), closed_port(), "200ms", "100ms").build();
    let fx = Fixture::new("", &[("todoapi.toml", &profile)]);
    let mut child = KillOnDrop(
        std::process::Command::new(bin())
            .args(["serve", "--log-format", "json", "--config"])
            .arg(fx.config_path())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read the log as it comes; stop once both endpoints have changed.
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stderr = child.0.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let changed = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("endpoint status changed"))
            .count()
    };
    wait_until(Duration::from_secs(10), || changed() >= 2).expect("two transitions logged");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    reader.join().unwrap();
    let log = lines.lock().unwrap().join("\n");
    let mut transitions = 0;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["message"] == "endpoint status changed" {
            transitions += 1;
            assert_eq!(v["profile"], "todoapi.tm.example.test.");
            assert!(
                v["endpoint"] == "primary" || v["endpoint"] == "secondary",
                "{v}"
            );
            assert_eq!(v["old"], "CheckingEndpoint");
            assert_eq!(v["new"], "Degraded");
            let reason = v["reason"].as_str().unwrap();
            assert!(
                reason == "status 503" || reason == "connect refused",
                "{reason}"
            );
        }
    }
    assert_eq!(transitions, 2, "{log}");
}

/// A spawned server that is killed when the test ends, also when it fails
/// half-way (a failed assertion must not leave a server running).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
