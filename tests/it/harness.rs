//! Starts the real server from a config written to a temporary directory,
//! and a small DNS client: hickory-proto builds and reads messages, std
//! sockets carry them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use tokio_util::sync::CancellationToken;

use switchyard::app::{Options, Server};
use switchyard::health::Status;
use switchyard::snapshot::Health;
use switchyard::state::Shared;

/// How long a client waits for any reply.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The zone most tests use, up to its records.
const ZONE_HEAD: &str = r#"
[[zones]]
origin = "tm.example.test."
ttl = 3600
ns = ["ns1.tm.example.test.", "ns2.tm.example.test."]
soa = { mname = "ns1.tm.example.test.", rname = "hostmaster.example.test.", serial = 2026112301, refresh = 3600, retry = 600, expire = 1209600, minimum = 60 }
records = [
"#;

/// The records of the zone most tests use, and the end of the zone.
const ZONE_RECORDS: &str = r#"  { name = "ns1", type = "A", value = "192.0.2.53" },
  { name = "ns2", type = "AAAA", value = "2001:db8::53" },
  { name = "www", type = "CNAME", value = "todoapi.tm.example.test." },
  { name = "alias", type = "CNAME", value = "www" },
  { name = "dangling", type = "CNAME", value = "missing.tm.example.test." },
  { name = "external", type = "CNAME", value = "api.example.com." },
  { name = "deep.ent", type = "A", value = "192.0.2.60" },
  { name = "@", type = "MX", value = "10 mail" },
  { name = "mail", type = "A", value = "192.0.2.25" },
  { name = "@", type = "TXT", value = "v=spf1 -all" },
  { name = "@", type = "CAA", value = "0 issue \"letsencrypt.org\"" },
  { name = "_sip._tcp", type = "SRV", value = "10 60 5060 sip" },
  { name = "sip", type = "AAAA", value = "2001:db8::5060" },
  { name = "v6only", type = "AAAA", value = "2001:db8::6" },
  { name = "delegated", type = "NS", value = "ns1.other.example." },
]
"#;

/// The zone most tests use, with `records` (TOML inline tables, one a line,
/// each ending in a comma) before its own.
pub fn zone_with_records(records: &str) -> String {
    format!("{ZONE_HEAD}{records}{ZONE_RECORDS}")
}

/// `big.tm.example.test`: 20 TXT records, an answer of about 1,200
/// bytes, beyond a 512-byte limit and a small link's MTU.
pub fn big_txt_records() -> String {
    (0..20)
        .map(|i| {
            format!(
                "  {{ name = \"big\", type = \"TXT\", value = \"text record number {i:02} padding the answer out\" }},\n"
            )
        })
        .collect()
}

/// The seed profile: primary and secondary, priority routing, monitored.
pub const TODOAPI: &str = r#"
name = "todoapi.tm.example.test."
routing = "priority"
ttl = 30
[monitor]
protocol = "https"
path = "/Health/{key}"
key = "test-key"
interval = "10s"
timeout = "5s"
[[endpoints]]
name = "primary"
target = "203.0.113.10"
priority = 1
[[endpoints]]
name = "secondary"
target = "198.51.100.20"
priority = 2
"#;

/// A TOML value as written in a file: `"text".into()` is a quoted string,
/// numbers and booleans are written as they are, `["a", "b"]` is an array
/// of strings, and [`Toml::raw`] takes any other TOML (inline tables).
#[derive(Clone, Debug)]
pub struct Toml(String);

impl Toml {
    /// TOML text written as given.
    pub fn raw(text: impl Into<String>) -> Toml {
        Toml(text.into())
    }
}

impl std::fmt::Display for Toml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Toml {
    fn from(s: &str) -> Toml {
        let mut quoted = String::from('"');
        for c in s.chars() {
            match c {
                '"' | '\\' => {
                    quoted.push('\\');
                    quoted.push(c);
                }
                c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
                c => quoted.push(c),
            }
        }
        quoted.push('"');
        Toml(quoted)
    }
}

impl From<String> for Toml {
    fn from(s: String) -> Toml {
        Toml::from(s.as_str())
    }
}

impl From<i64> for Toml {
    fn from(n: i64) -> Toml {
        Toml(n.to_string())
    }
}

impl From<bool> for Toml {
    fn from(b: bool) -> Toml {
        Toml(b.to_string())
    }
}

