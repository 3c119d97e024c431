//! Resource records pre-encoded at load time.
//!
//! Every record the server can answer with is encoded once, when the
//! configuration is compiled, by hickory-proto. Answering a query then copies
//! bytes: a two-byte compression pointer to the owner name followed by the
//! pre-encoded TYPE, CLASS, TTL, RDLENGTH and RDATA.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::name::DomainName;

/// Record type codes used on the answer path.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Mail exchange.
    pub const MX: u16 = 15;
    /// Text.
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service locator.
    pub const SRV: u16 = 33;
    /// EDNS(0) pseudo-record.
    pub const OPT: u16 = 41;
    /// Delegation signer (RFC 4034).
    pub const DS: u16 = 43;
    /// DNSSEC signature.
    pub const RRSIG: u16 = 46;
    /// Next secure (here only compact denial, RFC 9824).
    pub const NSEC: u16 = 47;
    /// DNSSEC public key.
    pub const DNSKEY: u16 = 48;
    /// Child DS (RFC 7344).
    pub const CDS: u16 = 59;
    /// Child DNSKEY (RFC 7344).
    pub const CDNSKEY: u16 = 60;
    /// The pseudo-type compact denial lists for a name that does not
    /// exist (RFC 9824).
    pub const NXNAME: u16 = 128;
    /// Incremental zone transfer.
    pub const IXFR: u16 = 251;
    /// Full zone transfer.
    pub const AXFR: u16 = 252;
    /// Any type (RFC 8482).
    pub const ANY: u16 = 255;
    /// Certification authority authorization.
    pub const CAA: u16 = 257;
}

/// Where a name embedded in a record's RDATA (CNAME target, NS host, MX
/// exchange, SRV target) leads inside our own zones. Resolved once the whole
/// configuration is known, so the answer path follows ids, not strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Link {
    /// The record has no embedded name, or it is outside our zones.
    #[default]
    None,
    /// An existing node of the routing table.
    Node(u32),
    /// Inside our zone (index given) but no such name: NXDOMAIN at the end of a chain.
    Missing(u32),
}

/// One pre-encoded resource record without its owner name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireRr {
    /// TYPE, CLASS, TTL, RDLENGTH, RDATA.
    bytes: Box<[u8]>,
    /// Offset inside `bytes` of an uncompressed name in RDATA, if any.
    name_at: Option<u16>,
    /// The name inside RDATA, for linking (and chain following).
    target: Option<DomainName>,
    /// Where `target` leads in our zones.
    pub link: Link,
}

impl WireRr {
    /// Its TTL and data as a zone file writes them (`30 192.0.2.1`).
    pub fn data_text(&self) -> String {
        use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
        let mut buf = vec![0u8];
        buf.extend_from_slice(self.bytes());
        match hickory_proto::rr::Record::read(&mut BinDecoder::new(&buf)) {
            Ok(r) => format!("{} {}", self.ttl(), r.data),
            Err(_) => format!("{} ({} bytes)", self.ttl(), self.rdata().len()),
        }
    }

