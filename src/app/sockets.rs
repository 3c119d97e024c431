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
    // DF on every answer, and no path-MTU state: see `dont_fragment`.
    #[cfg(target_os = "linux")]
    dont_fragment(&s, addr.is_ipv6())?;
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

/// Answers leave unfragmented, with DF set over IPv4, and sized by the
/// link's MTU whatever an ICMP "fragmentation needed" or "packet too big"
/// (which anyone can forge to have answers fragmented) says about the path:
/// `IP_PMTUDISC_PROBE`, as RFC 9715 asks of responders. UDP answers are at
/// most 1,232 bytes, so they fit any link an IPv6 network can use; one that
/// a smaller link refuses goes out truncated (`server::udp`). Over IPv4 the
/// kernel also skips choosing a fragment ID for every datagram, a keyed
/// hash under the default `IP_PMTUDISC_WANT`.
#[cfg(target_os = "linux")]
fn dont_fragment(s: &Socket, v6: bool) -> std::io::Result<()> {
    use rustix::net::sockopt::{
        Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery, set_ip_mtu_discover, set_ipv6_mtu_discover,
    };
    if v6 {
        set_ipv6_mtu_discover(s, Ipv6PathMtuDiscovery::PROBE)?;
    } else {
        set_ip_mtu_discover(s, Ipv4PathMtuDiscovery::PROBE)?;
    }
    Ok(())
}
