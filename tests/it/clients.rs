//! Independent DNS clients (BIND's dig, Knot's kdig) against the real
//! server: a second opinion on the wire format. `scripts/test.sh` installs
//! them.

use std::process::Command;

use crate::harness::*;

fn run(tool: &str, args: &[String]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}); run the tests with scripts/test.sh, which installs dnsutils and knot-dnsutils")
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.to_lowercase().contains("malformed") && !text.contains("WARNING: Message"),
        "{tool} {args:?} found a problem:\n{text}"
    );
    text
}

fn at(addr: std::net::SocketAddr) -> Vec<String> {
    vec![
        format!("@{}", addr.ip()),
        "-p".into(),
        addr.port().to_string(),
    ]
}

#[test]
fn dig_and_kdig_agree_with_us() {
    let s = Fixture::new("", &[("todoapi.toml", TODOAPI)]).start();
    for addr in [s.v4(), s.v6()] {
        for tool in ["dig", "kdig"] {
            for tcp in [false, true] {
                let mut args = at(addr);
                if tcp {
                    args.push("+tcp".into());
                }
                let mut short = args.clone();
                short.extend(["www.tm.example.test".into(), "A".into(), "+short".into()]);
                assert_eq!(
                    run(tool, &short).trim(),
                    "todoapi.tm.example.test.\n203.0.113.10",
                    "{tool} {addr} tcp={tcp}"
                );
                let mut full = args.clone();
                full.extend(["nope.tm.example.test".into(), "AAAA".into()]);
                let text = run(tool, &full);
                assert!(text.contains("NXDOMAIN"), "{text}");
                assert!(text.contains(" aa"), "authoritative: {text}");
                assert!(!text.contains(" ra"), "RA never set: {text}");
            }
        }
    }
    // Without EDNS too.
    let mut args = at(s.v4());
    args.extend([
        "+noedns".into(),
        "tm.example.test".into(),
        "NS".into(),
        "+short".into(),
    ]);
    assert_eq!(
        run("dig", &args).trim(),
        "ns1.tm.example.test.\nns2.tm.example.test."
    );
}
