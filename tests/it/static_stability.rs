//! Static stability (issue 22, item 5): the prober knows when it is the
//! one failing. The real binary probes real HTTP backends on loopback for
//! three unrelated profiles, from a source address of its own; an nftables
//! rule then drops every probe it sends (and its canary's), as a host that
//! lost its network would see it. The answers must not change, the status
//! API, page, `status`, `explain`, metrics and a notification must say the
//! statuses are frozen, and once the rule is gone they thaw. A real
//! single-region failure still fails over; in a cluster, the impaired node
//! stops voting and the others' quorum decides.

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::backend::*;
use crate::harness::*;
use crate::notify::{Behaviour, Receiver, target};

const PROFILES: [&str; 3] = ["a", "b", "c"];
const PRIMARY: [&str; 3] = ["203.0.113.1", "203.0.113.2", "203.0.113.3"];
const SECONDARY: [&str; 3] = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];

fn name(i: usize) -> String {
    format!("{}.tm.example.test.", PROFILES[i])
}

/// Probes every 200 ms; three failures tolerated, so a whole-host failure
/// is detected (on the first failure of five targets of six) well before
/// any target could be decided Degraded.
fn profile(i: usize, primary: u16, secondary: u16) -> String {
    let probe = |port: u16| Toml::raw(format!("{{ address = \"127.0.0.1\", port = {port} }}"));
    ProfileToml::new(&name(i), "priority")
        .ttl(1)
        .set_monitor("protocol", "http")
        .set_monitor("path", "/health")
        .set_monitor("interval", "200ms")
        .set_monitor("timeout", "150ms")
        .set_monitor("tolerated_failures", 3)
        .set_monitor("required_successes", 1)
        .endpoint("primary", PRIMARY[i])
        .set_endpoint("primary", "priority", 1)
        .set_endpoint("primary", "probe", probe(primary))
        .endpoint("secondary", SECONDARY[i])
        .set_endpoint("secondary", "priority", 2)
        .set_endpoint("secondary", "probe", probe(secondary))
        .build()
}

/// Six backends: each profile's primary and secondary.
struct Backends(Vec<Backend>);

impl Backends {
    fn start() -> Backends {
        Backends((0..6).map(|_| Backend::http(Mode::Ok)).collect())
    }
    fn primary(&self, i: usize) -> &Backend {
        &self.0[2 * i]
    }
    fn ports(&self) -> Vec<u16> {
        self.0.iter().map(Backend::port).collect()
    }
    fn profiles(&self) -> Vec<(String, String)> {
        (0..3)
            .map(|i| {
                (
                    format!("{}.toml", PROFILES[i]),
                    profile(i, self.0[2 * i].port(), self.0[2 * i + 1].port()),
                )
            })
            .collect()
    }
}

/// A loopback source address for this module's probes, unused by any
/// other test (so the firewall rule drops nobody else's traffic).
fn source(n: usize) -> String {
    format!("127.66.0.{n}")
}

/// An nftables rule dropping every TCP packet from `source` to `ports`:
/// the probes of one node vanish, as over a dead network; removed when
/// dropped.
struct DropProbes {
    table: String,
}

impl DropProbes {
    fn new(source: &str, ports: &[u16]) -> DropProbes {
        static N: AtomicUsize = AtomicUsize::new(0);
        let table = format!(
            "switchyard_stability_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let script = format!(
            "table inet {table} {{\n  chain out {{\n    type filter hook output priority 0;\n    ip saddr {source} tcp dport {{ {} }} drop\n  }}\n}}\n",
            ports.join(", ")
        );
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft (Debian package nftables; scripts/test.sh installs it) must run as root");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft refused:\n{script}");
        DropProbes { table }
    }
}

impl Drop for DropProbes {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}

fn answer(p: &Proc, i: usize) -> String {
    addrs(&udp(p.v4(), &name(i), RecordType::A))
        .pop()
        .unwrap_or_default()
}

fn answers(p: &Proc) -> Vec<String> {
    (0..3).map(|i| answer(p, i)).collect()
}

