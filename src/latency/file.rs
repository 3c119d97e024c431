//! The latency file (`[latency] file`): operators' own measurements, a CSV
//! with the header `network,endpoint,rtt_ms,samples`:
//!
//! ```text
//! network,endpoint,rtt_ms,samples
//! 198.51.100.0/24,www.example.com/eu-west,23.5,412
//! 2001:db8:aa00::/56,www.example.com/us-east,87,398
//! ```
//!
//! `network` is an IPv4 /24 or IPv6 /56; `endpoint` is `PROFILE/ENDPOINT`;
//! `rtt_ms` a round trip in milliseconds (more than 0, at most 60000);
//! `samples` how many measurements it stands for (1 to 1000000). Blank
//! lines and lines starting with `#` are skipped. The rows do not decay:
//! the file is the operator's statement, current until it changes.

use std::path::Path;

use crate::netblock::Network;

/// Largest latency file read.
pub const FILE_LIMIT: u64 = 256 << 20;

/// A bad latency file: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct FileError {
    /// The file.
    pub file: String,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// The column at fault (`network`, `endpoint`, `rtt_ms`, `samples`),
    /// or `file`/`header`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, Copy)]
struct FileRow {
    net: u64,
    ep: u32,
    samples: u32,
    rtt_ms: f32,
}

/// The rows of a latency file, sorted for lookup.
#[derive(Debug, Default)]
pub struct FileTable {
    rows: Vec<FileRow>,
    /// When the file was last modified (Unix seconds): the rows' "newest".
    pub modified: u32,
    /// Endpoint names as written, by id (for the API).
    pub names: Vec<(u32, String)>,
    /// The file it was read from.
    pub path: Option<std::path::PathBuf>,
    /// Its modification time and length when read: an unchanged file is
    /// not read again.
    pub stamp: Option<(std::time::SystemTime, u64)>,
}

/// A file's modification time and length.
pub fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl FileTable {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<FileTable, FileError> {
        let shown = path.display().to_string();
        let whole = |message: String| FileError {
            file: shown.clone(),
            line: 0,
            field: "file",
            message,
        };
        let text = crate::fsutil::read_text(path, FILE_LIMIT, "the latency file limit")
            .map_err(|e| whole(e.to_string()))?;
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(crate::clock::unix_secs)
            .unwrap_or(0);
        let mut t = FileTable::parse(&text, &shown)?;
        t.modified = modified;
        t.path = Some(path.to_path_buf());
        t.stamp = stamp(path);
        Ok(t)
    }

    /// Parses CSV text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<FileTable, FileError> {
        let err = |line: usize, field: &'static str, message: String| FileError {
            file: file.to_string(),
            line,
            field,
            message,
        };
        let mut rows = Vec::new();
        let mut names: Vec<(u32, String)> = Vec::new();
        let mut header = false;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = l.split(',').map(str::trim).collect();
            if !header {
                if cols != ["network", "endpoint", "rtt_ms", "samples"] {
                    return Err(err(
                        line,
                        "header",
                        format!(
                            "expected the header `network,endpoint,rtt_ms,samples`, found `{}`",
                            crate::fsutil::shown(l)
                        ),
                    ));
                }
                header = true;
                continue;
            }
            if cols.len() != 4 {
                return Err(err(
                    line,
                    "row",
                    format!(
                        "expected 4 fields (network,endpoint,rtt_ms,samples), found {}",
                        cols.len()
                    ),
                ));
            }
            let net: Network = cols[0]
                .parse()
                .map_err(|e: crate::netblock::ParseError| err(line, "network", e.to_string()))?;
            let endpoint = cols[1];
            match endpoint.split_once('/') {
                Some((p, e)) if !p.is_empty() && !e.is_empty() => {}
                _ => {
                    return Err(err(
                        line,
                        "endpoint",
                        format!("{} is not PROFILE/ENDPOINT", crate::fsutil::shown(endpoint)),
                    ));
                }
            }
            let rtt_ms: f64 = cols[2]
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0 && *v <= 60_000.0)
                .ok_or_else(|| {
                    err(
                        line,
                        "rtt_ms",
                        format!(
                            "{} is not a round trip in milliseconds (more than 0, at most 60000)",
                            crate::fsutil::shown(cols[2])
                        ),
                    )
                })?;
            let samples: u32 = cols[3]
                .parse()
                .ok()
                .filter(|v| (1..=1_000_000).contains(v))
                .ok_or_else(|| {
                    err(
                        line,
                        "samples",
                        format!(
                            "{} is not a count from 1 to 1000000",
                            crate::fsutil::shown(cols[3])
                        ),
                    )
                })?;
            let ep = super::endpoint_id(endpoint);
            if !names.iter().any(|(id, _)| *id == ep) {
                names.push((ep, endpoint.to_string()));
            }
            rows.push((
                line,
                FileRow {
                    net: net.key(),
                    ep,
                    samples,
                    rtt_ms: rtt_ms as f32,
                },
            ));
        }
        if !header {
            return Err(err(
                0,
                "header",
                "empty: expected the header `network,endpoint,rtt_ms,samples`".into(),
            ));
        }
        rows.sort_by_key(|(_, r)| (r.net, r.ep));
        for w in rows.windows(2) {
            if (w[0].1.net, w[0].1.ep) == (w[1].1.net, w[1].1.ep) {
                let (a, b) = (w[0].0.min(w[1].0), w[0].0.max(w[1].0));
                return Err(err(
                    b,
                    "endpoint",
                    format!("the same network and endpoint as line {a}"),
                ));
            }
        }
        Ok(FileTable {
            rows: rows.into_iter().map(|(_, r)| r).collect(),
            modified: 0,
            names,
            path: None,
            stamp: None,
        })
    }

    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<FileRow>()
    }

    /// Whether any row is about network `net` (a key).
    #[inline]
    pub fn has(&self, net: u64) -> bool {
        let i = self.rows.partition_point(|r| r.net < net);
        self.rows.get(i).is_some_and(|r| r.net == net)
    }

    /// The row of (`net`, `ep`).
    #[inline]
    pub fn get(&self, net: u64, ep: u32) -> Option<super::Estimate> {
        let i = self.rows.partition_point(|r| (r.net, r.ep) < (net, ep));
        let r = self.rows.get(i).filter(|r| r.net == net && r.ep == ep)?;
        Some(super::Estimate {
            rtt_ms: f64::from(r.rtt_ms),
            samples: f64::from(r.samples),
            newest: self.modified,
            from_file: true,
        })
    }

    /// Every row: (network, endpoint id, estimate).
    pub fn for_each(&self, mut f: impl FnMut(Network, u32, super::Estimate)) {
        for r in &self.rows {
            if let Some(e) = self.get(r.net, r.ep) {
                f(super::network_of_key(r.net), r.ep, e);
            }
        }
    }
}
