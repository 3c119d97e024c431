//! Making an RRSIG for one RRset (RFC 4034 §3, RFC 4035 §2.2).
//!
//! The answer path holds records as encoded bytes; this decodes them into
//! hickory's types only to let hickory build the signed data (canonical
//! names and RR order, RFC 4034 §6) and sign it. That is the slow path:
//! signatures are cached (see `cache`), so it runs once per RRset and
//! validity period.

use hickory_proto::dnssec::TBS;
use hickory_proto::dnssec::rdata::SigInput;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::{
    BinDecodable as _, BinDecoder, BinEncodable as _, BinEncoder, NameEncoding, Restrict,
};

use super::key::ZoneKey;
use crate::proto::name::{DomainName, is_suffix};

/// The RRSIG record type.
pub const RRSIG: u16 = 46;

/// Class IN.
const CLASS_IN: u16 = 1;

/// Signs one RRset and returns its RRSIG resource record *without its
/// owner name* (the caller writes the owner, which for a wildcard answer is
/// the query name): TYPE (46), CLASS (IN), TTL (`ttl`), RDLENGTH, RDATA.
///
/// - `owner`: the RRset's owner in uncompressed wire form (lowercase
///   preferably: it is lowercased here anyway); for a
///   wildcard RRset the `*` name itself (the Labels field then leaves the
///   `*` out, so validators can check the expansion).
/// - `rdatas`: the uncompressed RDATA of each record. Names inside may be in
///   any case and the records in any order: the signed data is built in
///   canonical form, and duplicates count once (RFC 4034 §6.3).
/// - `inception`, `expiration`: Unix seconds (serial-number arithmetic,
///   RFC 4034 §3.1.5, makes them wrap in 2106).
///
/// Errors (a malformed owner or RDATA, an owner outside the zone, an
/// unsignable type) are for the caller to log and answer SERVFAIL.
#[allow(clippy::too_many_arguments)]
pub fn sign_rrset(
    key: &ZoneKey,
    zone: &DomainName,
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    rdatas: &[&[u8]],
    inception: u32,
    expiration: u32,
) -> Result<Vec<u8>, String> {
    let record_type = RecordType::from(rtype);
    if matches!(
        record_type,
        RecordType::RRSIG | RecordType::OPT | RecordType::ANY | RecordType::AXFR | RecordType::IXFR
    ) {
        return Err(format!("type {record_type} is never signed"));
    }
    if rdatas.is_empty() {
        return Err("an empty RRset has nothing to sign".into());
    }
    // Lowercase whatever the caller passed: the zone check compares bytes
    // (label lengths are below 64, so only letters change).
    let owner = &owner.to_ascii_lowercase()[..];
    if !is_suffix(owner, zone.wire()) {
        return Err(format!(
            "owner {} is not in zone {zone}",
            crate::proto::name::render(owner)
        ));
    }
    let owner_name = read_name(owner).map_err(|e| format!("owner name: {e}"))?;
    let signer_name = read_name(zone.wire()).map_err(|e| format!("zone name: {e}"))?;

    // Each RDATA in canonical form (names uncompressed, and lowercased for
    // the types RFC 4034 §6.2 and RFC 6840 §5.1 list), sorted and without
    // duplicates: RFC 4034 §6.3 order. Hickory sorts again, but by the
    // bytes of its non-canonical encoding, which disagrees when names in
    // the RDATA differ in case: decoding the canonical form back first
    // makes both orders the same.
    let mut canonical: Vec<Vec<u8>> = Vec::with_capacity(rdatas.len());
    for (i, rdata) in rdatas.iter().enumerate() {
        let data = read_rdata(rdata, record_type)
            .map_err(|e| format!("record {} of the {record_type} RRset: {e}", i + 1))?;
        let mut bytes = Vec::with_capacity(rdata.len());
        let mut enc = BinEncoder::new(&mut bytes);
        enc.set_canonical_form(true);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        data.emit(&mut enc)
            .map_err(|e| format!("record {} of the {record_type} RRset: {e}", i + 1))?;
        canonical.push(bytes);
    }
    canonical.sort_unstable();
    canonical.dedup();
    let mut records = Vec::with_capacity(canonical.len());
    for bytes in &canonical {
        let data = read_rdata(bytes, record_type)?;
        if data.record_type() != record_type {
            return Err(format!(
                "RDATA read as {} instead of {record_type}",
                data.record_type()
            ));
        }
        records.push(Record::from_rdata(owner_name.clone(), ttl, data));
    }

    let labels = owner_name.num_labels(); // without a leading `*`
    let input = SigInput {
        type_covered: record_type,
        algorithm: key.algorithm().hickory(),
        num_labels: labels,
        original_ttl: ttl,
        sig_expiration: SerialNumber::new(expiration),
        sig_inception: SerialNumber::new(inception),
        key_tag: key.key_tag(),
        signer_name,
    };
    let tbs = TBS::from_input(&owner_name, DNSClass::IN, &input, records.iter())
        .map_err(|e| format!("cannot build the data to sign: {e}"))?;
    let signature = key.sign(&tbs)?;

    let rdlength = 18 + zone.wire().len() + signature.len();
    let rdlength =
        u16::try_from(rdlength).map_err(|_| format!("RRSIG RDATA of {rdlength} bytes"))?;
    let mut rr = Vec::with_capacity(10 + usize::from(rdlength));
    rr.extend_from_slice(&RRSIG.to_be_bytes());
    rr.extend_from_slice(&CLASS_IN.to_be_bytes());
    rr.extend_from_slice(&ttl.to_be_bytes());
    rr.extend_from_slice(&rdlength.to_be_bytes());
    rr.extend_from_slice(&rtype.to_be_bytes());
    rr.push(key.algorithm().number());
    rr.push(labels);
    rr.extend_from_slice(&ttl.to_be_bytes());
    rr.extend_from_slice(&expiration.to_be_bytes());
    rr.extend_from_slice(&inception.to_be_bytes());
    rr.extend_from_slice(&key.key_tag().to_be_bytes());
    rr.extend_from_slice(zone.wire()); // signer name: lowercase, uncompressed
    rr.extend_from_slice(&signature);
    Ok(rr)
}

