//! The shipped systemd unit is valid: `systemd-analyze verify` accepts it
//! with the unit's commands pointing at the built binary. `scripts/test.sh`
//! installs systemd's tools when missing.

use std::process::Command;

use crate::harness::bin;

#[test]
fn the_systemd_unit_verifies() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(repo.join("examples/systemd/switchyard.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("LoadCredential=admin-token:"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/switchyard", bin().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze is missing: run the tests with scripts/test.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines about this unit are problems; other units on the host are not ours.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("switchyard.service") || l.contains(path.to_str().unwrap()))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{text}");
}
