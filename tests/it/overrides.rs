//! Safe runtime overrides and manual failback (issue 13), through the real
//! server, its API and the real `switchyard` CLI.

use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::harness::*;
use switchyard::health::Status;

const NAME: &str = "todoapi.tm.example.test.";
const PRIMARY: &str = "203.0.113.10";
const SECONDARY: &str = "198.51.100.20";

/// Runs the real CLI against `s`; (success, stdout + stderr).
fn cli(s: &TestServer, args: &[&str], token: Option<&str>) -> (bool, String) {
    let mut c = Command::new(bin());
    c.arg("--admin").arg(s.admin.to_string()).args(args);
    match token {
        Some(t) => c.env("SWITCHYARD_ADMIN_TOKEN", t),
        None => c.env_remove("SWITCHYARD_ADMIN_TOKEN"),
    };
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The status API's view of one endpoint.
fn endpoint(s: &TestServer, name: &str) -> Value {
    let (code, doc) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(code, 200, "{doc}");
    doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == NAME)
        .unwrap()["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()
        .clone()
}

fn history(s: &TestServer) -> Vec<Value> {
    let (_, doc) = json(s.admin, "GET", "/api/v1/status", None);
    doc["history"].as_array().unwrap().clone()
}

fn answer(s: &TestServer) -> Vec<String> {
    addrs(&udp(s.v4(), NAME, RecordType::A))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits until the decided statuses in the state file satisfy `f`.
fn wait_saved(s: &TestServer, f: impl Fn(&[Value]) -> bool) {
    let path = s.dir().join("state.json");
    let statuses = || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let doc: Value = serde_json::from_str(&text).unwrap_or_default();
        doc["statuses"].as_array().cloned().unwrap_or_default()
    };
    let start = Instant::now();
    while !f(&statuses()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not saved within 10 s: {:?}",
            statuses()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `disable --for`: the endpoint comes back by itself at the time shown,
/// the override (with its reason and time left) survives a restart, and
/// the history records the disable and its end.
#[test]
fn a_timed_disable_ends_by_itself_and_survives_a_restart() {
    let fx = Fixture::new("state_file = \"state.json\"", &[("todoapi.toml", TODOAPI)]);
    let s = fx.start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    assert_eq!(answer(&s), [PRIMARY]);
    let (ok, text) = cli(
        &s,
        &[
            "endpoint",
            "disable",
            NAME,
            "primary",
            "--for",
            "4s",
            "--reason",
            "CHG-1234 patching",
        ],
        None,
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("primary: Disabled (disabled at runtime until ") && text.contains(" left)"),
        "{text}"
    );
    assert_eq!(answer(&s), [SECONDARY]);
    // `switchyard status` lists it with the time left, who and why.
    let (ok, text) = cli(&s, &["status"], None);
    assert!(ok, "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("todoapi.tm.example.test./primary: disabled; until "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.ends_with(" left); by admin API: CHG-1234 patching"),
        "{line}"
    );
    let e = endpoint(&s, "primary");
    let o = &e["override"];
    assert_eq!(o["action"], "disable", "{e}");
    assert_eq!(o["in_force"], true);
    assert_eq!(o["reason"], "CHG-1234 patching");
    assert_eq!(o["by"], "admin API");
    let left = o["remaining_s"].as_u64().unwrap();
    assert!((1..=4).contains(&left), "{o}");
    // A restart keeps it, with the same end.
    let until = o["until"].clone();
    let fx = s.into_fixture();
    let s = fx.start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    let e = endpoint(&s, "primary");
    assert_eq!(e["override"]["until"], until, "{e}");
    assert_eq!(e["status"], "Disabled");
    assert_eq!(answer(&s), [SECONDARY]);
    // And it ends by itself: answered again, shown as over.
    wait_for("the disable to run out", Duration::from_secs(8), || {
        answer(&s) == [PRIMARY]
    });
    let e = endpoint(&s, "primary");
    assert_eq!(e["status"], "Online", "{e}");
    assert_eq!(e["override"]["in_force"], false, "{e}");
    assert_eq!(e["override"]["remaining_s"], 0, "{e}");
    // The history: the disable (kept across the restart) and its end.
    wait_for("the expiry in the history", Duration::from_secs(3), || {
        history(&s).iter().any(|h| {
            h["by"]
                .as_str()
                .is_some_and(|b| b.starts_with("expiry of the disable"))
        })
    });
    let h = history(&s);
    let disable = h
        .iter()
        .find(|h| h["action"] == "disable")
        .expect("disable kept");
    assert_eq!(disable["reason"], "CHG-1234 patching");
    assert_eq!(disable["until"], until);
    // Bad durations are refused, saying what is expected.
    let (ok, text) = cli(
        &s,
        &["endpoint", "disable", NAME, "primary", "--for", "soon"],
        None,
    );
    assert!(!ok && text.contains("`for` is not a duration"), "{text}");
    let (ok, text) = cli(
        &s,
        &["endpoint", "disable", NAME, "primary", "--for", "0s"],
        None,
    );
    assert!(!ok && text.contains("between 1s and 366d"), "{text}");
}

/// `drain`: out of answers, and "drained at" is the last answer naming it
/// plus that answer's TTL: in the API, the metric and the CLI, whose
/// `--wait` returns then.
#[test]
fn a_drain_says_when_the_last_cached_answer_expires() {
    let profile = ProfileToml::todoapi().ttl(3).build();
    let s = Fixture::new("state_file = \"state.json\"", &[("todoapi.toml", &profile)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    assert_eq!(answer(&s), [PRIMARY]);
    let served = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = Instant::now();
    let (ok, text) = cli(
        &s,
        &[
            "endpoint",
            "drain",
            NAME,
            "primary",
            "--reason",
            "move to v2",
            "--wait",
        ],
        None,
    );
    let waited = start.elapsed();
    assert!(ok, "{text}");
    assert_eq!(answer(&s), [SECONDARY], "drained: out of answers");
    // First the drain, then (after waiting) that it is complete.
    assert!(
        text.contains("primary: Disabled (draining; drained at "),
        "{text}"
    );
    assert!(text.contains("last answered "), "{text}");
    let done = text.lines().last().unwrap();
    assert!(
        done.contains(": drained at ") && !done.contains(" in "),
        "{text}"
    );
    // The last answer was within a second of `served`, with TTL 3: the CLI
    // waited for it (not for longer than a poll interval more).
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(8),
        "{waited:?}\n{text}"
    );
    let e = endpoint(&s, "primary");
    let d = &e["override"]["drain"];
    assert_eq!(e["override"]["action"], "drain", "{e}");
    assert_eq!(d["drained"], true, "{e}");
    let at = d["drained_at_unix"].as_u64().unwrap();
    // Answer time (to the second, rounded up) plus TTL.
    assert!(
        (served + 4..=served + 5).contains(&at),
        "drained at {at}, served at {served} with TTL 3: {e}"
    );
    assert!(d["last_served"].is_string(), "{e}");
    // The metric says the same.
    let (_, metrics) = http(s.admin, "GET", "/metrics", None);
    let line = format!(
        "switchyard_endpoint_drained_at_seconds{{profile=\"{NAME}\",endpoint=\"primary\"}} {at}"
    );
    assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    // Enabling ends the drain (and the metric's series).
    let (ok, text) = cli(&s, &["endpoint", "enable", NAME, "primary"], None);
    assert!(ok, "{text}");
    assert_eq!(answer(&s), [PRIMARY]);
    // (Scrapes within a second share one encoding: a later one has it.)
    let drained_series = || {
        let (_, metrics) = http(s.admin, "GET", "/metrics", None);
        metrics.contains("switchyard_endpoint_drained_at_seconds{")
    };
    wait_for(
        "the drained_at series to go",
        Duration::from_secs(10),
        || !drained_series(),
    );
}

/// A drain of an endpoint never answered is drained at once; `--wait`
/// with anything but drain is refused; the guard covers drains too.
#[test]
fn drain_edges_and_the_guard() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    // secondary has never been answered.
    let (ok, text) = cli(
        &s,
        &["endpoint", "drain", NAME, "secondary", "--wait"],
        None,
    );
    assert!(ok, "{text}");
    assert!(text.contains("not answered since tracked"), "{text}");
    let e = endpoint(&s, "secondary");
    assert_eq!(e["override"]["drain"]["drained"], true, "{e}");
    // Now primary is the last answerable one: draining it needs --force.
    let (ok, text) = cli(&s, &["endpoint", "drain", NAME, "primary"], None);
    assert!(
        !ok && text.contains("refused: primary is the last answerable endpoint")
            && text.contains("Drain it anyway with force"),
        "{text}"
    );
    assert_eq!(answer(&s), [PRIMARY]);
    let (ok, text) = cli(
        &s,
        &["endpoint", "disable", NAME, "primary", "--wait"],
        None,
    );
    assert!(!ok && text.contains("--wait goes with drain"), "{text}");
    let (ok, text) = cli(
        &s,
        &["endpoint", "enable", NAME, "primary", "--for", "1m"],
        None,
    );
    assert!(
        !ok && text.contains("--for goes with disable, drain and shed"),
        "{text}"
    );
}

/// Named admin tokens: an override records the name of the token used,
/// and the history shows it; reasons are cleaned and bounded.
#[test]
fn overrides_record_who_made_them() {
    let extra = "[admin]\nlisten = \"127.0.0.1:0\"\n[admin.tokens]\nalice = \"alice-token-0123456789\"\nbob = \"bob-token-0123456789\"\n";
    let s = Fixture::new(extra, &[("todoapi.toml", TODOAPI)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    // Without a token: refused.
    let (ok, text) = cli(&s, &["endpoint", "disable", NAME, "secondary"], None);
    assert!(!ok && text.contains("SWITCHYARD_ADMIN_TOKEN"), "{text}");
    let (ok, text) = cli(
        &s,
        &[
            "endpoint",
            "disable",
            NAME,
            "secondary",
            "--reason",
            "db\nmigration",
        ],
        Some("bob-token-0123456789"),
    );
    assert!(ok, "{text}");
    let (ok, text) = cli(
        &s,
        &["endpoint", "enable", NAME, "secondary"],
        Some("alice-token-0123456789"),
    );
    assert!(ok, "{text}");
    let h = history(&s);
    assert_eq!(h.len(), 2, "{h:?}");
    // Newest first.
    assert_eq!(
        (h[0]["action"].as_str(), h[0]["by"].as_str()),
        (Some("enable"), Some("alice"))
    );
    assert_eq!(
        (h[1]["action"].as_str(), h[1]["by"].as_str()),
        (Some("disable"), Some("bob"))
    );
    assert_eq!(h[1]["reason"], "db migration");
    // No token's secret is shown anywhere.
    let (_, status) = http(s.admin, "GET", "/api/v1/status", None);
    assert!(!status.contains("token-0123456789"), "{status}");
    // A very long reason is cut, not refused.
    let long = "x".repeat(1000);
    let path = format!("/api/v1/profiles/{NAME}/endpoints/secondary/disable?reason={long}");
    let (code, doc) = json(s.admin, "POST", &path, Some("alice-token-0123456789"));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["override"]["reason"].as_str().unwrap().len(), 200);
}

/// `failback = "manual"`: an endpoint back from Degraded is held out
/// (`Online (held)`) until resumed; explain and the status say so; other
/// nodes' and restarts' view aside, `failback_after` releases it by
/// itself.
#[test]
fn manual_failback_holds_a_recovered_endpoint_until_resumed() {
    let profile = ProfileToml::todoapi().set("failback", "manual").build();
    let s = Fixture::new("state_file = \"state.json\"", &[("todoapi.toml", &profile)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    // Online from the start (never Degraded): not held.
    assert_eq!(answer(&s), [PRIMARY]);
    s.set_status(NAME, "primary", Status::Degraded);
    assert_eq!(answer(&s), [SECONDARY]);
    s.set_status(NAME, "primary", Status::Online);
    // Recovered, but held.
    assert_eq!(answer(&s), [SECONDARY]);
    assert_eq!(tcp(s.v4(), NAME, RecordType::A).answers.len(), 1);
    let e = endpoint(&s, "primary");
    assert_eq!(e["status"], "Online (held)", "{e}");
    assert!(
        e["held"]["since"].is_string() && e["held"]["until"].is_null(),
        "{e}"
    );
    let (_, doc) = json(
        s.admin,
        "GET",
        "/api/v1/explain?name=todoapi.tm.example.test&type=A",
        None,
    );
    let text = doc.to_string();
    assert!(
        text.contains("held out by failback = \\\"manual\\\" until resumed"),
        "{text}"
    );
    let (_, metrics) = http(s.admin, "GET", "/metrics", None);
    assert!(
        metrics.contains(&format!(
            "switchyard_endpoint_status{{profile=\"{NAME}\",endpoint=\"primary\",status=\"Online (held)\"}} 1"
        )),
        "{metrics}"
    );
    // Still held a while later: nothing but an operator releases it.
    // Watched for 1.2 s.
    let end = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < end {
        assert_eq!(answer(&s), [SECONDARY]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, text) = cli(&s, &["endpoint", "resume", NAME, "primary"], None);
    assert!(ok, "{text}");
    assert!(text.contains("primary: Online"), "{text}");
    assert_eq!(answer(&s), [PRIMARY]);
    assert!(endpoint(&s, "primary")["held"].is_null());
    assert_eq!(history(&s)[0]["action"], "resume", "{:?}", history(&s));
    // The next failure and recovery holds it again.
    s.set_status(NAME, "primary", Status::Degraded);
    s.set_status(NAME, "primary", Status::Online);
    assert_eq!(answer(&s), [SECONDARY]);
    assert_eq!(endpoint(&s, "primary")["status"], "Online (held)");
    // Taking out the last Online endpoint while one is held says so.
    let (ok, text) = cli(&s, &["endpoint", "disable", NAME, "secondary"], None);
    assert!(
        !ok && text.contains(
            "would answer primary (203.0.113.10), since the endpoints failback = \"manual\" holds out answer"
        ),
        "{text}"
    );
    // If no other endpoint can answer, the held one does (it is healthy):
    // no failing open.
    s.set_status(NAME, "secondary", Status::Degraded);
    assert_eq!(answer(&s), [PRIMARY]);
    let (_, doc) = json(s.admin, "GET", "/api/v1/status", None);
    let p = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == NAME)
        .unwrap();
    assert_eq!(p["serving"], "healthy", "{p}");
}

/// A held endpoint is never mixed with Degraded ones: with a weighted
/// profile whose only other endpoint is Degraded, every answer is the held
/// (healthy) one, not a fail-open draw over both.
#[test]
fn a_held_endpoint_answers_before_failing_open() {
    let profile = ProfileToml::todoapi()
        .set("routing", "weighted")
        .set("failback", "manual")
        .build()
        .replace("priority = 1\n", "")
        .replace("priority = 2\n", "");
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start();
    s.set_status(NAME, "secondary", Status::Degraded);
    s.set_status(NAME, "primary", Status::Degraded);
    s.set_status(NAME, "primary", Status::Online);
    assert_eq!(endpoint(&s, "primary")["status"], "Online (held)");
    for _ in 0..40 {
        assert_eq!(answer(&s), [PRIMARY]);
    }
}

/// `failback_after`: a held endpoint returns by itself after that long.
#[test]
fn failback_after_releases_a_hold_by_itself() {
    let profile = ProfileToml::todoapi()
        .set("failback", "manual")
        .set("failback_after", "2s")
        .build();
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start();
    s.set_status(NAME, "secondary", Status::Online);
    s.set_status(NAME, "primary", Status::Degraded);
    s.set_status(NAME, "primary", Status::Online);
    assert_eq!(answer(&s), [SECONDARY]);
    let e = endpoint(&s, "primary");
    assert_eq!(e["status"], "Online (held)", "{e}");
    assert!(e["held"]["until"].is_string(), "{e}");
    wait_for("the hold to end", Duration::from_secs(5), || {
        answer(&s) == [PRIMARY]
    });
    assert_eq!(endpoint(&s, "primary")["status"], "Online");
}

/// `check` explains failback mistakes with file, line and field.
#[test]
fn failback_settings_are_checked() {
    for (set, want) in [
        (
            vec![("failback", "sometimes")],
            "`sometimes` is not a failback mode",
        ),
        (
            vec![("failback_after", "5m")],
            "only used with failback = \"manual\"",
        ),
        (
            vec![("failback", "manual"), ("failback_after", "0s")],
            "must be at least 1s",
        ),
    ] {
        let mut p = ProfileToml::todoapi();
        for (k, v) in set {
            p = p.set(k, v);
        }
        let fx = Fixture::new("", &[("todoapi.toml", &p.build())]);
        let out = Command::new(bin())
            .args(["check", "--config"])
            .arg(fx.config_path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains("todoapi.toml:") && text.contains(want),
            "{want}: {text}"
        );
    }
}

/// Turning on `failback = "manual"` by a reload holds the recoveries that
/// come after, not one that happened (and was answered again) before.
#[test]
fn manual_failback_turned_on_by_a_reload_holds_no_earlier_recovery() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    s.set_status(NAME, "primary", Status::Degraded);
    s.set_status(NAME, "primary", Status::Online);
    // Automatic failback: answered again at once.
    assert_eq!(answer(&s), [PRIMARY]);
    let manual = ProfileToml::todoapi().set("failback", "manual").build();
    std::fs::write(s.dir().join("profiles").join("todoapi.toml"), manual).unwrap();
    let (code, doc) = json(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200, "{doc}");
    // The primary serves on: it recovered before the hold was configured.
    assert_eq!(endpoint(&s, "primary")["status"], "Online");
    assert_eq!(answer(&s), [PRIMARY]);
    // A reload that changes nothing about failback keeps holds as they are.
    s.set_status(NAME, "primary", Status::Degraded);
    s.set_status(NAME, "primary", Status::Online);
    assert_eq!(endpoint(&s, "primary")["status"], "Online (held)");
    let (code, doc) = json(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(endpoint(&s, "primary")["status"], "Online (held)");
    assert_eq!(answer(&s), [SECONDARY]);
}

/// A hold lasts across a restart (the state file keeps when the probe
/// target recovered), with the real prober deciding; a restart that turns
/// manual failback on does not hold a recovery from before.
#[test]
fn a_hold_survives_a_restart() {
    use crate::backend::{Backend, Mode, wait_until};
    let primary = Backend::http(Mode::Ok);
    let secondary = Backend::http(Mode::Ok);
    let profile = |manual: bool| {
        let p = ProfileToml::todoapi_probed(primary.port(), secondary.port());
        if manual {
            p.set("failback", "manual")
        } else {
            p
        }
        .build()
    };
    // Automatic failback: primary fails and recovers, then a restart turns
    // manual failback on: that earlier recovery is not held.
    let fx = Fixture::new(
        "state_file = \"state.json\"",
        &[("todoapi.toml", &profile(false))],
    );
    let s = fx.start_probing();
    wait_until(Duration::from_secs(5), || answer(&s) == [PRIMARY]).expect("not serving");
    primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(5), || answer(&s) == [SECONDARY]).expect("no failover");
    let recovering = now_ms();
    primary.set(Mode::Ok);
    wait_until(Duration::from_secs(5), || answer(&s) == [PRIMARY]).expect("no failback");
    wait_saved(&s, |st| {
        st.len() == 2
            && st.iter().all(|x| x["status"] == "Online")
            && st.iter().any(|x| x["since"].as_u64() >= Some(recovering))
    });
    let fx = s.into_fixture();
    std::fs::write(fx.dir.path().join("profiles/todoapi.toml"), profile(true)).unwrap();
    let s = fx.start_probing();
    assert_eq!(answer(&s), [PRIMARY], "an old recovery held");
    // Now a recovery under manual failback: held, and still after a restart.
    primary.set(Mode::Unavailable);
    wait_until(Duration::from_secs(5), || answer(&s) == [SECONDARY]).expect("no failover");
    primary.set(Mode::Ok);
    wait_until(Duration::from_secs(5), || {
        endpoint(&s, "primary")["status"] == "Online (held)"
    })
    .expect("not held");
    wait_saved(&s, |st| {
        st.iter().any(|x| x["recovered"].as_u64() > Some(0))
    });
    let s = s.into_fixture().start_probing();
    assert_eq!(answer(&s), [SECONDARY], "the hold was lost in the restart");
    assert_eq!(endpoint(&s, "primary")["status"], "Online (held)");
    let (ok, text) = cli(&s, &["endpoint", "resume", NAME, "primary"], None);
    assert!(ok, "{text}");
    assert_eq!(answer(&s), [PRIMARY]);
}

/// `drain --wait` shows its progress while it waits (issue 20, item 19):
/// piped, a line at once and then every few seconds with the time left and
/// the last answer seen, never silent for long; on a terminal, one line
/// rewritten in place. Then the final "drained at" line.
#[test]
fn drain_wait_shows_progress() {
    let profile = ProfileToml::todoapi().ttl(7).build();
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start();
    s.set_status(NAME, "primary", Status::Online);
    s.set_status(NAME, "secondary", Status::Online);
    assert_eq!(answer(&s), [PRIMARY]);
    let start = Instant::now();
    let mut child = Command::new(bin())
        .arg("--admin")
        .arg(s.admin.to_string())
        .args(["endpoint", "drain", NAME, "primary", "--wait"])
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines: Vec<(Duration, String)> = Vec::new();
    use std::io::BufRead;
    for line in std::io::BufReader::new(stdout).lines() {
        lines.push((start.elapsed(), line.unwrap()));
    }
    assert!(child.wait().unwrap().success());
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    let text = text.join("\n");
    assert!(
        lines[0]
            .1
            .contains("primary: Disabled (draining; drained at "),
        "{text}"
    );
    let done = &lines.last().unwrap().1;
    assert!(
        done.contains(": drained at ") && !done.contains(" left"),
        "{text}"
    );
    // (A note may follow the drain line: no state file here.)
    let progress: Vec<&(Duration, String)> = lines[1..lines.len() - 1]
        .iter()
        .filter(|(_, l)| !l.starts_with("note: "))
        .collect();
    assert!(progress.len() >= 2, "no progress while waiting:\n{text}");
    for (_, l) in &progress {
        assert!(
            l.contains(" left (drained at ") && l.contains("; last answered "),
            "{text}"
        );
    }
    // The first at once, then never silent for long (a line every 5 s).
    assert!(
        progress[0].0 < lines[0].0 + Duration::from_secs(2),
        "{lines:?}"
    );
    for pair in lines.windows(2) {
        assert!(pair[1].0 - pair[0].0 < Duration::from_secs(7), "{lines:?}");
    }
    let left = |l: &str| -> u64 {
        let before = l.split(" left").next().unwrap();
        before
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches('s')
            .parse()
            .unwrap()
    };
    assert!(
        left(&progress[0].1) > left(&progress[progress.len() - 1].1),
        "the time left goes down:\n{text}"
    );

    // On a terminal (`script` gives it one): one line, rewritten in place.
    s.set_status(NAME, "primary", Status::Online);
    let (ok, out) = cli(&s, &["endpoint", "enable", NAME, "primary"], None);
    assert!(ok, "{out}");
    assert_eq!(answer(&s), [PRIMARY]);
    let command = format!(
        "{} --admin {} endpoint drain {NAME} primary --wait",
        bin().display(),
        s.admin
    );
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .output()
        .expect("script (util-linux) runs a command on a terminal");
    assert!(out.status.success());
    let tty = String::from_utf8_lossy(&out.stdout);
    let rewrites = tty.matches("\r\x1b[2K").count();
    assert!(rewrites >= 3, "not rewritten in place: {tty:?}");
    assert!(tty.contains(" left (drained at "), "{tty:?}");
    let last = tty.trim_end().rsplit(['\n', '\r']).next().unwrap();
    assert!(last.contains(": drained at "), "{tty:?}");
}
