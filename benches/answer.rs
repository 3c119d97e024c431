//! User-space cost of answering one query, in process: Switchyard's answer
//! path against a reference that does the same job the common way (hickory-
//! proto parses the query into a `Message`, builds the response from
//! `Record`s and encodes it). Both run alternately in the same process; the
//! ratio is the figure that carries across machines.
//!
//! Run with: cargo bench --bench answer

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use switchyard::dns::{Answerer, Transport};

const ROUNDS: usize = 7;
const ITERS: u32 = 200_000;

fn query(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// The reference: parse, build, encode with hickory-proto.
fn reference(pkt: &[u8], answer: &Record) -> Vec<u8> {
    let q = Message::from_vec(pkt).unwrap();
    let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    r.metadata.authoritative = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.add_queries(q.queries.iter().cloned());
    r.add_answer(answer.clone());
    let mut e = Edns::new();
    e.set_max_payload(1232);
    r.set_edns(e);
    r.to_vec().unwrap()
}

fn ns_per_op(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..ITERS {
        f();
    }
    t.elapsed().as_nanos() as f64 / ITERS as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let config = switchyard::config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/switchyard.toml"
    )))
    .expect("example config");
    let table = config.table;
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut answerer = Answerer::default();
    let mut out = Vec::with_capacity(1232);
    let record = Record::from_rdata(
        Name::from_ascii("todoapi.tm.example.test.").unwrap(),
        30,
        RData::A(A::new(203, 0, 113, 10)),
    );

    println!(
        "{:<44} {:>10} {:>10} {:>7}",
        "query", "switchyard", "reference", "ratio"
    );
    for (name, t) in [
        ("todoapi.tm.example.test.", RecordType::A),
        ("canary.tm.example.test.", RecordType::A),
        ("pool.tm.example.test.", RecordType::A),
        ("www.tm.example.test.", RecordType::A),
        ("nope.tm.example.test.", RecordType::A),
    ] {
        let pkt = query(name, t);
        assert!(
            answerer
                .answer(&table, None, &pkt, Transport::Udp, peer, &mut out)
                .is_some()
        );
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(ns_per_op(|| {
                black_box(answerer.answer(
                    &table,
                    None,
                    black_box(&pkt),
                    Transport::Udp,
                    peer,
                    &mut out,
                ));
            }));
            theirs.push(ns_per_op(|| {
                black_box(reference(black_box(&pkt), &record));
            }));
        }
        let (a, b) = (median(ours), median(theirs));
        println!(
            "{:<44} {:>8.0}ns {:>8.0}ns {:>7.2}",
            format!("{name} {t}"),
            a,
            b,
            a / b
        );
    }
    println!(
        "(median of {ROUNDS} rounds x {ITERS} iterations; reference = hickory-proto parse + build + encode of a one-record answer)"
    );
}
