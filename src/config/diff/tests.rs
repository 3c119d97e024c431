//! The answer diff on small configurations: what changes for whom, and
//! the text an operator reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::clients::cidrs;
use super::*;
use crate::config::{self, Carry, Config};
use crate::health::Status;
use crate::snapshot::Health;

const GEOIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/geoip/geo-whois-asn-country.mmdb"
);

/// A configuration directory: the server file, one zone, profiles.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new(profiles: &[(&str, &str)]) -> Dir {
        let dir = Dir(tempfile::tempdir().unwrap());
        std::fs::create_dir(dir.0.path().join("profiles")).unwrap();
        dir.server("192.0.2.53");
        dir.profiles(profiles);
        dir
    }

    fn server(&self, ns_addr: &str) {
        let text = format!(
            "[geoip]\ndatabase = \"{GEOIP}\"\n[profiles]\ndir = \"profiles\"\n[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns1.tm.example.test.\"]\nsoa = {{ mname = \"ns1.tm.example.test.\", rname = \"h.example.test.\" }}\nrecords = [{{ name = \"ns1\", type = \"A\", value = \"{ns_addr}\" }}]\n"
        );
        std::fs::write(self.0.path().join("switchyard.toml"), text).unwrap();
    }

    fn profiles(&self, profiles: &[(&str, &str)]) {
        for (name, body) in profiles {
            let path = self.0.path().join("profiles").join(name);
            if body.is_empty() {
                std::fs::remove_file(path).unwrap();
            } else {
                std::fs::write(path, body).unwrap();
            }
        }
    }

    fn load(&self) -> Config {
        config::load(&self.0.path().join("switchyard.toml")).unwrap()
    }

    /// Loads the candidate as a dry run does: with a detached copy of
    /// `running`'s health.
    fn candidate(&self, running: &Config) -> Config {
        let carry = Carry::from_running(
            &running.table,
            &running.probes,
            Default::default(),
            running.geo.clone(),
        )
        .detached();
        config::load_with(&self.0.path().join("switchyard.toml"), &carry).unwrap()
    }
}

fn run(old: &Config, new: &Config) -> AnswerDiff {
    diff(
        Side {
            table: &old.table,
            probes: &old.probes,
        },
        Side {
            table: &new.table,
            probes: &new.probes,
        },
    )
}

fn set(cfg: &Config, profile: &str, endpoint: &str, status: Status) {
    let t = &cfg.table;
    let p = t.profile_by_name(profile).unwrap();
    let e = t
        .endpoints_of(p)
        .iter()
        .find(|e| &*e.name == endpoint)
        .unwrap();
    match &e.health {
        Health::Monitored(cell) => cell.set(status),
        other => panic!("not monitored: {other:?}"),
    }
}

const MONITOR: &str = "[monitor]\nprotocol = \"tcp\"\nport = 9\n";

fn geo(de: &str, ch: &str) -> String {
    format!(
        "name = \"api.tm.example.test.\"\nrouting = \"geographic\"\n{MONITOR}\
         [[endpoints]]\nname = \"eu-west\"\ntarget = \"192.0.2.1\"\nregions = [{de}]\n\
         [[endpoints]]\nname = \"eu-central\"\ntarget = \"192.0.2.2\"\nregions = [{ch}]\n\
         [[endpoints]]\nname = \"us-east\"\ntarget = \"192.0.2.3\"\nregions = [\"WORLD\"]\n"
    )
}

fn weighted(blue: u32, green: u32) -> String {
    format!(
        "name = \"shop.tm.example.test.\"\nrouting = \"weighted\"\n\
         [[endpoints]]\nname = \"blue\"\ntarget = \"192.0.2.10\"\nweight = {blue}\n\
         [[endpoints]]\nname = \"green\"\ntarget = \"192.0.2.11\"\nweight = {green}\n"
    )
}

