//! `explain` renders what routing decided for the very query it answers
//! (issue #10): across every routing method, health combinations (all up,
//! some down, all down, disabled at runtime, nested) and clients, what
//! explain says is chosen is what DNS answers, and nothing it chose is
//! listed as left out.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use switchyard::health::Status;

use crate::geo::{ecs_option, query_with_option};
use crate::harness::*;

const MONITOR: &str = "[monitor]\nprotocol = \"tcp\"\nport = 9\n";

/// A profile named `NAME.tm.example.test.` over endpoints a, b, c
/// (192.0.2.1-3) with `method`, `extra` profile keys and a per-endpoint
/// key from `per_ep`.
fn profile(name: &str, method: &str, extra: &str, per_ep: [&str; 3]) -> String {
    let mut s = format!(
        "name = \"{name}.tm.example.test.\"\nrouting = \"{method}\"\nttl = 30\n{extra}\n{MONITOR}"
    );
    for (i, key) in per_ep.iter().enumerate() {
        let n = ["a", "b", "c"][i];
        s.push_str(&format!(
            "[[endpoints]]\nname = \"{n}\"\ntarget = \"192.0.2.{}\"\n{key}\n",
            i + 1
        ));
    }
    s
}

fn profiles() -> Vec<(String, String)> {
    let mut v = vec![
        (
            "pri",
            profile(
                "pri",
                "priority",
                "",
                ["priority = 1", "priority = 2", "priority = 3"],
            ),
        ),
        (
            "prix",
            profile(
                "prix",
                "priority",
                "on_all_down = \"nxdomain\"",
                ["priority = 1", "priority = 2", "priority = 3"],
            ),
        ),
        (
            "prie",
            profile(
                "prie",
                "priority",
                "on_all_down = \"c\"",
                ["priority = 1", "priority = 2", "priority = 3"],
            ),
        ),
        (
            "wei",
            profile(
                "wei",
                "weighted",
                "",
                ["weight = 1", "weight = 2", "weight = 3"],
            ),
        ),
        (
            "mv",
            profile("mv", "multivalue", "max_answers = 2", ["", "", ""]),
        ),
        (
            "perf",
            profile(
                "perf",
                "performance",
                "",
                [
                    "location = \"westeurope\"",
                    "location = \"eastus\"",
                    "location = \"australiaeast\"",
                ],
            ),
        ),
        (
            "geo",
            profile(
                "geo",
                "geographic",
                "",
                [
                    "regions = [\"GB\"]",
                    "regions = [\"GEO-EU\", \"US-CA\"]",
                    "regions = [\"WORLD\"]",
                ],
            ),
        ),
        (
            "geon",
            profile(
                "geon",
                "geographic",
                "on_all_down = \"nodata\"",
                [
                    "regions = [\"GB\"]",
                    "regions = [\"GEO-EU\"]",
                    "regions = [\"US\"]",
                ],
            ),
        ),
        (
            "sub",
            profile(
                "sub",
                "subnet",
                "",
                [
                    "subnets = [\"81.2.69.0/24\"]",
                    "subnets = [\"8.8.8.0/24\", \"127.0.0.0/8\"]",
                    "",
                ],
            ),
        ),
    ]
    .into_iter()
    .map(|(n, p)| (format!("{n}.toml"), p))
    .collect::<Vec<_>>();
    // Nested: a priority parent whose first choice is the geographic profile.
    v.push((
        "nest.toml".into(),
        format!(
            "name = \"nest.tm.example.test.\"\nrouting = \"priority\"\nttl = 30\n{MONITOR}\
             [[endpoints]]\nname = \"child\"\nprofile = \"geo.tm.example.test.\"\npriority = 1\n\
             [[endpoints]]\nname = \"backup\"\ntarget = \"192.0.2.9\"\npriority = 2\n"
        ),
    ));
    v
}

const NAMES: &[&str] = &[
    "pri", "prix", "prie", "wei", "mv", "perf", "geo", "geon", "sub", "nest",
];

/// Clients: (ECS subnet or none).
const CLIENTS: &[Option<(&str, u8)>] = &[
    None,
    Some(("81.2.69.0", 24)),
    Some(("8.8.8.0", 24)),
    Some(("1.2.3.0", 24)),
    Some(("89.160.20.0", 24)),
    Some(("100.64.1.0", 24)),
];

