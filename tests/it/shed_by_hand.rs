//! Shedding by hand and drains that ramp (issue 22, item 4), through the
//! real binary, its admin API and the real CLI, with ECS queries from
//! thousands of client networks: `endpoint shed --percent 30` moves 30 %
//! of them (± 2 %), the very networks a load of 30 % moves, the same after
//! a restart and on every node of a cluster, and `resume` brings them
//! back; `--for` ends it by itself; `drain --over` sheds a rising share,
//! the same networks first, then drains.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend::*;
use crate::harness::*;
use crate::shed::{answers_for, ecs_of, endpoint, load_page};

const NAME: &str = "shop.tm.example.test.";
const PRIMARY: &str = "203.0.113.10";
const SECONDARY: &str = "203.0.113.20";

/// Runs the real CLI against `p`: (success, stdout and stderr).
fn cli(p: &Proc, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("--admin")
        .arg(p.admin().to_string())
        .args(args)
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// How many networks got the secondary.
fn moved(list: &[String]) -> usize {
    list.iter().filter(|a| *a == SECONDARY).count()
}

/// Priority routing over a primary whose health page reports `load`
/// (thousandths) and a healthy secondary, shedding 30 % above 0.85; the
/// overrides kept in a state file.
fn start_probed(load: u32) -> (Proc, Arc<AtomicU32>, Backend) {
    let load = Arc::new(AtomicU32::new(load));
    let page = load_page(load.clone(), false);
    let other = Backend::http(Mode::Ok);
    let profile = format!(
        "name = \"{NAME}\"\nrouting = \"priority\"\nttl = 5\nshed_above = 0.85\nshed_percent = 30\n\
         [monitor]\nprotocol = \"http\"\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\n\
         [[endpoints]]\nname = \"primary\"\ntarget = \"{PRIMARY}\"\nprobe = {{ address = \"127.0.0.1\", port = {} }}\n\
         [[endpoints]]\nname = \"secondary\"\ntarget = \"{SECONDARY}\"\nprobe = {{ address = \"127.0.0.1\", port = {} }}\n",
        page.port(),
        other.port()
    );
    let fx = Fixture::new("state_file = \"state.json\"", &[("shop.toml", &profile)]);
    let p = Proc::start(fx);
    both_online(&p);
    (p, load, other)
}

fn both_online(p: &Proc) {
    wait_until(Duration::from_secs(20), || {
        endpoint(p, "primary")["status"] == "Online"
            && endpoint(p, "secondary")["status"] == "Online"
    })
    .unwrap_or_else(|| panic!("not both Online: {}", p.log()));
}

/// Priority routing over two unmonitored endpoints, TTL 1.
fn start_plain() -> Proc {
    let profile = format!(
        "name = \"{NAME}\"\nrouting = \"priority\"\nttl = 1\n\
         [[endpoints]]\nname = \"primary\"\ntarget = \"{PRIMARY}\"\n\
         [[endpoints]]\nname = \"secondary\"\ntarget = \"{SECONDARY}\"\n"
    );
    Proc::start(Fixture::new(
        "state_file = \"state.json\"",
        &[("shop.toml", &profile)],
    ))
}

fn history(p: &Proc) -> Vec<Value> {
    let (_, doc) = json(p.admin(), "GET", "/api/v1/status", None);
    doc["history"].as_array().cloned().unwrap_or_default()
}

/// `shed --percent 30`: 30 % of 10,000 networks (± 2 %) move, the same
/// every time and after a restart, and exactly those a load above
/// `shed_above` with `shed_percent = 30` moves; `resume` brings every one
/// back. Shown by `status`, `explain` and the status document.
#[test]
fn a_shed_by_hand_moves_the_networks_a_load_would_and_resume_brings_them_back() {
    let (p, load, _other) = start_probed(400);
    assert!(endpoint(&p, "primary")["shed"].is_null());
    let (ok, text) = cli(
        &p,
        &[
            "endpoint",
            "shed",
            NAME,
            "primary",
            "--percent",
            "30",
            "--reason",
            "hot region",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("primary: Online (shedding 30 % of new traffic by hand until enabled again)"),
        "{text}"
    );
    let e = endpoint(&p, "primary");
    assert_eq!(e["shed"], "shed 30 % by hand", "{e}");
    assert_eq!(e["status"], "Online", "{e}");
    let o = &e["override"];
    assert_eq!(o["action"], "shed", "{e}");
    assert_eq!(o["shed_percent"], 30, "{e}");
    assert_eq!(o["in_force"], true, "{e}");
    assert_eq!(o["reason"], "hot region", "{e}");
    let (_, page) = http(p.admin(), "GET", "/", None);
    assert!(
        page.contains(
            "<div class=\"override shed\">shed 30 % by hand until enabled by admin API: hot region</div>"
        ),
        "{page}"
    );

    let by_hand = answers_for(p.v4(), NAME, 10_000);
    let n = moved(&by_hand);
    eprintln!("shed 30 % by hand: {n} of 10000 networks moved");
    assert!((2800..=3200).contains(&n), "moved {n} of 10000");
    assert_eq!(
        answers_for(p.v4(), NAME, 10_000),
        by_hand,
        "the same networks every time"
    );

    let (ok, text) = cli(&p, &["status"]);
    assert!(ok, "{text}");
    assert!(text.contains("[shed 30 % by hand]"), "{text}");
    assert!(
        text.contains(
            "shop.tm.example.test./primary: shed 30 % by hand; until enabled; by admin API: hot region"
        ),
        "{text}"
    );
    let i = by_hand.iter().position(|a| a == SECONDARY).unwrap() as u32;
    let (ok, text) = cli(&p, &["explain", NAME, "--ecs", &ecs_of(i)]);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "primary: shed 30 % by hand: this client's network is in the share moved to the other endpoints"
        ),
        "{text}"
    );

    // A restart keeps it: the same networks.
    let p = Proc::start(p.kill());
    both_online(&p);
    assert_eq!(endpoint(&p, "primary")["shed"], "shed 30 % by hand");
    assert_eq!(
        answers_for(p.v4(), NAME, 10_000),
        by_hand,
        "the same networks after a restart"
    );

    // `resume`: every network back.
    let (ok, text) = cli(&p, &["endpoint", "resume", NAME, "primary"]);
    assert!(ok, "{text}");
    let e = endpoint(&p, "primary");
    assert!(e["shed"].is_null(), "{e}");
    assert_eq!(e["override"]["action"], "resume", "{e}");
    assert_eq!(moved(&answers_for(p.v4(), NAME, 10_000)), 0);

    // The load passes shed_above (shed_percent = 30): the same networks.
    load.store(910, Ordering::Relaxed);
    wait_until(Duration::from_secs(20), || {
        endpoint(&p, "primary")["shed"] == "shed 30 % (load 0.91 > 0.85)"
    })
    .unwrap_or_else(|| panic!("not shedding by load: {}", endpoint(&p, "primary")));
    assert_eq!(
        answers_for(p.v4(), NAME, 10_000),
        by_hand,
        "by hand and by load: the same networks"
    );
    load.store(400, Ordering::Relaxed);
}

