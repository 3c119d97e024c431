//! `switchyard status | explain | endpoint | reload`: the real binary
//! against a running server's admin API.

use std::process::Command;

use hickory_proto::rr::RecordType;
use switchyard::health::Status;

use crate::harness::*;

fn run(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    match token {
        Some(t) => cmd.env("SWITCHYARD_ADMIN_TOKEN", t),
        None => cmd.env_remove("SWITCHYARD_ADMIN_TOKEN"),
    };
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn admin_commands() {
    let fx = Fixture::new(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = { file = \"admin.token\" }",
        &[("todoapi.toml", TODOAPI)],
    );
    std::fs::write(fx.dir.path().join("admin.token"), "cli-token").unwrap();
    let s = fx.start();
    let admin = s.admin.to_string();
    s.set_status("todoapi.tm.example.test.", "primary", Status::Degraded);

    let (code, out, err) = run(&["status", "--admin", &admin], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("PROFILE") && lines[0].contains("LAST PROBE"),
        "{out}"
    );
    assert!(
        lines[1].contains("todoapi.tm.example.test.")
            && lines[1].contains("primary")
            && lines[1].contains("Degraded"),
        "{out}"
    );
    assert!(
        lines[2].contains("secondary") && lines[2].contains("CheckingEndpoint"),
        "{out}"
    );

    let (code, out, err) = run(
        &["explain", "todoapi.tm.example.test", "--admin", &admin],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("todoapi.tm.example.test A -> NOERROR, TTL 30"),
        "{out}"
    );
    assert!(
        out.contains("answer:   todoapi.tm.example.test. 30 A 198.51.100.20"),
        "{out}"
    );
    assert!(
        out.contains("todoapi.tm.example.test/primary: Degraded since"),
        "{out}"
    );

    // Changing state needs the token.
    let (code, _, err) = run(
        &[
            "endpoint",
            "disable",
            "todoapi.tm.example.test",
            "secondary",
            "--admin",
            &admin,
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("SWITCHYARD_ADMIN_TOKEN"), "{err}");
    let (code, out, err) = run(
        &[
            "endpoint",
            "disable",
            "todoapi.tm.example.test",
            "secondary",
            // The last answerable endpoint: the guard wants --force.
            "--force",
            "--admin",
            &admin,
        ],
        Some("cli-token"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("todoapi.tm.example.test./secondary: Disabled"),
        "{out}"
    );
    // Both unusable now: primary Degraded, secondary disabled: fail open to the primary.
    assert_eq!(
        addrs(&udp(s.v4(), "todoapi.tm.example.test.", RecordType::A)),
        ["203.0.113.10"]
    );
    let (code, _, _) = run(
        &[
            "endpoint",
            "enable",
            "todoapi.tm.example.test",
            "secondary",
            "--admin",
            &admin,
        ],
        Some("cli-token"),
    );
    assert_eq!(code, 0);
    assert_eq!(
        addrs(&udp(s.v4(), "todoapi.tm.example.test.", RecordType::A)),
        ["198.51.100.20"]
    );

    let (code, out, _) = run(&["reload", "--admin", &admin], Some("cli-token"));
    assert_eq!(code, 0);
    assert!(out.starts_with("reloaded: 1 profiles"), "{out}");
    std::fs::write(s.dir().join("profiles/bad.toml"), "name = 3").unwrap();
    let (code, out, err) = run(&["reload", "--admin", &admin], Some("cli-token"));
    assert_eq!(code, 1);
    assert!(out.contains("bad.toml:1:8: name:"), "{out}");
    assert!(err.contains("previous one keeps serving"), "{err}");

    // A closed pipe (`| head -1`) ends the command quietly.
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' status --admin {admin} | head -1",
            bin().display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(String::from_utf8_lossy(&piped.stdout).starts_with("PROFILE"));
    // --admin works before the command too.
    let (code, _, err) = run(&["--admin", &admin, "status"], None);
    assert_eq!(code, 0, "{err}");

    // No server there: a clear error.
    let (code, _, err) = run(&["status", "--admin", "127.0.0.1:9"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the admin API at 127.0.0.1:9"),
        "{err}"
    );
}

/// `-c FILE` without `--admin` talks to the server of that configuration
/// (its `[admin] listen`), never silently to the default address.
#[test]
fn admin_commands_find_the_server_of_the_configuration_given() {
    let port = crate::harness::free_port(false);
    // 0.0.0.0 is reached over loopback.
    let fx = Fixture::new(
        &format!("[admin]\nlisten = \"0.0.0.0:{port}\""),
        &[("todoapi.toml", TODOAPI)],
    );
    let config = fx.config_path();
    let p = Proc::start(fx);
    let config = config.to_str().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let run_in = |args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .current_dir(cwd.path())
            .env_remove("SWITCHYARD_ADMIN")
            .env_remove("SWITCHYARD_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run_in(&["-c", config, "status"]);
    assert_eq!(code, 0, "{err}\n{}", p.log());
    assert!(out.contains("todoapi.tm.example.test."), "{out}");
    assert!(
        out.contains("SERVING") && out.contains("WORST FAILOVER"),
        "{out}"
    );
    let (code, out, err) = run_in(&["explain", "todoapi.tm.example.test", "--config", config]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("203.0.113.10"), "{out}");
    // A configuration that does not exist is an error, not the default.
    let (code, _, err) = run_in(&["-c", "/nonexistent/switchyard.toml", "status"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/switchyard.toml does not exist"),
        "{err}"
    );
}

/// The README's commands that a quickstart user pastes against the bundled
/// configuration name what it has (issue 20, item 16: `switchyard endpoint
/// disable api.tm.example.com. eu-west` answered 404): every `switchyard
/// endpoint` and `switchyard explain` in a console example, and the
/// `--help` examples, name a profile (and endpoint) of the bundled example;
/// every `dig` at the quickstart's address asks a name in its zone (or
/// `example.com`, the refused one).
#[test]
fn readme_commands_name_the_bundled_configuration() {
    let example = switchyard::fuzzing::example_dir().join("switchyard.toml");
    let table = switchyard::config::load(&example).unwrap().table;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let help = Command::new(bin())
        .args(["endpoint", "--help"])
        .output()
        .unwrap()
        .stdout;
    let help = String::from_utf8(help).unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    let lines = readme.lines().filter_map(|l| l.strip_prefix("$ ")).chain(
        help.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("switchyard ")),
    );
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["switchyard", "endpoint", _, profile, endpoint, ..] => {
                checked += 1;
                let found = table
                    .profile_by_name(profile)
                    .is_some_and(|p| table.endpoints_of(p).iter().any(|e| &*e.name == *endpoint));
                if !found {
                    wrong.push(line.to_string());
                }
            }
            ["switchyard", "explain", name, ..] => {
                checked += 1;
                if table.profile_by_name(name).is_none() {
                    wrong.push(line.to_string());
                }
            }
            ["dig", server, "-p", "5353", name, ..] if matches!(*server, "@127.0.0.1" | "@::1") => {
                checked += 1;
                let name = name.trim_end_matches('.');
                if name != "example.com" && !name.ends_with(".tm.example.test") {
                    wrong.push(line.to_string());
                }
            }
            _ => {}
        }
    }
    assert!(checked >= 12, "only {checked} commands found");
    assert!(
        wrong.is_empty(),
        "these name what the bundled configuration does not have:\n{}",
        wrong.join("\n")
    );
}
