//! `switchyard init` (issue 24 item 6), the real binary: the configuration
//! it writes passes `switchyard check` and is served (dig gets the
//! profile's answer, and the NS, glue and DS records it printed for the
//! parent are exactly what the server publishes: dig compares the first
//! two, delv validates from the DS); it never replaces a file and writes
//! nothing on bad input; on a terminal (a pseudo-terminal from this test)
//! it asks, re-asks after a bad answer, and writes the same kind of
//! configuration.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

const ZONE: &str = "tm.example.com.";

/// `switchyard init ARGS`, without a terminal.
fn init(args: &[&str], dir: &Path) -> Output {
    Command::new(bin())
        .arg("init")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The flags of a signed zone with two name servers inside it (one with
/// both address families) and a priority profile, listening on ephemeral
/// loopback ports.
const FLAGS: &[&str] = &[
    "--zone",
    "tm.example.com",
    "--ns",
    "ns1=192.0.2.53",
    "--ns",
    "ns1=2001:db8::53",
    "--ns",
    "ns2.tm.example.com.=198.51.100.53",
    "--profile",
    "api",
    "--endpoint",
    "eu=192.0.2.10,http://127.0.0.1:9/health",
    "--endpoint",
    "us=198.51.100.20,http://127.0.0.1:9/health",
    "--listen",
    "127.0.0.1:0",
    "--admin-listen",
    "127.0.0.1:0",
    "--dnssec",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A dig answer section, one record per line, fields single-spaced.
fn dig_answer(p: &Proc, name: &str, t: &str) -> Vec<String> {
    let addr = p.v4();
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), name, t])
        .args(["+norec", "+noall", "+answer", "+time=2", "+tries=2"])
        .output()
        .expect("cannot run dig; run the tests with scripts/test.sh");
    let mut lines: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `switchyard check -c DIR/switchyard.toml` passes.
fn assert_checks(dir: &Path) {
    let out = Command::new(bin())
        .args(["check", "-c"])
        .arg(dir.join("switchyard.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_configuration_it_writes_is_checked_and_served_with_the_records_it_printed() {
    let fx = Fixture {
        dir: tempfile::tempdir().unwrap(),
    };
    let dir = fx.dir.path().to_path_buf();
    let out = init(FLAGS, &dir);
    let printed = text(&out.stdout);
    assert!(out.status.success(), "{printed}{}", text(&out.stderr));
    for f in [
        "switchyard.toml",
        "profiles/api.toml",
        "admin.token",
        "keys/tm.example.com.key",
    ] {
        assert!(
            printed.contains(&format!("wrote {}", dir.join(f).display())),
            "{f}: {printed}"
        );
    }
    assert_eq!(mode(&dir.join("admin.token")), 0o600);
    assert_eq!(mode(&dir.join("keys/tm.example.com.key")), 0o600);
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    assert!(token.trim().len() >= 40, "a 32-byte token");
    assert!(
        !printed.contains(token.trim()),
        "the token is never printed"
    );
    assert!(
        printed.contains(&format!(
            "switchyard check -c {}",
            dir.join("switchyard.toml").display()
        )),
        "the next commands: {printed}"
    );
    assert_checks(&dir);

    // The records for the parent, as printed.
    let records: Vec<String> = printed
        .lines()
        .filter(|l| l.contains(" IN "))
        .map(String::from)
        .collect();
    let of = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = records
            .iter()
            .filter(|l| l.split_whitespace().nth(3) == Some(t))
            .cloned()
            .collect();
        v.sort();
        v
    };
    assert_eq!(of("NS").len(), 2, "{printed}");
    assert_eq!(of("A").len() + of("AAAA").len(), 3, "{printed}");
    assert_eq!(of("DS").len(), 1, "{printed}");

    let p = Proc::start(fx);
    let answer = dig_answer(&p, "api.tm.example.com.", "A");
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert!(
        answer[0].ends_with(" IN A 192.0.2.10") || answer[0].ends_with(" IN A 198.51.100.20"),
        "{answer:?}"
    );
    assert_eq!(dig_answer(&p, ZONE, "NS"), of("NS"));
    let mut glue = dig_answer(&p, "ns1.tm.example.com.", "A");
    glue.extend(dig_answer(&p, "ns1.tm.example.com.", "AAAA"));
    glue.extend(dig_answer(&p, "ns2.tm.example.com.", "A"));
    glue.sort();
    let mut printed_glue = of("A");
    printed_glue.extend(of("AAAA"));
    printed_glue.sort();
    assert_eq!(glue, printed_glue);
    // The DS printed is that of the key the server signs with: delv,
    // trusting only that DS, validates the profile's answer.
    let delv = crate::dnssec::delv_in(ZONE, p.v4(), &of("DS")[0], "api.tm.example.com.", "A");
    assert!(delv.contains("; fully validated"), "{delv}");
}

#[test]
fn it_never_replaces_a_file_and_writes_nothing_then() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("admin.token"), "the operator's own\n").unwrap();
    let out = init(FLAGS, d);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} already exists",
            d.join("admin.token").display()
        )),
        "{err}"
    );
    assert!(err.contains("nothing written"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("admin.token")).unwrap(),
        "the operator's own\n"
    );
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["admin.token"], "nothing else written");

    // A second run over a configuration it wrote changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(init(FLAGS, d).status.success());
    let before = std::fs::read(d.join("switchyard.toml")).unwrap();
    let key = std::fs::read(d.join("keys/tm.example.com.key")).unwrap();
    let out = init(FLAGS, d);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for f in [
        "switchyard.toml",
        "profiles/api.toml",
        "admin.token",
        "keys/tm.example.com.key",
    ] {
        assert!(
            err.contains(&format!("{} already exists", d.join(f).display())),
            "{f}: {err}"
        );
    }
    assert_eq!(std::fs::read(d.join("switchyard.toml")).unwrap(), before);
    assert_eq!(
        std::fs::read(d.join("keys/tm.example.com.key")).unwrap(),
        key
    );
}

