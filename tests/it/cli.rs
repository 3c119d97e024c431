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
        // A trailing newline (a Kubernetes Secret made from a file) is
        // not part of the token.
        Some("cli-token\n"),
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
    // The container's HEALTHCHECK: /healthz of the configuration's server
    // (200 once its listeners are bound and the prober runs) ...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (code, out, err) = loop {
        let r = run_in(&["-c", config, "healthcheck"]);
        if r.0 == 0 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}\n{}", p.log());
    // ... and exit 1, saying why, when nothing answers.
    drop(p);
    let admin = format!("127.0.0.1:{port}");
    let (code, _, err) = run_in(&["--admin", &admin, "healthcheck"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the admin API"), "{err}");
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

/// The subcommands every completion script and the manual page must name.
const SUBCOMMANDS: [&str; 8] = [
    "serve",
    "check",
    "status",
    "healthcheck",
    "endpoint",
    "dnssec",
    "init",
    "completions",
];

/// Issue 24 item 5: `switchyard completions bash|zsh|fish` prints a script
/// from the binary's own clap definitions; bash parses it and its
/// completion function, run as bash runs it, offers the subcommands.
#[test]
fn completions_for_bash_zsh_and_fish() {
    let (code, bash, err) = run(&["completions", "bash"], None);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("switchyard.bash");
    std::fs::write(&script, &bash).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // What bash offers after `switchyard ch<TAB>` and `switchyard <TAB>`.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let probe = format!(
            "source {}\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
             _switchyard switchyard '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &probe])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let offered = complete("switchyard ch");
    assert_eq!(offered.trim(), "check", "{offered}");
    let offered = complete("switchyard ");
    for sub in SUBCOMMANDS {
        assert!(offered.lines().any(|l| l == sub), "{sub} not in {offered}");
    }

    for shell in ["zsh", "fish"] {
        let (code, script, err) = run(&["completions", shell], None);
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
    }
    if Command::new("zsh").arg("--version").output().is_ok() {
        let (_, script, _) = run(&["completions", "zsh"], None);
        std::fs::write(dir.path().join("_switchyard"), &script).unwrap();
        let ok = Command::new("zsh")
            .arg("-n")
            .arg(dir.path().join("_switchyard"))
            .status()
            .unwrap();
        assert!(ok.success(), "zsh -n failed");
    }

    let (code, out, err) = run(&["completions", "tcsh"], None);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.is_empty() && err.contains("invalid value 'tcsh'") && err.contains("bash"),
        "{err}"
    );
}

/// Issue 24 item 5: `switchyard man` prints switchyard(1) in roff from the
/// same definitions, naming every subcommand; `man -l` renders it when
/// man is installed. `--dir` writes it and one page per subcommand.
#[test]
fn man_page() {
    let (code, page, err) = run(&["man"], None);
    assert_eq!(code, 0, "{err}");
    let th = page.lines().find(|l| l.starts_with(".TH")).unwrap_or("");
    assert!(th.starts_with(".TH switchyard 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("switchyard\\-{sub}(1)")),
            "{sub}: {page}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, listed, err) = run(&["man", "--dir", dir.path().to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    let mut pages = vec!["switchyard.1".to_string()];
    pages.extend(SUBCOMMANDS.iter().map(|s| format!("switchyard-{s}.1")));
    pages.push("switchyard-dnssec-keygen.1".into());
    for name in &pages {
        let path = dir.path().join(name);
        assert!(path.is_file(), "{name} not written");
        assert!(listed.contains(&*path.to_string_lossy()), "{listed}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("switchyard.1")).unwrap(),
        page
    );
    let Ok(rendered) = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("switchyard.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    else {
        eprintln!("man is not installed: rendering not checked");
        return;
    };
    let text = String::from_utf8_lossy(&rendered.stdout);
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(rendered.status.success(), "man -l: {warnings}");
    assert!(warnings.trim().is_empty(), "man -l warned: {warnings}");
    assert!(
        text.contains("SUBCOMMANDS") && text.contains("switchyard-serve(1)"),
        "{text}"
    );
}
