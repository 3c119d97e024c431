//! User-space cost of answering one query, in process, against two
//! references measured alternately in the same process:
//!
//! - the common way to do the same job: hickory-proto parses the query into
//!   a `Message`, builds the response from `Record`s and encodes it;
//! - for client-aware names, Switchyard's own priority name, so the cost of
//!   GeoIP routing shows as "extra ns over priority".
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

fn query(name: &str, t: RecordType, ecs: Option<[u8; 3]>) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let mut q = m.to_vec().unwrap();
    if let Some(s) = ecs {
        let opt = [0, 8, 0, 7, 0, 1, 24, 0, s[0], s[1], s[2]];
        let n = q.len();
        q[n - 2..].copy_from_slice(&(opt.len() as u16).to_be_bytes());
        q.extend_from_slice(&opt);
    }
    q
}

/// The reference: parse, build, encode with hickory-proto.
fn reference(pkt: &[u8], answer: &Record) -> Vec<u8> {
    let q = Message::from_vec(pkt).unwrap();
    let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    r.metadata.authoritative = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.add_queries(q.queries.iter().cloned());
    r.add_answer(answer.clone());
    r.set_edns(q.edns.clone().unwrap_or_default());
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
    // The copy of the bundled example the tests use, not the bundled file,
    // which is the user's to edit.
    let config =
        switchyard::config::load(&switchyard::fuzzing::example_dir().join("switchyard.toml"))
            .expect("example config");
    let table = config.table;
    let geo = config.geo;
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut answerer = Answerer::default();
    let mut out = Vec::with_capacity(1232);
    let record = Record::from_rdata(
        Name::from_ascii("todoapi.tm.example.test.").unwrap(),
        30,
        RData::A(A::new(203, 0, 113, 10)),
    );
    let gb = Some([81, 2, 69]);
    let cases: &[(&str, &str, Option<[u8; 3]>)] = &[
        ("todoapi.tm.example.test.", "priority", gb),
        ("canary.tm.example.test.", "weighted", gb),
        ("pool.tm.example.test.", "multivalue", gb),
        ("nearest.tm.example.test.", "performance", gb),
        ("geo.tm.example.test.", "geographic", gb),
        ("office.tm.example.test.", "subnet", gb),
        ("www.tm.example.test.", "CNAME chain", None),
        ("nope.tm.example.test.", "NXDOMAIN", None),
    ];

    println!(
        "{:<28} {:>11} {:>11} {:>7} {:>14}",
        "query (ECS 81.2.69.0/24)", "switchyard", "hickory", "ratio", "vs priority"
    );
    let mut priority_ns = 0.0;
    for &(name, label, ecs) in cases {
        let pkt = query(name, RecordType::A, ecs);
        assert!(
            answerer
                .answer(&table, geo.as_deref(), &pkt, Transport::Udp, peer, &mut out)
                .is_some()
        );
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(ns_per_op(|| {
                black_box(answerer.answer(
                    &table,
                    geo.as_deref(),
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
        if label == "priority" {
            priority_ns = a;
        }
        println!(
            "{:<28} {:>9.0}ns {:>9.0}ns {:>7.2} {:>+12.0}ns",
            label,
            a,
            b,
            a / b,
            a - priority_ns
        );
    }
    println!(
        "(median of {ROUNDS} rounds x {ITERS} iterations; hickory = parse + build + encode of a one-record answer)"
    );
    println!();
    limits(&table, geo.as_deref());
    println!();
    additions(&table, geo.as_deref());
    println!();
    signing();
    println!();
    profile_size();
}

/// A query with EDNS, and DO when `dnssec_ok`.
fn query_do(name: &str, t: RecordType, dnssec_ok: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// Signed answers: the same queries with and without DO, signatures from
/// the warm cache; then answers that need a new signature every time
/// (a different NXDOMAIN name per query: the cost of one cold signature).
fn signing() {
    use switchyard::dnssec::Algorithm;
    let dir = tempfile::tempdir().unwrap();
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut out = Vec::with_capacity(4096);
    println!(
        "{:<36} {:>11} {:>11} {:>7}",
        "signed zone, EDNS", "DO (signed)", "no DO", "ratio"
    );
    for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
        let path = switchyard::fuzzing::signed_example_config(dir.path(), algorithm);
        let config = switchyard::config::load(&path).expect("signed example");
        let (table, geo) = (config.table, config.geo);
        let mut answerer = Answerer::default();
        for (name, t, label) in [
            ("todoapi.tm.example.test.", RecordType::A, "priority A"),
            ("canary.tm.example.test.", RecordType::A, "weighted A"),
            ("www.tm.example.test.", RecordType::A, "CNAME chain"),
            ("nope.tm.example.test.", RecordType::A, "NXDOMAIN (compact)"),
            ("tm.example.test.", RecordType::DNSKEY, "DNSKEY"),
        ] {
            let signed = query_do(name, t, true);
            let plain = query_do(name, t, false);
            // Warm: every RRset the name can answer is signed once.
            for _ in 0..1000 {
                answerer.answer(
                    &table,
                    geo.as_deref(),
                    &signed,
                    Transport::Udp,
                    peer,
                    &mut out,
                );
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                a.push(ns_per_op(|| {
                    black_box(answerer.answer(
                        &table,
                        geo.as_deref(),
                        black_box(&signed),
                        Transport::Udp,
                        peer,
                        &mut out,
                    ));
                }));
                b.push(ns_per_op(|| {
                    black_box(answerer.answer(
                        &table,
                        geo.as_deref(),
                        black_box(&plain),
                        Transport::Udp,
                        peer,
                        &mut out,
                    ));
                }));
            }
            let (a, b) = (median(a), median(b));
            println!(
                "{:<36} {a:>9.0}ns {b:>9.0}ns {:>7.2}",
                format!("{} {label}", algorithm.name()),
                a / b
            );
        }
        // Cold: a new name per query, so its NSEC is signed for it.
        let n = 2_000u32;
        let names: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                query_do(
                    &format!("cold-{i}.{:?}.tm.example.test.", algorithm.number()),
                    RecordType::A,
                    true,
                )
            })
            .collect();
        let t = Instant::now();
        for q in &names {
            black_box(answerer.answer(&table, geo.as_deref(), q, Transport::Udp, peer, &mut out));
        }
        let cold = t.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{:<36} {:>9.1}µs  (an NXDOMAIN whose NSEC is signed for it: one cold signature)",
            format!("{} cold signature", algorithm.name()),
            cold / 1000.0
        );
    }
}

/// The cost of DNS cookies and rate limiting on top of a plain answer.
fn limits(table: &switchyard::snapshot::Snapshot, geo: Option<&switchyard::geo::GeoDb>) {
    use switchyard::dns::rrl::{Class, Config, RateLimiter};
    let peer: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let mut answerer = Answerer::default();
    let mut out = Vec::with_capacity(1232);
    let plain = query("todoapi.tm.example.test.", RecordType::A, None);
    let with_cookie = {
        let mut q = plain.clone();
        let n = q.len();
        q[n - 2..].copy_from_slice(&12u16.to_be_bytes());
        q.extend_from_slice(&[0, 10, 0, 8, 0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57]);
        q
    };
    // The server cookie the server gives that client, sent back.
    answerer.answer(table, geo, &with_cookie, Transport::Udp, peer, &mut out);
    let valid = {
        let mut q = plain.clone();
        let n = q.len();
        q[n - 2..].copy_from_slice(&28u16.to_be_bytes());
        q.extend_from_slice(&[0, 10, 0, 24]);
        q.extend_from_slice(&out[out.len() - 24..]);
        q
    };
    // Rates no loop reaches, so every check counts and sends; the total
    // (`total_per_second`) on and off.
    let rrl = RateLimiter::new(Config {
        exempt: vec![],
        responses_per_second: u32::MAX,
        total_per_second: u32::MAX,
        ..Config::default()
    });
    let no_total = RateLimiter::new(Config {
        exempt: vec![],
        responses_per_second: u32::MAX,
        total_per_second: 0,
        ..Config::default()
    });
    let mut slips = 0;
    let mut rows = Vec::new();
    for (label, pkt) in [
        ("no cookie", &plain),
        ("client cookie (a server cookie made)", &with_cookie),
        ("valid server cookie (checked, echoed)", &valid),
    ] {
        let mut t = Vec::new();
        for _ in 0..ROUNDS {
            t.push(ns_per_op(|| {
                black_box(answerer.answer(
                    table,
                    geo,
                    black_box(pkt),
                    Transport::Udp,
                    peer,
                    &mut out,
                ));
            }));
        }
        rows.push((label, median(t)));
    }
    let (mut t, mut t0) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let now = rrl.now();
        t.push(ns_per_op(|| {
            black_box(rrl.check(black_box(peer), Class::Response, 42, 1, now, &mut slips));
        }));
        t0.push(ns_per_op(|| {
            black_box(no_total.check(black_box(peer), Class::Response, 42, 1, now, &mut slips));
        }));
    }
    let (check, check_no_total) = (median(t), median(t0));
    let base = rows[0].1;
    println!(
        "{:<44} {:>11} {:>14}",
        "todoapi A answer, EDNS", "switchyard", "vs no cookie"
    );
    for (label, ns) in rows {
        println!("{label:<44} {ns:>9.0}ns {:>+12.0}ns", ns - base);
    }
    println!("{:<44} {check:>9.0}ns", "rate limit check (one response)");
    println!(
        "{:<44} {check_no_total:>9.0}ns",
        "  the same without total_per_second"
    );
}

/// What the answer path's bookkeeping adds to one answer, alternated in
/// the same rounds: the answer without any (explain's: endpoint answers
/// not counted); with the drain bookkeeping counted per answer (each
/// answered endpoint's count, last answer and when it leaves caches: an
/// atomic add and a clock read per answer, as TCP does) and tallied per
/// batch of 16 (as the UDP loop does: one add per endpoint per batch, the
/// clock read once per batch); with a health-aware TTL (`ttl_degraded`,
/// the profile not settled: the TTL worked out per answer). Then one query
/// counted in the shared counters and in a worker's own.
fn additions(table: &switchyard::snapshot::Snapshot, geo: Option<&switchyard::geo::GeoDb>) {
    use switchyard::clock::Batch;
    use switchyard::metrics::Metrics;
    let peer: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let pkt = query("todoapi.tm.example.test.", RecordType::A, None);
    let mut out = Vec::with_capacity(1232);
    // The example with `ttl_degraded` on the priority profile.
    let dir = tempfile::tempdir().unwrap();
    let example = switchyard::fuzzing::example_dir();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(profiles.join("keys")).unwrap();
    for entry in std::fs::read_dir(example.join("profiles")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let mut text = std::fs::read_to_string(&path).unwrap();
            if path.ends_with("todoapi.toml") {
                text = text.replace("ttl = 30\n", "ttl = 30\nttl_degraded = 10\n");
            }
            std::fs::write(profiles.join(path.file_name().unwrap()), text).unwrap();
        }
    }
    std::fs::copy(
        example.join("profiles/keys/todoapi.key"),
        profiles.join("keys/todoapi.key"),
    )
    .unwrap();
    let text = std::fs::read_to_string(example.join("switchyard.toml"))
        .unwrap()
        .replace("\"geoip/", &format!("\"{}/geoip/", example.display()))
        .replace("state_file = \"switchyard.state\"", "");
    std::fs::write(dir.path().join("switchyard.toml"), text).unwrap();
    let degraded = switchyard::config::load(&dir.path().join("switchyard.toml"))
        .expect("the example with ttl_degraded")
        .table;

    let mut uncounted = Answerer::uncounted();
    let mut counted = Answerer::default();
    let mut tallied = Answerer::default().tallied();
    let mut short = Answerer::default();
    let mut answer = |a: &mut Answerer, t: &switchyard::snapshot::Snapshot| {
        black_box(a.answer(t, geo, black_box(&pkt), Transport::Udp, peer, &mut out));
    };
    let mut rows = vec![Vec::new(); 4];
    for _ in 0..ROUNDS {
        rows[0].push(ns_per_op(|| answer(&mut uncounted, table)));
        rows[1].push(ns_per_op(|| answer(&mut counted, table)));
        let mut n = 0u32;
        let mut batch = Some(Batch::start());
        rows[2].push(ns_per_op(|| {
            answer(&mut tallied, table);
            n += 1;
            if n.is_multiple_of(16) {
                tallied.settle();
                drop(batch.take());
                batch = Some(Batch::start());
            }
        }));
        drop(batch);
        tallied.settle();
        rows[3].push(ns_per_op(|| answer(&mut short, &degraded)));
    }
    let m = Metrics::default();
    let worker = m.worker();
    let (mut shared, mut own) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        shared.push(ns_per_op(|| m.query(Transport::Udp, black_box(0))));
        own.push(ns_per_op(|| worker.query(black_box(0))));
    }
    let base = median(rows[0].clone());
    println!(
        "{:<52} {:>11} {:>14}",
        "todoapi A answer, EDNS (what it adds)", "switchyard", "vs uncounted"
    );
    for (label, t) in [
        "endpoint answers not counted (explain)",
        "drain bookkeeping per answer (TCP)",
        "drain bookkeeping tallied per batch of 16 (UDP)",
        "drain bookkeeping per answer and ttl_degraded",
    ]
    .iter()
    .zip(rows)
    {
        let ns = median(t);
        println!("{label:<52} {ns:>9.1}ns {:>+12.1}ns", ns - base);
    }
    println!(
        "{:<52} {:>9.1}ns",
        "one query counted: shared counter (atomic add)",
        median(shared)
    );
    println!(
        "{:<52} {:>9.1}ns",
        "one query counted: the worker's own (load, store)",
        median(own)
    );
}

