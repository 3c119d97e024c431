//! The state file: runtime overrides (`switchyard endpoint disable`) kept
//! across restarts.
//!
//! Written atomically and durably: a temporary file beside it, fsynced,
//! renamed over it, then the directory fsynced, so a power cut leaves the
//! old file or the new one, never an empty one. Read defensively: only a
//! regular file of at most [`MAX_SIZE`] bytes is read, opened without
//! blocking (a FIFO or device at the path cannot stall start-up; see
//! [`crate::fsutil`]), and a file
//! that cannot be used never stops the server: at start it is moved aside
//! and reported, and the server starts without its overrides.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::fsutil::ReadError;
use crate::health::Status;
use crate::health::spec::ProbeSpec;
use crate::snapshot::EndpointKey;

/// Largest state file read (a million overrides fit well within it).
pub const MAX_SIZE: u64 = 64 << 20;

pub use crate::overrides::Overrides;

/// Unknown fields are ignored: a file written by a newer version (with more
/// to say about each override) still gives an older one its overrides.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    /// Every override with its version (this version on).
    #[serde(default)]
    overrides: Vec<Record>,
    /// Endpoints disabled at runtime: all an older version reads, and all
    /// an older version wrote.
    #[serde(default)]
    disabled: Vec<EndpointRef>,
    /// Each probe target's last decided status, for a restart to trust.
    #[serde(default)]
    statuses: Vec<SavedStatus>,
    /// Drained endpoints: when each was last answered and when that
    /// answer leaves caches, so "drained at" survives a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    served: Vec<Served>,
    /// The latest overrides, oldest first: the status page's history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    history: Vec<Record>,
}

/// An endpoint's last answer (Unix seconds).
#[derive(Debug, Serialize, Deserialize)]
struct Served {
    profile: String,
    endpoint: String,
    last: u64,
    until: u64,
}

/// How long saved statuses are trusted at start: a server back within
/// this long begins with them (a dead endpoint stays out from the first
/// query); one down longer starts every endpoint as CheckingEndpoint.
pub const TRUST_SAVED: std::time::Duration = std::time::Duration::from_secs(600);

/// A probe target's last decided status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedStatus {
    /// The probe's fingerprint ([`ProbeSpec::fingerprint`]).
    pub probe: String,
    /// `Online` or `Degraded`.
    pub status: String,
    /// Since when (ms since the Unix epoch).
    pub since: u64,
    /// When it was saved (ms since the Unix epoch).
    pub saved_at: u64,
    /// When it last recovered from Degraded (ms since the Unix epoch), for
    /// holds (`failback = "manual"`) to survive a restart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recovered: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The decided statuses of `probes` now.
pub fn statuses_of(probes: &[ProbeSpec], table: &crate::snapshot::Snapshot) -> Vec<SavedStatus> {
    let now = crate::clock::now_millis();
    let mut out: Vec<SavedStatus> = probes
        .iter()
        .filter_map(|p| {
            let own = p.cell.own();
            // A recovery time is kept only while it holds an endpoint
            // (`failback = "manual"`): a restart that turns manual failback
            // on must not hold recoveries from before; one that finds the
            // cell undecided must not lose a hold.
            let holding = p.endpoints.iter().any(|&i| {
                table
                    .endpoints
                    .get(i as usize)
                    .is_some_and(|e| e.hold_now().is_some())
            });
            let recovered = if holding { p.cell.recovered_ms() } else { 0 };
            (matches!(own, Status::Online | Status::Degraded) || recovered != 0).then(|| {
                SavedStatus {
                    probe: p.fingerprint(),
                    status: own.as_str().to_string(),
                    since: crate::clock::unix_millis(p.cell.details().own_since),
                    saved_at: now,
                    recovered,
                }
            })
        })
        .collect();
    out.sort_by(|a, b| a.probe.cmp(&b.probe));
    out.dedup_by(|a, b| a.probe == b.probe);
    out
}

