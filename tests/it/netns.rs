//! Network namespaces with a veth pair, for the XDP path's tests (root
//! only): the server runs in the namespace, the test's clients in ours,
//! so every query crosses the veth and the XDP program on its far end.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// `SWITCHYARD_TEST_XDP=1`: servers of tests that use the default
/// listeners serve over XDP in a namespace of their own (scripts/test.sh
/// runs the UDP conformance tests again this way, as root).
pub fn xdp_everywhere() -> bool {
    std::env::var_os("SWITCHYARD_TEST_XDP").is_some_and(|v| v == "1")
}

/// True when running as root (network namespaces and XDP need it).
pub fn root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Says why a root-only test does nothing here.
pub fn skip(test: &str) -> bool {
    if root() {
        return false;
    }
    eprintln!(
        "SKIPPED {test}: needs root (network namespaces and XDP); scripts/test.sh runs it as root"
    );
    true
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace `ns` holding `inner` (10.213.N.1/24, fd13:0:0:N::1/64),
/// the peer of `outer` here (.2 and ::2); both removed when dropped.
pub struct Veth {
    /// The namespace's name (`ip netns`).
    pub ns: String,
    /// The interface in the namespace: the one the XDP program runs on.
    pub inner: String,
    /// The interface in ours.
    pub outer: String,
    n: u32,
}

impl Veth {
    /// Creates the namespace and the pair, both ends up.
    pub fn new() -> Veth {
        let pid = std::process::id();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let n = (pid.wrapping_mul(7) + k) % 250 + 1;
        let id = format!("{}{k}", pid % 100_000);
        let v = Veth {
            ns: format!("sy-xdp-{id}"),
            inner: format!("syi{id}"),
            outer: format!("syo{id}"),
            n,
        };
        // Left over by a test process that was killed.
        quiet(&["netns", "del", &v.ns]);
        quiet(&["link", "del", &v.outer]);
        let (v4s, v6s) = (v.server_v4(), v.server_v6());
        let (v4c, v6c) = (v.client_v4(), v.client_v6());
        for cmd in [
            format!("netns add {}", v.ns),
            format!(
                "link add {} type veth peer name {} netns {}",
                v.outer, v.inner, v.ns
            ),
            format!("addr add {v4c}/24 dev {}", v.outer),
            format!("-6 addr add {v6c}/64 dev {} nodad", v.outer),
            format!("link set {} up", v.outer),
            format!("-n {} addr add {v4s}/24 dev {}", v.ns, v.inner),
            format!("-n {} -6 addr add {v6s}/64 dev {} nodad", v.ns, v.inner),
            format!("-n {} link set {} up", v.ns, v.inner),
            format!("-n {} link set lo up", v.ns),
        ] {
            ip(&cmd);
        }
        v
    }

    /// The server's IPv4 address (on `inner`).
    pub fn server_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.n as u8, 1)
    }

    /// The server's IPv6 address.
    pub fn server_v6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd13, 0, 0, self.n as u16, 0, 0, 0, 1)
    }

    /// Ours, on `outer`.
    pub fn client_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.n as u8, 2)
    }

    /// Ours, IPv6.
    pub fn client_v6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd13, 0, 0, self.n as u16, 0, 0, 0, 2)
    }

    /// `[dns]` listening on port 53 of the server's addresses (`also`
    /// more), `[dns.xdp]` on `inner` for the same, and the admin API on
    /// the server's IPv4 address (reachable from here).
    pub fn config(&self, also: &[SocketAddr], xdp_extra: &str) -> String {
        let main = [
            SocketAddr::new(IpAddr::V4(self.server_v4()), 53),
            SocketAddr::new(IpAddr::V6(self.server_v6()), 53),
        ];
        let quote = |a: &[SocketAddr]| {
            a.iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let all: Vec<SocketAddr> = main.iter().chain(also).copied().collect();
        format!(
            "[dns]\nlisten = [{}]\n[dns.xdp]\ninterfaces = [\"{}\"]\nlisten = [{}]\n{xdp_extra}\n[admin]\nlisten = \"{}:0\"\n",
            quote(&all),
            self.inner,
            quote(&main),
            self.server_v4()
        )
    }

    /// Sets the MTU of both ends.
    pub fn set_mtu(&self, mtu: u32) {
        ip(&format!("link set {} mtu {mtu}", self.outer));
        ip(&format!("-n {} link set {} mtu {mtu}", self.ns, self.inner));
    }

    /// Whether an XDP program is attached to `inner`.
    pub fn xdp_attached(&self) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns, "-d", "link", "show", "dev", &self.inner])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting the namespace deletes `inner`, and with it `outer`.
        quiet(&["netns", "del", &self.ns]);
    }
}

/// Runs `ip ARGS`, whatever comes of it.
fn quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Runs `ip ARGS`, panicking with its output on failure.
pub fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
