//! Response rate limiting and DNS cookies over real UDP: a reflector that
//! answers anything, a client over the rate, cookies from dig and kdig.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::*;

const NAME: &str = "todoapi.tm.example.test.";

fn limited(extra: &str) -> TestServer {
    Fixture::new(&limits(extra), &[("todoapi.toml", TODOAPI)]).start()
}

/// The server config of [`limited`]: rate limiting with nobody exempt,
/// `extra` going on in `[dns.rate_limit]`.
fn limits(extra: &str) -> String {
    format!(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n[dns.rate_limit]\nexempt = []\n{extra}"
    )
}

/// A service that answers every datagram with a line of text (QOTD,
/// chargen, a TFTP error...) on `port` (0: any).
fn reflector(port: u16, server: SocketAddr, run_for: Duration) -> Option<Arc<AtomicUsize>> {
    let sock = UdpSocket::bind(("127.0.0.1", port)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let quote = b"Quote of the day: the answer is always yes, to anyone.\r\n";
    sock.send_to(quote, server).unwrap();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        while start.elapsed() < run_for {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                count.fetch_add(1, Ordering::Relaxed);
                let _ = sock.send_to(quote, from);
            }
        }
    });
    Some(seen)
}

/// One spoofed packet from a service that answers anything cannot start a
/// loop that lasts: the error replies stop within a few packets. With the
/// default settings, loopback (exempt for answers) included.
#[test]
fn a_reflector_that_answers_everything_stops_within_a_few_packets() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let seen = reflector(0, s.v4(), Duration::from_secs(2)).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let n = seen.load(Ordering::Relaxed);
    assert!(n <= 25, "the loop went on: {n} packets in 2 s");
    assert!(n >= 1, "the first junk packet gets a FORMERR");
    // A well-known "answers anything" port is never answered at all (needs
    // root to bind it).
    if let Some(seen) = reflector(17, s.v4(), Duration::from_millis(500)) {
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(seen.load(Ordering::Relaxed), 0, "answered port 17");
    }
}

/// Sends `n` queries from one socket as fast as it can, then collects the
/// replies for a while: (full answers, truncated replies, nothing).
fn burst(addr: SocketAddr, name: &str, n: usize) -> (usize, usize, usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let q = build(name, RecordType::A, Opts::default());
    for i in 0..n {
        let mut m = q.clone();
        m.metadata.id = i as u16;
        sock.send_to(&m.to_vec().unwrap(), addr).unwrap();
    }
    let (mut full, mut tc) = (0, 0);
    let mut buf = [0u8; 4096];
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..len]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty(), "a slipped reply carries no records");
            tc += 1;
        } else {
            assert_eq!(addrs(&m), ["203.0.113.10"]);
            full += 1;
        }
    }
    (full, tc, n - full - tc)
}

#[test]
fn responses_over_the_rate_are_dropped_or_sent_truncated() {
    let s = limited("responses_per_second = 5\nslip = 2");
    let (full, tc, dropped) = burst(s.v4(), NAME, 40);
    // Five a second (ten if the burst straddles a second), the rest split
    // between drops and truncated replies.
    assert!((5..=10).contains(&full), "{full} full answers");
    assert!(
        tc >= 10 && dropped >= 10,
        "{tc} truncated, {dropped} dropped"
    );
    // Another name has its own bucket; TCP is never limited.
    let (full, _, _) = burst(s.v4(), "www.tm.example.test.", 3);
    assert_eq!(full, 3);
    for _ in 0..20 {
        assert_eq!(addrs(&tcp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
    }
    let (_, metrics) = http(s.admin, "GET", "/metrics", None);
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("switchyard_rate_limited_total{class=\"responses\",action=\"dropped\"}")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!line.ends_with(" 0"), "{line}");
}

#[test]
fn exempt_networks_and_disabled_limits() {
    let s = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n[dns.rate_limit]\nresponses_per_second = 2\n",
        &[("todoapi.toml", TODOAPI)],
    )
    .start();
    // Loopback is exempt by default.
    assert_eq!(burst(s.v4(), NAME, 30).0, 30);
    let s = limited("enabled = false\nresponses_per_second = 1");
    assert_eq!(burst(s.v4(), NAME, 30).0, 30);
}

