//! The DNS side: wire format, answering, and the UDP and TCP listeners.
//!
//! This is the only module that names hickory-proto types. hickory encodes
//! every record at load time ([`rr`]); the answer path ([`answer`]) copies
//! those bytes around a question read without allocation ([`wire`]).

pub mod answer;
pub mod cookie;
pub mod inspect;
pub mod name;
pub mod rr;
pub mod rrl;
pub mod tcp;
pub mod udp;
pub mod wire;

pub use answer::{Answerer, Summary, Transport};
