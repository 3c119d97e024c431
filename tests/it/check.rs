//! `switchyard check` and start-up validation, through the real binary.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

fn check(config: &Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("check")
        .arg("--config")
        .arg(config)
        .env_remove("SWITCHYARD_EXAMPLE_UNSET_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled example, as shipped: the tests read the copy in
/// `tests/fixtures/example/` (CI checks it is the bundled example with
/// `scripts/example-fixture.sh`), never `switchyard.toml` and `profiles/`
/// at the root, which are the user's to edit.
#[test]
fn shipped_example_config_is_valid() {
    let (code, out, err) = check(&switchyard::fuzzing::example_dir().join("switchyard.toml"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": ok ("), "{out}");
    assert!(
        !out.contains("warning"),
        "the example should be warning-free: {out}"
    );
}

/// No test, benchmark or fuzz target reads the bundled `switchyard.toml`,
/// `profiles/` or `keys/` from the repository root: the README tells users
/// to edit those (its DNSSEC walkthrough adds a `dnssec` line and a key),
/// and their edits must never fail the tests. They read the copy in
/// `tests/fixtures/example/` or write their own. A line that names the
/// repository root (`CARGO_MANIFEST_DIR`, `repo()`) within two lines of one
/// of those paths is reported; `profiles/invalid/` (the error examples) and
/// `profiles/README.md` (the schema) are documentation, not configuration.
#[test]
fn tests_never_read_the_bundled_configuration() {
    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/src"] {
        rust_files(&repo().join(dir), &mut files);
    }
    let root = ["CARGO_MANIFEST_DIR", "repo()", "repo.join("];
    let bundled = [
        "\"switchyard.toml\"",
        "\"/switchyard.toml\"",
        "\"../switchyard.toml\"",
        "\"profiles\"",
        "\"profiles/",
        "\"/profiles/",
        "\"../profiles/",
        "\"keys",
        "\"/keys",
    ];
    let documentation = ["profiles/invalid", "profiles/README.md"];
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect();
        // This test names the paths it looks for: skip its own lines.
        let own = lines
            .iter()
            .position(|l| l.contains("fn tests_never_read_the_bundled_configuration"))
            .map_or(0..0, |start| {
                start..start + lines[start..].iter().position(|l| *l == "}").unwrap()
            });
        for (i, line) in lines.iter().enumerate() {
            if own.contains(&i) || !root.iter().any(|r| line.contains(r)) {
                continue;
            }
            let window = lines[i..lines.len().min(i + 3)].join("\n");
            if bundled.iter().any(|b| window.contains(b))
                && !documentation.iter().any(|d| window.contains(d))
            {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "these read the bundled configuration, which users edit; use switchyard::fuzzing::example_dir() (tests/fixtures/example) or a Fixture:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_invalid_profile_fails_with_its_message() {
    let mut n = 0;
    let mut files: Vec<_> = std::fs::read_dir(repo().join("profiles/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` first line", path.display()));
        let name = path.file_name().unwrap().to_str().unwrap();
        let geoip = format!(
            "[geoip]\ndatabase = \"{}\"",
            repo().join("geoip/geo-whois-asn-country.mmdb").display()
        );
        let fx = Fixture::new(&geoip, &[(name, &text)]);
        let (code, out, err) = check(&fx.config_path());
        assert_eq!(code, 1, "{name} must be rejected: {out}{err}");
        let want = format!(
            "{}:{expect}",
            fx.dir.path().join("profiles").join(name).display()
        );
        assert_eq!(out.trim_end(), want, "{name}");
        assert!(err.contains("1 problem found"), "{err}");
        n += 1;
    }
    assert!(n >= 15, "only {n} invalid profiles");
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let bad_a = "name = \"a.tm.example.test.\"\nrouting = \"priority\"\nttl = -1\n[[endpoints]]\nname = \"x\"\ntarget = \"1.2.3\"\n";
    let bad_b = "name = \"b.example.org.\"\nrouting = \"weighted\"\n[[endpoints]]\nname = \"y\"\ntarget = \"192.0.2.1\"\nweight = 0\n";
    let good = TODOAPI;
    let fx = Fixture::new(
        "",
        &[("a.toml", bad_a), ("b.toml", bad_b), ("todoapi.toml", good)],
    );
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].ends_with("a.toml:3:7: ttl: -1 is out of range (0..=2147483647)"),
        "{out}"
    );
    assert!(
        lines[1].ends_with("a.toml:6:10: endpoints[0].target: `1.2.3` is not a valid IPv4 address"),
        "{out}"
    );
    assert!(
        lines[2].contains("b.toml:1:8: name: b.example.org. is not inside any configured zone"),
        "{out}"
    );
    assert!(
        lines[3].ends_with("b.toml:6:10: endpoints[0].weight: 0 is out of range (1..=1000)"),
        "{out}"
    );
}

