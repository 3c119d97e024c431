//! EDNS Client Subnet precision (issue #10): the authoritative side decides
//! on the address as precisely as the resolver gave it and answers with a
//! scope no shorter than the network that decided, directly, through
//! `explain`, and through a real caching resolver (Unbound's subnetcache).

use std::net::SocketAddr;
use std::process::Command;

use crate::harness::*;
use crate::unbound::Unbound;

const LAB: &str = r#"
name = "lab.tm.example.test."
routing = "subnet"
ttl = 300
[[endpoints]]
name = "office"
target = "192.0.2.10"
subnets = ["198.51.100.0/25"]
[[endpoints]]
name = "lab"
target = "192.0.2.20"
subnets = ["198.51.100.128/25"]
[[endpoints]]
name = "range"
target = "192.0.2.30"
subnets = ["10.3.0.1-10.3.0.50"]
[[endpoints]]
name = "everyone"
target = "192.0.2.99"
"#;

const NAME: &str = "lab.tm.example.test";

/// `dig +subnet=...` against `addr`: the address answered and the scope.
fn dig_subnet(addr: SocketAddr, subnet: &str) -> (String, Option<u8>) {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), NAME, "A", "+norecurse"])
        .arg(format!("+subnet={subnet}"))
        .args(["+time=2", "+tries=2"])
        .output()
        .expect("cannot run dig; run the tests with scripts/test.sh");
    parse_dig(&String::from_utf8_lossy(&out.stdout))
}

/// The address `dig` answered and the ECS scope it echoed.
pub(crate) fn parse_dig(text: &str) -> (String, Option<u8>) {
    let answer = text
        .lines()
        .filter(|l| !l.starts_with(';'))
        .find(|l| l.contains("\tA\t") || l.contains(" A "))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no A record in:\n{text}"))
        .to_string();
    // "; CLIENT-SUBNET: 198.51.100.200/32/25"
    let scope = text
        .lines()
        .find(|l| l.contains("CLIENT-SUBNET:"))
        .and_then(|l| l.rsplit('/').next())
        .and_then(|s| s.trim().parse().ok());
    (answer, scope)
}

#[test]
fn ecs_finer_than_24_decides_and_scopes_what_decided() {
    let s = Fixture::new("", &[("lab.toml", LAB)]).start();
    for (subnet, want, scope) in [
        // The issue's cases: a /32 and a /25 in the lab half.
        ("198.51.100.200/32", "192.0.2.20", 25),
        ("198.51.100.128/25", "192.0.2.20", 25),
        ("198.51.100.10/32", "192.0.2.10", 25),
        // A /24 source covers both halves: decided by its first address,
        // scoped to the half that decided (longer than the source prefix).
        ("198.51.100.0/24", "192.0.2.10", 25),
        // A range: an ECS /32 inside it matches, scoped to an aligned block
        // inside the range (10.3.0.32/28 around .40).
        ("10.3.0.40/32", "192.0.2.30", 28),
        ("10.3.0.1/32", "192.0.2.30", 32),
        ("10.3.0.60/32", "192.0.2.99", 29),
        // Outside every range: the fallback, scoped to a block no range touches.
        ("203.0.113.7/32", "192.0.2.99", 5),
    ] {
        let (got, sc) = dig_subnet(s.v4(), subnet);
        assert_eq!(got, want, "{subnet}");
        assert_eq!(sc, Some(scope), "scope for {subnet}");
        // explain, asked about the same ECS subnet, agrees.
        let (code, doc) = json(
            s.admin,
            "GET",
            &format!("/api/v1/explain?name={NAME}&type=A&ecs={subnet}"),
            None,
        );
        assert_eq!(code, 200, "{doc}");
        assert_eq!(
            doc["answers"][0],
            format!("{NAME}. 300 A {want}"),
            "explain for {subnet}: {doc}"
        );
        assert_eq!(doc["ecs_scope"], scope, "explain scope for {subnet}: {doc}");
    }
    // explain --client (no ECS): the resolver's address in full.
    let (_, doc) = json(
        s.admin,
        "GET",
        &format!("/api/v1/explain?name={NAME}&type=A&client=198.51.100.200"),
        None,
    );
    assert_eq!(
        doc["answers"][0],
        format!("{NAME}. 300 A 192.0.2.20"),
        "{doc}"
    );
}

/// Unbound as a caching resolver with ECS (subnetcache), delegating the
/// test zone to `auth`.
fn caching_resolver(auth: SocketAddr) -> Unbound {
    Unbound::start(
        r#"  module-config: "subnetcache iterator"
  send-client-subnet: 127.0.0.1
  max-client-subnet-ipv4: 32
  max-client-subnet-ipv6: 128
  client-subnet-always-forward: yes
"#,
        &[("tm.example.test", auth)],
    )
}

impl Unbound {
    fn ask_ecs(&self, subnet: &str) -> String {
        let out = Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string(), NAME, "A"])
            .arg(format!("+subnet={subnet}"))
            .args(["+time=3", "+tries=1"])
            .output()
            .expect("cannot run dig");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("status: NOERROR"),
            "unbound answered:\n{text}"
        );
        parse_dig(&text).0
    }
}

/// Through a real resolver's ECS cache: an answer for one half of a /24
/// must not be handed to clients in the other half, and a range finer than
/// a /24 must be honoured.
#[test]
fn a_caching_resolver_keeps_finer_subnets_apart() {
    let p = Proc::start(Fixture::new("", &[("lab.toml", LAB)]));
    let u = caching_resolver(p.v4());
    // Each pair: the first answer is cached under the scope we gave it; the
    // second client is in the same /24 but another network.
    for (first, want_first, second, want_second) in [
        (
            "198.51.100.10/32",
            "192.0.2.10",
            "198.51.100.200/32",
            "192.0.2.20",
        ),
        ("10.3.0.40/32", "192.0.2.30", "10.3.0.60/32", "192.0.2.99"),
        ("10.3.0.200/32", "192.0.2.99", "10.3.0.7/32", "192.0.2.30"),
    ] {
        assert_eq!(u.ask_ecs(first), want_first, "{first}");
        assert_eq!(u.ask_ecs(second), want_second, "{second} after {first}");
        // And again from the cache.
        assert_eq!(u.ask_ecs(first), want_first, "{first} cached");
        assert_eq!(u.ask_ecs(second), want_second, "{second} cached");
    }
}
