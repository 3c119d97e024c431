//! Zone signing keys: the key file (our own small TOML format), writing a
//! new one safely, and the loaded key with its DNSKEY and DS records.
//!
//! One key per zone, used both as the key-signing and the zone-signing key
//! (a combined signing key, flags 257): online signing keeps the private key
//! on the server anyway, so a KSK/ZSK split would protect nothing and only
//! add a second rollover to get wrong.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::SystemTime;

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{self as hdnssec, DigestType, PublicKey as _, SigningKey as _, TBS};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder, BinEncodable as _};
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde::Deserialize;

use crate::proto::name::DomainName;

/// Largest key file read: a real one is about 300 bytes.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// DNSKEY flags of a combined signing key: Zone Key (bit 7) and Secure Entry
/// Point (bit 15), so the parent's DS may point at it.
const FLAGS_ZONE_SEP: u16 = 257;

/// A DNSSEC signing algorithm. Only the two that every validator supports
/// and that make small signatures (RFC 8624: MUST implement, recommended
/// for signing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// ECDSA with curve P-256 and SHA-256 (algorithm 13, RFC 6605): 64-byte
    /// signatures; the default, as it is the most widely deployed.
    #[default]
    EcdsaP256Sha256,
    /// Ed25519 (algorithm 15, RFC 8080): 64-byte signatures, deterministic.
    Ed25519,
}

impl Algorithm {
    /// Parses the name used in key files and on the command line,
    /// `ecdsap256sha256` or `ed25519`, in any case.
    pub fn parse(text: &str) -> Result<Algorithm, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ecdsap256sha256" => Ok(Algorithm::EcdsaP256Sha256),
            "ed25519" => Ok(Algorithm::Ed25519),
            _ => Err(format!(
                "unknown DNSSEC algorithm `{}` (expected `ecdsap256sha256` or `ed25519`)",
                crate::fsutil::shown(text)
            )),
        }
    }

    /// The IANA algorithm number: 13 or 15.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The name [`Algorithm::parse`] reads: `ecdsap256sha256`, `ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ecdsap256sha256",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    /// The IANA mnemonic, as zone files and `dig` print it.
    fn mnemonic(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::Ed25519 => "ED25519",
        }
    }

    pub(super) fn hickory(self) -> hdnssec::Algorithm {
        match self {
            Algorithm::EcdsaP256Sha256 => hdnssec::Algorithm::ECDSAP256SHA256,
            Algorithm::Ed25519 => hdnssec::Algorithm::ED25519,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The private half, as the crypto library holds it. A closed set: one
/// variant per [`Algorithm`].
enum KeyPair {
    Ecdsa(EcdsaSigningKey),
    Ed25519(Ed25519SigningKey),
}

impl KeyPair {
    /// Decodes PKCS#8 DER, which must hold a key of `algorithm`.
    fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<KeyPair, String> {
        let der = PrivatePkcs8KeyDer::from(der);
        let pair = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                EcdsaSigningKey::from_pkcs8(&der, algorithm.hickory()).map(KeyPair::Ecdsa)
            }
            Algorithm::Ed25519 => Ed25519SigningKey::from_pkcs8(&der).map(KeyPair::Ed25519),
        };
        // The library's error says only "unspecified": say what was expected.
        pair.map_err(|_| {
            format!(
                "private_key is not a PKCS#8 {} key (the file says algorithm = \"{}\")",
                algorithm.mnemonic(),
                algorithm.name()
            )
        })
    }

    fn public_key(&self) -> Result<hdnssec::PublicKeyBuf, String> {
        match self {
            KeyPair::Ecdsa(k) => k.to_public_key(),
            KeyPair::Ed25519(k) => k.to_public_key(),
        }
        .map_err(|e| format!("cannot derive the public key: {e}"))
    }

    fn sign(&self, tbs: &TBS) -> Result<Vec<u8>, String> {
        match self {
            KeyPair::Ecdsa(k) => k.sign(tbs),
            KeyPair::Ed25519(k) => k.sign(tbs),
        }
        .map_err(|e| format!("signing failed: {e}"))
    }
}

