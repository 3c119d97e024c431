//! What the drills share (included with `#[path]` by `failover_drill.rs`
//! and `cluster_drill.rs`): one `dig +short`-style query, reading a health
//! request, and the median/worst summary line.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

/// The first A record `server` answers for `name`, as `dig +short` prints
/// it, or why there is none.
pub async fn ask(sock: &UdpSocket, server: SocketAddr, name: &str) -> String {
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    sock.send_to(&q.to_vec().unwrap(), server).await.unwrap();
    let mut buf = [0u8; 1500];
    let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await
    else {
        return "(no answer)".into();
    };
    let m = Message::from_vec(&buf[..n]).unwrap();
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "(no address)".into())
}

/// Reads a request's head; false when the connection ended first.
pub async fn read_head(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 2048];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// `LABEL  median M ms   worst W ms   (N trials: ...)`, the label padded
/// to `width`.
pub fn summary(label: &str, width: usize, v: &mut [Duration]) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = v.len();
    let median = if n % 2 == 1 {
        ms(v[n / 2])
    } else {
        (ms(v[n / 2 - 1]) + ms(v[n / 2])) / 2.0
    };
    let list: Vec<String> = v.iter().map(|d| format!("{:.0}", ms(*d))).collect();
    format!(
        "{label:<width$} median {median:>5.0} ms   worst {:>5.0} ms   ({n} trial{}: {} ms)",
        ms(v[n - 1]),
        if n == 1 { "" } else { "s" },
        list.join(", ")
    )
}
