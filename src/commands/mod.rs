//! The subcommands `switchyard` runs itself: what it parses
//! ([`args`]), and `check`, `apply` and `import`, `dnssec`, `init`, `serve`, the
//! shell completions and the manual page ([`docs`]). (The admin commands,
//! thin clients of the running server's API, are in `cli`.)

use std::net::SocketAddr;
use std::path::Path;

/// Prints a line; a closed pipe ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }};
}

pub(crate) mod args;
pub(crate) mod check;
pub(crate) mod dnssec;
pub(crate) mod docs;
pub(crate) mod import;
pub(crate) mod init;
pub(crate) mod serve;

/// The admin API the admin commands talk to: `--admin`, else that of the
/// server of the configuration they are given (`-c`), not whatever
/// listens on the default address.
pub(crate) fn admin_address(
    admin: Option<SocketAddr>,
    config: &Path,
    config_given: bool,
) -> anyhow::Result<SocketAddr> {
    if let Some(a) = admin {
        return Ok(a);
    }
    match switchyard::config::admin_address(config) {
        Ok(Some(a)) => Ok(a),
        Ok(None) if !config_given => Ok(switchyard::config::DEFAULT_ADMIN_LISTEN),
        Ok(None) => anyhow::bail!(
            "{} does not exist: name the configuration of the running server with -c, or its admin API with --admin",
            config.display()
        ),
        Err(e) => anyhow::bail!("{e} (or give the admin API with --admin)"),
    }
}

/// How the commands this one suggests name the configuration (quoted for
/// a shell when it needs to be): `switchyard COMMAND [-c PATH]`.
pub(crate) fn again(config: &Path, config_given: bool, command: &str) -> String {
    if !config_given {
        return format!("switchyard {command}");
    }
    let path = config.display().to_string();
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(&b));
    if plain {
        format!("switchyard {command} -c {path}")
    } else {
        format!("switchyard {command} -c '{}'", path.replace('\'', "'\\''"))
    }
}

/// `s` unless `n` is 1.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
