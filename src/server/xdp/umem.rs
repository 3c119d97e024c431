//! The AF_XDP frame memory shared with the kernel: the crate's one module
//! allowed `unsafe` (architecture::unsafe_code_stays_in_umem).
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
