//! Zero-copy reading of DNS queries.
//!
//! The answer path reads only what it needs from a query: the header, the
//! single question (lowercased into a caller buffer for lookup, and kept as
//! raw bytes so it can be echoed byte for byte, 0x20 case included) and the
//! EDNS(0) OPT record. Nothing is allocated. Everything else in the packet is
//! skipped with bounds checks; hickory-proto's full parser is the reference
//! this reader is tested against.

use crate::proto::name::MAX_WIRE_LEN;
use crate::proto::rr::rtype;

/// Header flag bits.
pub mod flags {
    /// Response.
    pub const QR: u16 = 0x8000;
    /// Opcode mask.
    pub const OPCODE: u16 = 0x7800;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Checking disabled.
    pub const CD: u16 = 0x0010;
}

/// Response codes.
pub mod rcode {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// Format error.
    pub const FORMERR: u16 = 1;
    /// Server failure.
    pub const SERVFAIL: u16 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u16 = 3;
    /// Not implemented.
    pub const NOTIMP: u16 = 4;
    /// Refused.
    pub const REFUSED: u16 = 5;
    /// Bad EDNS version (extended, needs OPT).
    pub const BADVERS: u16 = 16;
    /// Bad or missing server cookie (extended, needs OPT; RFC 7873).
    pub const BADCOOKIE: u16 = 23;

    /// The mnemonic, for logs and metrics.
    pub fn name(code: u16) -> &'static str {
        match code {
            NOERROR => "NOERROR",
            FORMERR => "FORMERR",
            SERVFAIL => "SERVFAIL",
            NXDOMAIN => "NXDOMAIN",
            NOTIMP => "NOTIMP",
            REFUSED => "REFUSED",
            BADVERS => "BADVERS",
            BADCOOKIE => "BADCOOKIE",
            _ => "OTHER",
        }
    }
}

/// EDNS(0) as sent by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size.
    pub udp_size: u16,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK bit.
    pub dnssec_ok: bool,
    /// Compact Answers OK (RFC 9824 §4): the client takes a compact
    /// denial with the NXDOMAIN rcode restored.
    pub compact_ok: bool,
    /// EDNS Client Subnet (RFC 7871), when present and well formed.
    pub ecs: Option<ClientSubnet>,
    /// DNS cookie (RFC 7873), when present (the first COOKIE option).
    pub cookie: Option<Cookie>,
    /// The client asked for the server's identifier (NSID, RFC 5001).
    pub nsid: bool,
}

/// The COOKIE option of a query: a client cookie and, once the client has
/// learnt one, the server cookie it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie {
    /// The client cookie (8 bytes).
    pub client: [u8; 8],
    /// The server cookie as sent (`server_len` bytes used).
    pub server: [u8; 32],
    /// 0 (client cookie only) or 8..=32.
    pub server_len: u8,
}

impl Cookie {
    /// The server cookie, if one was sent.
    pub fn server(&self) -> Option<&[u8]> {
        (self.server_len > 0).then(|| &self.server[..self.server_len as usize])
    }
}

/// COOKIE option code (RFC 7873).
pub const OPTION_COOKIE: u16 = 10;

/// NSID option code (RFC 5001).
pub const OPTION_NSID: u16 = 3;

/// Reads a COOKIE option; `None` when malformed (RFC 7873 §5.2.2: FORMERR):
/// 8 bytes, or 16 to 40.
fn parse_cookie(data: &[u8]) -> Option<Cookie> {
    if data.len() != 8 && !(16..=40).contains(&data.len()) {
        return None;
    }
    let mut c = Cookie {
        client: [0; 8],
        server: [0; 32],
        server_len: (data.len() - 8) as u8,
    };
    c.client.copy_from_slice(&data[..8]);
    c.server[..data.len() - 8].copy_from_slice(&data[8..]);
    Some(c)
}

/// The ECS option of a query, kept as sent so the response can echo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSubnet {
    /// 1 = IPv4, 2 = IPv6.
    pub family: u16,
    /// SOURCE PREFIX-LENGTH.
    pub source_prefix: u8,
    /// Address bytes as sent (`ceil(source_prefix / 8)` of them).
    pub address: [u8; 16],
}

impl ClientSubnet {
    /// The number of address bytes on the wire.
    pub fn address_len(&self) -> usize {
        (self.source_prefix as usize).div_ceil(8)
    }