impl<const N: usize> From<[&str; N]> for Toml {
    fn from(items: [&str; N]) -> Toml {
        let items: Vec<String> = items.iter().map(|i| Toml::from(*i).0).collect();
        Toml(format!("[{}]", items.join(", ")))
    }
}

/// A profile for tests, written as TOML: the top-level keys in the order
/// first set, then `[monitor]`, then each `[[endpoints]]` with its name
/// first. Setting a key again changes its value in place.
///
/// The text starts with an empty line, as the `r#"` fixtures do, so
/// `ProfileToml::todoapi().build()` is [`TODOAPI`] to the byte and errors
/// are located on the same lines.
#[derive(Clone, Debug)]
pub struct ProfileToml {
    top: Vec<(String, Toml)>,
    monitor: Vec<(String, Toml)>,
    /// Each endpoint's name and its other keys.
    endpoints: Vec<(String, Vec<(String, Toml)>)>,
}

impl ProfileToml {
    /// A profile with a name and routing method, no monitor, no endpoints.
    pub fn new(name: &str, routing: &str) -> ProfileToml {
        ProfileToml {
            top: vec![
                ("name".into(), name.into()),
                ("routing".into(), routing.into()),
            ],
            monitor: Vec::new(),
            endpoints: Vec::new(),
        }
    }

    /// The profile of [`TODOAPI`].
    pub fn todoapi() -> ProfileToml {
        ProfileToml::new("todoapi.tm.example.test.", "priority")
            .ttl(30)
            .set_monitor("protocol", "https")
            .set_monitor("path", "/Health/{key}")
            .set_monitor("key", "test-key")
            .set_monitor("interval", "10s")
            .set_monitor("timeout", "5s")
            .endpoint("primary", "203.0.113.10")
            .set_endpoint("primary", "priority", 1)
            .endpoint("secondary", "198.51.100.20")
            .set_endpoint("secondary", "priority", 2)
    }

    /// The todoapi profile (primary, secondary; priority; TTL 1) probed
    /// over HTTP at `/health` on loopback backends every 250 ms, deciding
    /// on one probe either way: for tests with the real prober. The 200 ms
    /// timeout leaves room for a busy machine: a probe that times out
    /// takes a healthy endpoint out on its own.
    pub fn todoapi_probed(primary: u16, secondary: u16) -> ProfileToml {
        let probe = |port: u16| Toml::raw(format!("{{ address = \"127.0.0.1\", port = {port} }}"));
        ProfileToml::new("todoapi.tm.example.test.", "priority")
            .ttl(1)
            .set_monitor("protocol", "http")
            .set_monitor("path", "/health")
            .set_monitor("interval", "250ms")
            .set_monitor("timeout", "200ms")
            .set_monitor("tolerated_failures", 0)
            .set_monitor("required_successes", 1)
            .endpoint("primary", "203.0.113.10")
            .set_endpoint("primary", "priority", 1)
            .set_endpoint("primary", "probe", probe(primary))
            .endpoint("secondary", "198.51.100.20")
            .set_endpoint("secondary", "priority", 2)
            .set_endpoint("secondary", "probe", probe(secondary))
    }

    /// Sets the TTL.
    pub fn ttl(self, ttl: i64) -> ProfileToml {
        self.set("ttl", ttl)
    }

    /// Sets a top-level key.
    pub fn set(mut self, key: &str, value: impl Into<Toml>) -> ProfileToml {
        put(&mut self.top, key, value.into());
        self
    }

    /// Sets a key of `[monitor]`.
    pub fn set_monitor(mut self, key: &str, value: impl Into<Toml>) -> ProfileToml {
        put(&mut self.monitor, key, value.into());
        self
    }

    /// Adds an endpoint.
    pub fn endpoint(mut self, name: &str, target: &str) -> ProfileToml {
        self.endpoints
            .push((name.into(), vec![("target".into(), target.into())]));
        self
    }

    /// Sets a key of the endpoint called `name`.
    pub fn set_endpoint(mut self, name: &str, key: &str, value: impl Into<Toml>) -> ProfileToml {
        let (_, keys) = self
            .endpoints
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no endpoint {name} in the profile"));
        put(keys, key, value.into());
        self
    }

