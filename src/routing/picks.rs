//! What a method chooses into: fixed-capacity sets of endpoint indexes (a
//! leaf: the method files fill them; choosing never allocates).

/// Most endpoints one answer can carry (`max_answers` is at most 10).
pub const MAX_PICKS: usize = 10;

/// The endpoints chosen for one answer, as indexes within the profile.
/// Fixed capacity: choosing never allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Picks {
    len: u8,
    idx: [u32; MAX_PICKS],
}

impl Picks {
    /// Empties the set.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Adds an endpoint index (ignored when full).
    #[inline]
    pub fn push(&mut self, i: u32) {
        if (self.len as usize) < MAX_PICKS {
            self.idx[self.len as usize] = i;
            self.len += 1;
        }
    }

    /// The chosen indexes, in answer order.
    #[inline]
    pub fn as_slice(&self) -> &[u32] {
        &self.idx[..self.len as usize]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u32] {
        &mut self.idx[..self.len as usize]
    }

    /// True when nothing was chosen.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Candidate endpoints for one client, most specific first (at most four).
#[derive(Default)]
pub(crate) struct Candidates {
    len: usize,
    idx: [u32; 4],
}

impl Candidates {
    pub(crate) fn push(&mut self, i: u32) {
        if self.len < self.idx.len() && !self.as_slice().contains(&i) {
            self.idx[self.len] = i;
            self.len += 1;
        }
    }

    pub(crate) fn as_slice(&self) -> &[u32] {
        &self.idx[..self.len]
    }
}
