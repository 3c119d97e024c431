//! Writes the seed corpora of the fuzz targets from the inputs the test
//! suite uses: query packets of every kind the integration tests send, the
//! bundled and invalid profiles, and explain requests.
//! Run with: cargo run --manifest-path fuzz/Cargo.toml --bin seeds

use std::path::Path;

use hickory_proto::op::{Edns, Message, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

fn query(name: &str, t: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some((size, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// Appends an EDNS option to a query whose OPT record is last and empty.
fn with_option(mut q: Vec<u8>, code: u16, data: &[u8]) -> Vec<u8> {
    let n = q.len();
    let rdlen = u16::from_be_bytes([q[n - 2], q[n - 1]]) + 4 + data.len() as u16;
    q[n - 2..].copy_from_slice(&rdlen.to_be_bytes());
    q.extend_from_slice(&code.to_be_bytes());
    q.extend_from_slice(&(data.len() as u16).to_be_bytes());
    q.extend_from_slice(data);
    q
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();

    // Queries.
    let names = [
        "todoapi.tm.example.test.",
        "ToDoApi.TM.example.test.",
        "www.tm.example.test.",
        "canary.tm.example.test.",
        "pool.tm.example.test.",
        "nearest.tm.example.test.",
        "geo.tm.example.test.",
        "office.tm.example.test.",
        "static.tm.example.test.",
        "nope.tm.example.test.",
        "tm.example.test.",
        "example.com.",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::ANY,
        RecordType::CNAME,
        RecordType::MX,
        RecordType::TXT,
        RecordType::SOA,
        RecordType::NS,
        RecordType::SRV,
        RecordType::CAA,
        RecordType::AXFR,
    ];
    for (i, name) in names.iter().enumerate() {
        for (j, t) in types.iter().enumerate() {
            if (i + j) % 3 == 0 {
                let edns = [None, Some((1232, false)), Some((512, true)), Some((4096, true))][j % 4];
                seeds.push(("query", format!("q-{i}-{j}"), query(name, *t, edns)));
            }
        }
    }
    let base = query("nearest.tm.example.test.", RecordType::A, Some((1232, false)));
    for (k, ecs) in [
        &[0u8, 1, 24, 0, 81, 2, 69][..],
        &[0, 1, 32, 0, 198, 51, 100, 200],
        &[0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0],
        &[0, 1, 0, 0],
        &[0, 3, 8, 0, 1],
    ]
    .iter()
    .enumerate()
    {
        seeds.push(("query", format!("ecs-{k}"), with_option(base.clone(), 8, ecs)));
    }
    let client = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
    seeds.push(("query", "cookie-client".into(), with_option(base.clone(), 10, &client)));
    let mut full = client.to_vec();
    full.extend_from_slice(&[1, 0, 0, 0, 0x5c, 0xf7, 0x9f, 0x11, 0x1f, 0x81, 0x30, 0xc3, 0xee, 0xe2, 0x94, 0x80]);
    seeds.push(("query", "cookie-full".into(), with_option(base.clone(), 10, &full)));
    seeds.push(("query", "cookie-bad".into(), with_option(base.clone(), 10, &full[..11])));
    let both = with_option(with_option(base.clone(), 8, &[0, 1, 24, 0, 1, 1, 1]), 10, &client);
    seeds.push(("query", "ecs-and-cookie".into(), both));
    let mut notify = Message::query();
    notify.metadata.op_code = OpCode::Notify;
    notify.add_query(Query::query(Name::from_ascii("tm.example.test.").unwrap(), RecordType::SOA));
    seeds.push(("query", "notify".into(), notify.to_vec().unwrap()));
    let mut chaos = Message::query();
    let mut q = Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    seeds.push(("query", "chaos".into(), chaos.to_vec().unwrap()));
    let mut two = base.clone();
    two[5] = 2;
    seeds.push(("query", "two-questions".into(), two));
    let mut ptr = base.clone();
    ptr[12] = 0xC0;
    seeds.push(("query", "pointer".into(), ptr));
    seeds.push(("query", "short".into(), base[..20].to_vec()));
    seeds.push(("query", "junk".into(), b"Quote of the day: yes.\r\n".to_vec()));

    // Configuration: every shipped profile, valid or not, alone and beside
    // the server file (the tests' copy of the bundled example, which the
    // user may have edited).
    for dir in ["tests/fixtures/example/profiles", "profiles/invalid"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join("..").join(dir))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            let tag = if dir.ends_with("invalid") { "invalid" } else { "profile" };
            seeds.push(("config", format!("{tag}-{stem}"), std::fs::read(&f).unwrap()));
        }
    }
    let server = std::fs::read_to_string(root.join("../tests/fixtures/example/switchyard.toml")).unwrap();
    let server = server.replace("database = \"geoip/", &format!("database = \"{}/../geoip/", root.display()));
    let todoapi = std::fs::read(root.join("../tests/fixtures/example/profiles/todoapi.toml")).unwrap();
    let mut both = server.into_bytes();
    both.push(0);
    both.extend_from_slice(&todoapi);
    seeds.push(("config", "server-and-profile".into(), both));

    // Admin requests: Host, Origin, Sec-Fetch-Site, name, type, client, ecs.
    for (k, fields) in [
        ["127.0.0.1:8053", "", "", "todoapi.tm.example.test", "A", "", ""],
        ["localhost", "http://localhost", "same-origin", "nearest.tm.example.test.", "AAAA", "81.2.69.1", "81.2.69.0/24"],
        ["[::1]:8053", "https://evil.example", "cross-site", "geo.tm.example.test", "ANY", "2001:db8::1", "2001:db8::/56"],
        ["evil.example", "null", "none", "www.tm.example.test", "CNAME", "not-an-ip", "1.2.3.4/33"],
        ["", "", "", "..", "TYPE65534", "::ffff:1.2.3.4", "/"],
    ]
    .iter()
    .enumerate()
    {
        seeds.push(("admin", format!("request-{k}"), fields.join("\n").into_bytes()));
    }

    for (target, name, bytes) in &seeds {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    println!("{} seeds written under {}", seeds.len(), corpus.display());
}
