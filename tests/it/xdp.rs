//! The AF_XDP path (`[dns.xdp]`), as root in network namespaces: the same
//! answers as the sockets, byte for byte; everything else on the interface
//! reaches the kernel; malformed frames are never answered wrongly; the
//! program goes away when the server does, `kill -9` included; a machine
//! that cannot do XDP is a clear error or a logged fallback.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};

use crate::harness::*;
use crate::netns::{Veth, skip};

/// The example's `todoapi` profile, static, with a zone holding enough
/// TXT records to truncate a 512-byte answer.
fn fixture(veth: &Veth, also: &[SocketAddr], dns_extra: &str) -> Fixture {
    let config = veth
        .config(also, "")
        .replacen("[dns.xdp]", &format!("{dns_extra}\n[dns.xdp]"), 1);
    Fixture::with_zone(
        &config,
        &zone_with_records(&big_txt_records()),
        &[("todoapi.toml", &ProfileToml::todoapi().build())],
    )
}

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// Queries covering what the answer path does: routing, CNAME chains,
/// NXDOMAIN, NSID, EDNS Client Subnet, truncation, no EDNS, FORMERR.
fn queries() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut q = |label: &'static str, m: Message| {
        let mut m = m;
        m.metadata.id = 0x5359;
        out.push((label, m.to_vec().unwrap()));
    };
    q(
        "A",
        build("todoapi.tm.example.test.", RecordType::A, Opts::default()),
    );
    q(
        "AAAA",
        build(
            "todoapi.tm.example.test.",
            RecordType::AAAA,
            Opts::default(),
        ),
    );
    q(
        "CNAME chain",
        build("www.tm.example.test.", RecordType::A, Opts::default()),
    );
    q(
        "NXDOMAIN",
        build("nope.tm.example.test.", RecordType::A, Opts::default()),
    );
    q(
        "SOA",
        build("tm.example.test.", RecordType::SOA, Opts::default()),
    );
    q(
        "no EDNS",
        build(
            "todoapi.tm.example.test.",
            RecordType::A,
            Opts {
                edns: None,
                dnssec_ok: false,
            },
        ),
    );
    q(
        "truncated",
        build(
            "big.tm.example.test.",
            RecordType::TXT,
            Opts {
                edns: None,
                dnssec_ok: false,
            },
        ),
    );
    q(
        "large",
        build("big.tm.example.test.", RecordType::TXT, Opts::default()),
    );
    let mut m = build("todoapi.tm.example.test.", RecordType::A, Opts::default());
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
        "198.51.100.0".parse().unwrap(),
        24,
        0,
    )));
    e.options_mut().insert(EdnsOption::Unknown(3, Vec::new())); // NSID
    m.set_edns(e);
    q("ECS and NSID", m);
    // Two questions promised, none there: FORMERR either way.
    out.push(("FORMERR", vec![0x53, 0x59, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0]));
    out
}

#[test]
fn answers_over_xdp_are_the_sockets_answers_byte_for_byte() {
    if skip("xdp::answers_over_xdp_are_the_sockets_answers_byte_for_byte") {
        return;
    }
    let veth = Veth::new();
    // Port 5300 is served by the sockets alone.
    let (v4, v6) = (veth.server_v4(), veth.server_v6());
    let fx = fixture(
        &veth,
        &[sa(v4, 5300), sa(v6, 5300)],
        "nsid = \"ns-xdp-test\"",
    );
    let server = TestServer::start_in(fx, veth);
    let mut sent = 0;
    for (xdp, sockets) in [(sa(v4, 53), sa(v4, 5300)), (sa(v6, 53), sa(v6, 5300))] {
        for (label, q) in queries() {
            let a = udp_raw(xdp, &q, TIMEOUT);
            let b = udp_raw(sockets, &q, TIMEOUT);
            assert!(
                b.is_some(),
                "{label} via {sockets}: no answer from the sockets"
            );
            assert_eq!(
                a, b,
                "{label}: XDP ({xdp}) and sockets ({sockets}) answered differently"
            );
            sent += 1;
        }
    }
    let Some(switchyard::state::UdpPath::Xdp(x)) = server.shared.udp_path.get() else {
        panic!("the XDP path is not running");
    };
    // A worker counts a batch once it is sent: the client may have its
    // answer a moment before.
    wait_for(
        "every query to port 53 counted as answered through XDP",
        Duration::from_secs(5),
        || x.packets()[2] == sent,
    );
    assert!(x.packets()[1] >= sent);
}

