//! The `switchyard` command: parse arguments, set up logging and the
//! runtime, run a subcommand, map the outcome to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use switchyard::app::Server;
use switchyard::config;
use switchyard::dnssec::Algorithm;

mod cli;

/// jemalloc, with freed pages purged from a background thread (see
/// `.cargo/config.toml`): glibc's allocator kept nearly all the memory of
/// thousands of closed TCP connections (`tests/it/hardening.rs`,
/// `tcp_connections_are_cheap_and_their_memory_returns`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Switchyard: a DNS-based global traffic manager.
///
/// An authoritative DNS server that answers each profile name with the
/// healthy endpoint(s) its routing method picks.
#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  switchyard check                       validate ./switchyard.toml and profiles/\n  switchyard serve --config /etc/switchyard/switchyard.toml\n  dig @127.0.0.1 -p 5353 todoapi.tm.example.test\n\nRUST_LOG=debug logs every query; health keys and tokens are never logged."
)]
struct Cli {
    /// Server configuration file.
    #[arg(
        long,
        short,
        default_value = "switchyard.toml",
        env = "SWITCHYARD_CONFIG",
        global = true
    )]
    config: PathBuf,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    /// The admin API, for status, explain, endpoint and reload [default:
    /// `[admin] listen` of the configuration, else 127.0.0.1:8053] (the
    /// token comes from SWITCHYARD_ADMIN_TOKEN).
    #[arg(long, env = "SWITCHYARD_ADMIN", global = true)]
    admin: Option<std::net::SocketAddr>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the DNS server (logs to stderr; RUST_LOG=debug logs every query).
    Serve,
    /// Validate the configuration and every profile: problems on stdout, one
    /// per line; exit 1 on any.
    Check {
        /// Then ask the running server what the configuration on disk would
        /// change in its answers, at its current health (a dry-run reload:
        /// nothing is applied); exit 2 when the server cannot be reached.
        #[arg(long)]
        diff: bool,
        /// With --diff: print the dry run's JSON.
        #[arg(long, requires = "diff")]
        json: bool,
        /// With the profiles staged in `profiles.staged/` (what `switchyard
        /// import` writes) on top of the live ones: what `switchyard apply`
        /// would put live.
        #[arg(long)]
        staged: bool,
    },
    /// Put the staged profiles live: check the configuration with them,
    /// then move each file of `profiles.staged/` into the profiles
    /// directory (the file watch, or `switchyard reload`, loads them).
    Apply,
    /// Show every profile and endpoint of the running server.
    Status {
        /// Print the status JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The nodes of the running server's cluster: state, last heard,
    /// configuration digest (drift) and version.
    Cluster {
        /// Print the cluster JSON.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<ClusterAction>,
    },
    /// The answer the running server would give, and why.
    Explain {
        /// The name to ask about.
        name: String,
        /// Query type.
        #[arg(long = "type", short = 't', default_value = "A")]
        qtype: String,
        /// The resolver's address.
        #[arg(long)]
        client: Option<String>,
        /// An EDNS Client Subnet, address/prefix.
        #[arg(long)]
        ecs: Option<String>,
        /// Print the explanation JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable, drain, enable or resume an endpoint at runtime (kept in the
    /// state file, and in a cluster on every node).
    #[command(
        after_help = "Examples (the bundled configuration's names):\n  switchyard endpoint disable todoapi.tm.example.test secondary --for 30m --reason \"CHG-1234\"\n  switchyard endpoint drain canary.tm.example.test canary --wait\n  switchyard endpoint resume todoapi.tm.example.test secondary"
    )]
    Endpoint {
        /// What to do.
        #[arg(value_enum)]
        action: EndpointAction,
        /// The profile's name, e.g. todoapi.tm.example.test
        profile: String,
        /// The endpoint's name within the profile.
        endpoint: String,
        /// Disable or drain it even when it is the profile's last
        /// answerable endpoint (refused otherwise, saying what the profile
        /// would answer instead).
        #[arg(long)]
        force: bool,
        /// Disable or drain for this long only (30m, 2h, 1h30m); it then
        /// comes back by itself, on every node, also after a restart.
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
        /// Why, for the status page's history (and who: the admin token's
        /// name when tokens are named).
        #[arg(long)]
        reason: Option<String>,
        /// With drain: wait until the last answer naming it has left
        /// resolver caches (its last answer plus that answer's TTL).
        #[arg(long)]
        wait: bool,
    },
    /// Reload the running server's configuration now.
    Reload,
    /// DNSSEC: make a zone's signing key, print its DS record.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
    /// Write profiles from another traffic manager's configuration.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Stop listing a dead node (one removed on purpose), on every node:
    /// its dead-node alert stops. Refused while it is alive. A node that
    /// comes back is listed again.
    Forget {
        /// The node's name (`cluster.node`).
        node: String,
    },
}

