//! The bodies of the fuzz targets, shared by the AFL harnesses in `fuzz/`
//! and by the test that replays their corpora (`tests/it/fuzz_corpus.rs`),
//! so an input that once crashed the server stays in the test suite. Each
//! body checks the invariants a reply or a load must hold and panics when
//! one does not; any other panic is a bug as well.
//!
//! Not part of the server: nothing here runs in `switchyard serve`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;

use crate::dns::answer::{self, Answerer, Transport};
use crate::geo::GeoDb;
use crate::snapshot::Snapshot;

/// `tests/fixtures/example/`: a copy of the bundled example configuration
/// (`switchyard.toml` and `profiles/`), which the fuzz targets, the tests
/// and the benchmarks read instead of the bundled files: those are the
/// user's to edit, and an edit must not change what these check
/// (`scripts/example-fixture.sh` keeps the copy equal to the bundled
/// example).
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/example")
}

/// The example configuration ([`example_dir`]), compiled once per process.
fn example() -> &'static (Snapshot, Option<Arc<GeoDb>>) {
    static EXAMPLE: OnceLock<(Snapshot, Option<Arc<GeoDb>>)> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let path = example_dir().join("switchyard.toml");
        match crate::config::load(&path) {
            Ok(c) => (c.table, c.geo),
            Err(e) => panic!("the example configuration does not load: {e}"),
        }
    })
}

/// Writes the example configuration ([`example_dir`]) into `dir` with its
/// zone signed by a new key of `algorithm` (paths made absolute), for the
/// fuzz target, the no-allocation test and the benchmark; returns the
/// configuration's path.
pub fn signed_example_config(dir: &Path, algorithm: crate::dnssec::Algorithm) -> PathBuf {
    let example = example_dir();
    let zone = match crate::proto::name::DomainName::parse("tm.example.test.", None) {
        Ok(z) => z,
        Err(e) => panic!("{e}"),
    };
    let key = match crate::dnssec::KeyFile::generate(&zone, algorithm) {
        Ok(k) => k,
        Err(e) => panic!("cannot make a key: {e}"),
    };
    let key_path = dir.join(format!("{}.key", algorithm.name()));
    if let Err(e) = crate::dnssec::key::write_new(&key_path, &key.to_text(), true) {
        panic!("cannot write the key: {e}");
    }
    let text = match std::fs::read_to_string(example.join("switchyard.toml")) {
        Ok(t) => t,
        Err(e) => panic!("cannot read the example: {e}"),
    };
    let text = text
        .replace(
            "dir = \"profiles\"",
            &format!("dir = {:?}", example.join("profiles")),
        )
        .replace("\"geoip/", &format!("\"{}/geoip/", example.display()))
        .replace("state_file = \"switchyard.state\"", "");
    let text = format!("{text}\ndnssec = {{ key = {{ file = {key_path:?} }} }}\n");
    let path = dir.join("switchyard.toml");
    if let Err(e) = std::fs::write(&path, text) {
        panic!("cannot write the configuration: {e}");
    }
    path
}

/// [`signed_example_config`], compiled once per process (in a directory
/// of the system's temporary directory, removed once loaded).
fn signed_example() -> &'static (Snapshot, Option<Arc<GeoDb>>) {
    static SIGNED: OnceLock<(Snapshot, Option<Arc<GeoDb>>)> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("switchyard-fuzz-signed-{}", std::process::id()));
        let path = signed_example_config(&dir, Default::default());
        let loaded = crate::config::load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        match loaded {
            Ok(c) => (c.table, c.geo),
            Err(e) => panic!("the signed example does not load: {e}"),
        }
    })
}

/// The answer path: `data` as a query packet, answered over UDP and TCP
/// from a client that is not exempt from anything, by the example
/// configuration and by the same with its zone signed (DNSSEC). Every
/// reply must parse, echo the id, opcode and question, fit the transport,
/// and survive being slipped by rate limiting.
pub fn query(data: &[u8]) {
    for (table, geo) in [example(), signed_example()] {
        answer_one(table, geo.as_deref(), data);
    }
}

fn answer_one(table: &Snapshot, geo: Option<&GeoDb>, data: &[u8]) {
    let mut answerer = Answerer::new(fastrand::Rng::with_seed(1));
    let mut out = Vec::new();
    let peer = IpAddr::from([192, 0, 2, 77]);
    for transport in [Transport::Udp, Transport::Tcp] {
        let Some(summary) = answerer.answer(table, geo, data, transport, peer, &mut out) else {
            continue;
        };
        check_reply(data, &out, transport);
        assert_eq!(summary.truncated, out[2] & 0x02 != 0, "TC flag vs summary");
        if transport == Transport::Udp {
            answer::slip(&mut out, &summary);
            let m = Message::from_vec(&out)
                .unwrap_or_else(|e| panic!("a slipped reply does not parse ({e}): {out:?}"));
            assert!(m.answers.is_empty() && m.authorities.is_empty());
        }
    }
}