    /// The address, zero-padded.
    pub fn ip(&self) -> std::net::IpAddr {
        if self.family == 1 {
            let mut b = [0u8; 4];
            b.copy_from_slice(&self.address[..4]);
            std::net::IpAddr::from(b)
        } else {
            std::net::IpAddr::from(self.address)
        }
    }
}

/// ECS option code.
pub const OPTION_ECS: u16 = 8;

/// Reads an ECS option; `None` when malformed (RFC 7871 §6: FORMERR).
fn parse_ecs(data: &[u8]) -> Option<ClientSubnet> {
    if data.len() < 4 {
        return None;
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let (source, scope) = (data[2], data[3]);
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    // A query's SCOPE PREFIX-LENGTH must be 0.
    if source > max || scope != 0 {
        return None;
    }
    let addr = &data[4..];
    let need = (source as usize).div_ceil(8);
    if addr.len() != need {
        return None;
    }
    // No bits set beyond the source prefix.
    if source % 8 != 0 && need > 0 && addr[need - 1] & (0xFFu8 >> (source % 8)) != 0 {
        return None;
    }
    let mut address = [0u8; 16];
    address[..need].copy_from_slice(addr);
    Some(ClientSubnet {
        family,
        source_prefix: source,
        address,
    })
}

/// A query that can be answered.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// Message id.
    pub id: u16,
    /// Header flags as received.
    pub flags: u16,
    /// The question exactly as received: QNAME, QTYPE, QCLASS.
    pub question: &'a [u8],
    /// Length of QNAME within `question`.
    pub qname_len: usize,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// The OPT record, when present.
    pub edns: Option<Edns>,
}

/// What to do with a packet.
#[derive(Clone, Copy, Debug)]
pub enum Parsed<'a> {
    /// Answer it.
    Query(Query<'a>),
    /// Reply with an error code, echoing the question when it could be read.
    Error {
        /// Message id.
        id: u16,
        /// Header flags as received.
        flags: u16,
        /// The question, when readable.
        question: Option<&'a [u8]>,
        /// FORMERR or NOTIMP.
        rcode: u16,
    },
    /// Not a query we can reply to (too short, or a response): drop silently.
    Drop,
}

/// A bounds-checked cursor.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.buf.get(self.pos..self.pos + 2)?;
        self.pos += 2;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.buf.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn skip(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// Skips a possibly compressed name; returns true when it was the root.
    fn skip_name(&mut self) -> Option<bool> {
        let mut first = true;
        let mut total = 0usize;
        loop {
            let len = self.u8()?;
            match len & 0xC0 {
                0x00 if len == 0 => return Some(first),
                0x00 => {
                    total += len as usize + 1;
                    if total > MAX_WIRE_LEN {
                        return None;
                    }
                    self.skip(len as usize)?;
                }
                // A pointer ends the name; where it points does not matter
                // for skipping.
                0xC0 => {
                    self.u8()?;
                    return Some(false);
                }
                _ => return None,
            }
            first = false;
        }
    }
}

