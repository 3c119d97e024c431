//! `switchyard import` and `switchyard apply`: another traffic manager's
//! profiles written as profile files, staged by default; the staged files
//! put live once the configuration with them passes `check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::plural;
use switchyard::config;
use switchyard::import::{self, azure};

/// How `switchyard import` writes.
pub(crate) struct ImportOptions {
    pub(crate) zone: Option<String>,
    pub(crate) out: Option<PathBuf>,
    pub(crate) force: bool,
    pub(crate) apply: bool,
}

/// `switchyard import azure`: read the inputs, map them (pure), write the
/// files (staged by default, so nothing goes live before `switchyard
/// apply`), print what was not carried over and what to do next.
pub(crate) fn import_azure(
    files: &[PathBuf],
    opts: ImportOptions,
    config_path: &std::path::Path,
    again: &dyn Fn(&str) -> String,
) -> Result<ExitCode> {
    let defaults = import::config_defaults(config_path).map_err(anyhow::Error::msg)?;
    let zone = zone_for(opts.zone, &defaults, config_path)?;
    let live = defaults
        .as_ref()
        .map_or_else(|| PathBuf::from("profiles"), |(_, d)| d.clone());
    let staged = config::staged_dir(&live);
    if opts.apply {
        nothing_else_staged(&staged, again)?;
    }
    let inputs = read_inputs(files)?;
    let result = match azure::import(&inputs, &zone) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("nothing written");
            return Ok(ExitCode::from(1));
        }
    };
    let (dir, replaces) = match &opts.out {
        Some(out) => (out.clone(), None),
        None => (staged.clone(), Some(live.as_path())),
    };
    let written = import::write_files(&dir, &result.files, opts.force, replaces)
        .map_err(anyhow::Error::msg)?;
    for n in &result.notices {
        out!("{n}");
    }
    let zone_dot = format!("{}.", zone.trim_end_matches('.').to_ascii_lowercase());
    if let Some((zones, _)) = &defaults
        && !zones.iter().any(|z| format!("{z}.") == zone_dot)
    {
        out!(
            "note: {} serves no zone {zone_dot}: add a [[zones]] table for it, or `switchyard check` rejects these profiles",
            config_path.display()
        );
    }
    let verb = if opts.out.is_some() {
        "wrote"
    } else {
        "staged"
    };
    for (f, path) in result.files.iter().zip(&written) {
        out!(
            "{verb} {}: {} ({}, {} endpoint{})",
            path.display(),
            f.profile,
            f.routing,
            f.endpoints,
            plural(f.endpoints)
        );
    }
    let mut steps = Vec::new();
    if opts.apply {
        // What goes live must pass `check` with them.
        if apply_checked(config_path, &staged, &live)? != ExitCode::SUCCESS {
            eprintln!(
                "not applied: the files stay staged in {}; fix them, then `{}`",
                staged.display(),
                again("apply")
            );
            return Ok(ExitCode::from(1));
        }
    } else {
        steps = manual_steps(opts.out.is_some(), &staged, &live, &dir, again);
    }
    steps.extend(result.next_steps.iter().cloned());
    out!("next:");
    for step in &steps {
        out!("  - {step}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The zone the profiles go in: `--zone`, else the configuration's only
/// zone.
fn zone_for(
    given: Option<String>,
    defaults: &Option<(Vec<String>, PathBuf)>,
    config_path: &Path,
) -> Result<String> {
    let zone = match (given, defaults) {
        (Some(z), _) => z,
        (None, Some((zones, _))) if zones.len() == 1 => zones[0].clone(),
        (None, Some((zones, _))) => anyhow::bail!(
            "{} has {} zones: name the one for these profiles with --zone",
            config_path.display(),
            zones.len()
        ),
        (None, None) => anyhow::bail!(
            "--zone is required ({} does not exist to take its zone from)",
            config_path.display()
        ),
    };
    Ok(zone)
}

/// With `--apply`: refused while other profiles are staged, which would
/// go live too.
fn nothing_else_staged(staged: &Path, again: &dyn Fn(&str) -> String) -> Result<()> {
    let waiting = import::staged_files(staged).map_err(anyhow::Error::msg)?;
    if !waiting.is_empty() {
        let names: Vec<String> = waiting.iter().map(|p| p.display().to_string()).collect();
        anyhow::bail!(
            "other profiles are staged already ({}): --apply would put them live too; apply them first (`{}`), or remove them, or import without --apply",
            names.join(", "),
            again("apply")
        );
    }
    Ok(())
}

/// Reads and parses each input file (`-`: standard input).
fn read_inputs(files: &[PathBuf]) -> Result<Vec<azure::Input>> {
    let mut inputs = Vec::new();
    for f in files {
        let (label, text) = if f.as_os_str() == "-" {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
            ("(stdin)".to_string(), t)
        } else {
            let label = f.display().to_string();
            let t = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read {label}: {e}"))?;
            (label, t)
        };
        let doc = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{label}: not valid JSON: {e}"))?;
        inputs.push(azure::Input { file: label, doc });
    }
    Ok(inputs)
}

/// What to do next by hand, after an import without `--apply`: with
/// the files staged, check them, then apply them; written elsewhere
/// (`--out`), move them into the profiles directory.
fn manual_steps(
    out_given: bool,
    staged: &Path,
    live: &Path,
    dir: &Path,
    again: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let mut steps = Vec::new();
    if !out_given {
        steps.push(format!(
            "nothing is live yet: the files wait in {} (the server does not read it)",
            staged.display()
        ));
        steps.push(format!(
            "check them: `{}`; see what they change in the running server's answers: `{}`",
            again("check --staged"),
            again("check --diff --staged")
        ));
        steps.push(format!(
            "put them live: `{}` (moves them into {}, which the file watch loads)",
            again("apply"),
            live.display()
        ));
    } else {
        steps.push(format!(
            "{} is not read by the server unless it is the profiles directory ([profiles] dir, {}): move the files there when they should answer",
            dir.display(),
            live.display()
        ));
    }
    steps
}

/// `switchyard apply`: the staged profiles go live, if the configuration
/// with them passes `check`.
pub(crate) fn apply(
    config_path: &std::path::Path,
    again: &dyn Fn(&str) -> String,
) -> Result<ExitCode> {
    let live = import::config_defaults(config_path)
        .map_err(anyhow::Error::msg)?
        .map_or_else(|| PathBuf::from("profiles"), |(_, d)| d);
    let staged = config::staged_dir(&live);
    if import::staged_files(&staged)
        .map_err(anyhow::Error::msg)?
        .is_empty()
    {
        anyhow::bail!(
            "nothing is staged in {} (`switchyard import` writes there; so can you)",
            staged.display()
        );
    }
    let code = apply_checked(config_path, &staged, &live)?;
    if code != ExitCode::SUCCESS {
        eprintln!(
            "nothing applied: the files stay staged in {}; fix them, then `{}`",
            staged.display(),
            again("apply")
        );
    }
    Ok(code)
}

/// Checks the configuration at `config_path` with the staged profiles;
/// when it passes, moves them from `staged` into `live` and says how they
/// get loaded. Prints the problems and exits 1 otherwise, moving nothing.
fn apply_checked(
    config_path: &std::path::Path,
    staged: &std::path::Path,
    live: &std::path::Path,
) -> Result<ExitCode> {
    let cfg = match config::load_staged(config_path, &config::Carry::default()) {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors.0 {
                out!("{e}");
            }
            eprintln!("{} problem{} found", errors.0.len(), plural(errors.0.len()));
            return Ok(ExitCode::from(1));
        }
    };
    for w in &cfg.warnings {
        out!("warning: {w}");
    }
    let applied = switchyard::import::apply(staged, live).map_err(anyhow::Error::msg)?;
    for a in &applied {
        out!(
            "applied {}{}",
            a.path.display(),
            if a.replaced {
                " (replaces the live file)"
            } else {
                ""
            }
        );
    }
    if cfg.settings.watch {
        out!(
            "the running server's file watch loads {} within a second (a stopped one at its start)",
            if applied.len() == 1 { "it" } else { "them" }
        );
    } else {
        out!(
            "[profiles] watch = false: `switchyard reload` (or SIGHUP) puts {} live",
            if applied.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
