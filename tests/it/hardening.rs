//! Regression tests for the defects found when the server was attacked as a
//! hostile network and a careless operator would (issue #9). Each test failed
//! on the code before the fix.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::backend::{Backend, Mode, wait_until};
use crate::harness::*;

const NAME: &str = "todoapi.tm.example.test.";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Sends one framed query on `c` and reads the reply; false if the server
/// closed the connection or did not answer.
fn ask(c: &mut TcpStream) -> bool {
    c.write_all(&tcp_frame(NAME, RecordType::A)).is_ok() && read_frame(c).is_some()
}

/// A fresh connection from `from`, one query, one answer.
fn fresh_query(from: IpAddr, to: SocketAddr) -> bool {
    match tcp_from(from, to) {
        Ok(mut c) => ask(&mut c),
        Err(_) => false,
    }
}

fn endpoint_status(admin: SocketAddr) -> Option<(String, Value)> {
    let (code, body) = try_http(admin, "GET", "/api/v1/status", None).ok()?;
    if code != 200 {
        return None;
    }
    let doc: Value = serde_json::from_str(&body).ok()?;
    let e = doc["profiles"][0]["endpoints"][0].clone();
    Some((e["status"].as_str()?.to_string(), e))
}

/// `switchyard_tcp_connections{service="dns"}` from `/metrics`.
fn dns_connections(admin: SocketAddr) -> Option<u64> {
    let (_, metrics) = try_http(admin, "GET", "/metrics", None).ok()?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchyard_tcp_connections{service=\"dns\"} "))?
        .parse()
        .ok()
}

/// Threads that each hold a connection and open a new one as soon as the
/// server closes it, until dropped.
struct Flood {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(
        n: usize,
        connect: impl Fn(usize) -> std::io::Result<TcpStream> + Send + Sync + 'static,
    ) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let connect = Arc::new(connect);
        let threads = (0..n)
            .map(|i| {
                let (stop, connect) = (stop.clone(), connect.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut c) = connect(i) else { continue };
                        c.set_read_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        let mut b = [0u8; 64];
                        // Hold it until the server closes it.
                        loop {
                            match c.read(&mut b) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(_) if stop.load(Ordering::Relaxed) => return,
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => break,
                            }
                        }
                    }
                })
            })
            .collect();
        Flood { stop, threads }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------ wire

/// ISC's genreport `opcodeflg`: a reply to an unknown opcode carries
/// neither RD nor CD.
#[test]
fn notimp_replies_carry_neither_rd_nor_cd() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let mut q = build("tm.example.test.", RecordType::SOA, Opts::default())
        .to_vec()
        .unwrap();
    q[2] = (15 << 3) | 0x01; // opcode 15, RD
    q[3] |= 0x10; // CD
    let r = udp_raw(s.v4(), &q, TIMEOUT).expect("a reply");
    assert_eq!(r[3] & 0x0F, 4, "NOTIMP");
    assert_eq!((r[2] >> 3) & 0x0F, 15, "opcode echoed");
    assert_eq!(r[2] & 0x01, 0, "RD copied into a NOTIMP reply");
    assert_eq!(r[3] & 0x10, 0, "CD copied into a NOTIMP reply");
}

// ------------------------------------------------------------------- TCP

/// A complete query is answered at once even when part of the next one has
/// already arrived, and a half-close still gets every complete answer.
#[test]
fn tcp_answers_each_complete_query_at_once() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let f = tcp_frame(NAME, RecordType::A);
    let mut c = TcpStream::connect(s.v4()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    c.write_all(&[&f[..], &f[..5]].concat()).unwrap();
    assert!(read_frame(&mut c).is_some(), "first answer held back");
    c.write_all(&f[5..]).unwrap();
    assert!(read_frame(&mut c).is_some(), "second answer");

    let mut c = TcpStream::connect(s.v4()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    c.write_all(&[&f[..], &f[..], &f[..7]].concat()).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert!(read_frame(&mut c).is_some(), "answer lost on half-close");
    assert!(read_frame(&mut c).is_some(), "answer lost on half-close");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "then the connection is closed");
}