/// FLAGS with `flag`'s value replaced (or the flag added).
fn with(flag: &str, values: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut it = FLAGS.iter();
    while let Some(f) = it.next() {
        if *f == flag {
            it.next();
        } else {
            out.push(f.to_string());
            if *f != "--dnssec" {
                out.push(it.next().unwrap().to_string());
            }
        }
    }
    for v in values {
        out.push(flag.to_string());
        out.push(v.to_string());
    }
    out
}

#[test]
fn bad_flags_are_named_and_nothing_is_written() {
    let geoip = repo().join("geoip/geo-whois-asn-country.mmdb");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            with("--zone", &["tm..example.com"]),
            "--zone `tm..example.com`",
        ),
        (
            with("--zone", &["com"]),
            "not a zone name of two labels or more",
        ),
        (
            with("--ns", &["ns1"]),
            "ns1.tm.example.com. is inside the zone tm.example.com., so the parent needs its address (glue)",
        ),
        (
            with("--ns", &["ns1.provider.example=192.0.2.1"]),
            "ns1.provider.example. is outside the zone tm.example.com.",
        ),
        (
            with("--ns", &["ns1=192.0.2.300"]),
            "`192.0.2.300` is not an IPv4 or IPv6 address",
        ),
        (
            with(
                "--endpoint",
                &[
                    "eu=192.0.2.10,ftp://192.0.2.10/",
                    "us=192.0.2.11,http://192.0.2.11/",
                ],
            ),
            "`ftp://192.0.2.10/` is not an http:// or https:// URL",
        ),
        (
            with(
                "--endpoint",
                &[
                    "eu=192.0.2.10,http://192.0.2.10/",
                    "eu=192.0.2.11,http://192.0.2.11/",
                ],
            ),
            "two endpoints are named `eu`",
        ),
        (
            with(
                "--endpoint",
                &[
                    "eu=192.0.2.1O,http://192.0.2.10/",
                    "us=192.0.2.11,http://192.0.2.11/",
                ],
            ),
            "letter O for a zero",
        ),
        (
            with("--endpoint", &["eu=192.0.2.10,http://192.0.2.10/"]),
            "a second --endpoint",
        ),
        (
            with(
                "--endpoint",
                &[
                    "eu=192.0.2.10,http://192.0.2.10/",
                    "us=192.0.2.11,https://192.0.2.11/",
                ],
            ),
            "share one protocol",
        ),
        (
            with("--profile", &["api.elsewhere.example."]),
            "is outside the zone",
        ),
        (
            with("--listen", &["192.0.2.1"]),
            "`192.0.2.1` is not ADDRESS:PORT",
        ),
        (
            with("--method", &["performance"]),
            "--method performance needs a GeoIP database",
        ),
        (
            with(
                "--endpoint",
                &[
                    "eu=192.0.2.10,http://192.0.2.10/,location=westeurop",
                    "us=192.0.2.11,http://192.0.2.11/,location=eastus",
                ],
            )
            .into_iter()
            .chain(["--method", "performance", "--geoip"].map(String::from))
            .chain([geoip.display().to_string()])
            .collect(),
            "--endpoint `eu`: unknown region `westeurop`; did you mean `westeurope`?",
        ),
    ];
    for (args, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("new");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = init(&args, &d);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want `{want}` in:\n{err}");
        assert!(err.contains("nothing written"), "{args:?}: {err}");
        assert!(!d.exists(), "{args:?}: nothing is written");
    }

    // What only the configuration's compiler knows is caught before
    // writing too, named as `check` names it in the file it would write.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("new");
    let args = with(
        "--endpoint",
        &[
            "cdn=cdn.example.net,http://cdn.example.net/",
            "us=192.0.2.11,http://192.0.2.11/",
        ],
    );
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let at = args.iter().position(|a| *a == "--profile").unwrap();
    args[at + 1] = "tm.example.com.";
    let out = init(&args, &d);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let at = format!("{}:", d.join("profiles/apex.toml").display());
    assert!(
        err.contains(&at) && err.contains("a CNAME cannot live at the apex"),
        "{err}"
    );
    assert!(!d.exists());
}

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// `switchyard init` on a pseudo-terminal: everything it prints (the
/// terminal echoes what is typed), and a way to type.
struct Tty {
    child: std::process::Child,
    master: std::fs::File,
    seen: Arc<Mutex<String>>,
    /// Where the next `expect` starts looking.
    at: usize,
}

