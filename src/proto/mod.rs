//! The bottom layer: DNS names, records encoded at load time, and cookie
//! secrets. Configuration, routing and the answer path all build on these;
//! they depend on nothing else in the crate. With `dns`, the only modules
//! that name hickory-proto types.

pub mod cookie;
pub mod name;
pub mod query;
pub mod rr;
