//! Run with: cargo run --release --example failover_drill [-- --trials 7 --quiet]
//!
//! A failover drill anyone can run, on loopback only. It starts two local
//! health backends (primary and secondary region) and the real Switchyard
//! server with a todoapi-style priority profile probing them every second
//! (timeout 500 ms, tolerated_failures 0, required_successes 1). Then, for
//! each trial, at a random moment it makes the primary's health endpoint fail
//! (first with 503s, then by hanging), prints the answer every 100 ms as
//! `dig +short` would, restores the primary, and measures how long the
//! answer took to move to the secondary (failover) and back (failback).
//! Answers are checked every 10 ms, so the figures are accurate to ~10 ms.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/drill.rs"]
mod drill;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

const NAME: &str = "todoapi.tm.example.test.";
const PRIMARY: &str = "203.0.113.10";
const SECONDARY: &str = "198.51.100.20";
const INTERVAL: Duration = Duration::from_secs(1);

const OK: u8 = 0;
const UNAVAILABLE: u8 = 1;
const HANG: u8 = 2;

/// A health endpoint whose answer can be switched: 200, 503 or no answer.
async fn backend(mode: Arc<AtomicU8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let mode = mode.clone();
            tokio::spawn(async move {
                if !drill::read_head(&mut s).await {
                    return;
                }
                let reply: &[u8] = match mode.load(Ordering::SeqCst) {
                    OK => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                    UNAVAILABLE => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    _ => {
                        // Hang: keep the connection open until the prober gives up.
                        let mut buf = [0u8; 2048];
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                        return;
                    }
                };
                let _ = s.write_all(reply).await;
            });
        }
    });
    addr
}

fn clock() -> String {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

/// Polls every 10 ms until the answer is `want`; prints every 100 ms.
async fn until(
    sock: &UdpSocket,
    server: SocketAddr,
    want: &str,
    from: Instant,
    quiet: bool,
) -> Duration {
    let mut last_print = Instant::now() - Duration::from_secs(1);
    loop {
        let got = drill::ask(sock, server, NAME).await;
        if !quiet && (last_print.elapsed() >= Duration::from_millis(100) || got == want) {
            println!(
                "  {}  +{:>5.3}s  {got}",
                clock(),
                from.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        if got == want {
            return from.elapsed();
        }
        if from.elapsed() > Duration::from_secs(10) {
            panic!("answer never became {want}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trials: usize = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let quiet = args.iter().any(|a| a == "--quiet");

    let primary = Arc::new(AtomicU8::new(OK));
    let secondary = Arc::new(AtomicU8::new(OK));
    let p_addr = backend(primary.clone()).await;
    let s_addr = backend(secondary.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(
        dir.path().join("switchyard.toml"),
        r#"
[dns]
listen = ["127.0.0.1:0"]
# Ephemeral ports: the drill runs beside a server on the default ones.
[admin]
listen = "127.0.0.1:0"
[[zones]]
origin = "tm.example.test."
ns = ["ns1.tm.example.test."]
records = [{ name = "ns1", type = "A", value = "192.0.2.53" }]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("profiles/todoapi.toml"),
        format!(
            r#"
name = "{NAME}"
routing = "priority"
ttl = 1
[monitor]
protocol = "http"
path = "/Health/{{key}}"
key = "drill"
interval = "1s"
timeout = "500ms"
tolerated_failures = 0
required_successes = 1
[[endpoints]]
name = "primary"
target = "{PRIMARY}"
probe = {{ address = "127.0.0.1", port = {} }}
[[endpoints]]
name = "secondary"
target = "{SECONDARY}"
probe = {{ address = "127.0.0.1", port = {} }}
"#,
            p_addr.port(),
            s_addr.port()
        ),
    )
    .unwrap();
    let config = switchyard::config::load(&dir.path().join("switchyard.toml")).unwrap();
    let server = switchyard::app::Server::bind(config).unwrap();
    let dns = server.dns_addrs()[0];
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));

    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    println!("Switchyard on {dns}; primary health on {p_addr}, secondary on {s_addr}");
    println!(
        "profile: priority, interval 1s, timeout 500ms, tolerated_failures 0, required_successes 1"
    );
    if !quiet {
        println!();
    }
    until(&sock, dns, PRIMARY, Instant::now(), true).await;

    let mut rng = fastrand::Rng::new();
    let mut report = Vec::new();
    for (label, failure) in [("503", UNAVAILABLE), ("hang", HANG)] {
        let mut over = Vec::new();
        let mut back = Vec::new();
        for trial in 1..=trials {
            // Fail at a random phase of the probe cycle.
            tokio::time::sleep(INTERVAL + Duration::from_millis(rng.u64(0..1000))).await;
            if !quiet {
                println!(
                    "{label} trial {trial}: {} primary health endpoint fails",
                    clock()
                );
            }
            primary.store(failure, Ordering::SeqCst);
            over.push(until(&sock, dns, SECONDARY, Instant::now(), quiet).await);
            tokio::time::sleep(Duration::from_millis(rng.u64(0..1000))).await;
            if !quiet {
                println!(
                    "{label} trial {trial}: {} primary health endpoint restored",
                    clock()
                );
            }
            primary.store(OK, Ordering::SeqCst);
            back.push(until(&sock, dns, PRIMARY, Instant::now(), quiet).await);
        }
        report.push(drill::summary(
            &format!("failover ({label})"),
            22,
            &mut over,
        ));
        report.push(drill::summary(
            &format!("failback (after {label})"),
            22,
            &mut back,
        ));
    }
    if !quiet {
        println!();
    }
    for line in report {
        println!("{line}");
    }
    shutdown.cancel();
}
