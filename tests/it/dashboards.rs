//! The shipped dashboard and alerting rules (issue 13): the rules pass
//! `promtool check rules` (Debian's `prometheus` package), the dashboard is
//! valid Grafana JSON whose every panel queries something, and every metric
//! (and every label value a rule selects) they use is in a real server's
//! `/metrics`, so a renamed metric cannot silently empty a panel or an
//! alert.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::backend::{Backend, Mode, Pki};
use crate::harness::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> (String, String) {
    let rules = std::fs::read_to_string(repo().join("examples/prometheus/alerts.yml")).unwrap();
    let dash = std::fs::read_to_string(repo().join("examples/grafana/switchyard.json")).unwrap();
    (rules, dash)
}

#[test]
fn promtool_accepts_the_alerting_rules() {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo().join("examples/prometheus/alerts.yml"))
        .output()
        .expect("promtool is not installed; run the tests with scripts/test.sh, which installs it");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 10 rules found"), "{text}");
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_in_every_panel() {
    let (_, dash) = shipped();
    let d: serde_json::Value = serde_json::from_str(&dash).unwrap();
    assert_eq!(d["uid"], "switchyard");
    let panels = d["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for want in [
        "Answers by profile and endpoint",
        "Endpoint status",
        "Probe latency (p50, p99)",
        "Failovers (status changes)",
        "Rate-limited responses",
    ] {
        assert!(titles.contains(&want), "{want} missing: {titles:?}");
    }
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_i64().unwrap()),
            "panel ids are unique"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert!(t["expr"].as_str().unwrap().contains("switchyard_"), "{t}");
        }
    }
}

/// Metric names (`switchyard_...`) and `name{label="value"}` selectors in
/// a rules or dashboard text.
fn used(text: &str) -> (BTreeSet<String>, BTreeSet<(String, String, String)>) {
    let mut names = BTreeSet::new();
    let mut selectors = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("switchyard_") {
        rest = &rest[i..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[name.len()..];
        if let Some(sel) = rest.strip_prefix('{') {
            let body = &sel[..sel.find('}').unwrap()];
            for m in body.split(',') {
                let Some((label, value)) = m.split_once('=') else {
                    continue;
                };
                let (label, value) = (label.trim(), value.trim());
                // Exact matches on literal values (not $variables or regexes).
                if !label.ends_with('!') && !label.ends_with('~') && !value.contains('$') {
                    let value = value.trim_matches('"').replace("\\\"", "\"");
                    selectors.insert((name.clone(), label.to_string(), value));
                }
            }
        }
        names.insert(name);
    }
    (names, selectors)
}

#[test]
fn every_metric_the_dashboard_and_rules_use_is_served() {
    // One node of a cluster, a monitored profile, an HTTPS-probed one, a
    // signed zone, rate limiting on: every metric family appears.
    let backend = Backend::http(Mode::Ok);
    let pki = Pki::new();
    let tls_backend = Backend::https(Mode::Ok, &pki, false);
    let secure = format!(
        "name = \"secure.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"https\"\nport = {}\ninterval = \"2s\"\ntimeout = \"1s\"\ntls_verify = false\n[[endpoints]]\nname = \"tls\"\ntarget = \"127.0.0.1\"\n",
        tls_backend.port()
    );
    let port = crate::harness::free_port(true);
    let extra = format!(
        "[cluster]\nnode = \"ns1\"\nlisten = \"127.0.0.1:{port}\"\nkey = {{ file = \"cluster.key\" }}\nwarm_start = \"0s\"\n\
         [[notify]]\nname = \"oncall\"\nurl = \"http://127.0.0.1:9/hook\"\n"
    );
    let zone = zone_with_records("") + "dnssec = { key = { file = \"keys/tm.key\" } }\n";
    let profile = ProfileToml::todoapi()
        .set_monitor("protocol", "http")
        .set_monitor("interval", "200ms")
        .set_monitor("timeout", "100ms")
        .set_endpoint(
            "primary",
            "probe",
            Toml::raw(format!(
                "{{ address = \"127.0.0.1\", port = {} }}",
                backend.port()
            )),
        )
        .set_endpoint(
            "secondary",
            "probe",
            Toml::raw(format!(
                "{{ address = \"127.0.0.1\", port = {} }}",
                backend.port()
            )),
        )
        .build();
    let fx = Fixture::with_zone(
        &extra,
        &zone,
        &[("todoapi.toml", &profile), ("secure.toml", &secure)],
    );
    let key = fx.dir.path().join("cluster.key");
    std::fs::write(&key, "a shared secret of the cluster, long enough").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(bin())
        .args(["dnssec", "keygen", "--zone", "tm.example.test.", "--out"])
        .arg(fx.dir.path().join("keys/tm.key"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let p = Proc::start(fx);
    // A probe and a signed answer, so every series has had a chance to appear.
    crate::backend::wait_until(Duration::from_secs(10), || backend.request_count() >= 2)
        .expect("no probe");
    // The HTTPS probe's certificate is in the metrics once it is recorded.
    crate::backend::wait_until(Duration::from_secs(10), || {
        let (_, m) = http(p.admin(), "GET", "/metrics", None);
        m.contains("switchyard_probe_certificate_expiration_timestamp_seconds{")
    })
    .expect("no HTTPS probe");
    let q = build(
        "todoapi.tm.example.test.",
        hickory_proto::rr::RecordType::A,
        Opts {
            edns: Some(1232),
            dnssec_ok: true,
        },
    );
    udp_raw(p.v4(), &q.to_vec().unwrap(), TIMEOUT).expect("an answer");
    let (code, metrics) = http(p.admin(), "GET", "/metrics", None);
    assert_eq!(code, 200);
    let (rules, dash) = shipped();
    for (what, text) in [("alerts.yml", &rules), ("switchyard.json", &dash)] {
        let (names, selectors) = used(text);
        assert!(names.len() >= 5, "{what}: {names:?}");
        for name in &names {
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{what} uses {name}, which /metrics does not serve"
            );
        }
        for (name, label, value) in &selectors {
            let needle = format!("{label}=\"{value}\"");
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}{{")) && l.contains(&needle)),
                "{what} selects {name}{{{needle}}}, which /metrics never has"
            );
        }
    }
}