fn check_reply(query: &[u8], reply: &[u8], transport: Transport) {
    let m = Message::from_vec(reply).unwrap_or_else(|e| {
        panic!("the reply does not parse ({e}): query {query:?} reply {reply:?}")
    });
    assert_eq!(reply[..2], query[..2], "id");
    assert!(reply[2] & 0x80 != 0, "QR");
    assert_eq!(reply[2] & 0x78, query[2] & 0x78, "opcode");
    assert!(m.queries.len() <= 1, "one question at most");
    if transport == Transport::Udp {
        let limit = if m.edns.is_some() { 1232 } else { 512 };
        assert!(reply.len() <= limit, "{} bytes over UDP", reply.len());
    }
    // The question, when echoed, is the query's byte for byte.
    if m.queries.len() == 1 {
        let end = reply.len().min(query.len());
        let qlen = reply[12..end]
            .iter()
            .zip(&query[12..end])
            .take_while(|(a, b)| a == b)
            .count();
        assert!(qlen >= 5, "question not echoed");
    }
}

/// The configuration loader: `data` is a profile file, or a server file
/// and a profile file separated by a NUL byte. A load either fails with
/// located, bounded messages or yields a table whose every profile answers.
pub fn config(data: &[u8]) {
    let dir = scratch_dir();
    let (server, profile) = match data.iter().position(|&b| b == 0) {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let geo = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/geo-whois-asn-country.mmdb");
    let default_server = format!(
        "[geoip]\ndatabase = \"{}\"\n[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns1.tm.example.test.\"]\nrecords = [{{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" }}]\n",
        geo.display()
    );
    let write = |name: &str, bytes: &[u8]| {
        if let Err(e) = std::fs::write(dir.join(name), bytes) {
            panic!("scratch directory: {e}");
        }
    };
    write(
        "switchyard.toml",
        server.unwrap_or(default_server.as_bytes()),
    );
    write("profiles/fuzz.toml", profile);
    match crate::config::load(&dir.join("switchyard.toml")) {
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                let text = e.to_string();
                assert!(text.len() < 4096, "an error of {} bytes", text.len());
            }
        }
        Ok(cfg) => {
            let table = &cfg.table;
            let mut answerer = Answerer::new(fastrand::Rng::with_seed(2));
            let mut out = Vec::new();
            for p in &table.profiles {
                assert!(table.profile_by_name(p.name.as_str()).is_some());
                for t in [1u16, 28, 255] {
                    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
                    q.extend_from_slice(p.name.wire());
                    q.extend_from_slice(&t.to_be_bytes());
                    q.extend_from_slice(&[0, 1]);
                    if answerer
                        .answer(
                            table,
                            cfg.geo.as_deref(),
                            &q,
                            Transport::Udp,
                            IpAddr::from([198, 51, 100, 1]),
                            &mut out,
                        )
                        .is_some()
                    {
                        check_reply(&q, &out, Transport::Udp);
                    }
                }
            }
        }
    }
}

/// A directory for the config target's files, one per process.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("switchyard-fuzz-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(dir.join("profiles")) {
            panic!("scratch directory {}: {e}", dir.display());
        }
        dir
    })
}

/// The admin API's own request logic: `data` holds newline-separated
/// fields (Host, Origin, Sec-Fetch-Site, name, type, client, ecs) as a
/// request would carry them; host and origin checks, the ECS parameter,
/// and explain's query building and answering must never panic.
pub fn admin(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\n');
    let mut next = || f.next().unwrap_or("");
    let (host, origin, site, name, qtype, client, ecs) =
        (next(), next(), next(), next(), next(), next(), next());
    let _ = crate::admin::loopback_host(host);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(origin) {
        headers.insert(http::header::ORIGIN, v);
    }
    if let Ok(v) = http::HeaderValue::from_str(site) {
        headers.insert("sec-fetch-site", v);
    }
    let _ = crate::admin::cross_origin(&headers, host);
    let ecs = match crate::admin::parse_ecs(ecs) {
        Ok((addr, prefix)) => {
            assert!(prefix <= if addr.is_ipv4() { 32 } else { 128 });
            Some((addr, prefix))
        }
        Err(e) => {
            assert!(e.len() < 4096);
            None
        }
    };
    let client: IpAddr = client.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let (table, geo) = example();
    // Messages go back to the client: none echoes a long value whole.
    let decision =
        match crate::dns::inspect::answer_for(table, geo.as_deref(), name, qtype, client, ecs) {
            Ok(a) => a.decision,
            Err(e) => {
                assert!(e.len() < 4096, "a message of {} bytes", e.len());
                Default::default()
            }
        };
    let why = crate::routing::explain::explain(
        table,
        geo.as_deref(),
        name,
        crate::snapshot::Family::Any,
        crate::routing::explain::ClientView {
            resolver: client,
            ecs,
        },
        &decision,
    );
    for step in why.steps {
        assert!(step.len() < 4096, "a step of {} bytes", step.len());
    }
}