/// One address cannot take every TCP slot: it is held to its own limit.
#[test]
fn tcp_per_client_limit() {
    let s = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nmax_tcp_connections = 100",
        &[("todoapi.toml", TODOAPI)],
    )
    .start();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..150 {
        match tcp_from(ip("127.0.0.2"), s.v4()) {
            Ok(mut c) => {
                if ask(&mut c) {
                    held.push(c);
                } else {
                    refused += 1;
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(refused >= 50, "only {refused} of 150 refused");
    let ok = (0..50)
        .filter(|_| fresh_query(ip("127.0.0.3"), s.v4()))
        .count();
    assert_eq!(ok, 50, "other clients are served");
}

/// While one address holds every TCP slot (and keeps reconnecting), fresh
/// queries from another address are answered: at the cap the longest-idle
/// connection makes room.
#[test]
fn tcp_cap_held_by_one_address_does_not_lock_out_others() {
    let s = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nmax_tcp_connections = 100\nmax_tcp_per_client = 100",
        &[("todoapi.toml", TODOAPI)],
    )
    .start();
    let addr = s.v4();
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut c = tcp_from(ip("127.0.0.2"), addr).unwrap();
        assert!(ask(&mut c), "the attacker's first connections are served");
        held.push(c);
    }
    // The attacker keeps opening connections, each with a query.
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let attacker = {
        let (stop, opened) = (stop.clone(), opened.clone());
        std::thread::spawn(move || {
            let mut more = Vec::new();
            while !stop.load(Ordering::Relaxed) && more.len() < 1500 {
                if let Ok(mut c) = tcp_from(ip("127.0.0.2"), addr) {
                    let _ = c.write_all(&tcp_frame(NAME, RecordType::A));
                    more.push(c);
                    opened.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            more
        })
    };
    let total = 200;
    let ok = (0..total)
        .filter(|_| {
            std::thread::sleep(Duration::from_millis(5));
            fresh_query(ip("127.0.0.3"), addr)
        })
        .count();
    stop.store(true, Ordering::Relaxed);
    drop(attacker.join());
    eprintln!(
        "{ok} of {total} fresh queries answered while the attacker held the cap and opened {} more connections",
        opened.load(Ordering::Relaxed)
    );
    assert!(
        opened.load(Ordering::Relaxed) > 50,
        "the attacker kept connecting"
    );
    assert!(
        ok * 100 >= total * 99,
        "only {ok} of {total} fresh queries answered"
    );
}

// ----------------------------------------------------------------- admin

/// Clients that hold every admin slot and reconnect as soon as they are
/// closed cannot keep a health check out.
#[test]
fn admin_health_check_gets_through_a_reconnect_flood() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start_with_admin_limits(
        switchyard::admin::Limits {
            connections: 8,
            header_timeout: Duration::from_secs(10),
        },
    );
    let admin = s.admin;
    let flood = Flood::start(8, move |_| TcpStream::connect(admin));
    let slots = s.shared.admin_slots.get().expect("admin slots").clone();
    wait_until(Duration::from_secs(10), || slots.len() == 8).expect("the flood holds every slot");
    let ok = (0..30)
        .filter(|_| matches!(try_http(admin, "GET", "/healthz", None), Ok((200, _))))
        .count();
    drop(flood);
    assert!(ok >= 29, "/healthz answered {ok} times in 30");
}

// ------------------------------------------------------------ names, state

/// Profile names are DNS names: any case reaches the profile in the API,
/// and overrides saved for a capitalised name survive a restart.
#[test]
fn profile_names_compare_case_insensitively() {
    let profile = ProfileToml::todoapi()
        .set("name", "ToDoApi.tm.example.test.")
        .build();
    let s = Fixture::new("state_file = \"state.json\"", &[("todoapi.toml", &profile)]).start();
    for name in ["todoapi.tm.example.test", "TODOAPI.TM.EXAMPLE.TEST."] {
        let (code, body) = http(
            s.admin,
            "POST",
            &format!("/api/v1/profiles/{name}/endpoints/primary/disable"),
            None,
        );
        assert_eq!(code, 200, "{name}: {body}");
    }
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["198.51.100.20"]);
    let s = s.into_fixture().start();
    assert_eq!(
        addrs(&udp(s.v4(), NAME, RecordType::A)),
        ["198.51.100.20"],
        "the override was lost on restart"
    );
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A state file that cannot be used never stops the server: it is moved
/// aside, reported, and the server serves; `check` reports it too.
#[test]
fn damaged_state_files_are_moved_aside() {
    type Make = Box<dyn Fn(&std::path::Path)>;
    let cases: Vec<(&str, Make)> = vec![
        ("empty", Box::new(|p| std::fs::write(p, "").unwrap())),
        (
            "truncated",
            Box::new(|p| std::fs::write(p, "{\"disabled\": [{\"profile\": \"tod").unwrap()),
        ),
        (
            "garbage",
            Box::new(|p| std::fs::write(p, b"\x00\xff\xfe not json at all").unwrap()),
        ),
        ("directory", Box::new(|p| std::fs::create_dir(p).unwrap())),
        (
            "fifo",
            Box::new(|p| {
                assert!(
                    std::process::Command::new("mkfifo")
                        .arg(p)
                        .status()
                        .unwrap()
                        .success()
                )
            }),
        ),
    ];
    for (what, make) in cases {
        let fx = Fixture::new("state_file = \"state.json\"", &[("todoapi.toml", TODOAPI)]);
        let state = fx.dir.path().join("state.json");
        make(&state);
        let check = std::process::Command::new(bin())
            .args(["check", "--config"])
            .arg(fx.config_path())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&check.stdout);
        assert_eq!(check.status.code(), Some(0), "{what}: check said {out}");
        assert!(
            out.contains("warning: ") && out.contains("state.json: state file cannot be used"),
            "{what}: {out}"
        );

        let mut p = Proc::spawn(fx, &[], &[]);
        let up = wait_until(Duration::from_secs(10), || {
            p.log().contains("dns listening")
        });
        assert!(
            up.is_some() && p.alive(),
            "{what}: the server did not start:\n{}",
            p.log()
        );
        let log = p.log();
        assert!(
            log.contains("ERROR") && log.contains("state file"),
            "{what}: not reported:\n{log}"
        );
        assert_eq!(addrs(&udp(p.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
        let aside: Vec<_> = std::fs::read_dir(p.dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("state.json.bad-"))
            .collect();
        assert_eq!(aside.len(), 1, "{what}: not moved aside: {aside:?}");
        // Overrides are saved again, in a fresh file.
        let (code, body) = http(
            p.admin(),
            "POST",
            "/api/v1/profiles/todoapi.tm.example.test/endpoints/primary/disable",
            None,
        );
        assert_eq!(code, 200, "{what}: {body}");
        assert!(std::fs::metadata(&state).unwrap().is_file());
        let (_, metrics) = http(p.admin(), "GET", "/metrics", None);
        assert!(
            metrics.contains("switchyard_state_file_problems_total 1"),
            "{what}: {metrics}"
        );
    }
    if !running_as_root() {
        // (root reads any file, so this case only runs for other users)
        let fx = Fixture::new("state_file = \"state.json\"", &[("todoapi.toml", TODOAPI)]);
        let state = fx.dir.path().join("state.json");
        std::fs::write(&state, "{\"disabled\": []}").unwrap();
        std::process::Command::new("chmod")
            .args(["000"])
            .arg(&state)
            .status()
            .unwrap();
        let mut p = Proc::spawn(fx, &[], &[]);
        let up = wait_until(Duration::from_secs(10), || {
            p.log().contains("dns listening")
        });
        assert!(up.is_some() && p.alive(), "unreadable:\n{}", p.log());
    }
}

// --------------------------------------------------------------- signals

fn signal_handled(pid: u32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mask = |field: &str| {
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
            .unwrap_or(0)
    };
    // SIGHUP is signal 1: bit 0. A mask with (nearly) every signal blocked
    // is not ours: a thread being created (jemalloc starts its background
    // thread before `main`) blocks them all for a moment, then restores
    // the mask, and a SIGHUP sent then would kill the process before `main`
    // could hold it, failing this test at random.
    let blocked = mask("SigBlk:");
    let transient = blocked.count_ones() > 8;
    !transient && (blocked | mask("SigCgt:")) & 1 == 1
}

/// A SIGHUP while a large configuration is still loading is held and
/// applied once it is loaded; it never kills the process.
#[test]
fn sighup_during_start_is_held_then_applied() {
    // 20,000 endpoints: seconds of loading in a debug build.
    let profiles: Vec<(String, String)> = ["big", "bigger"]
        .iter()
        .map(|n| {
            let mut p = format!("name = \"{n}.tm.example.test.\"\nrouting = \"weighted\"\n");
            for i in 0..10_000u32 {
                p.push_str(&format!(
                    "[[endpoints]]\nname = \"e{i}\"\ntarget = \"10.{}.{}.{}\"\n",
                    i >> 16,
                    (i >> 8) & 255,
                    i & 255
                ));
            }
            (format!("{n}.toml"), p)
        })
        .collect();
    let refs: Vec<(&str, &str)> = profiles
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let fx = Fixture::new("", &refs);
    let mut p = Proc::spawn(fx, &[], &[]);
    // The signal goes once the process holds SIGHUP, or after a second:
    // before the fix, the configuration was still loading then, and the
    // signal's default action killed the process. (Before `main` runs no
    // program can hold a signal, so the test waits for that.)
    let start = Instant::now();
    while !signal_handled(p.pid()) && start.elapsed() < Duration::from_millis(1000) {
        std::thread::sleep(Duration::from_micros(200));
    }
    p.signal("HUP");
    let up = wait_until(Duration::from_secs(30), || {
        p.log().contains("dns listening") || !p.alive()
    });
    assert!(up.is_some() && p.alive(), "killed by SIGHUP:\n{}", p.log());
    p.wait_for_log("configuration reloaded", Duration::from_secs(30));
    assert!(p.log().contains("trigger=SIGHUP"), "{}", p.log());
    assert_eq!(
        addrs(&udp(p.v4(), "big.tm.example.test.", RecordType::A)).len(),
        1
    );
}

// ------------------------------------------------------------ file sizes

/// A huge file dropped into profiles/ is refused before it is parsed, and
/// no error message echoes a long value whole.
#[test]
fn oversized_files_and_values_are_cut_short() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let huge = format!(
        "name = \"{}\"\nrouting = \"priority\"\n",
        "a".repeat(3 << 20)
    );
    std::fs::write(s.dir().join("profiles/huge.toml"), huge).unwrap();
    let (code, body) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 422, "{}", &body[..body.len().min(500)]);
    assert!(body.len() < 2000, "{} bytes of errors", body.len());
    assert!(
        body.contains("huge.toml") && body.contains("larger than"),
        "{body}"
    );
    std::fs::remove_file(s.dir().join("profiles/huge.toml")).unwrap();

    let long = format!(
        "name = \"long.tm.example.test.\"\nrouting = \"{}\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n",
        "x".repeat(100_000)
    );
    std::fs::write(s.dir().join("profiles/long.toml"), long).unwrap();
    let (code, body) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 422);
    assert!(body.len() < 2000, "{} bytes of errors", body.len());
    assert!(body.contains("(100000 bytes)"), "{body}");
    // The old configuration keeps serving.
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
}

// ---------------------------------------------------------------- prober

/// Response headers are capped: a backend sending 200 KB of them fails the
/// probe with a clear reason instead of being buffered.
#[tokio::test(flavor = "multi_thread")]
async fn probe_response_headers_are_capped() {
    let b = Backend::http(Mode::HugeHeaders);
    let profile = format!(
        "name = \"p.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\nport = {}\ntimeout = \"2s\"\ninterval = \"3s\"\n[[endpoints]]\nname = \"e\"\ntarget = \"127.0.0.1\"\n",
        b.port()
    );
    let fx = Fixture::new("", &[("p.toml", &profile)]);
    let config = switchyard::config::load(&fx.config_path()).unwrap();
    let t = switchyard::health::probe::Target::new(&config.probes[0], None).unwrap();
    let o = t.run().await;
    let f = o.failure.expect("a probe with 200 KB of headers succeeded");
    assert!(f.reason.contains("headers"), "{}", f.reason);
}

/// A TCP flood under a low descriptor limit never reaches the prober or
/// the admin API: endpoints stay Online, /healthz answers, and the server
/// says at start that the configured caps do not fit.
#[test]
fn tcp_flood_under_a_low_fd_limit_does_not_degrade_endpoints() {
    let b = Backend::http(Mode::Ok);
    let profile = format!(
        "name = \"todoapi.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\nport = {}\ninterval = \"200ms\"\ntimeout = \"150ms\"\ntolerated_failures = 0\n[[endpoints]]\nname = \"primary\"\ntarget = \"127.0.0.1\"\n",
        b.port()
    );
    let fx = Fixture::new("", &[("todoapi.toml", &profile)]);
    let p = Proc::spawn(fx, &["prlimit", "--nofile=256:256", "--"], &[]);
    p.wait_for_log("dns listening", Duration::from_secs(20));
    let admin = p.admin();
    wait_until(Duration::from_secs(5), || {
        endpoint_status(admin).is_some_and(|(s, _)| s == "Online")
    })
    .expect("Online before the flood");
    let online_since = endpoint_status(admin).unwrap().1["since"].clone();
    // 600 idle DNS connections from 30 addresses, and 100 idle admin ones.
    let mut held = Vec::new();
    for i in 0..600 {
        if let Ok(c) = tcp_from(ip(&format!("127.0.3.{}", 1 + i % 30)), p.v4()) {
            held.push(c);
        }
    }
    for _ in 0..100 {
        if let Ok(c) = TcpStream::connect(admin) {
            held.push(c);
        }
    }
    // Watched while the flood is held until the backend has had five more
    // probes (a second at 200 ms): Online throughout, every probe passed
    // (one failure would be a transition: Online would start again).
    let probes = b.request_count();
    wait_until(Duration::from_secs(20), || {
        let (status, e) = endpoint_status(admin).expect("the admin API answers during the flood");
        assert_eq!(status, "Online", "{e}");
        assert_eq!(
            e["since"], online_since,
            "a probe failed during the flood: {e}"
        );
        assert!(
            e["last_probe"]["error"].is_null(),
            "a probe failed during the flood: {e}"
        );
        b.request_count() >= probes + 5
    })
    .expect("fewer than five probes in 20 s of the flood");
    assert!(fresh_query(ip("127.0.0.9"), p.v4()), "DNS over TCP answers");
    drop(held);
    assert!(
        p.log().contains("dns.max_tcp_connections"),
        "no word that the caps do not fit:\n{}",
        p.log()
    );
}

// ---------------------------------------------------------------- memory

/// A TCP connection costs little memory, and the memory comes back when
/// the connections close.
#[test]
fn tcp_connections_are_cheap_and_their_memory_returns() {
    let fx = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nmax_tcp_connections = 5000",
        &[("todoapi.toml", TODOAPI)],
    );
    let p = Proc::start(fx);
    let addr = p.v4();
    // Warm up: every runtime thread has answered over TCP before measuring.
    for i in 0..50 {
        assert!(fresh_query(ip(&format!("127.0.5.{}", 1 + i % 50)), addr));
    }
    // ...and has closed those connections.
    wait_until(Duration::from_secs(10), || {
        dns_connections(p.admin()) == Some(0)
    })
    .expect("the warm-up connections never closed");
    let base = p.status_kb("VmRSS");
    let n = 3000;
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = tcp_from(ip(&format!("127.0.6.{}", 1 + i % 60)), addr).unwrap();
        assert!(ask(&mut c), "connection {i} not served");
        held.push(c);
    }
    let open = p.status_kb("VmRSS");
    drop(held);
    // Freed pages go back to the system within a few seconds.
    let returned = |rss: u64| rss <= base + (open - base) / 4 + 2048;
    wait_until(Duration::from_secs(10), || returned(p.status_kb("VmRSS")));
    let after = p.status_kb("VmRSS");
    let per_conn = (open.saturating_sub(base)) * 1024 / n as u64;
    eprintln!(
        "RSS: {base} kB before, {open} kB with {n} connections ({per_conn} bytes each), {after} kB after they closed"
    );
    assert!(per_conn < 16 * 1024, "{per_conn} bytes per connection");
    assert!(
        returned(after),
        "RSS not returned: {base} -> {open} -> {after} kB"
    );
}