#[derive(Subcommand)]
enum ImportSource {
    /// Azure Traffic Manager: what `az network traffic-manager profile
    /// show` prints (or a list of profiles, or an exported ARM template),
    /// one profile file each; prints every setting not carried over.
    Azure {
        /// Profile JSON files (`-` reads standard input); give the child
        /// profiles of nested endpoints too.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The zone the profiles go in, as <relativeName>.<ZONE> [default:
        /// the only zone of the configuration (-c)].
        #[arg(long)]
        zone: Option<String>,
        /// Where to write the files [default: the staging directory
        /// beside the profiles directory of the configuration (-c),
        /// `profiles.staged/`: nothing goes live until `switchyard apply`].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace existing files (otherwise nothing is written).
        #[arg(long)]
        force: bool,
        /// Put the profiles live at once: stage them, check the
        /// configuration with them, then apply them (as `switchyard
        /// apply`).
        #[arg(long, conflicts_with = "out")]
        apply: bool,
    },
}

#[derive(Subcommand)]
enum DnssecCommand {
    /// Make a new signing key for a zone (a combined KSK/ZSK, written with
    /// mode 0600) and print its DS and DNSKEY records.
    Keygen {
        /// The zone, e.g. tm.example.test
        #[arg(long)]
        zone: String,
        /// The signing algorithm: ecdsap256sha256 or ed25519.
        #[arg(long, default_value = "ecdsap256sha256", value_parser = Algorithm::parse)]
        algorithm: Algorithm,
        /// Where to write the key [default: keys/ZONE.key beside the
        /// configuration (-c)].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing key file (a published key then stops
        /// validating until the parent's DS is changed).
        #[arg(long)]
        force: bool,
    },
    /// Print the DS record of a zone's key, for the parent zone.
    Ds {
        /// The zone, e.g. tm.example.test
        #[arg(long)]
        zone: String,
        /// A key file; without it, every key the zone publishes in the
        /// configuration (`-c`): its signing key and any `publish` key.
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum EndpointAction {
    /// Take it out of every answer.
    Disable,
    /// Take it out of every answer and track when the last cached answer
    /// naming it expires ("drained at").
    Drain,
    /// Undo `disable` or `drain`.
    Enable,
    /// Put it back: undoes a disable or drain, and releases a hold
    /// (`failback = "manual"`).
    Resume,
}

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
    // The admin commands talk to the server of the configuration they are
    // given (`-c`), not to whatever listens on the default address.
    let admin = || -> anyhow::Result<std::net::SocketAddr> {
        if let Some(a) = cli.admin {
            return Ok(a);
        }
        match switchyard::config::admin_address(&cli.config) {
            Ok(Some(a)) => Ok(a),
            Ok(None) if !config_given => Ok(switchyard::config::DEFAULT_ADMIN_LISTEN),
            Ok(None) => anyhow::bail!(
                "{} does not exist: name the configuration of the running server with -c, or its admin API with --admin",
                cli.config.display()
            ),
            Err(e) => anyhow::bail!("{e} (or give the admin API with --admin)"),
        }
    };
    // How the commands this one suggests name the configuration (quoted
    // for a shell when it needs to be).
    let again = |command: &str| {
        if !config_given {
            return format!("switchyard {command}");
        }
        let path = cli.config.display().to_string();
        let plain = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(&b));
        if plain {
            format!("switchyard {command} -c {path}")
        } else {
            format!("switchyard {command} -c '{}'", path.replace('\'', "'\\''"))
        }
    };
    let result = match cli.command {
        Command::Check {
            diff: false,
            staged,
            ..
        } => check(&cli.config, staged),
        Command::Check {
            diff: true,
            json,
            staged,
        } => match check(&cli.config, staged) {
            Ok(code) if code == ExitCode::SUCCESS => {
                admin().and_then(|a| cli::check_diff(a, json, staged))
            }
            other => other,
        },
        Command::Apply => apply(&cli.config, &again),
        Command::Serve => serve(cli.config),
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
        } => admin().and_then(|a| {
            let action = match action {
                EndpointAction::Disable => "disable",
                EndpointAction::Drain => "drain",
                EndpointAction::Enable => "enable",
                EndpointAction::Resume => "resume",
            };
            cli::endpoint(
                a,
                action,
                &profile,
                &endpoint,
                cli::OverrideOptions {
                    force,
                    for_: for_.as_deref(),
                    reason: reason.as_deref(),
                    wait,
                },
            )
        }),
        Command::Reload => admin().and_then(cli::reload),
        Command::Dnssec { command } => dnssec(command, &cli.config),
        Command::Import {
            source:
                ImportSource::Azure {
                    files,
                    zone,
                    out,
                    force,
                    apply,
                },
        } => import_azure(
            &files,
            ImportOptions {
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

/// Prints a line; a closed pipe ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }};
}

/// The DS records of every key `zone` publishes in the configuration at
/// `path` (its CDS set: the signing key and any `publish` key).
fn configured_ds(zone: &str, path: &std::path::Path) -> Result<Vec<String>, String> {
    let name = switchyard::proto::name::DomainName::parse(zone, None)
        .map_err(|e| format!("`{zone}`: {e}"))?;
    let cfg = config::load(path).map_err(|e| {
        format!(
            "{}: the configuration has problems (run `switchyard check`), or pass --key FILE:\n{e}",
            path.display()
        )
    })?;
    let t = &cfg.table;
    let z = t.zones.iter().find(|z| z.origin == name).ok_or_else(|| {
        format!(
            "{} serves no zone {name} (pass --key FILE for a key of another zone)",
            path.display()
        )
    })?;
    if z.signer.is_none() {
        return Err(format!(
            "zone {name} is not signed in {}: add `dnssec = {{ key = {{ file = \"...\" }} }}` to it, or pass --key FILE",
            path.display()
        ));
    }
    let apex = &t.nodes[z.apex as usize];
    let lines = apex
        .set(switchyard::proto::rr::rtype::CDS)
        .map(|set| {
            set.rrs
                .iter()
                .map(|rr| {
                    let d = rr.rdata();
                    let hex: String = d[4..].iter().map(|b| format!("{b:02X}")).collect();
                    format!(
                        "{} {} IN DS {} {} {} {hex}",
                        z.origin,
                        switchyard::dnssec::cli::DEFAULT_TTL,
                        u16::from_be_bytes([d[0], d[1]]),
                        d[2],
                        d[3]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(lines)
}

fn check(path: &std::path::Path, staged: bool) -> Result<ExitCode> {
    let loaded = if staged {
        config::load_staged(path, &config::Carry::default())
    } else {
        config::load(path)
    };
    match loaded {
        Ok(cfg) => {
            for w in &cfg.warnings {
                out!("warning: {w}");
            }
            let t = &cfg.table;
            // The state file is runtime data, but a damaged one loses the
            // operator's overrides at the next start: report it. A warning,
            // not an error: `serve` starts anyway (and `check` often runs
            // just before it, as in the systemd unit's ExecStartPre).
            if let Some(state) = &cfg.settings.state_file {
                match switchyard::state_file::read(state) {
                    Err(problem) => {
                        out!(
                            "warning: {}: state file cannot be used: {problem}; `switchyard serve` will move it aside and start without its runtime overrides",
                            state.display()
                        );
                    }
                    Ok(overrides) => {
                        let now = switchyard::clock::now_millis();
                        for (key, _) in overrides.iter().filter(|(_, o)| o.in_force(now)) {
                            let (profile, endpoint) = (key.profile(), key.endpoint());
                            if t.endpoint_by_key(key).is_none() {
                                out!(
                                    "warning: {}: disables {profile}/{endpoint}, which the configuration does not have",
                                    state.display()
                                );
                            }
                        }
                    }
                }
            }
            let signed = t.zones.iter().filter(|z| z.signer.is_some()).count();
            let with_staged = if staged {
                let dir = config::staged_dir(&cfg.settings.profiles_dir);
                let n = switchyard::import::staged_files(&dir)
                    .map_err(anyhow::Error::msg)?
                    .len();
                if n == 0 {
                    format!(", and nothing staged in {}", dir.display())
                } else {
                    format!(
                        ", with {n} staged profile file{} from {}",
                        plural(n),
                        dir.display()
                    )
                }
            } else {
                String::new()
            };
            out!(
                "{}: ok ({} zone{}{}, {} profile{}, {} endpoint{}{with_staged})",
                path.display(),
                t.zones.len(),
                plural(t.zones.len()),
                if signed > 0 {
                    format!(" ({signed} signed)")
                } else {
                    String::new()
                },
                t.profiles.len(),
                plural(t.profiles.len()),
                t.endpoints.len(),
                plural(t.endpoints.len()),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                out!("{e}");
            }
            eprintln!("{} problem{} found", errors.0.len(), plural(errors.0.len()));
            Ok(ExitCode::from(1))
        }
    }
}

fn dnssec(command: DnssecCommand, config_path: &std::path::Path) -> Result<ExitCode> {
    use switchyard::dnssec::cli;
    let lines = match command {
        DnssecCommand::Keygen {
            zone,
            algorithm,
            out,
            force,
        } => cli::keygen(&zone, algorithm, out.as_deref(), force, config_path),
        DnssecCommand::Ds {
            zone,
            key: Some(key),
        } => cli::ds(&zone, &key),
        DnssecCommand::Ds { zone, key: None } => configured_ds(&zone, config_path),
    }
    .map_err(anyhow::Error::msg)?;
    for line in lines {
        out!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// How `switchyard import` writes.
struct ImportOptions {
    zone: Option<String>,
    out: Option<PathBuf>,
    force: bool,
    apply: bool,
}

/// `switchyard import azure`: read the inputs, map them (pure), write the
/// files (staged by default, so nothing goes live before `switchyard
/// apply`), print what was not carried over and what to do next.
fn import_azure(
    files: &[PathBuf],
    opts: ImportOptions,
    config_path: &std::path::Path,
    again: &dyn Fn(&str) -> String,
) -> Result<ExitCode> {
    use switchyard::import::{self, azure};
    let defaults = import::config_defaults(config_path).map_err(anyhow::Error::msg)?;
    let zone = match (opts.zone, &defaults) {
        (Some(z), _) => z,
        (None, Some((zones, _))) if zones.len() == 1 => zones[0].clone(),
        (None, Some((zones, _))) => anyhow::bail!(
            "{} has {} zones: name the one for these profiles with --zone",
            config_path.display(),
            zones.len()
        ),
        (None, None) => anyhow::bail!(
            "--zone is required ({} does not exist to take its zone from)",
            config_path.display()
        ),
    };
    let live = defaults
        .as_ref()
        .map_or_else(|| PathBuf::from("profiles"), |(_, d)| d.clone());
    let staged = config::staged_dir(&live);
    if opts.apply {
        let waiting = import::staged_files(&staged).map_err(anyhow::Error::msg)?;
        if !waiting.is_empty() {
            let names: Vec<String> = waiting.iter().map(|p| p.display().to_string()).collect();
            anyhow::bail!(
                "other profiles are staged already ({}): --apply would put them live too; apply them first (`{}`), or remove them, or import without --apply",
                names.join(", "),
                again("apply")
            );
        }
    }
    let mut inputs = Vec::new();
    for f in files {
        let (label, text) = if f.as_os_str() == "-" {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
            ("(stdin)".to_string(), t)
        } else {
            let label = f.display().to_string();
            let t = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read {label}: {e}"))?;
            (label, t)
        };
        let doc = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{label}: not valid JSON: {e}"))?;
        inputs.push(azure::Input { file: label, doc });
    }
    let result = match azure::import(&inputs, &zone) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("nothing written");
            return Ok(ExitCode::from(1));
        }
    };
    let (dir, replaces) = match &opts.out {
        Some(out) => (out.clone(), None),
        None => (staged.clone(), Some(live.as_path())),
    };
    let written = import::write_files(&dir, &result.files, opts.force, replaces)
        .map_err(anyhow::Error::msg)?;
    for n in &result.notices {
        out!("{n}");
    }
    let zone_dot = format!("{}.", zone.trim_end_matches('.').to_ascii_lowercase());
    if let Some((zones, _)) = &defaults
        && !zones.iter().any(|z| format!("{z}.") == zone_dot)
    {
        out!(
            "note: {} serves no zone {zone_dot}: add a [[zones]] table for it, or `switchyard check` rejects these profiles",
            config_path.display()
        );
    }
    let verb = if opts.out.is_some() {
        "wrote"
    } else {
        "staged"
    };
    for (f, path) in result.files.iter().zip(&written) {
        out!(
            "{verb} {}: {} ({}, {} endpoint{})",
            path.display(),
            f.profile,
            f.routing,
            f.endpoints,
            plural(f.endpoints)
        );
    }
    let mut steps = Vec::new();
    if opts.apply {
        // What goes live must pass `check` with them.
        if apply_checked(config_path, &staged, &live)? != ExitCode::SUCCESS {
            eprintln!(
                "not applied: the files stay staged in {}; fix them, then `{}`",
                staged.display(),
                again("apply")
            );
            return Ok(ExitCode::from(1));
        }
    } else if opts.out.is_none() {
        steps.push(format!(
            "nothing is live yet: the files wait in {} (the server does not read it)",
            staged.display()
        ));
        steps.push(format!(
            "check them: `{}`; see what they change in the running server's answers: `{}`",
            again("check --staged"),
            again("check --diff --staged")
        ));
        steps.push(format!(
            "put them live: `{}` (moves them into {}, which the file watch loads)",
            again("apply"),
            live.display()
        ));
    } else {
        steps.push(format!(
            "{} is not read by the server unless it is the profiles directory ([profiles] dir, {}): move the files there when they should answer",
            dir.display(),
            live.display()
        ));
    }
    steps.extend(result.next_steps.iter().cloned());
    out!("next:");
    for step in &steps {
        out!("  - {step}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `switchyard apply`: the staged profiles go live, if the configuration
/// with them passes `check`.
fn apply(config_path: &std::path::Path, again: &dyn Fn(&str) -> String) -> Result<ExitCode> {
    use switchyard::import;
    let live = import::config_defaults(config_path)
        .map_err(anyhow::Error::msg)?
        .map_or_else(|| PathBuf::from("profiles"), |(_, d)| d);
    let staged = config::staged_dir(&live);
    if import::staged_files(&staged)
        .map_err(anyhow::Error::msg)?
        .is_empty()
    {
        anyhow::bail!(
            "nothing is staged in {} (`switchyard import` writes there; so can you)",
            staged.display()
        );
    }
    let code = apply_checked(config_path, &staged, &live)?;
    if code != ExitCode::SUCCESS {
        eprintln!(
            "nothing applied: the files stay staged in {}; fix them, then `{}`",
            staged.display(),
            again("apply")
        );
    }
    Ok(code)
}

/// Checks the configuration at `config_path` with the staged profiles;
/// when it passes, moves them from `staged` into `live` and says how they
/// get loaded. Prints the problems and exits 1 otherwise, moving nothing.
fn apply_checked(
    config_path: &std::path::Path,
    staged: &std::path::Path,
    live: &std::path::Path,
) -> Result<ExitCode> {
    let cfg = match config::load_staged(config_path, &config::Carry::default()) {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors.0 {
                out!("{e}");
            }
            eprintln!("{} problem{} found", errors.0.len(), plural(errors.0.len()));
            return Ok(ExitCode::from(1));
        }
    };
    for w in &cfg.warnings {
        out!("warning: {w}");
    }
    let applied = switchyard::import::apply(staged, live).map_err(anyhow::Error::msg)?;
    for a in &applied {
        out!(
            "applied {}{}",
            a.path.display(),
            if a.replaced {
                " (replaces the live file)"
            } else {
                ""
            }
        );
    }
    if cfg.settings.watch {
        out!(
            "the running server's file watch loads {} within a second (a stopped one at its start)",
            if applied.len() == 1 { "it" } else { "them" }
        );
    } else {
        out!(
            "[profiles] watch = false: `switchyard reload` (or SIGHUP) puts {} live",
            if applied.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn serve(path: PathBuf) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchyard")
        .build()?;
    // Handlers first, then unblock: a signal that arrived since `main`
    // began is delivered to them now, and one that arrives while the
    // configuration loads waits in its stream.
    let signals = runtime.block_on(async { signals::Streams::register() })?;
    signals::unblock();
    let cfg = match config::load(&path) {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "{} problem{} in the configuration; not starting",
                errors.0.len(),
                plural(errors.0.len())
            );
        }
    };
    for w in &cfg.warnings {
        warn!("{w}");
    }
    runtime.block_on(async move {
        let signals::Streams {
            hangup,
            mut terminate,
            mut interrupt,
        } = signals;
        let server = Server::bind(cfg)?.with_hangup(hangup);
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            info!("shutting down");
            signal.cancel();
        });
        server.run(shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Signal handling for `serve`.
mod signals {
    use tokio::signal::unix::{Signal, SignalKind, signal};

    /// The signals `serve` handles: SIGHUP reloads, SIGTERM and SIGINT stop.
    pub struct Streams {
        pub hangup: Signal,
        pub terminate: Signal,
        pub interrupt: Signal,
    }

    impl Streams {
        /// Installs the handlers (inside a runtime).
        pub fn register() -> std::io::Result<Streams> {
            Ok(Streams {
                hangup: signal(SignalKind::hangup())?,
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
    }

    #[cfg(target_os = "linux")]
    fn mask(how: nix::sys::signal::SigmaskHow) {
        use nix::sys::signal::{SigSet, Signal as S, sigprocmask};
        let mut set = SigSet::empty();
        for s in [S::SIGHUP, S::SIGTERM, S::SIGINT] {
            set.add(s);
        }
        let _ = sigprocmask(how, Some(&set), None);
    }

    /// Holds SIGHUP, SIGTERM and SIGINT pending until [`unblock`].
    pub fn block() {
        #[cfg(target_os = "linux")]
        mask(nix::sys::signal::SigmaskHow::SIG_BLOCK);
    }

    /// Delivers them again (pending ones now).
    pub fn unblock() {
        #[cfg(target_os = "linux")]
        mask(nix::sys::signal::SigmaskHow::SIG_UNBLOCK);
    }
}