fn priority(name: &str, addr: &str) -> String {
    format!(
        "name = \"{name}.tm.example.test.\"\nrouting = \"priority\"\n\
         [[endpoints]]\nname = \"only\"\ntarget = \"{addr}\"\n"
    )
}

fn online(cfg: &Config) {
    for p in &cfg.probes {
        p.cell.set(Status::Online);
    }
}

#[test]
fn a_country_moved_to_another_endpoint() {
    let dir = Dir::new(&[
        ("api.toml", &geo("\"DE\", \"FR\", \"GEO-EU\"", "\"CH\"")),
        ("shop.toml", &weighted(90, 10)),
    ]);
    let old = dir.load();
    online(&old);
    dir.profiles(&[("api.toml", &geo("\"GEO-EU\"", "\"DE\", \"FR\", \"CH\""))]);
    let new = dir.candidate(&old);
    let d = run(&old, &new);
    assert_eq!(d.names.len(), 1, "{}", d.render());
    let api = &d.names[0];
    assert_eq!(
        (api.name.as_str(), api.kind.as_str(), api.change),
        ("api.tm.example.test", "geographic", Change::Changed)
    );
    assert_eq!(
        api.details[0],
        Detail::new(
            "clients",
            Some("eu-west (192.0.2.1)".into()),
            Some("eu-central (192.0.2.2)".into())
        )
        .keyed(vec!["DE".into(), "FR".into()])
    );
    let text = d.render();
    assert!(
        text.contains("  DE, FR: eu-west (192.0.2.1) -> eu-central (192.0.2.2)\n"),
        "{text}"
    );
    assert!(
        text.contains("  clients no key matches: unchanged (us-east (192.0.2.3))\n"),
        "{text}"
    );
    assert!(text.ends_with("1 name changes, 4 unchanged\n"), "{text}");
}

#[test]
fn todays_health_decides_what_a_moved_country_gets() {
    // DE moves to eu-central, which is Degraded: DE clients fall back to
    // their next match (GEO-EU, eu-west), which they get already.
    let dir = Dir::new(&[("api.toml", &geo("\"DE\", \"GEO-EU\"", "\"CH\""))]);
    let old = dir.load();
    online(&old);
    set(&old, "api.tm.example.test", "eu-central", Status::Degraded);
    dir.profiles(&[("api.toml", &geo("\"GEO-EU\"", "\"DE\", \"CH\""))]);
    let new = dir.candidate(&old);
    let d = run(&old, &new);
    assert!(d.is_empty(), "{}", d.render());
    assert!(d.render().starts_with("no change in answers"));
    // Once eu-central is Online, the same edit moves DE.
    set(&old, "api.tm.example.test", "eu-central", Status::Online);
    let new = dir.candidate(&old);
    let text = run(&old, &new).render();
    assert!(
        text.contains("  DE: eu-west (192.0.2.1) -> eu-central (192.0.2.2)\n"),
        "{text}"
    );
}

#[test]
fn weights_shift_with_shares() {
    let dir = Dir::new(&[("shop.toml", &weighted(90, 10))]);
    let old = dir.load();
    dir.profiles(&[("shop.toml", &weighted(50, 50))]);
    let new = dir.candidate(&old);
    let d = run(&old, &new);
    let shop = &d.names[0];
    let w: Vec<_> = shop
        .details
        .iter()
        .map(|d| {
            (
                d.keys[0].as_str(),
                d.old.as_deref(),
                d.new.as_deref(),
                d.share,
            )
        })
        .collect();
    assert_eq!(
        w,
        [
            ("blue", Some("90"), Some("50"), Some((90, 50))),
            ("green", Some("10"), Some("50"), Some((10, 50)))
        ]
    );
    let text = d.render();
    assert!(
        text.contains(
            "shop.tm.example.test (weighted)\n  weights: blue 90 -> 50 (90% -> 50%), green 10 -> 50 (10% -> 50%)\n"
        ),
        "{text}"
    );
}

