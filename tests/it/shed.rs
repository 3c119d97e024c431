//! Load feedback and shedding: a real health page reporting its load (a
//! JSON body's `load`, or the `X-Switchyard-Load` header) to the real
//! binary, which sheds `shed_percent` of client networks (by ECS /24) to
//! the other endpoint while the load is above `shed_above`: the same
//! networks every time, and all of them back once the load drops.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hickory_proto::op::Message;
use serde_json::Value;

use crate::backend::*;
use crate::harness::*;

const NAME: &str = "shop.tm.example.test.";

/// A health page answering 200 with its load: as JSON (`{"load": x}`), or
/// in the header when `header` is set. The load is in thousandths.
pub(crate) fn load_page(load: Arc<AtomicU32>, header: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let v = f64::from(load.load(Ordering::Relaxed)) / 1000.0;
            let reply = if header {
                format!(
                    "HTTP/1.1 200 OK\r\nX-Switchyard-Load: {v}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                )
            } else {
                let body = format!("{{\"status\": \"ok\", \"load\": {v}}}");
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    addr
}

/// An A query for `name` carrying ECS `10.x.y.0/24` (network `net`).
pub(crate) fn ecs_query(name: &str, id: u16, net: u32) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    // OPT: root, type 41, 1232 bytes, no flags, one ECS option (code 8).
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 11]);
    let a = 0x0A00_0000u32 + (net << 8);
    let [b0, b1, b2, _] = a.to_be_bytes();
    q.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, b0, b1, b2]);
    q
}

/// The address each of `n` client networks is answered.
fn answers(dns: SocketAddr, n: u32) -> Vec<String> {
    answers_for(dns, NAME, n)
}

/// The address each of `n` client networks (ECS `10.x.y.0/24`) is
/// answered for `name`.
pub(crate) fn answers_for(dns: SocketAddr, name: &str, n: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            let reply = (0..3)
                .find_map(|_| udp_raw(dns, &ecs_query(name, i as u16, i), Duration::from_secs(2)))
                .expect("no reply");
            let m = Message::from_vec(&reply).unwrap();
            addrs(&m).pop().unwrap_or_default()
        })
        .collect()
}

/// The status document's view of endpoint `name` (of the first profile).
pub(crate) fn endpoint(p: &Proc, name: &str) -> Value {
    let (_, body) = http(p.admin(), "GET", "/api/v1/status", None);
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["profiles"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()
        .clone()
}

/// The ECS option's network `i` as `explain --ecs` takes it.
pub(crate) fn ecs_of(i: u32) -> String {
    let [a, b, c, _] = (0x0A00_0000u32 + (i << 8)).to_be_bytes();
    format!("{a}.{b}.{c}.0/24")
}

fn run(header: bool) {
    let load = Arc::new(AtomicU32::new(910));
    let page = load_page(load.clone(), header);
    let other = Backend::http(Mode::Ok);
    let profile = format!(
        "name = \"{NAME}\"\nrouting = \"priority\"\nttl = 5\nshed_above = 0.85\nshed_percent = 30\n\
         [monitor]\nprotocol = \"http\"\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\n\
         [[endpoints]]\nname = \"primary\"\ntarget = \"203.0.113.10\"\nprobe = {{ address = \"127.0.0.1\", port = {} }}\n\
         [[endpoints]]\nname = \"secondary\"\ntarget = \"203.0.113.20\"\nprobe = {{ address = \"127.0.0.1\", port = {} }}\n",
        page.port(),
        other.port()
    );
    let p = Proc::start(Fixture::new("", &[("shop.toml", &profile)]));
    wait_until(Duration::from_secs(20), || {
        endpoint(&p, "primary")["shed"] == "shed 30 % (load 0.91 > 0.85)"
            && endpoint(&p, "secondary")["status"] == "Online"
    })
    .unwrap_or_else(|| panic!("not shedding: {}\n{}", endpoint(&p, "primary"), p.log()));
    assert_eq!(endpoint(&p, "primary")["load"], 0.91);

    // 10,000 client networks: 30 % moved (± 2 %), the same ones each
    // time.
    let first = answers(p.v4(), 10_000);
    let moved = first.iter().filter(|a| *a == "203.0.113.20").count();
    eprintln!("shed 30 %: {moved} of 10000 networks moved");
    assert!((2800..=3200).contains(&moved), "moved {moved} of 10000");
    assert_eq!(
        answers(p.v4(), 10_000),
        first,
        "the same networks every time"
    );
    let explain = {
        let out = std::process::Command::new(bin())
            .args(["explain", NAME, "--ecs"])
            .arg({
                let i = first.iter().position(|a| a == "203.0.113.20").unwrap() as u32;
                ecs_of(i)
            })
            .arg("--admin")
            .arg(p.admin().to_string())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap()
    };
    assert!(
        explain.contains("shed 30 % (load 0.91 > 0.85)"),
        "{explain}"
    );

    // The load drops: every network is back on the primary.
    load.store(400, Ordering::Relaxed);
    wait_until(Duration::from_secs(20), || {
        endpoint(&p, "primary")["shed"].is_null()
    })
    .unwrap_or_else(|| panic!("still shedding: {}", endpoint(&p, "primary")));
    assert!(answers(p.v4(), 500).iter().all(|a| a == "203.0.113.10"));
}

#[test]
fn a_loaded_endpoint_sheds_thirty_percent_of_networks_json_body() {
    run(false);
}

#[test]
fn a_loaded_endpoint_sheds_thirty_percent_of_networks_header() {
    run(true);
}
