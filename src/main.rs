//! The `switchyard` command: parse arguments, set up logging and the
//! runtime, run a subcommand, map the outcome to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use commands::args::{Cli, ClusterAction, Command, ImportSource, LogFormat};
use commands::serve::signals;
use commands::{check, dnssec, docs, import, init, serve};

mod cli;
mod commands;

/// jemalloc, with freed pages purged from a background thread (see
/// `.cargo/config.toml`): glibc's allocator kept nearly all the memory of
/// thousands of closed TCP connections (`tests/it/hardening.rs`,
/// `tcp_connections_are_cheap_and_their_memory_returns`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Before anything else: a SIGHUP, SIGTERM or SIGINT that arrives while
    // the server starts is held (blocked) until its handler is in place,
    // instead of killing the process, which systemd would take for a clean
    // exit. Commands other than `serve` take the default actions back.
    signals::block();
    let matches = Cli::command().get_matches();
    let config_given = !matches!(
        matches.value_source("config"),
        Some(clap::parser::ValueSource::DefaultValue) | None
    );
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if !matches!(cli.command, Command::Serve) {
        signals::unblock();
    } else {
        // Also when built without the repository's .cargo/config.toml.
        #[cfg(not(target_env = "msvc"))]
        let _ = tikv_jemalloc_ctl::background_thread::write(true);
    }
    init_logging(cli.log_format);
    let admin = || commands::admin_address(cli.admin, &cli.config, config_given);
    let again = |command: &str| commands::again(&cli.config, config_given, command);
    let result = match cli.command {
        Command::Check {
            diff: false,
            staged,
            ..
        } => check::run(&cli.config, staged),
        Command::Check {
            diff: true,
            json,
            staged,
        } => match check::run(&cli.config, staged) {
            Ok(code) if code == ExitCode::SUCCESS => {
                admin().and_then(|a| cli::check_diff(a, json, staged))
            }
            other => other,
        },
        Command::Apply => import::apply(&cli.config, &again),
        Command::Serve => serve::run(cli.config),
        Command::Status { json } => admin().and_then(|a| cli::status(a, json)),
        Command::Cluster { json, action: None } => admin().and_then(|a| cli::cluster(a, json)),
        Command::Cluster {
            action: Some(ClusterAction::Forget { node }),
            ..
        } => admin().and_then(|a| cli::forget_node(a, &node)),
        Command::Explain {
            name,
            qtype,
            client,
            ecs,
            json,
        } => admin()
            .and_then(|a| cli::explain(a, &name, &qtype, client.as_deref(), ecs.as_deref(), json)),
        Command::Endpoint {
            action,
            profile,
            endpoint,
            force,
            for_,
            reason,
            wait,
            percent,
            over,
        } => admin().and_then(|a| {
            cli::endpoint(
                a,
                action.as_str(),
                &profile,
                &endpoint,
                cli::OverrideOptions {
                    force,
                    for_: for_.as_deref(),
                    reason: reason.as_deref(),
                    wait,
                    percent,
                    over: over.as_deref(),
                },
            )
        }),
        Command::Reload => admin().and_then(cli::reload),
        Command::Healthcheck => admin().and_then(cli::healthcheck),
        Command::Dnssec { command } => dnssec::run(command, &cli.config),
        Command::Init(args) => init::run(*args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
        Command::Import {
            source:
                ImportSource::Azure {
                    files,
                    zone,
                    out,
                    force,
                    apply,
                },
        } => import::import_azure(
            &files,
            import::ImportOptions {
                zone,
                out,
                force,
                apply,
            },
            &cli.config,
            &again,
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The HTTP and TLS stacks may log request details at debug and trace;
    // probe paths carry health keys, so their internals never go below
    // info, whatever RUST_LOG says.
    let cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("hyper", LevelFilter::INFO)
        .with_target("hyper_util", LevelFilter::INFO)
        .with_target("rustls", LevelFilter::INFO)
        .with_target("h2", LevelFilter::INFO);
    let filter = filter.and(cap);
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_filter(filter),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .init(),
    }
}