/// Concurrent scrapes share one encoding: memory does not grow with the
/// number of scrapers.
#[test]
fn concurrent_metrics_scrapes_share_one_encoding() {
    let profile = big_profile(3000);
    let fx = Fixture::new("", &[("big.toml", &profile)]);
    let p = Proc::start(fx);
    let admin = p.admin();
    let (code, one) = try_http(admin, "GET", "/metrics", None).unwrap();
    assert_eq!(code, 200);
    let size_kb = one.len() as u64 / 1024;
    let before = p.status_kb("VmHWM");
    let threads: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(move || {
                let (code, body) = try_http(admin, "GET", "/metrics", None).unwrap();
                (code, body.len())
            })
        })
        .collect();
    for t in threads {
        let (code, len) = t.join().unwrap();
        assert_eq!(code, 200);
        assert!(len > one.len() / 2);
    }
    let after = p.status_kb("VmHWM");
    eprintln!(
        "one scrape: {size_kb} kB; peak RSS {before} kB before 40 concurrent scrapes, {after} kB after"
    );
    assert!(
        after <= before + 6 * size_kb + 4096,
        "peak RSS grew by {} kB for 40 scrapes of {size_kb} kB",
        after - before
    );
}

/// A client that pipelines thousands of queries and never reads its
/// answers costs a bounded amount of memory, and is closed by the idle
/// timeout once its answers stop draining.
#[test]
fn pipelining_without_reading_is_bounded() {
    let fx = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\ntcp_idle_timeout = \"1s\"",
        &[("todoapi.toml", TODOAPI)],
    );
    let p = Proc::start(fx);
    let frame = tcp_frame("tm.example.test.", RecordType::TXT);
    let base = p.status_kb("VmRSS");
    let mut c = tcp_from(ip("127.0.7.1"), p.v4()).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let burst: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 50_000)
        .collect();
    let start = Instant::now();
    let _ = c.write_all(&burst);
    let peak = p.status_kb("VmRSS");
    assert!(
        peak < base + 32 * 1024,
        "RSS {base} -> {peak} kB for one client that does not read"
    );
    assert!(fresh_query(ip("127.0.7.2"), p.v4()), "others are served");
    // Its answers stopped draining: closed within the timeout.
    let closed = wait_until(Duration::from_secs(10), || {
        let mut b = [0u8; 65536];
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        loop {
            match c.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
    });
    assert!(closed.is_some(), "still open after {:?}", start.elapsed());
}