fn dig(tool: &str, addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), NAME, "A"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}); run the tests with scripts/test.sh"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server cookie in dig's or kdig's output.
fn cookie_of(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("no cookie in:\n{out}"));
    line.split_whitespace()
        .find(|w| w.len() == 48 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("{line}"))
        .to_ascii_lowercase()
}

/// dig and kdig learn a server cookie; presenting it they are never rate
/// limited, while the same queries without it are.
#[test]
fn dig_and_kdig_cookies_exempt_clients_from_rate_limiting() {
    let s = limited("responses_per_second = 1\nslip = 0");
    let addr = s.v4();
    for tool in ["dig", "kdig"] {
        let first = dig(tool, addr, &["+cookie"]);
        assert!(first.contains("NOERROR"), "{tool}:\n{first}");
        if tool == "dig" {
            assert!(
                first.contains("(good)"),
                "dig did not like the cookie:\n{first}"
            );
        }
        let cookie = cookie_of(&first);
        let with = format!("+cookie={cookie}");
        let mut answered = 0;
        for _ in 0..15 {
            let once: &[&str] = if tool == "dig" {
                &["+tries=1", "+timeout=1"]
            } else {
                &["+retry=0", "+timeout=1"]
            };
            let mut args = vec![with.as_str()];
            args.extend_from_slice(once);
            let out = dig(tool, addr, &args);
            if out.contains("203.0.113.10") {
                answered += 1;
            }
        }
        assert_eq!(answered, 15, "{tool}: a valid cookie was rate limited");
    }
    // Without a cookie, the same client is limited.
    let (full, _, dropped) = burst(addr, NAME, 15);
    assert!(
        full <= 2 && dropped >= 13,
        "{full} answered, {dropped} dropped"
    );
}