/// Reads a query. The question name is written ASCII-lowercased into
/// `lower`; on success `lower[..qname_len]` holds it.
pub fn parse<'a>(pkt: &'a [u8], lower: &mut [u8; MAX_WIRE_LEN]) -> Parsed<'a> {
    if pkt.len() < 12 {
        return Parsed::Drop;
    }
    let id = u16::from_be_bytes([pkt[0], pkt[1]]);
    let fl = u16::from_be_bytes([pkt[2], pkt[3]]);
    if fl & flags::QR != 0 {
        return Parsed::Drop;
    }
    let count = |i: usize| u16::from_be_bytes([pkt[i], pkt[i + 1]]);
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let err = |question, rcode| Parsed::Error {
        id,
        flags: fl,
        question,
        rcode,
    };
    let opcode = (fl & flags::OPCODE) >> 11;
    if qd != 1 {
        let rcode = if opcode != 0 {
            rcode::NOTIMP
        } else {
            rcode::FORMERR
        };
        return err(None, rcode);
    }

    // The question name: plain labels only (a pointer here could only point
    // into the header).
    let mut r = Reader { buf: pkt, pos: 12 };
    let mut n = 0usize;
    loop {
        let Some(len) = r.u8() else {
            return err(None, rcode::FORMERR);
        };
        if len & 0xC0 != 0 {
            return err(None, rcode::FORMERR);
        }
        let len = len as usize;
        if n + len + 1 > MAX_WIRE_LEN {
            return err(None, rcode::FORMERR);
        }
        n += 1;
        if len == 0 {
            break;
        }
        if r.skip(len).is_none() {
            return err(None, rcode::FORMERR);
        }
        n += len;
    }
    // The name lowercased in one pass, length bytes included: they are
    // below 64 and stay as they are.
    to_lowercase(&pkt[12..12 + n], &mut lower[..n]);
    let (Some(qtype), Some(qclass)) = (r.u16(), r.u16()) else {
        return err(None, rcode::FORMERR);
    };
    let question = &pkt[12..r.pos];
    if opcode != 0 {
        return err(Some(question), rcode::NOTIMP);
    }
    if qtype == rtype::OPT {
        return err(Some(question), rcode::FORMERR);
    }

    // Answer and authority sections of a query are normally empty; skip them.
    for _ in 0..(an as u32 + ns as u32) {
        if skip_record(&mut r).is_none() {
            return err(Some(question), rcode::FORMERR);
        }
    }
    let mut edns = None;
    for _ in 0..ar {
        let Some(is_root) = r.skip_name() else {
            return err(Some(question), rcode::FORMERR);
        };
        let (Some(t), Some(class), Some(ttl), Some(rdlen)) = (r.u16(), r.u16(), r.u32(), r.u16())
        else {
            return err(Some(question), rcode::FORMERR);
        };
        let Some(rdata) = r.skip(rdlen as usize) else {
            return err(Some(question), rcode::FORMERR);
        };
        if t != rtype::OPT {
            continue;
        }
        // RFC 6891 §6.1.1: one OPT, owned by the root.
        if edns.is_some() || !is_root {
            return err(Some(question), rcode::FORMERR);
        }
        let Some(options) = read_options(rdata) else {
            return err(Some(question), rcode::FORMERR);
        };
        edns = Some(Edns {
            udp_size: class,
            version: (ttl >> 16) as u8,
            dnssec_ok: ttl & 0x8000 != 0,
            compact_ok: ttl & 0x4000 != 0,
            ecs: options.ecs,
            cookie: options.cookie,
            nsid: options.nsid,
        });
    }
    Parsed::Query(Query {
        id,
        flags: fl,
        question,
        qname_len: n,
        qtype,
        qclass,
        edns,
    })
}

/// Writes `src` ASCII-lowercased into `dst` (of the same length), eight
/// bytes at a time: a byte from `A` to `Z` gets bit 5 set, every other
/// byte (non-ASCII included) is copied as is, as `u8::to_ascii_lowercase`
/// does.
#[inline]
fn to_lowercase(src: &[u8], dst: &mut [u8]) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Added to a byte's low 7 bits, these set its high bit from 'A'
    // (0x41) and from past 'Z' (0x5b) on; no carry crosses bytes.
    const FROM_A: u64 = 0x3f3f_3f3f_3f3f_3f3f;
    const PAST_Z: u64 = 0x2525_2525_2525_2525;
    let mut src_chunks = src.chunks_exact(8);
    let mut dst_chunks = dst.chunks_exact_mut(8);
    for (s, d) in (&mut src_chunks).zip(&mut dst_chunks) {
        let mut word = [0u8; 8];
        word.copy_from_slice(s);
        let v = u64::from_le_bytes(word);
        let low = v & LOW7;
        let upper = (low + FROM_A) & !(low + PAST_Z) & !v & HIGH;
        d.copy_from_slice(&(v | upper >> 2).to_le_bytes());
    }
    for (d, s) in dst_chunks
        .into_remainder()
        .iter_mut()
        .zip(src_chunks.remainder())
    {
        *d = s.to_ascii_lowercase();
    }
}

/// Cuts a response down to its header, question and OPT record, with TC
/// set: what goes out when the whole response could not be sent (a link
/// whose MTU is below the size the client allowed), so the client retries
/// over TCP instead of waiting for an answer that never comes. Returns
/// false, leaving `resp` as it was, when it does not read as a response
/// with one question.
pub fn truncate_response(resp: &mut Vec<u8>) -> bool {
    let Some((question_end, opt)) = question_and_opt(resp) else {
        return false;
    };
    cut_to_question(resp, question_end, opt);
    let f = u16::from_be_bytes([resp[2], resp[3]]) | flags::TC;
    resp[2..4].copy_from_slice(&f.to_be_bytes());
    true
}