/// A key file's contents: which zone the key signs, with what, since when,
/// and the private key itself.
///
/// The text form (written by [`KeyFile::to_text`], read by
/// [`KeyFile::parse`]) is TOML with a comment header:
///
/// ```text
/// # Switchyard DNSSEC signing key (combined KSK/ZSK) for zone tm.example.test.
/// # Key tag 12345, algorithm 13 (ECDSAP256SHA256). Keep this file secret (mode 0600).
/// zone = "tm.example.test."
/// algorithm = "ecdsap256sha256"
/// created = "2026-12-02T10:00:00Z"
/// private_key = "<base64 of the PKCS#8 DER>"
/// ```
pub struct KeyFile {
    zone: DomainName,
    algorithm: Algorithm,
    created: SystemTime,
    /// PKCS#8 DER. Never printed (see the `Debug` impl).
    private_key: Vec<u8>,
    /// Derived from the key when it was checked; only for the header.
    key_tag: u16,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("zone", &self.zone)
            .field("algorithm", &self.algorithm)
            .field("key_tag", &self.key_tag)
            .finish_non_exhaustive()
    }
}

/// The key file as TOML has it, before any checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyFile {
    zone: String,
    algorithm: String,
    created: String,
    private_key: String,
}

impl KeyFile {
    /// A new random key for `zone`, from the operating system's generator.
    pub fn generate(zone: &DomainName, algorithm: Algorithm) -> Result<KeyFile, String> {
        let der = match algorithm {
            Algorithm::EcdsaP256Sha256 => EcdsaSigningKey::generate_pkcs8(algorithm.hickory()),
            Algorithm::Ed25519 => Ed25519SigningKey::generate_pkcs8(),
        }
        .map_err(|e| format!("cannot generate a {} key: {e}", algorithm.mnemonic()))?;
        let private_key = der.secret_pkcs8_der().to_vec();
        // Whole seconds, as the file stores them: a generated key and the
        // same key read back are equal.
        let created = crate::clock::from_unix_millis(
            u64::from(crate::clock::unix_secs(SystemTime::now())) * 1000,
        );
        Self::checked(zone.clone(), algorithm, created, private_key)
    }

    /// Checks that the key is one of `algorithm` and works out its tag.
    fn checked(
        zone: DomainName,
        algorithm: Algorithm,
        created: SystemTime,
        private_key: Vec<u8>,
    ) -> Result<KeyFile, String> {
        let pair = KeyPair::from_pkcs8(algorithm, &private_key)?;
        let dnskey = DNSKEY::with_flags(FLAGS_ZONE_SEP, pair.public_key()?);
        let key_tag = dnskey
            .calculate_key_tag()
            .map_err(|e| format!("cannot compute the key tag: {e}"))?;
        Ok(KeyFile {
            zone,
            algorithm,
            created,
            private_key,
            key_tag,
        })
    }