    /// The record type.
    pub fn rtype(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    /// The TTL in seconds.
    pub fn ttl(&self) -> u32 {
        u32::from_be_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]])
    }

    /// The encoded record, minus owner.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Offset of the RDATA name inside [`WireRr::bytes`] and its wire length.
    pub fn name_span(&self) -> Option<(usize, usize)> {
        let at = self.name_at? as usize;
        let len = self.target.as_ref()?.wire().len();
        Some((at, len))
    }

    /// The name embedded in RDATA (CNAME target, NS host, ...).
    pub fn target(&self) -> Option<&DomainName> {
        self.target.as_ref()
    }

    /// The RDATA only.
    pub fn rdata(&self) -> &[u8] {
        &self.bytes[10..]
    }

    /// Builds an A record.
    pub fn a(ttl: u32, ip: Ipv4Addr) -> WireRr {
        encode(RecordType::A, ttl, &RData::A(A(ip)), None).unwrap_or_else(|_| unreachable_rr())
    }

    /// Builds an AAAA record.
    pub fn aaaa(ttl: u32, ip: Ipv6Addr) -> WireRr {
        encode(RecordType::AAAA, ttl, &RData::AAAA(AAAA(ip)), None)
            .unwrap_or_else(|_| unreachable_rr())
    }

    /// Builds a CNAME record pointing at `target`.
    pub fn cname(ttl: u32, target: &DomainName) -> Result<WireRr, String> {
        let name = hickory_name(target)?;
        encode(
            RecordType::CNAME,
            ttl,
            &RData::CNAME(CNAME(name)),
            Some((10, target.clone())),
        )
    }

    /// Builds an NS record.
    pub fn ns(ttl: u32, host: &DomainName) -> Result<WireRr, String> {
        let name = hickory_name(host)?;
        encode(
            RecordType::NS,
            ttl,
            &RData::NS(NS(name)),
            Some((10, host.clone())),
        )
    }

    /// Builds the zone's SOA record.
    #[allow(clippy::too_many_arguments)]
    pub fn soa(
        ttl: u32,
        mname: &DomainName,
        rname: &DomainName,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    ) -> Result<WireRr, String> {
        let soa = SOA::new(
            hickory_name(mname)?,
            hickory_name(rname)?,
            serial,
            refresh as i32,
            retry as i32,
            expire as i32,
            minimum,
        );
        encode(RecordType::SOA, ttl, &RData::SOA(soa), None)
    }

    /// Rebuilds the record with another TTL (for the negative-answer SOA).
    pub fn with_ttl(&self, ttl: u32) -> WireRr {
        let mut copy = self.clone();
        copy.bytes[4..8].copy_from_slice(&ttl.to_be_bytes());
        copy
    }

    /// A copy of this SOA record with another serial (the first of the
    /// five numbers that end its RDATA); any other record unchanged.
    pub fn with_soa_serial(&self, serial: u32) -> WireRr {
        let mut copy = self.clone();
        let n = copy.bytes.len();
        if self.rtype() == rtype::SOA && n >= 30 {
            copy.bytes[n - 20..n - 16].copy_from_slice(&serial.to_be_bytes());
        }
        copy
    }
}

fn unreachable_rr() -> WireRr {
    // Encoding an address cannot fail; keep the answer path panic-free anyway.
    WireRr::none()
}

impl WireRr {
    /// No record (for endpoints that answer with another profile's).
    pub fn none() -> WireRr {
        WireRr {
            bytes: Box::new([]),
            name_at: None,
            target: None,
            link: Link::None,
        }
    }
}

/// Decodes hexadecimal digits (either case); `None` unless every byte is
/// two digits.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl WireRr {
    /// A record of `rtype` from RDATA bytes that embed no name (DNSKEY,
    /// CDS, CDNSKEY, NSEC built at load time).
    pub fn from_rdata(rtype: u16, ttl: u32, rdata: &[u8]) -> Result<WireRr, String> {
        raw(rtype, ttl, rdata, None)
    }
}

fn hickory_name(name: &DomainName) -> Result<Name, String> {
    Name::from_ascii(name.as_str()).map_err(|e| format!("not a valid domain name: {e}"))
}

fn encode(
    rtype: RecordType,
    ttl: u32,
    rdata: &RData,
    target: Option<(u16, DomainName)>,
) -> Result<WireRr, String> {
    let mut rd = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut rd);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        rdata
            .emit(&mut enc)
            .map_err(|e| format!("cannot encode {rtype} record: {e}"))?;
    }
    raw(u16::from(rtype), ttl, &rd, target)
}

