//! Real user measurements in a real browser: headless Chromium (installed
//! by scripts/test.sh) loads a page that embeds `/rum.js`; two "regions"
//! are HTTP servers on their own loopback addresses, the nearer one by
//! geography made slower by a fixed delay per response. After the page
//! loads, the beacon arrives and routing follows the measurements.
//!
//! The resolver mapping through a real resolver: Chromium in a network
//! namespace whose resolv.conf names an Unbound that sends the zone to
//! Switchyard, so the per-beacon name really travels browser → resolver →
//! Switchyard (root only: namespaces; skipped with a message otherwise).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::backend::wait_until;
use crate::harness::*;
use crate::rum::*;

/// A small HTTP server for pages and measurement objects: each response
/// after `delay`, `Connection: close`; stopped when dropped.
pub struct Site {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// What a [`Site`] serves: the body of `/` (HTML) and of every other path
/// (a 1-byte measurement object with `Timing-Allow-Origin: *`).
#[derive(Clone)]
pub struct Pages {
    pub index: String,
    pub delay: Duration,
}

impl Site {
    pub fn start(ip: IpAddr, pages: Pages) -> Site {
        let l = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let pages = pages.clone();
                        std::thread::spawn(move || serve_one(s, &pages));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Site { addr, stop }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_one(mut s: TcpStream, pages: &Pages) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let path = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let (ctype, body) = if path == "/" {
        ("text/html; charset=utf-8", pages.index.clone())
    } else {
        std::thread::sleep(pages.delay);
        ("text/plain", "x".to_string())
    };
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nTiming-Allow-Origin: *\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
}

/// The page an operator serves: the embed snippet, as the README shows it.
pub fn page(rum: SocketAddr) -> String {
    format!(
        "<!doctype html><html><head><title>shop</title>\n<script async src=\"http://{rum}/rum.js\" data-key=\"{KEY}\"></script>\n</head><body><h1>shop</h1></body></html>"
    )
}

/// Headless Chromium on `url` (inside network namespace `netns` when
/// given), in its own process group; the whole group is killed when
/// dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn open(url: &str, netns: Option<&str>) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "chromium"]);
                c
            }
            None => Command::new("chromium"),
        };
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-features=HttpsUpgrades,DnsOverHttps",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run chromium ({e}); run the tests with scripts/test.sh, which installs it"
            )
        });
        Browser {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `dig +short` of the profile's A record at `server`, with `+subnet=` when
/// given.
pub fn dig(server: SocketAddr, subnet: Option<&str>) -> String {
    let mut c = Command::new("dig");
    c.args(["+short", "+tries=1", "+time=2", "-p"])
        .arg(server.port().to_string())
        .arg(format!("@{}", server.ip()));
    if let Some(s) = subnet {
        c.arg(format!("+subnet={s}"));
    }
    let out = c
        .args(["app.tm.example.test.", "A"])
        .output()
        .expect("dig is not installed; run the tests with scripts/test.sh");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The server's IPv6 DNS address (a resolver address, `::1`, that no
/// beacon has mapped).
pub fn v6(p: &Proc) -> SocketAddr {
    *p.dns_addrs().iter().find(|a| a.is_ipv6()).unwrap()
}

/// Explain's chosen endpoint and steps for `ecs`, asked by `client`.
pub fn explain(p: &Proc, client: &str, ecs: &str) -> (String, String) {
    let (_, v) = json(
        p.admin(),
        "GET",
        &format!("/api/v1/explain?name=app.tm.example.test.&type=A&client={client}&ecs={ecs}"),
        None,
    );
    (v["chosen"].to_string(), v["steps"].to_string())
}

const EU: &str = "192.0.2.1";
const US: &str = "192.0.2.2";

#[test]
fn a_page_view_in_chromium_sends_its_beacon_and_routing_follows_it() {
    // 127.0.0.0/8 is in Ireland in the test database: westeurope (eu) is
    // nearer than eastus (us), and made slower.
    let eu = Site::start(
        IpAddr::from([127, 0, 0, 2]),
        Pages {
            index: String::new(),
            delay: Duration::from_millis(300),
        },
    );
    let us = Site::start(
        IpAddr::from([127, 0, 0, 3]),
        Pages {
            index: String::new(),
            delay: Duration::ZERO,
        },
    );
    let p = start(
        &format!(
            "[latency]\nmin_samples = 1\n{}",
            rum_section("127.0.0.1:0", "127.0.0.1", "")
        ),
        &profile(
            &format!("http://{}/rum.txt", eu.addr),
            &format!("http://{}/rum.txt", us.addr),
        ),
    );
    let dns = p.v4();
    assert_eq!(dig(dns, Some("127.0.0.0/24")), EU, "before: the nearest");
    let shop = Site::start(
        IpAddr::from([127, 0, 0, 1]),
        Pages {
            index: page(rum_addr(&p)),
            delay: Duration::ZERO,
        },
    );
    let _browser = Browser::open(&format!("http://{}/", shop.addr), None);
    wait_until(Duration::from_secs(40), || beacons(&p, "stored") >= 1)
        .unwrap_or_else(|| panic!("no beacon stored; log:\n{}", p.log()));
    assert_eq!(counter(&p, "switchyard_rum_samples_total"), 2);
    // The client's network now answers the faster region; one without
    // samples still the nearer.
    wait_until(Duration::from_secs(5), || {
        dig(dns, Some("127.0.0.0/24")) == US
    })
    .unwrap_or_else(|| {
        panic!(
            "127.0.0.0/24 answered {}: {:?}",
            dig(dns, Some("127.0.0.0/24")),
            explain(&p, "127.0.0.1", "127.0.0.0/24")
        )
    });
    assert_eq!(
        dig(v6(&p), Some("81.2.69.0/24")),
        EU,
        "no samples: distance"
    );
    let (chosen, steps) = explain(&p, "127.0.0.1", "127.0.0.0/24");
    assert!(chosen.contains("us"), "{chosen} {steps}");
    assert!(steps.contains("latency"), "{steps}");
    eprintln!("explain 127.0.0.0/24: {steps}");
    let (chosen, steps) = explain(&p, "::1", "81.2.69.0/24");
    assert!(chosen.contains("eu"), "{chosen} {steps}");
}

/// A network namespace with a veth pair to the host (`10.213.N.1` on the
/// host side, `.2` inside) and its own resolv.conf; deleted (with its
/// veth and resolv.conf) when dropped, whatever happened.
pub struct Netns {
    pub name: String,
    /// The host's address on the pair.
    pub host: IpAddr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// Creates it; `nameserver` goes in its resolv.conf.
    pub fn create(tag: &str) -> Netns {
        let n = (std::process::id() % 250) as u8;
        let name = format!("sy{tag}{}", std::process::id());
        let (h, c) = (format!("sy{n}{tag}h"), format!("sy{n}{tag}c"));
        let host = IpAddr::from([10, 213, n, 1]);
        // The guard first: a failure half-way still cleans up.
        let ns = Netns {
            name: name.clone(),
            host,
        };
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &h, "type", "veth", "peer", "name", &c]);
        ip(&["link", "set", &c, "netns", &name]);
        ip(&["addr", "add", &format!("10.213.{n}.1/24"), "dev", &h]);
        ip(&["link", "set", &h, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("10.213.{n}.2/24"), "dev", &c]);
        inside(&["link", "set", &c, "up"]);
        inside(&["link", "set", "lo", "up"]);
        let dir = format!("/etc/netns/{name}");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/resolv.conf"), format!("nameserver {host}\n")).unwrap();
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

#[test]
fn the_resolver_that_asks_for_the_token_is_tied_to_the_browsers_network() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!(
            "SKIPPED: needs root (network namespaces); run as root, as scripts/test.sh does in CI"
        );
        return;
    }
    let ns = Netns::create("r");
    let host = ns.host;
    let eu = Site::start(
        host,
        Pages {
            index: String::new(),
            delay: Duration::from_millis(300),
        },
    );
    let us = Site::start(
        host,
        Pages {
            index: String::new(),
            delay: Duration::ZERO,
        },
    );
    let p = start(
        &format!(
            "[latency]\nmin_samples = 1\n{}",
            rum_section(&format!("{host}:0"), &host.to_string(), "")
        ),
        &profile(
            &format!("http://{}/rum.txt", eu.addr),
            &format!("http://{}/rum.txt", us.addr),
        ),
    );
    let dns = p.v4();
    // The browser's resolver: Unbound on the host side of the pair, the
    // zone stubbed to Switchyard (which it asks from 127.0.0.1, Ireland
    // in the test database, without ECS).
    let unbound = crate::unbound::Unbound::start_on(
        SocketAddr::new(host, 53),
        &format!("  access-control: {host}/24 allow\n  cache-max-ttl: 1\n"),
        &[("tm.example.test.", dns)],
    );
    assert_eq!(dig(dns, None), EU, "before: the resolver's nearest");
    let shop = Site::start(
        host,
        Pages {
            index: page(rum_addr(&p)),
            delay: Duration::ZERO,
        },
    );
    let _browser = Browser::open(&format!("http://{}/", shop.addr), Some(&ns.name));
    wait_until(Duration::from_secs(40), || {
        counter(&p, "switchyard_rum_resolver_joins_total") >= 1
    })
    .unwrap_or_else(|| {
        panic!(
            "no beacon tied to its resolver (stored: {}); log:\n{}",
            beacons(&p, "stored"),
            p.log()
        )
    });
    // Queries from that resolver, without ECS, now get the region its
    // clients measured faster.
    wait_until(Duration::from_secs(5), || dig(unbound.addr, None) == US)
        .unwrap_or_else(|| panic!("through unbound: {}", dig(unbound.addr, None)));
    assert_eq!(
        dig(dns, None),
        US,
        "127.0.0.1 without ECS: the mapping: {:?}",
        explain(&p, "127.0.0.1", "")
    );
    // A client with no samples, through a resolver that has no mapping
    // (over IPv6, ::1): distance.
    assert_eq!(
        dig(v6(&p), Some("81.2.69.0/24")),
        EU,
        "no samples: distance"
    );
}