/// Cuts a response to its header, its question (ending at `question_end`)
/// and the OPT record at `opt` moved right after it, with the section
/// counts to match; returns the OPT record's length (0 without one). The
/// flags are the caller's to set (TC, or a slip's BADCOOKIE).
pub fn cut_to_question(
    resp: &mut Vec<u8>,
    question_end: usize,
    opt: Option<(usize, usize)>,
) -> usize {
    let opt_len = match opt {
        Some((start, end)) => {
            resp.copy_within(start..end, question_end);
            end - start
        }
        None => 0,
    };
    resp.truncate(question_end + opt_len);
    resp[6..10].fill(0);
    resp[10..12].copy_from_slice(&u16::from(opt_len > 0).to_be_bytes());
    opt_len
}

/// Where a response's question ends, and the span of its OPT record.
fn question_and_opt(resp: &[u8]) -> Option<(usize, Option<(usize, usize)>)> {
    let count = |i: usize| u16::from_be_bytes([resp[i], resp[i + 1]]) as usize;
    if resp.len() < 12 || count(4) != 1 {
        return None;
    }
    let mut r = Reader { buf: resp, pos: 12 };
    r.skip_name()?;
    r.skip(4)?;
    let question_end = r.pos;
    let mut opt = None;
    for _ in 0..count(6) + count(8) + count(10) {
        let start = r.pos;
        r.skip_name()?;
        let rtype = r.u16()?;
        r.pos = start;
        skip_record(&mut r)?;
        if rtype == rtype::OPT {
            opt = Some((start, r.pos));
        }
    }
    Some((question_end, opt))
}

fn skip_record(r: &mut Reader<'_>) -> Option<()> {
    r.skip_name()?;
    r.skip(8)?;
    let rdlen = r.u16()?;
    r.skip(rdlen as usize)?;
    Some(())
}

/// The options of a query's OPT record that the answer path uses.
#[derive(Default)]
struct Options {
    ecs: Option<ClientSubnet>,
    cookie: Option<Cookie>,
    nsid: bool,
}