#[test]
fn server_config_errors_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{ name = "ns1", type = "A", value = "192.0.2.300" }"#,
            "zones[0].records[0].value: `192.0.2.300` is not an IPv4 address",
        ),
        (
            r#"{ name = "x", type = "A", value = "192.0.2.1", ttl = 4000000000 }"#,
            "zones[0].records[0].ttl: 4000000000 is out of range (0..=2147483647)",
        ),
        (
            r#"{ name = "ns1", type = "SPF", value = "x" }"#,
            "zones[0].records[0].type: unsupported record type `SPF`",
        ),
        (
            r#"{ name = "www", type = "CNAME", value = "a" }, { name = "www", type = "A", value = "192.0.2.1" }"#,
            "zones[0].records[1].name: www.tm.example.test. has a CNAME record; a CNAME must be the only record at its name",
        ),
        (
            r#"{ name = "a", type = "CNAME", value = "b" }, { name = "b", type = "CNAME", value = "a" }"#,
            "CNAME loop",
        ),
        (
            r#"{ name = "*.w", type = "CNAME", value = "a" }, { name = "*.w", type = "A", value = "192.0.2.1" }"#,
            "zones[0].records[1].name: *.w.tm.example.test. has a CNAME record; a CNAME must be the only record at its name",
        ),
        (
            r#"{ name = "x.example.org.", type = "A", value = "192.0.2.1" }"#,
            "x.example.org. is not inside zone tm.example.test.",
        ),
    ];
    for (records, want) in cases {
        let zone = format!(
            "[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns.elsewhere.test.\"]\nrecords = [ {records} ]\n"
        );
        let fx = Fixture::with_zone("", &zone, &[]);
        let (code, out, _) = check(&fx.config_path());
        assert_eq!(code, 1, "{records}");
        assert!(out.contains(want), "{records}\nwant: {want}\ngot: {out}");
        assert!(out.contains("switchyard.toml:"), "{out}");
    }
    // Glue is required for in-zone name servers.
    let zone = "[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns1\"]\n";
    let fx = Fixture::with_zone("", zone, &[]);
    let (_, out, _) = check(&fx.config_path());
    assert!(
        out.contains(
            "zones[0].ns[0]: ns1.tm.example.test. is inside the zone but has no A or AAAA record"
        ),
        "{out}"
    );
    // Bad listen addresses and unknown keys in the server config.
    let fx = Fixture::new("[dns]\nlisten = [\"127.0.0.1\"]\nport = 53", &[]);
    let (_, out, _) = check(&fx.config_path());
    assert!(
        out.contains("switchyard.toml:3:1: dns.port: unknown field `port`"),
        "{out}"
    );
}

#[test]
fn serve_refuses_to_start_on_a_broken_profile() {
    let fx = Fixture::new("", &[("todoapi.toml", TODOAPI), ("bad.toml", "name = 1")]);
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(fx.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.toml:1:8: name: invalid type: integer `1`, expected a string"),
        "{err}"
    );
    assert!(err.contains("not starting"), "{err}");
}

#[test]
fn literal_secret_is_a_warning_and_never_printed() {
    let fx = Fixture::new("", &[("todoapi.toml", TODOAPI)]);
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning: ") && out.contains("monitor.key: secret written in the file"),
        "{out}"
    );
    assert!(!out.contains("test-key") && !err.contains("test-key"));
}

