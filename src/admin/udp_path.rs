//! Which path answers UDP queries (sockets, or the XDP path and its
//! interfaces), for the status document and `/metrics`: rendered from
//! what the listeners started with ([`crate::state::UdpPath`]).

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use serde::Serialize;

use crate::state::{Shared, UdpPath, XDP_ACTIONS};

/// `dns` in the status document.
#[derive(Serialize, Debug, Clone)]
pub struct UdpPathDoc {
    /// `sockets`, `xdp`, or `fallback` (XDP configured but not running:
    /// sockets answer).
    pub udp_path: &'static str,
    /// Why XDP did not start (`fallback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_error: Option<String>,
    /// The interfaces the XDP path serves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xdp_interfaces: Vec<InterfaceDoc>,
    /// The addresses answered through XDP (UDP); DNS over TCP and the
    /// rest are answered by the sockets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xdp_listen: Vec<String>,
    /// Frames so far by action (`pass`, `redirect`, `answer`, `drop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_packets: Option<std::collections::BTreeMap<&'static str, u64>>,
}

/// An interface of the XDP path.
#[derive(Serialize, Debug, Clone)]
pub struct InterfaceDoc {
    /// Its name.
    pub name: String,
    /// `native` (in the driver) or `generic`.
    pub mode: &'static str,
    /// The queues with a socket.
    pub queues: Vec<u32>,
}

impl UdpPathDoc {
    /// The document for `shared`'s path (sockets until the listeners
    /// started).
    pub fn of(shared: &Shared) -> UdpPathDoc {
        let mut doc = UdpPathDoc {
            udp_path: "sockets",
            xdp_error: None,
            xdp_interfaces: Vec::new(),
            xdp_listen: Vec::new(),
            xdp_packets: None,
        };
        match shared.udp_path.get() {
            None | Some(UdpPath::Sockets) => {}
            Some(UdpPath::Fallback(e)) => {
                doc.udp_path = "fallback";
                doc.xdp_error = Some(e.clone());
            }
            Some(UdpPath::Xdp(x)) => {
                doc.udp_path = "xdp";
                doc.xdp_interfaces = x
                    .interfaces()
                    .into_iter()
                    .map(|(name, mode, queues)| InterfaceDoc { name, mode, queues })
                    .collect();
                doc.xdp_listen = x.listen().iter().map(|a| a.to_string()).collect();
                doc.xdp_packets = Some(XDP_ACTIONS.into_iter().zip(x.packets()).collect());
            }
        }
        doc
    }
}

/// `switchyard_dns_udp_path{path}` (1 for the path in use) and, when the
/// XDP path runs, `switchyard_xdp_packets_total{action}`.
pub fn metrics(enc: &mut DescriptorEncoder, shared: &Shared) -> Result<(), std::fmt::Error> {
    let doc = UdpPathDoc::of(shared);
    let mut e = enc.encode_descriptor(
        "switchyard_dns_udp_path",
        "Which path answers UDP queries: 1 for sockets, xdp, or fallback (XDP configured but not running, sockets answer)",
        None,
        MetricType::Gauge,
    )?;
    for path in ["sockets", "xdp", "fallback"] {
        let labels = vec![("path", path)];
        ConstGauge::new(i64::from(doc.udp_path == path)).encode(e.encode_family(&labels)?)?;
    }
    if let Some(packets) = &doc.xdp_packets {
        let mut e = enc.encode_descriptor(
            "switchyard_xdp_packets",
            "Frames on the XDP path by action: pass (to the kernel: not a UDP query to an XDP address), redirect (to our sockets), answer (answered), drop (malformed, refused, rate limited, or held)",
            None,
            MetricType::Counter,
        )?;
        for (action, n) in packets {
            let labels = vec![("action", *action)];
            ConstCounter::new(*n).encode(e.encode_family(&labels)?)?;
        }
    }
    Ok(())
}
