//! Where a client is: GeoIP lookups (MaxMind DB format), the built-in
//! country and region tables, and great-circle distances.
//!
//! Two database schemas are read: MaxMind's GeoIP2/GeoLite2 City and Country
//! (`country.iso_code`, `subdivisions[].iso_code`, `location.latitude/
//! longitude`), and the flat schema of DB-IP Lite and ip-location-db
//! (`country_code`, `latitude`, `longitude`, `state1`). A database with
//! countries only still drives every method: the built-in tables give each
//! country its region group and a representative coordinate.
//!
//! Lookups use the address as precisely as the query gave it (an ECS
//! address to its source prefix, a resolver's address in full), and each
//! answer thread caches results by that key, so a busy resolver costs one
//! hash probe per query.

pub mod regions;
mod tables;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rustc_hash::FxHashMap;
use serde::Deserialize;

pub use tables::{COUNTRIES, SUBDIVISIONS};

/// Region groups, as Azure Traffic Manager names them (`GEO-xx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// Africa.
    Af,
    /// Antarctica.
    An,
    /// Asia (without the Middle East).
    As,
    /// Australia / Pacific (Oceania).
    Ap,
    /// Europe.
    Eu,
    /// Middle East.
    Me,
    /// North America, Central America and the Caribbean.
    Na,
    /// South America.
    Sa,
}

impl Group {
    /// Every group.
    pub const ALL: [Group; 8] = [
        Group::Af,
        Group::An,
        Group::As,
        Group::Ap,
        Group::Eu,
        Group::Me,
        Group::Na,
        Group::Sa,
    ];

    /// The `GEO-xx` code.
    pub fn code(self) -> &'static str {
        match self {
            Group::Af => "GEO-AF",
            Group::An => "GEO-AN",
            Group::As => "GEO-AS",
            Group::Ap => "GEO-AP",
            Group::Eu => "GEO-EU",
            Group::Me => "GEO-ME",
            Group::Na => "GEO-NA",
            Group::Sa => "GEO-SA",
        }
    }
}

/// An ISO 3166-1 country from the built-in table.
#[derive(Debug)]
pub struct Country {
    /// Alpha-2 code.
    pub code: [u8; 2],
    /// English name.
    pub name: &'static str,
    /// Its region group.
    pub group: Group,
    /// Representative latitude (centroid of the largest land mass).
    pub lat: f64,
    /// Representative longitude.
    pub lon: f64,
}

/// An ISO 3166-2 subdivision from the built-in table.
#[derive(Debug)]
pub struct Subdivision {
    /// Code, e.g. `US-CA`.
    pub code: &'static str,
    /// Name, e.g. `California`.
    pub name: &'static str,
}

/// Finds a country by its alpha-2 code (case-insensitive).
pub fn country(code: &str) -> Option<&'static Country> {
    let b = code.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let key = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()];
    COUNTRIES
        .binary_search_by(|c| c.code.cmp(&key))
        .ok()
        .map(|i| &COUNTRIES[i])
}

/// Finds a subdivision by its ISO 3166-2 code (case-insensitive).
pub fn subdivision(code: &str) -> Option<&'static Subdivision> {
    let upper = code.to_ascii_uppercase();
    SUBDIVISIONS
        .binary_search_by(|s| s.code.cmp(upper.as_str()))
        .ok()
        .map(|i| &SUBDIVISIONS[i])
}

/// Finds a subdivision of `country` by name (case-insensitive), for
/// databases that give names (`state1`) rather than codes.
pub fn subdivision_by_name(country: [u8; 2], name: &str) -> Option<&'static Subdivision> {
    let prefix = [country[0], country[1], b'-'];
    let start = SUBDIVISIONS.partition_point(|s| s.code.as_bytes() < &prefix[..]);
    SUBDIVISIONS[start..]
        .iter()
        .take_while(|s| s.code.as_bytes().starts_with(&prefix))
        .find(|s| s.name.eq_ignore_ascii_case(name))
}