fn dns(addr: SocketAddr, name: &str, ecs: Option<(&str, u8)>) -> Message {
    let pkt = match ecs {
        Some((a, p)) => query_with_option(name, RecordType::A, &ecs_option(a, p)),
        None => build(name, RecordType::A, Opts::default())
            .to_vec()
            .unwrap(),
    };
    Message::from_vec(&udp_raw(addr, &pkt, std::time::Duration::from_secs(2)).expect("no answer"))
        .unwrap()
}

fn explain(admin: SocketAddr, name: &str, ecs: Option<(&str, u8)>) -> Value {
    let mut path = format!("/api/v1/explain?name={name}&type=A");
    if let Some((a, p)) = ecs {
        path.push_str(&format!("&ecs={a}/{p}"));
    }
    let (code, doc) = json(admin, "GET", &path, None);
    assert_eq!(code, 200, "{doc}");
    doc
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The address of `profile/endpoint` in the test profiles.
fn address_of(label: &str) -> String {
    let ep = label.rsplit('/').next().unwrap();
    match ep {
        "a" => "192.0.2.1",
        "b" => "192.0.2.2",
        "c" => "192.0.2.3",
        "backup" => "192.0.2.9",
        other => panic!("unexpected endpoint {other}"),
    }
    .to_string()
}

#[test]
fn explain_agrees_with_dns_for_every_method_health_and_client() {
    let owned = profiles();
    let refs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(f, p)| (f.as_str(), p.as_str()))
        .collect();
    let fx = Fixture::new("[geoip]\ndatabase = \"geo.mmdb\"", &refs);
    crate::geodb::write(&fx.dir.path().join("geo.mmdb"), crate::geodb::Schema::City);
    let s = fx.start();
    let all = |status: [Status; 3]| {
        for name in NAMES.iter().filter(|n| **n != "nest") {
            for (ep, st) in ["a", "b", "c"].iter().zip(status) {
                s.set_status(&format!("{name}.tm.example.test."), ep, st);
            }
        }
    };
    let disable = |ep: &str, on: bool| {
        for name in NAMES.iter().filter(|n| **n != "nest") {
            let path = format!(
                "/api/v1/profiles/{name}.tm.example.test/endpoints/{ep}/{}",
                if on { "disable" } else { "enable" }
            );
            assert_eq!(http(s.admin, "POST", &path, None).0, 200, "{path}");
        }
    };
    use Status::{Degraded as D, Online as O};
    let combos: &[(&str, [Status; 3], bool)] = &[
        ("all up", [O, O, O], false),
        ("first down", [D, O, O], false),
        ("two down", [D, D, O], false),
        ("all down", [D, D, D], false),
        ("first disabled", [O, O, O], true),
        ("first disabled, rest down", [O, D, D], true),
    ];
    let mut checked = 0;
    for &(label, status, first_disabled) in combos {
        all(status);
        disable("a", first_disabled);
        for backup_down in [false, true] {
            s.set_status(
                "nest.tm.example.test.",
                "backup",
                if backup_down { D } else { O },
            );
            for &name in NAMES {
                let fq = format!("{name}.tm.example.test");
                for &client in CLIENTS {
                    let ctx = format!("{label}, backup down {backup_down}: {fq} from {client:?}");
                    let doc = explain(s.admin, &fq, client);
                    let chosen = strings(&doc["chosen"]);
                    let answers: BTreeSet<String> = strings(&doc["answers"])
                        .iter()
                        .map(|a| a.rsplit(' ').next().unwrap().to_string())
                        .collect();
                    // What explain says it chose is what its answer carries.
                    let chosen_addrs: BTreeSet<String> =
                        chosen.iter().map(|c| address_of(c)).collect();
                    assert_eq!(chosen_addrs, answers, "{ctx}: {doc}");
                    // Nothing chosen is listed as left out.
                    let excluded: BTreeSet<String> = doc["excluded"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["endpoint"].as_str().unwrap().to_string())
                        .collect();
                    for c in &chosen {
                        assert!(
                            !excluded.contains(c),
                            "{ctx}: {c} chosen and left out: {doc}"
                        );
                    }
                    // And DNS agrees: the same rcode, and the same addresses
                    // (random methods: addresses explain did not leave out).
                    let m = dns(s.v4(), &format!("{fq}."), client);
                    let rcode = match u16::from(m.metadata.response_code) {
                        0 => "NOERROR",
                        2 => "SERVFAIL",
                        3 => "NXDOMAIN",
                        other => panic!("{ctx}: rcode {other}"),
                    };
                    assert_eq!(rcode, doc["rcode"].as_str().unwrap(), "{ctx}: {doc}");
                    let got: BTreeSet<String> = addrs(&m).into_iter().collect();
                    if matches!(name, "wei" | "mv") {
                        let prefix = format!("{name}.tm.example.test/");
                        for a in &got {
                            let left_out = excluded
                                .iter()
                                .any(|e| e.starts_with(&prefix) && address_of(e) == *a);
                            assert!(
                                !left_out,
                                "{ctx}: DNS answered {a}, explain left it out: {doc}"
                            );
                        }
                        assert_eq!(got.is_empty(), answers.is_empty(), "{ctx}: {doc}");
                    } else {
                        assert_eq!(got, answers, "{ctx}: {doc}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, combos.len() * 2 * NAMES.len() * CLIENTS.len());
}

/// Explain renders the pool routing drew from, whatever the stage: held
/// endpoints (`failback = "manual"`) keep their shares (explain dropped
/// them: it rebuilt the pool as "answerable or, failing open, eligible"),
/// and `on_all_down = "<endpoint>"` names the endpoint, answered or taken
/// out.
#[test]
fn explain_shows_the_held_pool_and_the_fixed_endpoint() {
    let held = profile(
        "held",
        "weighted",
        "failback = \"manual\"",
        ["weight = 1", "weight = 2", "weight = 3"],
    );
    let fixed = profile(
        "fixed",
        "priority",
        "on_all_down = \"c\"",
        ["priority = 1", "priority = 2", "priority = 3"],
    );
    let s = Fixture::new("", &[("held.toml", &held), ("fixed.toml", &fixed)]).start();
    let name = "held.tm.example.test.";
    for ep in ["a", "b", "c"] {
        s.set_status(name, ep, Status::Degraded);
    }
    // a and b recover: held out; c stays Degraded.
    s.set_status(name, "a", Status::Online);
    s.set_status(name, "b", Status::Online);
    let doc = explain(s.admin, "held.tm.example.test", None);
    let steps = strings(&doc["steps"]).join("\n");
    assert!(
        steps.contains(
            "nothing is answerable: the endpoints failback = \"manual\" holds out answer"
        ),
        "{steps}"
    );
    assert!(
        steps.contains(
            "one endpoint at random per query, in proportion to weight: a weight 1 (33%), b weight 2 (67%)"
        ),
        "{steps}"
    );
    let chosen = strings(&doc["chosen"]);
    assert!(
        chosen == ["held.tm.example.test/a"] || chosen == ["held.tm.example.test/b"],
        "{doc}"
    );
    let excluded = doc["excluded"].to_string();
    assert!(excluded.contains("held.tm.example.test/c"), "{doc}");

    let name = "fixed.tm.example.test.";
    for ep in ["a", "b", "c"] {
        s.set_status(name, ep, Status::Degraded);
    }
    let doc = explain(s.admin, "fixed.tm.example.test", None);
    let steps = strings(&doc["steps"]).join("\n");
    assert!(
        steps.contains("nothing is answerable: on_all_down = c applies: that endpoint answers"),
        "{steps}"
    );
    assert_eq!(
        strings(&doc["chosen"]),
        ["fixed.tm.example.test/c"],
        "{doc}"
    );
    let path = "/api/v1/profiles/fixed.tm.example.test/endpoints/c/disable";
    assert_eq!(http(s.admin, "POST", path, None).0, 200);
    let doc = explain(s.admin, "fixed.tm.example.test", None);
    let steps = strings(&doc["steps"]).join("\n");
    assert!(
        steps.contains("on_all_down = c applies, but c is taken out")
            && steps.contains("nothing to answer: NODATA"),
        "{steps}"
    );
    assert!(strings(&doc["chosen"]).is_empty(), "{doc}");
}
