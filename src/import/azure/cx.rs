//! The mapping's context for one input file: the notices and errors it
//! collects, and reading the input's objects into the [`model`](super::model)
//! shapes, template expressions and unknown keys reported on the way.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::keys::{Fate, fate};
use crate::import::arm::{self, Flat, Template};
use crate::import::{Level, Notice};

/// Mapping one input file: what it reports, and the template its
/// expressions are evaluated against.
pub(super) struct Cx<'a> {
    pub(super) file: &'a str,
    /// Paths whose value was a template expression (already reported).
    pub(super) expressions: Vec<String>,
    pub(super) tpl: &'a Template,
    pub(super) notices: Vec<Notice>,
    pub(super) errors: Vec<String>,
}

impl Cx<'_> {
    pub(super) fn warn(&mut self, at: &str, message: impl Into<String>) {
        self.notices.push(Notice {
            level: Level::Warning,
            at: format!("{}: {at}", self.file),
            message: message.into(),
        });
    }

    pub(super) fn note(&mut self, at: &str, message: impl Into<String>) {
        self.notices.push(Notice {
            level: Level::Note,
            at: format!("{}: {at}", self.file),
            message: message.into(),
        });
    }

    pub(super) fn error(&mut self, at: &str, message: impl std::fmt::Display) {
        self.errors.push(format!("{}: {at}: {message}", self.file));
    }

    /// Replaces template expressions in `flat` (but in `keep`) by null,
    /// reporting each, then reads it as `T`; a type error names its path.
    pub(super) fn read<T: DeserializeOwned>(&mut self, flat: &Flat, keep: &[&str]) -> Option<T> {
        let mut obj = serde_json::Map::new();
        for (k, v) in &flat.fields {
            let mut v = v.clone();
            if !keep.contains(&k.as_str()) {
                self.strip_expressions(&flat.path(k), &mut v);
            }
            obj.insert(k.clone(), v);
        }
        match serde_path_to_error::deserialize::<_, T>(Value::Object(obj)) {
            Ok(t) => Some(t),
            Err(e) => {
                let path = e.path().to_string();
                let at = if path == "." {
                    if flat.at.is_empty() {
                        "(document)".to_string()
                    } else {
                        flat.at.clone()
                    }
                } else {
                    flat.path(&path)
                };
                self.error(&at, e.inner());
                None
            }
        }
    }

    fn strip_expressions(&mut self, at: &str, v: &mut Value) {
        match v {
            Value::String(s) if arm::is_expression(s) => {
                let hint = match arm::eval(s, self.tpl) {
                    Some(d) => format!(" (its default would be `{d}`)"),
                    None => String::new(),
                };
                let msg = format!(
                    "ARM template expression `{s}` not carried over{hint}: write the deployed value instead (`az network traffic-manager profile show` prints it) and import again"
                );
                self.warn(at, msg);
                self.expressions.push(at.to_string());
                *v = Value::Null;
            }
            Value::Array(items) => {
                let mut i = 0;
                items.retain_mut(|item| {
                    let expr = item.as_str().is_some_and(arm::is_expression);
                    let at = format!("{at}[{i}]");
                    i += 1;
                    if expr {
                        let mut item = item.clone();
                        self.strip_expressions(&at, &mut item);
                        false
                    } else {
                        self.strip_expressions(&at, item);
                        true
                    }
                });
            }
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    self.strip_expressions(&arm::join(at, k), v);
                }
            }
            _ => {}
        }
    }

    pub(super) fn unknown(
        &mut self,
        flat: &Flat,
        prefix: &str,
        other: &BTreeMap<String, Value>,
        known: &[(&str, Fate)],
    ) {
        for (k, v) in other {
            if v.is_null() || fate(known, k).is_some() {
                continue;
            }
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            self.warn(
                &flat.path(&key),
                format!(
                    "setting `{k}` = {} is unknown to this importer and not carried over: check whether it matters and configure its equivalent by hand",
                    short(v)
                ),
            );
        }
    }

    pub(super) fn say(&mut self, level: Level, at: &str, message: String) {
        match level {
            Level::Warning => self.warn(at, message),
            Level::Note => self.note(at, message),
        }
    }
}

/// A JSON value as the notices quote it: at most 60 characters.
pub(super) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}
