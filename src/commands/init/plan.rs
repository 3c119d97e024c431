//! What `switchyard init` writes, made from the answers before anything
//! is written: each file's text, then three checks (no file there yet;
//! the configuration compiles with the code `check` runs; the files
//! written together or not at all).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use switchyard::dnssec::{Algorithm, KeyFile, ZoneKey};
use switchyard::proto::name::DomainName;

use super::input::{Endpoint, NameServer};
use crate::commands::args::InitMethod;

/// TTL of the zone's static records, SOA and NS (the configuration's
/// default), and so of the NS and glue records printed for the parent.
pub(crate) const ZONE_TTL: u32 = 3600;

/// Every answer, checked one by one.
pub(crate) struct Answers {
    pub(crate) zone: DomainName,
    pub(crate) ns: Vec<NameServer>,
    pub(crate) profile: DomainName,
    pub(crate) method: InitMethod,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) dir: PathBuf,
    pub(crate) dnssec: Option<Algorithm>,
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) admin_listen: SocketAddr,
    /// Absolute.
    pub(crate) geoip: Option<PathBuf>,
}

/// A file to write: its path relative to the directory, its text, and
/// whether it is a secret (mode 0600).
pub(crate) struct File {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) secret: bool,
}

/// The files, and what to tell the operator.
pub(crate) struct Plan {
    pub(crate) dir: PathBuf,
    pub(crate) files: Vec<File>,
    /// The records for the parent zone: NS, glue, DS.
    pub(crate) parent_records: Vec<String>,
    /// The signing key's tag and algorithm, when signing.
    pub(crate) key: Option<(u16, Algorithm)>,
}

/// The configuration file's name in the directory.
pub(crate) const CONFIG_FILE: &str = "switchyard.toml";
/// The admin token's file name in the directory.
pub(crate) const TOKEN_FILE: &str = "admin.token";

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl Plan {
    /// The files for `a`: a new admin token, a new key when signing.
    pub(crate) fn new(a: &Answers) -> Result<Plan, String> {
        let mut files = Vec::new();
        let mut parent_records = Vec::new();
        for ns in &a.ns {
            parent_records.push(format!("{} {ZONE_TTL} IN NS {}", a.zone, ns.name));
        }
        for ns in &a.ns {
            for addr in &ns.addrs {
                let t = if addr.is_ipv4() { "A" } else { "AAAA" };
                parent_records.push(format!("{} {ZONE_TTL} IN {t} {addr}", ns.name));
            }
        }
        let mut key = None;
        let key_path = switchyard::dnssec::cli::default_key_path(&a.zone);
        if let Some(algorithm) = a.dnssec {
            let file = KeyFile::generate(&a.zone, algorithm)?;
            let text = file.to_text();
            let zone_key = ZoneKey::from_file(file)?;
            parent_records.extend(switchyard::dnssec::cli::ds_lines(
                &a.zone, &zone_key, ZONE_TTL,
            ));
            key = Some((zone_key.key_tag(), algorithm));
            files.push(File {
                path: key_path.clone(),
                text,
                secret: true,
            });
        }
        files.insert(
            0,
            File {
                path: CONFIG_FILE.into(),
                text: config_text(a, key.map(|_| key_path.as_path())),
                secret: false,
            },
        );
        files.insert(
            1,
            File {
                path: Path::new("profiles").join(profile_file_name(&a.profile, &a.zone)),
                text: profile_text(a),
                secret: false,
            },
        );
        files.insert(
            2,
            File {
                path: TOKEN_FILE.into(),
                text: new_token()?,
                secret: true,
            },
        );
        Ok(Plan {
            dir: a.dir.clone(),
            files,
            parent_records,
            key,
        })
    }

    /// Every problem that stops the files from being written as new ones:
    /// a file already there, a directory that is a file, profiles already
    /// in the profiles directory (the server would load them too).
    pub(crate) fn refusals(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.dir.exists() && !self.dir.is_dir() {
            out.push(format!(
                "{} exists and is not a directory",
                self.dir.display()
            ));
            return out;
        }
        for f in &self.files {
            let path = self.dir.join(&f.path);
            if path.symlink_metadata().is_ok() {
                out.push(format!("{} already exists", path.display()));
            }
        }
        let profiles = self.dir.join("profiles");
        if let Ok(list) = std::fs::read_dir(&profiles) {
            let mine = self.dir.join(&self.files[1].path);
            for e in list.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") && p != mine {
                    out.push(format!(
                        "{} is a profile the new configuration would load too: init writes a new configuration, into an empty directory",
                        p.display()
                    ));
                }
            }
        } else if profiles.symlink_metadata().is_ok() {
            out.push(format!(
                "{} exists and is not a directory",
                profiles.display()
            ));
        }
        out
    }

    /// Compiles the configuration with the code `check` runs, from a
    /// private copy of the files: its problems, as `check` would print
    /// them for the files in the directory; warnings come back as `Ok`.
    pub(crate) fn compile(&self) -> Result<Vec<String>, Vec<String>> {
        let stage = Stage::new().map_err(|e| vec![e])?;
        for f in &self.files {
            write_file(&stage.0.join(&f.path), f, &mut Vec::new()).map_err(|e| vec![e])?;
        }
        let staged = stage.0.display().to_string();
        let mine = self.dir.display().to_string();
        let mine = mine.trim_end_matches('/');
        let shown = |s: String| s.replace(&staged, mine);
        match switchyard::config::load(&stage.0.join(CONFIG_FILE)) {
            Ok(cfg) => Ok(cfg.warnings.iter().map(|w| shown(w.to_string())).collect()),
            Err(errors) => Err(errors.0.iter().map(|e| shown(e.to_string())).collect()),
        }
    }

    /// Writes every file, each as a new one (never replacing one that
    /// appeared since [`Plan::refusals`]); on any failure removes what it
    /// wrote, and the directories it made.
    pub(crate) fn write(&self) -> Result<(), String> {
        let mut made: Vec<PathBuf> = Vec::new();
        let result = self
            .files
            .iter()
            .try_for_each(|f| write_file(&self.dir.join(&f.path), f, &mut made));
        if result.is_err() {
            for p in made.iter().rev() {
                let _ = if p.is_dir() {
                    std::fs::remove_dir(p)
                } else {
                    std::fs::remove_file(p)
                };
            }
        }
        result
    }
}