fn status_doc(p: &Proc) -> Value {
    let (code, body) = http(p.admin(), "GET", "/api/v1/status", None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Every endpoint's status, as `profile/endpoint status`.
fn statuses(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in doc["profiles"].as_array().unwrap() {
        for e in p["endpoints"].as_array().unwrap() {
            out.push(format!("{}/{} {}", p["name"], e["name"], e["status"]));
        }
    }
    out.sort();
    out
}

fn all_online(doc: &Value) -> bool {
    statuses(doc).iter().all(|s| s.ends_with("\"Online\""))
}

fn metric(p: &Proc, name: &str) -> Option<f64> {
    let (_, body) = http(p.admin(), "GET", "/metrics", None);
    body.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Waits until metric `name` reads `want` (scrapes within a second share
/// one encoding, so a change shows within about a second).
fn wait_metric(p: &Proc, name: &str, want: f64) {
    wait_until(Duration::from_secs(10), || metric(p, name) == Some(want))
        .unwrap_or_else(|| panic!("{name} is {:?}, not {want}", metric(p, name)));
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

/// A canary on loopback: a listener that takes every connection.
fn canary() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    port
}

/// One node alone, three profiles of two endpoints, a canary on loopback.
fn start_alone(backends: &Backends, canary: u16, hook: &Receiver) -> Proc {
    let extra = format!(
        "[prober]\nsource_v4 = \"{}\"\ncanaries = [\"tcp://127.0.0.1:{canary}\"]\ncanary_interval = \"200ms\"\ncanary_timeout = \"150ms\"\n{}",
        source(1),
        target("ops", &hook.url(), "coalesce = \"0s\"")
    );
    let profiles = backends.profiles();
    let refs: Vec<(&str, &str)> = profiles
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let p = Proc::start(Fixture::new(&extra, &refs));
    wait_until(Duration::from_secs(20), || {
        all_online(&status_doc(&p)) && answers(&p) == PRIMARY
    })
    .unwrap_or_else(|| panic!("not every endpoint Online: {}", status_doc(&p)));
    p
}

/// Every probe of the node dropped at once: answers unchanged, and every
/// surface says the statuses are frozen; once the probes get through
/// again, they thaw and decisions resume.
#[test]
fn a_node_that_loses_its_network_freezes_its_statuses_and_thaws() {
    let backends = Backends::start();
    let canary_port = canary();
    let hook = Receiver::start(Behaviour::Ok);
    let p = start_alone(&backends, canary_port, &hook);
    assert_eq!(status_doc(&p)["prober"]["impaired"], false);
    assert_eq!(metric(&p, "switchyard_prober_impaired"), Some(0.0));

    let mut ports = backends.ports();
    ports.push(canary_port);
    let rule = DropProbes::new(&source(1), &ports);
    // From the moment the probes vanish until the freeze is seen, every
    // answer stays the same.
    let mut changed = Vec::new();
    wait_until(Duration::from_secs(15), || {
        let now = answers(&p);
        if now != PRIMARY {
            changed.push(now);
        }
        status_doc(&p)["prober"]["impaired"] == true
    })
    .unwrap_or_else(|| panic!("never impaired: {}\n{}", status_doc(&p), p.log()));
    assert!(changed.is_empty(), "answers changed: {changed:?}");

    // Frozen: every status as before, while the probes go on failing.
    let doc = status_doc(&p);
    assert!(all_online(&doc), "{doc}");
    let notice = doc["prober"]["notice"].as_str().unwrap().to_string();
    assert!(notice.starts_with("statuses frozen since "), "{notice}");
    assert!(notice.contains("prober impaired"), "{notice}");
    assert!(
        notice.contains("of 6 probe targets failed together"),
        "{notice}"
    );
    wait_until(Duration::from_secs(15), || {
        let doc = status_doc(&p);
        let failures = doc["profiles"][0]["endpoints"][0]["consecutive_failures"]
            .as_u64()
            .unwrap_or(0);
        assert!(all_online(&doc), "{doc}");
        assert_eq!(answers(&p), PRIMARY);
        failures >= 8
    })
    .unwrap_or_else(|| panic!("probes stopped? {}", status_doc(&p)));
    let doc = status_doc(&p);
    assert_eq!(doc["prober"]["canaries"][0]["state"], "down", "{doc}");
    assert_eq!(doc["prober"]["episodes"], 1);

    // Said loudly: metrics, the page, `status`, `explain`, the log and a
    // notification.
    wait_metric(&p, "switchyard_prober_impaired", 1.0);
    wait_metric(&p, "switchyard_prober_impaired_episodes_total", 1.0);
    let (_, page) = http(p.admin(), "GET", "/", None);
    assert!(
        page.contains("Prober impaired: </strong>statuses frozen since"),
        "{page}"
    );
    let status = cli(&p, &["status"]);
    assert!(
        status
            .lines()
            .next()
            .unwrap()
            .starts_with("PROBER IMPAIRED: statuses frozen since"),
        "{status}"
    );
    let explain = cli(&p, &["explain", &name(0)]);
    assert!(
        explain.contains("statuses frozen since") && explain.contains("prober impaired"),
        "{explain}"
    );
    assert!(explain.contains(PRIMARY[0]), "{explain}");
    assert!(p.log().contains("prober impaired"), "{}", p.log());
    wait_until(Duration::from_secs(10), || {
        !hook.accepted("prober.impaired").is_empty()
    })
    .unwrap_or_else(|| panic!("no prober.impaired notification: {:?}", hook.all()));
    let m = hook.accepted("prober.impaired")[0].json();
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .starts_with("statuses frozen since"),
        "{m}"
    );
    assert_eq!(m["new_status"], "frozen", "{m}");
    assert!(
        hook.accepted("endpoint.status").is_empty(),
        "no endpoint changed: {:?}",
        hook.accepted("endpoint.status")
            .iter()
            .map(|g| g.json())
            .collect::<Vec<_>>()
    );

    // The network is back: statuses thaw, nothing changed on the way.
    drop(rule);
    wait_until(Duration::from_secs(15), || {
        assert_eq!(answers(&p), PRIMARY);
        status_doc(&p)["prober"]["impaired"] == false
    })
    .unwrap_or_else(|| panic!("never thawed: {}", status_doc(&p)));
    let doc = status_doc(&p);
    assert!(all_online(&doc), "{doc}");
    assert!(doc["prober"]["notice"].is_null(), "{doc}");
    assert!(doc["prober"]["last_episode"]["until"].is_string(), "{doc}");
    wait_metric(&p, "switchyard_prober_impaired", 0.0);
    wait_until(Duration::from_secs(10), || {
        !hook.accepted("prober.recovered").is_empty()
    })
    .unwrap_or_else(|| panic!("no prober.recovered notification: {:?}", hook.all()));

    // Decisions resume from fresh probes: a real failure fails over.
    backends.primary(1).set(Mode::Unavailable);
    wait_until(Duration::from_secs(15), || answer(&p, 1) == SECONDARY[1])
        .unwrap_or_else(|| panic!("no failover after the thaw: {}", status_doc(&p)));
    assert_eq!(answer(&p, 0), PRIMARY[0]);
    assert_eq!(status_doc(&p)["prober"]["impaired"], false);
}

/// A real single-region failure (one profile's primary, two targets of
/// six) is no impairment: that profile fails over, the others keep
/// answering, nothing is frozen.
#[test]
fn a_single_region_failure_still_fails_over() {
    let backends = Backends::start();
    let hook = Receiver::start(Behaviour::Ok);
    let p = start_alone(&backends, canary(), &hook);
    backends.primary(0).set(Mode::Unavailable);
    backends.0[3].set(Mode::Unavailable); // b's secondary: another region
    wait_until(Duration::from_secs(15), || answer(&p, 0) == SECONDARY[0])
        .unwrap_or_else(|| panic!("no failover: {}", status_doc(&p)));
    let doc = status_doc(&p);
    assert_eq!(doc["prober"]["impaired"], false, "{doc}");
    assert_eq!(doc["prober"]["episodes"], 0, "{doc}");
    assert_eq!(answers(&p), [SECONDARY[0], PRIMARY[1], PRIMARY[2]]);
    assert_eq!(
        metric(&p, "switchyard_prober_impaired_episodes_total"),
        Some(0.0)
    );
}

/// Node `n` (1-based) of a cluster gossiping on `ports` with quorum
/// "any" (one node's Degraded is enough: an impaired node voting would
/// take every endpoint down), probing from its own source address.
fn cluster_node(n: usize, ports: &[u16], backends: &Backends) -> Proc {
    let seeds: Vec<String> = ports
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != n)
        .map(|(_, p)| format!("\"127.0.0.1:{p}\""))
        .collect();
    let extra = format!(
        "state_file = \"state.json\"\n[cluster]\nnode = \"ns{n}\"\nlisten = \"127.0.0.1:{}\"\nseeds = [{}]\nkey = {{ file = \"cluster.key\" }}\ngossip_interval = \"100ms\"\nquorum = \"any\"\n[prober]\nsource_v4 = \"{}\"\n",
        ports[n - 1],
        seeds.join(", "),
        source(n + 1)
    );
    let profiles = backends.profiles();
    let refs: Vec<(&str, &str)> = profiles
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let fx = Fixture::new(&extra, &refs);
    let path = fx.dir.path().join("cluster.key");
    std::fs::write(&path, crate::cluster::KEY).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Proc::start(fx)
}

/// What node `p` says of node `name` in its cluster view.
fn node_view(p: &Proc, name: &str) -> Value {
    status_doc(p)["cluster"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// In a cluster, the node whose probes all vanish stops voting (rather
/// than voting every endpoint down under quorum "any"): every node keeps
/// answering, the others show it as not counted and why, and their quorum
/// alone decides a real failure, on every node, the impaired one included.
#[test]
fn an_impaired_node_stops_voting_and_the_others_decide() {
    let backends = Backends::start();
    let ports: Vec<u16> = (0..3).map(|_| free_port(true)).collect();
    let nodes: Vec<Proc> = (1..=3)
        .map(|n| cluster_node(n, &ports, &backends))
        .collect();
    let every = |want: [&str; 3]| nodes.iter().all(|p| answers(p) == want);
    wait_until(Duration::from_secs(30), || {
        every(PRIMARY)
            && nodes.iter().all(|p| {
                let n = status_doc(p)["cluster"]["nodes"].clone();
                n.as_array()
                    .is_some_and(|a| a.len() == 3 && a.iter().all(|n| n["state"] == "alive"))
            })
    })
    .unwrap_or_else(|| panic!("cluster not up: {}", status_doc(&nodes[0])));

    // ns1 loses every probe. Until the others show it impaired, every
    // node keeps answering the primaries.
    let rule = DropProbes::new(&source(2), &backends.ports());
    wait_until(Duration::from_secs(20), || {
        assert!(
            every(PRIMARY),
            "an answer changed: {:?}\nns1: {}",
            nodes.iter().map(answers).collect::<Vec<_>>(),
            status_doc(&nodes[0])
        );
        status_doc(&nodes[0])["prober"]["impaired"] == true
            && node_view(&nodes[1], "ns1")["impaired"].is_string()
            && node_view(&nodes[2], "ns1")["impaired"].is_string()
    })
    .unwrap_or_else(|| panic!("ns1 never shown impaired: {}", status_doc(&nodes[1])));
    let why = node_view(&nodes[1], "ns1")["impaired"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.contains("prober impaired") && why.contains("of 6 probe targets"),
        "{why}"
    );
    let e = status_doc(&nodes[1])["profiles"][0]["endpoints"][0].clone();
    let ns1 = e["cluster"]["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["node"] == "ns1")
        .unwrap()
        .clone();
    assert_eq!(ns1["counted"], false, "{e}");
    assert!(
        ns1["note"].as_str().unwrap().contains("prober impaired"),
        "{e}"
    );
    assert_eq!(e["cluster"]["deciders"], 2, "{e}");
    assert!(
        e["why"]
            .as_str()
            .unwrap()
            .contains("ns1 not counted (prober impaired)"),
        "{e}"
    );
    let text = cli(&nodes[1], &["cluster"]);
    let row = text.lines().find(|l| l.starts_with("ns1 ")).unwrap_or("");
    assert!(row.contains("PROBER IMPAIRED: NOT VOTING"), "{text}");
    let (_, page) = http(nodes[2].admin(), "GET", "/", None);
    assert!(page.contains("prober impaired: not voting"), "{page}");
    // Long past the four failures that would have made ns1 vote every
    // endpoint down: nothing changed anywhere.
    wait_until(Duration::from_secs(20), || {
        assert!(every(PRIMARY), "an answer changed");
        status_doc(&nodes[0])["profiles"][0]["endpoints"][0]["consecutive_failures"]
            .as_u64()
            .unwrap_or(0)
            >= 8
    })
    .unwrap_or_else(|| panic!("ns1's probes stopped? {}", status_doc(&nodes[0])));

    // A real failure: the others' quorum decides it for every node.
    backends.primary(1).set(Mode::Unavailable);
    let want = [PRIMARY[0], SECONDARY[1], PRIMARY[2]];
    wait_until(Duration::from_secs(20), || every(want)).unwrap_or_else(|| {
        panic!(
            "no failover: {:?}",
            nodes.iter().map(answers).collect::<Vec<_>>()
        )
    });
    assert_eq!(status_doc(&nodes[0])["prober"]["impaired"], true);

    // ns1's network is back: it votes again.
    drop(rule);
    wait_until(Duration::from_secs(20), || {
        status_doc(&nodes[0])["prober"]["impaired"] == false
            && node_view(&nodes[1], "ns1")["impaired"].is_null()
    })
    .unwrap_or_else(|| panic!("ns1 never thawed: {}", status_doc(&nodes[0])));
    backends.primary(1).set(Mode::Ok);
    wait_until(Duration::from_secs(20), || every(PRIMARY)).unwrap_or_else(|| {
        panic!(
            "not back: {:?}",
            nodes.iter().map(answers).collect::<Vec<_>>()
        )
    });
}