/// Options are `code, length, data` triples that must fill RDATA exactly.
/// Unknown options are ignored; a malformed or repeated ECS option, or a
/// malformed COOKIE, makes the whole OPT malformed (a second COOKIE is
/// ignored). An NSID option asks for the server's identifier, whatever its
/// data (RFC 5001 §2.3: it should be empty).
fn read_options(mut rdata: &[u8]) -> Option<Options> {
    let mut o = Options::default();
    while !rdata.is_empty() {
        if rdata.len() < 4 {
            return None;
        }
        let code = u16::from_be_bytes([rdata[0], rdata[1]]);
        let len = u16::from_be_bytes([rdata[2], rdata[3]]) as usize;
        let data = rdata.get(4..4 + len)?;
        if code == OPTION_ECS {
            if o.ecs.is_some() {
                return None;
            }
            o.ecs = Some(parse_ecs(data)?);
        } else if code == OPTION_COOKIE {
            let c = parse_cookie(data)?;
            o.cookie = o.cookie.or(Some(c));
        } else if code == OPTION_NSID {
            o.nsid = true;
        }
        rdata = &rdata[4 + len..];
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns as HEdns, Message, Query as HQuery};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn a_response_cut_to_its_question_keeps_the_opt_record_and_sets_tc() {
        use hickory_proto::op::OpCode;
        use hickory_proto::rr::rdata::{A, TXT};
        use hickory_proto::rr::{RData, Record};
        let name = Name::from_ascii("www.tm.example.test.").unwrap();
        let response = |edns: bool| {
            let mut m = Message::response(0x1234, OpCode::Query);
            m.metadata.authoritative = true;
            m.add_query(HQuery::query(name.clone(), RecordType::A));
            m.add_answer(Record::from_rdata(
                name.clone(),
                30,
                RData::A(A::new(192, 0, 2, 1)),
            ));
            let txt = TXT::new(vec!["x".repeat(200)]);
            m.add_answer(Record::from_rdata(name.clone(), 30, RData::TXT(txt)));
            if edns {
                let mut e = HEdns::new();
                e.set_max_payload(1232);
                m.set_edns(e);
            }
            m
        };
        for edns in [true, false] {
            let m = response(edns);
            let mut resp = m.to_vec().unwrap();
            assert!(truncate_response(&mut resp));
            let cut = Message::from_vec(&resp).unwrap();
            assert_eq!(cut.metadata.id, 0x1234);
            assert!(cut.metadata.truncation && cut.metadata.authoritative);
            assert_eq!(cut.queries, m.queries);
            assert!(cut.answers.is_empty());
            assert_eq!(
                cut.edns.as_ref().map(|e| e.max_payload()),
                m.edns.as_ref().map(|e| e.max_payload()),
            );
        }

        // What does not read as a response with one question is left alone.
        let whole = response(false).to_vec().unwrap();
        let two_questions = [0, 1, 0x80, 0, 0, 2, 0, 0, 0, 0, 0, 0];
        for bad in [&[0u8; 5][..], &whole[..whole.len() - 3], &two_questions] {
            let mut b = bad.to_vec();
            assert!(!truncate_response(&mut b));
            assert_eq!(b, bad);
        }
    }

    #[test]
    fn lowercasing_eight_bytes_at_a_time_agrees_with_the_standard_library() {
        // Every byte value at every position of a word and of the tail.
        for len in [1, 7, 8, 9, 16, 23] {
            for b in 0..=255u8 {
                for at in 0..len {
                    let mut src: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(37)).collect();
                    src[at] = b;
                    let mut dst = vec![0u8; len];
                    to_lowercase(&src, &mut dst);
                    assert_eq!(dst, src.to_ascii_lowercase(), "{b:#x} at {at} of {len}");
                }
            }
        }
        let mut dst = [0u8; 0];
        to_lowercase(&[], &mut dst);
        // A longest name of random bytes.
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100 {
            let src: Vec<u8> = (0..MAX_WIRE_LEN).map(|_| rng.u8(..)).collect();
            let mut dst = vec![0u8; MAX_WIRE_LEN];
            to_lowercase(&src, &mut dst);
            assert_eq!(dst, src.to_ascii_lowercase());
        }
    }

    fn query(name: &str, t: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), t));
        if let Some(size) = edns {
            let mut e = HEdns::new();
            e.set_max_payload(size);
            e.set_dnssec_ok(true);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn ok(pkt: &[u8]) -> (Query<'_>, Vec<u8>) {
        let mut lower = [0u8; MAX_WIRE_LEN];
        match parse(pkt, &mut lower) {
            Parsed::Query(q) => {
                let l = lower[..q.qname_len].to_vec();
                (q, l)
            }
            other => panic!("not a query: {other:?}"),
        }
    }

    #[test]
    fn reads_question_and_edns() {
        let pkt = query("ToDoApi.Tm.Example.Test.", RecordType::AAAA, Some(4096));
        let (q, lower) = ok(&pkt);
        assert_eq!(q.qtype, 28);
        assert_eq!(q.qclass, 1);
        assert_eq!(lower, b"\x07todoapi\x02tm\x07example\x04test\x00");
        // Raw question keeps the case.
        assert_eq!(&q.question[1..8], b"ToDoApi");
        let e = q.edns.unwrap();
        assert_eq!((e.udp_size, e.version, e.dnssec_ok), (4096, 0, true));
    }

    #[test]
    fn no_edns() {
        let pkt = query("a.test.", RecordType::A, None);
        assert!(ok(&pkt).0.edns.is_none());
    }

    #[test]
    fn short_and_response_packets_are_dropped() {
        let mut lower = [0u8; MAX_WIRE_LEN];
        assert!(matches!(parse(&[0; 11], &mut lower), Parsed::Drop));
        let mut pkt = query("a.test.", RecordType::A, None);
        pkt[2] |= 0x80;
        assert!(matches!(parse(&pkt, &mut lower), Parsed::Drop));
    }

    #[test]
    fn formerr_cases() {
        let mut lower = [0u8; MAX_WIRE_LEN];
        let base = query("a.test.", RecordType::A, Some(1232));
        let is_formerr = |p: &[u8], lower: &mut [u8; MAX_WIRE_LEN]| {
            matches!(
                parse(p, lower),
                Parsed::Error {
                    rcode: rcode::FORMERR,
                    ..
                }
            )
        };
        // Truncated anywhere inside the question or OPT.
        for cut in 13..base.len() {
            assert!(is_formerr(&base[..cut], &mut lower), "cut at {cut}");
        }
        // Two questions.
        let mut two = base.clone();
        two[5] = 2;
        assert!(is_formerr(&two, &mut lower));
        // Two OPT records.
        let mut two_opt = base.clone();
        two_opt[11] = 2;
        two_opt.extend_from_slice(&base[base.len() - 11..]);
        assert!(is_formerr(&two_opt, &mut lower));
        // Pointer in the question name.
        let mut ptr = base.clone();
        ptr[12] = 0xC0;
        assert!(is_formerr(&ptr, &mut lower));
        // Option length running past RDATA.
        let mut bad_opt = base[..base.len() - 2].to_vec();
        bad_opt.extend_from_slice(&[0, 4, 0, 8, 0, 9]);
        assert!(is_formerr(&bad_opt, &mut lower));
    }

    #[test]
    fn other_opcodes_are_notimp_with_question() {
        let mut pkt = query("a.test.", RecordType::SOA, None);
        pkt[2] |= 4 << 3; // NOTIFY
        let mut lower = [0u8; MAX_WIRE_LEN];
        match parse(&pkt, &mut lower) {
            Parsed::Error {
                rcode, question, ..
            } => {
                assert_eq!(rcode, rcode::NOTIMP);
                assert!(question.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    /// Differential check against hickory-proto: for mutations of valid
    /// queries, whenever hickory reads a single-question query, we read the
    /// same name, type, class and EDNS fields.
    #[test]
    fn agrees_with_hickory_on_mutated_packets() {
        let mut rng = fastrand::Rng::with_seed(2024);
        let seeds = [
            query("todoapi.tm.example.test.", RecordType::A, Some(1232)),
            query("x.y.", RecordType::TXT, None),
            query("Mixed.Case.TEST.", RecordType::ANY, Some(512)),
        ];
        let mut lower = [0u8; MAX_WIRE_LEN];
        let mut compared = 0;
        for i in 0..20_000 {
            let mut pkt = seeds[i % seeds.len()].clone();
            for _ in 0..rng.usize(1..4) {
                match rng.u8(0..3) {
                    0 if !pkt.is_empty() => {
                        let at = rng.usize(0..pkt.len());
                        pkt[at] = rng.u8(..);
                    }
                    1 => pkt.truncate(rng.usize(0..=pkt.len())),
                    0 => {}
                    _ => pkt.push(rng.u8(..)),
                }
            }
            let ours = parse(&pkt, &mut lower);
            let Ok(theirs) = Message::from_vec(&pkt) else {
                continue;
            };
            if theirs.metadata.message_type != hickory_proto::op::MessageType::Query
                || theirs.queries.len() != 1
                || u8::from(theirs.metadata.op_code) != 0
            {
                continue;
            }
            let Parsed::Query(q) = ours else {
                // We may be stricter (e.g. pointer in question); never laxer.
                continue;
            };
            let hq = &theirs.queries[0];
            let mut hname = Vec::new();
            {
                let mut enc = hickory_proto::serialize::binary::BinEncoder::new(&mut hname);
                enc.set_name_encoding(
                    hickory_proto::serialize::binary::NameEncoding::UncompressedLowercase,
                );
                hickory_proto::serialize::binary::BinEncodable::emit(hq.name(), &mut enc).unwrap();
            }
            assert_eq!(&lower[..q.qname_len], &hname[..], "packet {pkt:?}");
            assert_eq!(q.qtype, u16::from(hq.query_type()));
            assert_eq!(q.qclass, u16::from(hq.query_class()));
            match (&q.edns, &theirs.edns) {
                (Some(a), Some(b)) => {
                    assert_eq!(a.udp_size.max(512), b.max_payload());
                    assert_eq!(a.version, b.version());
                    assert_eq!(a.dnssec_ok, b.flags().dnssec_ok);
                }
                (None, None) => {}
                (a, b) => panic!("edns differs: {a:?} vs {b:?} for {pkt:?}"),
            }
            compared += 1;
        }
        assert!(compared > 1000, "only {compared} packets compared");
    }
}
