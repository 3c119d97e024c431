//! `switchyard import azure`: the real binary on Azure Traffic Manager
//! profiles of every routing method (tests/fixtures/azure/, as `az` and an
//! ARM export print them), then the real `switchyard check` on what it
//! wrote, next to (a copy of) the bundled switchyard.toml.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::bin;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/azure").join(name)
}

/// A directory with the bundled switchyard.toml (the tests' copy of it, in
/// tests/fixtures/example/, with its GeoIP database named by absolute path)
/// and an empty profiles directory.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let example = switchyard::fuzzing::example_dir().join("switchyard.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let db = repo().join("geoip/geo-whois-asn-country.mmdb");
    let text = text.replace(
        "database = \"geoip/geo-whois-asn-country.mmdb\"",
        &format!("database = {:?}", db.display().to_string()),
    );
    assert!(
        text.contains(&db.display().to_string()),
        "switchyard.toml changed: {text}"
    );
    std::fs::write(dir.path().join("switchyard.toml"), text).unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    dir
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn switchyard(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(bin())
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("switchyard.toml"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Imports `fixtures` into a fresh copy of the bundled configuration (they
/// are staged), runs `check --staged` on the result (it must pass without
/// warnings), and returns the directory, the import's output and the
/// staged files' text by name.
fn import(fixtures: &[&str]) -> (tempfile::TempDir, String, Vec<(String, String)>) {
    let paths: Vec<PathBuf> = fixtures.iter().map(|f| fixture(f)).collect();
    import_files(&paths)
}

/// [`import`] of files anywhere.
fn import_files(files: &[PathBuf]) -> (tempfile::TempDir, String, Vec<(String, String)>) {
    let dir = config_dir();
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut args = vec!["import", "azure"];
    args.extend(paths.iter().map(String::as_str));
    let run = switchyard(dir.path(), &args);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    let check = switchyard(dir.path(), &["check", "--staged"]);
    assert_eq!(check.code, 0, "check failed:\n{}{}", check.out, check.err);
    assert!(
        !check.out.contains("warning"),
        "check warns about the import:\n{}",
        check.out
    );
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir.path().join("profiles.staged"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    (dir, run.out, files)
}

fn has(text: &str, lines: &[&str]) {
    for l in lines {
        assert!(text.contains(l), "no `{l}` in:\n{text}");
    }
}

#[test]
fn priority_profile_from_az_cli() {
    let (_dir, out, files) = import(&["priority.json"]);
    assert_eq!(files.len(), 1);
    let (name, text) = &files[0];
    assert_eq!(name, "todoapi-prod.toml");
    has(
        text,
        &[
            "name = \"todoapi-prod.tm.example.test.\"\nrouting = \"priority\"\nttl = 30\n",
            "protocol = \"https\"\nport = 443\npath = \"/health/ready\"\ninterval = \"10s\"\ntimeout = \"5s\"\ntolerated_failures = 2\nexpected_status = [\"200-299\", 401]\nheaders = { \"Host\" = \"todoapi.example.com\" }\ntls_verify = false",
            "name = \"primary-westeurope\"\ntarget = \"todoapi-weu.azurewebsites.net\"\npriority = 1\nprobe = { headers = { \"X-Health-Probe\" = \"azure-tm\" } }",
            "name = \"secondary-onprem\"\ntarget = \"198.51.100.20\"\npriority = 2\n",
            "name = \"maintenance\"\ntarget = \"2001:db8::80\"\npriority = 3\nenabled = false",
        ],
    );
    has(
        &out,
        &[
            "warning: ",
            "priority.json: trafficViewEnrollmentStatus: Traffic View is not carried over",
            "note: ",
            "priority.json: endpoints[0].target: `todoapi-weu.azurewebsites.net` is the Azure resource's address at export",
            "staged ",
            "profiles.staged/todoapi-prod.toml: todoapi-prod.tm.example.test. (priority, 3 endpoints)",
            "next:\n  - nothing is live yet",
            "point the names that are CNAMEs to todoapi-prod.trafficmanager.net at todoapi-prod.tm.example.test.",
            "tm.example.test must be delegated",
        ],
    );
    // The warnings are in the file too.
    has(text, &["#   warning: ", "Traffic View is not carried over"]);
}

/// Every field of the input that is not carried over gets a line (issue
/// 20, item 17): the profile's tags, and the endpoint locations of a
/// priority profile, were dropped without one; the keys that only describe
/// the Azure resource are named together.
#[test]
fn every_field_not_carried_over_is_reported() {
    let (_dir, out, files) = import(&["priority.json"]);
    let text = &files[0].1;
    for line in [
        "note: ",
        "priority.json: tags: {\"env\":\"prod\"} not carried over: Switchyard profiles have no tags",
        "priority.json: endpoints[0].endpointLocation: \"West Europe\" (primary-westeurope) not carried over: priority routing does not use it (nor does Azure's)",
        "priority.json: endpoints[0,1,2].weight: 1 (primary-westeurope), 1 (secondary-onprem), 1 (maintenance) not carried over: priority routing does not use it (nor does Azure's)",
        "priority.json: id, location, resourceGroup, type, monitorConfig.profileMonitorStatus, endpoints[].endpointMonitorStatus, endpoints[].id, endpoints[].resourceGroup: ",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
    // In the file's header too.
    assert!(
        text.lines()
            .any(|l| l.starts_with("#   note: ") && l.contains("priority.json: tags: {")),
        "{text}"
    );
}

#[test]
fn weighted_profile_as_arm_resource() {
    let (_dir, out, files) = import(&["weighted.json"]);
    let text = &files[0].1;
    has(
        text,
        &[
            "routing = \"weighted\"\nttl = 10\n",
            "protocol = \"http\"\nport = 80\npath = \"/\"\ninterval = \"30s\"\ntimeout = \"10s\"\ntolerated_failures = 3\n",
            "name = \"stable\"\ntarget = \"192.0.2.10\"\nweight = 90\n",
            "name = \"canary\"\ntarget = \"192.0.2.11\"\nweight = 10\n",
            "name = \"static-cdn\"\ntarget = \"shop.cdn.example.net\"\nweight = 5\nalways_serve = true",
        ],
    );
    assert!(!text.contains("\npriority = "), "{text}");
    assert!(!text.contains("expected_status"), "{text}");
    has(
        &out,
        &[
            "note: ",
            "weighted.json: properties.allowedEndpointRecordTypes: [\"DomainName\", \"IPv4Address\"] not carried over",
        ],
    );
}

#[test]
fn performance_profile_maps_region_names() {
    let (_dir, out, files) = import(&["performance.json"]);
    let text = &files[0].1;
    has(
        text,
        &[
            "routing = \"performance\"",
            "path = \"/status\"",
            "expected_status = [\"200-202\"]",
            "name = \"eu\"\ntarget = \"192.0.2.31\"\nlocation = \"westeurope\"  # Azure: \"West Europe\"",
            "name = \"us\"\ntarget = \"192.0.2.32\"\nlocation = \"eastus2\"  # Azure: \"East US 2\"",
            "name = \"apac\"\ntarget = \"192.0.2.33\"\nlocation = \"australiaeast\"\n",
            // No address: kept, commented out.
            "# Not imported (no address: only the Azure resource id",
            "# name = \"br\"\n# location = \"brazilsouth\"",
        ],
    );
    has(
        &out,
        &[
            "warning: ",
            "performance.json: endpoints[3].target: endpoint `br` has only the Azure resource id `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/web-rg/providers/Microsoft.Network/publicIPAddresses/web-br-ip`, which Switchyard cannot resolve to an address",
            "performance.json: trafficRoutingMethod: Performance: Azure ranks endpoints by measured network latency",
            "(performance, 3 endpoints)",
            "needs `[geoip] database`",
        ],
    );
}

#[test]
fn geographic_profile_maps_region_codes() {
    let (_dir, out, files) = import(&["geographic.json"]);
    let text = &files[0].1;
    has(
        text,
        &[
            "routing = \"geographic\"",
            "protocol = \"tcp\"\nport = 443\ninterval",
            "regions = [\"GEO-EU\"]",
            "regions = [\"DE\", \"AT\", \"CH\"]",
            "regions = [\"US-CA\", \"US-OR\", \"US-WA\", \"CA-BC\"]",
            "regions = [\"GEO-NA\", \"GEO-SA\"]",
            "regions = [\"WORLD\"]",
        ],
    );
    assert!(!text.contains("path"), "tcp has no path: {text}");
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn subnet_profile_maps_ranges_and_fallback() {
    let (_dir, out, files) = import(&["subnet.json"]);
    let text = &files[0].1;
    has(
        text,
        &[
            "name = \"internal\"\ntarget = \"10.10.0.10\"\nsubnets = [\"10.0.0.0/8\", \"192.168.0.0/16\", \"fd00::/8\"]",
            "name = \"partners\"\ntarget = \"192.0.2.51\"\nsubnets = [\"198.51.100.10-198.51.100.99\"]",
            "name = \"public\"\ntarget = \"192.0.2.52\"\n",
        ],
    );
    assert!(!out.contains("warning"), "{out}");
}

/// Azure probes as often as every second: the timeout written must still be
/// below the interval, as `check` requires (it was "1s" for a 1 s interval,
/// which `check --staged` refused).
#[test]
fn a_one_second_interval_gets_a_timeout_below_it() {
    let work = tempfile::tempdir().unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("multivalue.json")).unwrap())
            .unwrap();
    let monitor = doc
        .pointer_mut("/monitorConfig")
        .expect("the fixture has a monitorConfig");
    monitor["intervalInSeconds"] = serde_json::json!(1);
    monitor.as_object_mut().unwrap().remove("timeoutInSeconds");
    let path = work.path().join("fast.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let (_dir, _out, files) = import_files(&[path]);
    has(&files[0].1, &["interval = \"1s\"\ntimeout = \"500ms\""]);
}

#[test]
fn multivalue_profile_keeps_max_return() {
    let (_dir, _out, files) = import(&["multivalue.json"]);
    let text = &files[0].1;
    has(
        text,
        &[
            "routing = \"multivalue\"\nttl = 20\nmax_answers = 2",
            "protocol = \"tcp\"\nport = 8080",
            "name = \"c\"\ntarget = \"192.0.2.23\"\nenabled = false",
            "name = \"v6\"\ntarget = \"2001:db8::23\"",
        ],
    );
}

#[test]
fn nested_profiles_from_an_arm_template() {
    let (_dir, out, files) = import(&["nested-template.json"]);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "global-app-eu.toml",
            "global-app-us.toml",
            "global-app.toml"
        ]
    );
    has(
        &files[2].1,
        &[
            "routing = \"performance\"\nttl = 60",
            "name = \"europe\"\nprofile = \"global-app-eu.tm.example.test.\"  # nested endpoint\nlocation = \"westeurope\"  # Azure: \"West Europe\"\nmin_child_endpoints = 2",
            "name = \"north-america\"\nprofile = \"global-app-us.tm.example.test.\"  # nested endpoint\nlocation = \"eastus\"  # Azure: \"East US\"\n",
        ],
    );
    has(
        &files[0].1,
        &[
            "name = \"global-app-eu.tm.example.test.\"\nrouting = \"priority\"\n\n",
            "name = \"weu-1\"\ntarget = \"192.0.2.61\"\npriority = 1",
            "name = \"neu-1\"\ntarget = \"192.0.2.62\"\npriority = 2",
        ],
    );
    has(
        &out,
        &[
            "warning: ",
            "nested-template.json: resources[1].properties.dnsConfig.ttl: ARM template expression `[parameters('childTtl')]` not carried over (its default would be `30`)",
            "nested-template.json: resources[3].properties.minChildEndpointsIPv4: 1 not carried over",
            "nested-template.json: resources[9]: Real User Measurements",
            "(performance, 2 endpoints)",
        ],
    );
}

#[test]
fn existing_files_are_kept_without_force() {
    let (dir, _, files) = import(&["weighted.json"]);
    let path = dir.path().join("profiles.staged").join(&files[0].0);
    std::fs::write(&path, "# mine\n").unwrap();
    let run = switchyard(
        dir.path(),
        &[
            "import",
            "azure",
            &fixture("weighted.json").display().to_string(),
        ],
    );
    assert_eq!(run.code, 1, "{}{}", run.out, run.err);
    assert!(
        run.err
            .contains("shop-canary.toml exists already; nothing written (--force replaces it)"),
        "{}",
        run.err
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    assert!(
        run.out.is_empty(),
        "nothing is reported as done: {}",
        run.out
    );
    let run = switchyard(
        dir.path(),
        &[
            "import",
            "azure",
            "--force",
            &fixture("weighted.json").display().to_string(),
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), files[0].1);
    // Once live, a new import of it is refused too: staging it would
    // replace the live file at `apply`.
    let run = switchyard(dir.path(), &["apply"]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    let live = dir.path().join("profiles").join(&files[0].0);
    assert!(
        run.out.contains(&format!("applied {}", live.display())),
        "{}",
        run.out
    );
    let run = switchyard(
        dir.path(),
        &[
            "import",
            "azure",
            &fixture("weighted.json").display().to_string(),
        ],
    );
    assert_eq!(run.code, 1, "{}{}", run.out, run.err);
    assert!(
        run.err
            .contains(&format!("{} exists already", live.display())),
        "{}",
        run.err
    );
}

#[test]
fn malformed_input_is_refused_with_its_json_path() {
    let dir = config_dir();
    let bad = dir.path().join("bad.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("priority.json")).unwrap()).unwrap();
    doc["endpoints"][1]["weight"] = serde_json::json!("heavy");
    std::fs::write(&bad, doc.to_string()).unwrap();
    let run = switchyard(dir.path(), &["import", "azure", bad.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.out, run.err);
    assert!(
        run.err.contains(
            "bad.json: endpoints[1].weight: invalid type: string \"heavy\", expected i64"
        ),
        "{}",
        run.err
    );
    assert!(run.err.contains("nothing written"), "{}", run.err);
    assert_eq!(
        std::fs::read_dir(dir.path().join("profiles"))
            .unwrap()
            .count(),
        0
    );

    std::fs::write(&bad, "{\"dnsConfig\": ").unwrap();
    let run = switchyard(dir.path(), &["import", "azure", bad.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.err
            .contains("bad.json: not valid JSON: EOF while parsing"),
        "{}",
        run.err
    );
}

#[test]
fn zone_and_out_directory_can_be_given() {
    let dir = config_dir();
    let out = dir.path().join("elsewhere");
    let run = switchyard(
        dir.path(),
        &[
            "import",
            "azure",
            "--zone",
            "gtm.example.org.",
            "--out",
            out.to_str().unwrap(),
            &fixture("subnet.json").display().to_string(),
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    let text = std::fs::read_to_string(out.join("intranet.toml")).unwrap();
    assert!(
        text.contains("name = \"intranet.gtm.example.org.\""),
        "{text}"
    );
    assert!(
        run.out
            .contains("serves no zone gtm.example.org.: add a [[zones]] table"),
        "{}",
        run.out
    );
}

/// An Azure profile of one external endpoint on loopback, probed over TCP
/// on `port` (nothing listens: refused, never off the machine).
fn loopback_profile(relative: &str, port: u16) -> String {
    serde_json::json!({
        "name": relative,
        "type": "Microsoft.Network/trafficManagerProfiles",
        "properties": {
            "trafficRoutingMethod": "Priority",
            "dnsConfig": { "relativeName": relative, "ttl": 5 },
            "monitorConfig": {
                "protocol": "TCP", "port": port, "intervalInSeconds": 10,
                "timeoutInSeconds": 5, "toleratedNumberOfFailures": 3
            },
            "endpoints": [{
                "name": "only",
                "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                "properties": { "target": "127.0.0.1", "priority": 1 }
            }]
        }
    })
    .to_string()
}

/// Whether the running server answers `name` with an address.
fn answers(p: &crate::harness::Proc, name: &str) -> bool {
    let m = crate::harness::udp(p.v4(), name, hickory_proto::rr::RecordType::A);
    !crate::harness::addrs(&m).is_empty()
}

/// Waits until `log` has `n` lines containing `needle`.
fn wait_for_count(p: &crate::harness::Proc, needle: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while p.log().matches(needle).count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than {n} `{needle}` in the log:\n{}",
            p.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `import azure` stages its files (issue 20, item 14): the running server,
/// watching its profiles directory, does not answer the imported name, not
/// even after a reload the file watch makes for another change; `check
/// --diff --staged` shows what applying would change; `switchyard apply`
/// puts them live (and `import --apply` imports and applies in one go).
#[test]
fn import_stages_until_applied() {
    use crate::harness::{Fixture, Proc, TODOAPI, free_port};
    let fx = Fixture::new("", &[("todoapi.toml", TODOAPI)]);
    let dir = fx.dir.path().to_path_buf();
    let p = Proc::start(fx);
    let admin = p.admin().to_string();
    let input = dir.join("staged.json");
    std::fs::write(&input, loopback_profile("staged", free_port(false))).unwrap();

    let run = switchyard(&dir, &["import", "azure", input.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    let staged = dir.join("profiles.staged/staged.toml");
    assert!(staged.is_file(), "not staged: {}", run.out);
    assert!(!dir.join("profiles/staged.toml").exists(), "{}", run.out);
    assert!(
        run.out.contains(&format!(
            "staged {}: staged.tm.example.test. (priority, 1 endpoint)",
            staged.display()
        )),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("switchyard check --diff --staged")
            && run.out.contains("switchyard apply"),
        "{}",
        run.out
    );
    // A change the file watch applies: the staged profile is not part of it.
    let reloads = p.log().matches("configuration reloaded").count();
    std::fs::write(
        dir.join("profiles/todoapi.toml"),
        TODOAPI.replace("ttl = 30", "ttl = 31"),
    )
    .unwrap();
    wait_for_count(&p, "configuration reloaded", reloads + 1);
    assert!(
        !answers(&p, "staged.tm.example.test."),
        "the staged profile answers before it is applied:\n{}",
        p.log()
    );

    let run = switchyard(&dir, &["check", "--staged"]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert!(
        run.out.contains("with 1 staged profile file"),
        "{}",
        run.out
    );
    let run = switchyard(&dir, &["--admin", &admin, "check", "--diff", "--staged"]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert!(
        run.out.contains("staged.tm.example.test: added (priority"),
        "{}",
        run.out
    );
    assert!(
        !answers(&p, "staged.tm.example.test."),
        "the dry run applied it"
    );
    // Only a dry run reads the staged profiles.
    let (code, body) = crate::harness::http(p.admin(), "POST", "/api/v1/reload?staged=1", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("switchyard apply"), "{body}");

    let run = switchyard(&dir, &["apply"]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert!(dir.join("profiles/staged.toml").is_file(), "{}", run.out);
    assert!(!dir.join("profiles.staged").exists(), "{}", run.out);
    crate::backend::wait_until(std::time::Duration::from_secs(10), || {
        answers(&p, "staged.tm.example.test.")
    })
    .unwrap_or_else(|| panic!("not live after apply:\n{}\n{}", run.out, p.log()));

    // --apply: staged, checked and applied in one command.
    let input = dir.join("direct.json");
    std::fs::write(&input, loopback_profile("direct", free_port(false))).unwrap();
    let run = switchyard(
        &dir,
        &["import", "azure", "--apply", input.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert!(dir.join("profiles/direct.toml").is_file(), "{}", run.out);
    crate::backend::wait_until(std::time::Duration::from_secs(10), || {
        answers(&p, "direct.tm.example.test.")
    })
    .unwrap_or_else(|| panic!("not live after --apply:\n{}\n{}", run.out, p.log()));
}
