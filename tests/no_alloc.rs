//! The answer path allocates nothing per query: after warm-up, answering
//! thousands of queries of every kind leaves the heap's allocation count
//! unchanged. A separate test binary, because it installs a counting global
//! allocator.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use switchyard::dns::{Answerer, Transport};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn query(name: &str, t: RecordType, edns: bool) -> Vec<u8> {
    query_do(name, t, edns, false)
}

fn query_do(name: &str, t: RecordType, edns: bool, dnssec_ok: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// A query with an ECS option for `a.b.c.0/24`.
fn ecs_query(name: &str, subnet: [u8; 3]) -> Vec<u8> {
    let mut q = query(name, RecordType::A, true);
    let opt = [0, 8, 0, 7, 0, 1, 24, 0, subnet[0], subnet[1], subnet[2]];
    let n = q.len();
    q[n - 2..].copy_from_slice(&(opt.len() as u16).to_be_bytes());
    q.extend_from_slice(&opt);
    q
}

#[test]
fn answering_does_not_allocate() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let dir = tempfile::tempdir().unwrap();
    // The example zone, signed: unsigned queries take today's path, DO
    // queries the signed one (signatures from the warm cache).
    let path = switchyard::fuzzing::signed_example_config(dir.path(), Default::default());
    let config = switchyard::config::load(&path).unwrap();
    let table = config.table;
    let geo = config.geo.expect("the example config has a GeoIP database");
    let mut packets = Vec::new();
    for name in [
        "todoapi.tm.example.test.",
        "ToDoApi.TM.example.test.",
        "canary.tm.example.test.",
        "pool.tm.example.test.",
        "static.tm.example.test.",
        "www.tm.example.test.",
        "nope.tm.example.test.",
        "tm.example.test.",
        "example.com.",
    ] {
        for t in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::NS,
            RecordType::ANY,
            RecordType::TXT,
        ] {
            for edns in [false, true] {
                packets.push(query(name, t, edns));
            }
            packets.push(query_do(name, t, true, true));
        }
    }
    for t in [
        RecordType::DNSKEY,
        RecordType::CDS,
        RecordType::SOA,
        RecordType::MX,
    ] {
        packets.push(query_do("tm.example.test.", t, true, true));
    }
    for name in [
        "nearest.tm.example.test.",
        "geo.tm.example.test.",
        "office.tm.example.test.",
    ] {
        for subnet in [[81, 2, 69], [8, 8, 8], [1, 1, 1], [10, 1, 2], [100, 64, 0]] {
            packets.push(ecs_query(name, subnet));
        }
    }
    packets.push(vec![0u8; 11]);
    packets.push(vec![0xFFu8; 40]);
    // DNS cookies: a client cookie alone, and with a server cookie (not
    // ours: checked, then replaced).
    for cookie in [&[7u8; 8][..], &[9u8; 24][..]] {
        let mut q = query("todoapi.tm.example.test.", RecordType::A, true);
        let n = q.len();
        q[n - 2..].copy_from_slice(&((4 + cookie.len()) as u16).to_be_bytes());
        q.extend_from_slice(&[0, 10, 0, cookie.len() as u8]);
        q.extend_from_slice(cookie);
        packets.push(q);
    }
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    // Rate limiting and slipping, as the UDP workers apply them.
    let rrl = switchyard::dns::rrl::RateLimiter::new(switchyard::dns::rrl::Config {
        exempt: vec![],
        responses_per_second: 1,
        ..Default::default()
    });
    let mut slips = 0u32;
    // Performance routing on measured latency: London decided by latency,
    // 8.8.8.0/24 with too few samples, the resolver's clients (a mapping),
    // a latency file's row.
    let latency = std::sync::Arc::new(switchyard::latency::Latency::default());
    let now = std::time::SystemTime::now();
    let net = |s: &str| s.parse::<switchyard::netblock::Network>().unwrap();
    for (n, count) in [("81.2.69.0/24", 40), ("8.8.8.0/24", 5), ("1.1.1.0/24", 40)] {
        for (ep, ms) in [("eu", 90), ("us", 30), ("apac", 200)] {
            let name = format!("nearest.tm.example.test/{ep}");
            let rtt = std::time::Duration::from_millis(ms);
            latency.record_many(net(n), &name, rtt, count, now).unwrap();
        }
    }
    latency.record_resolver(net("127.0.0.0/24"), net("1.1.1.0/24"), now);
    latency.set_file(
        switchyard::latency::FileTable::parse(
            "network,endpoint,rtt_ms,samples\n10.1.2.0/24,nearest.tm.example.test/eu,5,100\n10.1.2.0/24,nearest.tm.example.test/us,50,100\n",
            "latency.csv",
        )
        .unwrap(),
    );
    // The Traffic View, as the UDP workers record into it: runs of equal
    // answers into a queue (small: most pushes find it full and count a
    // drop, the other path).
    let recorder = switchyard::traffic::Recorder::new(64);
    let mut pending = switchyard::traffic::Pending::default();
    let mut answerer = Answerer::new(fastrand::Rng::with_seed(1)).with_latency(latency);
    let mut out = Vec::with_capacity(4096);
    // Warm-up: lets `out` reach its working size, and the signature cache
    // hold every RRset the random methods (weighted, multivalue) can
    // answer: a set seen for the first time is signed, which allocates.
    for _ in 0..100 {
        for p in &packets {
            answerer.answer(&table, Some(&geo), p, Transport::Udp, peer, &mut out);
            answerer.answer(&table, Some(&geo), p, Transport::Tcp, peer, &mut out);
        }
    }
    // London is answered by latency (us), not distance (eu).
    let london = ecs_query("nearest.tm.example.test.", [81, 2, 69]);
    answerer.answer(&table, Some(&geo), &london, Transport::Udp, peer, &mut out);
    assert!(out.windows(4).any(|w| w == [192, 0, 2, 32]), "{out:?}");
    // DO queries are signed: the A record and its RRSIG.
    let signed = query_do("todoapi.tm.example.test.", RecordType::A, true, true);
    answerer.answer(&table, Some(&geo), &signed, Transport::Udp, peer, &mut out);
    assert_eq!(u16::from_be_bytes([out[6], out[7]]), 2, "A and RRSIG");
    let before = dhat::HeapStats::get().total_blocks;
    let mut answered = 0;
    for _ in 0..200 {
        for p in &packets {
            if let Some(s) = answerer.answer(&table, Some(&geo), p, Transport::Udp, peer, &mut out)
            {
                answered += 1;
                if let Some(r) = s.routed {
                    let record = switchyard::traffic::Record {
                        table: std::ptr::from_ref(&table) as usize,
                        profile: r.profile,
                        endpoint: r.endpoint.unwrap_or(switchyard::traffic::NO_ENDPOINT),
                        network: r.network,
                        count: 1,
                    };
                    pending.add(&recorder, record);
                }
                if rrl.check(peer, s.class(), s.name_hash, s.rtype, rrl.now(), &mut slips)
                    == switchyard::dns::rrl::Verdict::Slip
                {
                    switchyard::dns::answer::slip(&mut out, &s);
                }
            }
        }
        pending.settle(&recorder, switchyard::clock::unix_secs_now());
        pending.flush(&recorder);
    }
    let after = dhat::HeapStats::get().total_blocks;
    assert!(answered > 10_000);
    assert!(recorder.dropped() > 0 && recorder.len() == 64);
    assert_eq!(
        after - before,
        0,
        "{} allocations for {answered} answers",
        after - before
    );
}
