//! Performance routing on measured latency, end to end with the real
//! binary: a latency file, samples posted to the admin API, the answers
//! `dig +subnet` gets, explain's numbers, the file changed and broken while
//! serving, a restart, and a 3-node cluster sharing a sample.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::backend::wait_until;
use crate::geodb::{self, Schema};
use crate::harness::*;

const NAME: &str = "near.tm.example.test.";
const EU: &str = "192.0.2.1";
const US: &str = "192.0.2.2";
/// In the test GeoIP database: London (nearer westeurope than eastus).
const GB_NET: &str = "81.2.69.0/24";
/// Stockholm: also nearer westeurope; never measured.
const SE_NET: &str = "89.160.20.0/24";

/// Two regions, no monitor (always answerable).
const PROFILE: &str = r#"
name = "near.tm.example.test."
routing = "performance"
ttl = 5
[[endpoints]]
name = "eu"
target = "192.0.2.1"
location = "westeurope"
[[endpoints]]
name = "us"
target = "192.0.2.2"
location = "eastus"
"#;

fn csv(eu_ms: u32, us_ms: u32) -> String {
    format!(
        "network,endpoint,rtt_ms,samples\n{GB_NET},near.tm.example.test/eu,{eu_ms},412\n{GB_NET},near.tm.example.test/us,{us_ms},398\n"
    )
}

fn fixture(extra: &str) -> Fixture {
    let fx = Fixture::new(
        &format!("state_file = \"state.json\"\n[geoip]\ndatabase = \"geo.mmdb\"\n{extra}"),
        &[("near.toml", PROFILE)],
    );
    geodb::write(&fx.dir.path().join("geo.mmdb"), Schema::City);
    fx
}

/// `dig +subnet=NET` at `addr`: the address answered and the ECS scope.
fn dig(addr: SocketAddr, subnet: &str) -> (String, Option<u8>) {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), NAME, "A", "+norecurse"])
        .arg(format!("+subnet={subnet}"))
        .args(["+time=2", "+tries=2"])
        .output()
        .expect("cannot run dig; run the tests with scripts/test.sh");
    crate::ecs::parse_dig(&String::from_utf8_lossy(&out.stdout))
}

/// An HTTP/1.1 request with a JSON body (the admin API without a token
/// on loopback).
fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    crate::push::send(addr, method, path, None, body)
}

/// Posts `samples` measurements of each endpoint from `net`.
fn post(admin: SocketAddr, net: &str, eu_ms: f64, us_ms: f64, samples: u32) {
    let body = format!(
        r#"{{"samples": [
            {{"network": "{net}", "endpoint": "near.tm.example.test/eu", "rtt_ms": {eu_ms}, "samples": {samples}}},
            {{"network": "{net}", "endpoint": "near.tm.example.test/us", "rtt_ms": {us_ms}, "samples": {samples}}}]}}"#
    );
    let (code, text) = send(admin, "POST", "/api/v1/latency/samples", &body);
    assert_eq!(code, 200, "{text}");
}

fn explain_steps(admin: SocketAddr, subnet: &str) -> String {
    let (code, doc) = json(
        admin,
        "GET",
        &format!("/api/v1/explain?name={NAME}&type=A&ecs={subnet}"),
        None,
    );
    assert_eq!(code, 200, "{doc}");
    doc["steps"].to_string()
}

/// Waits (bounded) until `addr` answers `want` for `subnet`.
fn wait_answer(addr: SocketAddr, subnet: &str, want: &str, within: Duration) -> Duration {
    wait_until(within, || dig(addr, subnet).0 == want)
        .unwrap_or_else(|| panic!("{subnet} never answered {want}: {:?}", dig(addr, subnet)))
}

#[test]
fn a_latency_file_sends_a_measured_network_to_the_faster_region() {
    let fx = fixture("[latency]\nfile = \"latency.csv\"\n");
    std::fs::write(fx.dir.path().join("latency.csv"), csv(120, 30)).unwrap();
    let p = Proc::start(fx);
    // London measured: the slower-but-nearer eu loses to us, scoped /24.
    assert_eq!(dig(p.v4(), GB_NET), (US.to_string(), Some(24)));
    // Stockholm has no samples: the nearer, as before.
    assert_eq!(dig(p.v4(), SE_NET).0, EU);
    let why = explain_steps(p.admin(), GB_NET);
    assert!(
        why.contains(
            "latency from client network 81.2.69.0/24 (ECS): us 30 ms (398 samples, newest"
        ) && why.contains("latency file) < eu 120 ms (412, latency file)")
            && why.contains("chosen us"),
        "{why}"
    );
    let why = explain_steps(p.admin(), SE_NET);
    assert!(
        why.contains("no latency samples from client network 89.160.20.0/24 (ECS)"),
        "{why}"
    );
    assert!(
        why.contains("distance ranking of usable endpoints: eu"),
        "{why}"
    );

    // The file changes while serving: applied.
    std::fs::write(p.dir().join("latency.csv"), csv(20, 90)).unwrap();
    let took = wait_answer(p.v4(), GB_NET, EU, Duration::from_secs(15));
    eprintln!("latency file change applied in {took:?}");

    // A broken file: reported with file, line and field; the last good one stays.
    std::fs::write(
        p.dir().join("latency.csv"),
        "network,endpoint,rtt_ms,samples\n81.2.69.0/24,near.tm.example.test/us,fast,10\n",
    )
    .unwrap();
    p.wait_for_log("latency file not loaded", Duration::from_secs(15));
    assert!(
        p.log()
            .contains("latency.csv:2: rtt_ms: fast is not a round trip"),
        "{}",
        p.log()
    );
    assert_eq!(
        dig(p.v4(), GB_NET).0,
        EU,
        "the last good file still decides"
    );
    let (_, status) = json(p.admin(), "GET", "/api/v1/status", None);
    assert!(
        status.to_string().contains("latency file not loaded"),
        "{status}"
    );
}

