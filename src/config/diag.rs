//! Diagnostics: every configuration problem located as
//! `FILE:LINE:COL: field.path: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as the operator would open it.
    pub file: PathBuf,
    /// 1-based line (0 when the whole file is meant).
    pub line: usize,
    /// 1-based column in characters.
    pub col: usize,
    /// Dotted field path, e.g. `endpoints[1].priority` (empty for the whole file).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one load; the load applies nothing when non-empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A configuration file's text, kept to turn byte spans into line:column.
#[derive(Debug)]
pub struct Source {
    /// Path for messages.
    pub path: PathBuf,
    /// The text.
    pub text: String,
}

impl Source {
    /// Converts a byte offset into a 1-based (line, column).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Collects errors and warnings while a configuration is checked.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// Problems that reject the load.
    pub errors: Vec<ConfigError>,
    /// Problems that are reported but accepted.
    pub warnings: Vec<ConfigError>,
}

impl Diagnostics {
    fn make(src: &Source, span: Option<Range<usize>>, field: &str, msg: String) -> ConfigError {
        let (line, col) = span.map_or((0, 0), |s| src.line_col(s.start));
        ConfigError {
            file: src.path.clone(),
            line,
            col,
            field: field.to_string(),
            message: crate::fsutil::shorten_quoted(&msg),
        }
    }

    /// Records an error at `span` of `src`.
    pub fn error(&mut self, src: &Source, span: Range<usize>, field: &str, msg: impl Into<String>) {
        self.errors
            .push(Self::make(src, Some(span), field, msg.into()));
    }

    /// Records a warning at `span` of `src`.
    pub fn warn(&mut self, src: &Source, span: Range<usize>, field: &str, msg: impl Into<String>) {
        self.warnings
            .push(Self::make(src, Some(span), field, msg.into()));
    }

    /// Records an error about a whole file (unreadable, missing).
    pub fn file_error(&mut self, path: &Path, msg: impl Into<String>) {
        self.errors.push(ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            field: String::new(),
            message: crate::fsutil::shorten_quoted(&msg.into()),
        });
    }

    /// Records a warning about a whole file or directory.
    pub fn file_warning(&mut self, path: &Path, msg: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            field: String::new(),
            message: crate::fsutil::shorten_quoted(&msg.into()),
        });
    }

    /// True when nothing rejected the load so far.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Deserializes `src` strictly, turning a serde error into a located
/// diagnostic with its field path.
pub fn parse<T: serde::de::DeserializeOwned>(src: &Source, diag: &mut Diagnostics) -> Option<T> {
    let de = match toml::Deserializer::parse(&src.text) {
        Ok(de) => de,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            diag.error(src, span, "", e.message().trim().to_string());
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Some(v),
        Err(e) => {
            let field = clean_path(&e.path().to_string());
            let span = e.inner().span().unwrap_or(0..0);
            let msg = e
                .inner()
                .message()
                .trim()
                .replace("expected i64", "expected an integer");
            let msg = hint_for(&field, &msg).unwrap_or(msg);
            diag.error(src, span, &field, msg);
            None
        }
    }
}

/// Drops the segments serde_spanned adds to paths.
fn clean_path(path: &str) -> String {
    let cleaned: Vec<&str> = path
        .split('.')
        .filter(|seg| !seg.starts_with("$__serde_spanned") && !seg.is_empty())
        .collect();
    let joined = cleaned.join(".");
    if joined == "?" { String::new() } else { joined }
}

/// Keys whose values are durations written as strings (`"2s"`).
const DURATION_KEYS: &[&str] = &["interval", "timeout", "tcp_idle_timeout"];

/// Adds guidance to a few serde messages users hit in practice.
fn hint_for(field: &str, msg: &str) -> Option<String> {
    if msg.starts_with("unknown field `state_file`") {
        return Some(format!(
            "{msg}; `state_file` is a top-level key: write it before the first [table]"
        ));
    }
    // A profile key written after a [[monitors]] table belongs to it.
    if field.starts_with("monitors[")
        && let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((word, _)) = rest.split_once('`')
        && [
            "health",
            "routing",
            "ttl",
            "quorum",
            "failback",
            "on_all_down",
        ]
        .contains(&word)
    {
        return Some(format!(
            "unknown field `{word}` in this [[monitors]] table: `{word}` is a profile key, so write it above the first [[monitors]] (a key belongs to the last [table] above it)"
        ));
    }
    // "unknown field `prority`, expected one of `name`, `priority`, ...":
    // name the closest key first.
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((word, list)) = rest.split_once('`')
    {
        let keys: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
        let close = crate::geo::suggest(word, keys.iter().copied(), 0.8);
        if let Some(best) = close.first() {
            let expected = list.trim_start_matches(", ");
            return Some(format!(
                "unknown field `{word}`: did you mean `{best}`? ({expected})"
            ));
        }
    }
    let key = field.rsplit('.').next().unwrap_or(field);
    if DURATION_KEYS.contains(&key)
        && let Some(rest) = msg.strip_prefix("invalid type: integer `")
        && let Some((n, _)) = rest.split_once('`')
        && let Ok(n) = n.parse::<u64>()
    {
        let ms = n.saturating_mul(1000);
        return Some(format!(
            "a duration is a string with its unit: write `{key} = \"{n}s\"` (or \"{ms}ms\", \"{n}m\")"
        ));
    }
    if field.is_empty() && msg.starts_with("missing field") {
        return Some(format!("{msg} (required at the top of the file)"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_misspelled_keys_and_bare_durations() {
        let m = hint_for(
            "endpoints[0].prority",
            "unknown field `prority`, expected one of `name`, `target`, `priority`, `weight`",
        )
        .unwrap();
        assert_eq!(
            m,
            "unknown field `prority`: did you mean `priority`? (expected one of `name`, `target`, `priority`, `weight`)"
        );
        // Nothing close: serde's message as it is.
        assert!(
            hint_for(
                "x.zzz",
                "unknown field `zzz`, expected one of `name`, `target`"
            )
            .is_none()
        );
        let m = hint_for(
            "monitor.interval",
            "invalid type: integer `1`, expected a string",
        )
        .unwrap();
        assert!(m.contains("`interval = \"1s\"`"), "{m}");
        assert!(hint_for("ttl", "invalid type: integer `1`, expected a string").is_none());
    }

    #[test]
    fn line_and_column_are_one_based_characters() {
        let src = Source {
            path: "x.toml".into(),
            text: "a = 1\nbé = 2\n".into(),
        };
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(src.line_col(6 + 6), (2, 6));
    }

    #[test]
    fn display_format() {
        let e = ConfigError {
            file: "profiles/a.toml".into(),
            line: 3,
            col: 7,
            field: "endpoints[0].priority".into(),
            message: "bad".into(),
        };
        assert_eq!(
            e.to_string(),
            "profiles/a.toml:3:7: endpoints[0].priority: bad"
        );
    }

    #[test]
    fn spanned_segments_are_hidden() {
        assert_eq!(
            clean_path("endpoints[1].$__serde_spanned_private_value.prio"),
            "endpoints[1].prio"
        );
    }
}
