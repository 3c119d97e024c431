//! Performance routing on measured latency, in process, against a latency
//! table holding 1,000,000 client networks x 4 endpoints:
//!
//! - a performance answer decided by latency (the client's network has
//!   samples) against one decided by distance (a network with none, the
//!   table looked at all the same), measured alternately in the same run;
//!   and the distance answer with no table at all (before this feature);
//! - a sample ingested (`Latency::record`) into the full table: median and
//!   worst of 100,000, to existing networks and to new ones (each new one
//!   evicts the weakest of its shard);
//! - the table's memory, every byte allocated counted, at 1,000,000 networks and
//!   after 1,500,000 distinct ones (the bound holds).
//!
//! Run with: cargo bench --bench latency

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// dhat counts the heap while a profiler runs (the memory section only);
// otherwise it passes every call to the system allocator.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use switchyard::dns::{Answerer, Transport};
use switchyard::latency::{From, Latency, Record, endpoint_id};
use switchyard::netblock::Network;

const ROUNDS: usize = 7;
const ITERS: u32 = 200_000;
const NETWORKS: u32 = 1_000_000;
const NAME: &str = "nearest.tm.example.test.";
const ENDPOINTS: [&str; 4] = ["eu", "us", "apac", "sao-paulo"];

fn query(ecs: [u8; 3]) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(NAME).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let mut q = m.to_vec().unwrap();
    let opt = [0, 8, 0, 7, 0, 1, 24, 0, ecs[0], ecs[1], ecs[2]];
    let n = q.len();
    q[n - 2..].copy_from_slice(&(opt.len() as u16).to_be_bytes());
    q.extend_from_slice(&opt);
    q
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

/// The four endpoints' samples from network `n` (10.x.y.0/24 and up),
/// `samples` each.
fn records(n: u32, samples: u32, at: u32) -> [Record; 4] {
    let net = Network::V4(0x0a_0000 + n);
    std::array::from_fn(|i| Record {
        net,
        ep: endpoint_id(&format!("{NAME}/{}", ENDPOINTS[i])),
        rtt_ms: 20.0 + 30.0 * i as f64,
        samples,
        at,
    })
}