#[test]
fn monitor_secrets_and_certificates_are_checked() {
    let pki = crate::backend::Pki::new();
    let p = |name: &str| pki.path(name).display().to_string();
    // The `[monitor]` keys under test, and the error they make.
    let cases: [(Vec<(&str, Toml)>, String); 6] = [
        (
            vec![(
                "key",
                Toml::raw("{ env = \"SWITCHYARD_TEST_SURELY_UNSET\" }"),
            )],
            "monitor.key: environment variable `SWITCHYARD_TEST_SURELY_UNSET` is not set"
                .to_string(),
        ),
        (
            vec![("key", Toml::raw("{ file = \"keys/missing.key\" }"))],
            "monitor.key: cannot read secret file".to_string(),
        ),
        (
            vec![
                ("client_cert", p("nope.pem").into()),
                ("client_key", p("client.key").into()),
            ],
            format!("monitor.client_cert: cannot read {}", p("nope.pem")),
        ),
        (
            vec![
                ("client_cert", p("client.pem").into()),
                ("client_key", p("other.key").into()),
            ],
            format!(
                "monitor.client_cert: cannot use {} with {}",
                p("client.pem"),
                p("other.key")
            ),
        ),
        (
            vec![
                ("client_cert", p("client.key").into()),
                ("client_key", p("client.key").into()),
            ],
            format!(
                "monitor.client_cert: {} holds no PEM certificate",
                p("client.key")
            ),
        ),
        (
            vec![("client_cert", p("client.pem").into())],
            "monitor.client_key: client_cert needs client_key".to_string(),
        ),
    ];
    for (monitor, want) in cases {
        // A path with `{key}` needs a key: only the cases with one use it.
        let path = if monitor.iter().any(|(key, _)| *key == "key") {
            "/Health/{key}"
        } else {
            "/health"
        };
        let mut profile = ProfileToml::new("p.tm.example.test.", "priority")
            .set_monitor("protocol", "https")
            .set_monitor("path", path);
        for (key, value) in &monitor {
            profile = profile.set_monitor(key, value.clone());
        }
        let profile = profile.endpoint("e", "192.0.2.1").build();
        let fx = Fixture::new("", &[("p.toml", &profile)]);
        let (code, out, _) = check(&fx.config_path());
        assert_eq!(code, 1, "{monitor:?}: {out}");
        assert!(out.contains(&want), "{monitor:?}\nwant: {want}\ngot: {out}");
        assert!(out.contains("p.toml:"), "{out}");
    }
}

#[test]
fn geoip_database_problems() {
    let perf = "name = \"p.tm.example.test.\"\nrouting = \"performance\"\n[[endpoints]]\nname = \"e\"\ntarget = \"192.0.2.1\"\nlocation = \"westeurope\"\n";
    // Missing file.
    let fx = Fixture::new("[geoip]\ndatabase = \"nope.mmdb\"", &[("p.toml", perf)]);
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 1);
    assert!(
        out.contains("switchyard.toml:4:12: geoip.database: cannot read")
            && out.contains("nope.mmdb"),
        "{out}"
    );
    assert!(out.contains("which did not load"), "{out}");
    // Not a database.
    let fx = Fixture::new("[geoip]\ndatabase = \"bad.mmdb\"", &[("p.toml", perf)]);
    std::fs::write(fx.dir.path().join("bad.mmdb"), vec![0x42u8; 4096]).unwrap();
    let (_, out, _) = check(&fx.config_path());
    assert!(
        out.contains("geoip.database: ") && out.contains("bad.mmdb is not a MaxMind DB file"),
        "{out}"
    );
    // A truncated database.
    let fx = Fixture::new("[geoip]\ndatabase = \"cut.mmdb\"", &[("p.toml", perf)]);
    let good = std::fs::read(repo().join("geoip/geo-whois-asn-country.mmdb")).unwrap();
    std::fs::write(fx.dir.path().join("cut.mmdb"), &good[..good.len() / 2]).unwrap();
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cut.mmdb"), "{out}");
    // A method that needs GeoIP without a database.
    let fx = Fixture::new("", &[("p.toml", perf)]);
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 1);
    assert!(
        out.contains("p.toml:2:11: routing: `performance` routing needs a GeoIP database"),
        "{out}"
    );
}

#[test]
fn keys_a_method_ignores_are_warnings() {
    let profile = "name = \"p.tm.example.test.\"\nrouting = \"multivalue\"\n[[endpoints]]\nname = \"e\"\ntarget = \"192.0.2.1\"\nweight = 3\nregions = [\"IE\"]\n";
    let fx = Fixture::new("", &[("p.toml", profile)]);
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: ") && out.contains("p.toml:6:10: endpoints[0].weight: ignored: only weighted routing uses `weight` (this profile is multivalue)"), "{out}");
    assert!(
        out.contains("endpoints[0].regions: ignored: only geographic routing uses `regions`"),
        "{out}"
    );
}