impl Tty {
    fn spawn(args: &[&str]) -> Tty {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = std::fs::File::from(pty.slave);
        let mut cmd = Command::new(bin());
        cmd.arg("init")
            .args(args)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // The `Command` holds the slave's copies; dropped after the spawn,
        // only the child has the terminal open, so reads end when it exits.
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has exited and the slave is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Tty {
            child,
            master,
            seen,
            at: 0,
        }
    }

    /// Waits (at most 20 s) until `needle` is printed after what the last
    /// expect matched.
    fn expect(&mut self, needle: &str) {
        let start = Instant::now();
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if let Some(i) = seen[self.at..].find(needle) {
                self.at += i + needle.len();
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no `{needle}` within 20 s; the terminal shows:\n{}",
                &seen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `line` and Enter.
    fn answer(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Waits (at most 20 s) for the process to exit; its status.
    fn wait(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "init did not exit; the terminal shows:\n{}",
                self.seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn on_a_terminal_it_asks_and_asks_again_after_a_bad_answer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("conf");
    let mut t = Tty::spawn(&[]);
    t.expect("Zone these servers answer for (e.g. tm.example.com): ");
    t.answer("tm..example.com");
    t.expect("`tm..example.com`: not a valid domain name");
    t.expect("try again");
    t.expect("Zone these servers answer for");
    t.answer("tm.example.com");
    t.expect("Name server 1: ");
    t.answer("ns1");
    t.expect("so the parent needs its address (glue)");
    t.expect("Name server 1: ");
    t.answer("ns1=192.0.2.53");
    t.expect("Name server 2: ");
    t.answer("ns2=2001:db8::53");
    t.expect("Name server 3: ");
    t.answer("");
    t.expect("Profile name (a name in tm.example.com., e.g. api): ");
    t.answer("ns1");
    t.expect("is a name server's name");
    t.expect("Profile name");
    t.answer("api");
    t.expect("Routing method (priority, weighted, performance, geographic, subnet, multivalue) [priority]: ");
    t.answer("");
    t.expect("Endpoint 1 name [primary]: ");
    t.answer("");
    t.expect("primary: address or host name answered: ");
    t.answer("192.0.2.10");
    t.expect("primary: health URL (http:// or https://): ");
    t.answer("ftp://192.0.2.10/health");
    t.expect("is not an http:// or https:// URL");
    t.expect("primary: health URL");
    t.answer("http://127.0.0.1:9/health");
    t.expect("Endpoint 2 name [secondary]: ");
    t.answer("primary");
    t.expect("two endpoints are named `primary`");
    t.expect("Endpoint 2 name [secondary]: ");
    t.answer("");
    t.expect("secondary: address or host name answered: ");
    t.answer("198.51.100.20");
    t.expect("secondary: health URL (http:// or https://): ");
    t.answer("http://127.0.0.1:9/health");
    t.expect("Endpoint 3 name: ");
    t.answer("");
    t.expect("Directory to write into [.]: ");
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("switchyard.toml"), "# the operator's\n").unwrap();
    t.answer(&taken.display().to_string());
    t.expect("switchyard.toml already exists, and init never replaces a file");
    t.expect("Directory to write into [.]: ");
    t.answer(&d.display().to_string());
    t.expect("Sign the zone with DNSSEC? [y/N]: ");
    t.answer("maybe");
    t.expect("answer y or n");
    t.expect("Sign the zone with DNSSEC? [y/N]: ");
    t.answer("");
    t.expect("Addresses to answer DNS on (ADDRESS:PORT, space-separated) [0.0.0.0:53 [::]:53]: ");
    t.answer("127.0.0.1:0");
    t.expect("Admin API address [127.0.0.1:8053]: ");
    t.answer("127.0.0.1:0");
    t.expect("? [Y/n]: ");
    assert!(!d.exists(), "nothing written before the answer");
    t.answer("");
    t.expect("Give the parent zone (example.com.) these records");
    t.expect("tm.example.com. 3600 IN NS ns1.tm.example.com.");
    t.expect("ns2.tm.example.com. 3600 IN AAAA 2001:db8::53");
    assert!(t.wait().success());
    assert_checks(&d);
    let profile = std::fs::read_to_string(d.join("profiles/api.toml")).unwrap();
    assert!(profile.contains("routing = \"priority\""), "{profile}");
    assert!(!d.join("keys").exists(), "not signed");

    // The end of the input stops it, writing nothing.
    let d2 = dir.path().join("other");
    let mut t = Tty::spawn(&["--dir", d2.to_str().unwrap()]);
    t.expect("Zone these servers answer for");
    t.master.write_all(&[4]).unwrap(); // Ctrl-D: end of input
    t.expect("nothing written");
    assert_eq!(t.wait().code(), Some(1));
    assert!(!d2.exists());
}
