//! Traffic View: per profile, where the answered queries came from
//! (country and region from GeoIP, client network) and which endpoint
//! each got, over the last hour and the last day.
//!
//! The answer path only ever pushes a small fixed-size [`Record`] into a
//! bounded lock-free queue ([`Recorder`]); when the queue is full the
//! record is counted as dropped, never waited for. Each receive loop
//! coalesces runs of equal records first ([`Pending`]), so a resolver
//! asking one name again and again costs one push a second. A background
//! task drains the queue every second (sooner when it is a quarter full)
//! into [`view::Views`]: counts by (country, region, endpoint) in
//! five-minute panes for the hour and hourly panes for the day, and a
//! Space-Saving sketch ([`heavy`]) of client networks per pane. Memory is
//! fixed whatever the number of clients: the queue, `k` counters per
//! sketch, and at most [`view::MAX_CELLS`] count cells per pane.
//!
//! Privacy: a network is an IPv4 /24 or an IPv6 /56
//! ([`crate::netblock::Network`]), never an address; nothing is kept
//! longer than a day, and nothing is written to disk.

pub mod heavy;
pub mod report;
pub mod view;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::netblock::Network;
use crate::snapshot::{EndpointId, ProfileId};

/// Records the queue holds (about 1.3 MB): at a drain a second, room for
/// 32,768 runs of equal queries a second, with a drain as soon as a
/// quarter is taken.
pub const QUEUE: usize = 32_768;

/// Counters per network sketch unless `[traffic] networks` says (the
/// configuration's default: `config::keys::TRAFFIC_NETWORKS`).
pub const DEFAULT_NETWORKS: usize = 256;

/// `endpoint` of a query at a profile's name that no endpoint answered
/// (NODATA, NXDOMAIN, SERVFAIL by `on_all_down`).
pub const NO_ENDPOINT: EndpointId = EndpointId::MAX;

/// One run of equal answers, as the answer path records it: which
/// snapshot, profile and endpoint, the client network, how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The snapshot the ids index, by address (never dereferenced: the
    /// drain resolves ids only against a snapshot it holds whose address
    /// this is).
    pub table: usize,
    /// The profile whose name was asked.
    pub profile: ProfileId,
    /// The endpoint answered first ([`NO_ENDPOINT`]: none), in
    /// `Snapshot::endpoints` (a nested profile's endpoint when the answer
    /// came from one).
    pub endpoint: EndpointId,
    /// The client's network: the ECS network when its source prefix names
    /// one, else the resolver's.
    pub network: Network,
    /// Queries in the run.
    pub count: u32,
}

impl Record {
    /// Same snapshot, profile, endpoint and network (the count aside).
    #[inline]
    fn same(&self, other: &Record) -> bool {
        self.table == other.table
            && self.profile == other.profile
            && self.endpoint == other.endpoint
            && self.network == other.network
    }
}

/// The answer path's side: the queue, and whether to record at all.
/// Lives in [`crate::state::Serving`]; the receive loops push, the drain
/// task pops.
#[derive(Debug)]
pub struct Recorder {
    /// `[traffic] enabled`: written at start and by reloads.
    on: AtomicBool,
    queue: ArrayQueue<Record>,
    /// Queries not recorded because the queue was full.
    dropped: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(QUEUE)
    }
}