#[test]
fn nested_profile_loops_and_depth_are_rejected() {
    let nest = |name: &str, child: &str| {
        format!(
            "name = \"{name}.tm.example.test.\"\nrouting = \"priority\"\n[[endpoints]]\nname = \"child\"\nprofile = \"{child}.tm.example.test.\"\n[[endpoints]]\nname = \"last-resort\"\ntarget = \"192.0.2.1\"\n"
        )
    };
    // a -> b -> c -> a
    let (a, b, c) = (nest("a", "b"), nest("b", "c"), nest("c", "a"));
    let fx = Fixture::new("", &[("a.toml", &a), ("b.toml", &b), ("c.toml", &c)]);
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 1);
    assert!(out.contains("nested profiles form a loop: a.tm.example.test. -> b.tm.example.test. -> c.tm.example.test. -> a.tm.example.test."), "{out}");
    // Twelve levels: more than ten.
    let mut files = Vec::new();
    for i in 0..12 {
        files.push((
            format!("p{i}.toml"),
            nest(&format!("p{i}"), &format!("p{}", i + 1)),
        ));
    }
    files.push(("p12.toml".into(), "name = \"p12.tm.example.test.\"\nrouting = \"priority\"\n[[endpoints]]\nname = \"x\"\ntarget = \"192.0.2.2\"\n".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let fx = Fixture::new("", &refs);
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 1);
    assert!(out.contains("at most 10 levels are allowed"), "{out}");
    // Ten levels are fine.
    let fx = Fixture::new("", &refs[2..]);
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 0, "{out}");
}

#[test]
fn cname_loops_through_nested_profiles_are_rejected() {
    let top = "name = \"t.tm.example.test.\"\nrouting = \"priority\"\n[[endpoints]]\nname = \"child\"\nprofile = \"c.tm.example.test.\"\n";
    let child = "name = \"c.tm.example.test.\"\nrouting = \"priority\"\n[[endpoints]]\nname = \"back\"\ntarget = \"t.tm.example.test.\"\n";
    let fx = Fixture::new("", &[("t.toml", top), ("c.toml", child)]);
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 1);
    assert!(out.contains("CNAME loop"), "{out}");
}

#[test]
fn a_cname_target_missing_from_our_own_zone_is_a_warning() {
    let profile = r#"
name = "split.tm.example.test."
routing = "weighted"
[[endpoints]]
name = "inside"
weight = 70
target = "nothing-here.tm.example.test."
[[endpoints]]
name = "outside"
weight = 30
target = "api.example.com."
"#;
    let fx = Fixture::new("", &[("alias.toml", profile)]);
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "a warning, not an error: {out}{err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains("alias.toml:7:10: endpoints[0].target: nothing-here.tm.example.test. is inside zone tm.example.test."),
        "{text}"
    );
    assert!(!text.contains("api.example.com"), "{text}");
}

#[test]
fn https_checks_of_addresses_without_a_host_are_a_warning() {
    let profile = |headers: &str| {
        format!(
            "name = \"secure.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"https\"\n{headers}\n[[endpoints]]\nname = \"primary\"\ntarget = \"203.0.113.10\"\npriority = 1\n"
        )
    };
    let fx = Fixture::new("", &[("secure.toml", &profile(""))]);
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "a warning, not an error: {out}{err}");
    assert!(
        out.contains(
            "secure.toml:8:10: endpoints[0].target: an HTTPS check of the address 203.0.113.10"
        ) && out.contains("set a `Host` header"),
        "{out}"
    );
    let fx = Fixture::new(
        "",
        &[(
            "secure.toml",
            &profile("headers = { Host = \"api.example.com\" }"),
        )],
    );
    let (code, out, _) = check(&fx.config_path());
    assert_eq!(code, 0);
    assert!(!out.contains("HTTPS check"), "{out}");
}

