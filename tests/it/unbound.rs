//! Unbound, a real resolver, in front of the server under test: started
//! on a free loopback port from a `server:` section the test completes
//! (modules, ECS, trust anchors) and the stub zones that point it at our
//! servers; killed when dropped.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A port free for both UDP and TCP on 127.0.0.1, outside the ephemeral
/// range other tests' servers take theirs from.
fn free_port() -> u16 {
    for _ in 0..50 {
        let port = crate::harness::free_port(false);
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn bin() -> &'static str {
    ["unbound", "/usr/sbin/unbound"]
        .into_iter()
        .find(|p| Command::new(p).arg("-V").output().is_ok())
        .expect("unbound is not installed; run the tests with scripts/test.sh, which installs it")
}

/// A running Unbound.
pub struct Unbound {
    child: Child,
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Unbound {
    /// Starts Unbound with the common settings (loopback only, no
    /// daemon, `test.` not served locally), `server` lines added to its
    /// `server:` section, and `stubs` (zone, server address) as stub zones;
    /// returns once it answers.
    pub fn start(server: &str, stubs: &[(&str, SocketAddr)]) -> Unbound {
        let at = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Self::start_on(at, server, stubs)
    }

    /// [`Unbound::start`] listening on `at` (another address than
    /// loopback needs its `access-control` line in `server`).
    pub fn start_on(at: SocketAddr, server: &str, stubs: &[(&str, SocketAddr)]) -> Unbound {
        let dir = tempfile::tempdir().unwrap();
        let (ip, port) = (at.ip(), at.port());
        let mut conf = format!(
            r#"server:
  interface: {ip}
  port: {port}
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  qname-minimisation: no
  num-threads: 1
  # `test.` is one of Unbound's locally served zones (RFC 6761).
  local-zone: "test." nodefault
{server}"#,
            dir = dir.path().display(),
        );
        for (zone, addr) in stubs {
            conf.push_str(&format!(
                "stub-zone:\n  name: \"{zone}\"\n  stub-addr: {}@{}\n",
                addr.ip(),
                addr.port()
            ));
        }
        let path = dir.path().join("unbound.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin())
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start unbound");
        let addr = at;
        let u = Unbound {
            child,
            addr,
            _dir: dir,
        };
        // Ready when it answers (REFUSED or anything) on its port.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let q = build(
                "version.bind.",
                hickory_proto::rr::RecordType::A,
                Opts::default(),
            );
            sock.send_to(&q.to_vec().unwrap(), addr).unwrap();
            if sock.recv(&mut [0u8; 512]).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "unbound did not start");
        }
        u
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
