//! Run with: cargo run --release --example cluster_drill [-- --trials 10 --quiet]
//!
//! A failover drill for a cluster of three name servers, on loopback only.
//! It starts three Switchyard nodes (in this process, each with its own DNS
//! and gossip sockets, gossiping at the default interval), each probing
//! from its own source address (127.0.0.2, .3, .4), and one health backend
//! that fails the probes of chosen source addresses. For each trial, at a
//! random moment, it makes the primary fail for two of the three nodes
//! (the majority), then restores it, and measures:
//!
//! - convergence: from the moment the last node needed for the quorum
//!   decided (its own probe's decision, read from its health cell) to every
//!   node answering the new endpoint over DNS;
//! - failover: from the fault to every node answering the secondary.
//!
//! Answers are polled every 5 ms on all three nodes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/drill.rs"]
mod drill;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

const NAME: &str = "todoapi.tm.example.test.";
const PRIMARY: &str = "203.0.113.10";
const SECONDARY: &str = "198.51.100.20";

/// A health endpoint that answers 503 to probes from `failing` sources.
async fn judge(failing: Arc<Mutex<HashSet<IpAddr>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, from)) = listener.accept().await else {
                continue;
            };
            let failing = failing.clone();
            tokio::spawn(async move {
                if !drill::read_head(&mut s).await {
                    return;
                }
                let fail = failing.lock().unwrap().contains(&from.ip());
                let reply: &[u8] = if fail {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
                };
                let _ = s.write_all(reply).await;
            });
        }
    });
    addr
}

/// Polls every node every 5 ms until all answer `want`; returns when.
async fn until_all(sock: &UdpSocket, nodes: &[SocketAddr], want: &str) -> SystemTime {
    let start = Instant::now();
    loop {
        let mut all = true;
        for n in nodes {
            if drill::ask(sock, *n, NAME).await != want {
                all = false;
                break;
            }
        }
        if all {
            return SystemTime::now();
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("the nodes never all answered {want}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn free_udp() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// When node `shared` last changed its own decision about the primary.
fn decided_at(shared: &switchyard::state::Shared) -> SystemTime {
    let t = shared.serving.table.load();
    let p = t.profile_by_name(NAME).unwrap();
    let ep = &t.endpoints_of(p)[0];
    match &ep.health {
        switchyard::snapshot::Health::Monitored(cell) => cell.details().own_since,
        _ => unreachable!(),
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
        .unwrap_or(10);
    let quiet = args.iter().any(|a| a == "--quiet");

    let failing: Arc<Mutex<HashSet<IpAddr>>> = Arc::default();
    let primary = judge(failing.clone()).await;
    let secondary = judge(Arc::default()).await;
    let ports: Vec<u16> = (0..3).map(|_| free_udp()).collect();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let shutdown = CancellationToken::new();
    let mut dns = Vec::new();
    let mut shared = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let seeds: Vec<String> = ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| format!("\"127.0.0.1:{p}\""))
            .collect();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        std::fs::write(
            dir.path().join("cluster.key"),
            "drill-cluster-key-0123456789\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("switchyard.toml"),
            format!(
                r#"
[dns]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[cluster]
node = "ns{n}"
listen = "127.0.0.1:{port}"
seeds = [{seeds}]
key = {{ file = "cluster.key" }}
[prober]
source_v4 = "127.0.0.{src}"
[[zones]]
origin = "tm.example.test."
ns = ["ns1.tm.example.test."]
records = [{{ name = "ns1", type = "A", value = "192.0.2.53" }}]
"#,
                n = i + 1,
                port = ports[i],
                seeds = seeds.join(", "),
                src = i + 2
            ),
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
path = "/health"
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
                primary.port(),
                secondary.port()
            ),
        )
        .unwrap();
        let config = switchyard::config::load(&dir.path().join("switchyard.toml")).unwrap();
        let server = switchyard::app::Server::bind(config).unwrap();
        dns.push(server.dns_addrs()[0]);
        shared.push(server.shared());
        tokio::spawn(server.run(shutdown.clone()));
    }
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    println!("3 nodes: DNS on {dns:?}, gossip on 127.0.0.1:{ports:?} (default interval 250 ms)");
    println!(
        "profile: priority, interval 1s, timeout 500ms, tolerated_failures 0; quorum majority (2 of 3)"
    );
    until_all(&sock, &dns, PRIMARY).await;

    let mut rng = fastrand::Rng::new();
    let (mut conv_over, mut conv_back, mut over, mut back) = (vec![], vec![], vec![], vec![]);
    for trial in 1..=trials {
        tokio::time::sleep(Duration::from_millis(1000 + rng.u64(0..1000))).await;
        let fault = SystemTime::now();
        // ns1 and ns2 (sources .2 and .3) see the primary fail.
        *failing.lock().unwrap() = ["127.0.0.2", "127.0.0.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let all = until_all(&sock, &dns, SECONDARY).await;
        let quorum = decided_at(&shared[0]).max(decided_at(&shared[1]));
        let c = all.duration_since(quorum).unwrap_or_default();
        let f = all.duration_since(fault).unwrap_or_default();
        conv_over.push(c);
        over.push(f);
        tokio::time::sleep(Duration::from_millis(500 + rng.u64(0..1000))).await;
        let restored = SystemTime::now();
        failing.lock().unwrap().clear();
        let all = until_all(&sock, &dns, PRIMARY).await;
        // Back below the quorum with the first of the two to see it up.
        let quorum = decided_at(&shared[0]).min(decided_at(&shared[1]));
        let cb = all.duration_since(quorum).unwrap_or_default();
        conv_back.push(cb);
        back.push(all.duration_since(restored).unwrap_or_default());
        if !quiet {
            println!(
                "trial {trial}: failover {} ms (quorum decided -> all nodes {} ms); failback {} ms (decided -> all nodes {} ms)",
                f.as_millis(),
                c.as_millis(),
                back.last().unwrap().as_millis(),
                cb.as_millis()
            );
        }
    }
    println!();
    println!(
        "{}",
        drill::summary("convergence (quorum -> all nodes)", 34, &mut conv_over)
    );
    println!(
        "{}",
        drill::summary("convergence on failback", 34, &mut conv_back)
    );
    println!(
        "{}",
        drill::summary("failover (fault -> all nodes)", 34, &mut over)
    );
    println!(
        "{}",
        drill::summary("failback (restored -> all nodes)", 34, &mut back)
    );
    shutdown.cancel();
}
