//! HTTPS certificate expiry (issue 22): the real server probing a real
//! HTTPS backend on loopback whose certificate (made at test time by the
//! test CA) expires soon: the metric, the warning in `switchyard status`,
//! the API and the page, and one `endpoint.certificate` notification per
//! crossing of `cert_warning`, to a real webhook receiver. Then the
//! shipped alert, through `promtool test rules`.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::backend::{Backend, Mode, Pki, wait_until};
use crate::harness::*;
use crate::notify::{Behaviour, Receiver, target};

const NAME: &str = "secure.tm.example.test.";
const DAY: u64 = 86_400;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A profile probing one endpoint, `tls`, over HTTPS on `port`, with
/// `extra` monitor keys.
fn profile(name: &str, port: u16, extra: &str) -> String {
    format!(
        "name = \"{name}\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"https\"\nport = {port}\ninterval = \"300ms\"\ntimeout = \"250ms\"\n{extra}\n[[endpoints]]\nname = \"tls\"\ntarget = \"127.0.0.1\"\n"
    )
}

/// The endpoint `endpoint` of profile `profile` in the status document.
fn endpoint<'a>(doc: &'a Value, profile: &str, endpoint: &str) -> &'a Value {
    doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == profile)
        .and_then(|p| {
            p["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == endpoint)
        })
        .unwrap_or_else(|| panic!("no {profile}/{endpoint} in {doc}"))
}

