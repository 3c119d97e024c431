//! What the Traffic View costs, in process, in its worst case: every answer
//! from another client network, so no two answers coalesce and each one is
//! a push onto the queue and a record the drain files (GeoIP lookup
//! through its cache, two panes' counts and sketches). Measured against
//! the same answers without recording, alternately in the same process.
//!
//! Run with: cargo bench --profile profiling --bench traffic

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use switchyard::dns::{Answerer, Transport};
use switchyard::traffic::view::Views;
use switchyard::traffic::{NO_ENDPOINT, Pending, Record, Recorder};

const ROUNDS: usize = 7;
/// Answers per round: as many distinct /24s.
const N: usize = 20_000;

fn query(name: &str, net: u32) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let mut q = m.to_vec().unwrap();
    let [_, a, b, c] = net.to_be_bytes();
    let opt = [0, 8, 0, 7, 0, 1, 24, 0, a, b, c];
    let n = q.len();
    q[n - 2..].copy_from_slice(&(opt.len() as u16).to_be_bytes());
    q.extend_from_slice(&opt);
    q
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = switchyard::fuzzing::example_dir();
    let config = switchyard::config::load(&dir.join("switchyard.toml")).unwrap();
    let table = Arc::new(config.table);
    let geo = config.geo;
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    // Client networks spread over the address space (many countries).
    let packets: Vec<Vec<u8>> = (0..N as u32)
        .map(|i| {
            query(
                "nearest.tm.example.test.",
                i.wrapping_mul(2_654_435_761) >> 8,
            )
        })
        .collect();
    let recorder = Recorder::new(N + 1);
    let mut views = Views::new(256);
    let mut answerer = Answerer::new(fastrand::Rng::with_seed(1));
    let mut out = Vec::with_capacity(4096);
    let tag = Arc::as_ptr(&table) as usize;
    let (mut plain, mut recorded, mut drained) = (Vec::new(), Vec::new(), Vec::new());
    let now = switchyard::clock::unix_secs_now();
    for round in 0..ROUNDS + 1 {
        let t = Instant::now();
        for p in &packets {
            std::hint::black_box(answerer.answer(
                &table,
                geo.as_deref(),
                p,
                Transport::Udp,
                peer,
                &mut out,
            ));
        }
        let a = t.elapsed().as_nanos() as f64 / N as f64;
        let mut pending = Pending::default();
        let t = Instant::now();
        for p in &packets {
            let s = answerer.answer(&table, geo.as_deref(), p, Transport::Udp, peer, &mut out);
            if let Some(r) = s.and_then(|s| s.routed) {
                let record = Record {
                    table: tag,
                    profile: r.profile,
                    endpoint: r.endpoint.unwrap_or(NO_ENDPOINT),
                    network: r.network,
                    count: 1,
                };
                pending.add(&recorder, record);
            }
        }
        pending.flush(&recorder);
        let b = t.elapsed().as_nanos() as f64 / N as f64;
        let t = Instant::now();
        let n = views.drain(&recorder, &table, geo.as_ref(), now);
        let c = t.elapsed().as_nanos() as f64 / n.max(1) as f64;
        assert_eq!(n, N);
        if round > 0 {
            plain.push(a);
            recorded.push(b);
            drained.push(c);
        }
    }
    let (a, b, c) = (median(plain), median(recorded), median(drained));
    println!(
        "Traffic View, worst case: {N} answers a round, each from another /24 (median of {ROUNDS} rounds)"
    );
    println!("  answer (performance, ECS)            {a:7.1} ns");
    println!(
        "  answer + recorded (one push each)    {b:7.1} ns   (+{:.1} ns, {:.3}x)",
        b - a,
        b / a
    );
    println!(
        "  drain, per record (GeoIP, 2 panes)   {c:7.1} ns   (on the drain task, not the answer path)"
    );
    println!(
        "  answer + push + drain                {:7.1} ns   ({:.3}x the answer alone)",
        b + c,
        (b + c) / a
    );
    println!(
        "  memory after {} records: {} KiB",
        N * (ROUNDS + 1),
        views.bytes() / 1024
    );
}
