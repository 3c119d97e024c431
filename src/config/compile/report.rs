//! The diagnostics sink every stage reports into, with the texts errors
//! point into (`FILE:LINE:COL`), and the readers of located values (an
//! integer in range, a size, a duration, a secret) that report what is
//! wrong with one and return `None`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::At;
use crate::config::diag::{Diagnostics, Source};
use crate::config::keys::{Key, Kind, dur};
use crate::config::raw::SizeSpec;
use crate::config::secret::{Secret, SecretSource};

/// Where every stage reports: the source texts read so far (an [`At`]
/// indexes them) and the problems found. One per load, so a run of
/// `switchyard check` lists every problem, not the first.
#[derive(Default)]
pub(super) struct Report {
    /// The files read, in order.
    pub(super) sources: Vec<Source>,
    /// Errors and warnings.
    pub(super) diag: Diagnostics,
}

impl Report {
    /// Reads a configuration file of at most `limit` bytes (checked before
    /// reading: a huge file costs nothing).
    pub(super) fn read(&mut self, path: &Path, limit: u64, what: &str) -> Option<usize> {
        match crate::fsutil::read_text(path, limit, what) {
            Ok(text) => {
                self.sources.push(Source {
                    path: path.to_path_buf(),
                    text,
                });
                Some(self.sources.len() - 1)
            }
            Err(crate::fsutil::ReadError::NotFound) => {
                self.diag
                    .file_error(path, "cannot read configuration: no such file");
                None
            }
            Err(e) => {
                self.diag
                    .file_error(path, format!("cannot read configuration: {e}"));
                None
            }
        }
    }

    /// Reports an error at `at`.
    pub(super) fn error(&mut self, at: &At, msg: impl Into<String>) {
        let src = &self.sources[at.src];
        self.diag.error(src, at.span.clone(), &at.field, msg);
    }

    /// Reports an error at `v`, named `field`.
    pub(super) fn err<T>(
        &mut self,
        src: usize,
        v: &Spanned<T>,
        field: &str,
        msg: impl Into<String>,
    ) {
        let at = self.at(src, v, field);
        self.error(&at, msg);
    }

    /// Reports a warning at `v`, named `field`.
    pub(super) fn warn<T>(
        &mut self,
        src: usize,
        v: &Spanned<T>,
        field: &str,
        msg: impl Into<String>,
    ) {
        let source = &self.sources[src];
        self.diag.warn(source, v.span(), field, msg);
    }

    /// Where `v` was written, named `field`.
    pub(super) fn at<T>(&self, src: usize, v: &Spanned<T>, field: &str) -> At {
        At {
            src,
            span: v.span(),
            field: field.to_string(),
        }
    }

    /// Checks an integer against a range, reporting a located error.
    pub(super) fn int<T: TryFrom<i64>>(
        &mut self,
        src: usize,
        v: &Spanned<i64>,
        field: &str,
        lo: i64,
        hi: i64,
    ) -> Option<T> {
        let n = *v.get_ref();
        if n < lo || n > hi {
            self.err(src, v, field, format!("{n} is out of range ({lo}..={hi})"));
            return None;
        }
        T::try_from(n).ok()
    }

    /// An integer key of the key table ([`Key`]), written as `field`,
    /// checked against the key's range.
    pub(super) fn int_key<T: TryFrom<i64>>(
        &mut self,
        src: usize,
        v: &Spanned<i64>,
        field: &str,
        key: &Key,
    ) -> Option<T> {
        let (lo, hi) = key.range();
        self.int(src, v, field, lo, hi)
    }

    /// A size in bytes within `lo..=hi`: an integer, or `"512KiB"`, `"1MiB"`.
    pub(super) fn size(
        &mut self,
        src: usize,
        v: &Spanned<SizeSpec>,
        field: &str,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        let n = match v.get_ref() {
            SizeSpec::Bytes(n) => u64::try_from(*n).ok(),
            SizeSpec::Text(t) => parse_size(t),
        };
        match n {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            Some(n) => {
                self.err(
                    src,
                    v,
                    field,
                    format!(
                        "{n} bytes is out of range ({}..={})",
                        crate::fsutil::human_size(lo),
                        crate::fsutil::human_size(hi)
                    ),
                );
                None
            }
            None => {
                self.err(
                    src,
                    v,
                    field,
                    "not a size: write bytes, or e.g. \"512KiB\", \"4MiB\"",
                );
                None
            }
        }
    }

