//! Message-writing primitives both the answer and online signing use: a
//! leaf below them, so neither imports the other.

/// Largest offset a compression pointer can express.
pub(super) const MAX_POINTER: usize = 0x3FFF;

/// A name written in full somewhere in the message.
#[derive(Clone, Copy)]
pub(super) struct NameAt<'t> {
    /// Where it is written.
    pub(super) offset: usize,
    /// Its lowercase wire form.
    pub(super) wire: &'t [u8],
}

/// Writes `at` as an owner name: a compression pointer to where it is
/// written, or in full when it lies beyond a pointer's reach.
#[inline]
pub(super) fn write_owner(out: &mut Vec<u8>, at: NameAt<'_>) {
    if at.offset <= MAX_POINTER {
        out.extend_from_slice(&(0xC000 | at.offset as u16).to_be_bytes());
    } else {
        out.extend_from_slice(at.wire);
    }
}