/// A point on the globe as a unit vector: distances between points are then
/// a dot product (larger is nearer), no trigonometry per comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    x: f64,
    y: f64,
    z: f64,
}

impl Point {
    /// From degrees.
    pub fn new(lat: f64, lon: f64) -> Point {
        let (lat, lon) = (lat.to_radians(), lon.to_radians());
        Point {
            x: lat.cos() * lon.cos(),
            y: lat.cos() * lon.sin(),
            z: lat.sin(),
        }
    }

    /// Cosine of the central angle to `other`: 1 for the same place, -1 for
    /// antipodes. Monotonic in distance, so it ranks without `acos`.
    #[inline]
    pub fn closeness(&self, other: &Point) -> f64 {
        self.x * other.x + self.y * other.y + self.z * other.z
    }

    /// Great-circle distance in kilometres (for explanations and tests).
    pub fn km_to(&self, other: &Point) -> f64 {
        self.closeness(other).clamp(-1.0, 1.0).acos() * 6371.0
    }
}

/// What a lookup says about an address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Location {
    /// Country code, when known.
    pub country: Option<[u8; 2]>,
    /// Index into [`SUBDIVISIONS`], when known.
    pub subdivision: Option<u16>,
    /// Coordinates: the database's, else the country's representative point.
    pub point: Option<Point>,
    /// The country's region group (resolved once, when the record is read).
    pub group: Option<Group>,
}

/// A lookup's result: the location (if any) and the length of the database
/// network that holds the address (the ECS scope it justifies).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Found {
    /// Where, or `None` when the database has no data for the address.
    pub location: Option<Location>,
    /// Prefix length of the database network containing the address.
    pub prefix: u8,
}

/// The record fields read, from either schema. Strings borrow from the
/// database buffer.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<IsoCode<'a>>>,
    #[serde(default)]
    location: Option<Coordinates>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(default, deserialize_with = "number")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    longitude: Option<f64>,
    #[serde(borrow, default)]
    state1: Option<&'a str>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Coordinates {
    #[serde(default, deserialize_with = "number")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    longitude: Option<f64>,
}

/// Accepts a coordinate stored as a double, a float or an integer (the
/// flat databases use floats, MaxMind doubles).
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_f32<E>(self, v: f32) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
    }
    d.deserialize_any(V)
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// An opened, verified GeoIP database.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
    path: PathBuf,
    /// Distinguishes this database from any other opened by this process,
    /// so per-thread caches know when to forget.
    generation: u64,
    /// File modification time and size when loaded (for change detection).
    pub stamp: Option<(SystemTime, u64)>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("type", &self.reader.metadata().database_type)
            .finish()
    }
}

