//! `switchyard check --diff` and `POST /api/v1/reload?dry_run=1`: the real
//! binary asks the running server what an edit on disk would change in its
//! answers; the dry run changes nothing, and the real reload that follows
//! answers what the diff said.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use switchyard::health::Status;

use crate::geo::{ecs_option, query_with_option};
use crate::geodb::{self, Schema};
use crate::harness::*;

const API: &str = "api.tm.example.test.";

/// A geographic profile: `west` and `central` are the regions of eu-west
/// and eu-central; us-east answers the rest of the world.
fn api(west: &str, central: &str) -> String {
    format!(
        r#"
name = "api.tm.example.test."
routing = "geographic"
ttl = 60
[monitor]
protocol = "tcp"
port = 9
[[endpoints]]
name = "eu-west"
target = "192.0.2.1"
regions = [{west}]
[[endpoints]]
name = "eu-central"
target = "192.0.2.2"
regions = [{central}]
[[endpoints]]
name = "us-east"
target = "192.0.2.3"
regions = ["WORLD"]
"#
    )
}

fn shop(blue: u32, green: u32) -> String {
    format!(
        r#"
name = "shop.tm.example.test."
routing = "weighted"
[[endpoints]]
name = "blue"
target = "192.0.2.10"
weight = {blue}
[[endpoints]]
name = "green"
target = "192.0.2.11"
weight = {green}
"#
    )
}

fn single(name: &str, addr: &str) -> String {
    format!(
        "name = \"{name}.tm.example.test.\"\nrouting = \"priority\"\n[[endpoints]]\nname = \"only\"\ntarget = \"{addr}\"\n"
    )
}

/// The running server (`profiles.watch = false`: an edit waits for a
/// reload) on
/// eu-west for GB and SE, blue/green 90/10 and old.tm, every endpoint Online.
fn server() -> TestServer {
    let fx = Fixture::new(
        "[geoip]\ndatabase = \"geo.mmdb\"",
        &[
            ("api.toml", &api("\"GB\", \"SE\", \"GEO-EU\"", "\"CH\"")),
            ("shop.toml", &shop(90, 10)),
            ("old.toml", &single("old", "192.0.2.9")),
        ],
    );
    geodb::write(&fx.dir.path().join("geo.mmdb"), Schema::City);
    // Edits wait for a reload: the setting this workflow is for.
    let path = fx.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "[profiles]\ndir = \"profiles\"\n",
        "[profiles]\ndir = \"profiles\"\nwatch = false\n",
    );
    assert!(text.contains("watch = false"));
    std::fs::write(&path, text).unwrap();
    let s = fx.start();
    for e in ["eu-west", "eu-central", "us-east"] {
        s.set_status(API, e, Status::Online);
    }
    s
}

