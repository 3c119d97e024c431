//! UDP answers are never fragmented (RFC 9715): over IPv4 they carry DF
//! (and so no fragment ID), and one too big for the server's link goes out
//! truncated, so the client retries over TCP. Root only: a network
//! namespace and a veth pair whose MTU is below what the client allows.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::*;
use crate::netns::{Veth, skip};

/// The link's MTU: a 1,232-byte answer does not fit, a short one does.
const MTU: u32 = 1100;

#[test]
fn an_answer_too_big_for_the_link_is_truncated_and_none_is_fragmented() {
    if skip("fragmentation::an_answer_too_big_for_the_link_is_truncated_and_none_is_fragmented") {
        return;
    }
    too_big_for_the_link(false);
}

#[test]
fn over_xdp_an_answer_too_big_for_the_link_is_truncated_as_well() {
    if skip("fragmentation::over_xdp_an_answer_too_big_for_the_link_is_truncated_as_well") {
        return;
    }
    too_big_for_the_link(true);
}

fn too_big_for_the_link(xdp: bool) {
    let veth = Veth::new();
    veth.set_mtu(MTU);
    let v4 = veth.server_v4();
    // IPv4 only: a link below 1,280 bytes carries no IPv6.
    let xdp_table = if xdp {
        format!(
            "[dns.xdp]\ninterfaces = [\"{}\"]\nlisten = [\"{v4}:53\"]\n",
            veth.inner
        )
    } else {
        String::new()
    };
    let config =
        format!("[dns]\nlisten = [\"{v4}:53\"]\n{xdp_table}[admin]\nlisten = \"{v4}:0\"\n");
    let fx = Fixture::with_zone(
        &config,
        &zone_with_records(&big_txt_records()),
        &[("todoapi.toml", &ProfileToml::todoapi().build())],
    );
    let capture = Capture::open(&veth.outer);
    let server = TestServer::start_in(fx, veth);
    let path = server.shared.udp_path.get();
    assert_eq!(
        matches!(path, Some(switchyard::state::UdpPath::Xdp(_))),
        xdp,
        "the UDP path"
    );
    let dns = SocketAddr::new(IpAddr::V4(v4), 53);

    // The whole answer is larger than the link: over UDP it comes back
    // truncated (question and OPT kept), and whole over TCP.
    let whole = tcp(dns, "big.tm.example.test.", RecordType::TXT);
    assert_eq!(whole.answers.len(), 20);
    assert!(whole.to_vec().unwrap().len() + 28 > MTU as usize);
    let q = build("big.tm.example.test.", RecordType::TXT, Opts::default());
    let reply = udp_raw(dns, &q.to_vec().unwrap(), TIMEOUT)
        .expect("no UDP answer: the answer too big for the link was lost");
    let m = Message::from_vec(&reply).unwrap();
    assert!(
        m.metadata.truncation,
        "not truncated: {} answers",
        m.answers.len()
    );
    assert_eq!(m.metadata.id, q.metadata.id);
    assert!(m.answers.is_empty());
    assert_eq!(m.queries, q.queries);
    assert!(m.edns.is_some(), "the OPT record was dropped");

    // Every answer that left over IPv4 had DF set and fragment ID 0.
    let short = udp(dns, "todoapi.tm.example.test.", RecordType::A);
    assert_eq!(addrs(&short), ["203.0.113.10"]);
    let seen = capture.udp_from_port(53, 2, Duration::from_secs(5));
    assert_eq!(seen.len(), 2, "answers seen on the link: {seen:?}");
    for (flags_fragment, id) in seen {
        assert_eq!(flags_fragment, 0x4000, "DF and no fragment (ID {id})");
        assert_eq!(id, 0);
    }
}

/// Frames seen on an interface (an AF_PACKET socket on it).
struct Capture(socket2::Socket);

impl Capture {
    /// Opens the socket on `dev`, here. A packet socket sees every
    /// interface: a filter keeps only `dev`'s frames, so the other tests'
    /// loopback traffic cannot fill its buffer before the answers come.
    fn open(dev: &str) -> Capture {
        use socket2::SockFilter;
        const ETH_P_IP: u16 = 0x0800;
        // Classic BPF: load the frame's interface index (SKF_AD_OFF +
        // SKF_AD_IFINDEX), keep the frame if it is `dev`'s.
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        const IFINDEX: u32 = 0xFFFF_F000 + 8;
        let ifindex = nix::net::if_::if_nametoindex(dev).unwrap();
        let s = socket2::Socket::new(
            socket2::Domain::PACKET,
            socket2::Type::RAW,
            Some(socket2::Protocol::from(i32::from(ETH_P_IP.to_be()))),
        )
        .unwrap();
        s.attach_filter(&[
            SockFilter::new(LD_W_ABS, 0, 0, IFINDEX),
            SockFilter::new(JEQ_K, 0, 1, ifindex),
            SockFilter::new(RET_K, 0, 0, 0xFFFF),
            SockFilter::new(RET_K, 0, 0, 0),
        ])
        .unwrap();
        Capture(s)
    }

    /// The (flags and fragment offset, ID) of up to `n` IPv4 UDP packets
    /// from `port` (the answers leaving the server), waiting at most
    /// `within`.
    fn udp_from_port(&self, port: u16, n: usize, within: Duration) -> Vec<(u16, u16)> {
        use std::io::Read;
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.0.set_read_timeout(Some(left)).unwrap();
            let Ok(len) = (&self.0).read(&mut buf) else {
                break;
            };
            // Ethernet (14), IPv4 header (IHL words), UDP source port.
            let ip = buf.get(14..len).unwrap_or_default();
            if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
                continue;
            }
            let udp = &ip[usize::from(ip[0] & 15) * 4..];
            if udp.len() >= 2 && u16::from_be_bytes([udp[0], udp[1]]) == port {
                let word = |i: usize| u16::from_be_bytes([ip[i], ip[i + 1]]);
                out.push((word(6), word(4)));
            }
        }
        out
    }
}
