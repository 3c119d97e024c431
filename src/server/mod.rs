//! The DNS listeners: UDP (batched receive and send) and TCP (connection
//! slots, framing, pipelining). They read the serving state and hand each
//! query to the answer path in [`crate::dns`]; nothing below them knows
//! about sockets or the running server.

pub mod respond;
pub mod tcp;
pub mod udp;
#[cfg(target_os = "linux")]
pub mod xdp;
