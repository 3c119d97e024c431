//! A question put to another DNS server and its reply read back: the wire
//! side of the `dns` health probe, so that `health` never names hickory.
//!
//! The query is a few bytes written by hand (header, one question, an
//! EDNS(0) OPT record); the reply is decoded by hickory-proto, which checks
//! every count and length, then reduced to what a probe judges: the rcode,
//! the TC bit and each answer record's data as text.

use std::fmt;
use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::name::DomainName;
use super::rr::rtype;

/// The UDP payload size a query advertises (EDNS(0)): the DNS Flag Day 2020
/// value, which fits an unfragmented datagram on any path.
pub const EDNS_UDP_SIZE: u16 = 1232;

/// Response codes by mnemonic (RFC 1035, 2136, 6891, 7873); `BADVERS` is
/// an extended code, carried partly in the OPT record.
const RCODES: &[(&str, u16)] = &[
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
    ("BADVERS", 16),
    ("BADCOOKIE", 23),
];

/// The response codes [`rcode_code`] knows, for messages.
pub fn rcode_names() -> impl Iterator<Item = &'static str> {
    RCODES.iter().map(|(n, _)| *n)
}

/// A response code by its mnemonic (`NOERROR`, `nxdomain`, ...).
pub fn rcode_code(mnemonic: &str) -> Option<u16> {
    RCODES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(mnemonic))
        .map(|(_, c)| *c)
}

/// A response code's mnemonic (`SERVFAIL`), or `RCODE12` for one without.
pub fn rcode_name(code: u16) -> String {
    match RCODES.iter().find(|(_, c)| *c == code) {
        Some((n, _)) => (*n).to_string(),
        None => format!("RCODE{code}"),
    }
}

/// A record type a probe may ask, by mnemonic (`A`, `aaaa`, `TXT`, `HTTPS`,
/// ...) or RFC 3597 number (`TYPE65`). `Err` says why not: unknown, or a
/// meta type (`ANY`, `AXFR`, `OPT`...) whose answer says nothing stable.
pub fn query_type(text: &str) -> Result<u16, String> {
    let upper = text.trim().to_ascii_uppercase();
    let code = match upper.strip_prefix("TYPE") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
            .parse::<u16>()
            .map_err(|_| format!("`{text}`: type numbers go up to 65535"))?,
        _ => match upper.parse::<RecordType>() {
            Ok(t) => u16::from(t),
            Err(_) => return Err(format!("unknown record type `{text}`")),
        },
    };
    match code {
        0 | rtype::OPT | 249 | 250 | rtype::IXFR | rtype::AXFR | 253 | 254 => Err(format!(
            "`{text}` is not a type a query asks for (a meta or transfer type)"
        )),
        rtype::ANY => {
            Err("`ANY` answers differ from server to server (RFC 8482): ask for a real type".into())
        }
        c => Ok(c),
    }
}

/// A record type's mnemonic (`AAAA`), or `TYPE65280` for one hickory does
/// not name.
pub fn type_name(code: u16) -> String {
    match RecordType::from(code) {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        t => t.to_string(),
    }
}

/// A query for `name` and `qtype` (class IN) with message id `id`:
/// recursion desired (a resolver then answers; an authoritative server
/// ignores the bit) and an EDNS(0) OPT record advertising
/// [`EDNS_UDP_SIZE`] bytes, without DNSSEC records (DO clear).
pub fn build(id: u16, name: &DomainName, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + name.wire().len() + 4 + 11);
    q.extend_from_slice(&id.to_be_bytes());
    // QR=0, opcode QUERY, RD=1; QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 1.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(name.wire());
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    // OPT: root owner, type 41, class = payload size, TTL 0 (extended
    // rcode, version 0, no flags), no options.
    q.push(0);
    q.extend_from_slice(&rtype::OPT.to_be_bytes());
    q.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    q
}

/// The message id of a query or reply (its first two bytes).
pub fn id_of(message: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*message.first()?, *message.get(1)?]))
}

/// One answer record's data, as a probe compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// A or AAAA.
    Addr(IpAddr),
    /// A name: CNAME, NS, PTR, DNAME target (with the trailing dot).
    Name(String),
    /// TXT: the character-strings joined, without quotes (as `dig +short`
    /// would print them, unquoted and joined); bytes that are not UTF-8
    /// replaced.
    Text(String),
    /// Any other type, in presentation format (`10 mail.example.com.`).
    Other(String),
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Addr(ip) => write!(f, "{ip}"),
            Data::Name(s) | Data::Text(s) | Data::Other(s) => f.write_str(s),
        }
    }
}