    /// A duration (`"500ms"`, `"10s"`).
    pub(super) fn duration(
        &mut self,
        src: usize,
        v: &Spanned<String>,
        field: &str,
    ) -> Option<Duration> {
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(
                    src,
                    v,
                    field,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"500ms\", \"10s\", \"1m\"",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A secret (`{ env = ... }`, `{ file = ... }`, or written in the
    /// file, which is warned about).
    pub(super) fn secret(
        &mut self,
        src: usize,
        v: &Spanned<SecretSource>,
        field: &str,
    ) -> Option<Secret> {
        let base = base_dir(&self.sources[src].path);
        if let SecretSource::Literal(_) = v.get_ref() {
            self.warn(
                src,
                v,
                field,
                "secret written in the file; prefer { env = \"NAME\" } or { file = \"path\" }",
            );
        }
        match v.get_ref().resolve(&base) {
            Ok(s) => Some(s),
            Err(e) => {
                self.err(src, v, field, e);
                None
            }
        }
    }

    /// A duration key read against its row of the key table ([`Key`]):
    /// its default when left out, `None` (reported) when not a duration or
    /// out of range. `field` names it in a table of an array
    /// (`notify[0].timeout`), else the key's own name.
    pub(super) fn bounded(
        &mut self,
        src: usize,
        v: Option<&Spanned<String>>,
        field: Option<&str>,
        key: &Key,
    ) -> Option<Duration> {
        let Kind::Duration { default, min, max } = key.kind else {
            unreachable!("{} is not a duration key", key.name)
        };
        let Some(v) = v else { return Some(default) };
        let field = field.unwrap_or(key.name);
        let d = self.duration(src, v, field)?;
        if (min..=max).contains(&d) {
            return Some(d);
        }
        self.err(
            src,
            v,
            field,
            format!("must be between {} and {}", dur(min), dur(max)),
        );
        None
    }
}

/// One section's keys read into a value that starts at its defaults,
/// remembering whether any key was wrong (its error reported): the section
/// stands only if none was. A stage's own outcome, not a count of the
/// diagnostics.
pub(super) struct Section<'r> {
    /// Where problems are reported.
    pub(super) r: &'r mut Report,
    /// The file the section is in.
    pub(super) src: usize,
    ok: bool,
}

impl Report {
    /// Starts reading a section of file `src`.
    pub(super) fn section(&mut self, src: usize) -> Section<'_> {
        Section {
            r: self,
            src,
            ok: true,
        }
    }
}

impl Section<'_> {
    /// `v`, marking the section wrong when it is `None` (reported).
    pub(super) fn take<T>(&mut self, v: Option<T>) -> Option<T> {
        self.ok &= v.is_some();
        v
    }

    /// Marks the section wrong: an error was reported by hand.
    pub(super) fn fail(&mut self) {
        self.ok = false;
    }

    /// An integer key within `lo..=hi` into `slot`, left at its default
    /// when the key is not given.
    pub(super) fn int<T: TryFrom<i64>>(
        &mut self,
        v: &Option<Spanned<i64>>,
        field: &str,
        (lo, hi): (i64, i64),
        slot: &mut T,
    ) {
        if let Some(v) = v {
            let n = self.r.int(self.src, v, field, lo, hi);
            if let Some(n) = self.take(n) {
                *slot = n;
            }
        }
    }

    /// An integer key of the key table into `slot` (which holds the key's
    /// default), checked against the key's range.
    pub(super) fn key<T: TryFrom<i64>>(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &Key,
        slot: &mut T,
    ) {
        let Kind::Int { min, max, .. } = key.kind else {
            unreachable!("{} is not an integer key", key.name)
        };
        self.int(v, key.name, (min, max), slot);
    }

    /// The section's value, if every key was right.
    pub(super) fn done<T>(self, value: T) -> Option<T> {
        self.ok.then_some(value)
    }
}

/// `"1MiB"`, `"512 KiB"`, `"2MB"`, `"100"` (bytes) -> bytes.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The directory of a configuration file: relative paths in it start there.
pub(super) fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
