//! Loading and attaching the XDP program (`dns.bpf.c`, compiled by
//! build.rs) with aya, and its maps: the addresses it steers, the socket
//! of each queue, and its per-CPU counts.
//!
//! aya attaches with a bpf_link (Linux 5.9 and later): the link lives as
//! long as its file descriptor, so the kernel detaches the program when
//! the server exits, however it exits (`kill -9` included).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use aya::maps::{HashMap, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpFlags};
use aya::{Ebpf, EbpfLoader};

/// The compiled program; empty when it was built without clang.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dns.bpf.o"));

/// Whether this binary carries the program (clang was there when it
/// was built).
pub fn built() -> bool {
    !OBJECT.is_empty()
}

/// The program's function (`SEC("xdp")`).
const FUNCTION: &str = "switchyard_xdp";

/// How the program runs on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In the driver, before the kernel allocates anything for the frame.
    Native,
    /// After the kernel made its socket buffer (`generic`): works on every
    /// interface, costs about what sockets cost.
    Generic,
}

impl Mode {
    /// The name in logs, status and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
        }
    }
}

/// The loaded program and its maps.
#[derive(Debug)]
pub struct Program {
    ebpf: Ebpf,
}

/// Why the program could not be loaded or attached, with what to do.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}{hint}")]
pub struct Error {
    what: String,
    cause: String,
    hint: &'static str,
}

impl Error {
    fn new(what: impl Into<String>, e: &(dyn std::error::Error + 'static)) -> Error {
        Error {
            what: what.into(),
            cause: chain(e),
            hint: hint(e),
        }
    }
}

/// An error and its sources, `a: b: c`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// What to do about the OS error in `e`'s sources, if any.
pub fn hint(e: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return errno_hint(io.raw_os_error());
        }
        cur = c.source();
    }
    ""
}

/// What to do about an errno from the bpf, socket or bind calls.
pub fn errno_hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(nix::libc::EPERM) | Some(nix::libc::EACCES) => {
            " (XDP needs CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW: run as root or grant them, e.g. systemd's AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_NET_RAW)"
        }
        Some(nix::libc::EAFNOSUPPORT) => {
            " (this kernel has no AF_XDP sockets: CONFIG_XDP_SOCKETS, Linux 5.4 or later)"
        }
        Some(nix::libc::ENOSYS) => " (this kernel has no bpf system call: CONFIG_BPF_SYSCALL)",
        Some(nix::libc::EBUSY) | Some(nix::libc::EEXIST) => {
            " (another XDP program or AF_XDP socket holds the interface or queue: `ip link show` names it)"
        }
        Some(nix::libc::EOPNOTSUPP) | Some(nix::libc::EINVAL) => {
            " (the interface's driver or the kernel cannot do this: see the README's XDP section for interfaces that work)"
        }
        Some(nix::libc::ENOMEM) => " (locked memory limit: raise LimitMEMLOCK)",
        _ => "",
    }
}

impl Program {
    /// Loads the program into the kernel, steering `listen`.
    pub fn load(listen: &[SocketAddr]) -> Result<Program, Error> {
        if OBJECT.is_empty() {
            return Err(Error {
                what: "this switchyard was built without its XDP program".into(),
                cause: "clang was not found when it was built".into(),
                hint: " (install clang, e.g. `apt install clang`, and rebuild)",
            });
        }
        let mut ebpf = EbpfLoader::new()
            .load(OBJECT)
            .map_err(|e| Error::new("cannot load the XDP program's maps", &e))?;
        {
            let map = ebpf
                .map_mut("sy_listen")
                .ok_or_else(|| missing("sy_listen"))?;
            let mut keys: HashMap<_, [u8; 20], u8> =
                HashMap::try_from(map).map_err(|e| Error::new("sy_listen", &e))?;
            for a in listen {
                keys.insert(listen_key(*a), 1, 0)
                    .map_err(|e| Error::new(format!("cannot add {a} to the XDP program"), &e))?;
            }
        }
        let prog: &mut Xdp = ebpf
            .program_mut(FUNCTION)
            .ok_or_else(|| missing(FUNCTION))?
            .try_into()
            .map_err(|e| Error::new(FUNCTION, &e))?;
        prog.load()
            .map_err(|e| Error::new("the kernel refused the XDP program", &e))?;
        Ok(Program { ebpf })
    }

