//! Switchyard: a DNS-based global traffic manager.
//!
//! Switchyard is an authoritative DNS server. For each name that has a
//! routing profile it answers with the endpoint(s) the profile's method
//! picks among the healthy ones, so clients follow failovers as soon as
//! their resolver's cache expires.
//!
//! # Architecture
//!
//! Data flows one way, in three flows:
//!
//! ```text
//! files -> compile -> snapshot
//!   switchyard.toml + profiles/*.toml
//!      │ config::load: raw (serde, spans) -> compile (validate, dense ids,
//!      │ records pre-encoded) -> snapshot::Snapshot + probe specs
//!      ▼
//!   Snapshot (immutable) ── reload swaps it whole (ArcSwap)
//!
//! probe -> status -> answer
//!   health::prober ── one HealthCell per target (one atomic; alone, its
//!      │              decision is the status)
//!      │ cluster: every node's observation, gossiped ── health::quorum ──┘
//!      ▼
//!   routing::status: + configuration, runtime override, manual-failback
//!      │ hold, nesting (Snapshot::effective: the same, with why)
//!      ├─► routing (what is answered)
//!      └─► every change: notify::Notifier::status_changed (log + webhooks)
//!
//! query -> answer
//!   server::udp / server::tcp ── one snapshot load per query ── dns::answer
//!      │ routing::choose: the profile's method over the stage's pool
//!      │ (answerable, held, on_all_down), nested profiles followed
//!      ▼
//!   pre-encoded records copied (+ RRSIGs from dns::online_signing with DO)
//!      └─ explain, the answer diff and the guard render the same decision
//!         (routing::Decision), never a copy of it
//! ```
//!
//! Modules, in the order data flows through them:
//!
//! - [`config`]: the TOML schema (`raw`), strict validation with
//!   `FILE:LINE:COL: field: message` errors (`diag`), secrets, and
//!   compilation into a [`snapshot::Snapshot`]; `diff`, the answer diff.
//! - [`snapshot`]: what `config` compiles and every DNS worker reads, one
//!   immutable value per configuration: zones, records, profiles,
//!   endpoints (and their runtime state), signers, cookie secrets. Data
//!   only: what is decided over it is [`routing`]'s.
//! - [`proto`]: the bottom layer: names, records encoded at load time,
//!   cookie secrets; with [`dns`] and [`dnssec`] the only modules that name
//!   hickory-proto.
//! - [`geo`]: GeoIP lookups, country, subdivision and cloud-region tables.
//! - [`health`]: statuses, the cells the prober publishes into, the prober
//!   (HTTP, HTTPS, TCP probes over hyper), the quorum rule.
//! - [`cluster`]: gossip between name servers: observations combined by
//!   the quorum rule into the same health cells, overrides shared as
//!   versioned records ([`overrides`]), configuration drift; [`stall`]: a
//!   node that stalled waits for its cluster to re-sync before answering.
//! - [`routing`]: the decisions over a snapshot: an endpoint's effective
//!   status composed (`status`) and the same with its reason
//!   ([`snapshot::Snapshot::effective`]), one pure function
//!   per method, the nested-profile walk ([`routing::choose`]), the
//!   recorded [`routing::Decision`] and `explain`, which renders it.
//! - [`dns`]: the answer path: the query reader (`wire`), answering
//!   (`answer`), message primitives (`message`), online signing
//!   (`online_signing`), rate limiting (`rrl`), cookies (`cookie`), and
//!   `inspect` (a synthetic query answered for explain).
//! - [`dnssec`]: zone keys (DNSKEY, DS), RRSIGs (`rrsig`), the lock-free
//!   signature cache and the signing budget.
//! - [`server`]: the UDP and TCP listeners that feed the answer path;
//!   [`net`]: connection slots and the file-descriptor budget; [`netblock`]:
//!   client networks (/24, /56), the unit kept about clients; [`latency`]:
//!   the latency table performance routing reads (learned from samples,
//!   shared by the cluster, saved beside the state file); [`metrics`]:
//!   the counters the answer path bumps (plain atomics).
//! - [`traffic`]: the Traffic View: what the answer path answered, queued
//!   without blocking, drained into per-profile panes by country, region,
//!   endpoint and client network (a Space-Saving sketch).
//! - [`notify`]: the one sink of status changes (log and webhooks), events
//!   queued without blocking, coalesced, signed and retried.
//! - [`admin`]: the admin API, status page and `/metrics`.
//! - [`reload`]: file watches and signals that reload the configuration.
//! - [`state`]: what the running server shares: [`state::Serving`], all
//!   the answer path holds (snapshot, GeoIP, rate limiter, counters, the
//!   re-sync gate), inside [`state::Shared`], which adds the control
//!   plane's state (overrides, tokens, history, the cluster view);
//!   [`state_file`]: the durable file that keeps overrides and statuses
//!   across restarts; [`fsutil`]: bounded, non-blocking file reads and
//!   durable writes; [`clock`], [`secret`], [`sketch`]: small leaves.
//! - [`rum`]: real user measurements, the optional public listener
//!   (`[rum]`): the script pages embed, tokens, beacons into the latency
//!   table; [`sightings`]: the lock-free table of token-name lookups the
//!   answer path records (which resolver asked), joined to beacons.
//! - [`app`]: bind, report addresses, serve until shutdown.
//! - [`import`]: other traffic managers' configurations (Azure Traffic
//!   Manager) turned into profile files.
//! - `fuzzing`: entry points for the fuzz targets in `fuzz/` (hidden).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod app;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod dnssec;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod geo;
pub mod health;
pub mod import;
pub mod latency;
pub mod metrics;
pub mod net;
pub mod netblock;
pub mod notify;
pub mod overrides;
pub mod proto;
pub mod reload;
pub mod routing;
pub mod rum;
pub mod secret;
pub mod server;
pub mod sightings;
pub mod sketch;
pub mod snapshot;
pub mod stall;
pub mod state;
pub mod state_file;
pub mod traffic;
