//! The Traffic View (issue 23): the real binary answers `dig +subnet`
//! queries from several networks and countries (a GeoIP database written
//! at test time, with regions), and the API (JSON and CSV) and the metrics
//! show where they came from and which endpoint each got; turned off,
//! nothing is recorded; a flood of distinct networks keeps its memory
//! bounded and counts what it could not record. The drain runs every
//! second, so every check polls with a bound.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::backend::{holds_for, wait_until};
use crate::geo::{ecs_option, query_with_option};
use crate::geodb::{self, Schema};
use crate::harness::*;

const NAME: &str = "nearest.tm.example.test.";

/// Performance routing over three regions, unmonitored (all answer).
const NEAREST: &str = r#"
name = "nearest.tm.example.test."
routing = "performance"
ttl = 60
[[endpoints]]
name = "eu"
target = "192.0.2.1"
location = "westeurope"
[[endpoints]]
name = "us"
target = "192.0.2.2"
location = "eastus"
[[endpoints]]
name = "apac"
target = "192.0.2.3"
location = "australiaeast"
"#;

fn fixture(extra: &str) -> Fixture {
    let fx = Fixture::new(
        &format!("[geoip]\ndatabase = \"geo.mmdb\"\n{extra}"),
        &[("nearest.toml", NEAREST)],
    );
    geodb::write(&fx.dir.path().join("geo.mmdb"), Schema::City);
    fx
}

/// `dig` against `addr` (with `+subnet=` when given): the address
/// answered. One try, so every query is counted once.
fn dig(addr: SocketAddr, subnet: Option<&str>) -> String {
    let mut cmd = Command::new("dig");
    cmd.arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), NAME, "A", "+norecurse"])
        .args(["+time=5", "+tries=1", "+short"]);
    if let Some(s) = subnet {
        cmd.arg(format!("+subnet={s}"));
    }
    let out = cmd
        .output()
        .expect("cannot run dig; run the tests with scripts/test.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .unwrap_or_else(|| panic!("no answer from dig {subnet:?}: {text}"))
        .trim()
        .to_string()
}

fn traffic(admin: SocketAddr, query: &str) -> (u16, Value) {
    json(admin, "GET", &format!("/api/v1/traffic?{query}"), None)
}

/// Waits until the profile's hour shows `want` queries.
fn wait_for_queries(admin: SocketAddr, want: u64) -> Value {
    let mut last = Value::Null;
    let seen = wait_until(Duration::from_secs(15), || {
        let (code, doc) = traffic(admin, &format!("profile={NAME}"));
        assert_eq!(code, 200, "{doc}");
        last = doc;
        last["queries"] == want
    });
    assert!(seen.is_some(), "not {want} queries within 15 s: {last:#}");
    last
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list:#}"))
}