#[test]
fn posted_samples_decide_only_when_enough_and_survive_a_restart() {
    let p = Proc::start(fixture(""));
    // Too few samples (12 < 30): distance still decides, and explain says why.
    post(p.admin(), GB_NET, 120.0, 30.0, 12);
    assert_eq!(dig(p.v4(), GB_NET).0, EU);
    let why = explain_steps(p.admin(), GB_NET);
    assert!(
        why.contains("distance: latency from client network 81.2.69.0/24 (ECS) has us 12 samples (too few), eu 12 samples (too few); 30 needed"),
        "{why}"
    );
    // Enough now.
    post(p.admin(), GB_NET, 120.0, 30.0, 30);
    assert_eq!(dig(p.v4(), GB_NET).0, US);
    // Absurd timings and unknown endpoints are refused and counted.
    let (code, text) = send(
        p.admin(),
        "POST",
        "/api/v1/latency/samples",
        r#"{"samples": [{"network": "81.2.69.0/24", "endpoint": "near.tm.example.test/us", "rtt_ms": 7200000}]}"#,
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("samples[0].rtt_ms"), "{text}");
    let (code, text) = send(
        p.admin(),
        "POST",
        "/api/v1/latency/samples",
        r#"[{"network": "81.2.69.0/24", "endpoint": "near.tm.example.test/nowhere", "rtt_ms": 5}]"#,
    );
    assert_eq!(code, 400, "{text}");
    let (_, metrics) = http(p.admin(), "GET", "/metrics", None);
    assert!(
        metrics.contains("switchyard_latency_samples_total{result=\"rejected\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_latency_samples_total{result=\"learned\"} 84"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_latency_networks 1"),
        "{metrics}"
    );
    let (_, table) = json(
        p.admin(),
        "GET",
        "/api/v1/latency?profile=near.tm.example.test",
        None,
    );
    assert_eq!(table["rows"].as_array().map(Vec::len), Some(2), "{table}");

    // A clean stop saves the table; the restarted server answers alike.
    p.signal("TERM");
    let mut p = p;
    let _ = p.child.wait();
    let fx = p.kill();
    assert!(fx.dir.path().join("state.json.latency").exists());
    let p = Proc::start(fx);
    p.wait_for_log("latency table restored", Duration::from_secs(10));
    assert_eq!(dig(p.v4(), GB_NET).0, US);

    // A corrupt saved table: a clear warning, an empty table, serving.
    p.signal("TERM");
    let mut p = p;
    let _ = p.child.wait();
    let fx = p.kill();
    std::fs::write(
        fx.dir.path().join("state.json.latency"),
        b"switchyard-latency 1\ngarbage",
    )
    .unwrap();
    let p = Proc::start(fx);
    p.wait_for_log("latency table not restored", Duration::from_secs(10));
    assert_eq!(dig(p.v4(), GB_NET).0, EU);
}

#[test]
fn a_sample_posted_to_one_node_changes_every_nodes_answer() {
    use crate::cluster::{KEY, free_udp_port, node_fixture_full};
    let ports: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let tail = "[geoip]\ndatabase = \"geo.mmdb\"\n";
    let nodes: Vec<Proc> = (1..=3)
        .map(|n| {
            let fx = node_fixture_full(n, &ports, KEY, PROFILE, "", tail);
            geodb::write(&fx.dir.path().join("geo.mmdb"), Schema::City);
            Proc::start(fx)
        })
        .collect();
    // Every node sees the other two before the sample is sent.
    for p in &nodes {
        wait_until(Duration::from_secs(20), || {
            let (_, s) = json(p.admin(), "GET", "/api/v1/status", None);
            s["cluster"]["nodes"]
                .as_array()
                .is_some_and(|n| n.len() == 3 && n.iter().all(|x| x["state"] == "alive"))
        })
        .expect("the cluster never formed");
        assert_eq!(dig(p.v4(), GB_NET).0, EU);
    }
    let sent = Instant::now();
    post(nodes[0].admin(), GB_NET, 120.0, 30.0, 40);
    let mut times = Vec::new();
    for (i, p) in nodes.iter().enumerate() {
        wait_until(Duration::from_secs(10), || dig(p.v4(), GB_NET).0 == US)
            .unwrap_or_else(|| panic!("ns{} never answered {US}:\n{}", i + 1, p.log()));
        times.push(sent.elapsed());
    }
    // Gossip every 100 ms: stated as within two intervals plus the
    // network; bounded here with room for a loaded machine.
    eprintln!(
        "a sample posted to ns1 changed every node's answer within {:?} ({times:?})",
        times[2]
    );
    assert!(times[2] < Duration::from_secs(5), "{times:?}");
    let (_, metrics) = http(nodes[2].admin(), "GET", "/metrics", None);
    assert!(
        metrics.contains("switchyard_latency_samples_total{result=\"cluster\"} 80"),
        "{metrics}"
    );
}