/// Delegations and wildcards (issue 12): each mistake is named with its
/// place and a hint.
#[test]
fn delegation_and_wildcard_mistakes_are_reported() {
    let cases = [
        (
            r#"{ name = "sub", type = "NS", value = "ns1.sub" },"#,
            "records[0].name: ns1.sub.tm.example.test. is inside the delegation sub.tm.example.test. and needs glue: add an A or AAAA record for it",
        ),
        (
            r#"{ name = "sub", type = "NS", value = "ns.other.example." }, { name = "www.sub", type = "A", value = "192.0.2.1" },"#,
            "records[1].name: www.sub.tm.example.test. is below the delegation sub.tm.example.test.: names there belong to the child zone; only the addresses of its name servers (glue) may be given here",
        ),
        (
            r#"{ name = "sub", type = "NS", value = "ns.other.example." }, { name = "sub", type = "TXT", value = "x" },"#,
            "records[1].name: sub.tm.example.test. is delegated (it has NS records), so it holds only NS and DS here; its TXT record belongs in the child zone",
        ),
        (
            r#"{ name = "nods", type = "DS", value = "1 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF" },"#,
            "records[0].name: DS records belong at a delegation: nods.tm.example.test. has no NS records (add them, or remove the DS)",
        ),
        (
            r#"{ name = "sub", type = "DS", value = "1 13 2 0123" },"#,
            "records[0].value: a digest of type 2 is 32 bytes; this one is 2",
        ),
        (
            r#"{ name = "*.sub", type = "NS", value = "ns.other.example." },"#,
            "records[0].name: a wildcard cannot be delegated (NS at *.sub.tm.example.test.); delegate each name",
        ),
        (
            r#"{ name = "@", type = "NS", value = "ns3.other.example." },"#,
            "records[0].type: the apex NS records come from the zone's `ns` list; NS records elsewhere delegate a name",
        ),
        (
            r#"{ name = "a.sub", type = "NS", value = "ns.other.example." }, { name = "sub", type = "NS", value = "ns.other.example." },"#,
            "records[0].name: a.sub.tm.example.test. is below the delegation sub.tm.example.test.: delegate it from the child zone",
        ),
    ];
    for (records, want) in cases {
        let fx = Fixture::with_zone("", &zone_with_records(records), &[]);
        let (code, out, err) = check(&fx.config_path());
        assert_eq!(code, 1, "{records}: {out}{err}");
        assert!(out.contains(want), "{records}\nwant: {want}\ngot: {out}");
    }
}