/// A weighted profile drawing from held endpoints (`failback =
/// "manual"`) lists them, with their shares (the diff printed `"one of "`
/// and 0%: it rebuilt the pool as "answerable or eligible").
#[test]
fn a_held_pool_is_listed_with_its_shares() {
    let held = |blue: u32| {
        format!(
            "name = \"shop.tm.example.test.\"\nrouting = \"weighted\"\nfailback = \"manual\"\n{MONITOR}\
             [[endpoints]]\nname = \"blue\"\ntarget = \"192.0.2.10\"\nweight = {blue}\n\
             [[endpoints]]\nname = \"green\"\ntarget = \"192.0.2.11\"\nweight = 10\n"
        )
    };
    let dir = Dir::new(&[("shop.toml", &held(90))]);
    let old = dir.load();
    for ep in ["blue", "green"] {
        set(&old, "shop.tm.example.test", ep, Status::Degraded);
        set(&old, "shop.tm.example.test", ep, Status::Online);
    }
    dir.profiles(&[("shop.toml", &held(30))]);
    let new = dir.candidate(&old);
    let text = run(&old, &new).render();
    assert!(
        text.contains("weights: blue 90 -> 30 (90% -> 75%), green 10 (10% -> 25%)"),
        "{text}"
    );
    dir.profiles(&[("shop.toml", "")]);
    let new = dir.candidate(&old);
    let text = run(&old, &new).render();
    assert!(
        text.contains(
            "shop.tm.example.test: removed (weighted, was answering one of blue (192.0.2.10), green (192.0.2.11))"
        ),
        "{text}"
    );
}

/// `on_all_down = "<endpoint>"` is shown as written, and what it
/// answers as routing decides it.
#[test]
fn a_fixed_on_all_down_endpoint() {
    let fixed = |rule: &str| {
        format!(
            "name = \"api.tm.example.test.\"\nrouting = \"priority\"\non_all_down = \"{rule}\"\n{MONITOR}\
             [[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\npriority = 1\n\
             [[endpoints]]\nname = \"b\"\ntarget = \"192.0.2.2\"\npriority = 2\n"
        )
    };
    let dir = Dir::new(&[("api.toml", &fixed("b"))]);
    let old = dir.load();
    set(&old, "api.tm.example.test", "a", Status::Degraded);
    set(&old, "api.tm.example.test", "b", Status::Degraded);
    dir.profiles(&[("api.toml", &fixed("nodata"))]);
    let new = dir.candidate(&old);
    let text = run(&old, &new).render();
    assert!(text.contains("on_all_down: b -> nodata"), "{text}");
    assert!(text.contains("answer: b (192.0.2.2) -> NODATA"), "{text}");
}

#[test]
fn names_appear_and_disappear() {
    let dir = Dir::new(&[("old.toml", &priority("old", "192.0.2.9"))]);
    let old = dir.load();
    dir.profiles(&[
        ("old.toml", ""),
        ("new.toml", &priority("new", "192.0.2.7")),
    ]);
    let new = dir.candidate(&old);
    let text = run(&old, &new).render();
    assert!(
        text.contains("new.tm.example.test: added (priority, answers only (192.0.2.7))\n"),
        "{text}"
    );
    assert!(
        text.contains("old.tm.example.test: removed (priority, was answering only (192.0.2.9))\n"),
        "{text}"
    );
}

#[test]
fn an_unchanged_configuration_changes_nothing() {
    let dir = Dir::new(&[
        ("api.toml", &geo("\"DE\", \"GEO-EU\"", "\"CH\"")),
        ("shop.toml", &weighted(90, 10)),
    ]);
    let old = dir.load();
    online(&old);
    let new = dir.candidate(&old);
    let d = run(&old, &new);
    assert!(d.is_empty(), "{}", d.render());
    // The zone, its apex's and ns1's records, two profiles.
    assert_eq!(d.unchanged, 5);
}