/// Starts the cells of `probes` with the statuses saved at `path` no longer
/// than [`TRUST_SAVED`] ago. Returns how many, and the oldest save's age.
pub fn restore_statuses(path: &Path, probes: &[ProbeSpec]) -> (usize, std::time::Duration) {
    let Ok(text) = crate::fsutil::read_text(path, MAX_SIZE, "the state file limit") else {
        return (0, std::time::Duration::ZERO);
    };
    let Ok(state) = serde_json::from_str::<StateFile>(&text) else {
        return (0, std::time::Duration::ZERO);
    };
    let now = crate::clock::now_millis();
    // A recovery time is kept however old the save: a hold lasts until
    // resumed, through any restart.
    for p in probes {
        let fp = p.fingerprint();
        if let Some(s) = state
            .statuses
            .iter()
            .find(|s| s.probe == fp && s.recovered <= now + 60_000)
        {
            p.cell.restore_recovered(s.recovered);
        }
    }
    let saved: std::collections::HashMap<&str, &SavedStatus> = state
        .statuses
        .iter()
        .filter(|s| {
            now.saturating_sub(s.saved_at) <= TRUST_SAVED.as_millis() as u64
                && s.saved_at <= now + 60_000
        })
        .map(|s| (s.probe.as_str(), s))
        .collect();
    let (mut n, mut oldest) = (0, 0);
    for p in probes {
        let Some(s) = saved.get(p.fingerprint().as_str()) else {
            continue;
        };
        let status = match s.status.as_str() {
            "Online" => Status::Online,
            "Degraded" => Status::Degraded,
            _ => continue,
        };
        p.cell
            .restore(status, crate::clock::from_unix_millis(s.since));
        n += 1;
        oldest = oldest.max(now.saturating_sub(s.saved_at));
    }
    (n, std::time::Duration::from_millis(oldest))
}

#[derive(Debug, Serialize, Deserialize)]
struct EndpointRef {
    profile: String,
    endpoint: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    profile: String,
    endpoint: String,
    #[serde(flatten)]
    record: crate::overrides::Override,
}

/// Reads the overrides at `path`: none when there is no file; an error
/// describing the problem when it cannot be used. Never blocks on a special
/// file and never reads more than [`MAX_SIZE`] bytes.
pub fn read(path: &Path) -> Result<Overrides, String> {
    let text = match crate::fsutil::read_text(path, MAX_SIZE, "the state file limit") {
        Ok(t) => t,
        Err(ReadError::NotFound) => return Ok(Overrides::new()),
        Err(e) => return Err(e.to_string()),
    };
    if text.trim().is_empty() {
        return Err("it is empty (a write cut short?)".into());
    }
    let state: StateFile =
        serde_json::from_str(&text).map_err(|e| format!("it is not a valid state file: {e}"))?;
    let mut out = Overrides::new();
    if state.overrides.is_empty() {
        // Written before overrides had versions: the oldest version of all.
        for r in state.disabled {
            let key = EndpointKey::new(&r.profile, &r.endpoint);
            out.insert(key, crate::overrides::Override::new(true, 0, "", None));
        }
    }
    for r in state.overrides {
        let key = EndpointKey::new(&r.profile, &r.endpoint);
        crate::overrides::merge(&mut out, &key, r.record);
    }
    Ok(out)
}

/// Writes the overrides durably: temporary file, fsync, rename, fsync of
/// the directory.
pub fn write(path: &Path, overrides: &Overrides, statuses: &[SavedStatus]) -> Result<(), String> {
    let _one = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    write_locked(path, overrides, statuses, Vec::new(), Vec::new())
}

/// One writer at a time: they share the temporary file, and the last write
/// must hold the latest state.
static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Saves what the running server holds now: its overrides and its decided
/// statuses. Both are read under the writers' lock, so a save that finishes
/// last never holds older overrides than one before it.
pub fn save(path: &Path, shared: &crate::state::Shared) -> Result<(), String> {
    let _one = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let overrides = shared.overrides_now();
    let table = shared.serving.table.load();
    let statuses = statuses_of(&shared.probes.load(), &table);
    let served = overrides
        .iter()
        .filter(|(_, o)| o.drain)
        .filter_map(|(k, _)| {
            let (last, until) = table.endpoint_by_key(k)?.runtime.served();
            (until > 0).then(|| Served {
                profile: k.profile().to_string(),
                endpoint: k.endpoint().to_string(),
                last,
                until,
            })
        })
        .collect();
    let history = shared
        .history
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, r)| Record {
            profile: k.profile().to_string(),
            endpoint: k.endpoint().to_string(),
            record: r.clone(),
        })
        .collect();
    write_locked(path, &overrides, &statuses, served, history)
}

/// Restores at start what the state file keeps besides overrides and
/// statuses: drained endpoints' last answers and the override history.
pub fn restore_extras(path: &Path, shared: &crate::state::Shared) {
    let Ok(text) = crate::fsutil::read_text(path, MAX_SIZE, "the state file limit") else {
        return;
    };
    let Ok(state) = serde_json::from_str::<StateFile>(&text) else {
        return;
    };
    let table = shared.serving.table.load();
    for s in state.served {
        if let Some(ep) = table.endpoint_by_key(&EndpointKey::new(&s.profile, &s.endpoint)) {
            ep.runtime.restore_served(s.last, s.until);
        }
    }
    for r in state.history {
        shared.record_history(&EndpointKey::new(&r.profile, &r.endpoint), &r.record);
    }
}