/// The edit: GB and SE move to eu-central, blue/green go 50/50, old.tm
/// goes and new.tm comes.
fn edit(s: &TestServer) {
    let dir = s.dir().join("profiles");
    std::fs::write(
        dir.join("api.toml"),
        api("\"GEO-EU\"", "\"GB\", \"SE\", \"CH\""),
    )
    .unwrap();
    std::fs::write(dir.join("shop.toml"), shop(50, 50)).unwrap();
    std::fs::remove_file(dir.join("old.toml")).unwrap();
    std::fs::write(dir.join("new.toml"), single("new", "192.0.2.7")).unwrap();
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .env_remove("SWITCHYARD_ADMIN")
        .env_remove("SWITCHYARD_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn check_diff(s: &TestServer) -> (i32, String, String) {
    let config = s.dir().join("switchyard.toml");
    run(&[
        "check",
        "--diff",
        "-c",
        config.to_str().unwrap(),
        "--admin",
        &s.admin.to_string(),
    ])
}

/// The address `name` answers a client in `subnet` (ECS /24), or the rcode.
fn answer_for(addr: SocketAddr, name: &str, subnet: &str) -> String {
    let q = query_with_option(name, RecordType::A, &ecs_option(subnet, 24));
    let m = Message::from_vec(&udp_raw(addr, &q, TIMEOUT).expect("no reply")).unwrap();
    match m.metadata.response_code {
        ResponseCode::NoError => addrs(&m).join(","),
        rcode => format!("{rcode:?}"),
    }
}

/// What the server answers, for the names and clients the edit touches.
fn answers(s: &TestServer) -> Vec<String> {
    let a = s.v4();
    vec![
        answer_for(a, API, "81.2.69.0"),   // GB
        answer_for(a, API, "89.160.20.0"), // SE
        answer_for(a, API, "8.8.8.0"),     // US: everything else
        answer_for(a, API, "200.160.0.0"), // BR: everything else
        answer_for(a, "old.tm.example.test.", "8.8.8.0"),
        answer_for(a, "new.tm.example.test.", "8.8.8.0"),
    ]
}

fn statuses(s: &TestServer) -> Vec<Status> {
    let t = s.shared.serving.table.load();
    t.endpoints.iter().map(|e| t.status(e)).collect()
}

#[test]
fn check_diff_shows_the_blast_radius_and_the_reload_matches_it() {
    let s = server();
    let before = answers(&s);
    assert_eq!(
        before,
        [
            "192.0.2.1",
            "192.0.2.1",
            "192.0.2.3",
            "192.0.2.3",
            "192.0.2.9",
            "NXDomain"
        ]
    );
    let table = s.shared.serving.table.load_full();
    let health = statuses(&s);
    edit(&s);

    let (code, out, err) = check_diff(&s);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "switchyard.toml: ok (1 zone, 3 profiles, 6 endpoints)\n",
        "(nothing applied):\n",
        "api.tm.example.test (geographic)\n  GB, SE: eu-west (192.0.2.1) -> eu-central (192.0.2.2)\n  clients no key matches: unchanged (us-east (192.0.2.3))\n",
        "new.tm.example.test: added (priority, answers only (192.0.2.7))\n",
        "old.tm.example.test: removed (priority, was answering only (192.0.2.9))\n",
        "shop.tm.example.test (weighted)\n  weights: blue 90 -> 50 (90% -> 50%), green 10 -> 50 (10% -> 50%)\n",
        "4 names change, ",
    ] {
        assert!(out.contains(want), "{want}\nnot in:\n{out}");
    }

    // The API gives the same as JSON.
    let (code, doc) = json(s.admin, "POST", "/api/v1/reload?dry_run=1", None);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["result"], "dry-run");
    let names = doc["dry_run"]["diff"]["names"].as_array().unwrap();
    let summary: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("api.tm.example.test".to_string(), "changed".to_string()),
            ("new.tm.example.test".into(), "added".into()),
            ("old.tm.example.test".into(), "removed".into()),
            ("shop.tm.example.test".into(), "changed".into()),
        ]
    );
    let moved = &names[0]["details"][0];
    assert_eq!(moved["aspect"], "clients");
    assert_eq!(moved["keys"], serde_json::json!(["GB", "SE"]));
    assert_eq!(moved["old"], "eu-west (192.0.2.1)");
    assert_eq!(moved["new"], "eu-central (192.0.2.2)");
    assert_eq!(
        names[3]["details"][0]["share"],
        serde_json::json!([90, 50]),
        "{doc}"
    );
    assert!(
        doc["dry_run"]["text"]
            .as_str()
            .unwrap()
            .contains("GB, SE: eu-west (192.0.2.1) -> eu-central (192.0.2.2)")
    );

    // The dry runs changed nothing: same table, same health, same answers;
    // and with the watch off, the edit waits. Watched for 1.5 s, six times
    // the watch's 250 ms debounce: no reload of any kind, no new table.
    let reloads = || {
        (
            s.shared.serving.metrics.reloads(true),
            s.shared.serving.metrics.reloads(false),
        )
    };
    let before_reloads = reloads();
    crate::backend::holds_for(std::time::Duration::from_millis(1500), || {
        Arc::ptr_eq(&table, &s.shared.serving.table.load_full()) && reloads() == before_reloads
    })
    .unwrap_or_else(|at| panic!("the edit applied by itself after {at:?}"));
    assert_eq!(statuses(&s), health);
    assert_eq!(answers(&s), before);

    // The real reload answers exactly what the diff said.
    let (code, out, err) = run(&["reload", "--admin", &s.admin.to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        answers(&s),
        [
            "192.0.2.2",
            "192.0.2.2",
            "192.0.2.3",
            "192.0.2.3",
            "NXDomain",
            "192.0.2.7"
        ]
    );
    // Health carried over, so the next diff is empty.
    let (code, out, err) = check_diff(&s);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\nno change in answers ("), "{out}");
}

#[test]
fn todays_health_decides_the_diff() {
    let s = server();
    // eu-central is down: GB and SE moved there fall back to their next
    // match, GEO-EU (eu-west), which they get today already.
    s.set_status(API, "eu-central", Status::Degraded);
    let dir = s.dir().join("profiles");
    std::fs::write(
        dir.join("api.toml"),
        api("\"GEO-EU\"", "\"GB\", \"SE\", \"CH\""),
    )
    .unwrap();
    let (code, out, err) = check_diff(&s);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\nno change in answers ("), "{out}");
    // Once it is back, the same edit moves them.
    s.set_status(API, "eu-central", Status::Online);
    let (code, out, err) = check_diff(&s);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("  GB, SE: eu-west (192.0.2.1) -> eu-central (192.0.2.2)\n"),
        "{out}"
    );
    // A changed probe restarts health: the diff says so, and what a client
    // gets meanwhile (eu-central unverified is still answered).
    std::fs::write(
        dir.join("api.toml"),
        api("\"GEO-EU\"", "\"GB\", \"SE\", \"CH\"").replace("port = 9", "port = 10"),
    )
    .unwrap();
    let (code, out, err) = check_diff(&s);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "  probe eu-central: probe changed: health will be re-checked: Online -> CheckingEndpoint\n"
        ),
        "{out}"
    );
}