    /// Attaches the program to `interface`: in its driver when it can,
    /// else generic (logged by the caller).
    pub fn attach(&mut self, interface: &str) -> Result<Mode, Error> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(FUNCTION)
            .ok_or_else(|| missing(FUNCTION))?
            .try_into()
            .map_err(|e| Error::new(FUNCTION, &e))?;
        let native = match prog.attach(interface, XdpFlags::DRV_MODE) {
            Ok(_) => return Ok(Mode::Native),
            Err(e) => e,
        };
        match prog.attach(interface, XdpFlags::SKB_MODE) {
            Ok(_) => Ok(Mode::Generic),
            Err(_) => Err(Error::new(
                format!("cannot attach the XDP program to {interface}"),
                &native,
            )),
        }
    }

    /// Sends what arrives on `queue` to the AF_XDP socket `fd`.
    pub fn add_socket(&mut self, queue: u32, fd: &impl AsRawFd) -> Result<(), Error> {
        let map = self
            .ebpf
            .map_mut("sy_xsks")
            .ok_or_else(|| missing("sy_xsks"))?;
        let mut xsks = XskMap::try_from(map).map_err(|e| Error::new("sy_xsks", &e))?;
        xsks.set(queue, fd.as_raw_fd(), 0)
            .map_err(|e| Error::new(format!("cannot register the socket of queue {queue}"), &e))
    }

    /// Frames passed to the kernel and redirected to our sockets, every
    /// CPU's count summed.
    pub fn counts(&self) -> (u64, u64) {
        let Some(map) = self.ebpf.map("sy_stats") else {
            return (0, 0);
        };
        let Ok(stats) = PerCpuArray::<_, u64>::try_from(map) else {
            return (0, 0);
        };
        let sum = |i: u32| {
            stats
                .get(&i, 0)
                .map_or(0, |v| v.iter().copied().fold(0u64, u64::wrapping_add))
        };
        (sum(0), sum(1))
    }
}

fn missing(name: &str) -> Error {
    Error {
        what: format!("the XDP program has no {name}"),
        cause: "built from another source".into(),
        hint: "",
    }
}

/// The program's `struct listen_key`: the address (IPv4 in the first four
/// bytes), the port in network order, the family (4 or 6) in host order.
fn listen_key(a: SocketAddr) -> [u8; 20] {
    let mut k = [0u8; 20];
    let family: u16 = match a {
        SocketAddr::V4(v4) => {
            k[..4].copy_from_slice(&v4.ip().octets());
            4
        }
        SocketAddr::V6(v6) => {
            k[..16].copy_from_slice(&v6.ip().octets());
            6
        }
    };
    k[16..18].copy_from_slice(&a.port().to_be_bytes());
    k[18..20].copy_from_slice(&family.to_ne_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_keys_match_the_programs_layout() {
        let k = listen_key("10.0.0.1:53".parse().unwrap());
        assert_eq!(&k[..4], &[10, 0, 0, 1]);
        assert_eq!(&k[4..16], &[0; 12]);
        assert_eq!(&k[16..18], &[0, 53]);
        assert_eq!(u16::from_ne_bytes([k[18], k[19]]), 4);
        let k = listen_key("[::]:5353".parse().unwrap());
        assert_eq!(&k[..16], &[0; 16]);
        assert_eq!(&k[16..18], &5353u16.to_be_bytes());
        assert_eq!(u16::from_ne_bytes([k[18], k[19]]), 6);
    }

    #[test]
    fn the_program_was_built() {
        // CI installs clang: a build without the program must not pass
        // unnoticed there.
        if std::env::var_os("SWITCHYARD_REQUIRE_XDP").is_some() {
            assert!(!OBJECT.is_empty(), "built without the XDP program");
        }
    }
}