    /// The profile file's text.
    pub fn build(&self) -> String {
        let mut out = String::from("\n");
        write_keys(&mut out, &self.top);
        if !self.monitor.is_empty() {
            out.push_str("[monitor]\n");
            write_keys(&mut out, &self.monitor);
        }
        for (name, keys) in &self.endpoints {
            out.push_str("[[endpoints]]\n");
            out.push_str(&format!("name = {}\n", Toml::from(name.as_str())));
            write_keys(&mut out, keys);
        }
        out
    }
}

/// Sets `key` in `keys`: in place if it is there, else last.
fn put(keys: &mut Vec<(String, Toml)>, key: &str, value: Toml) {
    match keys.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => keys.push((key.into(), value)),
    }
}

/// Writes `key = value` lines.
fn write_keys(out: &mut String, keys: &[(String, Toml)]) {
    for (key, value) in keys {
        out.push_str(&format!("{key} = {value}\n"));
    }
}

/// The `switchyard.toml` [`Fixture::new`] writes for `extra`: written
/// again with another `extra`, it changes the server config for a reload.
pub fn config_toml(extra: &str) -> String {
    config_toml_with_zone(extra, &zone_with_records(""))
}

/// The `switchyard.toml` a [`Fixture`] writes: listening on ephemeral
/// loopback ports (unless `extra` has a `[dns]` or `[admin]` table), with
/// `extra` before the profiles directory and `zone`.
pub fn config_toml_with_zone(extra: &str, zone: &str) -> String {
    let dns = if extra.contains("[dns]") {
        String::new()
    } else {
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n".to_string()
    };
    let admin = if extra.contains("[admin]") {
        String::new()
    } else {
        "[admin]\nlisten = \"127.0.0.1:0\"\n".to_string()
    };
    // Top-level keys of `extra` must come before any [table].
    let split = extra
        .lines()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(extra.lines().count());
    let top: Vec<&str> = extra.lines().take(split).collect();
    let rest: Vec<&str> = extra.lines().skip(split).collect();
    let (top, rest) = (top.join("\n"), rest.join("\n"));
    let top = if top.is_empty() { top } else { top + "\n" };
    format!("{top}{dns}{rest}\n[profiles]\ndir = \"profiles\"\n{zone}\n{admin}")
}

/// A server config and profiles written to a temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// Writes `switchyard.toml` (listening on ephemeral loopback ports, with
    /// `extra` appended before the zones) and the profiles.
    pub fn new(extra: &str, profiles: &[(&str, &str)]) -> Fixture {
        Self::with_zone(extra, &zone_with_records(""), profiles)
    }

    /// Like [`Fixture::new`] with a custom zone block.
    pub fn with_zone(extra: &str, zone: &str, profiles: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        std::fs::write(
            dir.path().join("switchyard.toml"),
            config_toml_with_zone(extra, zone),
        )
        .unwrap();
        for (name, body) in profiles {
            std::fs::write(dir.path().join("profiles").join(name), body).unwrap();
        }
        Fixture { dir }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("switchyard.toml")
    }

    /// Starts the real server on this config, without the prober (tests
    /// set statuses themselves).
    pub fn start(self) -> TestServer {
        TestServer::start(self)
    }

    /// Starts the real server with the real prober.
    pub fn start_probing(self) -> TestServer {
        TestServer::start_probing(self)
    }

    /// Starts the real server (no prober) with these admin API limits.
    pub fn start_with_admin_limits(self, limits: switchyard::admin::Limits) -> TestServer {
        TestServer::start_with(self, false, limits)
    }
}

/// A running server; dropping it shuts it down.
pub struct TestServer {
    /// Keeps the config directory alive while the server runs.
    fixture: Option<Fixture>,
    pub addrs: Vec<SocketAddr>,
    pub admin: SocketAddr,
    pub shared: Arc<Shared>,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The namespace it serves in over XDP (`SWITCHYARD_TEST_XDP=1`).
    pub veth: Option<crate::netns::Veth>,
}

impl TestServer {
    fn start(fixture: Fixture) -> TestServer {
        Self::start_with(fixture, false, Default::default())
    }

    /// Starts the server with the real prober running.
    pub fn start_probing(fixture: Fixture) -> TestServer {
        Self::start_with(fixture, true, Default::default())
    }