fn write_locked(
    path: &Path,
    overrides: &Overrides,
    statuses: &[SavedStatus],
    served: Vec<Served>,
    history: Vec<Record>,
) -> Result<(), String> {
    let now = crate::clock::now_millis();
    let state = StateFile {
        statuses: statuses.to_vec(),
        served,
        history,
        overrides: overrides
            .iter()
            .map(|(k, r)| Record {
                profile: k.profile().to_string(),
                endpoint: k.endpoint().to_string(),
                record: r.clone(),
            })
            .collect(),
        disabled: overrides
            .iter()
            .filter(|(_, r)| r.keeps_out(now))
            .map(|(k, _)| EndpointRef {
                profile: k.profile().to_string(),
                endpoint: k.endpoint().to_string(),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())? + "\n";
    crate::fsutil::write_durable(path, text.as_bytes()).map_err(|e| e.to_string())
}

/// What start-up did about a state file it could not use.
#[derive(Clone, Debug)]
pub struct Recovered {
    /// What was wrong.
    pub problem: String,
    /// Where the file was moved (None: it could not be moved).
    pub moved_to: Option<PathBuf>,
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.moved_to {
            Some(p) => write!(
                f,
                "{}; moved aside to {}; serving without its runtime overrides",
                self.problem,
                p.display()
            ),
            None => write!(
                f,
                "{}; it could not be moved aside either; serving without its runtime overrides",
                self.problem
            ),
        }
    }
}

/// Reads the state file at start. One that cannot be used is moved aside
/// as `NAME.bad-TIMESTAMP`, so the next override writes a fresh one; the
/// server then starts without overrides rather than not at all.
pub fn load_at_start(path: &Path) -> (Overrides, Option<Recovered>) {
    match read(path) {
        Ok(o) => (o, None),
        Err(problem) => {
            let problem = format!("state file {} cannot be used: {problem}", path.display());
            let stamp = crate::clock::file_stamp(SystemTime::now());
            let mut aside = path.file_name().unwrap_or_default().to_os_string();
            aside.push(format!(".bad-{stamp}"));
            let aside = path.with_file_name(aside);
            let moved_to = std::fs::rename(path, &aside).ok().map(|_| aside);
            (Overrides::new(), Some(Recovered { problem, moved_to }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        assert!(read(&p).unwrap().is_empty());
        let mut o = Overrides::new();
        o.insert(
            EndpointKey::new("a.test.", "Primary"),
            crate::overrides::Override::new(true, 0, "", None),
        );
        write(&p, &o, &[]).unwrap();
        assert_eq!(read(&p).unwrap(), o);
        // With a version and a reason, and an enable.
        let mut v =
            crate::overrides::Override::new(false, 1_796_168_154_123, "ns2", o.values().next());
        v.reason = Some("back after the drill".into());
        o.insert(EndpointKey::new("a.test.", "Primary"), v);
        o.insert(
            EndpointKey::new("b.test.", "x"),
            crate::overrides::Override::new(true, 5, "ns1", None),
        );
        write(&p, &o, &[]).unwrap();
        assert_eq!(read(&p).unwrap(), o);
        o.insert(
            EndpointKey::new("a.test.", "Primary"),
            crate::overrides::Override::new(true, 0, "", None),
        );
        o.remove(&EndpointKey::new("b.test.", "x"));
        std::fs::write(
            &p,
            r#"{"disabled":[{"profile":"A.Test","endpoint":"Primary"}]}"#,
        )
        .unwrap();
        assert_eq!(read(&p).unwrap(), o);
        assert!(!dir.path().join("s.json.tmp").exists());
    }

    #[test]
    fn unusable_files_are_described_and_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        for (text, want) in [
            ("", "empty"),
            ("{\"disabled\": [", "not a valid state file"),
            ("{\"disabled\": 5}", "not a valid state file"),
            ("\"a string\"", "not a valid state file"),
        ] {
            std::fs::write(&p, text).unwrap();
            let err = read(&p).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            let (o, r) = load_at_start(&p);
            assert!(o.is_empty());
            let r = r.unwrap();
            let moved = r.moved_to.clone().unwrap();
            assert!(moved.exists() && !p.exists(), "{r:?}");
            std::fs::remove_file(moved).unwrap();
        }
        std::fs::create_dir(&p).unwrap();
        assert!(read(&p).unwrap_err().contains("directory"));
    }
}
