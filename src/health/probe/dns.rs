//! The DNS probe: one query to the endpoint's server, over UDP or TCP,
//! judged by the reply's rcode and, when one is expected, an answer.
//!
//! Each probe asks afresh from a new socket (so a new source port) with a
//! random message id, and accepts only a reply that carries that id and
//! echoes the question. A truncated UDP reply is asked again over TCP, as a
//! resolver would: a truncated answer may lack the very record the probe
//! looks for, and an rcode alone would hide that. The wire work (building
//! the query, reading the reply) is `proto::query`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::{Failure, FailureKind, Source, close_with_reset, fail, io_failure};
use crate::health::spec::{DnsQuery, ProbeSpec, Transport};
use crate::proto::query::{self, Data, Reply};

/// Largest UDP reply read. Queries advertise 1232 bytes, but a server may
/// send more (4096 is a common configured size); a larger datagram fails
/// the probe instead of being cut short by the socket.
pub const UDP_REPLY_LIMIT: usize = 4096;

/// Most answer records a failure reason lists, and most characters shown
/// of each.
const GOT_SHOWN: usize = 3;
const GOT_CHARS: usize = 64;

pub(super) struct DnsProbe {
    /// The server: address or host name, and port.
    host: String,
    port: u16,
    query: DnsQuery,
    expected: Option<Expected>,
}

/// `expected_answer`, parsed once.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expected {
    /// An address: equal to an A or AAAA record's, however written
    /// (`2001:db8::1` matches `2001:0db8:0:0::1`).
    Addr(IpAddr),
    /// Anything else: a TXT record's text exactly, or a name or other
    /// record's presentation form, compared without regard to ASCII case,
    /// spacing or a name's trailing dot.
    Text(String),
}

impl Expected {
    fn parse(text: &str) -> Expected {
        let text = text.trim();
        match text.parse::<IpAddr>() {
            Ok(ip) => Expected::Addr(ip),
            Err(_) => Expected::Text(text.to_string()),
        }
    }

    fn matches(&self, data: &Data) -> bool {
        match (self, data) {
            (Expected::Addr(want), Data::Addr(got)) => want == got,
            (Expected::Text(want), Data::Text(got)) => want == got,
            (Expected::Text(want), Data::Name(got) | Data::Other(got)) => {
                same_presentation(want, got)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Addr(ip) => write!(f, "{ip}"),
            Expected::Text(t) => f.write_str(&shown(t)),
        }
    }
}

/// Presentation forms equal word by word, ignoring ASCII case and a
/// trailing dot (`10 Mail.example.com` is `10 mail.example.com.`).
fn same_presentation(a: &str, b: &str) -> bool {
    let words = |s: &'_ str| {
        s.split_whitespace()
            .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    words(a) == words(b)
}

/// Server-sent text made safe and short for a reason: printable ASCII as
/// it is, anything else escaped, at most [`GOT_CHARS`] characters.
fn shown(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == GOT_CHARS {
            out.push_str("...");
            break;
        }
        match c {
            ' '..='~' => out.push(c),
            c => out.push_str(&c.escape_default().to_string()),
        }
    }
    out
}

/// The answers a reason lists: `192.0.2.9`, `a, b, c and 2 more`, `none`.
fn got(answers: &[Data]) -> String {
    if answers.is_empty() {
        return "none".into();
    }
    let mut list: Vec<String> = answers
        .iter()
        .take(GOT_SHOWN)
        .map(|d| shown(&d.to_string()))
        .collect();
    if answers.len() > GOT_SHOWN {
        list.push(format!("{} more", answers.len() - GOT_SHOWN));
    }
    list.join(", ")
}

/// A message id no one off the path can guess (with the fresh source port,
/// what keeps a forged reply out).
fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 2];
    match ring::rand::SystemRandom::new().fill(&mut id) {
        Ok(()) => u16::from_be_bytes(id),
        Err(_) => fastrand::u16(..),
    }
}

/// A UDP socket error: an ICMP port unreachable comes back as a refused
/// receive.
fn udp_failure(e: &std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => fail(FailureKind::Connect, "port unreachable"),
        _ => io_failure(e),
    }
}

