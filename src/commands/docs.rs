//! `switchyard completions SHELL` and `switchyard man`: the shell
//! completion scripts and the manual page, generated from the clap
//! definitions the binary parses with ([`Cli`]), so they cannot drift from
//! the real options.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    print(&script)
}

/// Prints the manual page, switchyard(1) in roff, on stdout: the options,
/// a SUBCOMMANDS section naming each subcommand's page, the environment
/// variables, the version. With `dir`, writes that page and every
/// subcommand's (switchyard-serve.1, switchyard-dnssec-keygen.1, ...) into
/// `dir` instead, naming each file written.
pub(crate) fn man(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    // As clap_mangen::generate_to: no `help` subcommand page.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        return print(&page);
    };
    let mut written = Vec::new();
    write_pages(cmd, dir, &mut written)?;
    let mut list = String::new();
    for path in written {
        list.push_str(&format!("{}\n", path.display()));
    }
    print(list.as_bytes())
}

/// Writes the page of `cmd` and those of its subcommands into `dir`.
fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = man
        .generate_to(dir)
        .with_context(|| format!("writing a manual page into {}", dir.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    Ok(())
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) ends the command
/// quietly, any other failure (a full disk under `> switchyard.1`) is an
/// error.
fn print(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