fn main() {
    let config =
        switchyard::config::load(&switchyard::fuzzing::example_dir().join("switchyard.toml"))
            .expect("example config");
    let (table, geo) = (config.table, config.geo);
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let now = switchyard::clock::unix_secs_now();

    // The table, filled: 1,000,000 networks x 4 endpoints.
    let latency = Arc::new(Latency::default());
    for n in 0..NETWORKS {
        latency.ingest(&records(n, 1, now), false);
    }
    let networks = latency
        .stats
        .networks
        .load(std::sync::atomic::Ordering::Relaxed);
    // The measured client: London (81.2.69.0/24) has samples; Stockholm
    // (89.160.20.0/24) has none. us is measured faster than the nearer eu.
    let london: Network = "81.2.69.0/24".parse().unwrap();
    for (ep, ms) in [
        ("eu", 90.0),
        ("us", 30.0),
        ("apac", 250.0),
        ("sao-paulo", 200.0),
    ] {
        latency
            .record_many(
                london,
                &format!("{NAME}/{ep}"),
                Duration::from_secs_f64(ms / 1000.0),
                100,
                SystemTime::now(),
            )
            .unwrap();
    }
    let by_latency = query([81, 2, 69]);
    let by_distance = query([89, 160, 20]);
    let mut with = Answerer::default().with_latency(latency.clone());
    let mut without = Answerer::default();
    let mut out = Vec::with_capacity(1232);
    // Check what each answers.
    with.answer(
        &table,
        geo.as_deref(),
        &by_latency,
        Transport::Udp,
        peer,
        &mut out,
    )
    .unwrap();
    assert!(
        out.windows(4).any(|w| w == [192, 0, 2, 32]),
        "London -> us by latency"
    );
    with.answer(
        &table,
        geo.as_deref(),
        &by_distance,
        Transport::Udp,
        peer,
        &mut out,
    )
    .unwrap();
    assert!(
        out.windows(4).any(|w| w == [192, 0, 2, 31]),
        "Stockholm -> eu by distance"
    );

    let (mut lat, mut dist, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        lat.push(ns_per_op(|| {
            black_box(with.answer(
                &table,
                geo.as_deref(),
                black_box(&by_latency),
                Transport::Udp,
                peer,
                &mut out,
            ));
        }));
        dist.push(ns_per_op(|| {
            black_box(with.answer(
                &table,
                geo.as_deref(),
                black_box(&by_distance),
                Transport::Udp,
                peer,
                &mut out,
            ));
        }));
        bare.push(ns_per_op(|| {
            black_box(without.answer(
                &table,
                geo.as_deref(),
                black_box(&by_distance),
                Transport::Udp,
                peer,
                &mut out,
            ));
        }));
    }
    let (lat, dist, bare) = (median(lat), median(dist), median(bare));
    println!("performance answer, table of {networks} networks x 4 endpoints    ns/answer   ratio");
    println!(
        "decided by latency (ECS 81.2.69.0/24, 100 samples each)   {lat:>9.0}   {:>5.2}x distance",
        lat / dist
    );
    println!("decided by distance (ECS 89.160.20.0/24, no samples)      {dist:>9.0}   1.00");
    println!(
        "decided by distance, no latency table (before)           {bare:>9.0}   {:>5.2}x distance",
        bare / dist
    );
    println!("(median of {ROUNDS} rounds x {ITERS} answers, alternated)");
    let se: Network = "89.160.20.0/24".parse().unwrap();
    let eu = endpoint_id(&format!("{NAME}/eu"));
    let (mut miss, mut hit) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        miss.push(ns_per_op(|| {
            let r = latency.reader(now);
            black_box(r.lookup(From::Client(black_box(se))).is_empty());
        }));
        hit.push(ns_per_op(|| {
            let r = latency.reader(now);
            black_box(r.lookup(From::Client(black_box(london))).get(eu));
        }));
    }
    println!(
        "one table lookup: a network with no rows {:.0} ns, one estimate of a network with rows {:.0} ns",
        median(miss),
        median(hit)
    );
    println!();

    // Ingest at the full table.
    let mut rng = fastrand::Rng::with_seed(7);
    let mut time = |new: bool| {
        let mut v: Vec<u64> = Vec::with_capacity(100_000);
        for i in 0..100_000u32 {
            let n = if new {
                NETWORKS + 1_000_000 + i
            } else {
                rng.u32(0..NETWORKS)
            };
            let net = Network::V4(0x0a_0000 + n);
            let t = Instant::now();
            latency
                .record(
                    net,
                    "nearest.tm.example.test/eu",
                    Duration::from_millis(25),
                    SystemTime::now(),
                )
                .unwrap();
            v.push(t.elapsed().as_nanos() as u64);
        }
        v.sort_unstable();
        (v[v.len() / 2], v[v.len() * 999 / 1000], v[v.len() - 1])
    };
    let (m1, p1, w1) = time(false);
    let (m2, p2, w2) = time(true);
    println!("one sample ingested (Latency::record), full table       median   p99.9     worst");
    println!(
        "to an existing network                                 {:>6.1}us {:>6.1}us {:>7.1}us",
        m1 as f64 / 1e3,
        p1 as f64 / 1e3,
        w1 as f64 / 1e3
    );
    println!(
        "to a new network (evicts the weakest of its shard)     {:>6.1}us {:>6.1}us {:>7.1}us",
        m2 as f64 / 1e3,
        p2 as f64 / 1e3,
        w2 as f64 / 1e3
    );
    println!("(100,000 each; the DNS path never waits for them: readers load shards lock-free)");
    println!();

    drop((with, latency));
    memory(now);
}

/// The memory of a table filled with 1,000,000 networks x 4 endpoints,
/// every byte allocated counted (dhat), then after 1,700,000 distinct
/// networks.
fn memory(now: u32) {
    let _profiler = dhat::Profiler::builder().testing().build();
    let held = || dhat::HeapStats::get().curr_bytes;
    let before = held();
    let latency = Latency::default();
    let t = Instant::now();
    for n in 0..NETWORKS {
        latency.ingest(&records(n, 1, now), false);
    }
    let fill = t.elapsed();
    let bytes = held() - before;
    let networks = latency
        .stats
        .networks
        .load(std::sync::atomic::Ordering::Relaxed);
    let counted = latency
        .stats
        .bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "memory                                                   networks   bytes allocated   counted by the table"
    );
    println!(
        "1,000,000 networks x 4 endpoints (filled in {:.1} s)   {networks:>9}   {:>10.1} MB      {:>6.1} MB",
        fill.as_secs_f64(),
        bytes as f64 / 1e6,
        counted as f64 / 1e6
    );
    for n in NETWORKS..NETWORKS + 700_000 {
        latency.ingest(&records(3_000_000 + n, 1, now), false);
    }
    let networks = latency
        .stats
        .networks
        .load(std::sync::atomic::Ordering::Relaxed);
    let evicted = latency
        .stats
        .evicted
        .load(std::sync::atomic::Ordering::Relaxed);
    let bytes = held() - before;
    println!(
        "after 1,700,000 distinct networks ({evicted} evicted)     {networks:>9}   {:>10.1} MB",
        bytes as f64 / 1e6
    );
    assert!(networks <= NETWORKS as usize + 4096, "the bound holds");
    assert!(bytes < 100_000_000, "within 100 MB: {bytes}");
}
