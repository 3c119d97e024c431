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
//!   dns::udp / dns::tcp ── one snapshot load per query ── dns::answer
//!                          (routing::route picks, pre-encoded records copied)
//! ```
//!
//! - [`config`]: schema, validation with `FILE:LINE:COL: field: message`
//!   errors, and compilation into a [`routing::RoutingTable`].
//! - [`routing`]: the compiled table and one pure function per method.
//! - [`health`]: statuses and the cells the prober publishes into.
//! - [`dns`]: wire format (the only module naming hickory types), answering,
//!   sockets.
//! - [`app`]: bind, report addresses, serve until shutdown.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod app;
pub mod config;
pub mod dns;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod geo;
pub mod health;
pub mod metrics;
pub mod net;
pub mod reload;
pub mod routing;
pub mod state;
pub mod state_file;