#[test]
fn other_traffic_on_the_interface_reaches_the_kernel() {
    if skip("xdp::other_traffic_on_the_interface_reaches_the_kernel") {
        return;
    }
    let veth = Veth::new();
    let (v4, v6) = (veth.server_v4(), veth.server_v6());
    let outer = veth.outer.clone();
    let fx = fixture(&veth, &[sa(v4, 5300)], "");
    let server = TestServer::start_in(fx, veth);
    // ARP and neighbour discovery answered by the kernel: UDP over both.
    assert_eq!(
        addrs(&udp(sa(v4, 53), "todoapi.tm.example.test.", RecordType::A)),
        ["203.0.113.10"]
    );
    assert_eq!(
        addrs(&udp(sa(v6, 53), "todoapi.tm.example.test.", RecordType::A)),
        ["203.0.113.10"]
    );
    let neigh = Command::new("ip")
        .args(["neigh", "show", "dev", &outer])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    assert!(
        neigh.contains(&v4.to_string()) && neigh.contains(&v6.to_string()),
        "{neigh}"
    );
    // DNS over TCP on the same address and port, the admin API over HTTP.
    assert_eq!(
        addrs(&tcp(sa(v4, 53), "todoapi.tm.example.test.", RecordType::A)),
        ["203.0.113.10"]
    );
    assert_eq!(
        addrs(&tcp(sa(v6, 53), "todoapi.tm.example.test.", RecordType::A)),
        ["203.0.113.10"]
    );
    let mut s = std::net::TcpStream::connect_timeout(&server.admin, TIMEOUT).unwrap();
    use std::io::{Read, Write};
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // UDP to another port: the kernel hands it to the socket there.
    assert_eq!(
        addrs(&udp(
            sa(v4, 5300),
            "todoapi.tm.example.test.",
            RecordType::A
        )),
        ["203.0.113.10"]
    );
    let Some(switchyard::state::UdpPath::Xdp(x)) = server.shared.udp_path.get() else {
        panic!("the XDP path is not running");
    };
    wait_for(
        "the two UDP queries to port 53 counted",
        Duration::from_secs(5),
        || x.packets()[2] >= 2,
    );
    let [passed, _, answered, _] = x.packets();
    assert_eq!(
        answered, 2,
        "only the two UDP queries to port 53 went through XDP"
    );
    assert!(passed > 0, "the program passed nothing to the kernel");
}