    /// Reads a key file's text. Unknown fields are refused (a typo would
    /// otherwise be silently ignored), and so is a key that is not of the
    /// algorithm the file declares. Messages never quote the private key.
    pub fn parse(text: &str) -> Result<KeyFile, String> {
        let raw: RawKeyFile = toml::from_str(text).map_err(|e| {
            // The message and line alone: the rendered error would quote
            // the line, which may be the private key. A missing field has
            // no line of its own (its span is the whole file).
            let line = e
                .span()
                .filter(|_| !e.message().starts_with("missing field"))
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("line {line}: {}", e.message().trim_end()),
                None => e.message().trim_end().to_string(),
            }
        })?;
        let zone = DomainName::parse(&raw.zone, None)
            .map_err(|e| format!("zone: `{}`: {e}", crate::fsutil::shown(&raw.zone)))?;
        let algorithm = Algorithm::parse(&raw.algorithm).map_err(|e| format!("algorithm: {e}"))?;
        let created = humantime::parse_rfc3339(raw.created.trim()).map_err(|e| {
            format!(
                "created: `{}` is not an RFC 3339 time such as 2026-12-02T10:00:00Z ({e})",
                crate::fsutil::shown(&raw.created)
            )
        })?;
        let b64: String = raw
            .private_key
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let private_key = data_encoding::BASE64
            .decode(b64.as_bytes())
            .map_err(|e| format!("private_key is not valid base64 ({e})"))?;
        Self::checked(zone, algorithm, created, private_key)
    }

    /// The file's text, with a comment header that names the zone, the key
    /// tag and the algorithm.
    pub fn to_text(&self) -> String {
        let zone = toml::Value::String(self.zone.as_str().to_string());
        format!(
            "# Switchyard DNSSEC signing key (combined KSK/ZSK) for zone {zone_text}\n\
             # Key tag {tag}, algorithm {num} ({mnemonic}). Keep this file secret (mode 0600).\n\
             zone = {zone}\n\
             algorithm = \"{alg}\"\n\
             created = \"{created}\"\n\
             private_key = \"{key}\"\n",
            zone_text = self.zone,
            tag = self.key_tag,
            num = self.algorithm.number(),
            mnemonic = self.algorithm.mnemonic(),
            alg = self.algorithm.name(),
            created = crate::clock::rfc3339_seconds(self.created),
            key = data_encoding::BASE64.encode(&self.private_key),
        )
    }

    /// The zone the key signs.
    pub fn zone(&self) -> &DomainName {
        &self.zone
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// When the key was made.
    pub fn created(&self) -> SystemTime {
        self.created
    }

    /// The key tag of its DNSKEY (flags 257).
    pub fn key_tag(&self) -> u16 {
        self.key_tag
    }
}

/// Writes a new key file at `path`: the parent directory is created (mode
/// 0700) if missing, the file is created with mode 0600 and written
/// durably (fsync of the file, then of the directory).
///
/// An existing file is never overwritten unless `force`: if that key is
/// published (its DS at the parent), replacing it makes the zone fail
/// validation everywhere until the parent's DS is changed and the old one
/// has expired from caches. With `force` the new file replaces the old one
/// atomically (a temporary file renamed over it).
pub fn write_new(path: &Path, text: &str, force: bool) -> Result<(), String> {
    let shown = path.display();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    let write = |target: &Path| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)?;
        // The mode above is filtered by the umask; make it exactly 0600.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
        if written.is_err() {
            let _ = std::fs::remove_file(target);
        }
        written
    };
    if force {
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let _ = std::fs::remove_file(&tmp);
        write(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("cannot replace {shown}: {e}"));
        }
    } else {
        write(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{shown} already exists; not overwriting it: if that key is published (its DS record at the parent zone), \
                     replacing it breaks DNSSEC validation of the zone until the parent's DS is changed \
                     (use --force to replace it anyway)"
                )
            } else {
                format!("cannot write {shown}: {e}")
            }
        })?;
    }
    // The new directory entry must survive a power cut too.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync the directory {}: {e}", dir.display()))
}

/// True when anyone but the owner may read or write the file at `path`
/// (mode & 0o077): a private key should be 0600. False if it cannot be
/// examined.
pub fn is_readable_by_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// A loaded signing key for one zone, with its DNSKEY and DS records
/// encoded once, at load time.
pub struct ZoneKey {
    zone: DomainName,
    algorithm: Algorithm,
    key_tag: u16,
    pair: KeyPair,
    /// The DNSKEY RDATA (flags 257, protocol 3, algorithm, public key).
    dnskey: DNSKEY,
    dnskey_rdata: Box<[u8]>,
    /// The DS with a SHA-256 digest, for `zone`.
    ds: DS,
    ds_rdata: Box<[u8]>,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKey")
            .field("zone", &self.zone)
            .field("key_tag", &self.key_tag)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn hickory_name(name: &DomainName) -> Result<Name, String> {
    Name::read(&mut BinDecoder::new(name.wire())).map_err(|e| format!("bad name {name}: {e}"))
}

impl ZoneKey {
    /// Reads the key file at `path` for `zone`; refuses a key made for
    /// another zone. Errors name the file.
    pub fn load(path: &Path, zone: &DomainName) -> Result<ZoneKey, String> {
        let shown = path.display();
        let text = crate::fsutil::read_text(path, MAX_KEY_FILE, "key files")
            .map_err(|e| format!("{shown}: {e}"))?;
        let file = KeyFile::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
        if file.zone != *zone {
            return Err(format!(
                "{shown}: this key is for zone {}, not {zone}",
                file.zone
            ));
        }
        ZoneKey::from_file(file).map_err(|e| format!("{shown}: {e}"))
    }