/// Writes `f` at `path` as a new file (its directories made as needed,
/// each recorded in `made` before the file).
fn write_file(path: &Path, f: &File, made: &mut Vec<PathBuf>) -> Result<(), String> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        let mut missing: Vec<&Path> = parent.ancestors().take_while(|p| !p.exists()).collect();
        missing.reverse();
        for d in missing {
            if d.as_os_str().is_empty() {
                continue;
            }
            let mode = if f.secret { 0o700 } else { 0o755 };
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(d)
                .map_err(|e| format!("cannot create the directory {}: {e}", d.display()))?;
            made.push(d.to_path_buf());
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if f.secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!("{} already exists", path.display()),
            _ => format!("cannot write {}: {e}", path.display()),
        })?;
    made.push(path.to_path_buf());
    if f.secret {
        // The mode above is filtered by the umask; make it exactly 0600.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    file.write_all(f.text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A private temporary directory, removed when dropped.
struct Stage(PathBuf);

impl Stage {
    fn new() -> Result<Stage, String> {
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let dir = base.join(format!(
                "switchyard-init-{}-{:08x}",
                std::process::id(),
                fastrand::u32(..)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Stage(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(format!(
                        "cannot create a directory in {} to check the configuration in: {e}",
                        base.display()
                    ));
                }
            }
        }
        Err(format!("cannot create a directory in {}", base.display()))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 32 random bytes in base64, as the systemd unit's header makes one.
fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "the system's random number generator failed".to_string())?;
    Ok(format!("{}\n", data_encoding::BASE64.encode(&bytes)))
}

/// `profiles/<name>.toml`: the profile's name relative to the zone
/// (`api.toml`), `apex.toml` at the apex.
fn profile_file_name(profile: &DomainName, zone: &DomainName) -> String {
    let full = profile.as_str().to_ascii_lowercase();
    let origin = zone.as_str().to_ascii_lowercase();
    let relative = full
        .strip_suffix(&origin)
        .unwrap_or(&full)
        .trim_end_matches('.');
    let name: String = relative
        .chars()
        .map(|c| match c {
            '*' => '_',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() {
        "apex.toml".into()
    } else {
        format!("{name}.toml")
    }
}

/// `switchyard.toml`.
fn config_text(a: &Answers, key: Option<&Path>) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Switchyard configuration for the zone {}, written by `switchyard init`.\n\
         # Every key: profiles/README.md of the source, or `man switchyard`.\n\
         # Check an edit with `switchyard check -c <this file>` before a reload.\n",
        a.zone
    );
    let _ = writeln!(
        t,
        "# Runtime overrides (`switchyard endpoint disable`) are kept here across\n\
         # restarts; under the Debian package's unit, where /etc is read-only to\n\
         # the service: \"/var/lib/switchyard/switchyard.state\".\n\
         state_file = \"switchyard.state\"\n"
    );
    let listen: Vec<String> = a.listen.iter().map(|l| quote(&l.to_string())).collect();
    let _ = writeln!(
        t,
        "[dns]\nlisten = [{}]   # each address serves UDP and TCP\n",
        listen.join(", ")
    );
    let _ = writeln!(
        t,
        "[admin]\nlisten = {}\n\
         # The bearer token of changes through the admin API (mode 0600; the\n\
         # admin commands read it from SWITCHYARD_ADMIN_TOKEN). Under the Debian\n\
         # package's unit the service runs as `switchyard`: `chown switchyard` it.\n\
         token = {{ file = {} }}\n",
        quote(&a.admin_listen.to_string()),
        quote(TOKEN_FILE)
    );
    if let Some(db) = &a.geoip {
        let _ = writeln!(
            t,
            "[geoip]\ndatabase = {}\n",
            quote(&db.display().to_string())
        );
    }
    let _ = writeln!(t, "[profiles]\ndir = \"profiles\"\n");
    let ns: Vec<String> = a.ns.iter().map(|n| quote(n.name.as_str())).collect();
    let _ = writeln!(
        t,
        "[[zones]]\norigin = {}\nttl = {ZONE_TTL}\nns = [{}]\n\
         # soa = {{ rname = \"hostmaster@example.com\" }}   # defaults: mname the first ns, rname hostmaster.<origin>",
        quote(a.zone.as_str()),
        ns.join(", ")
    );
    let glue: Vec<(&DomainName, &IpAddr)> =
        a.ns.iter()
            .flat_map(|n| n.addrs.iter().map(move |ip| (&n.name, ip)))
            .collect();
    if !glue.is_empty() {
        let _ = writeln!(t, "records = [");
        for (name, ip) in glue {
            let ty = if ip.is_ipv4() { "A" } else { "AAAA" };
            let _ = writeln!(
                t,
                "  {{ name = {}, type = \"{ty}\", value = {} }},",
                quote(name.as_str()),
                quote(&ip.to_string())
            );
        }
        let _ = writeln!(t, "]");
    }
    if let Some(key) = key {
        let _ = writeln!(
            t,
            "# Signed online with this key (mode 0600; every name server of the zone needs it).\n\
             dnssec = {{ key = {{ file = {} }} }}",
            quote(&key.display().to_string())
        );
    }
    t
}

/// `profiles/<name>.toml`: the monitor from the health URLs, each
/// endpoint's `probe` where its URL differs from what it would probe.
/// The probe goes to the endpoint (what is answered is what is checked;
/// resolving the URL's name instead could even ask this server): to the
/// URL's address only when the URL names one.
fn profile_text(a: &Answers) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# {}: {} routing, written by `switchyard init`.\n\
         # Keys: profiles/README.md of the source, or `man switchyard`.\n\n\
         name = {}\nrouting = \"{}\"\nttl = 60\n",
        a.profile,
        a.method.name(),
        quote(a.profile.as_str()),
        a.method.name()
    );
    let first = &a.endpoints[0].health;
    let _ = writeln!(
        t,
        "# Each endpoint's health URL is fetched every 30 s; 4 failures in a row\n\
         # take it out of the answers, 1 success brings it back.\n\
         [monitor]\nprotocol = \"{}\"\npath = {}",
        first.protocol(),
        quote(&first.path)
    );
    let default_port = if first.https { 443 } else { 80 };
    let port = first.port_or_default();
    if port != default_port {
        let _ = writeln!(t, "port = {port}");
    }
    for e in &a.endpoints {
        let _ = writeln!(
            t,
            "\n[[endpoints]]\nname = {}\ntarget = {}",
            quote(&e.name),
            quote(&e.target)
        );
        if let (Some(key), Some(value)) = (a.method.endpoint_key(), &e.method_value) {
            let _ = writeln!(t, "{key} = {value}");
        }
        // The probe connects to the target, or to the URL's address when
        // it names another one; a host name in the URL is sent as Host
        // (and the TLS name), never resolved in place of the target.
        let mut probe = Vec::new();
        let h = &e.health;
        let host_is_address = h.host.parse::<IpAddr>().is_ok();
        if host_is_address && !h.host.eq_ignore_ascii_case(&e.target) {
            probe.push(format!("address = {}", quote(&h.host)));
        }
        if h.port_or_default() != port {
            probe.push(format!("port = {}", h.port_or_default()));
        }
        if h.path != first.path {
            probe.push(format!("path = {}", quote(&h.path)));
        }
        if !host_is_address && !h.host.eq_ignore_ascii_case(&e.target) {
            let host = match h.port {
                Some(p) if p != default_port => format!("{}:{p}", h.host),
                _ => h.host.clone(),
            };
            probe.push(format!("headers = {{ Host = {} }}", quote(&host)));
        }
        if !probe.is_empty() {
            let _ = writeln!(t, "probe = {{ {} }}", probe.join(", "));
        }
    }
    t
}

