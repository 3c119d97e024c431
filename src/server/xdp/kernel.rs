//! What the XDP path needs from the kernel that no crate wraps safely: the
//! AF_XDP frame memory shared with it, waiting on a socket, and two
//! interface ioctls. The crate's one module allowed `unsafe`
//! (architecture::unsafe_code_stays_in_one_module).
//!
//! The kernel reads and writes the frames it owns (those on the fill and
//! transmit rings) behind our back; this module hands out a frame's bytes
//! only for a descriptor the receive ring gave back, through `&mut self`,
//! so one worker touches one frame at a time and never one the kernel owns.
#![allow(unsafe_code)]

use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use xdpilone::{Umem, UmemConfig};

/// Page-aligned anonymous memory divided into frames of `frame` bytes.
pub struct Frames {
    area: NonNull<u8>,
    len: usize,
    frame: usize,
}

// The area is plain memory owned by this value alone.
unsafe impl Send for Frames {}

impl Frames {
    /// Maps `count` frames of `frame` bytes (a power of two).
    pub fn new(count: usize, frame: usize) -> std::io::Result<Frames> {
        assert!(frame.is_power_of_two(), "frame size must be a power of two");
        let len = count * frame;
        let size = NonZeroUsize::new(len).ok_or(std::io::ErrorKind::InvalidInput)?;
        // SAFETY: a new private anonymous mapping aliases nothing.
        let area = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_POPULATE,
            )
        }?;
        Ok(Frames {
            area: area.cast(),
            len,
            frame,
        })
    }

    /// Registers the memory with the kernel as an AF_XDP UMEM.
    pub fn umem(&self, config: UmemConfig) -> Result<Umem, xdpilone::Errno> {
        let area = NonNull::slice_from_raw_parts(self.area, self.len);
        // SAFETY: the area is page aligned (mmap), `len` bytes long, and
        // outlives the Umem: the queue that owns both drops the Umem (and
        // its sockets) first.
        unsafe { Umem::new(config, area) }
    }

    /// The bytes from `addr` (an offset from the receive ring) to the end
    /// of its frame: the received frame, and room to write its answer.
    /// `None` for an address outside the memory.
    pub fn chunk(&mut self, addr: u64) -> Option<&mut [u8]> {
        let addr = usize::try_from(addr).ok()?;
        if addr >= self.len {
            return None;
        }
        let end = (addr & !(self.frame - 1)) + self.frame;
        // SAFETY: addr..end lies within the mapping (end <= len since
        // len is a multiple of `frame`); the frame is ours (handed back by
        // the receive ring, not yet given to the kernel again), and
        // `&mut self` makes this the only slice into the area.
        Some(unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(addr), end - addr) })
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; no slice into it outlives
        // `&mut self`, and the kernel let go of it when the UMEM's sockets
        // closed (the owning queue drops them first).
        let _ = unsafe { munmap(self.area.cast(), self.len) };
    }
}

/// Waits until the socket `fd` has frames to read, or `timeout`.
pub fn wait_readable(fd: std::os::fd::RawFd, timeout: std::time::Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // SAFETY: `fd` is the caller's open AF_XDP socket, which it holds
    // across this call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let _ = poll(
        &mut fds,
        PollTimeout::try_from(timeout).unwrap_or(PollTimeout::NONE),
    );
}

/// `struct ifreq` with the MTU (`SIOCGIFMTU`).
#[repr(C)]
struct IfreqMtu {
    name: [u8; 16],
    mtu: i32,
    _rest: [u8; 20],
}

/// `struct ifreq` with a pointer (`SIOCETHTOOL`).
#[repr(C)]
struct IfreqData {
    name: [u8; 16],
    data: *mut EthtoolChannels,
    _rest: [u8; 16],
}

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// An interface name as `ifreq` holds it.
fn ifname(name: &str) -> std::io::Result<[u8; 16]> {
    let mut out = [0u8; 16];
    if name.is_empty() || name.len() > 15 || name.contains('\0') {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    out[..name.len()].copy_from_slice(name.as_bytes());
    Ok(out)
}

/// A socket to ask interface ioctls on, in the calling thread's network
/// namespace (which is where `/sys/class/net` may not look).
fn control_socket() -> std::io::Result<socket2::Socket> {
    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
}

/// `name`'s MTU.
pub fn mtu(name: &str) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let sock = control_socket()?;
    let mut req = IfreqMtu {
        name: ifname(name)?,
        mtu: 0,
        _rest: [0; 20],
    };
    // SAFETY: SIOCGIFMTU reads the name and writes the MTU of a
    // `struct ifreq`, which IfreqMtu lays out (40 bytes, as on every
    // 64-bit and 32-bit Linux ABI it is at most).
    let r = unsafe { nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCGIFMTU as _, &mut req) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(req.mtu.max(0) as usize)
}

/// How many receive queues `name` has (ethtool's channels: rx plus
/// combined), or `None` when its driver does not say.
pub fn rx_queues(name: &str) -> std::io::Result<Option<u32>> {
    use std::os::fd::AsRawFd;
    let sock = control_socket()?;
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut req = IfreqData {
        name: ifname(name)?,
        data: &mut channels,
        _rest: [0; 16],
    };
    // SAFETY: SIOCETHTOOL with ETHTOOL_GCHANNELS fills the
    // `struct ethtool_channels` the ifreq points to, which lives until the
    // call returns.
    let r = unsafe { nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCETHTOOL as _, &mut req) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(nix::libc::EOPNOTSUPP) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some((channels.rx_count + channels.combined_count).max(1)))
}