    /// The key of a parsed (or generated) key file.
    pub fn from_file(file: KeyFile) -> Result<ZoneKey, String> {
        let KeyFile {
            zone,
            algorithm,
            private_key,
            ..
        } = file;
        let pair = KeyPair::from_pkcs8(algorithm, &private_key)?;
        let public = pair.public_key()?;
        debug_assert_eq!(public.algorithm(), algorithm.hickory());
        let dnskey = DNSKEY::with_flags(FLAGS_ZONE_SEP, public);
        let key_tag = dnskey
            .calculate_key_tag()
            .map_err(|e| format!("cannot compute the key tag: {e}"))?;
        let dnskey_rdata = dnskey
            .to_bytes()
            .map_err(|e| format!("cannot encode the DNSKEY: {e}"))?
            .into_boxed_slice();
        let ds = Self::ds_for(&dnskey, key_tag, algorithm, &zone)?;
        let ds_rdata = ds
            .to_bytes()
            .map_err(|e| format!("cannot encode the DS: {e}"))?
            .into_boxed_slice();
        Ok(ZoneKey {
            zone,
            algorithm,
            key_tag,
            pair,
            dnskey,
            dnskey_rdata,
            ds,
            ds_rdata,
        })
    }

    fn ds_for(
        dnskey: &DNSKEY,
        key_tag: u16,
        algorithm: Algorithm,
        zone: &DomainName,
    ) -> Result<DS, String> {
        let digest = dnskey
            .to_digest(&hickory_name(zone)?, DigestType::SHA256)
            .map_err(|e| format!("cannot compute the DS digest: {e}"))?;
        Ok(DS::new(
            key_tag,
            algorithm.hickory(),
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }

    /// The zone the key signs (its signer name).
    pub fn zone(&self) -> &DomainName {
        &self.zone
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key tag (RFC 4034 appendix B) of its DNSKEY.
    pub fn key_tag(&self) -> u16 {
        self.key_tag
    }

    /// The DNSKEY RDATA: flags 257 (zone key, secure entry point), protocol
    /// 3, algorithm, public key.
    pub fn dnskey_rdata(&self) -> &[u8] {
        &self.dnskey_rdata
    }

    /// The DS RDATA for the key's zone: key tag, algorithm, digest type 2
    /// (SHA-256), digest.
    pub fn ds_rdata(&self) -> &[u8] {
        &self.ds_rdata
    }

    /// The DS record in presentation form, for the parent zone:
    /// `tm.example.test. 3600 IN DS 12345 13 2 ABCD…` (SHA-256 digest in
    /// upper-case hex). `zone` is the owner printed: the key's own zone, as
    /// the configuration spells it.
    pub fn ds_text(&self, zone: &DomainName, ttl: u32) -> String {
        debug_assert_eq!(zone, &self.zone, "a DS only fits its key's zone");
        format!("{zone} {ttl} IN DS {}", self.ds)
    }

    /// The DNSKEY record in presentation form:
    /// `tm.example.test. 3600 IN DNSKEY 257 3 13 <base64>`.
    pub fn dnskey_text(&self, zone: &DomainName, ttl: u32) -> String {
        format!("{zone} {ttl} IN DNSKEY {}", self.dnskey)
    }

    /// Signs the data an RRSIG covers (see `rrsig::sign_rrset`). ECDSA
    /// signatures are the 64-byte `r || s` form of RFC 6605, Ed25519 ones
    /// the 64 bytes of RFC 8080.
    pub fn sign(&self, tbs: &TBS) -> Result<Vec<u8>, String> {
        self.pair.sign(tbs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> DomainName {
        DomainName::parse("tm.example.test.", None).unwrap()
    }

    #[test]
    fn keys_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<ZoneKey>();
        shared::<crate::dnssec::SigCache>();
    }

    #[test]
    fn algorithms_parse_in_any_case() {
        assert_eq!(
            Algorithm::parse("ECDSAP256SHA256").unwrap(),
            Algorithm::EcdsaP256Sha256
        );
        assert_eq!(Algorithm::parse("Ed25519").unwrap(), Algorithm::Ed25519);
        assert_eq!(Algorithm::default(), Algorithm::EcdsaP256Sha256);
        assert_eq!(Algorithm::EcdsaP256Sha256.number(), 13);
        assert_eq!(Algorithm::Ed25519.number(), 15);
        let e = Algorithm::parse("rsasha256").unwrap_err();
        assert!(e.contains("unknown DNSSEC algorithm `rsasha256`"), "{e}");
    }

    #[test]
    fn key_files_round_trip() {
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let file = KeyFile::generate(&zone(), alg).unwrap();
            let text = file.to_text();
            let header = format!(
                "# Switchyard DNSSEC signing key (combined KSK/ZSK) for zone tm.example.test.\n# Key tag {}, algorithm {} (",
                file.key_tag(),
                alg.number()
            );
            assert!(text.starts_with(&header), "{text}");
            assert!(text.contains(&format!("algorithm = \"{}\"\n", alg.name())));
            let back = KeyFile::parse(&text).unwrap();
            assert_eq!(back.zone(), &zone());
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.created(), file.created());
            assert_eq!(back.key_tag(), file.key_tag());
            assert_eq!(back.to_text(), text);
            let key = ZoneKey::from_file(back).unwrap();
            assert_eq!(key.key_tag(), file.key_tag());
            assert_eq!(&key.dnskey_rdata()[..4], &[1, 1, 3, alg.number()]);
            // Key tag, algorithm, digest type 2, 32 bytes of SHA-256.
            assert_eq!(key.ds_rdata().len(), 4 + 32);
            assert_eq!(&key.ds_rdata()[..2], &key.key_tag().to_be_bytes());
            assert_eq!(&key.ds_rdata()[2..4], &[alg.number(), 2]);
            // Nothing private in Debug.
            let dbg = format!("{key:?} {file:?}");
            assert!(!dbg.contains("private") && dbg.contains("key_tag"), "{dbg}");
        }
    }

    #[test]
    fn ds_and_dnskey_lines() {
        let key =
            ZoneKey::from_file(KeyFile::generate(&zone(), Algorithm::default()).unwrap()).unwrap();
        let ds = key.ds_text(&zone(), 3600);
        let want = format!("tm.example.test. 3600 IN DS {} 13 2 ", key.key_tag());
        assert!(ds.starts_with(&want), "{ds}");
        let hex = &ds[want.len()..];
        assert_eq!(hex.len(), 64);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert_eq!(
            data_encoding::HEXUPPER.decode(hex.as_bytes()).unwrap(),
            key.ds_rdata()[4..]
        );
        let dnskey = key.dnskey_text(&zone(), 3600);
        let b64 = dnskey
            .strip_prefix("tm.example.test. 3600 IN DNSKEY 257 3 13 ")
            .unwrap();
        assert_eq!(
            data_encoding::BASE64.decode(b64.as_bytes()).unwrap(),
            key.dnskey_rdata()[4..]
        );
        // The key tag of RFC 4034 appendix B, computed here independently.
        let mut ac: u32 = 0;
        for (i, b) in key.dnskey_rdata().iter().enumerate() {
            ac += if i & 1 == 1 {
                u32::from(*b)
            } else {
                u32::from(*b) << 8
            };
        }
        ac += ac >> 16;
        assert_eq!(key.key_tag(), (ac & 0xffff) as u16);
    }

    /// A DS computed by another implementation (ldns-key2ds / dnssec-dsfromkey)
    /// for RFC 4034's example: this pins the digest input, not just its
    /// length.
    #[test]
    #[allow(deprecated)] // RSASHA1: only the algorithm number of the example
    fn ds_digest_matches_rfc_4509_example() {
        // RFC 4509 §2.3: dskey.example.com. DNSKEY 256 3 5 ... → DS 60485 5 2 D4B7D520...
        let name = Name::from_ascii("dskey.example.com.").unwrap();
        let key = data_encoding::BASE64
            .decode(
                b"AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==",
            )
            .unwrap();
        let dnskey = DNSKEY::with_flags(
            256,
            hdnssec::PublicKeyBuf::new(key, hdnssec::Algorithm::RSASHA1),
        );
        assert_eq!(dnskey.calculate_key_tag().unwrap(), 60485);
        let digest = dnskey.to_digest(&name, DigestType::SHA256).unwrap();
        assert_eq!(
            data_encoding::HEXUPPER.encode(digest.as_ref()),
            "D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A"
        );
    }

    #[test]
    fn bad_key_files_say_why() {
        let good = KeyFile::generate(&zone(), Algorithm::EcdsaP256Sha256)
            .unwrap()
            .to_text();
        let err = |text: &str| KeyFile::parse(text).unwrap_err();

        let e = err(&good.replace("ecdsap256sha256", "rsasha1"));
        assert!(
            e.contains("algorithm: unknown DNSSEC algorithm `rsasha1`"),
            "{e}"
        );

        let e = err(&good.replace("private_key = \"", "private_key = \"!!"));
        assert!(e.contains("private_key is not valid base64"), "{e}");

        let e = err(&good.replace("ecdsap256sha256", "ed25519"));
        assert!(
            e.contains(
                "private_key is not a PKCS#8 ED25519 key (the file says algorithm = \"ed25519\")"
            ),
            "{e}"
        );

        let without_created: String = good
            .lines()
            .filter(|l| !l.starts_with("created"))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = err(&without_created);
        assert_eq!(e, "missing field `created`");

        let e = err(&format!("{good}comment = \"x\"\n"));
        assert!(
            e.contains("line 7") && e.contains("unknown field `comment`"),
            "{e}"
        );

        let created_line = good.lines().find(|l| l.starts_with("created")).unwrap();
        let e = err(&good.replace(created_line, "created = \"yesterday\""));
        assert!(
            e.contains("created: `yesterday` is not an RFC 3339 time"),
            "{e}"
        );

        // A TOML syntax error on the key's line does not echo the key.
        let secret_line = good.lines().find(|l| l.starts_with("private_key")).unwrap();
        let broken = good.replace(secret_line, &secret_line.replace(" = \"", " = "));
        let e = err(&broken);
        let b64 = &secret_line[15..secret_line.len() - 1];
        assert!(!e.contains(&b64[..20]), "{e}");
        assert!(e.starts_with("line 6:"), "{e}");
    }

    #[test]
    fn writing_refuses_to_overwrite_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/tm.example.test.key");
        write_new(&path, "one\n", false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!is_readable_by_others(&path));
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        let e = write_new(&path, "two\n", false).unwrap_err();
        assert!(e.contains("already exists") && e.contains("--force"), "{e}");
        assert!(e.contains("breaks DNSSEC validation"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(is_readable_by_others(&path));
        write_new(&path, "two\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn loading_checks_the_zone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let file = KeyFile::generate(&zone(), Algorithm::Ed25519).unwrap();
        let tag = file.key_tag();
        write_new(&path, &file.to_text(), false).unwrap();
        let key = ZoneKey::load(&path, &zone()).unwrap();
        assert_eq!(key.key_tag(), tag);
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        let other = DomainName::parse("other.test.", None).unwrap();
        let e = ZoneKey::load(&path, &other).unwrap_err();
        assert!(
            e.ends_with("k.key: this key is for zone tm.example.test., not other.test."),
            "{e}"
        );
        let e = ZoneKey::load(&dir.path().join("missing.key"), &zone()).unwrap_err();
        assert!(e.ends_with("missing.key: no such file"), "{e}");
    }
}