/// A profile of `n` monitored endpoints 10.x.y.z, routed by `routing`.
fn big_profile(name: &str, routing: &str, n: u32) -> String {
    let mut p = format!(
        "name = \"{name}.scale.test.\"\nrouting = \"{routing}\"\nmax_answers = 2\n[monitor]\nprotocol = \"tcp\"\nport = 9\n"
    );
    if routing != "multivalue" {
        p = p.replace("max_answers = 2\n", "");
    }
    for i in 0..n {
        p.push_str(&format!(
            "[[endpoints]]\nname = \"e{i}\"\ntarget = \"10.{}.{}.{}\"\nweight = {}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255,
            1 + i % 7
        ));
    }
    if routing == "multivalue" {
        p = p.replace("weight = ", "# weight = ");
    }
    p
}

/// Routing cost against profile size: 10,000 endpoints against 2 (4 for
/// multivalue, so both answer two records even with half of them down), for
/// the methods that choose among all of a profile's endpoints per query.
fn profile_size() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(
        dir.path().join("switchyard.toml"),
        "[[zones]]\norigin = \"scale.test.\"\nns = [\"ns1.scale.test.\"]\nrecords = [{ name = \"ns1\", type = \"A\", value = \"192.0.2.1\" }]\n",
    )
    .unwrap();
    for (name, routing, n) in [
        ("w2", "weighted", 2),
        ("w10k", "weighted", 10_000),
        ("m4", "multivalue", 4),
        ("m10k", "multivalue", 10_000),
    ] {
        std::fs::write(
            dir.path().join(format!("profiles/{name}.toml")),
            big_profile(name, routing, n),
        )
        .unwrap();
    }
    let config =
        switchyard::config::load(&dir.path().join("switchyard.toml")).expect("scale config");
    let table = config.table;
    let set_all = |down_every: u32| {
        for (i, ep) in table.endpoints.iter().enumerate() {
            if let switchyard::snapshot::Health::Monitored(cell) = &ep.health {
                let down = down_every > 0 && (i as u32).is_multiple_of(down_every);
                cell.set(if down {
                    switchyard::health::Status::Degraded
                } else {
                    switchyard::health::Status::Online
                });
            }
        }
    };
    let peer: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut answerer = Answerer::default();
    let mut out = Vec::with_capacity(1232);
    // The two profiles alternate round by round, so both see the same
    // machine.
    let mut time = |big: &str, small: &str| {
        let pkts = [big, small].map(|n| query(&format!("{n}.scale.test."), RecordType::A, None));
        let mut runs = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS * 2 {
            for (pkt, runs) in pkts.iter().zip(runs.iter_mut()) {
                runs.push(ns_per_op(|| {
                    black_box(answerer.answer(
                        &table,
                        None,
                        black_box(pkt),
                        Transport::Udp,
                        peer,
                        &mut out,
                    ));
                }));
            }
        }
        // The fastest round of each: on a shared VM, noise only ever adds.
        let [a, b] = runs.map(|r| r.into_iter().fold(f64::MAX, f64::min));
        (a, b)
    };
    println!(
        "{:<44} {:>11} {:>11} {:>7}",
        "endpoints in the profile", "10,000", "2 (mv: 4)", "ratio"
    );
    for (label, down_every) in [("all Online", 0), ("every other Degraded", 2)] {
        set_all(down_every);
        for (method, big, small) in [
            ("weighted", "w10k", "w2"),
            ("multivalue (2 answers)", "m10k", "m4"),
        ] {
            let (a, b) = time(big, small);
            println!(
                "{:<44} {:>9.0}ns {:>9.0}ns {:>7.2}",
                format!("{method}, {label}"),
                a,
                b,
                a / b
            );
        }
    }
    println!(
        "(fastest of {} alternating rounds x {ITERS} iterations; no EDNS; the multivalue profiles answer 2 of their endpoints)",
        ROUNDS * 2
    );
}