/// A reply to our query, reduced to what a probe judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The response code, extended by the OPT record's high bits.
    pub rcode: u16,
    /// TC: the answer did not fit (UDP); ask again over TCP.
    pub truncated: bool,
    /// The answer section's records, in order (CNAMEs of a chain
    /// included), without their owner names.
    pub answers: Vec<Data>,
}

/// Why a datagram or frame is not a usable reply to our query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadReply {
    /// Not a DNS message (a count or length runs past its end, a name
    /// loops, a record's data does not parse).
    Malformed,
    /// A query, or an opcode other than QUERY.
    NotAResponse,
    /// Another message id than the query's.
    WrongId,
    /// Another question than ours (name, type or class).
    WrongQuestion,
}

impl fmt::Display for BadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadReply::Malformed => "malformed reply",
            BadReply::NotAResponse => "malformed reply (not a response)",
            BadReply::WrongId => "malformed reply (wrong id)",
            BadReply::WrongQuestion => "malformed reply (another question)",
        })
    }
}

/// Reads `bytes` as the reply to the query `build(id, name, qtype)`. A
/// reply must carry our id and echo our question; only an error reply
/// (rcode other than NOERROR) may leave the question out, as some servers
/// do for FORMERR and NOTIMP.
pub fn read_reply(bytes: &[u8], id: u16, name: &DomainName, qtype: u16) -> Result<Reply, BadReply> {
    let msg = Message::from_vec(bytes).map_err(|_| BadReply::Malformed)?;
    let meta = &msg.metadata;
    if meta.id != id {
        return Err(BadReply::WrongId);
    }
    if meta.message_type != MessageType::Response || meta.op_code != OpCode::Query {
        return Err(BadReply::NotAResponse);
    }
    let rcode = u16::from(meta.response_code);
    let ours = Name::from_ascii(name.as_str()).map_err(|_| BadReply::Malformed)?;
    let echoed = match msg.queries.as_slice() {
        [] => rcode != 0,
        [q] => {
            q.name() == &ours
                && u16::from(q.query_type()) == qtype
                && q.query_class() == DNSClass::IN
        }
        _ => false,
    };
    if !echoed {
        return Err(BadReply::WrongQuestion);
    }
    let answers = msg
        .answers
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN)
        .map(|r| match &r.data {
            RData::A(a) => Data::Addr(IpAddr::V4(a.0)),
            RData::AAAA(a) => Data::Addr(IpAddr::V6(a.0)),
            RData::CNAME(n) => Data::Name(n.0.to_ascii()),
            RData::NS(n) => Data::Name(n.0.to_ascii()),
            RData::PTR(n) => Data::Name(n.0.to_ascii()),
            RData::TXT(t) => Data::Text(t.to_string()),
            other => Data::Other(other.to_string()),
        })
        .collect();
    Ok(Reply {
        rcode,
        truncated: meta.truncation,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Edns;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};

    fn name(s: &str) -> DomainName {
        DomainName::parse(s, None).unwrap()
    }

    /// A reply to `query` built by hickory, as a server would send it.
    fn reply_to(query: &[u8], rcode: u16, answers: Vec<RData>) -> Message {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::response(q.metadata.id, OpCode::Query);
        m.add_queries(q.queries.clone());
        m.metadata.response_code = rcode.into();
        for data in answers {
            m.add_answer(Record::from_rdata(q.queries[0].name().clone(), 60, data));
        }
        m
    }

    #[test]
    fn the_query_is_what_hickory_reads() {
        let q = build(0xbeef, &name("Check.Example.test."), rtype::AAAA);
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.metadata.id, 0xbeef);
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name().to_ascii(), "check.example.test.");
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(m.queries[0].query_class(), DNSClass::IN);
        let edns = m.edns.unwrap();
        assert_eq!(edns.max_payload(), EDNS_UDP_SIZE);
        assert!(!edns.flags().dnssec_ok);
        assert_eq!(id_of(&q), Some(0xbeef));
    }

    #[test]
    fn replies_are_reduced_to_rcode_and_answer_text() {
        let n = name("www.example.test.");
        let q = build(7, &n, rtype::A);
        let target = Name::from_ascii("edge.example.net.").unwrap();
        let r = reply_to(
            &q,
            0,
            vec![
                RData::CNAME(CNAME(target)),
                RData::A(A::new(192, 0, 2, 1)),
                RData::TXT(TXT::new(vec!["v=1 ".into(), "ok".into()])),
                RData::MX(MX::new(10, Name::from_ascii("mail.example.test.").unwrap())),
            ],
        );
        let got = read_reply(&r.to_vec().unwrap(), 7, &n, rtype::A).unwrap();
        assert_eq!(got.rcode, 0);
        assert!(!got.truncated);
        assert_eq!(
            got.answers,
            [
                Data::Name("edge.example.net.".into()),
                Data::Addr("192.0.2.1".parse().unwrap()),
                Data::Text("v=1 ok".into()),
                Data::Other("10 mail.example.test.".into()),
            ]
        );
    }

    #[test]
    fn the_question_must_be_ours_and_the_id_too() {
        let n = name("www.example.test.");
        let q = build(7, &n, rtype::A);
        let ok = reply_to(&q, 0, vec![]).to_vec().unwrap();
        // Case differs: still our question (0x20 or not).
        let upper = build(7, &name("WWW.Example.TEST."), rtype::A);
        let upper = reply_to(&upper, 0, vec![]).to_vec().unwrap();
        assert!(read_reply(&upper, 7, &n, rtype::A).is_ok());
        assert_eq!(read_reply(&ok, 8, &n, rtype::A), Err(BadReply::WrongId));
        assert_eq!(
            read_reply(&ok, 7, &n, rtype::AAAA),
            Err(BadReply::WrongQuestion)
        );
        assert_eq!(
            read_reply(&ok, 7, &name("other.example.test."), rtype::A),
            Err(BadReply::WrongQuestion)
        );
        // Our own query echoed back is no answer.
        assert_eq!(read_reply(&q, 7, &n, rtype::A), Err(BadReply::NotAResponse));
        // No question: only for an error.
        let mut bare = Message::response(7, OpCode::Query);
        assert_eq!(
            read_reply(&bare.to_vec().unwrap(), 7, &n, rtype::A),
            Err(BadReply::WrongQuestion)
        );
        bare.metadata.response_code = 1.into();
        assert_eq!(
            read_reply(&bare.to_vec().unwrap(), 7, &n, rtype::A).map(|r| r.rcode),
            Ok(1)
        );
    }

    #[test]
    fn malformed_replies_are_named() {
        let n = name("www.example.test.");
        let q = build(7, &n, rtype::A);
        let ok = reply_to(&q, 0, vec![RData::A(A::new(192, 0, 2, 1))])
            .to_vec()
            .unwrap();
        assert!(read_reply(&ok, 7, &n, rtype::A).is_ok());
        // Cut anywhere after the header: a count runs past the end.
        for cut in 12..ok.len() {
            assert_eq!(
                read_reply(&ok[..cut], 7, &n, rtype::A),
                Err(BadReply::Malformed),
                "cut at {cut}"
            );
        }
        for short in [&[][..], &[0, 7], &ok[..11]] {
            assert_eq!(read_reply(short, 7, &n, rtype::A), Err(BadReply::Malformed));
        }
        // An A record of 3 bytes.
        let mut bad = ok.clone();
        let len = bad.len();
        bad[len - 6] = 0;
        bad[len - 5] = 3;
        bad.pop();
        assert_eq!(read_reply(&bad, 7, &n, rtype::A), Err(BadReply::Malformed));
        // A compression pointer to itself.
        let mut looped = ok;
        looped[12] = 0xc0;
        looped[13] = 12;
        assert_eq!(
            read_reply(&looped, 7, &n, rtype::A),
            Err(BadReply::Malformed)
        );
    }

    #[test]
    fn extended_rcodes_and_truncation() {
        let n = name("www.example.test.");
        let q = build(7, &n, rtype::A);
        let mut r = reply_to(&q, 16, vec![]);
        r.metadata.truncation = true;
        r.set_edns(Edns::new());
        let wire = r.to_vec().unwrap();
        // BADVERS (16): 0 in the header, 1 in the OPT record's high bits.
        assert_eq!(wire[3] & 0x0f, 0);
        let got = read_reply(&wire, 7, &n, rtype::A).unwrap();
        assert_eq!((got.rcode, got.truncated), (16, true));
        assert_eq!(rcode_name(got.rcode), "BADVERS");
    }

    #[test]
    fn mnemonics() {
        assert_eq!(rcode_code("nxdomain"), Some(3));
        assert_eq!(rcode_code("NOERROR"), Some(0));
        assert_eq!(rcode_code("nope"), None);
        assert_eq!(rcode_name(2), "SERVFAIL");
        assert_eq!(rcode_name(12), "RCODE12");
        assert_eq!(query_type("aaaa"), Ok(rtype::AAAA));
        assert_eq!(query_type("HTTPS"), Ok(65));
        assert_eq!(query_type("TYPE65280"), Ok(65280));
        assert!(query_type("TYPE70000").unwrap_err().contains("65535"));
        assert!(query_type("BOGUS").unwrap_err().contains("unknown"));
        assert!(query_type("ANY").unwrap_err().contains("RFC 8482"));
        assert!(query_type("AXFR").unwrap_err().contains("transfer"));
        assert_eq!(type_name(rtype::TXT), "TXT");
        assert_eq!(type_name(65280), "TYPE65280");
    }
}
