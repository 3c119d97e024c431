//! DNSSEC online signing (issue 12): zone keys, RRSIGs made on demand for
//! the RRsets the answer path builds, and a bounded cache of them.
//!
//! Answers differ per client (health, geography, weights), so they cannot
//! be signed ahead of time as a static zone is; instead each RRset is signed
//! the first time it is answered and the RRSIG is cached until it is due
//! for refresh. The layers:
//!
//! - [`key`]: the key file (TOML, mode 0600), the algorithms (ECDSA P-256,
//!   Ed25519), and the loaded [`ZoneKey`] with its DNSKEY and DS records.
//! - [`rrsig`]: [`sign_rrset`], one RRSIG for one RRset, with hickory-proto
//!   building the canonical signed data and doing the cryptography.
//! - [`cache`]: [`SigCache`], lock-free and allocation-free lookups.
//! - [`signer`]: [`ZoneSigner`], one zone's key, signature validity and
//!   cache, as the answer path holds them.
//! - [`cli`]: what `switchyard dnssec keygen` and `switchyard dnssec ds`
//!   do, as functions that return the lines to print.
//!
//! This module sits below the answer path: it knows names and bytes
//! ([`crate::proto`]), never the routing table or the server.

pub mod budget;
pub mod cache;
pub mod cli;
pub mod key;
pub mod rrsig;
pub mod signer;

pub use cache::SigCache;
pub use key::{Algorithm, KeyFile, ZoneKey};
pub use rrsig::sign_rrset;
pub use signer::ZoneSigner;
