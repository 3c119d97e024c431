//! Notification webhooks end to end: the real server (with the real
//! prober against real backends) sending to real HTTP receivers on
//! loopback that answer 200, 500 then 200, hang, or are not there at all.
//! The receiver is shared with other modules' notification checks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::Value;
use switchyard::health::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::backend::*;
use crate::harness::*;

/// A receiver's connection, plain or TLS.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// What a receiver does with each request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// 200.
    Ok,
    /// 500 to the first request, 200 to the others.
    FailFirst,
    /// Reads the request, never answers.
    Hang,
}

/// One request a receiver read.
#[derive(Clone, Debug)]
pub(crate) struct Got {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    /// Answered 200.
    accepted: bool,
}

impl Got {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A webhook receiver on loopback; dropping it stops it.
pub(crate) struct Receiver {
    addr: SocketAddr,
    tls: bool,
    got: Arc<Mutex<Vec<Got>>>,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub(crate) fn start(behaviour: Behaviour) -> Receiver {
        Self::start_with(behaviour, None)
    }

    /// HTTPS, with the test PKI's server certificate.
    fn start_tls(behaviour: Behaviour, pki: &Pki) -> Receiver {
        Self::start_with(behaviour, Some(pki.server_config(false)))
    }

    fn start_with(behaviour: Behaviour, tls: Option<Arc<rustls::ServerConfig>>) -> Receiver {
        let is_tls = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let got = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (g, s) = (got.clone(), shutdown.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                let seen = Arc::new(AtomicUsize::new(0));
                loop {
                    let (tcp, _) = tokio::select! {
                        _ = s.cancelled() => return,
                        a = l.accept() => match a { Ok(x) => x, Err(_) => continue },
                    };
                    let (g, s, seen, acceptor) =
                        (g.clone(), s.clone(), seen.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        let mut stream: Box<dyn Stream> = match acceptor {
                            Some(a) => match a.accept(tcp).await {
                                Ok(t) => Box::new(t),
                                Err(_) => return,
                            },
                            None => Box::new(tcp),
                        };
                        let Some((headers, body)) = read_request(&mut stream).await else {
                            return;
                        };
                        let n = seen.fetch_add(1, Ordering::SeqCst);
                        let status = match behaviour {
                            Behaviour::Ok => 200,
                            Behaviour::FailFirst if n == 0 => 500,
                            Behaviour::FailFirst => 200,
                            Behaviour::Hang => 0,
                        };
                        g.lock().unwrap().push(Got {
                            headers,
                            body,
                            accepted: status == 200,
                        });
                        if status == 0 {
                            s.cancelled().await;
                            return;
                        }
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(reply.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Receiver {
            addr,
            tls: is_tls,
            got,
            shutdown,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/hook/s3cr3t-path", self.addr)
    }

    pub(crate) fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Accepted messages about `endpoint` (or, `None`, any).
    pub(crate) fn accepted(&self, event: &str) -> Vec<Got> {
        self.all()
            .into_iter()
            .filter(|g| g.accepted && g.header("x-switchyard-event") == event)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head and its `Content-Length` body (bounded).
async fn read_request(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Option<(HashMap<String, String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut headers = HashMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((headers, body))
}

const NAME: &str = "todoapi.tm.example.test.";
const SECRET: &str = "webhook-secret-0123456789";

/// A priority profile probed on loopback backends every 100 ms.
fn profile(primary: u16, secondary: u16) -> String {
    ProfileToml::todoapi_probed(primary, secondary).build()
}

/// A `[[notify]]` table.
pub(crate) fn target(name: &str, url: &str, keys: &str) -> String {
    format!("[[notify]]\nname = \"{name}\"\nurl = \"{url}\"\n{keys}\n")
}

fn answer(s: &TestServer) -> String {
    addrs(&udp(s.v4(), NAME, RecordType::A))
        .pop()
        .unwrap_or_default()
}

/// The receiver's own check of `X-Switchyard-Signature`, written from the
/// README's description with ring directly (not the server's code).
fn signature_verifies(g: &Got, secret: &str) -> bool {
    let header = g.header("x-switchyard-signature");
    let mut t = "";
    let mut v1 = "";
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v,
            Some(("v1", v)) => v1 = v,
            _ => {}
        }
    }
    let Ok(unix) = t.parse::<u64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if unix.abs_diff(now) > 300 {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&g.body);
    let Ok(expected) = data_encoding::HEXLOWER.decode(v1.as_bytes()) else {
        return false;
    };
    ring::hmac::verify(&key, &signed, &expected).is_ok()
}

fn stat(s: &TestServer, target: &str, f: fn(&switchyard::notify::TargetStats) -> u64) -> u64 {
    s.shared
        .notify
        .stats()
        .iter()
        .find(|(n, _)| n == target)
        .map_or(0, |(_, st)| f(st))
}

/// Waits until the prober has decided both endpoints Online (an endpoint
/// not probed yet is answered too, so the answer does not tell) and the
/// primary is answered.
fn first_verdicts(s: &TestServer) {
    let online = |name: &str| {
        let t = s.shared.serving.table.load();
        t.endpoints
            .iter()
            .any(|e| &*e.name == name && t.status(e) == Status::Online)
    };
    wait_until(Duration::from_secs(10), || {
        online("primary") && online("secondary") && answer(s) == "203.0.113.10"
    })
    .expect("not serving on the first verdicts");
}

/// Waits (at most `limit`) until every event the server has emitted is
/// handed to its targets and every target's queue is sent or given up on
/// ([`switchyard::notify::Notifier::flush`]): a receiver then has all it
/// will get for what happened so far. Returns how many are still queued.
fn delivered(s: &TestServer, limit: Duration) -> u64 {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(s.shared.notify.flush(limit))
}

#[test]
fn an_endpoint_failure_reaches_every_receiver_while_others_hang_or_refuse() {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let ok = Receiver::start(Behaviour::Ok);
    let flaky = Receiver::start(Behaviour::FailFirst);
    let hang = Receiver::start(Behaviour::Hang);
    let slack = Receiver::start(Behaviour::Ok);
    let refused = format!("http://127.0.0.1:{}/hook", closed_port());
    let quick = "coalesce = \"0s\"\ntimeout = \"300ms\"\nretry_for = \"2s\"";
    let extra = [
        target("ok", &ok.url(), &format!("secret = \"{SECRET}\"\n{quick}")),
        target("flaky", &flaky.url(), quick),
        target("hang", &hang.url(), &format!("{quick}\nqueue = 2")),
        target("refused", &refused, quick),
        target(
            "chat",
            &slack.url(),
            "format = \"slack\"\ncoalesce = \"0s\"",
        ),
    ]
    .concat();
    let s = Fixture::new(
        &extra,
        &[("todoapi.toml", &profile(primary.port(), secondary.port()))],
    )
    .start_probing();
    first_verdicts(&s);
    // The first verdicts found everything healthy: not news. Each probe
    // task has gone round once more (its hook runs before its next probe),
    // and all that was emitted is delivered: nothing.
    let (p, q) = (primary.request_count(), secondary.request_count());
    wait_until(Duration::from_secs(10), || {
        primary.request_count() > p && secondary.request_count() > q
    })
    .expect("probing goes on");
    assert_eq!(delivered(&s, Duration::from_secs(10)), 0);
    assert!(ok.all().is_empty(), "{:?}", ok.all());

    let failed_at = Instant::now();
    primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20").expect("no failover");
    // Delivered to the healthy receiver at once, whatever the others do.
    let took = wait_until(Duration::from_secs(5), || {
        !ok.accepted("endpoint.status").is_empty()
    })
    .expect("the endpoint event never reached the receiver");
    let delivered = failed_at.elapsed();
    eprintln!(
        "endpoint event delivered {delivered:?} after the backend failed ({took:?} after DNS failed over)"
    );
    assert!(
        delivered < Duration::from_secs(2),
        "delivery took {delivered:?} after the failure"
    );
    let got = ok.accepted("endpoint.status").remove(0);
    let doc = got.json();
    assert_eq!(doc["event"], "endpoint.status");
    assert_eq!(doc["profile"], NAME);
    assert_eq!(doc["endpoint"], "primary");
    assert_eq!(doc["old_status"], "Online");
    assert_eq!(doc["new_status"], "Degraded");
    assert!(doc["reason"].as_str().unwrap().contains("503"), "{doc}");
    assert_eq!(doc["node"], "local");
    assert_eq!(doc["count"], 1);
    assert_eq!(doc["serving"], "healthy");
    assert_eq!(doc["answer"]["rcode"], "NOERROR");
    assert_eq!(
        doc["answer"]["records"],
        serde_json::json!(["198.51.100.20"])
    );
    assert_eq!(doc["id"], got.header("x-switchyard-event-id"));
    assert!(!got.header("x-switchyard-event-id").is_empty());
    assert_eq!(got.header("content-type"), "application/json");
    assert!(signature_verifies(&got, SECRET), "{:?}", got.headers);
    assert!(!signature_verifies(&got, "another-secret-entirely"));
    // Unsigned targets carry no signature.
    let plain = wait_until(Duration::from_secs(5), || {
        !flaky.accepted("endpoint.status").is_empty()
    });
    assert!(plain.is_some(), "500 then 200: the retry never arrived");
    // 500 then 200: the retry is the same message, with the same id.
    let tries: Vec<Got> = flaky
        .all()
        .into_iter()
        .filter(|g| g.header("x-switchyard-event") == "endpoint.status")
        .collect();
    assert!(tries.len() >= 2, "{tries:?}");
    assert!(!tries[0].accepted && tries[1].accepted);
    assert_eq!(
        tries[0].header("x-switchyard-event-id"),
        tries[1].header("x-switchyard-event-id")
    );
    assert_eq!(tries[0].body, tries[1].body);
    assert_eq!(tries[1].header("x-switchyard-signature"), "");
    assert!(stat(&s, "flaky", |t| t.retries.load(Ordering::Relaxed)) >= 1);
    // The Slack-compatible target.
    wait_until(Duration::from_secs(5), || !slack.all().is_empty()).expect("no slack message");
    let text = slack.all()[0].json();
    let line = text["text"].as_str().unwrap();
    assert!(line.starts_with(":red_circle: *switchyard* "), "{line}");
    assert!(
        line.contains("todoapi.tm.example.test./primary: Online → Degraded"),
        "{line}"
    );
    assert!(line.contains("answering 198.51.100.20"), "{line}");
    assert_eq!(text["blocks"][0]["type"], "section");

    // DNS answers keep flowing at once while receivers hang and retries
    // go on.
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let q = Instant::now();
        assert_eq!(answer(&s), "198.51.100.20");
        slowest = slowest.max(q.elapsed());
    }
    eprintln!("slowest of 50 DNS answers while receivers hang and retry: {slowest:?}");
    assert!(
        slowest < Duration::from_millis(100),
        "a DNS answer took {slowest:?}"
    );

    // The hanging and the refusing receivers: retried within retry_for,
    // then counted failed; the URL path (a credential) is never shown.
    wait_until(Duration::from_secs(10), || {
        stat(&s, "hang", |t| t.failed.load(Ordering::Relaxed)) >= 1
            && stat(&s, "refused", |t| t.failed.load(Ordering::Relaxed)) >= 1
    })
    .expect("hung and refused deliveries never counted failed");
    assert!(
        !hang.all().is_empty(),
        "the hanging receiver was never tried"
    );
    assert!(stat(&s, "refused", |t| t.retries.load(Ordering::Relaxed)) >= 1);
    assert_eq!(stat(&s, "ok", |t| t.failed.load(Ordering::Relaxed)), 0);
    let (code, metrics) = http(s.admin, "GET", "/metrics", None);
    assert_eq!(code, 200);
    for line in [
        "switchyard_notify_sent_total{target=\"ok\"} ",
        "switchyard_notify_failed_total{target=\"hang\"} ",
        "switchyard_notify_failed_total{target=\"refused\"} ",
        "switchyard_notify_dropped_total{target=\"hang\"} ",
        "switchyard_notify_retries_total{target=\"flaky\"} ",
        "switchyard_notify_queued{target=\"ok\"} ",
    ] {
        assert!(metrics.contains(line), "no {line} in /metrics");
    }
    assert!(!metrics.contains("s3cr3t-path") && !metrics.contains(SECRET));
    let (_, status) = http(s.admin, "GET", "/api/v1/status", None);
    assert!(!status.contains("s3cr3t-path") && !status.contains(SECRET));

    // Floods into the hung receiver's queue (2) are dropped and counted,
    // never waited for; the healthy receiver still gets each change.
    let before = ok.accepted("endpoint.status").len();
    for _ in 0..3 {
        primary.set(Mode::Ok);
        wait_until(Duration::from_secs(5), || answer(&s) == "203.0.113.10").expect("no failback");
        primary.set(Mode::Unavailable);
        wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20").expect("no failover");
    }
    wait_until(Duration::from_secs(5), || {
        ok.accepted("endpoint.status").len() >= before + 6
    })
    .expect("the healthy receiver missed changes");
    assert!(stat(&s, "hang", |t| t.dropped.load(Ordering::Relaxed)) >= 1);
}

#[test]
fn a_flapping_endpoint_is_coalesced_with_its_count() {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let r = Receiver::start(Behaviour::Ok);
    let extra = target(
        "oncall",
        &r.url(),
        "coalesce = \"3s\"\nevents = [\"endpoint.status\"]",
    );
    let s = Fixture::new(
        &extra,
        &[("todoapi.toml", &profile(primary.port(), secondary.port()))],
    )
    .start_probing();
    first_verdicts(&s);
    // Five changes, as fast as the prober sees them.
    let mut changes = 0;
    for i in 0..5 {
        let (mode, want) = if i % 2 == 0 {
            (Mode::Unavailable, "198.51.100.20")
        } else {
            (Mode::Ok, "203.0.113.10")
        };
        primary.set(mode);
        wait_until(Duration::from_secs(5), || answer(&s) == want).expect("no change");
        changes += 1;
    }
    // The last one is Degraded; the window's summary brings it.
    let total = |r: &Receiver| -> (Vec<Value>, u64) {
        let docs: Vec<Value> = r
            .accepted("endpoint.status")
            .iter()
            .map(Got::json)
            .filter(|d| d["endpoint"] == "primary")
            .collect();
        let n = docs.iter().map(|d| d["count"].as_u64().unwrap()).sum();
        (docs, n)
    };
    wait_until(Duration::from_secs(10), || total(&r).1 >= changes).expect("changes lost");
    let (docs, n) = total(&r);
    // `events` filters: nothing else was sent.
    assert!(
        r.all()
            .iter()
            .all(|g| g.header("x-switchyard-event") == "endpoint.status"),
        "{:?}",
        r.all()
    );
    assert_eq!(n, changes, "{docs:#?}");
    assert!(docs.len() < changes as usize, "not coalesced: {docs:#?}");
    assert_eq!(docs[0]["count"], 1);
    assert_eq!(docs[0]["old_status"], "Online");
    assert_eq!(docs[0]["new_status"], "Degraded");
    let last = docs.last().unwrap();
    assert!(last["count"].as_u64().unwrap() > 1, "{docs:#?}");
    assert_eq!(last["new_status"], "Degraded", "the last state is kept");
    assert_eq!(
        last["answer"]["records"],
        serde_json::json!(["198.51.100.20"])
    );
    assert!(
        last["summary"]
            .as_str()
            .unwrap()
            .contains("changes coalesced")
    );
    // Every message has its own id.
    let ids: std::collections::HashSet<&str> =
        docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), docs.len());
}

#[test]
fn failing_open_overrides_rejected_reloads_and_reloaded_targets() {
    let first = Receiver::start(Behaviour::Ok);
    let second = Receiver::start(Behaviour::Ok);
    let profiles = [("todoapi.toml", ProfileToml::todoapi().build())];
    let profiles: Vec<(&str, &str)> = profiles.iter().map(|(n, p)| (*n, p.as_str())).collect();
    let fx = Fixture::new(
        &target("first", &first.url(), "coalesce = \"0s\""),
        &profiles,
    );
    let config = fx.config_path();
    let s = fx.start();
    // Every endpoint down: the profile fails open.
    s.set_status(NAME, "primary", Status::Degraded);
    s.set_status(NAME, "secondary", Status::Degraded);
    wait_until(Duration::from_secs(20), || {
        !first.accepted("profile.failing_open").is_empty()
    })
    .expect("no profile.failing_open");
    let doc = first.accepted("profile.failing_open")[0].json();
    assert_eq!(doc["profile"], NAME);
    assert_eq!(doc["new_status"], "failing open");
    assert_eq!(doc["serving"], "failing open");
    assert!(doc["endpoint"].is_null());
    // And back.
    s.set_status(NAME, "primary", Status::Online);
    wait_until(Duration::from_secs(20), || {
        first
            .accepted("profile.status")
            .iter()
            .any(|g| g.json()["new_status"] == "healthy")
    })
    .expect("no profile.status back to healthy");

    // A runtime override.
    let (code, body) = http(
        s.admin,
        "POST",
        "/api/v1/profiles/todoapi.tm.example.test/endpoints/secondary/disable?for=30m&reason=failover%20drill",
        None,
    );
    assert_eq!(code, 200, "{body}");
    wait_until(Duration::from_secs(20), || {
        !first.accepted("override.applied").is_empty()
    })
    .expect("no override.applied");
    let doc = first.accepted("override.applied")[0].json();
    assert_eq!(doc["endpoint"], "secondary");
    assert_eq!(doc["new_status"], "disabled");
    // Who, until when and why.
    let why = doc["reason"].as_str().unwrap();
    assert!(
        why.starts_with("by admin API on node ")
            && why.contains(", until ")
            && why.ends_with(": failover drill"),
        "{why}"
    );
    assert_eq!(
        doc["answer"]["records"],
        serde_json::json!(["203.0.113.10"])
    );

    // A rejected reload.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}\n[dns]\nbogus = 1\n")).unwrap();
    let (code, _) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_ne!(code, 200);
    wait_until(Duration::from_secs(20), || {
        !first.accepted("reload.rejected").is_empty()
    })
    .expect("no reload.rejected");

    // A reload that replaces the target: the next events go to the new
    // receiver only.
    std::fs::write(
        &config,
        config_toml(&target("second", &second.url(), "coalesce = \"0s\"")),
    )
    .unwrap();
    let (code, body) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200, "{body}");
    let before = first.all().len();
    s.set_status(NAME, "primary", Status::Degraded);
    wait_until(Duration::from_secs(20), || {
        !second.accepted("profile.failing_open").is_empty()
    })
    .expect("the reloaded target got nothing");
    // That event went to every target at once: once all is delivered, a
    // removed target that still got events would have it.
    assert_eq!(delivered(&s, Duration::from_secs(10)), 0);
    assert_eq!(
        first.all().len(),
        before,
        "the removed target still gets events"
    );
    let names: Vec<String> = s
        .shared
        .notify
        .stats()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["second"]);
}

/// Node `n` (1-based) of a cluster gossiping on `ports`, with `extra`
/// appended to its configuration (the cluster tests' builder).
fn cluster_node(n: usize, ports: &[u16], profile: &str, extra: &str) -> Fixture {
    crate::cluster::node_fixture_full(
        n,
        ports,
        "a cluster key for the notify tests\n",
        profile,
        "warm_start = \"0s\"\n",
        extra,
    )
}

#[test]
fn cluster_nodes_joining_leaving_and_quorum_decided_statuses() {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let r = Receiver::start(Behaviour::Ok);
    let profile = profile(primary.port(), secondary.port());
    let ports = [free_port(true), free_port(true)];
    let ns1 = Proc::start(cluster_node(
        1,
        &ports,
        &profile,
        &target("oncall", &r.url(), "coalesce = \"0s\""),
    ));
    let ns2 = Proc::start(cluster_node(2, &ports, &profile, ""));
    let joined = |r: &Receiver| {
        r.accepted("cluster.node_joined")
            .iter()
            .any(|g| g.json()["peer"] == "ns2")
    };
    wait_until(Duration::from_secs(20), || joined(&r))
        .unwrap_or_else(|| panic!("no cluster.node_joined\nns1 log:\n{}", ns1.log()));
    let doc = r.accepted("cluster.node_joined")[0].json();
    assert_eq!(doc["node"], "ns1");
    assert!(doc["id"].as_str().unwrap().starts_with("ns1-"));

    // Every node sees the primary fail: the quorum's verdict is the event,
    // sent by the node that has the target.
    primary.set(Mode::Unavailable);
    let degraded = |r: &Receiver| {
        r.accepted("endpoint.status")
            .iter()
            .map(Got::json)
            .find(|d| d["endpoint"] == "primary" && d["new_status"] == "Degraded")
    };
    let doc = wait_until(Duration::from_secs(15), || degraded(&r).is_some())
        .and_then(|_| degraded(&r))
        .unwrap_or_else(|| panic!("no endpoint.status\nns1 log:\n{}", ns1.log()));
    assert!(
        doc["reason"].as_str().unwrap().contains("deciding nodes"),
        "{doc}"
    );
    assert_eq!(
        doc["answer"]["records"],
        serde_json::json!(["198.51.100.20"])
    );
    // Once, by the quorum: this node's own observation (which changed
    // before the quorum's verdict could) is not a second message. Watched
    // for 1 s: ten gossip rounds, four probes.
    let n = || {
        r.accepted("endpoint.status")
            .iter()
            .filter(|g| g.json()["new_status"] == "Degraded")
            .count()
    };
    holds_for(Duration::from_secs(1), || n() == 1)
        .unwrap_or_else(|at| panic!("{} Degraded messages after {at:?}", n()));

    // ns2 stops: ns1 reports it dead.
    drop(ns2);
    wait_until(Duration::from_secs(30), || {
        r.accepted("cluster.node_left")
            .iter()
            .any(|g| g.json()["peer"] == "ns2")
    })
    .unwrap_or_else(|| panic!("no cluster.node_left\nns1 log:\n{}", ns1.log()));
    // The log names the target by scheme, host and port, never its path
    // (chat webhook URLs are credentials).
    let log = ns1.log();
    assert!(
        log.contains("notify target started") && log.contains(&format!("http://{}", r.addr)),
        "{log}"
    );
    assert!(!log.contains("s3cr3t-path"), "{log}");
}

#[test]
fn a_state_file_problem_at_start_is_sent_once_the_server_runs() {
    let r = Receiver::start(Behaviour::Ok);
    let profiles = [("todoapi.toml", ProfileToml::todoapi().build())];
    let profiles: Vec<(&str, &str)> = profiles.iter().map(|(n, p)| (*n, p.as_str())).collect();
    let extra = format!(
        "state_file = \"state.json\"\n{}",
        target("ops", &r.url(), "events = [\"state_file.problem\"]")
    );
    let fx = Fixture::new(&extra, &profiles);
    std::fs::write(fx.dir.path().join("state.json"), "{ not json").unwrap();
    let _s = fx.start();
    wait_until(Duration::from_secs(5), || {
        !r.accepted("state_file.problem").is_empty()
    })
    .expect("no state_file.problem");
    let doc = r.accepted("state_file.problem")[0].json();
    assert!(
        doc["reason"].as_str().unwrap().contains("state.json"),
        "{doc}"
    );
    assert!(doc["profile"].is_null() && doc["answer"].is_null());
}

/// `failback = "manual"`: the recovery the prober decides is sent as
/// `Online (held)` (the endpoint is not answered), and the resume as an
/// override with who made it.
#[test]
fn a_held_recovery_is_sent_as_held() {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let r = Receiver::start(Behaviour::Ok);
    let extra = target("oncall", &r.url(), "coalesce = \"1s\"");
    let p = ProfileToml::todoapi_probed(primary.port(), secondary.port())
        .set("failback", "manual")
        .build();
    let s = Fixture::new(&extra, &[("todoapi.toml", &p)]).start_probing();
    first_verdicts(&s);
    primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20").expect("no failover");
    primary.set(Mode::Ok);
    let held = || {
        r.accepted("endpoint.status")
            .iter()
            .map(Got::json)
            .find(|d| d["endpoint"] == "primary" && d["new_status"] == "Online (held)")
    };
    let doc = wait_until(Duration::from_secs(10), || held().is_some())
        .and_then(|_| held())
        .expect("no held recovery sent");
    assert!(
        doc["reason"]
            .as_str()
            .unwrap()
            .contains("held out by failback = \"manual\""),
        "{doc}"
    );
    // (Held, the primary is answered only if the secondary is not
    // answerable: every status message shows whether it was.)
    let all = || -> Vec<Value> { r.all().iter().map(Got::json).collect() };
    assert_eq!(
        doc["answer"]["records"],
        serde_json::json!(["198.51.100.20"]),
        "{doc}\nall messages: {:#?}",
        all()
    );
    assert_eq!(answer(&s), "198.51.100.20", "held: still not answered");
    let (code, body) = http(
        s.admin,
        "POST",
        "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/resume",
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(answer(&s), "203.0.113.10");
    wait_until(Duration::from_secs(5), || {
        r.accepted("override.applied")
            .iter()
            .any(|g| g.json()["new_status"] == "resumed")
    })
    .expect("no override.applied for the resume");
}

/// A hold that `failback_after` ends, and an override that `--for` ends,
/// are sent too: the end of each, with what ended it.
#[test]
fn ends_of_holds_and_timed_overrides_are_sent() {
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let r = Receiver::start(Behaviour::Ok);
    let extra = target("oncall", &r.url(), "coalesce = \"1s\"");
    let p = ProfileToml::todoapi_probed(primary.port(), secondary.port())
        .set("failback", "manual")
        .set("failback_after", "2s")
        .build();
    let s = Fixture::new(&extra, &[("todoapi.toml", &p)]).start_probing();
    first_verdicts(&s);
    primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(5), || answer(&s) == "198.51.100.20").expect("no failover");
    primary.set(Mode::Ok);
    let docs = |event: &str| -> Vec<Value> { r.accepted(event).iter().map(Got::json).collect() };
    wait_until(Duration::from_secs(10), || {
        docs("endpoint.status").iter().any(|d| {
            d["new_status"] == "Online (held)"
                && d["reason"]
                    .as_str()
                    .unwrap()
                    .contains("(failback_after), or until resumed")
        })
    })
    .expect("no held recovery with its end");
    wait_until(Duration::from_secs(10), || {
        docs("endpoint.status").iter().any(|d| {
            d["old_status"] == "Online (held)"
                && d["new_status"] == "Online"
                && d["reason"] == "failback_after passed: answered again"
        })
    })
    .unwrap_or_else(|| panic!("no end of the hold: {:#?}", docs("endpoint.status")));
    assert_eq!(answer(&s), "203.0.113.10");
    // A timed disable's end.
    let (code, body) = http(
        s.admin,
        "POST",
        "/api/v1/profiles/todoapi.tm.example.test/endpoints/secondary/disable?for=1s",
        None,
    );
    assert_eq!(code, 200, "{body}");
    wait_until(Duration::from_secs(6), || {
        docs("override.applied").iter().any(|d| {
            d["endpoint"] == "secondary"
                && d["new_status"] == "enabled"
                && d["old_status"] == "Disabled"
                && d["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("by expiry of the disable by admin API")
        })
    })
    .unwrap_or_else(|| panic!("no end of the disable: {:#?}", docs("override.applied")));
    // The disable itself said what it replaced.
    assert!(
        docs("override.applied")
            .iter()
            .any(|d| d["new_status"] == "disabled" && d["old_status"] == "Online"),
        "{:#?}",
        docs("override.applied")
    );
}

/// An HTTPS receiver: verified with `ca_cert` (a private CA), refused
/// without it (the system roots do not know the CA), counted failed.
#[test]
fn https_receivers_are_verified() {
    let pki = Pki::new();
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let trusted = Receiver::start_tls(Behaviour::Ok, &pki);
    let untrusted = Receiver::start_tls(Behaviour::Ok, &pki);
    let extra = format!(
        "{}{}",
        target(
            "trusted",
            &trusted.url(),
            &format!(
                "ca_cert = \"{}\"\nsecret = \"{SECRET}\"",
                pki.path("ca.pem").display()
            ),
        ),
        target(
            "untrusted",
            &untrusted.url(),
            "retry_for = \"1s\"\ntimeout = \"1s\""
        ),
    );
    let s = Fixture::new(
        &extra,
        &[("todoapi.toml", &profile(primary.port(), secondary.port()))],
    )
    .start_probing();
    first_verdicts(&s);
    primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(10), || {
        !trusted.accepted("endpoint.status").is_empty()
    })
    .expect("nothing reached the HTTPS receiver");
    let g = &trusted.accepted("endpoint.status")[0];
    assert!(signature_verifies(g, SECRET), "{:?}", g.headers);
    assert_eq!(g.json()["new_status"], "Degraded");
    // The receiver whose CA is not trusted never gets a request through.
    wait_until(Duration::from_secs(10), || {
        stat(&s, "untrusted", |t| t.failed.load(Ordering::Relaxed)) > 0
    })
    .expect("the untrusted receiver was not counted failed");
    assert!(untrusted.all().is_empty(), "{:?}", untrusted.all());
}

/// A stop sends what is queued first (for a bounded time): an override
/// made just before the stop reaches a receiver that failed the first
/// attempt.
#[test]
fn a_stop_delivers_what_is_queued() {
    let r = Receiver::start(Behaviour::FailFirst);
    let extra = target("oncall", &r.url(), "events = [\"override.applied\"]");
    let s = Fixture::new(&extra, &[("todoapi.toml", TODOAPI)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    let (code, body) = http(
        s.admin,
        "POST",
        "/api/v1/profiles/todoapi.tm.example.test/endpoints/secondary/disable",
        None,
    );
    assert_eq!(code, 200, "{body}");
    let start = Instant::now();
    drop(s);
    let stopped = start.elapsed();
    assert_eq!(r.accepted("override.applied").len(), 1, "{:?}", r.all());
    assert_eq!(r.all().len(), 2, "one failed attempt, one retry");
    assert!(stopped < Duration::from_secs(3), "{stopped:?}");
}