/// A signed zone's `dnssec` table (issue 12): every mistake is located,
/// and a key others can read is a warning.
#[test]
fn dnssec_mistakes_are_reported() {
    let keygen = |dir: &Path, zone: &str, name: &str| {
        let out = Command::new(bin())
            .args(["dnssec", "keygen", "--zone", zone, "--out"])
            .arg(dir.join("keys").join(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let cases = [
        (
            r#"dnssec = { key = { file = "keys/missing.key" } }"#,
            "zones[0].dnssec.key.file: ",
            "missing.key",
        ),
        (
            r#"dnssec = { key = { file = "keys/other.key" } }"#,
            "zones[0].dnssec.key.file: ",
            "this key is for zone other.test., not tm.example.test.",
        ),
        (
            r#"dnssec = { key = { file = "keys/tm.key" }, signature_validity = "1h" }"#,
            "zones[0].dnssec.signature_validity: ",
            "between 3h and 90d",
        ),
        (
            r#"dnssec = { key = { file = "keys/tm.key" }, publish = [{ file = "keys/tm.key" }] }"#,
            "zones[0].dnssec.key: ",
            "is configured twice for tm.example.test.",
        ),
        (
            r#"dnssec = { key = { file = "keys/tm.key" }, algorithm = "rsa" }"#,
            "zones[0].dnssec",
            "unknown field `algorithm`",
        ),
        (
            r#"dnssec = { key = { file = "keys/tm.key" }, publish = [{ file = "keys/ed.key" }] }"#,
            "zones[0].dnssec.publish[0].file: ",
            "a published key must use the signing key's algorithm",
        ),
        (
            r#"dnssec = { key = { file = "keys/garbage.key" } }"#,
            "zones[0].dnssec.key.file: ",
            "garbage.key",
        ),
    ];
    for (dnssec, field, want) in cases {
        let zone = zone_with_records("") + dnssec + "\n";
        let fx = Fixture::with_zone("", &zone, &[]);
        keygen(fx.dir.path(), "tm.example.test.", "tm.key");
        keygen(fx.dir.path(), "other.test.", "other.key");
        let out = Command::new(bin())
            .args([
                "dnssec",
                "keygen",
                "--zone",
                "tm.example.test.",
                "--algorithm",
                "ed25519",
                "--out",
            ])
            .arg(fx.dir.path().join("keys/ed.key"))
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(fx.dir.path().join("keys/garbage.key"), "not a key").unwrap();
        let (code, out, err) = check(&fx.config_path());
        assert_eq!(code, 1, "{dnssec}: {out}{err}");
        assert!(
            out.contains(field) && out.contains(want),
            "{dnssec}\nwant: {field}...{want}\ngot: {out}"
        );
    }
    // A key file others can read: a warning; the zone loads.
    let zone = zone_with_records("") + "dnssec = { key = { file = \"keys/tm.key\" } }\n";
    let fx = Fixture::with_zone("", &zone, &[]);
    keygen(fx.dir.path(), "tm.example.test.", "tm.key");
    let key = fx.dir.path().join("keys/tm.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning") && out.contains("chmod 600"),
        "{out}"
    );
    assert!(out.contains(": ok (1 zone (1 signed), "), "{out}");
}

/// An empty `[admin.tokens]` protects nothing: the admin API beyond
/// loopback without any token is still warned about.
#[test]
fn an_empty_admin_tokens_table_is_no_token() {
    let fx = Fixture::new(
        "[admin]\nlisten = \"0.0.0.0:0\"\n[admin.tokens]\n",
        &[("todoapi.toml", TODOAPI)],
    );
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("listens beyond loopback without a token"),
        "{out}"
    );
}

/// A secret from the environment loses a trailing line ending, as one from
/// a file does (Kubernetes sets a variable from a Secret made with
/// `--from-file` byte for byte); a control character inside is refused.
#[test]
fn env_secrets_drop_a_trailing_newline() {
    let fx = Fixture::new(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = { env = \"SWITCHYARD_TEST_ENV_TOKEN\" }",
        &[("todoapi.toml", TODOAPI)],
    );
    let run = |value: &str| {
        let out = Command::new(bin())
            .args(["check", "--config"])
            .arg(fx.config_path())
            .env("SWITCHYARD_TEST_ENV_TOKEN", value)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = run("env-token\n");
    assert_eq!(code, 0, "{out}");
    let (code, out) = run("env\u{1}token\n");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("admin.token: the secret contains control characters"),
        "{out}"
    );
    assert!(!out.contains("env\u{1}token"), "{out}");
}

/// `check` warns of a state file disabling an endpoint the configuration
/// lacks, but not of a timed disable that has run out.
#[test]
fn an_expired_timed_disable_is_not_reported_as_disabling() {
    let fx = Fixture::new("state_file = \"state.json\"", &[("todoapi.toml", TODOAPI)]);
    let record = |endpoint: &str, until: Option<u64>| {
        serde_json::json!({
            "profile": "todoapi.tm.example.test.", "endpoint": endpoint,
            "disabled": true, "at": 1000, "node": "local", "until": until,
        })
    };
    let state = serde_json::json!({
        "overrides": [record("gone", Some(2000)), record("removed", None)],
    });
    std::fs::write(fx.dir.path().join("state.json"), state.to_string()).unwrap();
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("disables todoapi.tm.example.test./removed"),
        "{out}"
    );
    assert!(!out.contains("/gone"), "{out}");
}

/// `switchyard` run from `cwd` (not the configuration's directory).
fn run_from(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .current_dir(cwd)
        .args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Adds `line` to the zone of the fixture's `switchyard.toml` (the table
/// before `[admin]`), as the operator does.
fn add_to_zone(fx: &Fixture, line: &str) {
    let path = fx.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .rfind("\n[admin]\n")
        .expect("the fixture ends with [admin]");
    let text = format!("{}\n{line}{}", &text[..at], &text[at..]);
    std::fs::write(&path, text).unwrap();
}

/// `dnssec keygen -c OTHER/switchyard.toml` from another directory (issue
/// 20, item 15) writes the key next to that configuration, and the `file =`
/// it prints is what the configuration resolves: pasted in, `check` passes.
#[test]
fn keygen_writes_the_key_beside_the_configuration_it_is_given() {
    let fx = Fixture::new("", &[]);
    let config = fx.config_path();
    let cwd = tempfile::tempdir().unwrap();
    let (code, out, err) = run_from(
        cwd.path(),
        &[
            "-c",
            config.to_str().unwrap(),
            "dnssec",
            "keygen",
            "--zone",
            "tm.example.test.",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let key = fx.dir.path().join("keys/tm.example.test.key");
    assert!(key.is_file(), "no key beside the configuration: {out}");
    assert!(
        !cwd.path().join("keys").exists(),
        "a key was written in the working directory: {out}"
    );
    assert!(
        out.starts_with(&format!("wrote {}: key tag ", key.display())),
        "{out}"
    );
    let line = out
        .lines()
        .find_map(|l| l.split('`').nth(1).filter(|s| s.starts_with("dnssec = ")))
        .unwrap_or_else(|| panic!("no dnssec line to add: {out}"));
    assert_eq!(
        line,
        "dnssec = { key = { file = \"keys/tm.example.test.key\" } }"
    );
    assert!(
        out.contains(&format!("to the zone in {}", config.display())),
        "{out}"
    );
    add_to_zone(&fx, line);
    let (code, out, err) = run_from(cwd.path(), &["-c", config.to_str().unwrap(), "check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(1 signed)"), "{out}");

    // --out relative to the working directory, outside the configuration's
    // directory: the line names it by its absolute path.
    let fx = Fixture::new("", &[]);
    let config = fx.config_path();
    let (code, out, err) = run_from(
        cwd.path(),
        &[
            "-c",
            config.to_str().unwrap(),
            "dnssec",
            "keygen",
            "--zone",
            "tm.example.test.",
            "--out",
            "elsewhere/tm.key",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let abs = cwd.path().join("elsewhere/tm.key");
    assert!(abs.is_file(), "{out}");
    let line = out
        .lines()
        .find_map(|l| l.split('`').nth(1).filter(|s| s.starts_with("dnssec = ")))
        .unwrap();
    assert_eq!(
        line,
        format!(
            "dnssec = {{ key = {{ file = {:?} }} }}",
            abs.display().to_string()
        )
    );
    add_to_zone(&fx, line);
    let (code, out, err) = run_from(cwd.path(), &["-c", config.to_str().unwrap(), "check"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// The command `check` suggests for a missing key is printed whole (it was
/// cut to `--out /tmp/… (93 bytes)`), and run as printed, from anywhere, it
/// makes the key the configuration names.
#[test]
fn check_suggests_the_whole_keygen_command() {
    let zone = zone_with_records("")
        + "dnssec = { key = { file = \"keys/a-rather-long-key-file-name-for-the-zone.key\" } }\n";
    let fx = Fixture::with_zone("", &zone, &[]);
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(!out.contains('…'), "the message is cut: {out}");
    let command = out
        .split('`')
        .nth(1)
        .filter(|c| c.starts_with("switchyard dnssec keygen "))
        .unwrap_or_else(|| panic!("no command suggested: {out}"));
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let cwd = tempfile::tempdir().unwrap();
    let (code, out2, err) = run_from(cwd.path(), &args);
    assert_eq!(code, 0, "`{command}`: {out2}{err}");
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "after `{command}`: {out}{err}");
}

/// The secrets the README has you make in a clone are ignored by git, so
/// `git add .` cannot commit a signing key; the example's health key is
/// not a secret and stays tracked.
#[test]
fn secrets_made_in_a_clone_are_ignored_by_git() {
    let ignored = |path: &str| {
        Command::new("git")
            .current_dir(repo())
            .args(["check-ignore", "--quiet", "--no-index", path])
            .status()
            .expect("git is needed (the tests run in a clone)")
            .success()
    };
    for secret in [
        "keys/tm.example.com.key",
        "keys/tm.example.com-2.key",
        "cluster.key",
        "secrets/oncall-hmac.key",
        "profiles/keys/api.key",
    ] {
        assert!(ignored(secret), "{secret} is not in .gitignore");
    }
    assert!(!ignored("profiles/keys/todoapi.key"));
    assert!(!ignored("switchyard.toml"));
}

/// `dig +short NAME TYPE` at `addr`.
fn dig_short(addr: std::net::SocketAddr, name: &str, t: &str) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+short", "+norec", name, t])
        .output()
        .expect("cannot run dig; run the tests with scripts/test.sh");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Issue 20 item 20: `rname` written as an e-mail address is the mailbox
/// (`hostmaster@example.com` is `hostmaster.example.com.`, dots in the
/// local part escaped), an absolute name is taken as it is, and anything
/// else is an error with both accepted forms, never completed with the
/// zone's origin (before: `hostmaster.example.com.tm.example.test.`).
#[test]
fn soa_rname_is_a_mailbox_or_an_absolute_name() {
    let zone = |rname: &str| {
        format!(
            "[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns1.tm.example.test.\"]\nsoa = {{ rname = \"{rname}\" }}\nrecords = [{{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" }}]\n"
        )
    };
    for (rname, served) in [
        ("hostmaster@example.com", "hostmaster.example.com."),
        ("hostmaster@example.com.", "hostmaster.example.com."),
        ("john.doe@example.com", "john\\.doe.example.com."),
        ("hostmaster.example.com.", "hostmaster.example.com."),
    ] {
        let fx = Fixture::with_zone("", &zone(rname), &[]);
        let (code, out, err) = check(&fx.config_path());
        assert_eq!(code, 0, "{rname}: {out}{err}");
        let s = fx.start();
        let soa = dig_short(s.v4(), "tm.example.test.", "SOA");
        let fields: Vec<&str> = soa.split_whitespace().collect();
        assert_eq!(fields.get(1), Some(&served), "{rname}: {soa}");
    }
    for (rname, hint) in [
        (
            "hostmaster.example.com",
            "write it as an e-mail address (`hostmaster@example.com`) or as an absolute name ending in a dot (`hostmaster.example.com.`)",
        ),
        (
            "hostmaster",
            "write it as an e-mail address (`hostmaster@example.com`) or as an absolute name ending in a dot (`hostmaster.example.com.`)",
        ),
        ("@example.com", "the part before `@` is empty"),
        ("hostmaster@", "the part after `@` is empty"),
        ("a@b@example.com", "more than one `@`"),
    ] {
        let fx = Fixture::with_zone("", &zone(rname), &[]);
        let (code, out, _) = check(&fx.config_path());
        assert_eq!(code, 1, "{rname} must be rejected: {out}");
        let line = out
            .lines()
            .find(|l| l.contains("zones[0].soa.rname: "))
            .unwrap_or_else(|| panic!("{rname}: no located rname error in {out}"));
        let file = fx.config_path().display().to_string();
        assert!(line.starts_with(&format!("{file}:")), "{line}");
        assert!(line.contains(hint), "{rname}: want {hint}\ngot: {line}");
    }
}

/// Issue 20 item 22: the README's "Using it for a real domain"
/// configuration (on loopback ports) in a directory without `profiles/`:
/// `check` accepts it with a warning naming the directory, `serve` logs
/// the same, and a profile written once the directory is created is
/// served without a restart (the watch picks the directory up).
#[test]
fn a_missing_profiles_directory_is_empty_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchyard.toml"),
        r#"[dns]
listen = ["127.0.0.1:0"]

[admin]
listen = "127.0.0.1:0"

[[zones]]
origin = "tm.example.com."
ns = ["ns1.tm.example.com.", "ns2.tm.example.com."]
soa = { rname = "hostmaster@example.com" }
records = [
  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "ns2", type = "AAAA", value = "2001:db8::53" },
]
"#,
    )
    .unwrap();
    // Written an hour ago: the server's start-up catch-up (a reload when a
    // file changed while it loaded) must not be what reads the profile.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("switchyard.toml"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let fx = Fixture { dir };
    let profiles = fx.dir.path().join("profiles");
    let (code, out, err) = check(&fx.config_path());
    assert_eq!(code, 0, "{out}{err}");
    let warning = format!(
        "warning: {}: the profiles directory does not exist: no profiles are served; profiles (one *.toml file per name) go there",
        profiles.display()
    );
    assert!(out.contains(&warning), "want {warning}\ngot: {out}");
    assert!(out.contains("ok (1 zone, 0 profiles"), "{out}");

    let p = Proc::start(fx);
    assert!(
        p.log().contains("the profiles directory does not exist"),
        "{}",
        p.log()
    );
    let addr = p.v4();
    assert_eq!(dig_short(addr, "api.tm.example.com.", "A"), "");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("api.toml"),
        ProfileToml::new("api.tm.example.com.", "priority")
            .endpoint("primary", "203.0.113.10")
            .build(),
    )
    .unwrap();
    let took = crate::backend::wait_until(std::time::Duration::from_secs(10), || {
        dig_short(addr, "api.tm.example.com.", "A") == "203.0.113.10"
    });
    assert!(
        took.is_some(),
        "the new profile was not served:\n{}",
        p.log()
    );
}