/// A TCP read or write error: the server closing early is a protocol
/// failure, the rest as for connecting.
fn stream_failure(e: &std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => fail(
            FailureKind::Protocol,
            "malformed reply (connection closed before a complete reply)",
        ),
        _ => io_failure(e),
    }
}

impl DnsProbe {
    /// The probe of `spec`: its server, question and expectations.
    pub(super) fn new(spec: &ProbeSpec) -> Result<DnsProbe, String> {
        let query = spec
            .monitor
            .dns
            .clone()
            .ok_or("a dns probe without a query_name")?;
        let expected = query.expected_answer.as_deref().map(Expected::parse);
        Ok(DnsProbe {
            host: spec.host.clone(),
            port: spec.port,
            query,
            expected,
        })
    }

    /// Asks once, judges the reply. `Ok` when it is as expected.
    pub(super) async fn ask(&self, source: Source) -> Result<(), Failure> {
        let reply = match self.query.transport {
            Transport::Tcp => self.over_tcp(source).await?,
            Transport::Udp => {
                let reply = self.over_udp(source).await?;
                if !reply.truncated {
                    reply
                } else {
                    self.over_tcp(source).await.map_err(|f| Failure {
                        reason: format!("truncated over udp; tcp: {}", f.reason),
                        ..f
                    })?
                }
            }
        };
        self.judge(&reply)
    }

    /// The rcode, then the answer.
    fn judge(&self, reply: &Reply) -> Result<(), Failure> {
        let want = self.query.expected_rcode;
        if reply.rcode != want {
            return Err(fail(
                FailureKind::Status,
                format!(
                    "rcode {} (expected {})",
                    query::rcode_name(reply.rcode),
                    query::rcode_name(want)
                ),
            ));
        }
        match &self.expected {
            Some(e) if !reply.answers.iter().any(|d| e.matches(d)) => Err(fail(
                FailureKind::Body,
                format!("no answer {e} (got {})", got(&reply.answers)),
            )),
            _ => Ok(()),
        }
    }

    /// Reads `bytes` as the reply to the query with `id`.
    fn read(&self, bytes: &[u8], id: u16) -> Result<Reply, Failure> {
        query::read_reply(bytes, id, &self.query.name, self.query.qtype)
            .map_err(|bad| fail(FailureKind::Protocol, bad.to_string()))
    }

    async fn over_udp(&self, source: Source) -> Result<Reply, Failure> {
        let id = random_id();
        let q = query::build(id, &self.query.name, self.query.qtype);
        let socket = udp_socket(source, &self.host, self.port)
            .await
            .map_err(|e| io_failure(&e))?;
        socket.send(&q).await.map_err(|e| udp_failure(&e))?;
        // One byte more than the limit tells a datagram that did not fit.
        let mut buf = vec![0u8; UDP_REPLY_LIMIT + 1];
        let n = socket.recv(&mut buf).await.map_err(|e| udp_failure(&e))?;
        if n > UDP_REPLY_LIMIT {
            return Err(fail(
                FailureKind::Protocol,
                format!("malformed reply (over {UDP_REPLY_LIMIT} bytes)"),
            ));
        }
        self.read(&buf[..n], id)
    }

    async fn over_tcp(&self, source: Source) -> Result<Reply, Failure> {
        let id = random_id();
        let q = query::build(id, &self.query.name, self.query.qtype);
        let mut tcp = source
            .connect(&self.host, self.port)
            .await
            .map_err(|e| io_failure(&e))?;
        let _ = tcp.set_nodelay(true);
        close_with_reset(&tcp);
        // Length and message in one segment (RFC 7766 §8).
        let mut framed = Vec::with_capacity(2 + q.len());
        framed.extend_from_slice(&(q.len() as u16).to_be_bytes());
        framed.extend_from_slice(&q);
        tcp.write_all(&framed)
            .await
            .map_err(|e| stream_failure(&e))?;
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len)
            .await
            .map_err(|e| stream_failure(&e))?;
        // The two-byte length bounds the read at 64 KiB.
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        tcp.read_exact(&mut buf)
            .await
            .map_err(|e| stream_failure(&e))?;
        self.read(&buf, id)
    }
}