/// The health URLs of one profile share its monitor's protocol.
pub(crate) fn one_protocol(endpoints: &[Endpoint]) -> Result<(), String> {
    let Some(first) = endpoints.first() else {
        return Ok(());
    };
    match endpoints
        .iter()
        .find(|e| e.health.https != first.health.https)
    {
        Some(e) => Err(format!(
            "endpoint `{}` is checked over {} and `{}` over {}: a profile's health URLs share one protocol (its monitor's)",
            first.name,
            first.health.protocol(),
            e.name,
            e.health.protocol()
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::input;
    use super::*;

    fn answers(endpoints: &[&str]) -> Answers {
        let zone = input::zone("tm.example.com").unwrap();
        let ns = vec![input::name_server("ns1=192.0.2.53", &zone).unwrap()];
        let mut list = Vec::new();
        for e in endpoints {
            let e = input::endpoint(e, InitMethod::Priority, &list).unwrap();
            list.push(e);
        }
        Answers {
            profile: input::profile("api", &zone, &ns).unwrap(),
            zone,
            ns,
            method: InitMethod::Priority,
            endpoints: list,
            dir: "conf".into(),
            dnssec: None,
            listen: vec!["127.0.0.1:53".parse().unwrap()],
            admin_listen: "127.0.0.1:8053".parse().unwrap(),
            geoip: None,
        }
    }

    /// The probe goes to the endpoint, with the URL's host name as Host;
    /// to the URL's address only when it names another one.
    #[test]
    fn health_urls_become_the_monitor_and_probes() {
        let text = profile_text(&answers(&[
            "eu=192.0.2.10,https://eu.api.example.com/health",
            "us=us.cdn.example.net,https://us.api.example.com:8443/health",
            "x=192.0.2.12,https://192.0.2.99/hc",
            "y=192.0.2.13,https://192.0.2.13/health",
        ]));
        assert!(
            text.contains("[monitor]\nprotocol = \"https\"\npath = \"/health\"\n"),
            "{text}"
        );
        for want in [
            "target = \"192.0.2.10\"\nprobe = { headers = { Host = \"eu.api.example.com\" } }\n",
            "probe = { port = 8443, headers = { Host = \"us.api.example.com:8443\" } }\n",
            "probe = { address = \"192.0.2.99\", path = \"/hc\" }\n",
            "target = \"192.0.2.13\"\n",
        ] {
            assert!(text.contains(want), "want {want} in:\n{text}");
        }
        assert!(!text.contains("target = \"192.0.2.13\"\nprobe"), "{text}");
    }

    #[test]
    fn profile_files_are_named_relative_to_the_zone() {
        let zone = input::zone("tm.example.com").unwrap();
        let name = |p: &str| profile_file_name(&DomainName::parse(p, None).unwrap(), &zone);
        assert_eq!(name("api.tm.example.com."), "api.toml");
        assert_eq!(name("a.b.TM.example.com."), "a.b.toml");
        assert_eq!(name("tm.example.com."), "apex.toml");
        assert_eq!(name("*.t.tm.example.com."), "_.t.toml");
    }
}
