//! The command line: what `switchyard` and each subcommand take.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use switchyard::dnssec::Algorithm;

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
pub(crate) struct Cli {
    /// Server configuration file.
    #[arg(
        long,
        short,
        default_value = "switchyard.toml",
        env = "SWITCHYARD_CONFIG",
        global = true
    )]
    pub(crate) config: PathBuf,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,

    /// The admin API, for status, explain, endpoint and reload [default:
    /// `[admin] listen` of the configuration, else 127.0.0.1:8053] (the
    /// token comes from SWITCHYARD_ADMIN_TOKEN).
    #[arg(long, env = "SWITCHYARD_ADMIN", global = true)]
    pub(crate) admin: Option<std::net::SocketAddr>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Disable, drain, shed, enable or resume an endpoint at runtime (kept
    /// in the state file, and in a cluster on every node).
    #[command(
        after_help = "Examples (the bundled configuration's names):\n  switchyard endpoint disable todoapi.tm.example.test secondary --for 30m --reason \"CHG-1234\"\n  switchyard endpoint drain canary.tm.example.test canary --wait\n  switchyard endpoint drain canary.tm.example.test canary --over 10m --wait\n  switchyard endpoint shed pool.tm.example.test a --percent 30 --for 1h --reason \"hot\"\n  switchyard endpoint resume todoapi.tm.example.test secondary"
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
        /// Disable, drain or shed for this long only (30m, 2h, 1h30m); it
        /// then comes back by itself, on every node, also after a restart.
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
        /// With shed: the share of client networks (by ECS or resolver
        /// /24, /56) moved to the other endpoints, 1 to 100.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
        percent: Option<u16>,
        /// With drain: ramp it out over this long (1s to 7d) instead of at
        /// once: the share of new traffic it sheds rises in steps (one per
        /// 30 s, at least 10, at most 100), the same clients first; at the
        /// end it is drained.
        #[arg(long, value_name = "DURATION")]
        over: Option<String>,
        /// Why, for the status page's history (and who: the admin token's
        /// name when tokens are named).
        #[arg(long)]
        reason: Option<String>,
        /// With drain: wait until the last answer naming it has left
        /// resolver caches (its last answer plus that answer's TTL; with
        /// --over, after the ramp).
        #[arg(long)]
        wait: bool,
    },
    /// Reload the running server's configuration now.
    Reload,
    /// Exit 0 when the running server is healthy (its admin `/healthz`
    /// answers 200: DNS listeners bound, prober running), 1 when not or
    /// when it cannot be reached: a container's HEALTHCHECK, which has no
    /// curl in an image of one static binary.
    Healthcheck,
    /// DNSSEC: make a zone's signing key, print its DS record.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
    /// Write a new configuration: a zone with its name servers and glue, a
    /// first profile with two or more health-checked endpoints, an admin
    /// token file and optionally a DNSSEC key; then print the records to
    /// give the parent zone. Asks for what the flags leave out when run on
    /// a terminal; never overwrites a file.
    #[command(
        after_help = "Example:\n  switchyard init --zone tm.example.com --ns ns1=192.0.2.53 --ns ns2=2001:db8::53 \\\n    --profile api --endpoint eu=192.0.2.10,https://192.0.2.10/health \\\n    --endpoint us=198.51.100.20,https://198.51.100.20/health --dir /etc/switchyard --dnssec"
    )]
    Init(Box<InitArgs>),
    /// Write profiles from another traffic manager's configuration.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or
    /// powershell) on stdout; the README says where each shell reads it.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page switchyard(1) in roff on stdout, e.g.
    /// `switchyard man > switchyard.1`, then `man -l switchyard.1`.
    Man {
        /// Instead, write every page into this directory: switchyard.1 and
        /// one per subcommand (switchyard-serve.1, switchyard-dnssec-ds.1,
        /// ...), the pages switchyard(1)'s SUBCOMMANDS section names.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// What `switchyard init` takes; each value is checked as it would be
/// asked for on a terminal (`commands::init`).
#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// The zone these servers answer for, delegated to them by its parent:
    /// e.g. tm.example.com (the parent being example.com).
    #[arg(long)]
    pub(crate) zone: Option<String>,
    /// A name server of the zone: NAME=ADDRESS for a name inside the zone
    /// (`ns1=192.0.2.53`: the address is the glue the parent publishes;
    /// repeat it for a second address), or a name outside it alone
    /// (`ns1.provider.example.`). A name without dots is inside the zone.
    #[arg(long = "ns", value_name = "NAME[=ADDRESS]")]
    pub(crate) ns: Vec<String>,
    /// The first profile's name, inside the zone: `api` or
    /// `api.tm.example.com.`
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// The profile's routing method [default: priority].
    #[arg(long, value_enum)]
    pub(crate) method: Option<InitMethod>,
    /// An endpoint of the profile (two or more, in priority order):
    /// NAME=TARGET,HEALTH_URL; TARGET is an address or a host name, the
    /// health URL an http:// or https:// URL checked on it (sent to
    /// TARGET, or to the URL's address if it has one, with the URL's host
    /// name as Host and TLS name). The method's
    /// own key follows: `,weight=N` (weighted), `,location=REGION`
    /// (performance: a cloud region or LAT/LON), `,regions=GEO-EU+DE`
    /// (geographic), `,subnets=10.0.0.0/8+fd00::/8` (subnet; none: the
    /// fallback).
    #[arg(long = "endpoint", value_name = "NAME=TARGET,HEALTH_URL[,KEY=VALUE]")]
    pub(crate) endpoints: Vec<String>,
    /// The directory to write into (created when missing):
    /// switchyard.toml, profiles/, admin.token, keys/.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Sign the zone: write a new key (keys/ZONE.key, mode 0600) and print
    /// its DS record for the parent.
    #[arg(long)]
    pub(crate) dnssec: bool,
    /// With --dnssec: ecdsap256sha256 or ed25519.
    #[arg(long, requires = "dnssec", value_parser = Algorithm::parse)]
    pub(crate) algorithm: Option<Algorithm>,
    /// Where the server answers DNS, UDP and TCP (repeat for more)
    /// [default: 0.0.0.0:53 and [::]:53].
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub(crate) listen: Vec<String>,
    /// The admin API's address [default: 127.0.0.1:8053].
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub(crate) admin_listen: Option<String>,
    /// A GeoIP database (MaxMind DB) for performance and geographic
    /// routing, which need one: e.g. the bundled
    /// geoip/geo-whois-asn-country.mmdb.
    #[arg(long, value_name = "FILE")]
    pub(crate) geoip: Option<PathBuf>,
    /// Never ask, even on a terminal: a missing flag is an error.
    #[arg(long)]
    pub(crate) non_interactive: bool,
}