fn raw(
    rtype: u16,
    ttl: u32,
    rdata: &[u8],
    target: Option<(u16, DomainName)>,
) -> Result<WireRr, String> {
    let rdlen = u16::try_from(rdata.len())
        .map_err(|_| "record data longer than 65535 bytes".to_string())?;
    let mut bytes = Vec::with_capacity(10 + rdata.len());
    bytes.extend_from_slice(&rtype.to_be_bytes());
    bytes.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
    bytes.extend_from_slice(&ttl.to_be_bytes());
    bytes.extend_from_slice(&rdlen.to_be_bytes());
    bytes.extend_from_slice(rdata);
    let (name_at, target) = match target {
        Some((at, name)) => (Some(at), Some(name)),
        None => (None, None),
    };
    Ok(WireRr {
        bytes: bytes.into_boxed_slice(),
        name_at,
        target,
        link: Link::None,
    })
}

/// The record types accepted in `[[zones]] records`.
pub const STATIC_TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS", "DS"];

/// A record type's mnemonic (`A`, `AAAA`, `TYPE65534`), for messages.
pub fn type_name(rtype: u16) -> String {
    hickory_proto::rr::RecordType::from(rtype).to_string()
}

/// Parses a static record given as `type` and `value` in zone-file
/// presentation format (`"10 mail.example.test."` for MX, etc.). Relative
/// names in the value are completed with `origin`.
pub fn parse_record(
    rtype: &str,
    value: &str,
    origin: &DomainName,
    ttl: u32,
) -> Result<WireRr, String> {
    let value = value.trim();
    let name = |s: &str| DomainName::parse(s, Some(origin));
    let host = |s: &str| -> Result<DomainName, String> {
        let n = name(s)?;
        if n.is_hostname() {
            Ok(n)
        } else {
            Err(format!("`{s}` is not a host name"))
        }
    };
    let num = |s: Option<&str>, what: &str| -> Result<u16, String> {
        s.ok_or_else(|| format!("missing {what}"))?
            .parse::<u16>()
            .map_err(|_| format!("{what} must be a number in 0..=65535"))
    };
    match rtype.to_ascii_uppercase().as_str() {
        "A" => value
            .parse::<Ipv4Addr>()
            .map(|ip| WireRr::a(ttl, ip))
            .map_err(|_| format!("`{value}` is not an IPv4 address")),
        "AAAA" => value
            .parse::<Ipv6Addr>()
            .map(|ip| WireRr::aaaa(ttl, ip))
            .map_err(|_| format!("`{value}` is not an IPv6 address")),
        "CNAME" => WireRr::cname(ttl, &host(value)?),
        "NS" => WireRr::ns(ttl, &host(value)?),
        "TXT" => {
            if value.is_empty() {
                return Err("TXT value must not be empty".into());
            }
            // Long strings are split into 255-byte character-strings.
            let chunks: Vec<&[u8]> = value.as_bytes().chunks(255).collect();
            encode(
                RecordType::TXT,
                ttl,
                &RData::TXT(TXT::from_bytes(chunks)),
                None,
            )
        }
        "MX" => {
            let mut parts = value.split_whitespace();
            let pref = num(parts.next(), "MX preference")?;
            let exchange = host(parts.next().ok_or("MX needs `<preference> <host>`")?)?;
            if parts.next().is_some() {
                return Err("MX needs `<preference> <host>`".into());
            }
            let rd = RData::MX(MX::new(pref, hickory_name(&exchange)?));
            encode(RecordType::MX, ttl, &rd, Some((12, exchange)))
        }
        "SRV" => {
            let mut parts = value.split_whitespace();
            let prio = num(parts.next(), "SRV priority")?;
            let weight = num(parts.next(), "SRV weight")?;
            let port = num(parts.next(), "SRV port")?;
            let target = host(
                parts
                    .next()
                    .ok_or("SRV needs `<priority> <weight> <port> <host>`")?,
            )?;
            if parts.next().is_some() {
                return Err("SRV needs `<priority> <weight> <port> <host>`".into());
            }
            let rd = RData::SRV(SRV::new(prio, weight, port, hickory_name(&target)?));
            encode(RecordType::SRV, ttl, &rd, Some((16, target)))
        }
        "DS" => {
            // `<key tag> <algorithm> <digest type> <digest hex>` (RFC 4034 §5.3);
            // the digest may be split by spaces, as `dig` prints it.
            let mut parts = value.split_whitespace();
            let usage = "DS needs `<key tag> <algorithm> <digest type> <hex digest>`";
            let tag = num(parts.next(), "DS key tag")?;
            let alg: u8 = parts
                .next()
                .ok_or(usage)?
                .parse()
                .map_err(|_| "DS algorithm must be a number in 0..=255".to_string())?;
            let dtype: u8 = parts
                .next()
                .ok_or(usage)?
                .parse()
                .map_err(|_| "DS digest type must be a number in 0..=255".to_string())?;
            let hex: String = parts.collect();
            let digest = decode_hex(&hex).ok_or_else(|| {
                format!("DS digest `{hex}` must be hexadecimal (an even number of digits)")
            })?;
            let want = match dtype {
                1 => Some(20),
                2 => Some(32),
                4 => Some(48),
                _ => None,
            };
            if digest.is_empty() || want.is_some_and(|w| w != digest.len()) {
                return Err(format!(
                    "a digest of type {dtype} is {} bytes; this one is {}",
                    want.unwrap_or(0),
                    digest.len()
                ));
            }
            let mut rd = Vec::with_capacity(4 + digest.len());
            rd.extend_from_slice(&tag.to_be_bytes());
            rd.push(alg);
            rd.push(dtype);
            rd.extend_from_slice(&digest);
            raw(rtype::DS, ttl, &rd, None)
        }
        "CAA" => {
            let (flags, rest) = value
                .split_once(char::is_whitespace)
                .ok_or("CAA needs `<flags> <tag> \"<value>\"`")?;
            let flags: u8 = flags
                .parse()
                .map_err(|_| "CAA flags must be a number in 0..=255".to_string())?;
            let (tag, val) = rest
                .trim_start()
                .split_once(char::is_whitespace)
                .ok_or("CAA needs `<flags> <tag> \"<value>\"`")?;
            if tag.is_empty() || tag.len() > 15 || !tag.bytes().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("CAA tag `{tag}` must be 1-15 letters or digits"));
            }
            let val = val.trim();
            let val = val
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(val);
            let mut rd = vec![flags, tag.len() as u8];
            rd.extend_from_slice(tag.to_ascii_lowercase().as_bytes());
            rd.extend_from_slice(val.as_bytes());
            raw(rtype::CAA, ttl, &rd, None)
        }
        other => Err(format!(
            "unsupported record type `{other}` (supported: {})",
            STATIC_TYPES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

    fn origin() -> DomainName {
        DomainName::parse("tm.example.test.", None).unwrap()
    }

    /// Decodes a WireRr with hickory by prefixing the root name as owner.
    fn decode(rr: &WireRr) -> hickory_proto::rr::Record {
        let mut buf = vec![0u8];
        buf.extend_from_slice(rr.bytes());
        hickory_proto::rr::Record::read(&mut BinDecoder::new(&buf)).unwrap()
    }

    #[test]
    fn static_records_round_trip_through_hickory() {
        for (t, v, expect) in [
            ("A", "192.0.2.1", "192.0.2.1"),
            ("AAAA", "2001:db8::1", "2001:db8::1"),
            ("CNAME", "www", "www.tm.example.test."),
            ("MX", "10 mail", "10 mail.tm.example.test."),
            (
                "SRV",
                "1 2 443 api.example.com.",
                "1 2 443 api.example.com.",
            ),
            ("TXT", "v=spf1 -all", "v=spf1 -all"),
            (
                "CAA",
                "0 issue \"letsencrypt.org\"",
                "0 issue \"letsencrypt.org\"",
            ),
        ] {
            let rr = parse_record(t, v, &origin(), 300).unwrap();
            let rec = decode(&rr);
            assert_eq!(rec.ttl, 300);
            assert_eq!(rec.record_type().to_string(), t);
            assert_eq!(rec.data.to_string(), expect, "{t} {v}");
        }
    }

    #[test]
    fn name_span_points_at_rdata_name() {
        let rr = parse_record("MX", "10 mail", &origin(), 60).unwrap();
        let (at, len) = rr.name_span().unwrap();
        assert_eq!(&rr.bytes()[at..at + len], rr.target().unwrap().wire());
    }

    #[test]
    fn bad_values_are_explained() {
        let o = origin();
        assert!(
            parse_record("A", "1.2.3", &o, 1)
                .unwrap_err()
                .contains("IPv4")
        );
        assert!(parse_record("CNAME", "not a host!", &o, 1).is_err());
        assert!(
            parse_record("MX", "mail", &o, 1)
                .unwrap_err()
                .contains("preference")
        );
        assert!(
            parse_record("SPF", "x", &o, 1)
                .unwrap_err()
                .contains("unsupported")
        );
        assert!(parse_record("TXT", "", &o, 1).is_err());
    }

    #[test]
    fn long_txt_is_split() {
        let long = "x".repeat(600);
        let rr = parse_record("TXT", &long, &origin(), 1).unwrap();
        assert_eq!(rr.rdata().len(), 600 + 3);
    }
}

/// The record types present at a name, for the NSEC of a denial: types
/// below 512 (every type this server holds), as RFC 4034 §4.1.2 window
/// blocks 0 and 1.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TypeBitmap([u8; 64]);

impl Default for TypeBitmap {
    fn default() -> Self {
        TypeBitmap([0; 64])
    }
}

impl std::fmt::Debug for TypeBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types: Vec<u16> = (0..512).filter(|&t| self.contains(t)).collect();
        write!(f, "TypeBitmap{types:?}")
    }
}

