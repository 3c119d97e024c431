//! The `switchyard dnssec` commands, as functions that return the lines
//! to print (the binary prints them; tests read them).

use std::path::{Path, PathBuf};

use super::key::{Algorithm, KeyFile, ZoneKey, write_new};
use crate::proto::name::DomainName;

/// TTL printed on the DS and DNSKEY lines (the parent zone sets its own
/// for the DS).
pub const DEFAULT_TTL: u32 = 3600;

fn parse_zone(zone: &str) -> Result<DomainName, String> {
    DomainName::parse(zone, None)
        .map_err(|e| format!("--zone `{}`: {e}", crate::fsutil::shown(zone)))
}

/// Where `keygen` writes without `--out`: `keys/<zone>.key` (the zone
/// without its trailing dot, lowercase; characters that do not belong in a
/// file name become `_`; the root zone is `root`).
pub fn default_key_path(zone: &DomainName) -> PathBuf {
    let name = zone.as_str().trim_end_matches('.').to_ascii_lowercase();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.is_empty() { "root".into() } else { name };
    Path::new("keys").join(format!("{name}.key"))
}

/// The DS record(s) to give to the parent zone for `key`: one, with a
/// SHA-256 digest (digest type 2, which every validator supports).
pub fn ds_lines(zone: &DomainName, key: &ZoneKey, ttl: u32) -> Vec<String> {
    vec![key.ds_text(zone, ttl)]
}

/// The directory the paths of the configuration at `config` are relative
/// to (`""` for a bare file name: the working directory).
fn config_dir(config: &Path) -> &Path {
    config.parent().unwrap_or(Path::new(""))
}

/// `key` as the configuration at `config` names it in `file = ...`: relative
/// to the configuration's directory when it is inside it, else absolute.
fn as_configured(key: &Path, config: &Path) -> PathBuf {
    let absolute = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let dir = config_dir(config);
    let dir = absolute(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    });
    let key = absolute(key);
    match key.strip_prefix(&dir) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => key,
    }
}

/// `switchyard dnssec keygen`: makes a key for `zone`, writes it to `out`
/// (relative to the working directory), by default to
/// [`default_key_path`] in the directory of the configuration at `config`
/// (`-c`), and returns what to tell the operator: the `file = ...` to add
/// to that configuration, as it resolves it.
pub fn keygen(
    zone: &str,
    algorithm: Algorithm,
    out: Option<&Path>,
    force: bool,
    config: &Path,
) -> Result<Vec<String>, String> {
    let zone = parse_zone(zone)?;
    let path = out.map_or_else(
        || config_dir(config).join(default_key_path(&zone)),
        Path::to_path_buf,
    );
    let file = KeyFile::generate(&zone, algorithm)?;
    let text = file.to_text();
    let key = ZoneKey::from_file(file)?;
    write_new(&path, &text, force)?;
    let mut lines = vec![format!(
        "wrote {}: key tag {}, algorithm {} ({})",
        path.display(),
        key.key_tag(),
        algorithm.number(),
        algorithm.name()
    )];
    lines.extend(ds_lines(&zone, &key, DEFAULT_TTL));
    lines.push(key.dnskey_text(&zone, DEFAULT_TTL));
    let configured = as_configured(&path, config).display().to_string();
    let quoted = toml::Value::String(configured).to_string();
    lines.push(format!(
        "Add `dnssec = {{ key = {{ file = {quoted} }} }}` to the zone in {}, then give the DS record to the parent zone.",
        config.display()
    ));
    Ok(lines)
}

/// `switchyard dnssec ds`: the DS line(s) for the key in `key_file`, which
/// must be a key for `zone`.
pub fn ds(zone: &str, key_file: &Path) -> Result<Vec<String>, String> {
    let zone = parse_zone(zone)?;
    let key = ZoneKey::load(key_file, &zone)?;
    Ok(ds_lines(&zone, &key, DEFAULT_TTL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths() {
        let p = |z: &str| default_key_path(&DomainName::parse(z, None).unwrap());
        assert_eq!(p("TM.example.test."), Path::new("keys/tm.example.test.key"));
        assert_eq!(p("tm.example.test"), Path::new("keys/tm.example.test.key"));
        assert_eq!(p("."), Path::new("keys/root.key"));
    }

    #[test]
    fn keygen_then_ds() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("keys/tm.example.test.key");
        let config = dir.path().join("switchyard.toml");
        let lines = keygen(
            "tm.example.test",
            Algorithm::Ed25519,
            Some(&out),
            false,
            &config,
        )
        .unwrap();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with(&format!("wrote {}: key tag ", out.display())));
        assert!(
            lines[0].ends_with(", algorithm 15 (ed25519)"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("tm.example.test. 3600 IN DS "),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("tm.example.test. 3600 IN DNSKEY 257 3 15 "));
        // Relative to the configuration's directory, as it resolves it.
        assert!(
            lines[3].contains("file = \"keys/tm.example.test.key\""),
            "{}",
            lines[3]
        );

        let ds_out = ds("TM.example.test.", &out).unwrap();
        assert_eq!(ds_out.len(), 1);
        // Same DS (the case of the owner is the one asked with).
        assert_eq!(
            ds_out[0].to_ascii_lowercase(),
            lines[1].to_ascii_lowercase()
        );

        let e = keygen(
            "tm.example.test",
            Algorithm::Ed25519,
            Some(&out),
            false,
            &config,
        )
        .unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        keygen(
            "tm.example.test",
            Algorithm::EcdsaP256Sha256,
            Some(&out),
            true,
            &config,
        )
        .unwrap();
        assert_ne!(ds("tm.example.test", &out).unwrap(), ds_out);

        let e = ds("other.test", &out).unwrap_err();
        assert!(
            e.contains("this key is for zone tm.example.test., not other.test."),
            "{e}"
        );
        let e = ds("bad..zone", &out).unwrap_err();
        assert!(e.starts_with("--zone `bad..zone`: "), "{e}");
    }
}