    /// Starts the server (no prober) inside `veth`'s namespace, where its
    /// configuration (say, [`crate::netns::Veth::config`]) listens.
    pub fn start_in(fixture: Fixture, veth: crate::netns::Veth) -> TestServer {
        Self::start_in_ns(fixture, false, Default::default(), Some(veth))
    }

    fn start_with(
        fixture: Fixture,
        probing: bool,
        admin_limits: switchyard::admin::Limits,
    ) -> TestServer {
        let veth = if probing { None } else { over_xdp(&fixture) };
        Self::start_in_ns(fixture, probing, admin_limits, veth)
    }

    fn start_in_ns(
        fixture: Fixture,
        probing: bool,
        admin_limits: switchyard::admin::Limits,
        veth: Option<crate::netns::Veth>,
    ) -> TestServer {
        // SWITCHYARD_TEST_LOG=debug shows the servers' logs while debugging a test.
        if let Ok(level) = std::env::var("SWITCHYARD_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(level))
                .with_test_writer()
                .try_init();
        }
        let ns = veth.as_ref().map(|v| v.ns.clone());
        let config = switchyard::config::load(&fixture.config_path())
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        let shutdown = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let token = shutdown.clone();
        let thread = std::thread::spawn(move || {
            if let Some(ns) = ns {
                let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
                nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let options = Options {
                    probing,
                    watch: true,
                    admin: true,
                    admin_limits,
                };
                let server = Server::bind_with(config, options).unwrap();
                tx.send((
                    server.dns_addrs().to_vec(),
                    server.admin_addr().unwrap(),
                    server.shared(),
                ))
                .unwrap();
                server.run(token).await.unwrap();
            });
        });
        let (addrs, admin, shared) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server did not start");
        // Ready (listeners, prober, file watch) before the test goes on.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !shared.ready.load(std::sync::atomic::Ordering::Relaxed) {
            assert!(std::time::Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        TestServer {
            fixture: Some(fixture),
            addrs,
            admin,
            shared,
            shutdown,
            thread: Some(thread),
            veth,
        }
    }

    /// The IPv4 listener.
    pub fn v4(&self) -> SocketAddr {
        *self.addrs.iter().find(|a| a.is_ipv4()).unwrap()
    }

    /// The IPv6 listener.
    pub fn v6(&self) -> SocketAddr {
        *self.addrs.iter().find(|a| a.is_ipv6()).unwrap()
    }

    /// Sets the observed status of a monitored endpoint, as the prober would.
    pub fn set_status(&self, profile: &str, endpoint: &str, status: Status) {
        let table = self.shared.serving.table.load();
        let p = table.profile_by_name(profile).expect("no such profile");
        let ep = table
            .endpoints_of(p)
            .iter()
            .find(|e| &*e.name == endpoint)
            .expect("no such endpoint");
        match &ep.health {
            Health::Monitored(cell) => cell.set(status),
            other => panic!("{endpoint} is not monitored: {other:?}"),
        }
    }
}