/// A UDP socket connected to the server (so only its datagrams arrive,
/// and an ICMP error reaches us), from the configured source address of
/// its family. A host name is resolved; its first address is used.
async fn udp_socket(source: Source, host: &str, port: u16) -> std::io::Result<UdpSocket> {
    let server = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"))?,
    };
    let from = match server {
        SocketAddr::V4(_) => IpAddr::V4(source.v4.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        SocketAddr::V6(_) => IpAddr::V6(source.v6.unwrap_or(Ipv6Addr::UNSPECIFIED)),
    };
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).await?;
    socket.connect(server).await?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::name::DomainName;
    use crate::proto::rr::rtype;

    fn probe(qtype: u16, rcode: u16, answer: Option<&str>) -> DnsProbe {
        DnsProbe {
            host: "127.0.0.1".into(),
            port: 53,
            query: DnsQuery {
                name: DomainName::parse("check.example.test.", None).unwrap(),
                qtype,
                transport: Transport::Udp,
                expected_rcode: rcode,
                expected_answer: answer.map(str::to_string),
            },
            expected: answer.map(Expected::parse),
        }
    }

    /// A server's reply to `query`, written byte by byte: the query's
    /// header and question with QR, AA and `rcode` set, and `answers`
    /// (type, RDATA) owned by the question's name (a compression pointer).
    fn reply(query: &[u8], rcode: u8, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let qend = 12 + query[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
        let mut r = query[..qend].to_vec();
        r[2] = 0x85; // QR, AA, RD
        r[3] = rcode & 0x0f;
        r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        r[10..12].copy_from_slice(&[0, 0]); // no OPT back
        for (t, rdata) in answers {
            r.extend_from_slice(&[0xc0, 12]);
            r.extend_from_slice(&t.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(rdata);
        }
        r
    }

    fn judged(p: &DnsProbe, rcode: u8, answers: &[(u16, Vec<u8>)]) -> Result<(), Failure> {
        let q = query::build(0x1234, &p.query.name, p.query.qtype);
        let reply = p.read(&reply(&q, rcode, answers), 0x1234)?;
        p.judge(&reply)
    }

    fn a(ip: [u8; 4]) -> (u16, Vec<u8>) {
        (rtype::A, ip.to_vec())
    }

    fn txt(parts: &[&str]) -> (u16, Vec<u8>) {
        let mut rd = Vec::new();
        for p in parts {
            rd.push(p.len() as u8);
            rd.extend_from_slice(p.as_bytes());
        }
        (rtype::TXT, rd)
    }

    fn reason(r: Result<(), Failure>) -> (FailureKind, String) {
        let f = r.unwrap_err();
        (f.kind, f.reason)
    }

    #[test]
    fn rcode_is_judged_first() {
        let p = probe(rtype::A, 0, None);
        assert!(
            judged(&p, 0, &[]).is_ok(),
            "NOERROR, no data: fine without an expected answer"
        );
        assert_eq!(
            reason(judged(&p, 2, &[])),
            (
                FailureKind::Status,
                "rcode SERVFAIL (expected NOERROR)".into()
            )
        );
        let nx = probe(rtype::A, 3, None);
        assert!(judged(&nx, 3, &[]).is_ok());
        assert_eq!(
            reason(judged(&nx, 0, &[a([192, 0, 2, 1])])),
            (
                FailureKind::Status,
                "rcode NOERROR (expected NXDOMAIN)".into()
            )
        );
    }

    #[test]
    fn an_expected_address_must_be_among_the_answers() {
        let p = probe(rtype::A, 0, Some("192.0.2.1"));
        assert!(judged(&p, 0, &[a([192, 0, 2, 9]), a([192, 0, 2, 1])]).is_ok());
        assert_eq!(
            reason(judged(&p, 0, &[a([192, 0, 2, 9])])),
            (
                FailureKind::Body,
                "no answer 192.0.2.1 (got 192.0.2.9)".into()
            )
        );
        assert_eq!(
            reason(judged(&p, 0, &[])).1,
            "no answer 192.0.2.1 (got none)"
        );
        let many: Vec<_> = (2..=6).map(|i| a([192, 0, 2, i])).collect();
        assert_eq!(
            reason(judged(&p, 0, &many)).1,
            "no answer 192.0.2.1 (got 192.0.2.2, 192.0.2.3, 192.0.2.4, 2 more)"
        );
        // However an IPv6 address is written.
        let v6 = probe(rtype::AAAA, 0, Some("2001:0db8:0:0::1"));
        let mut rd = vec![0x20, 0x01, 0x0d, 0xb8];
        rd.extend_from_slice(&[0; 11]);
        rd.push(1);
        assert!(judged(&v6, 0, &[(rtype::AAAA, rd)]).is_ok());
    }

    #[test]
    fn names_and_texts_match_as_a_dns_operator_writes_them() {
        let cname = probe(rtype::CNAME, 0, Some("Edge.Example.NET"));
        let target = b"\x04edge\x07example\x03net\x00".to_vec();
        assert!(judged(&cname, 0, &[(rtype::CNAME, target)]).is_ok());
        let mx = probe(rtype::MX, 0, Some("10 mail.example.test."));
        let mut rd = vec![0, 10];
        rd.extend_from_slice(b"\x04MAIL\x07example\x04test\x00");
        assert!(judged(&mx, 0, &[(rtype::MX, rd)]).is_ok());
        // TXT: the strings joined, compared exactly.
        let t = probe(rtype::TXT, 0, Some("v=spf1 -all"));
        assert!(judged(&t, 0, &[txt(&["v=spf1 ", "-all"])]).is_ok());
        assert_eq!(
            reason(judged(&t, 0, &[txt(&["V=SPF1 -all"])])).1,
            "no answer v=spf1 -all (got V=SPF1 -all)"
        );
        // What a server sends is shown escaped and cut short.
        let long = "x".repeat(100) + "\u{7}";
        assert_eq!(
            reason(judged(&t, 0, &[txt(&["a\u{1}b", &long[..90]])])).1,
            format!(
                "no answer v=spf1 -all (got a\\u{{1}}b{}...)",
                "x".repeat(61)
            )
        );
        // An address never matches a name, nor text an address.
        let p = probe(rtype::A, 0, Some("192.0.2.1"));
        assert!(judged(&p, 0, &[txt(&["192.0.2.1"])]).is_err());
    }

    #[test]
    fn malformed_and_foreign_replies_fail_as_protocol() {
        let p = probe(rtype::A, 0, None);
        let q = query::build(0x1234, &p.query.name, p.query.qtype);
        let good = reply(&q, 0, &[a([192, 0, 2, 1])]);
        assert!(p.read(&good, 0x1234).is_ok());
        let cases: [(Vec<u8>, &str); 5] = [
            (good[..good.len() - 1].to_vec(), "malformed reply"),
            (good[..5].to_vec(), "malformed reply"),
            (q.clone(), "malformed reply (not a response)"),
            (
                reply(&query::build(0x4321, &p.query.name, rtype::A), 0, &[]),
                "malformed reply (wrong id)",
            ),
            (
                reply(&query::build(0x1234, &p.query.name, rtype::AAAA), 0, &[]),
                "malformed reply (another question)",
            ),
        ];
        for (bytes, want) in cases {
            let f = p.read(&bytes, 0x1234).unwrap_err();
            assert_eq!((f.kind, f.reason.as_str()), (FailureKind::Protocol, want));
        }
    }

    #[test]
    fn icmp_refusal_is_port_unreachable() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(udp_failure(&e).reason, "port unreachable");
        assert_eq!(io_failure(&e).reason, "connect refused");
        let emfile = std::io::Error::from_raw_os_error(24);
        assert_eq!(udp_failure(&emfile).kind, FailureKind::Local);
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(stream_failure(&eof).kind, FailureKind::Protocol);
    }

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 48, "{ids:?}");
    }
}