#[test]
fn a_changed_probe_starts_over() {
    let dir = Dir::new(&[("api.toml", &geo("\"DE\", \"GEO-EU\"", "\"CH\""))]);
    let old = dir.load();
    online(&old);
    dir.profiles(&[(
        "api.toml",
        &geo("\"DE\", \"GEO-EU\"", "\"CH\"").replace("port = 9", "port = 10"),
    )]);
    let new = dir.candidate(&old);
    let d = run(&old, &new);
    let probes: Vec<_> = d.names[0]
        .details
        .iter()
        .filter(|d| d.aspect == "probe")
        .collect();
    assert_eq!(probes.len(), 3, "{}", d.render());
    assert_eq!(
        probes[0].note.as_deref(),
        Some("probe changed: health will be re-checked")
    );
    assert_eq!(probes[0].new.as_deref(), Some("CheckingEndpoint"));
    // The running health is untouched by the candidate.
    assert!(old.probes.iter().all(|p| p.cell.get() == Status::Online));
}

#[test]
fn subnets_that_move() {
    let office = |internal: &str| {
        format!(
            "name = \"office.tm.example.test.\"\nrouting = \"subnet\"\n\
             [[endpoints]]\nname = \"internal\"\ntarget = \"10.10.0.10\"\nsubnets = [{internal}]\n\
             [[endpoints]]\nname = \"public\"\ntarget = \"192.0.2.52\"\n"
        )
    };
    let dir = Dir::new(&[("office.toml", &office("\"10.0.0.0/8\""))]);
    let old = dir.load();
    dir.profiles(&[("office.toml", &office("\"10.0.0.0/9\", \"172.16.0.0/12\""))]);
    let new = dir.candidate(&old);
    let text = run(&old, &new).render();
    assert!(
        text.contains("  10.128.0.0/9: internal (10.10.0.10) -> public (192.0.2.52)\n"),
        "{text}"
    );
    assert!(
        text.contains("  172.16.0.0/12: public (192.0.2.52) -> internal (10.10.0.10)\n"),
        "{text}"
    );
}

#[test]
fn records_ttl_and_priority_order() {
    let two = |p1: u32, p2: u32, ttl: u32| {
        format!(
            "name = \"todo.tm.example.test.\"\nrouting = \"priority\"\nttl = {ttl}\n\
             [[endpoints]]\nname = \"primary\"\ntarget = \"203.0.113.10\"\npriority = {p1}\n\
             [[endpoints]]\nname = \"secondary\"\ntarget = \"198.51.100.20\"\npriority = {p2}\n"
        )
    };
    let dir = Dir::new(&[("todo.toml", &two(1, 2, 30))]);
    let old = dir.load();
    dir.profiles(&[("todo.toml", &two(2, 1, 60))]);
    dir.server("192.0.2.54");
    let new = dir.candidate(&old);
    let text = run(&old, &new).render();
    for want in [
        "ns1.tm.example.test (records)\n  A: 3600 192.0.2.53 -> 3600 192.0.2.54\n",
        "todo.tm.example.test (priority)\n  answer: primary (203.0.113.10) -> secondary (198.51.100.20)\n",
        "  order: primary > secondary -> secondary > primary\n",
        "  ttl: 30 -> 60\n",
    ] {
        assert!(text.contains(want), "{want}\nnot in:\n{text}");
    }
}

#[test]
fn cidr_blocks() {
    let v4 = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128;
    assert_eq!(
        cidrs(false, v4("10.128.0.0"), v4("10.255.255.255")),
        ["10.128.0.0/9"]
    );
    assert_eq!(
        cidrs(false, v4("198.51.100.10"), v4("198.51.100.17")),
        ["198.51.100.10/31", "198.51.100.12/30", "198.51.100.16/31"]
    );
    assert_eq!(cidrs(false, 0, u32::MAX as u128), ["0.0.0.0/0"]);
    assert_eq!(cidrs(true, 0, u128::MAX), ["::/0"]);
}
