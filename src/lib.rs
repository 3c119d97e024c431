//! Switchyard: a DNS-based global traffic manager.
//!
//! Switchyard is an authoritative DNS server. For each name that has a
//! routing profile it answers with the endpoint(s) the profile's method
//! picks among the healthy ones, so clients follow failovers as soon as
//! their resolver's cache expires.
//!
//! # Architecture
//!
//! Data flows one way:
//!
//! ```text
//! switchyard.toml + profiles/*.toml
//!        │  config::load (parse strictly, validate everything, compile)
//!        ▼
//!   RoutingTable ──────────── swapped whole (ArcSwap) on reload
//!        │ endpoints point at HealthCells ◄── prober writes (one atomic each)
//!        ▼
//!   server::udp / server::tcp ── one snapshot load per query ── dns::answer
//!                          (routing::route picks, pre-encoded records copied)
//! ```
//!
//! Modules, in the order data flows through them:
//!
//! - [`config`]: the TOML schema (`raw`), strict validation with
//!   `FILE:LINE:COL: field: message` errors (`diag`), secrets, and
//!   compilation into a [`routing::RoutingTable`].
//! - [`routing`]: the compiled table, one pure function per method, the
//!   nested-profile walk ([`routing::choose`]), and `explain`, which renders
//!   the [`routing::Decision`] routing recorded.
//! - [`health`]: statuses, the cells the prober publishes into, the prober
//!   (HTTP, HTTPS, TCP probes over hyper) and its TLS settings.
//! - [`secret`]: a value that never prints itself (health keys, tokens).
//! - [`geo`]: GeoIP lookups, country, subdivision and cloud-region tables.
//! - [`proto`]: the bottom layer: names, records encoded at load time,
//!   cookie secrets.
//! - [`dns`]: the answer path: the query reader (`wire`), answering
//!   (`answer`), rate limiting (`rrl`), cookies (`cookie`), and `inspect`
//!   (a synthetic query answered for explain).
//! - [`server`]: the UDP and TCP listeners that feed the answer path.
//! - [`dnssec`]: online signing: zone keys (DNSKEY, DS), RRSIGs made for
//!   the RRsets answers carry, and the lock-free cache that keeps them.
//! - [`net`]: connection slots with per-client limits and eviction, and the
//!   file-descriptor budget.
//! - [`metrics`]: the counters the answer path bumps (plain atomics).
//! - [`admin`]: the admin API, status page and `/metrics` (which encodes
//!   those counters and the health state at scrape time).
//! - [`reload`]: file watches and signals that reload the configuration.
//! - [`notify`]: notification webhooks (`[[notify]]`): events queued
//!   without blocking, coalesced, signed and retried off every other path.
//! - [`cluster`]: gossip between name servers: observations combined by
//!   the quorum rule into the same health cells, overrides shared as
//!   versioned records ([`overrides`]), configuration drift.
//! - [`state`]: what every part of the running server shares (the table
//!   snapshot, overrides, reload history); [`state_file`]: the durable file
//!   that keeps overrides and statuses across restarts; [`fsutil`]: bounded,
//!   non-blocking file reads and durable writes.
//! - [`clock`]: how wall-clock times are written (one helper each).
//! - [`stall`]: the answer gate: a node that stalled waits for its cluster
//!   to re-sync before answering again.
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
pub mod metrics;
pub mod net;
pub mod notify;
pub mod overrides;
pub mod proto;
pub mod reload;
pub mod routing;
pub mod secret;
pub mod server;
pub mod sketch;
pub mod stall;
pub mod state;
pub mod state_file;
