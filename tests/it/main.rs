//! Integration tests: the real server on ephemeral loopback ports, queried
//! over real UDP and TCP sockets. One binary, a module per feature.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin;
mod architecture;
mod backend;
mod browser;
mod grpc_backend;
mod harness;
mod netns;

mod authority;
mod cert_expiry;
mod check;
mod cli;
mod clients;
mod cluster;
mod cluster_faults;
mod dashboards;
mod diff;
mod dns_probe;
mod dns_rules;
mod dnssec;
mod ecs;
mod explain;
mod fragmentation;
mod fuzz_corpus;
mod geo;
mod geodb;
mod grpc_probe;
mod hardening;
mod import;
mod init;
mod latency;
mod monitors;
mod notify;
mod operator;
mod overrides;
mod page;
mod prober;
mod push;
mod robustness;
mod routing;
mod rrl;
mod rum;
mod shed;
mod shed_by_hand;
mod static_stability;
mod systemd;
mod traffic;
mod unbound;
mod xdp;
