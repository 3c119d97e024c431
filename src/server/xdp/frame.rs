//! Reading a UDP query out of an Ethernet frame and writing the answer's
//! frame in its place: the checks the kernel's own receive path makes
//! (lengths, IPv4 header checksum, UDP checksum, no fragments, no
//! broadcast or multicast either way), with etherparse's header views and
//! checksums. Pure functions, unit-tested below.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

use etherparse::checksum::Sum16BitWords;
use etherparse::{
    EtherType, Ethernet2Header, Ethernet2HeaderSlice, IpNumber, Ipv4Header, Ipv4HeaderSlice,
    Ipv6FlowLabel, Ipv6Header, Ipv6HeaderSlice, UdpHeader, UdpHeaderSlice,
};

/// The TTL and hop limit of answers: the kernel's defaults
/// (`net.ipv4.ip_default_ttl`, `net.ipv6.conf.*.hop_limit`).
pub const TTL: u8 = 64;

/// Ethernet header length (no VLAN tag: the program passes tagged frames).
const ETH: usize = Ethernet2Header::LEN;

/// A query read from a frame: who sent it, to which of our addresses, and
/// where its DNS message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// Our address and port it was sent to.
    pub local: SocketAddr,
    /// The DNS message's bytes in the frame.
    pub payload: Range<usize>,
    /// The frame's source MAC (the answer's destination).
    mac_src: [u8; 6],
    /// The frame's destination MAC (the answer's source).
    mac_dst: [u8; 6],
}

/// Why a frame is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not Ethernet II carrying IPv4 or IPv6 (a VLAN tag, say).
    NotIp,
    /// A length field that disagrees with the frame.
    Length,
    /// The IPv4 header's checksum is wrong.
    IpChecksum,
    /// Not UDP, a fragment, IPv4 options or IPv6 extension headers.
    NotPlainUdp,
    /// The UDP checksum is wrong (or zero over IPv6).
    UdpChecksum,
    /// From or to an address that is never answered (broadcast,
    /// multicast, unspecified, loopback) or from port 0.
    Address,
}

/// Reads the UDP query in `frame`.
pub fn parse(frame: &[u8]) -> Result<Query, Malformed> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| Malformed::NotIp)?;
    // Sent to a broadcast or multicast MAC (a subnet's broadcast address,
    // say): never answered, like the kernel never answers from them.
    if eth.destination()[0] & 1 != 0 {
        return Err(Malformed::Address);
    }
    let rest = &frame[ETH..];
    let (peer_ip, local_ip, udp_at, udp_len, checksum_ok): (IpAddr, IpAddr, usize, usize, _);
    match eth.ether_type() {
        EtherType::IPV4 => {
            let ip = Ipv4HeaderSlice::from_slice(rest).map_err(|_| Malformed::Length)?;
            if ip.ihl() != 5 || ip.protocol() != IpNumber::UDP {
                return Err(Malformed::NotPlainUdp);
            }
            if ip.more_fragments() || ip.fragments_offset().value() != 0 {
                return Err(Malformed::NotPlainUdp);
            }
            let total = usize::from(ip.total_len());
            if total < Ipv4Header::MIN_LEN + UdpHeader::LEN || total > rest.len() {
                return Err(Malformed::Length);
            }
            // A header with the right checksum sums to all ones.
            if Sum16BitWords::new().add_slice(ip.slice()).ones_complement() != 0 {
                return Err(Malformed::IpChecksum);
            }
            let (src, dst) = (
                Ipv4Addr::from(ip.source()),
                Ipv4Addr::from(ip.destination()),
            );
            if !unicast_v4(src) || !unicast_v4(dst) {
                return Err(Malformed::Address);
            }
            (peer_ip, local_ip) = (src.into(), dst.into());
            udp_at = ETH + Ipv4Header::MIN_LEN;
            udp_len = total - Ipv4Header::MIN_LEN;
            checksum_ok = Checksum::V4(ip.source(), ip.destination());
        }
        EtherType::IPV6 => {
            let ip = Ipv6HeaderSlice::from_slice(rest).map_err(|_| Malformed::Length)?;
            if ip.next_header() != IpNumber::UDP {
                return Err(Malformed::NotPlainUdp);
            }
            let payload = usize::from(ip.payload_length());
            if payload < UdpHeader::LEN || Ipv6Header::LEN + payload > rest.len() {
                return Err(Malformed::Length);
            }
            let (src, dst) = (
                Ipv6Addr::from(ip.source()),
                Ipv6Addr::from(ip.destination()),
            );
            if !unicast_v6(src) || !unicast_v6(dst) {
                return Err(Malformed::Address);
            }
            (peer_ip, local_ip) = (src.into(), dst.into());
            udp_at = ETH + Ipv6Header::LEN;
            udp_len = payload;
            checksum_ok = Checksum::V6(ip.source(), ip.destination());
        }
        _ => return Err(Malformed::NotIp),
    }
    let datagram = &frame[udp_at..udp_at + udp_len];
    let udp = UdpHeaderSlice::from_slice(datagram).map_err(|_| Malformed::Length)?;
    if usize::from(udp.length()) != udp_len {
        return Err(Malformed::Length);
    }
    let payload = &datagram[UdpHeader::LEN..];
    let header = udp.to_header();
    let sum = match checksum_ok {
        // Zero: the sender computed none (allowed over IPv4 only).
        Checksum::V4(..) if header.checksum == 0 => Ok(0),
        Checksum::V4(s, d) => header.calc_checksum_ipv4_raw(s, d, payload),
        Checksum::V6(s, d) => header.calc_checksum_ipv6_raw(s, d, payload),
    };
    if sum.ok() != Some(header.checksum) && header.checksum != partial(&checksum_ok, udp_len) {
        return Err(Malformed::UdpChecksum);
    }
    if udp.source_port() == 0 {
        return Err(Malformed::Address);
    }
    let start = udp_at + UdpHeader::LEN;
    Ok(Query {
        peer: SocketAddr::new(peer_ip, udp.source_port()),
        local: SocketAddr::new(local_ip, udp.destination_port()),
        payload: start..start + payload.len(),
        mac_src: eth.source(),
        mac_dst: eth.destination(),
    })
}