/// A metric's value from a scrape, by its name and labels as written.
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn answers_are_counted_by_country_region_network_and_endpoint() {
    let p = Proc::start(fixture(""));
    let (dns, admin) = (p.v4(), p.admin());
    // (ECS network, queries, the region performance routing picks)
    let sent = [
        (Some("81.2.69.0/24"), 3, "192.0.2.1"), // GB, England: eu
        (Some("1.2.3.0/24"), 2, "192.0.2.3"),   // AU, NSW: apac
        (Some("8.8.8.0/24"), 4, "192.0.2.2"),   // US, California: us
        (Some("2001:db8:e000::/56"), 1, "192.0.2.1"), // DE, Bavaria: eu
        (None, 1, "192.0.2.1"),                 // the resolver, 127.0.0.1: IE, eu
    ];
    for (subnet, n, want) in sent {
        for _ in 0..n {
            assert_eq!(dig(dns, subnet), want, "{subnet:?}");
        }
    }
    let doc = wait_for_queries(admin, 11);
    assert_eq!(doc["profile"], NAME);
    assert_eq!(doc["window"], "hour");
    assert_eq!(doc["recording"], true);
    // By endpoint, each marked where it is (westeurope: Netherlands).
    let eu = find(&doc["endpoints"], "endpoint", "eu");
    assert_eq!(eu["queries"], 5);
    assert!((eu["lat"].as_f64().unwrap() - 52.37).abs() < 1.0, "{eu}");
    assert_eq!(find(&doc["endpoints"], "endpoint", "us")["queries"], 4);
    assert_eq!(find(&doc["endpoints"], "endpoint", "apac")["queries"], 2);
    // By country, and where each country's queries went.
    let gb = find(&doc["countries"], "country", "GB");
    assert_eq!(gb["queries"], 3);
    assert_eq!(gb["to"]["eu"], 3);
    assert_eq!(gb["group"], "GEO-EU");
    assert_eq!(find(&doc["countries"], "country", "US")["to"]["us"], 4);
    assert_eq!(find(&doc["countries"], "country", "AU")["to"]["apac"], 2);
    assert_eq!(find(&doc["countries"], "country", "DE")["to"]["eu"], 1);
    assert_eq!(find(&doc["countries"], "country", "IE")["to"]["eu"], 1);
    // The table: country, region, endpoint.
    let row = find(&doc["locations"], "region", "US-CA");
    assert_eq!(
        (
            row["country"].as_str(),
            row["endpoint"].as_str(),
            row["queries"].as_u64()
        ),
        (Some("US"), Some("us"), Some(4))
    );
    assert_eq!(find(&doc["locations"], "region", "GB-ENG")["queries"], 3);
    // Networks: the ECS network when given, else the resolver's /24;
    // exact while fewer than k networks were seen.
    let nets = &doc["networks"];
    assert_eq!(nets["k"], 256);
    for (network, endpoint, n) in [
        ("81.2.69.0/24", "eu", 3),
        ("8.8.8.0/24", "us", 4),
        ("2001:db8:e000::/56", "eu", 1),
        ("127.0.0.0/24", "eu", 1),
    ] {
        let r = find(&nets["top"], "network", network);
        assert_eq!(
            (r["endpoint"].as_str(), r["queries"].as_u64()),
            (Some(endpoint), Some(n))
        );
        assert_eq!(r["error"], 0, "{r}");
    }
    assert_eq!(nets["top"].as_array().unwrap().len(), 5);
    assert_eq!(doc["dropped"], 0);
    // The day holds the same.
    let (code, day) = traffic(admin, &format!("profile={NAME}&window=day"));
    assert_eq!((code, &day["queries"]), (200, &Value::from(11)));

    // CSV: a header, a row per table row and per network.
    let (code, csv) = http(
        admin,
        "GET",
        &format!("/api/v1/traffic?profile={NAME}&format=csv"),
        None,
    );
    assert_eq!(code, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "kind,country,region,network,endpoint,queries,error"
    );
    for want in [
        "location,US,US-CA,,us,4,0",
        "location,GB,GB-ENG,,eu,3,0",
        "network,GB,,81.2.69.0/24,eu,3,0",
        "network,DE,,2001:db8:e000::/56,eu,1,0",
    ] {
        assert!(lines.contains(&want), "no {want:?} in:\n{csv}");
    }
    let located: u64 = lines
        .iter()
        .filter(|l| l.starts_with("location,"))
        .map(|l| l.rsplit(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(located, 11);

    // Metrics: by country only.
    let (_, body) = http(admin, "GET", "/metrics", None);
    let series =
        |c: &str| format!("switchyard_traffic_queries_total{{profile=\"{NAME}\",country=\"{c}\"}}");
    assert_eq!(metric(&body, &series("GB")), Some(3.0), "{body}");
    assert_eq!(metric(&body, &series("US")), Some(4.0));
    assert_eq!(metric(&body, "switchyard_traffic_dropped_total"), Some(0.0));
    assert!(metric(&body, "switchyard_traffic_memory_bytes").unwrap() > 0.0);
    assert!(!body.contains("81.2.69"), "a network in the metrics");

    // Bad requests.
    for (query, code) in [
        ("", 400),
        ("profile=", 400),
        (&format!("profile={NAME}&window=week") as &str, 400),
        (&format!("profile={NAME}&format=xml"), 400),
        ("profile=nope.tm.example.test.", 404),
    ] {
        let (got, doc) = traffic(admin, query);
        assert_eq!(got, code, "{query}: {doc}");
        assert!(doc["error"].is_string(), "{doc}");
    }
}

#[test]
fn turned_off_nothing_is_recorded_until_a_reload_turns_it_on() {
    let off = "[traffic]\nenabled = false\n";
    let s = fixture(off).start();
    let m = udp_opts(s.v4(), NAME, RecordType::A, Opts::default());
    assert_eq!(addrs(&m), ["192.0.2.1"]);
    // Had it been recorded, an idle receive loop queues it within 100 ms
    // and the drain takes it within a second: 2.5 s shows nothing came.
    let serving = &s.shared.serving;
    let nothing = holds_for(Duration::from_millis(2500), || {
        serving.traffic.is_empty()
            && serving.traffic.dropped() == 0
            && s.shared.traffic.lock().unwrap().profile(NAME).is_none()
    });
    assert_eq!(nothing, Ok(()), "recorded while off");
    let (code, doc) = traffic(s.admin, &format!("profile={NAME}"));
    assert_eq!(code, 409, "{doc}");
    assert!(
        doc["error"].as_str().unwrap().contains("enabled = false"),
        "{doc}"
    );
    let (_, body) = http(s.admin, "GET", "/metrics", None);
    assert!(
        !body.contains("switchyard_traffic_queries_total{"),
        "{body}"
    );

    // On again by a reload: recorded from then on.
    std::fs::write(
        s.dir().join("switchyard.toml"),
        config_toml("[geoip]\ndatabase = \"geo.mmdb\"\n[traffic]\nenabled = true\n"),
    )
    .unwrap();
    let (code, body) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200, "{body}");
    udp_opts(s.v4(), NAME, RecordType::A, Opts::default());
    wait_for_queries(s.admin, 1);
}

#[test]
fn a_flood_of_networks_keeps_memory_bounded_and_counts_drops() {
    // A small queue and sketch, so the flood overflows the one and
    // overwhelms the other.
    let k = 16;
    let s = fixture(&format!("[traffic]\nnetworks = {k}\nqueue = 64\n")).start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let serving = &s.shared.serving;
    let mut sent = 0u32;
    // Bursts of distinct /24s until the queue has overflowed (the drain
    // runs every 100 ms at most: a burst outruns it).
    let overflowed = wait_until(Duration::from_secs(30), || {
        for _ in 0..2000 {
            let net = format!("10.{}.{}.0", (sent >> 8) & 0xff, sent & 0xff);
            let q = query_with_option(NAME, RecordType::A, &ecs_option(&net, 24));
            let _ = sock.send_to(&q, s.v4());
            sent += 1;
        }
        serving.traffic.dropped() > 0
    });
    assert!(overflowed.is_some(), "no drop after {sent} queries");
    // Once the flood has been drained, every answer is either recorded
    // or counted as dropped.
    let mut last = (0, 0, 0);
    let settled = wait_until(Duration::from_secs(15), || {
        let answered = serving.metrics.total_queries();
        let recorded: u64 = {
            let v = s.shared.traffic.lock().unwrap();
            let now = switchyard::clock::unix_secs_now();
            v.profile(NAME).map_or(0, |p| {
                p.panes(switchyard::traffic::view::Window::Day, now)
                    .map(|p| p.queries)
                    .sum()
            })
        };
        last = (answered, recorded, serving.traffic.dropped());
        serving.traffic.is_empty() && recorded + last.2 == answered
    });
    assert!(settled.is_some(), "answered, recorded, dropped: {last:?}");
    let (code, doc) = traffic(s.admin, &format!("profile={NAME}&window=day"));
    assert_eq!(code, 200);
    // The sketch holds k networks per pane (the flood may span two).
    let top = doc["networks"]["top"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 2 * k, "{}", top.len());
    let bound = doc["networks"]["error_bound"].as_u64().unwrap();
    assert_eq!(bound, doc["queries"].as_u64().unwrap() / k as u64);
    assert!(top.iter().all(|n| n["error"].as_u64().unwrap() <= bound));
    // Memory: the queue, one profile's panes at most, and the caches.
    let (_, body) = http(s.admin, "GET", "/metrics", None);
    let bytes = metric(&body, "switchyard_traffic_memory_bytes").unwrap() as usize;
    let most =
        serving.traffic.bytes() + switchyard::traffic::view::Views::bytes_at_most(k) + (1 << 20);
    assert!(bytes <= most, "{bytes} bytes, more than {most}");
    assert!(
        metric(&body, "switchyard_traffic_dropped_total").unwrap() > 0.0,
        "{body}"
    );
}

#[test]
fn the_status_page_draws_the_map_and_the_table() {
    let s = fixture("").start();
    for (subnet, n) in [("81.2.69.0", 3), ("8.8.8.0", 2), ("1.2.3.0", 1)] {
        for _ in 0..n {
            let q = query_with_option(NAME, RecordType::A, &ecs_option(subnet, 24));
            assert!(udp_raw(s.v4(), &q, TIMEOUT).is_some(), "{subnet}");
        }
    }
    wait_for_queries(s.admin, 6);
    let dom = crate::page::render(&format!("http://{}/?traffic={NAME}&window=day", s.admin));
    // The map: countries shaded by their queries, each endpoint marked,
    // a line from each country to the endpoint its clients got.
    let gb = dom
        .split("data-country=\"GB\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no map drawn:\n{dom}"));
    assert!(
        gb[..gb.find('>').unwrap()].contains("fill: rgb("),
        "GB not shaded"
    );
    let fr = dom.split("data-country=\"FR\"").nth(1).unwrap();
    assert!(!fr[..fr.find('>').unwrap()].contains("fill"), "FR shaded");
    for marker in ["eu", "us", "apac"] {
        assert!(
            dom.contains(&format!("data-endpoint-marker=\"{marker}\"")),
            "{marker}"
        );
    }
    for flow in ["GB eu", "US us", "AU apac"] {
        assert!(
            dom.contains(&format!("data-flow=\"{flow}\"")),
            "no {flow} line:\n{dom}"
        );
    }
    assert!(!dom.contains("data-flow=\"GB us\""));
    // The table and the networks, and the chosen window.
    assert!(dom.contains("data-location=\"GB/GB-ENG/eu\""), "{dom}");
    assert!(dom.contains("data-network=\"81.2.69.0/24\""), "{dom}");
    assert!(dom.contains("6 queries"), "{dom}");
    assert!(
        dom.contains("<option value=\"day\" selected=\"\">"),
        "{dom}"
    );
    // The script reached every API it reads: no error shown.
    assert!(!dom.contains(">Cannot reach"), "{dom}");
    assert!(
        dom.contains("<div id=\"problem\" style=\"display: none;\"></div>"),
        "{dom}"
    );
}
