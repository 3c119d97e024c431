//! The answer path: reading queries, answering them, rate limiting and
//! cookies. The listeners that feed it are in [`crate::server`].
//!
//! With [`crate::proto`], the only modules that name hickory-proto types.
//! hickory encodes every record at load time ([`rr`]); the answer path
//! ([`answer`]) copies those bytes around a question read without
//! allocation ([`wire`]).

pub mod answer;
pub mod cookie;
pub mod inspect;
mod message;
pub mod online_signing;
pub mod rrl;
pub mod wire;

pub use crate::proto::{name, rr};
pub use answer::{Answerer, Summary, Transport};