/// `inner`'s MAC address.
fn mac(veth: &Veth) -> String {
    let out = Command::new("ip")
        .args(["-n", &veth.ns, "link", "show", "dev", &veth.inner])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split("link/ether ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn malformed_frames_are_dropped_or_passed_never_answered_wrongly() {
    if skip("xdp::malformed_frames_are_dropped_or_passed_never_answered_wrongly") {
        return;
    }
    let veth = Veth::new();
    let (v4, v6) = (veth.server_v4(), veth.server_v6());
    let (c4, c6, outer, mac) = (
        veth.client_v4(),
        veth.client_v6(),
        veth.outer.clone(),
        mac(&veth),
    );
    let server = TestServer::start_in(fixture(&veth, &[], ""), veth);
    // Neighbours known first, so no frame waits for ARP.
    udp(sa(v4, 53), "todoapi.tm.example.test.", RecordType::A);
    udp(sa(v6, 53), "todoapi.tm.example.test.", RecordType::A);
    let mut q = build("todoapi.tm.example.test.", RecordType::A, Opts::default());
    q.metadata.id = 0x5359;
    let q = q.to_vec().unwrap();
    let hex: String = q.iter().map(|b| format!("{b:02x}")).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/xdp_frames.py");
    let out = Command::new("python3")
        .args([
            script,
            &outer,
            &mac,
            &c4.to_string(),
            &v4.to_string(),
            &c6.to_string(),
            &v6.to_string(),
            &hex,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_slice(&out.stdout).unwrap();
    let valid = &got["valid_v4"];
    assert_eq!(
        valid.len(),
        1,
        "the valid query's answer: {got:?} (seen: {})",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(got["valid_v6"], *valid, "{got:?}");
    // Passed to the kernel, which hands them to the socket: the same
    // answer (the sockets path's).
    for passed in ["ipv4_options", "ipv6_extension_header"] {
        assert_eq!(got[passed], *valid, "{passed}: {got:?}");
    }
    assert_eq!(
        got["icmp_echo"].len(),
        1,
        "ping over the XDP interface: {got:?}"
    );
    // Everything else: no answer at all.
    for (case, replies) in &got {
        if [
            "valid_v4",
            "valid_v6",
            "ipv4_options",
            "ipv6_extension_header",
            "icmp_echo",
        ]
        .contains(&case.as_str())
        {
            continue;
        }
        // A malformed DNS message gets FORMERR (as over sockets), never
        // an answer.
        if case == "garbage_dns" || case == "empty_dns" {
            assert!(
                replies
                    .iter()
                    .all(|r| r.len() <= 24 && !r.contains("cb0071")),
                "{case}: {replies:?}"
            );
            continue;
        }
        assert!(replies.is_empty(), "{case} was answered: {replies:?}");
    }
    // Still serving, and the drops were counted.
    assert_eq!(
        addrs(&udp(sa(v4, 53), "todoapi.tm.example.test.", RecordType::A)),
        ["203.0.113.10"]
    );
    let Some(switchyard::state::UdpPath::Xdp(x)) = server.shared.udp_path.get() else {
        panic!("the XDP path is not running");
    };
    wait_for("the drops to be counted", Duration::from_secs(5), || {
        x.packets()[3] >= 6
    });
}

/// Waits (bounded) until `done`.
fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_program_is_detached_when_the_server_stops_kill_9_included() {
    if skip("xdp::the_program_is_detached_when_the_server_stops_kill_9_included") {
        return;
    }
    let veth = Veth::new();
    let v4 = veth.server_v4();
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let fx = fixture(&veth, &[], "");
        let mut p = Proc::spawn(fx, &["ip", "netns", "exec", &veth.ns], &[]);
        p.wait_for_log("xdp: answering udp", Duration::from_secs(20));
        p.wait_for_log("dns listening", Duration::from_secs(20));
        assert!(veth.xdp_attached(), "no program attached:\n{}", p.log());
        assert_eq!(
            addrs(&udp(sa(v4, 53), "todoapi.tm.example.test.", RecordType::A)),
            ["203.0.113.10"]
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid() as i32), signal).unwrap();
        wait_for("the server to exit", Duration::from_secs(20), || !p.alive());
        wait_for(
            "the program to be detached",
            Duration::from_secs(10),
            || !veth.xdp_attached(),
        );
        // Nothing left behind: a query now meets no server at all (the
        // kernel has no socket on port 53 there).
        assert!(
            udp_raw(
                sa(v4, 53),
                &build("todoapi.tm.example.test.", RecordType::A, Opts::default())
                    .to_vec()
                    .unwrap(),
                Duration::from_millis(300)
            )
            .is_none()
        );
    }
}

#[test]
fn without_xdp_start_fails_naming_the_cause_or_falls_back_to_sockets() {
    if skip("xdp::without_xdp_start_fails_naming_the_cause_or_falls_back_to_sockets") {
        return;
    }
    let veth = Veth::new();
    let v4 = veth.server_v4();
    let nobody = [
        "ip",
        "netns",
        "exec",
        &veth.ns,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ];
    // Port 5353: an unprivileged user may listen there.
    let port = |c: String| c.replace(":53\"", ":5353\"");
    // No privileges: refused, naming what it needs.
    let fx = fixture(&veth, &[], "");
    std::fs::write(
        fx.config_path(),
        port(std::fs::read_to_string(fx.config_path()).unwrap()),
    )
    .unwrap();
    let mut dir_mode = std::fs::metadata(fx.dir.path()).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    dir_mode.set_mode(0o755);
    std::fs::set_permissions(fx.dir.path(), dir_mode).unwrap();
    let mut p = Proc::spawn(fx, &nobody, &[]);
    wait_for(
        "the server to refuse to start",
        Duration::from_secs(20),
        || !p.alive(),
    );
    let log = p.log();
    assert!(
        log.contains("dns.xdp") && log.contains("CAP_BPF") && log.contains("fallback"),
        "{log}"
    );
    assert!(!p.child.wait().unwrap().success());
    // With fallback = "sockets": served by sockets, and said so.
    let fx = fixture(&veth, &[], "");
    let text = port(std::fs::read_to_string(fx.config_path()).unwrap()).replacen(
        "[dns.xdp]\n",
        "[dns.xdp]\nfallback = \"sockets\"\n",
        1,
    );
    std::fs::write(fx.config_path(), text).unwrap();
    let mut dir_mode = std::fs::metadata(fx.dir.path()).unwrap().permissions();
    dir_mode.set_mode(0o755);
    std::fs::set_permissions(fx.dir.path(), dir_mode).unwrap();
    let p = Proc::spawn(fx, &nobody, &[]);
    p.wait_for_log("dns listening", Duration::from_secs(20));
    assert!(
        p.log().contains("answering with sockets alone"),
        "{}",
        p.log()
    );
    assert!(!veth.xdp_attached());
    assert_eq!(
        addrs(&udp(
            sa(v4, 5353),
            "todoapi.tm.example.test.",
            RecordType::A
        )),
        ["203.0.113.10"]
    );
    let admin = p
        .log()
        .lines()
        .find(|l| l.contains("admin API listening"))
        .and_then(|l| l.split("address=").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let out = Command::new(bin())
        .args(["status", "--admin", &admin])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("UDP: sockets (XDP did not start:"), "{text}");
    // As root, an interface that is not there: named.
    let fx = fixture(&veth, &[], "");
    let text = std::fs::read_to_string(fx.config_path()).unwrap().replacen(
        &format!("interfaces = [\"{}\"]", veth.inner),
        "interfaces = [\"nosuch0\"]",
        1,
    );
    std::fs::write(fx.config_path(), text).unwrap();
    let mut p = Proc::spawn(fx, &["ip", "netns", "exec", &veth.ns], &[]);
    wait_for(
        "the server to refuse to start",
        Duration::from_secs(20),
        || !p.alive(),
    );
    assert!(p.log().contains("no interface nosuch0"), "{}", p.log());
}

#[test]
fn check_names_file_line_and_field_of_bad_xdp_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    for (body, want) in [
        (
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n[dns.xdp]\ninterfaces = [\"eth0@x\"]\nlisten = [\"127.0.0.1:5353\"]\n",
            "dns.xdp.interfaces[0]",
        ),
        (
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n[dns.xdp]\ninterfaces = [\"eth0\"]\nlisten = [\"127.0.0.2:5353\"]\n",
            "not served by dns.listen",
        ),
        (
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n[dns.xdp]\ninterfaces = [\"eth0\"]\nlisten = [\"127.0.0.1:5353\"]\nfallback = \"maybe\"\n",
            "dns.xdp.fallback",
        ),
        (
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n[dns.xdp]\ninterfaces = [\"eth0\", \"eth0@1\"]\nlisten = [\"127.0.0.1:5353\"]\n",
            "listed twice",
        ),
        (
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n[dns.xdp]\nlisten = [\"127.0.0.1:5353\"]\n",
            "dns.xdp.interfaces",
        ),
        (
            "[dns]\nlisten = [\"127.0.0.1:5353\"]\n[dns.xdp]\ninterfaces = [\"eth0\"]\nlisten = [\"127.0.0.1:5353\"]\nqueues = 4\n",
            "unknown field `queues`",
        ),
    ] {
        std::fs::write(&path, format!("{body}[profiles]\ndir = \"profiles\"\n")).unwrap();
        std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
        let out = Command::new(bin())
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{body}: accepted");
        assert!(
            text.contains("switchyard.toml:") && text.contains(want),
            "{body}: {text}"
        );
    }
}

#[test]
fn rate_limiting_and_cookies_apply_on_the_xdp_path() {
    if skip("xdp::rate_limiting_and_cookies_apply_on_the_xdp_path") {
        return;
    }
    let veth = Veth::new();
    let v4 = veth.server_v4();
    let fx = fixture(&veth, &[], "");
    let mut text = std::fs::read_to_string(fx.config_path()).unwrap();
    text.push_str("\n[dns.rate_limit]\nresponses_per_second = 5\nslip = 2\nexempt = []\n");
    std::fs::write(fx.config_path(), text).unwrap();
    let server = TestServer::start_in(fx, veth);
    // A client cookie gets a server cookie back (RFC 7873), through XDP.
    let mut m = build("todoapi.tm.example.test.", RecordType::A, Opts::default());
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut()
        .insert(EdnsOption::Unknown(10, vec![1, 2, 3, 4, 5, 6, 7, 8]));
    m.set_edns(e);
    let raw = udp_raw(sa(v4, 53), &m.to_vec().unwrap(), TIMEOUT).expect("an answer");
    assert!(Message::from_vec(&raw).is_ok());
    // The cookie option in the reply's OPT record, read off the wire
    // (option 10: our 8 bytes, then the server's 16).
    let at = raw
        .windows(12)
        .position(|w| w[..2] == [0, 10] && w[4..12] == [1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap_or_else(|| panic!("no cookie option in {raw:?}"));
    let len = u16::from_be_bytes([raw[at + 2], raw[at + 3]]);
    assert_eq!(len, 24, "client and server cookie");
    // 60 identical queries at once, no cookie: a few answers, every
    // second one of the rest slipped (truncated), the others dropped.
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let q = build("todoapi.tm.example.test.", RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    for _ in 0..60 {
        sock.send_to(&q, sa(v4, 53)).unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.truncation {
            truncated += 1
        } else {
            full += 1
        }
    }
    assert!((1..=10).contains(&full), "full answers: {full}");
    assert!(truncated >= 10, "slipped: {truncated}");
    assert!(full + truncated < 60, "nothing dropped");
    let Some(switchyard::state::UdpPath::Xdp(x)) = server.shared.udp_path.get() else {
        panic!("the XDP path is not running");
    };
    wait_for("the drops to be counted", Duration::from_secs(5), || {
        x.packets()[3] as usize >= 60 - full - truncated
    });
}

#[test]
fn bursts_of_queries_are_answered_whole() {
    if skip("xdp::bursts_of_queries_are_answered_whole") {
        return;
    }
    let veth = Veth::new();
    let v4 = veth.server_v4();
    let fx = fixture(&veth, &[], "");
    let mut text = std::fs::read_to_string(fx.config_path()).unwrap();
    text.push_str("\n[dns.rate_limit]\nenabled = false\n");
    std::fs::write(fx.config_path(), text).unwrap();
    let server = TestServer::start_in(fx, veth);
    // More answers than the rings hold (4,096), in bursts larger than
    // what one kick of the transmit ring sends (32): every one answered.
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let q = build("todoapi.tm.example.test.", RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    let mut buf = [0u8; 2048];
    let (rounds, burst) = (40, 250);
    let mut answered = 0;
    for _ in 0..rounds {
        for _ in 0..burst {
            sock.send_to(&q, sa(v4, 53)).unwrap();
        }
        let mut got = 0;
        while got < burst && sock.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        answered += got;
    }
    let Some(switchyard::state::UdpPath::Xdp(x)) = server.shared.udp_path.get() else {
        panic!("the XDP path is not running");
    };
    assert_eq!(
        answered,
        rounds * burst,
        "answers lost; frames by action: {:?}",
        x.packets()
    );
    assert_eq!(x.packets()[3], 0, "frames dropped");
}