/// Clients that reconnect as soon as they are closed, from one network,
/// cannot crowd out a client from another network that takes its time to
/// ask: the network holding the most slots gives one up, and a newcomer
/// has a grace period to send its first query.
#[test]
fn a_reconnect_flood_cannot_crowd_out_a_slow_client() {
    let s = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nmax_tcp_connections = 8\nmax_tcp_per_client = 4",
        &[("todoapi.toml", TODOAPI)],
    )
    .start();
    let addr = s.v4();
    let flood = Flood::start(8, move |i| {
        tcp_from(ip(&format!("127.0.8.{}", i + 1)), addr)
    });
    let slots = s.shared.dns_slots.get().expect("dns slots").clone();
    wait_until(Duration::from_secs(10), || slots.len() == 8).expect("the flood holds every slot");
    let ok = (0..20)
        .filter(|_| {
            let Ok(mut c) = tcp_from(ip("127.0.9.1"), addr) else {
                return false;
            };
            std::thread::sleep(Duration::from_millis(50));
            ask(&mut c)
        })
        .count();
    drop(flood);
    assert!(ok >= 19, "{ok} of 20 slow clients answered");
}

/// A connection announcing a message larger than any query is closed at
/// once: nothing is buffered for it.
#[test]
fn tcp_messages_larger_than_a_query_are_refused() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let mut c = TcpStream::connect(s.v4()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    // A complete query, then a frame announcing 65,535 bytes.
    let mut data = tcp_frame(NAME, RecordType::A);
    data.extend_from_slice(&[0xFF, 0xFF]);
    data.extend_from_slice(&[0u8; 1000]);
    c.write_all(&data).unwrap();
    assert!(
        read_frame(&mut c).is_some(),
        "the complete query is answered"
    );
    let start = Instant::now();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(start.elapsed() < Duration::from_secs(1), "closed at once");
}

