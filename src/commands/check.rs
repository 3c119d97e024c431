//! `switchyard check`: the configuration and every profile validated,
//! problems on stdout; the state file's problems as warnings.

use std::process::ExitCode;

use anyhow::Result;

use super::plural;
use switchyard::config;

/// Validates the configuration at `path` (with the staged profiles when
/// `staged`): exit 1 on any problem.
pub(crate) fn run(path: &std::path::Path, staged: bool) -> Result<ExitCode> {
    let loaded = if staged {
        config::load_staged(path, &config::Carry::default())
    } else {
        config::load(path)
    };
    match loaded {
        Ok(cfg) => {
            for w in &cfg.warnings {
                out!("warning: {w}");
            }
            if cfg.settings.dns.xdp.is_some() && !xdp_built() {
                out!(
                    "warning: {}: [dns.xdp] is on but this switchyard has no XDP program (clang was missing when it was built, or this is not Linux): `serve` will refuse to start unless dns.xdp.fallback = \"sockets\"",
                    path.display()
                );
            }
            let t = &cfg.table;
            // The state file is runtime data, but a damaged one loses the
            // operator's overrides at the next start: report it. A warning,
            // not an error: `serve` starts anyway (and `check` often runs
            // just before it, as in the systemd unit's ExecStartPre).
            if let Some(state) = &cfg.settings.state_file {
                match switchyard::state_file::read(state) {
                    Err(problem) => {
                        out!(
                            "warning: {}: state file cannot be used: {problem}; `switchyard serve` will move it aside and start without its runtime overrides",
                            state.display()
                        );
                    }
                    Ok(overrides) => {
                        let now = switchyard::clock::now_millis();
                        for (key, o) in overrides.iter().filter(|(_, o)| o.in_force(now)) {
                            let (profile, endpoint) = (key.profile(), key.endpoint());
                            if t.endpoint_by_key(key).is_none() {
                                let what = match o.kind() {
                                    switchyard::overrides::Kind::Shed => "sheds",
                                    switchyard::overrides::Kind::Drain => "drains",
                                    _ => "disables",
                                };
                                out!(
                                    "warning: {}: {what} {profile}/{endpoint}, which the configuration does not have",
                                    state.display()
                                );
                            }
                        }
                    }
                }
            }
            let signed = t.zones.iter().filter(|z| z.signer.is_some()).count();
            let with_staged = if staged {
                let dir = config::staged_dir(&cfg.settings.profiles_dir);
                let n = switchyard::import::staged_files(&dir)
                    .map_err(anyhow::Error::msg)?
                    .len();
                if n == 0 {
                    format!(", and nothing staged in {}", dir.display())
                } else {
                    format!(
                        ", with {n} staged profile file{} from {}",
                        plural(n),
                        dir.display()
                    )
                }
            } else {
                String::new()
            };
            out!(
                "{}: ok ({} zone{}{}, {} profile{}, {} endpoint{}{with_staged})",
                path.display(),
                t.zones.len(),
                plural(t.zones.len()),
                if signed > 0 {
                    format!(" ({signed} signed)")
                } else {
                    String::new()
                },
                t.profiles.len(),
                plural(t.profiles.len()),
                t.endpoints.len(),
                plural(t.endpoints.len()),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                out!("{e}");
            }
            eprintln!("{} problem{} found", errors.0.len(), plural(errors.0.len()));
            Ok(ExitCode::from(1))
        }
    }
}

/// Whether this binary carries the XDP program.
fn xdp_built() -> bool {
    #[cfg(target_os = "linux")]
    return switchyard::server::xdp::program_built();
    #[cfg(not(target_os = "linux"))]
    return false;
}
