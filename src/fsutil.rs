//! Reading files that someone else may have put there: only regular files,
//! opened without blocking (a FIFO or device at the path cannot stall the
//! reader), and never more than a size limit (checked before reading, so a
//! huge file costs nothing).

use std::io::Read;
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// There is nothing at the path.
    NotFound,
    /// Something is there but cannot be used; the text says what.
    Unusable(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("no such file"),
            ReadError::Unusable(why) => f.write_str(why),
        }
    }
}

/// Human size: `1 MiB`, `64 KiB`, `300 bytes`.
pub fn human_size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Reads the regular file at `path` as UTF-8 text, if it is at most `limit`
/// bytes; `what` names the limit in the error (e.g. `profiles.max_file_size`).
pub fn read_text(path: &Path, limit: u64, what: &str) -> Result<String, ReadError> {
    let bytes = read_bytes(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| {
        ReadError::Unusable(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads the regular file at `path` if it is at most `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let unusable = |s: String| ReadError::Unusable(s);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::NotFound),
        Err(e) => return Err(unusable(format!("cannot read it: {e}"))),
    };
    if meta.is_dir() {
        return Err(unusable("it is a directory, not a file".into()));
    }
    if !meta.is_file() {
        return Err(unusable(
            "it is not a regular file (a FIFO, socket or device?)".into(),
        ));
    }
    let too_big = |len: u64| {
        unusable(format!(
            "the file is {len} bytes, larger than the {} limit ({what}); nothing in it was read",
            human_size(limit)
        ))
    };
    if meta.len() > limit {
        return Err(too_big(meta.len()));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    // A file swapped for a FIFO after the check above still cannot block.
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut opts, 0o4000); // O_NONBLOCK
    let file = opts
        .open(path)
        .map_err(|e| unusable(format!("cannot read it: {e}")))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(unusable("it is not a regular file".into()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unusable(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > limit {
        // It grew while being read.
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` durably: a temporary file beside it
/// (`<name>.tmp`), fsync, rename over `path`, fsync of the directory. A
/// crash leaves the old file or the new one, never a mix. One writer per
/// path at a time (they share the temporary file).
pub fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A value for a message: short ones whole, long ones as a prefix and their
/// length, so no message echoes a huge value.
pub fn shown(value: &str) -> String {
    const MAX: usize = 80;
    if value.len() <= MAX {
        return value.to_string();
    }
    let mut end = 60;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len())
}

/// Longest command a message suggests (`` `switchyard ...` ``) that
/// [`shorten_quoted`] keeps whole.
const COMMAND_MAX: usize = 1024;

/// Shortens every quoted stretch (between backticks or double quotes)
/// longer than [`shown`] allows, for messages that embed values written by
/// someone else (parser errors quote the offending value whole). A command
/// the message suggests, in backticks and starting with `switchyard `, is
/// kept whole up to 1024 bytes: cut, it is useless.
pub fn shorten_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(1024));
    let mut rest = msg;
    while let Some(open) = rest.find(['`', '"']) {
        let q = rest.as_bytes()[open] as char;
        let after = &rest[open + 1..];
        let Some(close) = after.find(q) else {
            break;
        };
        out.push_str(&rest[..=open]);
        let quoted = &after[..close];
        if q == '`' && quoted.starts_with("switchyard ") && quoted.len() <= COMMAND_MAX {
            out.push_str(quoted);
        } else {
            out.push_str(&shown(quoted));
        }
        out.push(q);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if out.len() > 2048 {
        let mut end = 2000;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("… (message cut)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(shown("short"), "short");
        let long = "x".repeat(100_000);
        let s = shown(&long);
        assert!(
            s.starts_with("xxxx") && s.ends_with("… (100000 bytes)"),
            "{s}"
        );
        let msg = format!("invalid type: string \"{long}\", expected an integer");
        let m = shorten_quoted(&msg);
        assert!(m.len() < 150 && m.contains("(100000 bytes)"), "{m}");
        assert_eq!(shorten_quoted("`a` and \"b\""), "`a` and \"b\"");
        assert_eq!(shorten_quoted("unbalanced `quote"), "unbalanced `quote");
        assert!(shorten_quoted(&"y".repeat(5000)).ends_with("(message cut)"));
        // A suggested command stays whole; a value does not.
        let path = format!("/{}/k.key", "d".repeat(90));
        let cmd = format!("switchyard dnssec keygen --zone z. --out {path}");
        let m = shorten_quoted(&format!("`{path}` is missing: run `{cmd}`"));
        assert!(m.ends_with(&format!("run `{cmd}`")), "{m}");
        assert!(
            m.starts_with("`/ddd") && m.contains("bytes)` is missing"),
            "{m}"
        );
        let huge = format!("switchyard {}", "x".repeat(COMMAND_MAX));
        assert!(shorten_quoted(&format!("`{huge}`")).contains("bytes)"));
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_text(&p, 5, "x").unwrap(), "hello");
        let e = read_text(&p, 4, "the limit").unwrap_err().to_string();
        assert!(
            e.contains("larger than the 4 bytes limit (the limit)"),
            "{e}"
        );
        assert_eq!(
            read_text(&dir.path().join("nope"), 9, "x"),
            Err(ReadError::NotFound)
        );
        assert!(
            read_text(dir.path(), 9, "x")
                .unwrap_err()
                .to_string()
                .contains("directory")
        );
    }
}
