//! SOA serials that follow the zone's content, not the time it loaded.
//!
//! Name servers with the same configuration must serve the same serial
//! (Zonemaster's CONSISTENCY01, `MULTIPLE_SOA_SERIALS`), and a serial must
//! only grow when the content changes. Without coordination between the
//! nodes, the only thing they share is the content (their clocks agree
//! roughly, but the moments they load a change do not), so:
//!
//! - A zone's **content digest** covers everything it answers: its records
//!   (the SOA without its serial), the profiles at its names with their
//!   endpoints (nested profiles followed), the DS records it serves for
//!   zones inside it. Not file names, comments, probes or health.
//! - With no history, the serial is the **content serial**: the digest
//!   folded into `1..2^31`. Two nodes that load the same content, at any
//!   time, serve the same serial.
//! - The serial a zone got is kept with its digest, in memory across
//!   reloads and in `STATE_FILE.serials` across restarts. The same digest
//!   keeps its serial. A new digest takes the new content serial when it
//!   follows the old serial (RFC 1982, and numerically larger), else the
//!   old serial plus one. Both are functions of (old serial, new
//!   content), so nodes that went through the same versions agree, and
//!   the serial only ever grows.
//!
//! What this cannot do: a node with another history (it missed a
//! version, or started without its serials file) agrees with the others
//! only when the new content serial followed both old serials (about half
//! the changes), and then from that change on. `soa.serial` in the
//! configuration is served as written, on every node.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// Largest serials file read.
const MAX_SIZE: u64 = 1 << 20;

/// Each zone's last (content digest, serial), by origin (presentation
/// form).
pub type History = HashMap<String, (u64, u32)>;

/// The file's form.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SerialsFile {
    zones: Vec<ZoneSerial>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ZoneSerial {
    origin: String,
    /// The content digest, hex.
    digest: String,
    serial: u32,
}

/// Where the serials are kept for a state file: beside it.
pub fn path_for(state_file: &Path) -> PathBuf {
    let mut name = state_file.file_name().unwrap_or_default().to_os_string();
    name.push(".serials");
    state_file.with_file_name(name)
}

/// The serial a content digest gives on its own: in `1..2^31`, so that
/// later content serials can follow it numerically too.
pub fn content_serial(digest: u64) -> u32 {
    ((digest ^ (digest >> 32)) as u32 % 0x7FFF_FFFF) + 1
}

/// The serial after `old` for content whose content serial is `content`:
/// that one when it follows `old` (RFC 1982 §3.2, and numerically), else
/// `old + 1` (0 skipped).
pub fn next(old: u32, content: u32) -> u32 {
    if content > old && content - old < 1 << 31 {
        content
    } else {
        match old.wrapping_add(1) {
            0 => 1,
            s => s,
        }
    }
}

/// The serial for a zone: `history` holds its last (digest, serial).
pub fn serial_for(digest: u64, history: Option<(u64, u32)>) -> u32 {
    match history {
        Some((d, s)) if d == digest => s,
        Some((_, s)) => next(s, content_serial(digest)),
        None => content_serial(digest),
    }
}

/// Reads the serials kept beside `state_file`. A missing file is no
/// history; an unusable one is reported (the zones then start from their
/// content serials).
pub fn read(state_file: &Path) -> Result<History, String> {
    let path = path_for(state_file);
    let text = match crate::fsutil::read_text(&path, MAX_SIZE, "the serials file limit") {
        Ok(t) => t,
        Err(crate::fsutil::ReadError::NotFound) => return Ok(History::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let file: SerialsFile =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file
        .zones
        .into_iter()
        .filter_map(|z| {
            Some((
                z.origin,
                (u64::from_str_radix(&z.digest, 16).ok()?, z.serial),
            ))
        })
        .collect())
}

/// The history a table holds: each zone's digest and serial.
pub fn of(table: &Snapshot) -> History {
    table
        .zones
        .iter()
        .map(|z| (z.origin.as_str().to_string(), (z.digest, z.serial)))
        .collect()
}

/// Keeps `table`'s serials beside `state_file` (atomically: a temporary
/// file renamed over it), unless the file holds them already. Zones no
/// longer configured are kept too, so a zone removed and added back
/// resumes its serial.
pub fn store(state_file: &Path, table: &Snapshot) -> Result<(), String> {
    let old = read(state_file).unwrap_or_default();
    let mut all = old.clone();
    all.extend(of(table));
    if all == old {
        return Ok(());
    }
    let mut zones: Vec<ZoneSerial> = all
        .into_iter()
        .map(|(origin, (digest, serial))| ZoneSerial {
            origin,
            digest: format!("{digest:016x}"),
            serial,
        })
        .collect();
    zones.sort_by(|a, b| a.origin.cmp(&b.origin));
    let text = serde_json::to_string_pretty(&SerialsFile { zones }).map_err(|e| e.to_string())?;
    let path = path_for(state_file);
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| format!("{}: {e}", path.display()))
}