impl GeoDb {
    /// Opens and verifies a database. The error says which file and why.
    pub fn open(path: &Path) -> Result<GeoDb, String> {
        // Taken before reading, so a change during the read is seen later.
        let stamp = file_stamp(path);
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| format!("{} is not a MaxMind DB file: {e}", path.display()))?;
        smoke_test(&reader).map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
        Ok(GeoDb {
            reader,
            path: path.to_path_buf(),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            stamp,
        })
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database type from its metadata (e.g. `GeoLite2-City`).
    pub fn kind(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built, from its metadata.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// Looks up an address (already truncated to the precision used).
    pub fn lookup(&self, addr: IpAddr) -> Found {
        let Ok(result) = self.reader.lookup(addr) else {
            return Found {
                location: None,
                prefix: 0,
            };
        };
        // The network the answer holds for. An IPv4 lookup that ends above
        // the IPv4 subtree of an IPv6 database holds for all of IPv4.
        let prefix = match result.network() {
            Ok(n) if n.ip().is_ipv4() == addr.is_ipv4() => n.prefix(),
            _ => 0,
        };
        let location = result
            .decode::<Record<'_>>()
            .ok()
            .flatten()
            .and_then(|r| to_location(&r));
        Found { location, prefix }
    }
}

/// Looks up one address in every IPv4 /8 and a spread of IPv6 prefixes and
/// decodes each record, so a damaged tree or data section is caught at load
/// time rather than per query. (`Reader::verify` is stricter than real
/// databases: common free databases fail it on cosmetic metadata.)
fn smoke_test(reader: &maxminddb::Reader<Vec<u8>>) -> Result<(), String> {
    let v4 = (0u32..256).map(|i| IpAddr::V4(Ipv4Addr::from((i << 24) | 0x0001_0203)));
    let v6 = (0u128..64).map(|i| IpAddr::V6(Ipv6Addr::from((0x2000u128 + i * 0x40) << 112 | 1)));
    let ipv6_db = reader.metadata().ip_version == 6;
    for ip in v4.chain(v6.filter(|_| ipv6_db)) {
        let result = reader
            .lookup(ip)
            .map_err(|e| format!("lookup of {ip} failed: {e}"))?;
        result
            .decode::<Record<'_>>()
            .map_err(|e| format!("record for {ip} does not decode: {e}"))?;
        result
            .network()
            .map_err(|e| format!("network for {ip} is invalid: {e}"))?;
    }
    Ok(())
}

fn to_location(r: &Record<'_>) -> Option<Location> {
    let code = r
        .country
        .as_ref()
        .and_then(|c| c.iso_code)
        .or(r.country_code)
        .or(r.registered_country.as_ref().and_then(|c| c.iso_code));
    let known = code.and_then(country);
    let cc = known.map(|c| c.code);
    let subdivision = match (cc, &r.subdivisions, r.state1) {
        (Some(cc), Some(subs), _) => subs.first().and_then(|s| s.iso_code).and_then(|sub| {
            let full = format!("{}-{sub}", std::str::from_utf8(&cc).unwrap_or(""));
            subdivision_index(&full)
        }),
        (Some(cc), None, Some(name)) => {
            subdivision_by_name(cc, name).and_then(|s| subdivision_index(s.code))
        }
        _ => None,
    };
    let coords = r
        .location
        .as_ref()
        .and_then(|l| Some((l.latitude?, l.longitude?)))
        .or_else(|| Some((r.latitude?, r.longitude?)))
        .filter(|(lat, lon)| {
            lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0
        });
    let point = coords
        .map(|(lat, lon)| Point::new(lat, lon))
        .or_else(|| known.map(|c| Point::new(c.lat, c.lon)));
    if cc.is_none() && point.is_none() {
        return None;
    }
    Some(Location {
        country: cc,
        subdivision,
        point,
        group: known.map(|c| c.group),
    })
}

fn subdivision_index(code: &str) -> Option<u16> {
    let upper = code.to_ascii_uppercase();
    SUBDIVISIONS
        .binary_search_by(|s| s.code.cmp(upper.as_str()))
        .ok()
        .map(|i| i as u16)
}

/// The candidates most similar to `word` (Jaro-Winkler above `floor`):
/// the best, and any within a hair of it, at most three. For "did you
/// mean" hints: one clear winner is a better hint than three.
pub fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
    floor: f64,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(s, _)| *s > floor)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best = scored.first().map_or(0.0, |s| s.0);
    scored
        .into_iter()
        .take_while(|(s, _)| *s >= best - 0.03)
        .take(3)
        .map(|(_, c)| c)
        .collect()
}

/// A file's modification time and size: a rewrite or a rename into place
/// changes it.
pub fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The address with every bit past the first `bits` cleared (`bits` at
/// most the address's width), and that prefix length.
pub fn truncate(addr: IpAddr, bits: u8) -> (IpAddr, u8) {
    match addr {
        IpAddr::V4(v4) => {
            let bits = bits.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)), bits)
        }
        IpAddr::V6(v6) => {
            let bits = bits.min(128);
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            (IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)), bits)
        }
    }
}

