//! The DNS sockets: UDP and TCP bound on one address and port.

use std::net::SocketAddr;

use anyhow::Result;
use socket2::{Domain, Protocol, Socket, Type};

/// Attempts to find a port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 32;

/// Binds UDP then TCP on the same address; with port 0, retries until one
/// port is free for both.
pub(super) fn bind_pair(
    addr: SocketAddr,
) -> Result<(std::net::UdpSocket, tokio::net::TcpListener)> {
    let attempts = if addr.port() == 0 { PORT_ATTEMPTS } else { 1 };
    let mut last_err = None;
    for _ in 0..attempts {
        let udp = udp_socket(addr)?;
        let port = udp.local_addr()?.port();
        match tcp_listener(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.map_or_else(|| anyhow::anyhow!("no free port"), Into::into))
}

fn udp_socket(addr: SocketAddr) -> Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Let [::]:53 and 0.0.0.0:53 be configured side by side.
        s.set_only_v6(true)?;
    }
    // Absorb bursts; the kernel caps this at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}
