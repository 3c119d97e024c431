//! Several named monitors per endpoint (`[[monitors]]`, `health`,
//! `invert`): the real binary probing real backends on loopback (an HTTP
//! health page, a TCP "database" port), answering over DNS, and saying
//! which monitor failed in `status`, `explain`, the API and a notification.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::backend::*;
use crate::harness::*;
use crate::notify::{Behaviour, Receiver, target};

const NAME: &str = "shop.tm.example.test.";

fn answer(p: &Proc) -> String {
    addrs(&udp(p.v4(), NAME, RecordType::A))
        .pop()
        .unwrap_or_default()
}

fn status_doc(p: &Proc) -> Value {
    let (code, body) = http(p.admin(), "GET", "/api/v1/status", None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn endpoint(doc: &Value, name: &str) -> Value {
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

fn cli(p: &Proc, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--admin")
        .arg(p.admin().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Fast probes: each failure decides (tolerated_failures = 0).
const FAST: &str = "interval = \"200ms\"\ntimeout = \"150ms\"\ntolerated_failures = 0\n";

/// The README's example: the API's health page and its database's TCP
/// port, both required on the primary; the secondary checks its API only.
fn shop(health: &str, db: u16, api_primary: u16, api_secondary: u16) -> String {
    format!(
        "name = \"{NAME}\"\nrouting = \"priority\"\nttl = 5\n{health}\n\
         [[monitors]]\nname = \"api\"\nprotocol = \"http\"\npath = \"/health\"\n{FAST}\
         [[monitors]]\nname = \"db\"\nprotocol = \"tcp\"\naddress = \"127.0.0.1\"\nport = {db}\n{FAST}\
         [[endpoints]]\nname = \"primary\"\ntarget = \"203.0.113.10\"\nprobe = {{ address = \"127.0.0.1\", port = {api_primary} }}\n\
         [[endpoints]]\nname = \"secondary\"\ntarget = \"203.0.113.20\"\nprobe = {{ address = \"127.0.0.1\", port = {api_secondary} }}\nmonitors = [\"api\"]\n"
    )
}

fn admin() -> &'static str {
    "[admin]\nlisten = \"127.0.0.1:0\"\n"
}

#[test]
fn an_endpoint_whose_database_is_down_is_degraded_and_says_why() {
    let api_p = Backend::http(Mode::Ok);
    let api_s = Backend::http(Mode::Ok);
    let db = TcpListener::bind("127.0.0.1:0").unwrap();
    let db_port = db.local_addr().unwrap().port();
    let hook = Receiver::start(Behaviour::Ok);
    let profile = shop("", db_port, api_p.port(), api_s.port());
    let extra = format!("{}{}", admin(), target("ops", &hook.url(), ""));
    let p = Proc::start(Fixture::new(&extra, &[("shop.toml", &profile)]));

    let online = |p: &Proc, name: &str| endpoint(&status_doc(p), name)["status"] == "Online";
    wait_until(Duration::from_secs(20), || {
        online(&p, "primary") && online(&p, "secondary") && answer(&p) == "203.0.113.10"
    })
    .unwrap_or_else(|| panic!("not Online: {}", status_doc(&p)));
    let e = endpoint(&status_doc(&p), "primary");
    assert_eq!(e["monitors"]["health"], "all", "{e}");
    assert_eq!(
        e["monitors"]["monitors"][1]["checks"],
        format!("tcp 127.0.0.1:{db_port}")
    );

    // The database goes away: the primary is Degraded by its db monitor
    // alone, and the answer moves to the secondary.
    drop(db);
    wait_until(Duration::from_secs(20), || answer(&p) == "203.0.113.20")
        .unwrap_or_else(|| panic!("no failover: {}", status_doc(&p)));
    let why = format!("db (tcp 127.0.0.1:{db_port}: connect refused); api ok");
    let e = endpoint(&status_doc(&p), "primary");
    assert_eq!(e["status"], "Degraded", "{e}");
    assert!(e["why"].as_str().unwrap().contains(&why), "{e}");
    let db_doc = &e["monitors"]["monitors"][1];
    assert_eq!(
        (&db_doc["status"], &db_doc["verdict"]),
        (&"Degraded".into(), &"down".into()),
        "{e}"
    );
    assert_eq!(endpoint(&status_doc(&p), "secondary")["status"], "Online");

    let status = cli(&p, &["status"]);
    let row = status.lines().find(|l| l.contains(" primary ")).unwrap();
    assert!(
        row.contains("Degraded") && row.contains("db: connect refused; api ok"),
        "{status}"
    );
    let explain = cli(&p, &["explain", NAME]);
    assert!(explain.contains(&why), "{explain}");

    // The notification names the failing monitor.
    wait_until(Duration::from_secs(10), || {
        hook.accepted("endpoint.status").iter().any(|g| {
            let d = g.json();
            d["endpoint"] == "primary" && d["new_status"] == "Degraded"
        })
    })
    .unwrap_or_else(|| panic!("no notification: {:?}", hook.all()));
    let got = hook
        .accepted("endpoint.status")
        .into_iter()
        .map(|g| g.json())
        .find(|d| d["endpoint"] == "primary" && d["new_status"] == "Degraded")
        .unwrap();
    assert!(got["reason"].as_str().unwrap().contains(&why), "{got}");
    assert!(
        !p.log()
            .contains("endpoint=primary old=Online new=Degraded reason=\"connect refused\"")
    );

    // The database is back: so is the primary, and the answer.
    let _db = TcpListener::bind(("127.0.0.1", db_port)).unwrap();
    wait_until(Duration::from_secs(20), || answer(&p) == "203.0.113.10")
        .unwrap_or_else(|| panic!("no failback: {}", status_doc(&p)));
    assert!(online(&p, "primary"));
}

#[test]
fn any_and_invert_combine_as_configured() {
    let api_p = Backend::http(Mode::Unavailable);
    let api_s = Backend::http(Mode::Ok);
    let db = TcpListener::bind("127.0.0.1:0").unwrap();
    let db_port = db.local_addr().unwrap().port();
    // health = "any": the primary's db is up, so its failing API alone
    // does not take it out.
    let profile = shop("health = \"any\"", db_port, api_p.port(), api_s.port());
    let p = Proc::start(Fixture::new(admin(), &[("shop.toml", &profile)]));
    wait_until(Duration::from_secs(20), || {
        let e = endpoint(&status_doc(&p), "primary");
        e["monitors"]["monitors"][0]["verdict"] == "down" && e["status"] == "Online"
    })
    .unwrap_or_else(|| panic!("{}", status_doc(&p)));
    assert_eq!(answer(&p), "203.0.113.10");
    let why = endpoint(&status_doc(&p), "primary")["why"].to_string();
    assert!(
        why.contains("api (http 127.0.0.1:")
            && why.contains("status 503); db ok (health = any: one must be up)"),
        "{why}"
    );
    drop(p);

    // invert: a maintenance page that must be absent. While it answers
    // 200, the endpoint is out; once it is gone (503), it is back.
    let maint = Backend::http(Mode::Ok);
    let profile = format!(
        "name = \"{NAME}\"\nrouting = \"priority\"\nttl = 5\n\
         [[monitors]]\nname = \"api\"\nprotocol = \"http\"\npath = \"/health\"\n{FAST}\
         [[monitors]]\nname = \"maintenance\"\nprotocol = \"http\"\naddress = \"127.0.0.1\"\nport = {}\npath = \"/maintenance\"\ninvert = true\n{FAST}\
         [[endpoints]]\nname = \"primary\"\ntarget = \"203.0.113.10\"\nprobe = {{ address = \"127.0.0.1\", port = {} }}\n\
         [[endpoints]]\nname = \"secondary\"\ntarget = \"203.0.113.20\"\nprobe = {{ address = \"127.0.0.1\", port = {} }}\nmonitors = [\"api\"]\n",
        maint.port(),
        api_s.port(),
        api_s.port()
    );
    let p = Proc::start(Fixture::new(admin(), &[("shop.toml", &profile)]));
    wait_until(Duration::from_secs(20), || {
        endpoint(&status_doc(&p), "primary")["status"] == "Degraded" && answer(&p) == "203.0.113.20"
    })
    .unwrap_or_else(|| panic!("{}", status_doc(&p)));
    let e = endpoint(&status_doc(&p), "primary");
    assert!(
        e["why"]
            .as_str()
            .unwrap()
            .contains("maintenance (http 127.0.0.1:"),
        "{e}"
    );
    assert!(
        e["why"]
            .as_str()
            .unwrap()
            .contains("probe succeeded, inverted)"),
        "{e}"
    );
    maint.set(Mode::Unavailable);
    wait_until(Duration::from_secs(20), || answer(&p) == "203.0.113.10")
        .unwrap_or_else(|| panic!("{}", status_doc(&p)));
    let e = endpoint(&status_doc(&p), "primary");
    assert_eq!(e["status"], "Online", "{e}");
    assert_eq!(e["monitors"]["monitors"][1]["verdict"], "up", "{e}");
}

#[test]
fn check_names_every_wrong_reference_and_count() {
    let profile = format!(
        "name = \"{NAME}\"\nrouting = \"priority\"\nhealth = {{ at_least = 3 }}\n\
         [[monitors]]\nname = \"api\"\nprotocol = \"tcp\"\nport = 443\n\
         [[monitors]]\nname = \"db\"\nprotocol = \"tcp\"\nport = 5432\n\
         [[monitors]]\nname = \"db\"\nprotocol = \"tcp\"\nport = 5433\n\
         [[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\nmonitors = [\"api\", \"dbb\"]\n"
    );
    let fx = Fixture::new("", &[("shop.toml", &profile)]);
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(fx.config_path())
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap() + &String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "shop.toml:13:8: monitors[2].name: another monitor of this profile has this name",
        "shop.toml:19:20: endpoints[0].monitors[1]: unknown monitor `dbb` (this profile's monitors: api, db)",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    // The count is checked against the monitors there are (3 listed: the
    // repeated one is reported, not counted away).
    let profile = profile.replace("at_least = 3", "at_least = 4");
    std::fs::write(fx.dir.path().join("profiles/shop.toml"), profile).unwrap();
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(fx.config_path())
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap() + &String::from_utf8(out.stdout).unwrap();
    assert!(
        err.contains(
            "shop.toml:3:10: health: impossible: at_least = 4, but there are only 3 monitors"
        ),
        "{err}"
    );
}

/// In a cluster each monitor is decided by the quorum, then combined: the
/// database refusing every node takes the primary out on every node.
#[test]
fn in_a_cluster_the_quorum_decides_each_monitor() {
    use crate::cluster::{KEY, free_udp_port, node_fixture_full};
    let api_p = Backend::http(Mode::Ok);
    let api_s = Backend::http(Mode::Ok);
    let db = TcpListener::bind("0.0.0.0:0").unwrap();
    let db_port = db.local_addr().unwrap().port();
    let profile = shop("", db_port, api_p.port(), api_s.port());
    let ports = [free_udp_port(), free_udp_port()];
    let start = |n: usize| {
        let fx = node_fixture_full(n, &ports, KEY, "", "", "");
        std::fs::write(fx.dir.path().join("profiles/todoapi.toml"), &profile).unwrap();
        Proc::start(fx)
    };
    let nodes = [start(1), start(2)];
    for p in &nodes {
        wait_until(Duration::from_secs(30), || {
            endpoint(&status_doc(p), "primary")["status"] == "Online" && answer(p) == "203.0.113.10"
        })
        .unwrap_or_else(|| panic!("not Online: {}", status_doc(p)));
    }
    drop(db);
    for p in &nodes {
        wait_until(Duration::from_secs(30), || answer(p) == "203.0.113.20")
            .unwrap_or_else(|| panic!("no failover: {}", status_doc(p)));
        let e = endpoint(&status_doc(p), "primary");
        assert_eq!(e["status"], "Degraded", "{e}");
        let db = &e["monitors"]["monitors"][1];
        assert_eq!(db["verdict"], "down", "{e}");
        assert!(
            db["cluster"].is_object(),
            "the quorum's view of the monitor: {e}"
        );
        assert!(
            e["why"].as_str().unwrap().contains("db (tcp 127.0.0.1:"),
            "{e}"
        );
    }
}
