//! Importers: other traffic managers' configurations turned into
//! Switchyard profile files (`switchyard import azure PROFILE.json`).
//!
//! Each importer is pure: parsed input in, [`Import`] (file names and TOML
//! text, and a line for every setting that was not carried over) out. The
//! command line reads the inputs and writes the files ([`write_files`]).

pub mod arm;
pub mod azure;

use std::fmt;
use std::path::{Path, PathBuf};

/// One profile file to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileFile {
    /// The file name, `<name>.toml`, inside the output directory.
    pub file_name: String,
    /// The profile's name (`name = ...`), fully qualified.
    pub profile: String,
    /// The routing method written.
    pub routing: String,
    /// Endpoints written (not counting commented-out ones).
    pub endpoints: usize,
    /// The file's text (TOML).
    pub text: String,
}

/// How much a [`Notice`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A setting that was not carried over: the behaviour differs until
    /// the operator does what the message says.
    Warning,
    /// Carried over, with a difference worth knowing.
    Note,
}

/// A line for the operator about one setting of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Warning or note.
    pub level: Level,
    /// Where in the input: `FILE: json.path`.
    pub at: String,
    /// What happened and what to do instead.
    pub message: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Note => "note",
        };
        write!(f, "{level}: {}: {}", self.at, self.message)
    }
}

/// What an importer produced.
#[derive(Debug, Clone, Default)]
pub struct Import {
    /// The profile files, in input order (children after their parents'
    /// inputs if so given).
    pub files: Vec<ProfileFile>,
    /// Every setting not carried over, or carried over differently.
    pub notices: Vec<Notice>,
    /// Next steps for the operator after the files are live, one line
    /// each (the command line adds how to check and apply them first).
    pub next_steps: Vec<String>,
}

/// Writes `files` into `dir` (created if missing). Refuses, writing
/// nothing, when a file exists already (in `dir`, or in `live`, the live
/// profiles directory a staged file would replace) and `force` is false.
/// Returns the paths written.
pub fn write_files(
    dir: &Path,
    files: &[ProfileFile],
    force: bool,
    live: Option<&Path>,
) -> Result<Vec<PathBuf>, String> {
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(&f.file_name)).collect();
    if !force {
        let live_paths = files
            .iter()
            .filter_map(|f| live.map(|l| l.join(&f.file_name)));
        let existing: Vec<String> = paths
            .iter()
            .cloned()
            .chain(live_paths)
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "{} exist{} already; nothing written (--force replaces {})",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" },
                if existing.len() == 1 { "it" } else { "them" },
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (f, path) in files.iter().zip(&paths) {
        std::fs::write(path, &f.text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(paths)
}

/// The profile files (`*.toml`) waiting in the staging directory `staged`
/// ([`crate::config::staged_dir`]), by name; none when it does not exist.
pub fn staged_files(staged: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(staged) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", staged.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// A staged file put live by [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Where it is now, in the profiles directory.
    pub path: PathBuf,
    /// It replaced a live file of that name.
    pub replaced: bool,
}

/// Moves every staged profile file from `staged` into the profiles
/// directory `live`, each in one rename (so the file watch never reads half
/// a file), replacing a live file of the same name; removes `staged` once
/// empty. The caller checks the configuration with them first
/// ([`crate::config::load_staged`]).
pub fn apply(staged: &Path, live: &Path) -> Result<Vec<Applied>, String> {
    let mut done = Vec::new();
    for from in staged_files(staged)? {
        let Some(name) = from.file_name() else {
            continue;
        };
        let to = live.join(name);
        let replaced = to.exists();
        if std::fs::rename(&from, &to).is_err() {
            // Another file system: copy beside the target under a name the
            // watch ignores, then rename it into place.
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".tmp-{}", std::process::id()));
            let tmp = live.join(tmp_name);
            std::fs::copy(&from, &tmp)
                .and_then(|_| std::fs::rename(&tmp, &to))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    let moved = done.len();
                    format!(
                        "cannot move {} to {}: {e}{}",
                        from.display(),
                        to.display(),
                        if moved > 0 {
                            format!(" ({moved} moved before it)")
                        } else {
                            String::new()
                        }
                    )
                })?;
            let _ = std::fs::remove_file(&from);
        }
        done.push(Applied { path: to, replaced });
    }
    // Only when empty: anything else the operator put there stays.
    let _ = std::fs::remove_dir(staged);
    Ok(done)
}

/// The zones (`[[zones]] origin`) and the profiles directory of the server
/// configuration at `path`, read leniently (no validation): the defaults of
/// `--zone` and `--out`. `None` when the file does not exist.
pub fn config_defaults(path: &Path) -> Result<Option<(Vec<String>, PathBuf)>, String> {
    let text =
        match crate::fsutil::read_text(path, crate::config::SERVER_FILE_LIMIT, "configuration") {
            Ok(t) => t,
            Err(crate::fsutil::ReadError::NotFound) => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: not valid TOML ({})", path.display(), e.message()))?;
    let zones = doc
        .get("zones")
        .and_then(|z| z.as_array())
        .into_iter()
        .flatten()
        .filter_map(|z| z.get("origin").and_then(|o| o.as_str()))
        .map(|o| o.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let dir = doc
        .get("profiles")
        .and_then(|p| p.get("dir"))
        .and_then(|d| d.as_str())
        .unwrap_or("profiles");
    let base = path.parent().unwrap_or(Path::new(""));
    Ok(Some((zones, base.join(dir))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let f = ProfileFile {
            file_name: "a.toml".into(),
            profile: "a.example.".into(),
            routing: "priority".into(),
            endpoints: 1,
            text: "one".into(),
        };
        write_files(dir.path(), std::slice::from_ref(&f), false, None).unwrap();
        let second = ProfileFile {
            text: "two".into(),
            ..f.clone()
        };
        let err = write_files(dir.path(), std::slice::from_ref(&second), false, None).unwrap_err();
        assert!(err.contains("a.toml exists already"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.toml")).unwrap(),
            "one"
        );
        write_files(dir.path(), std::slice::from_ref(&second), true, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.toml")).unwrap(),
            "two"
        );
        // Staging a file the live directory has: refused without force.
        let staged = dir.path().join("staged");
        let err = write_files(&staged, &[second], false, Some(dir.path())).unwrap_err();
        assert!(err.contains("a.toml exists already"), "{err}");
        assert!(!staged.exists());
    }

    #[test]
    fn apply_moves_staged_files_live() {
        let dir = tempfile::tempdir().unwrap();
        let (live, staged) = (
            dir.path().join("profiles"),
            dir.path().join("profiles.staged"),
        );
        std::fs::create_dir_all(&live).unwrap();
        assert_eq!(apply(&staged, &live).unwrap(), Vec::new());
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(live.join("a.toml"), "old").unwrap();
        std::fs::write(staged.join("a.toml"), "new").unwrap();
        std::fs::write(staged.join("b.toml"), "b").unwrap();
        std::fs::write(staged.join("notes.txt"), "mine").unwrap();
        let done = apply(&staged, &live).unwrap();
        assert_eq!(
            done,
            vec![
                Applied {
                    path: live.join("a.toml"),
                    replaced: true
                },
                Applied {
                    path: live.join("b.toml"),
                    replaced: false
                }
            ]
        );
        assert_eq!(std::fs::read_to_string(live.join("a.toml")).unwrap(), "new");
        // What is not a profile stays staged, and so does the directory.
        assert!(staged.join("notes.txt").exists());
        assert!(staged_files(&staged).unwrap().is_empty());
    }
}
