//! The learned table across restarts: a binary file next to the state
//! file (`<state_file>.latency`), written durably (temporary file, fsync,
//! rename) every minute when something changed and at shutdown. A file
//! that cannot be used (truncated, corrupt, another format) is reported and
//! the table starts empty: measurements are re-learned, never fatal.
//!
//! Format (little-endian): the magic line, the number of sample rows and
//! the rows (network key u64, endpoint id u32, newest u32, ln(ms) i16,
//! weight bf16), the number of resolver rows and the rows (resolver key
//! u64, client key u64, newest u32, weight f32), then an FNV-1a 64 digest
//! of all that precedes it.

use std::path::{Path, PathBuf};

use super::{Latency, Mapping, Sample, join, split};

const MAGIC: &[u8] = b"switchyard-latency 1\n";
/// Largest file read: 1,000,000 networks x 16 endpoints, and resolvers.
const LIMIT: u64 = 1 << 30;

/// Where the table is saved, given the state file.
pub fn path_for(state_file: &Path) -> PathBuf {
    let mut name = state_file.file_name().unwrap_or_default().to_os_string();
    name.push(".latency");
    state_file.with_file_name(name)
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Writes the learned table to `path` durably.
pub fn save(latency: &Latency, path: &Path) -> Result<(), String> {
    let mut samples = Vec::new();
    latency.samples.for_each(|s: &Sample| samples.push(*s));
    let mut maps = Vec::new();
    latency.resolvers.for_each(|m: &Mapping| maps.push(*m));
    let mut out = Vec::with_capacity(MAGIC.len() + 16 + samples.len() * 20 + maps.len() * 24 + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(samples.len() as u64).to_le_bytes());
    for s in &samples {
        out.extend_from_slice(&join(s.net).to_le_bytes());
        out.extend_from_slice(&s.ep.to_le_bytes());
        out.extend_from_slice(&s.newest.to_le_bytes());
        out.extend_from_slice(&s.ln.to_le_bytes());
        out.extend_from_slice(&s.weight.to_le_bytes());
    }
    out.extend_from_slice(&(maps.len() as u64).to_le_bytes());
    for m in &maps {
        out.extend_from_slice(&join(m.resolver).to_le_bytes());
        out.extend_from_slice(&join(m.client).to_le_bytes());
        out.extend_from_slice(&m.newest.to_le_bytes());
        out.extend_from_slice(&m.weight.to_le_bytes());
    }
    let d = digest(&out);
    out.extend_from_slice(&d.to_le_bytes());
    crate::fsutil::write_durable(path, &out).map_err(|e| format!("{}: {e}", path.display()))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

/// Loads the file at `path` into `latency`: `Ok(rows)` (0 when there is
/// no file), or what is wrong with it (the table is then left empty).
pub fn load(latency: &Latency, path: &Path) -> Result<usize, String> {
    let bytes = match crate::fsutil::read_bytes(path, LIMIT, "the latency state limit") {
        Ok(b) => b,
        Err(crate::fsutil::ReadError::NotFound) => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let bad = |why: &str| {
        format!(
            "{}: not a usable latency state file ({why})",
            path.display()
        )
    };
    let Some((body, tail)) = bytes.split_last_chunk::<8>() else {
        return Err(bad("too short"));
    };
    if !body.starts_with(MAGIC) {
        return Err(bad("unknown format"));
    }
    if digest(body) != u64::from_le_bytes(*tail) {
        return Err(bad("its digest does not match: truncated or corrupt"));
    }
    let mut r = Reader(&body[MAGIC.len()..]);
    let short = || bad("truncated");
    let n = u64::from_le_bytes(r.take().ok_or_else(short)?) as usize;
    if n > r.0.len() / 20 {
        return Err(short());
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let net = u64::from_le_bytes(r.take().ok_or_else(short)?);
        let ep = u32::from_le_bytes(r.take().ok_or_else(short)?);
        let newest = u32::from_le_bytes(r.take().ok_or_else(short)?);
        let ln = i16::from_le_bytes(r.take().ok_or_else(short)?);
        let weight = u16::from_le_bytes(r.take().ok_or_else(short)?);
        samples.push(Sample {
            net: split(net),
            ep,
            newest,
            ln,
            weight,
        });
    }
    let m = u64::from_le_bytes(r.take().ok_or_else(short)?) as usize;
    if m > r.0.len() / 24 {
        return Err(short());
    }
    let mut maps = Vec::with_capacity(m);
    for _ in 0..m {
        let resolver = u64::from_le_bytes(r.take().ok_or_else(short)?);
        let client = u64::from_le_bytes(r.take().ok_or_else(short)?);
        let newest = u32::from_le_bytes(r.take().ok_or_else(short)?);
        let weight = f32::from_le_bytes(r.take().ok_or_else(short)?);
        if !weight.is_finite() || weight < 0.0 {
            return Err(bad("a negative or infinite weight"));
        }
        maps.push(Mapping {
            resolver: split(resolver),
            client: split(client),
            newest,
            weight,
        });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let rows = samples.len();
    latency.restore(samples, maps);
    Ok(rows)
}
