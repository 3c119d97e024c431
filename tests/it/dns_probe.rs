//! The `dns` probe against a real DNS server: a second `switchyard serve`
//! (the real binary) answering a static zone on loopback. The endpoint is
//! Online while the server answers as expected and fails over when the
//! answer or the rcode changes (the backend reloaded) or the server stops,
//! over UDP and over TCP; a truncated UDP answer is asked again over TCP;
//! replies that are not ours fail precisely; `check` locates bad keys.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use switchyard::health::Status;
use switchyard::health::probe::{FailureKind, Outcome, Target};
use switchyard::snapshot::Health;

use crate::backend::wait_until;
use crate::harness::*;

/// Long enough for a reload or a few probes on a machine whose cores are
/// busy with other work.
const WITHIN: Duration = Duration::from_secs(20);

/// A loopback port free for UDP and TCP alike.
fn free_dns_port() -> u16 {
    loop {
        let port = free_port(false);
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The backend's zone, `backend.test.`, with `records` (TOML inline
/// tables, one a line, each ending in a comma).
fn backend_zone(records: &str) -> String {
    format!(
        "[[zones]]\norigin = \"backend.test.\"\nttl = 60\nns = [\"ns1.backend.test.\"]\nrecords = [\n  {{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" }},\n{records}]\n"
    )
}

/// What the backend serves while healthy.
const HEALTHY: &str = "  { name = \"check\", type = \"A\", value = \"192.0.2.1\" },\n  { name = \"status\", type = \"TXT\", value = \"ok\" },\n";

/// A real `switchyard serve` as the DNS server probed, on a fixed port (a
/// reload keeps it).
struct DnsBackend {
    proc: Proc,
    addr: SocketAddr,
}