#[test]
fn a_broken_candidate_is_rejected_and_changes_nothing() {
    let s = server();
    let before = answers(&s);
    let table = s.shared.serving.table.load_full();
    std::fs::write(
        s.dir().join("profiles").join("shop.toml"),
        shop(90, 10).replace("routing = \"weighted\"", "routing = \"weighed\""),
    )
    .unwrap();
    // The local check finds it first, with file, line and field.
    let (code, out, err) = check_diff(&s);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("shop.toml:3:") && out.contains("routing: unknown routing method `weighed`"),
        "{out}"
    );
    assert!(!out.contains("nothing applied"), "{out}");
    // The server's dry run gives the same errors, as a reload would.
    let (code, doc) = json(s.admin, "POST", "/api/v1/reload?dry_run=1", None);
    assert_eq!(code, 422, "{doc}");
    assert_eq!(doc["result"], "rejected");
    assert!(
        doc["errors"][0]
            .as_str()
            .unwrap()
            .contains("routing: unknown routing method `weighed`"),
        "{doc}"
    );
    // A rejected dry run is not a rejected reload: nothing on the status page.
    let (_, status) = json(s.admin, "GET", "/api/v1/status", None);
    assert_eq!(status["problems"], serde_json::json!([]), "{status}");
    assert!(Arc::ptr_eq(&table, &s.shared.serving.table.load_full()));
    assert_eq!(answers(&s), before);
}

#[test]
fn without_the_running_server_there_is_no_diff() {
    let fx = Fixture::new("", &[("todoapi.toml", TODOAPI)]);
    let port = free_port(false);
    let (code, out, err) = run(&[
        "check",
        "--diff",
        "-c",
        fx.config_path().to_str().unwrap(),
        "--admin",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains(": ok ("), "the local check ran: {out}");
    assert!(err.contains("no diff: cannot reach the admin API"), "{err}");
    assert!(
        err.contains("hint: the diff is computed by the running server"),
        "{err}"
    );
}