/// Per-thread lookup cache, keyed by the address and its prefix length. Bounded: it is
/// cleared when full (a cheap, allocation-free reset) and whenever the
/// database changes.
pub struct Cache {
    generation: u64,
    map: FxHashMap<(u128, u8), Found>,
}

/// Entries kept per thread before the cache is cleared.
const CACHE_CAPACITY: usize = 65_536;

impl Default for Cache {
    fn default() -> Self {
        Cache {
            generation: 0,
            map: FxHashMap::with_capacity_and_hasher(1024, Default::default()),
        }
    }
}

impl Cache {
    /// Looks `addr` (truncated, with its prefix length) up in `db` through
    /// the cache.
    #[inline]
    pub fn lookup(&mut self, db: &GeoDb, addr: IpAddr, bits: u8) -> Found {
        if self.generation != db.generation {
            self.map.clear();
            self.generation = db.generation;
        }
        let key = match addr {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), bits),
            IpAddr::V6(v6) => (u128::from(v6), bits | 0x80),
        };
        if let Some(f) = self.map.get(&key) {
            return *f;
        }
        let found = db.lookup(addr);
        if self.map.len() >= CACHE_CAPACITY {
            self.map.clear();
        }
        self.map.insert(key, found);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_complete() {
        assert!(COUNTRIES.windows(2).all(|w| w[0].code < w[1].code));
        assert!(SUBDIVISIONS.windows(2).all(|w| w[0].code < w[1].code));
        assert!(COUNTRIES.len() >= 249);
        assert_eq!(country("ie").unwrap().group, Group::Eu);
        assert_eq!(country("AE").unwrap().group, Group::Me);
        assert_eq!(country("AU").unwrap().group, Group::Ap);
        assert_eq!(country("BR").unwrap().group, Group::Sa);
        assert!(country("XX").is_none());
        assert_eq!(subdivision("us-ca").unwrap().name, "California");
        assert_eq!(
            subdivision_by_name(*b"US", "california").unwrap().code,
            "US-CA"
        );
        for g in Group::ALL {
            assert!(COUNTRIES.iter().any(|c| c.group == g), "{g:?} empty");
        }
    }

    #[test]
    fn distances() {
        let frankfurt = Point::new(50.11, 8.68);
        let sydney = Point::new(-33.86, 151.21);
        let km = frankfurt.km_to(&sydney);
        assert!((km - 16_480.0).abs() < 100.0, "{km}");
        let dublin = Point::new(53.35, -6.26);
        assert!(frankfurt.closeness(&dublin) > frankfurt.closeness(&sydney));
    }

    #[test]
    fn truncation_keeps_the_prefix_given() {
        let (a, b) = truncate("192.0.2.77".parse().unwrap(), 32);
        assert_eq!((a.to_string().as_str(), b), ("192.0.2.77", 32));
        let (a, b) = truncate("192.0.2.200".parse().unwrap(), 25);
        assert_eq!((a.to_string().as_str(), b), ("192.0.2.128", 25));
        let (a, b) = truncate("2001:db8:1:2345:3::1".parse().unwrap(), 128);
        assert_eq!((a.to_string().as_str(), b), ("2001:db8:1:2345:3::1", 128));
        let (a, b) = truncate("2001:db8:1:2345:3::1".parse().unwrap(), 56);
        assert_eq!((a.to_string().as_str(), b), ("2001:db8:1:2300::", 56));
        let (a, b) = truncate("192.0.2.77".parse().unwrap(), 99);
        assert_eq!((a.to_string().as_str(), b), ("192.0.2.77", 32));
        let (a, b) = truncate("10.1.2.3".parse().unwrap(), 0);
        assert_eq!((a.to_string().as_str(), b), ("0.0.0.0", 0));
    }
}