/// `switchyard status` against `admin`: its standard output.
fn status_text(admin: std::net::SocketAddr) -> String {
    let out = Command::new(bin())
        .args(["status", "--admin", &admin.to_string()])
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the `name{profile="...",endpoint="tls"}` series.
fn metric(metrics: &str, name: &str) -> Option<i64> {
    let prefix = format!("{name}{{profile=\"{NAME}\",endpoint=\"tls\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
fn an_expiring_certificate_is_measured_warned_and_notified_once_per_crossing() {
    let pki = Pki::new();
    // Two days and a half left: within the default cert_warning (14d).
    let soon = now_unix() + 5 * DAY / 2;
    let backend = Backend::https_with(Mode::Ok, pki.server_config_until(soon));
    let receiver = Receiver::start(Behaviour::Ok);
    let extra = target(
        "ops",
        &receiver.url(),
        "events = [\"endpoint.certificate\"]",
    );
    // Verified against the test CA: the certificate is good, just short-lived.
    let ca = format!("ca_cert = \"{}\"", pki.path("ca.pem").display());
    let fx = Fixture::new(
        &extra,
        &[("secure.toml", &profile(NAME, backend.port(), &ca))],
    );
    let p = Proc::start(fx);

    // The notification: one, when the first probe sees the certificate.
    wait_until(Duration::from_secs(20), || {
        !receiver.accepted("endpoint.certificate").is_empty()
    })
    .unwrap_or_else(|| panic!("no endpoint.certificate event:\n{}", p.log()));
    let doc = receiver.accepted("endpoint.certificate")[0].json();
    assert_eq!(doc["event"], "endpoint.certificate");
    assert_eq!(doc["profile"], NAME);
    assert_eq!(doc["endpoint"], "tls");
    assert_eq!(doc["old_status"], "valid");
    assert_eq!(doc["new_status"], "expiring");
    let when = switchyard::clock::rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(soon))
        .replace('T', " ")
        .replace('Z', " UTC");
    let reason = format!("certificate expires in 2 days ({when}), within cert_warning (14d)");
    assert_eq!(doc["reason"], reason.as_str(), "{doc}");
    assert!(
        doc["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{NAME}/tls: {reason}")),
        "{doc}"
    );
    assert!(p.log().contains("certificate expiring"), "{}", p.log());

    // The metric: notAfter as Unix time, and the threshold beside it.
    let (code, metrics) = http(p.admin(), "GET", "/metrics", None);
    assert_eq!(code, 200);
    assert_eq!(
        metric(
            &metrics,
            "switchyard_probe_certificate_expiration_timestamp_seconds"
        ),
        Some(soon as i64),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "switchyard_probe_certificate_warning_seconds"),
        Some(14 * DAY as i64)
    );

    // The API, `switchyard status` and the page warn.
    let (code, doc) = json(p.admin(), "GET", "/api/v1/status", None);
    assert_eq!(code, 200);
    let cert = &endpoint(&doc, NAME, "tls")["certificate"];
    assert_eq!(cert["not_after_unix"], soon, "{cert}");
    assert_eq!(cert["days_left"], 2);
    assert_eq!(cert["warning_s"], 14 * DAY);
    assert_eq!(cert["expiring"], true);
    assert_eq!(cert["warning"], reason.as_str());
    let text = status_text(p.admin());
    assert!(
        text.contains(&format!("WARNINGS\n{NAME}/tls: {reason}\n")),
        "{text}"
    );
    let (_, page) = http(p.admin(), "GET", "/", None);
    let line = format!("<div class=\"cert expiring\">{reason}</div>");
    assert!(page.contains(&line), "{page}");
    // The page's script, in a browser, says the same.
    let dom = crate::page::render(&format!("http://{}/", p.admin()));
    assert!(dom.contains(&line), "{dom}");
    assert!(
        dom.contains("<div id=\"problem\" style=\"display: none;\"></div>"),
        "the script rendered the document: {dom}"
    );

    // One event per crossing, not per probe: three more probes see it, and
    // the receiver has heard nothing more.
    let probes = backend.request_count();
    wait_until(Duration::from_secs(20), || {
        backend.request_count() >= probes + 3
    })
    .expect("no more probes");
    assert_eq!(receiver.accepted("endpoint.certificate").len(), 1);

    // Renewed: the next connections get a certificate valid for 90 days.
    let later = now_unix() + 90 * DAY;
    backend.set_tls(pki.server_config_until(later));
    wait_until(Duration::from_secs(20), || {
        receiver.accepted("endpoint.certificate").len() >= 2
    })
    .unwrap_or_else(|| panic!("no renewal event:\n{}", p.log()));
    let doc = receiver.accepted("endpoint.certificate")[1].json();
    assert_eq!(doc["old_status"], "expiring");
    assert_eq!(doc["new_status"], "valid");
    let reason = doc["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("certificate expires in 89 days (")
            && reason.ends_with("), beyond cert_warning (14d)"),
        "{reason}"
    );
    assert!(
        doc["summary"].as_str().unwrap().starts_with(&format!(
            "{NAME}/tls: renewed: certificate expires in 89 days"
        )),
        "{doc}"
    );
    let (_, metrics) = http(p.admin(), "GET", "/metrics", None);
    assert_eq!(
        metric(
            &metrics,
            "switchyard_probe_certificate_expiration_timestamp_seconds"
        ),
        Some(later as i64)
    );
    let (_, doc) = json(p.admin(), "GET", "/api/v1/status", None);
    let cert = &endpoint(&doc, NAME, "tls")["certificate"];
    assert_eq!(
        (&cert["expiring"], &cert["days_left"]),
        (&Value::Bool(false), &Value::from(89))
    );
    assert!(cert.get("warning").is_none(), "{cert}");
    let text = status_text(p.admin());
    assert!(!text.contains("WARNINGS"), "{text}");
    let (_, page) = http(p.admin(), "GET", "/", None);
    assert!(
        page.contains("<div class=\"cert muted\">certificate: 89 days left</div>"),
        "{page}"
    );
    assert_eq!(receiver.accepted("endpoint.certificate").len(), 2);
}

#[test]
fn an_expired_certificate_fails_a_verified_probe_and_is_still_reported_unverified() {
    let pki = Pki::new();
    let expired = now_unix() - 2 * DAY;
    let backend = Backend::https_with(Mode::Ok, pki.server_config_until(expired));
    let ca = format!("ca_cert = \"{}\"", pki.path("ca.pem").display());
    let verified = "verified.tm.example.test.";
    let unverified = "unverified.tm.example.test.";
    let fx = Fixture::new(
        "",
        &[
            (
                "verified.toml",
                &profile(
                    verified,
                    backend.port(),
                    &format!("{ca}\ntolerated_failures = 0"),
                ),
            ),
            (
                "unverified.toml",
                // Warn only once it has expired: it has.
                &profile(
                    unverified,
                    backend.port(),
                    "tls_verify = false\ncert_warning = \"0s\"",
                ),
            ),
        ],
    );
    let p = Proc::start(fx);
    let mut doc = Value::Null;
    let settled = wait_until(Duration::from_secs(20), || {
        doc = json(p.admin(), "GET", "/api/v1/status", None).1;
        endpoint(&doc, verified, "tls")["status"] == "Degraded"
            && endpoint(&doc, unverified, "tls")["certificate"].is_object()
    });
    assert!(settled.is_some(), "{doc}");
    // Verified: the handshake fails, so the probe does, saying why.
    let e = endpoint(&doc, verified, "tls");
    let error = e["last_probe"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("tls: ") && error.contains("expired"),
        "{error}"
    );
    assert!(e.get("certificate").is_none(), "{e}");
    // Unverified: the probe succeeds, and the expiry is still reported.
    let e = endpoint(&doc, unverified, "tls");
    assert_eq!(e["last_probe"]["error"], Value::Null, "{e}");
    let cert = &e["certificate"];
    assert_eq!(cert["not_after_unix"], expired);
    assert_eq!(cert["days_left"], -2);
    assert_eq!(cert["warning_s"], 0);
    let warning = cert["warning"].as_str().unwrap();
    assert!(
        warning.starts_with("certificate expired 2 days ago (")
            && warning.ends_with("), within cert_warning (0s)"),
        "{warning}"
    );
    let text = status_text(p.admin());
    assert!(
        text.contains(&format!("{unverified}/tls: {warning}")),
        "{text}"
    );
}

#[test]
fn the_alert_fires_within_cert_warning_only() {
    // promtool evaluates the shipped rule over two certificates, one with
    // 10 days left (within the 14-day threshold) and one with 100.
    let dir = tempfile::tempdir().unwrap();
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/prometheus/alerts.yml"
    );
    let series = |metric: &str, endpoint: &str, value: u64| {
        format!(
            "      - series: '{metric}{{instance=\"ns1\",profile=\"{NAME}\",endpoint=\"{endpoint}\"}}'\n        values: '{value}x10'\n"
        )
    };
    let mut input = String::new();
    for (endpoint, expires) in [("soon", 10 * DAY), ("later", 100 * DAY)] {
        input += &series(
            "switchyard_probe_certificate_expiration_timestamp_seconds",
            endpoint,
            expires,
        );
        input += &series(
            "switchyard_probe_certificate_warning_seconds",
            endpoint,
            14 * DAY,
        );
    }
    let test = format!(
        "rule_files:\n  - {rules}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{input}    alert_rule_test:\n      - eval_time: 5m\n        alertname: SwitchyardCertificateExpiringSoon\n        exp_alerts:\n          - exp_labels:\n              severity: warning\n              instance: ns1\n              profile: {NAME}\n              endpoint: soon\n            exp_annotations:\n              summary: \"The certificate of {NAME}/soon expires in 9d 23h 55m 0s\"\n              description: \"Seen by the probes of ns1. Renew it before it expires: with tls_verify on, an expired certificate fails the probe and the endpoint goes Degraded.\"\n"
    );
    let path = dir.path().join("cert_test.yml");
    std::fs::write(&path, test).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .expect("promtool is not installed; run the tests with scripts/test.sh, which installs it");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}