/// A whole wire name, nothing after it.
fn read_name(wire: &[u8]) -> Result<Name, String> {
    let mut dec = BinDecoder::new(wire);
    let name = Name::read(&mut dec).map_err(|e| e.to_string())?;
    if !dec.is_empty() {
        return Err(format!("{} bytes after the name", dec.len()));
    }
    Ok(name)
}

/// One whole RDATA of `record_type`, nothing after it.
fn read_rdata(rdata: &[u8], record_type: RecordType) -> Result<RData, String> {
    let len = u16::try_from(rdata.len()).map_err(|_| "RDATA longer than 65535 bytes")?;
    let mut dec = BinDecoder::new(rdata);
    let data = RData::read(&mut dec, record_type, Restrict::new(len))
        .map_err(|e| format!("malformed RDATA: {e}"))?;
    if !dec.is_empty() {
        return Err(format!(
            "malformed RDATA: {} bytes left after the record",
            dec.len()
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use hickory_proto::dnssec::Verifier as _;
    use hickory_proto::dnssec::rdata::{DNSKEY, NSEC, RRSIG as Rrsig};
    use hickory_proto::rr::RecordData as _;
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};

    use super::*;
    use crate::dnssec::key::{Algorithm, KeyFile};

    const INCEPTION: u32 = 1_796_000_000;
    const EXPIRATION: u32 = INCEPTION + 7 * 86_400;

    fn zone() -> DomainName {
        DomainName::parse("tm.example.test.", None).unwrap()
    }

    fn key(alg: Algorithm) -> ZoneKey {
        ZoneKey::from_file(KeyFile::generate(&zone(), alg).unwrap()).unwrap()
    }

    fn wire(name: &str) -> Vec<u8> {
        DomainName::parse(name, None).unwrap().wire().to_vec()
    }

    fn bytes(data: &RData) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = BinEncoder::new(&mut out);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        data.emit(&mut enc).unwrap();
        out
    }

    /// Checks the RRSIG's fixed fields and verifies it with hickory's own
    /// verifier, from the DNSKEY RDATA alone, over `records` (owner `name`).
    fn verify(
        key: &ZoneKey,
        rr: &[u8],
        rtype: RecordType,
        ttl: u32,
        name: &str,
        records: &[RData],
    ) -> Result<Rrsig, String> {
        assert_eq!(&rr[..4], &[0, 46, 0, 1]);
        assert_eq!(&rr[4..8], &ttl.to_be_bytes());
        let rdlength = u16::from_be_bytes([rr[8], rr[9]]);
        assert_eq!(usize::from(rdlength), rr.len() - 10);
        let rdata = read_rdata(&rr[10..], RecordType::RRSIG)?;
        let rrsig = Rrsig::try_borrow(&rdata).unwrap().clone();
        let input = rrsig.input();
        assert_eq!(input.type_covered, rtype);
        assert_eq!(u8::from(input.algorithm), key.algorithm().number());
        assert_eq!(input.original_ttl, ttl);
        assert_eq!(input.sig_inception.get(), INCEPTION);
        assert_eq!(input.sig_expiration.get(), EXPIRATION);
        assert_eq!(input.key_tag, key.key_tag());
        assert_eq!(
            input.signer_name,
            Name::from_ascii("tm.example.test.").unwrap()
        );
        assert_eq!(rrsig.sig().len(), 64);

        let dnskey = read_rdata(key.dnskey_rdata(), RecordType::DNSKEY).unwrap();
        let dnskey = DNSKEY::try_borrow(&dnskey).unwrap();
        assert!(dnskey.zone_key() && dnskey.secure_entry_point());
        let name = Name::from_ascii(name).unwrap();
        let records: Vec<Record> = records
            .iter()
            .map(|d| Record::from_rdata(name.clone(), ttl, d.clone()))
            .collect();
        dnskey
            .verify_rrsig(&name, DNSClass::IN, &rrsig, records.iter())
            .map_err(|e| e.to_string())?;
        Ok(rrsig)
    }

    fn both() -> [ZoneKey; 2] {
        [key(Algorithm::EcdsaP256Sha256), key(Algorithm::Ed25519)]
    }

    #[test]
    fn an_a_rrset_verifies_and_a_tampered_one_does_not() {
        for key in both() {
            let a = [
                RData::A(A::new(192, 0, 2, 10)),
                RData::A(A::new(192, 0, 2, 9)),
            ];
            let rdatas: Vec<Vec<u8>> = a.iter().map(bytes).collect();
            let refs: Vec<&[u8]> = rdatas.iter().map(Vec::as_slice).collect();
            let owner = wire("todoapi.tm.example.test.");
            let rr =
                sign_rrset(&key, &zone(), &owner, 1, 60, &refs, INCEPTION, EXPIRATION).unwrap();
            let sig = verify(&key, &rr, RecordType::A, 60, "todoapi.tm.example.test.", &a).unwrap();
            assert_eq!(sig.input().num_labels, 4);
            // Either order, either case of the owner, verifies.
            let reversed = [a[1].clone(), a[0].clone()];
            verify(
                &key,
                &rr,
                RecordType::A,
                60,
                "ToDoApi.TM.example.test.",
                &reversed,
            )
            .unwrap();

            let tampered = [
                RData::A(A::new(192, 0, 2, 10)),
                RData::A(A::new(192, 0, 2, 11)),
            ];
            let e = verify(
                &key,
                &rr,
                RecordType::A,
                60,
                "todoapi.tm.example.test.",
                &tampered,
            )
            .unwrap_err();
            assert!(e.contains("verification failed"), "{e}");
            let e = verify(&key, &rr, RecordType::A, 60, "other.tm.example.test.", &a).unwrap_err();
            assert!(e.contains("verification failed"), "{e}");
            // A different TTL changes the signed data too.
            let mut other_ttl = rr.clone();
            other_ttl[4..8].copy_from_slice(&61u32.to_be_bytes());
            other_ttl[14..18].copy_from_slice(&61u32.to_be_bytes()); // original TTL
            assert!(
                verify(
                    &key,
                    &other_ttl,
                    RecordType::A,
                    61,
                    "todoapi.tm.example.test.",
                    &a
                )
                .is_err()
            );
        }
    }

    #[test]
    fn cname_soa_and_nsec_rrsets_verify() {
        for key in both() {
            let owner = "www.tm.example.test.";
            // Upper case in the RDATA: canonical form lowercases it.
            let cname = RData::CNAME(CNAME(Name::from_ascii("ToDoApi.TM.example.test.").unwrap()));
            let rr = sign_rrset(
                &key,
                &zone(),
                &wire(owner),
                5,
                300,
                &[&bytes(&cname)],
                INCEPTION,
                EXPIRATION,
            )
            .unwrap();
            let lower = RData::CNAME(CNAME(Name::from_ascii("todoapi.tm.example.test.").unwrap()));
            verify(&key, &rr, RecordType::CNAME, 300, owner, &[lower]).unwrap();

            let soa = RData::SOA(SOA::new(
                Name::from_ascii("NS1.tm.example.test.").unwrap(),
                Name::from_ascii("hostmaster.tm.example.test.").unwrap(),
                2026120201,
                3600,
                600,
                86400,
                60,
            ));
            let rr = sign_rrset(
                &key,
                &zone(),
                zone().wire(),
                6,
                3600,
                &[&bytes(&soa)],
                INCEPTION,
                EXPIRATION,
            )
            .unwrap();
            let sig = verify(&key, &rr, RecordType::SOA, 3600, "tm.example.test.", &[soa]).unwrap();
            assert_eq!(sig.input().num_labels, 3);

            let nsec = NSEC::new(
                Name::from_labels([&b"\0"[..], b"nope", b"tm", b"example", b"test"]).unwrap(),
                [RecordType::RRSIG, RecordType::NSEC],
            )
            .into_rdata();
            let owner = "nope.tm.example.test.";
            let rr = sign_rrset(
                &key,
                &zone(),
                &wire(owner),
                47,
                60,
                &[&bytes(&nsec)],
                INCEPTION,
                EXPIRATION,
            )
            .unwrap();
            verify(&key, &rr, RecordType::NSEC, 60, owner, &[nsec]).unwrap();
        }
    }

    /// RFC 4034 §6.3 orders the RRset by canonical RDATA; names in NS RDATA
    /// are lowercased first, so `B.…` sorts after `a.…`, and a duplicate
    /// counts once.
    #[test]
    fn rrsets_are_signed_in_canonical_order() {
        for key in both() {
            let ns = |n: &str| RData::NS(NS(Name::from_ascii(n).unwrap()));
            let given = [
                ns("B.ns.example."),
                ns("a.ns.example."),
                ns("b.ns.example."),
            ];
            let rdatas: Vec<Vec<u8>> = given.iter().map(bytes).collect();
            let refs: Vec<&[u8]> = rdatas.iter().map(Vec::as_slice).collect();
            let rr = sign_rrset(
                &key,
                &zone(),
                zone().wire(),
                2,
                3600,
                &refs,
                INCEPTION,
                EXPIRATION,
            )
            .unwrap();
            let canonical = [ns("a.ns.example."), ns("b.ns.example.")];
            verify(
                &key,
                &rr,
                RecordType::NS,
                3600,
                "tm.example.test.",
                &canonical,
            )
            .unwrap();
        }
    }

    #[test]
    fn a_wildcard_owner_leaves_the_star_out_of_labels() {
        for key in both() {
            let a = [RData::A(A::new(192, 0, 2, 1))];
            let rr = sign_rrset(
                &key,
                &zone(),
                &wire("*.w.tm.example.test."),
                1,
                60,
                &[&bytes(&a[0])],
                INCEPTION,
                EXPIRATION,
            )
            .unwrap();
            // Labels is byte 10+3 of the record: 4 (w.tm.example.test), not 5.
            assert_eq!(rr[13], 4);
            // A validator checks it against the expanded name.
            let sig = verify(
                &key,
                &rr,
                RecordType::A,
                60,
                "anything.w.tm.example.test.",
                &a,
            )
            .unwrap();
            assert_eq!(sig.input().num_labels, 4);
            verify(&key, &rr, RecordType::A, 60, "*.w.tm.example.test.", &a).unwrap();
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let key = key(Algorithm::Ed25519);
        let a = [192u8, 0, 2, 1];
        let sign = |owner: &[u8], rtype: u16, rdatas: &[&[u8]]| {
            sign_rrset(
                &key,
                &zone(),
                owner,
                rtype,
                60,
                rdatas,
                INCEPTION,
                EXPIRATION,
            )
        };
        let owner = wire("x.tm.example.test.");
        let e = sign(&wire("x.example.com."), 1, &[&a]).unwrap_err();
        assert!(e.contains("not in zone tm.example.test."), "{e}");
        let e = sign(&owner, 1, &[]).unwrap_err();
        assert!(e.contains("empty RRset"), "{e}");
        let e = sign(&owner, 46, &[&a]).unwrap_err();
        assert!(e.contains("never signed"), "{e}");
        let e = sign(&owner, 1, &[&a[..3]]).unwrap_err();
        assert!(
            e.contains("record 1 of the A RRset: malformed RDATA"),
            "{e}"
        );
        let e = sign(&owner, 1, &[&a, &[1, 2, 3, 4, 5]]).unwrap_err();
        assert!(e.contains("record 2 of the A RRset"), "{e}");
        let mut trailing = owner.clone();
        trailing.push(7);
        assert!(sign(&trailing, 1, &[&a]).is_err());
        // A compression pointer has nothing to point into.
        let e = sign(&owner, 5, &[&[0xc0, 0x0c]]).unwrap_err();
        assert!(e.contains("malformed RDATA"), "{e}");
        // An unknown type is signed as opaque bytes.
        let rr = sign(&owner, 65_280, &[&[1, 2, 3]]).unwrap();
        assert_eq!(&rr[10..12], &65_280u16.to_be_bytes());
    }

    #[test]
    fn ecdsa_signatures_are_randomised_ed25519_ones_deterministic() {
        let a: &[u8] = &[192, 0, 2, 1];
        let owner = wire("x.tm.example.test.");
        let [ecdsa, ed] = both();
        let sign = |k: &ZoneKey| {
            sign_rrset(k, &zone(), &owner, 1, 60, &[a], INCEPTION, EXPIRATION).unwrap()
        };
        assert_ne!(sign(&ecdsa), sign(&ecdsa));
        assert_eq!(sign(&ed), sign(&ed));
    }

    /// Cold signing cost, one RRset of two A records:
    /// `cargo test --release --lib dnssec::rrsig::tests::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing() {
        let rdatas: [&[u8]; 2] = [&[192, 0, 2, 1], &[192, 0, 2, 2]];
        let owner = wire("todoapi.tm.example.test.");
        for key in both() {
            let first = std::time::Instant::now();
            let rr = sign_rrset(&key, &zone(), &owner, 1, 60, &rdatas, INCEPTION, EXPIRATION);
            let first = first.elapsed();
            std::hint::black_box(rr.unwrap());
            let n = 2000;
            let start = std::time::Instant::now();
            for i in 0..n {
                let rr = sign_rrset(
                    &key,
                    &zone(),
                    &owner,
                    1,
                    60,
                    &rdatas,
                    INCEPTION + i,
                    EXPIRATION,
                )
                .unwrap();
                std::hint::black_box(rr);
            }
            let per = start.elapsed() / n;
            println!(
                "{:?}: the first {first:?}, then {per:?} per signature",
                key.algorithm()
            );
        }
    }
}
