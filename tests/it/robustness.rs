//! Bad input on the wire: garbage, truncated or oversized TCP frames, idle
//! and slow clients, too many connections. The server never crashes or
//! stalls, and other clients keep being answered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::*;

const NAME: &str = "todoapi.tm.example.test.";

fn still_answers(s: &TestServer) {
    assert_eq!(addrs(&udp(s.v4(), NAME, RecordType::A)), ["203.0.113.10"]);
    assert_eq!(addrs(&tcp(s.v6(), NAME, RecordType::A)), ["203.0.113.10"]);
}

#[test]
fn garbage_and_mutated_packets_never_hurt() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let sock = std::net::UdpSocket::bind(if s.v4().ip().is_loopback() {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    })
    .unwrap();
    let good = build(NAME, RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(99);
    for i in 0..3000 {
        let pkt: Vec<u8> = if i % 3 == 0 {
            (0..rng.usize(0..600)).map(|_| rng.u8(..)).collect()
        } else {
            let mut p = good.clone();
            for _ in 0..rng.usize(1..6) {
                let at = rng.usize(0..p.len());
                p[at] = rng.u8(..);
            }
            p.truncate(rng.usize(0..=p.len() + 4).min(p.len()));
            p
        };
        sock.send_to(&pkt, s.v4()).unwrap();
    }
    still_answers(&s);
    // The same garbage over TCP, one frame per connection.
    for _ in 0..100 {
        let mut c = TcpStream::connect(s.v4()).unwrap();
        let len = rng.usize(0..300);
        let body: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let _ = c.write_all(&(len as u16).to_be_bytes());
        let _ = c.write_all(&body);
    }
    still_answers(&s);
}

#[test]
fn truncated_and_oversized_tcp_frames() {
    let s = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\ntcp_idle_timeout = \"500ms\"",
        &[("todoapi.toml", TODOAPI)],
    )
    .start();
    // A length prefix promising 65535 bytes, then a few and silence.
    let mut big = TcpStream::connect(s.v4()).unwrap();
    big.write_all(&[0xFF, 0xFF, 1, 2, 3]).unwrap();
    // Half a length prefix.
    let mut half = TcpStream::connect(s.v4()).unwrap();
    half.write_all(&[0x00]).unwrap();
    // A frame cut short, then the connection closed.
    let good = build(NAME, RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    let mut cut = TcpStream::connect(s.v4()).unwrap();
    cut.write_all(&(good.len() as u16).to_be_bytes()).unwrap();
    cut.write_all(&good[..10]).unwrap();
    drop(cut);
    // Meanwhile everyone else is answered at once.
    let t = Instant::now();
    still_answers(&s);
    assert!(t.elapsed() < Duration::from_millis(400));
    // The stalled connections are closed by the idle timeout.
    for c in [&mut big, &mut half] {
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 16];
        let t = Instant::now();
        let n = c.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "closed without a reply");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "closed by the idle timeout"
        );
    }
}

#[test]
fn idle_timeout_and_connection_cap() {
    let s = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\ntcp_idle_timeout = \"400ms\"\nmax_tcp_connections = 2",
        &[("todoapi.toml", TODOAPI)],
    )
    .start();
    let q = build(NAME, RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    let mut frame = (q.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&q);

    let mut a = TcpStream::connect(s.v4()).unwrap();
    let mut b = TcpStream::connect(s.v4()).unwrap();
    a.set_read_timeout(Some(TIMEOUT)).unwrap();
    b.set_read_timeout(Some(TIMEOUT)).unwrap();
    // Both are served (and therefore accepted) before the third arrives.
    a.write_all(&frame).unwrap();
    assert!(read_frame(&mut a).is_some());
    b.write_all(&frame).unwrap();
    assert!(read_frame(&mut b).is_some());
    // At the cap, the third is served and the longest idle (a) is closed.
    let mut c = TcpStream::connect(s.v4()).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(&frame).unwrap();
    assert!(read_frame(&mut c).is_some(), "a newcomer at the cap");
    assert!(read_frame(&mut a).is_none(), "the longest idle is closed");
    b.write_all(&frame).unwrap();
    assert!(read_frame(&mut b).is_some(), "the others are kept");
    // Idle connections are closed after the timeout (by the server: end
    // of file, not a read timing out), freeing their slots.
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    assert!(
        b.read_to_end(&mut rest).is_ok() && rest.is_empty(),
        "not closed within 10 s"
    );
    let slots = s.shared.dns_slots.get().expect("dns slots").clone();
    crate::backend::wait_until(Duration::from_secs(10), || slots.is_empty()).expect("slots freed");
    let replies = tcp_raw(s.v4(), &[q.clone(), q]);
    assert_eq!(replies.len(), 2);
}

#[test]
fn slow_clients_do_not_delay_others() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    let q = build(NAME, RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    let mut frame = (q.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&q);
    // Fifty clients each trickling one byte of a query.
    let slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = TcpStream::connect(s.v4()).unwrap();
            c.write_all(&frame[..3]).unwrap();
            c
        })
        .collect();
    let t = Instant::now();
    for _ in 0..20 {
        still_answers(&s);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(slow);
}