/// [`store`], for a server that applied `table`: a failure is logged,
/// never fatal (a restart then starts from the serials of the content).
pub fn keep(state_file: &Path, table: &Snapshot) {
    if let Err(e) = store(state_file, table) {
        tracing::warn!(error = %e, "cannot keep the SOA serials; a restart starts from the serials of the content");
    }
}

/// The content digest of zone `zone`, its serial left out (see the module
/// documentation for what it covers).
pub fn zone_digest(table: &Snapshot, zone: crate::snapshot::ZoneId) -> u64 {
    use crate::proto::rr::rtype;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut put = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u32).to_be_bytes());
        ctx.update(bytes);
    };
    let z = &table.zones[zone as usize];
    put(z.origin.wire());
    for n in table.nodes.iter().filter(|n| n.zone == zone) {
        put(n.name.wire());
        for set in &n.records {
            put(&set.rtype.to_be_bytes());
            for rr in &set.rrs {
                let b = rr.bytes();
                if set.rtype == rtype::SOA && b.len() >= 20 {
                    // The serial is the first of the last five fields.
                    let at = b.len() - 20;
                    put(&b[..at]);
                    put(&b[at + 4..]);
                } else {
                    put(b);
                }
            }
        }
        if let Some(p) = n.profile {
            profile_content(table, p, 0, &mut put);
        }
    }
    for child in table.zones.iter().filter(|c| c.parent == Some(zone)) {
        put(child.origin.wire());
        for rr in &child.parent_ds {
            put(rr.bytes());
        }
    }
    let d = ctx.finish();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(b)
}

/// What a profile answers with: its settings and endpoints, nested
/// profiles followed.
fn profile_content(
    table: &Snapshot,
    p: crate::snapshot::ProfileId,
    depth: usize,
    put: &mut impl FnMut(&[u8]),
) {
    use crate::snapshot::{Health, Target};
    let Some(profile) = table.profiles.get(p as usize) else {
        return;
    };
    put(profile.name.wire());
    put(format!(
        "{:?} {} {:?} {} {} {:?}",
        profile.routing,
        profile.ttl,
        profile.ttl_degraded,
        profile.sticky,
        profile.enabled,
        profile.on_all_down
    )
    .as_bytes());
    for e in table.endpoints_of(profile) {
        let (health, min) = match e.health {
            Health::Disabled => ("disabled", 0),
            Health::Unmonitored => ("unmonitored", 0),
            Health::Monitored(_) => ("monitored", 0),
            Health::Nested { min, .. } => ("nested", min),
        };
        put(format!(
            "{} {:?} {} {} {health} {min} {:?}",
            e.name, e.target, e.priority, e.weight, e.hold
        )
        .as_bytes());
        put(e.rr.bytes());
        if let Target::Nested(c) = e.target
            && depth < crate::routing::MAX_NESTING
        {
            profile_content(table, c, depth + 1, put);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_follow_the_content_and_only_grow() {
        let c = content_serial(0xDEAD_BEEF_0123_4567);
        assert!((1..1 << 31).contains(&c));
        assert_eq!(
            c,
            content_serial(0xDEAD_BEEF_0123_4567),
            "a function of the content"
        );
        // No history: the content serial; the same digest: its serial.
        assert_eq!(serial_for(7, None), content_serial(7));
        assert_eq!(serial_for(7, Some((7, 42))), 42);
        // A change: the content serial when it follows, else one more.
        assert_eq!(next(10, 20), 20);
        assert_eq!(next(20, 10), 21);
        assert_eq!(next(u32::MAX, 5), 1, "0 is skipped");
        // Numerically larger but not following (RFC 1982): one more.
        assert_eq!(next(1, (1 << 31) + 5), 2);
        for (old, digest) in [(5u32, 1u64), (2_000_000_000, 99), (u32::MAX - 1, 3)] {
            let new = serial_for(digest, Some((digest + 1, old)));
            assert!(
                new != old && new.wrapping_sub(old) < 1 << 31,
                "{old} -> {new}"
            );
        }
    }

    #[test]
    fn serials_are_kept_beside_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("switchyard.state");
        assert_eq!(read(&state).unwrap(), History::new(), "no file: no history");
        assert_eq!(
            path_for(&state),
            dir.path().join("switchyard.state.serials")
        );
        std::fs::write(path_for(&state), "not json").unwrap();
        assert!(
            read(&state)
                .unwrap_err()
                .contains("switchyard.state.serials")
        );
    }
}
