//! Secrets (health keys, the admin token): where they come from, and a value
//! type that never prints itself.

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::secret::Secret;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// Where a secret is read from, as written in the configuration.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `"literal"`: accepted, with a warning.
    Literal(String),
    /// `{ env = "NAME" }`.
    Env(String),
    /// `{ file = "path" }`, relative to the file that names it.
    File(PathBuf),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal(<redacted>)"),
            SecretSource::Env(name) => write!(f, "Env({name})"),
            SecretSource::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretSource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a string, { env = "NAME" } or { file = "path" }"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretSource, E> {
                Ok(SecretSource::Literal(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
                let mut out = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    if out.is_some() {
                        return Err(de::Error::custom("give exactly one of `env` or `file`"));
                    }
                    out = Some(match key.as_str() {
                        "env" => SecretSource::Env(value),
                        "file" => SecretSource::File(value.into()),
                        other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                    });
                }
                out.ok_or_else(|| de::Error::custom("give one of `env` or `file`"))
            }
        }
        d.deserialize_any(V)
    }
}

impl SecretSource {
    /// Reads the secret. `base` is the directory of the file that names it.
    /// Errors never include the value.
    pub fn resolve(&self, base: &Path) -> Result<Secret, String> {
        let value = match self {
            SecretSource::Literal(v) => v.clone(),
            // A trailing line ending is not part of the secret, from a
            // variable as from a file: Kubernetes sets a variable from a
            // Secret made with `--from-file` byte for byte, newline included.
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) => v.trim_end_matches(['\r', '\n']).to_string(),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!(
                        "environment variable `{name}` is not set; `env` secrets come from the environment of the process loading the configuration (`check`: your shell; a running server: its environment at start, so a variable added later needs a restart); `{{ file = \"...\" }}` avoids both"
                    ));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("environment variable `{name}` is not valid UTF-8"));
                }
            },
            SecretSource::File(path) => {
                let full = base.join(path);
                let text = crate::fsutil::read_text(
                    &full,
                    super::SECRET_FILE_LIMIT,
                    "the limit for secret files",
                )
                .map_err(|e| format!("cannot read secret file {}: {e}", full.display()))?;
                text.trim_end_matches(['\r', '\n']).to_string()
            }
        };
        if value.is_empty() {
            return Err("the secret is empty".into());
        }
        if value.chars().any(char::is_control) {
            return Err("the secret contains control characters".into());
        }
        Ok(Secret::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        k: SecretSource,
    }

    fn parse(s: &str) -> Result<SecretSource, String> {
        toml::from_str::<T>(s)
            .map(|t| t.k)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn three_forms() {
        assert_eq!(
            parse("k = 'abc'").unwrap(),
            SecretSource::Literal("abc".into())
        );
        assert_eq!(
            parse("k = { env = 'X' }").unwrap(),
            SecretSource::Env("X".into())
        );
        assert_eq!(
            parse("k = { file = 'a/b' }").unwrap(),
            SecretSource::File("a/b".into())
        );
        assert!(
            parse("k = { envv = 'X' }")
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(parse("k = { env = 'X', file = 'y' }").is_err());
        assert!(parse("k = {}").is_err());
    }

    #[test]
    fn never_printed() {
        let s = SecretSource::Literal("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let v = s.resolve(Path::new(".")).unwrap();
        assert!(!format!("{v:?} {v}").contains("hunter2"));
        assert_eq!(v.expose(), "hunter2");
    }

    #[test]
    fn env_and_file_errors_name_the_source() {
        let e = SecretSource::Env("SWITCHYARD_TEST_SURELY_UNSET".into())
            .resolve(Path::new("."))
            .unwrap_err();
        assert!(e.contains("SWITCHYARD_TEST_SURELY_UNSET"), "{e}");
        let e = SecretSource::File("nope.key".into())
            .resolve(Path::new("/nonexistent"))
            .unwrap_err();
        assert!(e.contains("/nonexistent/nope.key"), "{e}");
    }

    #[test]
    fn file_secret_drops_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "s3cret\n").unwrap();
        let v = SecretSource::File("k".into()).resolve(dir.path()).unwrap();
        assert_eq!(v.expose(), "s3cret");
    }
}