impl DnsBackend {
    fn start(records: &str) -> DnsBackend {
        let port = free_dns_port();
        let fx = Fixture::with_zone(&Self::listen(port), &backend_zone(records), &[]);
        let proc = Proc::start(fx);
        DnsBackend {
            proc,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn listen(port: u16) -> String {
        format!("[dns]\nlisten = [\"127.0.0.1:{port}\"]\n")
    }

    /// Serves `records` from now on: rewrites the zone and reloads (SIGHUP).
    fn serve(&self, records: &str) {
        let text = config_toml_with_zone(&Self::listen(self.addr.port()), &backend_zone(records));
        std::fs::write(self.proc.dir().join("switchyard.toml"), text).unwrap();
        self.proc.signal("HUP");
    }
}

/// A profile whose primary is probed with `monitor` (dns keys) at the
/// backend and whose secondary is never probed: the answer says which
/// one the probe lets through.
fn profile(name: &str, monitor: &[(&str, &str)], backend: SocketAddr) -> String {
    let mut p = ProfileToml::new(name, "priority")
        .ttl(1)
        .set_monitor("protocol", "dns")
        .set_monitor("interval", "300ms")
        .set_monitor("timeout", "250ms")
        .set_monitor("tolerated_failures", 0)
        .set_monitor("required_successes", 1);
    for (k, v) in monitor {
        p = p.set_monitor(k, *v);
    }
    p.endpoint("primary", "203.0.113.10")
        .set_endpoint("primary", "priority", 1)
        .set_endpoint(
            "primary",
            "probe",
            Toml::raw(format!(
                "{{ address = \"127.0.0.1\", port = {} }}",
                backend.port()
            )),
        )
        .endpoint("secondary", "198.51.100.20")
        .set_endpoint("secondary", "priority", 2)
        .set_endpoint("secondary", "always_serve", true)
        .build()
}

const UDP: &str = "udp.tm.example.test.";
const TCP: &str = "tcp.tm.example.test.";

/// The primary's status and its last probe's failure reason.
fn primary(s: &TestServer, profile: &str) -> (Status, Option<String>) {
    let t = s.shared.serving.table.load();
    let p = t.profile_by_name(profile).unwrap();
    let e = t
        .endpoints_of(p)
        .iter()
        .find(|e| &*e.name == "primary")
        .unwrap();
    let reason = match &e.health {
        Health::Monitored(cell) => cell
            .details()
            .last_probe
            .and_then(|o| o.failure)
            .map(|f| f.reason),
        other => panic!("primary not monitored: {other:?}"),
    };
    (t.status(e), reason)
}

/// Waits until both profiles' primaries are `status` with these last
/// failure reasons (`None`: the last probe succeeded) and the names
/// answer `answer`; panics with what they were.
fn expect(s: &TestServer, status: Status, reasons: [Option<&str>; 2], answer: &str) {
    let state = || {
        [UDP, TCP].map(|p| {
            let (st, why) = primary(s, p);
            (st, why, addrs(&udp(s.v4(), p, RecordType::A)))
        })
    };
    let ok = wait_until(WITHIN, || {
        state().iter().zip(reasons).all(|((st, why, a), want)| {
            *st == status && why.as_deref() == want && a == &[answer.to_string()]
        })
    });
    assert!(
        ok.is_some(),
        "expected {status:?} {reasons:?} answering {answer}, got {:?}",
        state()
    );
}

#[test]
fn a_dns_endpoint_fails_over_when_its_server_answers_wrong_or_stops() {
    let backend = DnsBackend::start(HEALTHY);
    // The backend answers, over both transports, before the prober asks.
    assert_eq!(
        addrs(&udp(backend.addr, "check.backend.test.", RecordType::A)),
        ["192.0.2.1"]
    );
    assert_eq!(
        answers(&tcp(backend.addr, "status.backend.test.", RecordType::TXT)),
        ["TXT ok"]
    );
    let udp_profile = profile(
        UDP,
        &[
            ("query_name", "check.backend.test."),
            ("expected_answer", "192.0.2.1"),
        ],
        backend.addr,
    );
    let tcp_profile = profile(
        TCP,
        &[
            ("query_name", "status.backend.test"),
            ("query_type", "TXT"),
            ("transport", "tcp"),
            ("expected_rcode", "noerror"),
            ("expected_answer", "ok"),
        ],
        backend.addr,
    );
    let fx = Fixture::new(
        "",
        &[("udp.toml", &udp_profile), ("tcp.toml", &tcp_profile)],
    );
    let s = fx.start_probing();
    let (up, down) = ("203.0.113.10", "198.51.100.20");
    expect(&s, Status::Online, [None, None], up);

    // Another answer: the A record and the TXT change.
    backend.serve(
        "  { name = \"check\", type = \"A\", value = \"192.0.2.9\" },\n  { name = \"status\", type = \"TXT\", value = \"draining\" },\n",
    );
    expect(
        &s,
        Status::Degraded,
        [
            Some("no answer 192.0.2.1 (got 192.0.2.9)"),
            Some("no answer ok (got draining)"),
        ],
        down,
    );
    backend.serve(HEALTHY);
    expect(&s, Status::Online, [None, None], up);

    // Another rcode: both names gone.
    backend.serve("");
    let nx = Some("rcode NXDOMAIN (expected NOERROR)");
    expect(&s, Status::Degraded, [nx, nx], down);
    backend.serve(HEALTHY);
    expect(&s, Status::Online, [None, None], up);

    // The server stops: UDP hears the ICMP port unreachable, TCP a refusal.
    drop(backend.proc.kill());
    expect(
        &s,
        Status::Degraded,
        [Some("port unreachable"), Some("connect refused")],
        down,
    );
}

/// The probe of a one-endpoint profile with `monitor` lines, built as the
/// prober builds it.
fn target(monitor: &str, server: SocketAddr) -> (Target, Fixture) {
    let profile = format!(
        "name = \"p.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"dns\"\ninterval = \"1s\"\ntimeout = \"400ms\"\nport = {}\n{monitor}\n[[endpoints]]\nname = \"e\"\ntarget = \"{}\"\n",
        server.port(),
        server.ip()
    );
    let fx = Fixture::new("", &[("p.toml", &profile)]);
    let config = switchyard::config::load(&fx.config_path()).unwrap_or_else(|e| panic!("{e}"));
    (Target::new(&config.probes[0], None).unwrap(), fx)
}

fn failure(o: &Outcome) -> (FailureKind, &str) {
    let f = o
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("probe succeeded: {o:?}"));
    (f.kind, f.reason.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    // Twelve 200-byte TXT records do not fit in 1232 bytes; the one the
    // probe looks for is the last.
    let mut records = String::new();
    for i in 0..12 {
        let text = format!("{i:02}{}", "x".repeat(198));
        records.push_str(&format!(
            "  {{ name = \"big\", type = \"TXT\", value = \"{text}\" }},\n"
        ));
    }
    records.push_str("  { name = \"big\", type = \"TXT\", value = \"needle\" },\n");
    let backend = DnsBackend::start(&records);
    // Over UDP alone the answer is truncated, and without its records.
    let direct = udp(backend.addr, "big.backend.test.", RecordType::TXT);
    assert!(direct.metadata.truncation);
    assert!(direct.answers.is_empty());
    let (t, _fx) = target(
        "query_name = \"big.backend.test.\"\nquery_type = \"TXT\"\nexpected_answer = \"needle\"",
        backend.addr,
    );
    let o = t.run().await;
    assert!(o.is_success(), "{o:?}");
    // Over TCP the answer is whole: the probe found the record or names
    // what it got instead.
    let (t, _fx) = target(
        "query_name = \"big.backend.test.\"\nquery_type = \"TXT\"\nexpected_answer = \"haystack\"",
        backend.addr,
    );
    let o = t.run().await;
    let (kind, reason) = failure(&o);
    assert_eq!(kind, FailureKind::Body);
    assert!(
        reason.starts_with("no answer haystack (got 00xxx") && reason.ends_with(", 10 more)"),
        "{reason}"
    );
}

/// A UDP peer on 127.0.0.1 that answers each query with what `reply`
/// makes of it.
fn udp_peer(reply: fn(&[u8]) -> Option<Vec<u8>>) -> SocketAddr {
    udp_peer_on("127.0.0.1:0", reply)
}

fn udp_peer_on(bind: &str, reply: fn(&[u8]) -> Option<Vec<u8>>) -> SocketAddr {
    let sock = UdpSocket::bind(bind).unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if let Some(r) = reply(&buf[..n]) {
                let _ = sock.send_to(&r, from);
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_that_are_not_ours_fail_precisely() {
    let backend = DnsBackend::start(HEALTHY);
    let server = backend.addr;
    // The real server, asked what it does not serve.
    let refused = "query_name = \"elsewhere.example.\"";
    let servfail_expected = "query_name = \"check.backend.test.\"\nexpected_rcode = \"SERVFAIL\"";
    // Peers that answer wrongly, or not at all.
    let garbage = udp_peer(|_| Some(b"this is not DNS".to_vec()));
    let wrong_id = udp_peer(|q| {
        let mut r = q.to_vec();
        r[0] ^= 0xff;
        r[2] |= 0x80;
        Some(r)
    });
    let echo = udp_peer(|q| Some(q.to_vec()));
    let silent = udp_peer(|_| None);
    let check = "query_name = \"check.backend.test.\"";
    let cases: [(&str, SocketAddr, FailureKind, &str); 6] = [
        (
            refused,
            server,
            FailureKind::Status,
            "rcode REFUSED (expected NOERROR)",
        ),
        (
            servfail_expected,
            server,
            FailureKind::Status,
            "rcode NOERROR (expected SERVFAIL)",
        ),
        (check, garbage, FailureKind::Protocol, "malformed reply"),
        (
            check,
            wrong_id,
            FailureKind::Protocol,
            "malformed reply (wrong id)",
        ),
        (
            check,
            echo,
            FailureKind::Protocol,
            "malformed reply (not a response)",
        ),
        (check, silent, FailureKind::Timeout, "timeout"),
    ];
    for (monitor, addr, kind, reason) in cases {
        let (t, _fx) = target(monitor, addr);
        let start = Instant::now();
        let o = t.run().await;
        assert_eq!(failure(&o), (kind, reason), "{monitor} at {addr}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{reason} took {:?}",
            start.elapsed()
        );
    }
    // The least a server may answer: the query back with QR set (NOERROR,
    // no records), here over IPv6.
    let minimal = udp_peer_on("[::1]:0", |q| {
        let mut r = q.to_vec();
        r[2] |= 0x80;
        r[10..12].copy_from_slice(&[0, 0]);
        r.truncate(r.len() - 11); // without our OPT record
        Some(r)
    });
    let (t, _fx) = target(check, minimal);
    let o = t.run().await;
    assert!(o.is_success(), "{o:?}");
    // And the right question, right answer, over both transports.
    for transport in ["udp", "tcp"] {
        let (t, _fx) = target(
            &format!("{check}\ntransport = \"{transport}\"\nexpected_answer = \"192.0.2.1\""),
            server,
        );
        let o = t.run().await;
        assert!(o.is_success(), "{transport}: {o:?}");
    }
}

#[test]
fn check_locates_every_bad_dns_key() {
    let profile = "name = \"p.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"dns\"\nquery_name = \"check.example.test.\"\nquery_type = \"AXFR\"\ntransport = \"quic\"\nexpected_rcode = \"FINE\"\npath = \"/health\"\nexpected_status = [200]\n[[endpoints]]\nname = \"e\"\ntarget = \"192.0.2.1\"\n";
    let other = "name = \"q.tm.example.test.\"\nrouting = \"priority\"\n[monitor]\nprotocol = \"http\"\nquery_name = \"check.example.test.\"\n[[endpoints]]\nname = \"e\"\ntarget = \"192.0.2.1\"\n";
    let fx = Fixture::new("", &[("p.toml", profile), ("q.toml", other)]);
    let out = Command::new(bin())
        .arg("check")
        .arg("--config")
        .arg(fx.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    for want in [
        "p.toml:6:14: monitor.query_type: `AXFR` is not a type a query asks for",
        "p.toml:7:13: monitor.transport: unknown transport `quic` (expected udp or tcp)",
        "p.toml:8:18: monitor.expected_rcode: unknown rcode `FINE` (expected one of NOERROR,",
        "p.toml:9:8: monitor.path: dns probes have no path",
        "p.toml:10:19: monitor.expected_status: dns probes have no HTTP status",
        "q.toml:5:14: monitor.query_name: only dns probes ask a question: this needs protocol = \"dns\"",
    ] {
        assert!(out.contains(want), "no `{want}` in:\n{out}");
    }
}