/// The checksum field of a datagram whose sender left the checksum to
/// the hardware (CHECKSUM_PARTIAL): the pseudo-header's sum, not yet
/// complemented. Only a local virtual interface (veth, tap) delivers one
/// unfinished, and the kernel trusts it there too; off a real wire the
/// sender's NIC has finished it, and a damaged datagram fails both checks.
fn partial(addrs: &Checksum, udp_len: usize) -> u16 {
    let mut sum = Sum16BitWords::new();
    sum = match addrs {
        Checksum::V4(s, d) => sum.add_4bytes(*s).add_4bytes(*d),
        Checksum::V6(s, d) => sum.add_16bytes(*s).add_16bytes(*d),
    };
    let sum = sum
        .add_2bytes([0, 17])
        .add_4bytes((udp_len as u32).to_be_bytes());
    // etherparse sums in native byte order.
    u16::from_be_bytes((!sum.ones_complement()).to_ne_bytes())
}

/// The addresses a UDP checksum covers.
enum Checksum {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

fn unicast_v4(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

fn unicast_v6(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_multicast() || a.is_loopback() || a.to_ipv4_mapped().is_some())
}

/// Header bytes in front of an answer to `q`.
pub fn header_len(q: &Query) -> usize {
    ETH + UdpHeader::LEN
        + match q.peer {
            SocketAddr::V4(_) => Ipv4Header::MIN_LEN,
            SocketAddr::V6(_) => Ipv6Header::LEN,
        }
}

/// Writes the frame answering `q` with `dns` into `buf` (from our
/// address and port to the client's, MAC addresses swapped); returns its
/// length, or `None` when it does not fit in `buf`.
pub fn write_answer(q: &Query, dns: &[u8], buf: &mut [u8]) -> Option<usize> {
    let len = header_len(q) + dns.len();
    if len > buf.len() {
        return None;
    }
    let mut w: &mut [u8] = &mut buf[..len];
    let (ether_type, ip_ok) = match (q.local.ip(), q.peer.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut ip = Ipv4Header::new(
                (UdpHeader::LEN + dns.len()) as u16,
                TTL,
                IpNumber::UDP,
                src.octets(),
                dst.octets(),
            )
            .ok()?;
            // Don't Fragment, as the kernel sends the sockets' answers
            // (IP_PMTUDISC_WANT sets it on a datagram within the MTU).
            ip.dont_fragment = true;
            ip.header_checksum = ip.calc_header_checksum();
            let udp =
                UdpHeader::with_ipv4_checksum(q.local.port(), q.peer.port(), &ip, dns).ok()?;
            (EtherType::IPV4, Headers::V4(ip, udp))
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: (UdpHeader::LEN + dns.len()) as u16,
                next_header: IpNumber::UDP,
                hop_limit: TTL,
                source: src.octets(),
                destination: dst.octets(),
            };
            let udp =
                UdpHeader::with_ipv6_checksum(q.local.port(), q.peer.port(), &ip, dns).ok()?;
            (EtherType::IPV6, Headers::V6(ip, udp))
        }
        _ => return None,
    };
    let eth = Ethernet2Header {
        source: q.mac_dst,
        destination: q.mac_src,
        ether_type,
    };
    eth.write(&mut w).ok()?;
    match ip_ok {
        Headers::V4(ip, udp) => {
            ip.write(&mut w).ok()?;
            udp.write(&mut w).ok()?;
        }
        Headers::V6(ip, udp) => {
            ip.write(&mut w).ok()?;
            udp.write(&mut w).ok()?;
        }
    }
    w.copy_from_slice(dns);
    Some(len)
}

/// The IP and UDP headers of an answer.
enum Headers {
    V4(Ipv4Header, UdpHeader),
    V6(Ipv6Header, UdpHeader),
}

#[cfg(test)]
mod tests;