impl TestServer {
    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        self.fixture
            .as_ref()
            .map(|f| f.dir.path())
            .unwrap_or(Path::new("/nonexistent"))
    }

    /// Stops the server and returns its fixture, to start it again.
    pub fn into_fixture(mut self) -> Fixture {
        self.stop();
        self.fixture.take().unwrap()
    }

    fn stop(&mut self) {
        if self.veth.is_some()
            && crate::netns::xdp_everywhere()
            && self.thread.is_some()
            && !std::thread::panicking()
        {
            // Over XDP, every UDP answer went out through it (a worker
            // counts a batch once it is sent: the client may have its
            // answer a moment before).
            let m = &self.shared.serving.metrics;
            let counts = || {
                let udp: u64 = switchyard::metrics::RCODES
                    .iter()
                    .chain([&u16::MAX])
                    .map(|c| m.queries(switchyard::dns::Transport::Udp, *c))
                    .sum();
                let xdp = match self.shared.udp_path.get() {
                    Some(switchyard::state::UdpPath::Xdp(x)) => x.packets()[2],
                    _ => panic!("SWITCHYARD_TEST_XDP=1 but the XDP path is not running"),
                };
                (udp, xdp)
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let (mut udp, mut xdp) = counts();
            while udp != xdp && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                (udp, xdp) = counts();
            }
            assert_eq!(udp, xdp, "UDP answers that did not go out through XDP");
        }
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// With `SWITCHYARD_TEST_XDP=1` as root, a fixture on the default
/// listeners moves to a namespace of its own and serves over XDP (and
/// its admin API to the namespace's address, reachable from here).
fn over_xdp(fixture: &Fixture) -> Option<crate::netns::Veth> {
    if !crate::netns::xdp_everywhere() || !crate::netns::root() {
        return None;
    }
    let path = fixture.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let dns = "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n";
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\n";
    if !text.contains(dns) || !text.contains(admin) {
        return None;
    }
    let veth = crate::netns::Veth::new();
    let (v4, v6) = (veth.server_v4(), veth.server_v6());
    let listen = format!("[dns]\nlisten = [\"{v4}:53\", \"[{v6}]:53\"]\n");
    let mut text = text.replacen(dns, &listen, 1).replacen(
        admin,
        &format!("[admin]\nlisten = \"{v4}:0\"\n"),
        1,
    );
    text.push_str(&format!(
        "\n[dns.xdp]\ninterfaces = [\"{}\"]\nlisten = [\"{v4}:53\", \"[{v6}]:53\"]\n",
        veth.inner
    ));
    // The test's client is local, as on loopback: exempt from rate
    // limiting like loopback is by default.
    if !text.contains("[dns.rate_limit]") {
        text.push_str("[dns.rate_limit]\nexempt = [\"127.0.0.0/8\", \"::1/128\", \"10.213.0.0/16\", \"fd13::/16\"]\n");
    }
    std::fs::write(&path, text).unwrap();
    Some(veth)
}

/// Query options.
#[derive(Clone, Copy)]
pub struct Opts {
    pub edns: Option<u16>,
    pub dnssec_ok: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            edns: Some(1232),
            dnssec_ok: false,
        }
    }
}

/// Builds a query message.
pub fn build(name: &str, t: RecordType, opts: Opts) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some(size) = opts.edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(opts.dnssec_ok);
        m.set_edns(e);
    }
    m
}