/// A routing method `switchyard init` writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub(crate) enum InitMethod {
    /// The first healthy endpoint, in order.
    Priority,
    /// A share of queries each (`weight=N`).
    Weighted,
    /// The nearest endpoint (`location=REGION`).
    Performance,
    /// By the client's country or region (`regions=...`).
    Geographic,
    /// By the client's network (`subnets=...`).
    Subnet,
    /// Several healthy addresses at once.
    Multivalue,
}

impl InitMethod {
    /// Every method, as prompts list them.
    pub(crate) const ALL: [InitMethod; 6] = [
        InitMethod::Priority,
        InitMethod::Weighted,
        InitMethod::Performance,
        InitMethod::Geographic,
        InitMethod::Subnet,
        InitMethod::Multivalue,
    ];

    /// Its name in `routing = "..."`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            InitMethod::Priority => "priority",
            InitMethod::Weighted => "weighted",
            InitMethod::Performance => "performance",
            InitMethod::Geographic => "geographic",
            InitMethod::Subnet => "subnet",
            InitMethod::Multivalue => "multivalue",
        }
    }

    /// The endpoint key the method reads (`weight=`, ...), if any.
    pub(crate) fn endpoint_key(self) -> Option<&'static str> {
        match self {
            InitMethod::Weighted => Some("weight"),
            InitMethod::Performance => Some("location"),
            InitMethod::Geographic => Some("regions"),
            InitMethod::Subnet => Some("subnets"),
            InitMethod::Priority | InitMethod::Multivalue => None,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum ClusterAction {
    /// Stop listing a dead node (one removed on purpose), on every node:
    /// its dead-node alert stops. Refused while it is alive. A node that
    /// comes back is listed again.
    Forget {
        /// The node's name (`cluster.node`).
        node: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum ImportSource {
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
pub(crate) enum DnssecCommand {
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
pub(crate) enum EndpointAction {
    /// Take it out of every answer.
    Disable,
    /// Take it out of every answer and track when the last cached answer
    /// naming it expires ("drained at").
    Drain,
    /// Move a share of new traffic (--percent) to the other endpoints, by
    /// a stable hash of the client's network: the same clients move, and
    /// come back.
    Shed,
    /// Undo `disable`, `drain` or `shed`.
    Enable,
    /// Put it back: undoes a disable, drain (or its ramp) or shed, and
    /// releases a hold (`failback = "manual"`).
    Resume,
}

impl EndpointAction {
    /// The action's name in the admin API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EndpointAction::Disable => "disable",
            EndpointAction::Drain => "drain",
            EndpointAction::Shed => "shed",
            EndpointAction::Enable => "enable",
            EndpointAction::Resume => "resume",
        }
    }
}