impl TypeBitmap {
    /// Adds `t` (ignored at 512 and above).
    #[inline]
    pub fn set(&mut self, t: u16) {
        if t < 512 {
            self.0[(t / 8) as usize] |= 0x80 >> (t % 8);
        }
    }

    /// Removes `t`.
    #[inline]
    pub fn clear(&mut self, t: u16) {
        if t < 512 {
            self.0[(t / 8) as usize] &= !(0x80 >> (t % 8));
        }
    }

    /// Whether `t` is present.
    #[inline]
    pub fn contains(&self, t: u16) -> bool {
        t < 512 && self.0[(t / 8) as usize] & (0x80 >> (t % 8)) != 0
    }

    /// Appends the type bit maps field of an NSEC RDATA: for each window
    /// with a type, its number, the length of its map without trailing
    /// zero bytes, and the map.
    pub fn write(&self, out: &mut Vec<u8>) {
        for (window, map) in self.0.chunks(32).enumerate() {
            let Some(last) = map.iter().rposition(|&b| b != 0) else {
                continue;
            };
            out.push(window as u8);
            out.push(last as u8 + 1);
            out.extend_from_slice(&map[..=last]);
        }
    }
}

#[cfg(test)]
mod bitmap_tests {
    use super::*;

    #[test]
    fn type_bitmap_is_written_as_rfc_4034_windows() {
        // RFC 4034 §4.3: A MX RRSIG NSEC TYPE1234 -> here types < 512 only.
        let mut b = TypeBitmap::default();
        for t in [rtype::A, rtype::MX, rtype::RRSIG, rtype::NSEC] {
            b.set(t);
        }
        let mut out = Vec::new();
        b.write(&mut out);
        assert_eq!(out, [0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03]);
        b.set(rtype::CAA);
        b.clear(rtype::MX);
        assert!(!b.contains(rtype::MX) && b.contains(rtype::CAA));
        let mut out = Vec::new();
        b.write(&mut out);
        assert_eq!(
            out,
            [
                0x00, 0x06, 0x40, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x01, 0x40
            ]
        );
    }
}