/// Sends raw bytes over UDP and returns the raw reply, or None on timeout.
pub fn udp_raw(addr: SocketAddr, pkt: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let bind: SocketAddr = match (addr.is_ipv4(), addr.ip().is_loopback()) {
        (true, true) => "127.0.0.1:0",
        (false, true) => "[::1]:0",
        (true, false) => "0.0.0.0:0",
        (false, false) => "[::]:0",
    }
    .parse()
    .unwrap();
    let sock = UdpSocket::bind(bind).unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.send_to(pkt, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// A UDP query with default options.
pub fn udp(addr: SocketAddr, name: &str, t: RecordType) -> Message {
    udp_opts(addr, name, t, Opts::default())
}

/// A UDP query.
pub fn udp_opts(addr: SocketAddr, name: &str, t: RecordType, opts: Opts) -> Message {
    let q = build(name, t, opts);
    let reply = udp_raw(addr, &q.to_vec().unwrap(), TIMEOUT).expect("no UDP reply");
    let m = Message::from_vec(&reply).expect("reply does not parse");
    assert_eq!(m.metadata.id, q.metadata.id, "reply id");
    m
}

/// Frames and sends messages over one TCP connection, reads `n` replies.
pub fn tcp_raw(addr: SocketAddr, pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut all = Vec::new();
    for p in pkts {
        all.extend_from_slice(&(p.len() as u16).to_be_bytes());
        all.extend_from_slice(p);
    }
    s.write_all(&all).unwrap();
    (0..pkts.len())
        .map(|_| read_frame(&mut s).expect("no TCP reply"))
        .collect()
}

/// Reads one length-prefixed message.
pub fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// A TCP query.
pub fn tcp(addr: SocketAddr, name: &str, t: RecordType) -> Message {
    let q = build(name, t, Opts::default());
    let reply = tcp_raw(addr, &[q.to_vec().unwrap()]).remove(0);
    let m = Message::from_vec(&reply).expect("reply does not parse");
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

/// The answer section rendered as `TYPE DATA` strings, in order.
pub fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect()
}

/// The A/AAAA addresses in the answer section.
pub fn addrs(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// Class helper for tests that need a non-IN class.
pub fn with_class(name: &str, t: RecordType, class: DNSClass) -> Vec<u8> {
    let mut m = Message::query();
    let mut q = Query::query(Name::from_ascii(name).unwrap(), t);
    q.set_query_class(class);
    m.add_query(q);
    m.to_vec().unwrap()
}

/// Path to the built binary (`SWITCHYARD_TEST_BIN` points the tests that
/// run it at another build, e.g. to compare with an older one).
pub fn bin() -> PathBuf {
    std::env::var_os("SWITCHYARD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_switchyard")))
}

/// The real `switchyard serve` binary as a child process on a fixture's
/// configuration, its log collected as it runs; killed when dropped.
pub struct Proc {
    pub child: std::process::Child,
    log: Arc<std::sync::Mutex<String>>,
    /// Keeps the configuration directory alive.
    fixture: Fixture,
}

impl Proc {
    /// Starts `switchyard serve` on the fixture (through `wrapper`, e.g.
    /// `prlimit`, when given) with `env` set, without waiting for it.
    pub fn spawn(fixture: Fixture, wrapper: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = std::process::Command::new(first);
                c.args(rest).arg(bin());
                c
            }
            None => std::process::Command::new(bin()),
        };
        cmd.args(["serve", "--config"])
            .arg(fixture.config_path())
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Proc {
            child,
            log,
            fixture,
        }
    }

    /// Starts the server and waits until it reports its listeners.
    pub fn start(fixture: Fixture) -> Proc {
        let p = Self::spawn(fixture, &[], &[]);
        p.wait_for_log("dns listening", Duration::from_secs(20));
        p
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        self.fixture.dir.path()
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; panics with the log if not.
    pub fn wait_for_log(&self, needle: &str, within: Duration) {
        let start = std::time::Instant::now();
        while !self.log().contains(needle) {
            if start.elapsed() > within {
                panic!(
                    "no `{needle}` in the log within {within:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The DNS addresses it logged.
    pub fn dns_addrs(&self) -> Vec<SocketAddr> {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.contains("dns listening"))
            .expect("no dns listening line");
        let list = line.split("addresses=[").nth(1).unwrap();
        let list = &list[..list.find("] ").unwrap()];
        list.split(", ").map(|a| a.parse().unwrap()).collect()
    }

    /// The IPv4 DNS address.
    pub fn v4(&self) -> SocketAddr {
        *self.dns_addrs().iter().find(|a| a.is_ipv4()).unwrap()
    }

    /// The admin API address it logged.
    pub fn admin(&self) -> SocketAddr {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.contains("admin API listening"))
            .expect("no admin API line");
        let a = line.split("address=").nth(1).unwrap();
        a.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// A field of /proc/PID/status in kB (VmRSS, VmHWM).
    pub fn status_kb(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Sends a signal by name (HUP, TERM, ...).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }
}

impl Proc {
    /// Kills the server (SIGKILL: no chance to save anything) and returns
    /// its configuration directory, to start it again.
    pub fn kill(mut self) -> Fixture {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let empty = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::mem::replace(&mut self.fixture, empty)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `addr` from the local address `from` (any port).
pub fn tcp_from(from: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.bind(&SocketAddr::new(from, 0).into())?;
    s.connect_timeout(&addr.into(), TIMEOUT)?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(TIMEOUT))?;
    Ok(s)
}

/// A query framed for TCP (length prefix).
pub fn tcp_frame(name: &str, t: RecordType) -> Vec<u8> {
    let q = build(name, t, Opts::default()).to_vec().unwrap();
    let mut f = (q.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&q);
    f
}

/// The builder writes the fixture it stands for, to the byte: tests that
/// build on it change only what they say.
#[test]
fn profile_toml_todoapi_is_the_fixture() {
    assert_eq!(ProfileToml::todoapi().build(), TODOAPI);
}

/// A port free now on 127.0.0.1 (UDP or TCP), drawn below Linux's
/// ephemeral range (32768-60999), so that servers other tests start on
/// port 0 cannot take it before the test binds it.
pub fn free_port(udp: bool) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((seed.wrapping_add(n.wrapping_mul(104_729))) % 12_000) as u16;
        let free = if udp {
            std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        } else {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
                && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
        };
        if free {
            return port;
        }
    }
}

/// One HTTP request to the admin API; returns status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    try_http(addr, method, path, token).unwrap()
}

/// [`http`] for requests that may fail to connect or be cut off.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(switchyard::admin::client::request(
        addr, method, path, token,
    ))
}

/// [`http`] for a JSON body.
pub fn json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let (code, body) = http(addr, method, path, token);
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")),
    )
}