impl Recorder {
    /// A recorder with a queue of `capacity` records, on.
    pub fn new(capacity: usize) -> Recorder {
        Recorder {
            on: AtomicBool::new(true),
            queue: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether answers are recorded.
    #[inline]
    pub fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Turns recording on or off (`[traffic] enabled`).
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// Queues `r`; when the queue is full, counts its queries as dropped.
    /// Never blocks, never allocates.
    #[inline]
    pub fn push(&self, r: Record) {
        if let Err(r) = self.queue.push(r) {
            self.dropped
                .fetch_add(u64::from(r.count), Ordering::Relaxed);
        }
    }

    /// The next queued record, if any (the drain).
    pub fn pop(&self) -> Option<Record> {
        self.queue.pop()
    }

    /// Records the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the drain should run before its second is up: a quarter
    /// of the queue is taken.
    pub fn quarter_full(&self) -> bool {
        self.queue.len() >= self.queue.capacity() / 4
    }

    /// Queries dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Bytes the queue holds (fixed at creation).
    pub fn bytes(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Record>()
    }
}

/// A receive loop's run of equal answers not yet queued: an answer equal
/// to the last adds one to its count; another queues the run and starts a
/// new one. A run also goes into the queue once it has lived into a new
/// second (looked at every [`CHECK_EVERY`] batches: [`Pending::after_batch`])
/// and when the loop finds nothing to receive ([`Pending::flush`]), so the
/// view lags a resolver asking one name over and over by a few seconds at
/// most, and costs it one push a second.
#[derive(Debug, Default)]
pub struct Pending {
    run: Option<Record>,
    /// The second the run was first seen at a batch's end.
    seen: Option<u32>,
    /// Batches since the clock was last read.
    batches: u8,
}

/// Batches between two looks at the clock while a run waits (a coarse
/// clock read costs about as much as recording a dozen answers).
pub const CHECK_EVERY: u8 = 16;

impl Pending {
    /// Adds one answer; queues the previous run when this one differs.
    #[inline]
    pub fn add(&mut self, recorder: &Recorder, r: Record) {
        match &mut self.run {
            Some(run) if run.same(&r) && run.count < u32::MAX => run.count += 1,
            run => {
                if let Some(prev) = run.replace(r) {
                    recorder.push(prev);
                }
                self.seen = None;
            }
        }
    }

    /// True when a run waits.
    #[inline]
    pub fn waiting(&self) -> bool {
        self.run.is_some()
    }

    /// After a batch: every [`CHECK_EVERY`] batches with a run waiting,
    /// reads the coarse clock and [`Pending::settle`]s.
    #[inline]
    pub fn after_batch(&mut self, recorder: &Recorder) {
        if self.run.is_none() {
            return;
        }
        self.batches = self.batches.wrapping_add(1);
        if self.batches.is_multiple_of(CHECK_EVERY) {
            self.settle(recorder, crate::clock::unix_secs_now());
        }
    }

    /// At second `now`: queues the run if it was already waiting in an
    /// earlier second.
    #[inline]
    pub fn settle(&mut self, recorder: &Recorder, now: u32) {
        match self.seen {
            _ if self.run.is_none() => {}
            None => self.seen = Some(now),
            Some(s) if s != now => self.flush(recorder),
            Some(_) => {}
        }
    }

    /// Queues the run, if any.
    #[inline]
    pub fn flush(&mut self, recorder: &Recorder) {
        self.seen = None;
        if let Some(r) = self.run.take() {
            recorder.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(net: u32, count: u32) -> Record {
        Record {
            table: 1,
            profile: 0,
            endpoint: 0,
            network: Network::V4(net),
            count,
        }
    }

    #[test]
    fn runs_of_equal_answers_are_one_record() {
        let r = Recorder::new(16);
        let mut p = Pending::default();
        for net in [1, 1, 1, 2, 2, 1] {
            p.add(&r, rec(net, 1));
        }
        p.flush(&r);
        let got: Vec<(Network, u32)> = std::iter::from_fn(|| r.pop())
            .map(|x| (x.network, x.count))
            .collect();
        assert_eq!(
            got,
            [
                (Network::V4(1), 3),
                (Network::V4(2), 2),
                (Network::V4(1), 1)
            ]
        );
    }

    #[test]
    fn a_run_is_queued_once_it_lives_into_a_new_second() {
        let r = Recorder::new(16);
        let mut p = Pending::default();
        p.add(&r, rec(1, 1));
        p.settle(&r, 100);
        p.add(&r, rec(1, 1));
        p.settle(&r, 100);
        assert!(r.is_empty() && p.waiting());
        p.add(&r, rec(1, 1));
        p.settle(&r, 101);
        assert_eq!(r.pop().map(|x| x.count), Some(3));
        assert!(!p.waiting());
        // A new run starts its own clock.
        p.add(&r, rec(1, 1));
        p.add(&r, rec(2, 1));
        p.settle(&r, 101);
        assert_eq!(r.pop().map(|x| x.count), Some(1));
        p.settle(&r, 101);
        assert!(r.is_empty());
        p.flush(&r);
        assert_eq!(r.pop().map(|x| x.network), Some(Network::V4(2)));
    }

    #[test]
    fn a_record_is_40_bytes() {
        assert!(std::mem::size_of::<Record>() <= 40);
    }

    #[test]
    fn a_full_queue_counts_drops_and_never_blocks() {
        let r = Recorder::new(4);
        for i in 0..10 {
            r.push(rec(i, 2));
        }
        assert_eq!(r.len(), 4);
        assert!(r.quarter_full());
        assert_eq!(r.dropped(), 12);
    }
}