/// `shed --for 2s` ends by itself (noted in the history); bad input is
/// refused by the CLI and the API with the reason, and changes nothing.
#[test]
fn a_timed_shed_ends_by_itself_and_bad_input_changes_nothing() {
    let (p, _load, _other) = start_probed(400);
    let (ok, text) = cli(
        &p,
        &[
            "endpoint",
            "shed",
            NAME,
            "primary",
            "--percent",
            "30",
            "--for",
            "2s",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("(shedding 30 % of new traffic by hand until ") && text.contains(" left)"),
        "{text}"
    );
    let e = endpoint(&p, "primary");
    assert!(
        e["shed"]
            .as_str()
            .is_some_and(|s| s.starts_with("shed 30 % by hand until ")),
        "{e}"
    );
    wait_until(Duration::from_secs(20), || {
        endpoint(&p, "primary")["shed"].is_null() && moved(&answers_for(p.v4(), NAME, 500)) == 0
    })
    .unwrap_or_else(|| panic!("the shed never ended: {}", endpoint(&p, "primary")));
    assert_eq!(endpoint(&p, "primary")["override"]["in_force"], false);
    wait_until(Duration::from_secs(10), || {
        history(&p).iter().any(|h| {
            h["by"]
                .as_str()
                .is_some_and(|b| b.starts_with("expiry of the shed"))
        })
    })
    .unwrap_or_else(|| panic!("no expiry in the history: {:?}", history(&p)));
    let shed = history(&p)
        .into_iter()
        .find(|h| h["action"] == "shed")
        .unwrap();
    assert_eq!(shed["shed_percent"], 30, "{shed}");
    let (_, page) = http(p.admin(), "GET", "/", None);
    assert!(page.contains("<td>shed 30 %</td>"), "{page}");

    // The CLI refuses what makes no sense, saying why.
    let shed = |extra: &[&str]| {
        let mut args = vec!["endpoint", "shed", NAME, "primary"];
        args.extend_from_slice(extra);
        cli(&p, &args)
    };
    for (extra, want) in [
        (&["--percent", "0"][..], "0 is not in 1..=100"),
        (&["--percent", "101"][..], "101 is not in 1..=100"),
        (&["--percent", "abc"][..], "invalid digit"),
        (&[][..], "shed needs --percent N"),
        (
            &["--percent", "30", "--over", "1m"][..],
            "--over goes with drain",
        ),
        (
            &["--percent", "30", "--for", "soon"][..],
            "`for` is not a duration",
        ),
    ] {
        let (ok, text) = shed(extra);
        assert!(!ok && text.contains(want), "{extra:?}: {text}");
    }
    let (ok, text) = cli(
        &p,
        &["endpoint", "disable", NAME, "primary", "--percent", "30"],
    );
    assert!(!ok && text.contains("--percent goes with shed"), "{text}");
    for (args, want) in [
        (
            &["--over", "0s"][..],
            "`over` must be between 1s and 7d, not 0s",
        ),
        (
            &["--over", "8d"][..],
            "`over` must be between 1s and 7d, not 8d",
        ),
        (&["--over", "soon"][..], "`over` is not a duration"),
        (
            &["--over", "10s", "--for", "5s"][..],
            "`for` (5s) must be longer than `over` (10s)",
        ),
    ] {
        let mut all = vec!["endpoint", "drain", NAME, "primary"];
        all.extend_from_slice(args);
        let (ok, text) = cli(&p, &all);
        assert!(!ok && text.contains(want), "{args:?}: {text}");
    }
    let (ok, text) = cli(
        &p,
        &["endpoint", "disable", NAME, "primary", "--over", "1m"],
    );
    assert!(!ok && text.contains("--over goes with drain"), "{text}");

    // The API too: 400 with the reason.
    let base = "/api/v1/profiles/shop.tm.example.test/endpoints/primary";
    for (path, want) in [
        (
            "shed?percent=0",
            "`percent` must be a whole number from 1 to 100, not \"0\"",
        ),
        ("shed?percent=101", "from 1 to 100"),
        ("shed?percent=30.5", "from 1 to 100"),
        ("shed?percent=", "from 1 to 100"),
        ("shed", "shed needs `percent`"),
        ("shed?percent=30&over=1m", "`over` applies to drain only"),
        ("disable?percent=30", "`percent` applies to shed only"),
        ("drain?over=0s", "`over` must be between 1s and 7d"),
        (
            "enable?for=1m",
            "`for` applies to disable, drain and shed only",
        ),
    ] {
        let (code, doc) = json(p.admin(), "POST", &format!("{base}/{path}"), None);
        assert_eq!(code, 400, "{path}: {doc}");
        assert!(
            doc["error"].as_str().is_some_and(|e| e.contains(want)),
            "{path}: {doc}"
        );
    }
    // Nothing changed.
    let e = endpoint(&p, "primary");
    assert_eq!(e["status"], "Online", "{e}");
    assert!(e["shed"].is_null(), "{e}");
    assert_eq!(e["override"]["action"], "shed", "{e}");
    assert_eq!(e["override"]["in_force"], false, "{e}");
    assert_eq!(moved(&answers_for(p.v4(), NAME, 500)), 0);
}

/// `drain --over 6s`: the share of networks moved rises in steps, the
/// same networks first (none comes back), visibly strictly between none
/// and all, and at the end the endpoint is drained as `drain` drains it.
#[test]
fn a_drain_over_ramps_the_share_out_then_drains() {
    let p = start_plain();
    assert_eq!(moved(&answers_for(p.v4(), NAME, 200)), 0);
    let (ok, text) = cli(
        &p,
        &[
            "endpoint",
            "drain",
            NAME,
            "primary",
            "--over",
            "6s",
            "--reason",
            "move to v2",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("primary: Unmonitored (draining; ramping over 6s: ")
            && text.contains("out of answers at "),
        "{text}"
    );
    // Sample 200 networks until every one has moved: each sample moves a
    // superset of the one before, and one is strictly between.
    let mut samples: Vec<Vec<String>> = Vec::new();
    let mut texts = Vec::new();
    let mut pages = Vec::new();
    wait_until(Duration::from_secs(30), || {
        let (_, page) = http(p.admin(), "GET", "/", None);
        pages.push(
            page.contains("<div class=\"override draining\" data-drain=\"ramping\">draining: "),
        );
        let e = endpoint(&p, "primary");
        if let Some(t) = e["shed"].as_str() {
            texts.push((t.to_string(), e["override"]["ramp"].clone()));
        }
        let a = answers_for(p.v4(), NAME, 200);
        let all = moved(&a) == 200;
        samples.push(a);
        all && e["status"] == "Disabled"
    })
    .unwrap_or_else(|| panic!("never drained: {}", endpoint(&p, "primary")));
    let shares: Vec<usize> = samples.iter().map(|s| moved(s)).collect();
    eprintln!("drain over 6s, networks moved of 200 per sample: {shares:?}");
    assert!(
        shares.iter().any(|&m| m > 0 && m < 200),
        "no share strictly between: {shares:?}"
    );
    for w in samples.windows(2) {
        assert!(
            w[0].iter()
                .zip(&w[1])
                .all(|(a, b)| a != SECONDARY || b == SECONDARY),
            "a network came back during the ramp: {shares:?}"
        );
    }
    let (t, ramp) = texts
        .iter()
        .find(|(t, _)| t.starts_with("draining: "))
        .unwrap_or_else(|| panic!("the ramp never shown: {texts:?}"));
    assert!(t.contains(" % shed, out of answers at 20"), "{t}");
    assert_eq!(ramp["steps"], 10, "{ramp}");
    assert_eq!(ramp["over_s"], 6.0, "{ramp}");
    assert!(pages.contains(&true), "the page never showed the ramp");
    // Drained as `drain` drains: "drained at" the last answer plus its TTL.
    let e = endpoint(&p, "primary");
    let o = &e["override"];
    assert_eq!(o["action"], "drain", "{e}");
    assert_eq!(o["ramp"]["done"], true, "{e}");
    assert!(e["shed"].is_null(), "{e}");
    wait_until(Duration::from_secs(15), || {
        endpoint(&p, "primary")["override"]["drain"]["drained"] == true
    })
    .unwrap_or_else(|| panic!("never drained: {}", endpoint(&p, "primary")));
    let (ok, text) = cli(&p, &["status"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("shop.tm.example.test./primary: drain, ramped out, out of answers since "),
        "{text}"
    );
}

/// `drain --over 2s --wait` returns once drained (after the ramp); a ramp
/// survives a restart with the same end, and `resume` cancels it.
#[test]
fn drain_over_waits_survives_a_restart_and_resume_cancels_it() {
    let p = start_plain();
    let started = Instant::now();
    let (ok, text) = cli(
        &p,
        &[
            "endpoint", "drain", NAME, "primary", "--over", "2s", "--wait",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "returned within the ramp: {text}"
    );
    assert!(text.contains("ramping over 2s"), "{text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("shop.tm.example.test./primary: drained at ")),
        "{text}"
    );
    let e = endpoint(&p, "primary");
    assert_eq!(e["status"], "Disabled", "{e}");
    assert_eq!(e["override"]["drain"]["drained"], true, "{e}");
    let (ok, text) = cli(&p, &["endpoint", "resume", NAME, "primary"]);
    assert!(ok, "{text}");
    assert_eq!(moved(&answers_for(p.v4(), NAME, 200)), 0);

    // Over 10 minutes: 20 steps of 5 %, the first at once.
    let (ok, text) = cli(&p, &["endpoint", "drain", NAME, "primary", "--over", "10m"]);
    assert!(ok, "{text}");
    let ramp = endpoint(&p, "primary")["override"]["ramp"].clone();
    assert_eq!(ramp["steps"], 20, "{ramp}");
    assert_eq!(ramp["step"], 1, "{ramp}");
    assert_eq!(ramp["shed_percent"], 5.0, "{ramp}");
    let before = answers_for(p.v4(), NAME, 2_000);
    let n = moved(&before);
    eprintln!("drain over 10m, first step: {n} of 2000 networks moved");
    assert!((40..=160).contains(&n), "moved {n} of 2000");
    // A restart: the same ramp, computed from the clock.
    let p = Proc::start(p.kill());
    let e = endpoint(&p, "primary");
    assert_eq!(e["override"]["ramp"]["out_at"], ramp["out_at"], "{e}");
    assert_eq!(e["status"], "Unmonitored", "{e}");
    assert!(
        e["shed"]
            .as_str()
            .is_some_and(|s| s.starts_with("draining: ")),
        "{e}"
    );
    if e["override"]["ramp"]["step"] == 1 {
        assert_eq!(answers_for(p.v4(), NAME, 2_000), before);
    }
    // `resume` cancels it: every network back.
    let (ok, text) = cli(&p, &["endpoint", "resume", NAME, "primary"]);
    assert!(ok, "{text}");
    let e = endpoint(&p, "primary");
    assert!(e["shed"].is_null(), "{e}");
    assert_eq!(e["override"]["action"], "resume", "{e}");
    assert_eq!(moved(&answers_for(p.v4(), NAME, 2_000)), 0);
}

/// A shed made on one node of a cluster sheds the same networks on every
/// node, and a resume on another ends it everywhere.
#[test]
fn a_shed_on_one_node_sheds_the_same_networks_on_every_node() {
    use crate::cluster::{Cluster, NAME, SECONDARY};
    let c = Cluster::start(2, None);
    let path = "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/shed?percent=30";
    let (code, body) = http(c.node(1).admin(), "POST", path, None);
    assert_eq!(code, 200, "{body}");
    let shed = |i: usize| c.status(i)["profiles"][0]["endpoints"][0]["shed"].clone();
    wait_until(Duration::from_secs(15), || shed(2) == "shed 30 % by hand")
        .unwrap_or_else(|| panic!("ns2: {}", shed(2)));
    let one = answers_for(c.node(1).v4(), NAME, 3_000);
    let two = answers_for(c.node(2).v4(), NAME, 3_000);
    let n = one.iter().filter(|a| *a == SECONDARY).count();
    eprintln!("shed 30 % on ns1: {n} of 3000 networks moved, the same on ns2");
    assert!((780..=1020).contains(&n), "moved {n} of 3000");
    assert_eq!(one, two, "the same networks on both nodes");
    let path = "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/resume";
    let (code, body) = http(c.node(2).admin(), "POST", path, None);
    assert_eq!(code, 200, "{body}");
    wait_until(Duration::from_secs(15), || shed(1).is_null())
        .unwrap_or_else(|| panic!("ns1: {}", shed(1)));
    let one = answers_for(c.node(1).v4(), NAME, 500);
    assert!(one.iter().all(|a| a != SECONDARY));
}
