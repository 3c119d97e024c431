//! What the TCP listeners share: connection slots with per-client limits
//! and eviction of the longest-idle connection ([`slots`]), and the file
//! descriptor budget they are sized against ([`fds`]).

pub mod fds;
pub mod slots;