/// RFC 7873 handling over the wire: a malformed cookie is FORMERR; a
/// rate-limited client that sent a cookie is told BADCOOKIE with a fresh
/// server cookie (not TC), and retrying with it is answered.
#[test]
fn badcookie_and_malformed_cookies() {
    let s = limited("responses_per_second = 1\nslip = 1");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let query = |cookie: &[u8]| {
        let mut q = build(NAME, RecordType::A, Opts::default())
            .to_vec()
            .unwrap();
        // The OPT is last and has no options yet: append COOKIE.
        let n = q.len();
        q[n - 2..].copy_from_slice(&((4 + cookie.len()) as u16).to_be_bytes());
        q.extend_from_slice(&[0, 10]);
        q.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
        q.extend_from_slice(cookie);
        q
    };
    let ask = |pkt: &[u8]| {
        sock.send_to(pkt, s.v4()).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("a reply");
        buf[..n].to_vec()
    };
    let r = ask(&query(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(r[3] & 0xF, 1, "FORMERR for a 9-byte cookie");
    let client = [7u8; 8];
    // Exhaust the rate with client-only cookies: the limited reply is
    // BADCOOKIE (header rcode 7, OPT extended rcode 1) with a cookie.
    let mut server = None;
    for _ in 0..5 {
        let r = ask(&query(&client));
        let m = Message::from_vec(&r).unwrap();
        if r[3] & 0xF == 7 {
            assert!(m.answers.is_empty() && !m.metadata.truncation);
            let opt = &r[r.len() - 28..];
            assert_eq!(opt[..4], [0, 10, 0, 24], "COOKIE option");
            assert_eq!(opt[4..12], client);
            assert_eq!(r[r.len() - 28 - 6], 1, "extended rcode: BADCOOKIE = 23");
            server = Some(opt[12..].to_vec());
            break;
        }
    }
    let server = server.expect("no BADCOOKIE while over the rate");
    // Retrying with the server cookie is answered, however often.
    let mut full = client.to_vec();
    full.extend_from_slice(&server);
    for _ in 0..10 {
        let m = Message::from_vec(&ask(&query(&full))).unwrap();
        assert_eq!(addrs(&m), ["203.0.113.10"]);
    }
}

/// Rotating the configured secret keeps clients that hold a cookie made
/// with the previous one; the one before that is no longer accepted.
#[test]
fn cookie_secret_rotation_keeps_current_clients() {
    let secret = |hex: &str| {
        format!("responses_per_second = 1\nslip = 0\n[dns.cookies]\nsecret = \"{hex}\"")
    };
    let s = limited(&secret("000102030405060708090a0b0c0d0e0f"));
    let addr = s.v4();
    let first = cookie_of(&dig("dig", addr, &["+cookie"]));
    let answered = |cookie: &str| {
        // Exhaust the rate first, so only a valid cookie gets through.
        burst(addr, NAME, 3);
        dig(
            "dig",
            addr,
            &[&format!("+cookie={cookie}"), "+tries=1", "+timeout=1"],
        )
        .contains("203.0.113.10")
    };
    assert!(answered(&first));
    let config = s.dir().join("switchyard.toml");
    let rotate = |hex: &str| {
        let text = config_toml(&limits(&secret(hex)));
        std::fs::write(&config, text).unwrap();
    };
    rotate("101112131415161718191a1b1c1d1e1f");
    let (code, body) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200, "{body}");
    assert!(answered(&first), "the previous secret's cookie was refused");
    let second = cookie_of(&dig("dig", addr, &[&format!("+cookie={first}")]));
    assert_ne!(first, second, "a cookie from the old secret is renewed");
    rotate("202122232425262728292a2b2c2d2e2f");
    let (code, _) = http(s.admin, "POST", "/api/v1/reload", None);
    assert_eq!(code, 200);
    assert!(answered(&second));
    assert!(!answered(&first), "a cookie two secrets old was accepted");
}

/// Varying the query type does not escape the limit: a CNAME answers every
/// type alike and is counted by its own type, NODATA per name.
#[test]
fn varying_the_query_type_does_not_escape_the_limit() {
    let s = limited("responses_per_second = 5\nslip = 0");
    for name in ["www.tm.example.test.", "ns1.tm.example.test."] {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        for t in 0..40u16 {
            let mut m = build(name, RecordType::Unknown(1000 + t), Opts::default());
            m.metadata.id = t;
            sock.send_to(&m.to_vec().unwrap(), s.v4()).unwrap();
        }
        let mut answered = 0;
        let mut buf = [0u8; 4096];
        while sock.recv_from(&mut buf).is_ok() {
            answered += 1;
        }
        // The rate is answered, and no more (a server that answers nothing
        // must not pass).
        assert!(
            (5..=10).contains(&answered),
            "{name}: {answered} of 40 answered"
        );
    }
}

/// Random names are NXDOMAINs to rate limiting whatever the rcode says: a
/// signed zone's compact denial answers NOERROR (RFC 9824), and each one
/// costs a signature. Wildcard answers count under the wildcard's name,
/// not each name asked (issue 12, found by an adversarial review).
#[test]
fn compact_denials_and_wildcards_do_not_escape_the_limit() {
    let zone = zone_with_records("  { name = \"*.wild\", type = \"TXT\", value = \"w\" },\n")
        + "dnssec = { key = { file = \"keys/tm.key\" } }\n";
    let fx = Fixture::with_zone(
        &limits("nxdomains_per_second = 5\nresponses_per_second = 5\nslip = 0"),
        &zone,
        &[],
    );
    let out = Command::new(bin())
        .args(["dnssec", "keygen", "--zone", "tm.example.test.", "--out"])
        .arg(fx.dir.path().join("keys/tm.key"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let s = fx.start();
    for (suffix, t, dnssec_ok) in [
        ("tm.example.test.", RecordType::A, true),
        ("tm.example.test.", RecordType::A, false),
        ("wild.tm.example.test.", RecordType::TXT, true),
        ("wild.tm.example.test.", RecordType::TXT, false),
    ] {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        for i in 0..60u16 {
            let opts = Opts {
                edns: Some(1232),
                dnssec_ok,
            };
            let mut m = build(&format!("r{i}x{}.{suffix}", u8::from(dnssec_ok)), t, opts);
            m.metadata.id = i;
            sock.send_to(&m.to_vec().unwrap(), s.v4()).unwrap();
        }
        let mut answered = 0;
        let mut buf = [0u8; 4096];
        while sock.recv_from(&mut buf).is_ok() {
            answered += 1;
        }
        // The first round of each suffix has a fresh bucket: its rate is
        // answered (a server that answers nothing must not pass); the
        // second shares the bucket, maybe within the same second.
        let floor = if dnssec_ok { 5 } else { 0 };
        assert!(
            (floor..=10).contains(&answered),
            "{suffix} DO={dnssec_ok}: {answered} of 60 random names answered"
        );
    }
}

/// Sends 1,600 queries a second from one socket for `ticks` x 10 ms: 16
/// names (n0..n15), one query each every 10 ms. Returns (sent, full answers,
/// truncated, seconds spanned, elapsed).
fn rotate(s: &TestServer, ticks: u32) -> (usize, usize, usize, usize, Duration) {
    let queries: Vec<Vec<u8>> = (0..16)
        .map(|i| {
            build(
                &format!("n{i}.tm.example.test."),
                RecordType::A,
                Opts::default(),
            )
            .to_vec()
            .unwrap()
        })
        .collect();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let reader = sock.try_clone().unwrap();
    let replies = std::thread::spawn(move || {
        let (mut full, mut tc) = (0usize, 0usize);
        let mut buf = [0u8; 4096];
        while let Ok((len, _)) = reader.recv_from(&mut buf) {
            let m = Message::from_vec(&buf[..len]).unwrap();
            if m.metadata.truncation {
                tc += 1;
            } else {
                assert_eq!(m.answers.len(), 1);
                full += 1;
            }
        }
        (full, tc)
    });
    // 1,600 a second: 16 queries, one per name, every 10 ms.
    let start = Instant::now();
    for t in 0..ticks {
        let due = start + Duration::from_millis(10) * t;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for (i, q) in queries.iter().enumerate() {
            let mut q = q.clone();
            q[..2].copy_from_slice(&((t as usize * 16 + i) as u16).to_be_bytes());
            sock.send_to(&q, s.v4()).unwrap();
        }
    }
    let sent = ticks as usize * 16;
    let seconds = start.elapsed().as_secs_f64().ceil() as usize;
    let (full, tc) = replies.join().unwrap();
    (sent, full, tc, seconds, start.elapsed())
}

/// A zone with records n0..n15 (for [`rotate`]).
fn sixteen_names(limits: &str) -> TestServer {
    let records: String = (0..16)
        .map(|i| format!("  {{ name = \"n{i}\", type = \"A\", value = \"192.0.2.{i}\" }},\n"))
        .collect();
    Fixture::with_zone(limits, &zone_with_records(&records), &[]).start()
}

/// Unset, the total follows `responses_per_second` (ten times it): an
/// operator who raises the rate for a busy resolver network is not capped
/// by a fixed total of 1,000 (it was, and sent truncated replies).
#[test]
fn the_default_total_follows_the_rate() {
    let s = sixteen_names(&limits("responses_per_second = 5000\nslip = 2"));
    let (sent, full, tc, _, _) = rotate(&s, 100);
    assert_eq!((full, tc), (sent, 0), "every query answered in full");
}

/// Issue 20 item 10: the per-network total (`total_per_second`, as BIND's
/// `all-per-second`). One network asking 16 names in turn at 1,600 q/s
/// stays within the per-name rate, so before the total it got every
/// answer; with `total_per_second = 200` it gets at most 200 full answers
/// a second, and the rest truncated (slip) or dropped.
#[test]
fn a_network_gets_at_most_its_total_of_answers_a_second() {
    let s = sixteen_names(&limits(
        "responses_per_second = 1000\ntotal_per_second = 200\nslip = 2",
    ));
    let (sent, full, tc, seconds, elapsed) = rotate(&s, 300);
    let dropped = sent - full - tc;
    eprintln!(
        "{sent} queries in {:.2} s: {full} full answers, {tc} truncated, {dropped} dropped",
        elapsed.as_secs_f64()
    );
    // The sending spans `seconds` (or one more) of the limiter's seconds.
    assert!(
        full <= 200 * (seconds + 1),
        "{full} full answers in {seconds} s"
    );
    assert!(
        full >= 200 * (seconds - 1),
        "over-limited: {full} in {seconds} s"
    );
    assert!(tc > 0 && dropped > 0, "{tc} truncated, {dropped} dropped");
    let (_, metrics) = http(s.admin, "GET", "/metrics", None);
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("switchyard_rate_limited_total{class=\"total\",action=\"slipped\"}")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!line.ends_with(" 0"), "{line}");
}