/// A setting that needs a restart is reported on every reload until the
/// server runs it, and not once it is back to what runs.
#[test]
fn restart_needed_compares_with_what_runs() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let config = s.dir().join("switchyard.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    let reload = || {
        let (code, body) = http(s.admin, "POST", "/api/v1/reload", None);
        assert_eq!(code, 200, "{body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        doc["summary"]["restart_needed"].clone()
    };
    let dns = "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nmax_tcp_per_client = 3";
    std::fs::write(&config, config_toml(dns)).unwrap();
    assert_eq!(reload(), serde_json::json!(["dns.max_tcp_per_client"]));
    assert_eq!(
        reload(),
        serde_json::json!(["dns.max_tcp_per_client"]),
        "forgotten"
    );
    // Turning the XDP path on (or changing it) takes a restart too.
    let xdp = "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n[dns.xdp]\ninterfaces = [\"lo\"]\nlisten = [\"127.0.0.1:0\"]";
    std::fs::write(&config, config_toml(xdp)).unwrap();
    assert_eq!(reload(), serde_json::json!(["dns.xdp"]));
    std::fs::write(&config, &original).unwrap();
    assert_eq!(
        reload(),
        serde_json::json!([]),
        "reported with nothing to restart"
    );
}

/// Clients that ask for /metrics and never read cannot keep the scrape
/// permits: a waiting scrape closes the oldest one's connection.
#[test]
fn stalled_scrapers_cannot_block_metrics() {
    let profile = big_profile(3000);
    let p = Proc::start(Fixture::new("", &[("big.toml", &profile)]));
    let admin = p.admin();
    let stalled: Vec<TcpStream> = (0..4)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(&admin.into()).unwrap();
            let mut c: TcpStream = s.into();
            c.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\n\r\n").as_bytes())
                .unwrap();
            c
        })
        .collect();
    // Each holds a permit once its response has begun to arrive.
    for c in &stalled {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = [0u8; 12];
        let n = c.peek(&mut head).expect("a stalled scrape never began");
        assert!(
            n > 0 && b"HTTP/1.1 200".starts_with(&head[..n]),
            "{:?}",
            &head[..n]
        );
    }
    let start = Instant::now();
    let (code, body) = try_http(admin, "GET", "/metrics", None).unwrap();
    assert_eq!(code, 200, "{}", &body[..body.len().min(200)]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    p.wait_for_log("closing its connection for another", Duration::from_secs(5));
    drop(stalled);
}

/// A weighted profile `big.tm.example.test.` of `n` monitored endpoints
/// (probed hourly: the tests look at what the endpoints cost, not probes).
fn big_profile(n: u32) -> String {
    let mut profile = String::from(
        "name = \"big.tm.example.test.\"\nrouting = \"weighted\"\n[monitor]\nprotocol = \"tcp\"\nport = 9\ninterval = \"1h\"\n",
    );
    for i in 0..n {
        profile.push_str(&format!(
            "[[endpoints]]\nname = \"endpoint-{i}\"\ntarget = \"10.1.{}.{}\"\n",
            i >> 8,
            i & 255
        ));
    }
    profile
}
