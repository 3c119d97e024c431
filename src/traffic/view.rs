//! The drain's side: the records of the last hour and day, per profile,
//! in panes of fixed width that roll over as time passes.
//!
//! Each profile has two rings of panes: twelve of five minutes (the hour)
//! and twenty-four of an hour (the day). A pane holds the queries it saw
//! by (endpoint, country, region), at most [`MAX_CELLS`] such cells, and a
//! Space-Saving sketch of (client network, endpoint) with `k` counters.
//! A window's figures are its panes added together; a pane leaves the
//! window once it is a whole window old. Memory per profile is at most
//! 36 panes × (`MAX_CELLS` cells + `k` counters), whatever the number of
//! clients ([`Views::bytes_at_most`]).

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::heavy::SpaceSaving;
use super::{NO_ENDPOINT, Record, Recorder};
use crate::geo::GeoDb;
use crate::netblock::Network;
use crate::snapshot::Snapshot;

/// Count cells (endpoint, country, region) one pane holds before it gets
/// coarser: past that a new cell's region is dropped, then its country
/// (counted as unknown), so the total stays exact and the pane holds at
/// most this plus one cell per endpoint.
pub const MAX_CELLS: usize = 512;

/// Endpoints one profile's view names at most (renamed endpoints
/// accumulate across reloads until their panes expire); the rest are
/// counted under the last.
const MAX_ENDPOINTS: usize = 1024;

/// Snapshots kept for queued records after reloads replaced them.
pub const RETIRED: usize = 16;

/// Locations cached by the drain (network -> country, region) before the
/// cache is cleared.
const LOCATIONS: usize = 16_384;

/// A window of the Traffic View.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last hour, in five-minute panes.
    Hour,
    /// The last day, in hourly panes.
    Day,
}

impl Window {
    /// Seconds per pane.
    pub fn pane(self) -> u32 {
        match self {
            Window::Hour => 300,
            Window::Day => 3600,
        }
    }

    /// Panes in the window.
    pub fn panes(self) -> usize {
        match self {
            Window::Hour => 12,
            Window::Day => 24,
        }
    }

    /// `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// From `hour` or `day`.
    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "hour" => Some(Window::Hour),
            "day" => Some(Window::Day),
            _ => None,
        }
    }
}

/// Where a client network is: country code and subdivision index
/// ([`crate::geo::SUBDIVISIONS`]), each when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Place {
    /// ISO 3166-1 alpha-2, when known.
    pub country: Option<[u8; 2]>,
    /// Index into [`crate::geo::SUBDIVISIONS`], when known.
    pub region: Option<u16>,
}

/// One count cell's key: an endpoint of the view and a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// Index into the view's endpoint names.
    pub endpoint: u16,
    /// Where the clients were.
    pub place: Place,
}

/// The figures of one pane.
#[derive(Clone, Debug)]
pub struct Pane {
    /// Its first second (Unix time, a multiple of its width).
    pub start: u32,
    /// Queries in it.
    pub queries: u64,
    /// Queries by cell.
    pub cells: FxHashMap<Cell, u64>,
    /// The heaviest (client network, endpoint index) pairs.
    pub networks: SpaceSaving<(Network, u16)>,
}

impl Pane {
    fn new(start: u32, k: usize) -> Pane {
        Pane {
            start,
            queries: 0,
            cells: FxHashMap::default(),
            networks: SpaceSaving::new(k),
        }
    }

    fn add(&mut self, cell: Cell, network: Network, n: u64) {
        self.queries += n;
        let cell = if self.cells.len() < MAX_CELLS || self.cells.contains_key(&cell) {
            cell
        } else {
            let coarser = Cell {
                place: Place {
                    region: None,
                    ..cell.place
                },
                ..cell
            };
            if self.cells.contains_key(&coarser) {
                coarser
            } else {
                Cell {
                    endpoint: cell.endpoint,
                    place: Place::default(),
                }
            }
        };
        *self.cells.entry(cell).or_default() += n;
        self.networks.add((network, cell.endpoint), n);
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Pane>()
            + self.cells.capacity() * (std::mem::size_of::<(Cell, u64)>() + 1)
            + self.networks.bytes()
    }
}

/// The panes of one window, oldest first.
#[derive(Clone, Debug)]
struct Ring {
    window: Window,
    panes: VecDeque<Pane>,
}

impl Ring {
    fn new(window: Window) -> Ring {
        Ring {
            window,
            panes: VecDeque::new(),
        }
    }

    /// Drops the panes that left the window by `now`.
    fn expire(&mut self, now: u32) {
        let span = self.window.pane() * self.window.panes() as u32;
        while self
            .panes
            .front()
            .is_some_and(|p| p.start.saturating_add(span) <= now)
        {
            self.panes.pop_front();
        }
    }

    /// The pane that holds `now`, made if needed.
    fn pane(&mut self, now: u32, k: usize) -> &mut Pane {
        self.expire(now);
        let start = now - now % self.window.pane();
        if self.panes.back().is_none_or(|p| p.start < start) {
            self.panes.push_back(Pane::new(start, k));
        }
        // A clock that stepped back: the newest pane takes it.
        let last = self.panes.len() - 1;
        &mut self.panes[last]
    }

    /// The panes in the window at `now`.
    fn current(&self, now: u32) -> impl Iterator<Item = &Pane> + Clone {
        let span = self.window.pane() * self.window.panes() as u32;
        self.panes
            .iter()
            .filter(move |p| p.start.saturating_add(span) > now)
    }
}

/// One profile's view.
#[derive(Clone, Debug)]
pub struct ProfileView {
    /// The profile's name.
    pub name: Box<str>,
    /// Endpoint names, indexed by [`Cell::endpoint`]; the empty name is
    /// "no endpoint answered".
    pub endpoints: Vec<Box<str>>,
    hour: Ring,
    day: Ring,
}

impl ProfileView {
    fn new(name: &str) -> ProfileView {
        ProfileView {
            name: name.into(),
            endpoints: Vec::new(),
            hour: Ring::new(Window::Hour),
            day: Ring::new(Window::Day),
        }
    }

    fn endpoint_index(&mut self, name: &str) -> u16 {
        if let Some(i) = self.endpoints.iter().position(|e| &**e == name) {
            return i as u16;
        }
        if self.endpoints.len() >= MAX_ENDPOINTS {
            return (MAX_ENDPOINTS - 1) as u16;
        }
        self.endpoints.push(name.into());
        (self.endpoints.len() - 1) as u16
    }

    /// The panes of `window` at `now`, oldest first.
    pub fn panes(&self, window: Window, now: u32) -> impl Iterator<Item = &Pane> + Clone {
        match window {
            Window::Hour => self.hour.current(now),
            Window::Day => self.day.current(now),
        }
    }

    fn is_empty(&self) -> bool {
        self.hour.panes.is_empty() && self.day.panes.is_empty()
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<ProfileView>()
            + self.endpoints.iter().map(|e| e.len() + 16).sum::<usize>()
            + self
                .hour
                .panes
                .iter()
                .chain(&self.day.panes)
                .map(Pane::bytes)
                .sum::<usize>()
    }
}

/// What a record's ids resolve to in the views: the profile view and the
/// endpoint's index in it.
type Resolved = (usize, u16);

/// Every profile's view, and what the drain keeps to fill them.
pub struct Views {
    /// `[traffic] networks`: counters per network sketch.
    k: usize,
    views: Vec<ProfileView>,
    /// Queries since start by profile view and country: the metrics.
    totals: FxHashMap<(usize, Option<[u8; 2]>), u64>,
    /// The snapshots records may name: the newest the drain loaded, and
    /// those a reload replaced (records queued before a reload name them)
    /// with the drains each is kept for.
    table: Option<Arc<Snapshot>>,
    retired: Vec<(Arc<Snapshot>, u8)>,
    /// (snapshot, profile, endpoint) -> where it is counted.
    resolved: FxHashMap<(usize, u32, u32), Resolved>,
    /// The GeoIP database the locations came from (its address) and the
    /// locations of networks seen.
    geo_tag: usize,
    places: FxHashMap<Network, Place>,
    /// Records whose snapshot was already gone (two reloads within a
    /// drain): not counted.
    pub stale: u64,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("k", &self.k)
            .field("profiles", &self.views.len())
            .finish()
    }
}

impl Views {
    /// Empty views with `k` counters per network sketch.
    pub fn new(k: usize) -> Views {
        Views {
            k: k.max(1),
            views: Vec::new(),
            totals: FxHashMap::default(),
            table: None,
            retired: Vec::new(),
            resolved: FxHashMap::default(),
            geo_tag: 0,
            places: FxHashMap::default(),
            stale: 0,
        }
    }

    /// Counters per network sketch.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Sets `k`: when it changes, what was counted is forgotten (the
    /// sketches' bound would no longer hold).
    pub fn set_k(&mut self, k: usize) {
        let k = k.max(1);
        if k != self.k {
            let totals = std::mem::take(&mut self.totals);
            *self = Views::new(k);
            self.totals = totals;
        }
    }

    /// Forgets everything counted (`[traffic] enabled = false`), the
    /// metrics' totals aside.
    pub fn clear(&mut self) {
        for v in &mut self.views {
            v.hour.panes.clear();
            v.day.panes.clear();
        }
    }

    /// Moves every queued record into the views, at `now`; `table` is the
    /// running snapshot and `geo` the GeoIP database. Returns the records
    /// taken.
    pub fn drain(
        &mut self,
        recorder: &Recorder,
        table: &Arc<Snapshot>,
        geo: Option<&Arc<GeoDb>>,
        now: u32,
    ) -> usize {
        self.see(table, geo);
        let mut n = 0;
        while let Some(r) = recorder.pop() {
            n += 1;
            self.add(r, geo.map(|g| &**g), now);
        }
        self.expire(now);
        n
    }

    /// Keeps `table`, which a reload replaced, for the records that name
    /// it (queued, or still in a receive loop's run): for the next two
    /// drains. At most [`RETIRED`] are kept (a reload storm's oldest go:
    /// their records count as stale).
    pub fn retire(&mut self, table: Arc<Snapshot>) {
        if self.retired.len() >= RETIRED {
            self.retired.remove(0);
        }
        self.retired.push((table, 3));
    }

    /// Keeps the snapshot and database records name, and lets go of the
    /// snapshots retired two drains ago (their records were drained).
    fn see(&mut self, table: &Arc<Snapshot>, geo: Option<&Arc<GeoDb>>) {
        for r in &mut self.retired {
            r.1 = r.1.saturating_sub(1);
        }
        self.retired.retain(|r| r.1 > 0);
        if self.table.as_ref().map(Arc::as_ptr) != Some(Arc::as_ptr(table))
            && let Some(old) = self.table.replace(table.clone())
        {
            self.retire(old);
        }
        // Ids of a snapshot no longer held must not resolve (its address
        // may be another's).
        let held: Vec<usize> = self.tables().map(|t| Arc::as_ptr(t) as usize).collect();
        self.resolved.retain(|k, _| held.contains(&k.0));
        let tag = geo.map_or(0, |g| Arc::as_ptr(g) as usize);
        if tag != self.geo_tag {
            self.geo_tag = tag;
            self.places.clear();
        }
    }

    /// The snapshots records may name.
    fn tables(&self) -> impl Iterator<Item = &Arc<Snapshot>> {
        self.table.iter().chain(self.retired.iter().map(|r| &r.0))
    }

    /// Counts one record.
    fn add(&mut self, r: Record, geo: Option<&GeoDb>, now: u32) {
        let Some((view, endpoint)) = self.resolve(&r) else {
            self.stale += u64::from(r.count);
            return;
        };
        let place = self.place(r.network, geo);
        let n = u64::from(r.count);
        let k = self.k;
        let v = &mut self.views[view];
        let cell = Cell { endpoint, place };
        v.hour.pane(now, k).add(cell, r.network, n);
        v.day.pane(now, k).add(cell, r.network, n);
        *self.totals.entry((view, place.country)).or_default() += n;
    }

    /// The view and endpoint index a record's ids name.
    fn resolve(&mut self, r: &Record) -> Option<Resolved> {
        let key = (r.table, r.profile, r.endpoint);
        if let Some(&found) = self.resolved.get(&key) {
            return Some(found);
        }
        let table = self
            .tables()
            .find(|t| Arc::as_ptr(t) as usize == r.table)?
            .clone();
        let profile = table.profiles.get(r.profile as usize)?;
        let endpoint: String = if r.endpoint == NO_ENDPOINT {
            String::new()
        } else {
            let ep = table.endpoints.get(r.endpoint as usize)?;
            if ep.profile == r.profile {
                ep.name.to_string()
            } else {
                // Answered by a nested profile: named with it.
                let child = table.profiles.get(ep.profile as usize)?;
                format!("{}/{}", child.name.as_str(), ep.name)
            }
        };
        let name = profile.name.as_str();
        let view = match self.views.iter().position(|v| &*v.name == name) {
            Some(i) => i,
            None => {
                self.views.push(ProfileView::new(name));
                self.views.len() - 1
            }
        };
        let found = (view, self.views[view].endpoint_index(&endpoint));
        self.resolved.insert(key, found);
        Some(found)
    }

    /// Where `network` is, by the GeoIP database (cached).
    fn place(&mut self, network: Network, geo: Option<&GeoDb>) -> Place {
        let Some(db) = geo else {
            return Place::default();
        };
        if let Some(p) = self.places.get(&network) {
            return *p;
        }
        let found = db.lookup(network.addr()).location;
        let place = Place {
            country: found.and_then(|l| l.country),
            region: found.and_then(|l| l.subdivision),
        };
        if self.places.len() >= LOCATIONS {
            self.places.clear();
        }
        self.places.insert(network, place);
        place
    }

    /// Drops the panes that left their window and the views left empty
    /// of profiles no longer configured.
    fn expire(&mut self, now: u32) {
        for v in &mut self.views {
            v.hour.expire(now);
            v.day.expire(now);
        }
        let table = self.table.clone();
        let configured = |name: &str| {
            table
                .as_ref()
                .is_some_and(|t| t.profile_by_name(name).is_some())
        };
        if self
            .views
            .iter()
            .any(|v| v.is_empty() && !configured(&v.name))
        {
            let old = std::mem::take(&mut self.views);
            let mut moved = FxHashMap::default();
            for (i, v) in old.into_iter().enumerate() {
                if !v.is_empty() || configured(&v.name) {
                    moved.insert(i, self.views.len());
                    self.views.push(v);
                }
            }
            self.resolved.clear();
            self.totals = std::mem::take(&mut self.totals)
                .into_iter()
                .filter_map(|((v, c), n)| Some(((*moved.get(&v)?, c), n)))
                .collect();
        }
    }

    /// The view of the profile `name`, if it saw queries.
    pub fn profile(&self, name: &str) -> Option<&ProfileView> {
        self.views.iter().find(|v| &*v.name == name)
    }

    /// Queries since start by profile and country (`None`: unknown).
    pub fn totals(&self) -> impl Iterator<Item = (&str, Option<[u8; 2]>, u64)> {
        self.totals
            .iter()
            .map(|(&(v, c), &n)| (&*self.views[v].name, c, n))
    }

    /// Bytes held now by the views and the drain's caches.
    pub fn bytes(&self) -> usize {
        self.views.iter().map(ProfileView::bytes).sum::<usize>()
            + self.totals.capacity() * 40
            + self.resolved.capacity() * 32
            + self.places.capacity() * (std::mem::size_of::<(Network, Place)>() + 1)
    }

    /// The most one profile's view can hold with `k` counters per
    /// sketch: 36 panes, each with [`MAX_CELLS`] cells and `k` counters.
    pub fn bytes_at_most(k: usize) -> usize {
        let cells = (MAX_CELLS * 8 / 7 + 1).next_power_of_two();
        let pane = std::mem::size_of::<Pane>()
            + cells * (std::mem::size_of::<(Cell, u64)>() + 1)
            + SpaceSaving::<(Network, u16)>::bytes_at_most(k);
        (Window::Hour.panes() + Window::Day.panes()) * pane
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Arc<Snapshot> {
        Arc::new(
            crate::config::load(&crate::fuzzing::example_dir().join("switchyard.toml"))
                .expect("example config")
                .table,
        )
    }

    fn record(t: &Arc<Snapshot>, profile: &str, endpoint: &str, net: &str, count: u32) -> Record {
        let p = t.profile_by_name(profile).unwrap();
        let pid = t.profiles.iter().position(|x| x.name == p.name).unwrap() as u32;
        let eid = t
            .endpoints_of(p)
            .iter()
            .position(|e| &*e.name == endpoint)
            .unwrap() as u32
            + p.endpoints.start;
        Record {
            table: Arc::as_ptr(t) as usize,
            profile: pid,
            endpoint: eid,
            network: net.parse().unwrap(),
            count,
        }
    }

    fn queries(v: &Views, profile: &str, w: Window, now: u32) -> u64 {
        v.profile(profile)
            .map_or(0, |p| p.panes(w, now).map(|p| p.queries).sum())
    }

    #[test]
    fn panes_roll_over_and_leave_their_window() {
        let t = table();
        let r = Recorder::new(64);
        let mut v = Views::new(8);
        let name = "todoapi.tm.example.test.";
        // A whole hour.
        let t0 = 1_800_000_000;
        r.push(record(&t, name, "primary", "192.0.2.0/24", 5));
        assert_eq!(v.drain(&r, &t, None, t0), 1);
        // Six minutes on: a second five-minute pane, the same hour pane.
        r.push(record(&t, name, "primary", "192.0.2.0/24", 2));
        v.drain(&r, &t, None, t0 + 360);
        let p = v.profile(name).unwrap();
        assert_eq!(p.panes(Window::Hour, t0 + 360).count(), 2);
        assert_eq!(p.panes(Window::Day, t0 + 360).count(), 1);
        assert_eq!(queries(&v, name, Window::Hour, t0 + 360), 7);
        // An hour on, the first pane has left the hour but not the day.
        let later = t0 + 3600;
        v.drain(&r, &t, None, later);
        assert_eq!(queries(&v, name, Window::Hour, later), 2);
        assert_eq!(queries(&v, name, Window::Day, later), 7);
        // A day on, nothing is left.
        let day = t0 + 86_400 + 3600;
        v.drain(&r, &t, None, day);
        assert_eq!(queries(&v, name, Window::Day, day), 0);
        assert!(v.profile(name).unwrap().is_empty());
        // The metrics' totals stay.
        assert_eq!(v.totals().map(|x| x.2).sum::<u64>(), 7);
    }

    #[test]
    fn records_of_a_snapshot_no_longer_held_are_not_counted() {
        let (a, b, c) = (table(), table(), table());
        let r = Recorder::new(64);
        let mut v = Views::new(8);
        let name = "todoapi.tm.example.test.";
        r.push(record(&a, name, "primary", "192.0.2.0/24", 1));
        v.drain(&r, &a, None, 1000);
        // Reloads (two within one drain: the API, then the file watch)
        // retire what they replace: records that name them still count.
        v.retire(a.clone());
        v.retire(b.clone());
        r.push(record(&a, name, "primary", "192.0.2.0/24", 1));
        r.push(record(&b, name, "primary", "192.0.2.0/24", 1));
        v.drain(&r, &c, None, 1001);
        assert_eq!(queries(&v, name, Window::Hour, 1001), 3);
        // Two drains on, a retired snapshot is let go: what names it is
        // stale.
        v.drain(&r, &c, None, 1002);
        v.drain(&r, &c, None, 1003);
        r.push(record(&a, name, "primary", "192.0.2.0/24", 1));
        v.drain(&r, &c, None, 1004);
        assert_eq!(queries(&v, name, Window::Hour, 1004), 3);
        assert_eq!(v.stale, 1);
    }

    /// The figure the README gives: a profile's view, worst case, at the
    /// default k.
    #[test]
    fn a_profile_holds_at_most_two_megabytes_at_the_default_k() {
        let most = Views::bytes_at_most(crate::traffic::DEFAULT_NETWORKS);
        assert!(most < 2 << 20, "{most}");
        assert!(most > 1 << 20, "{most}");
    }

    #[test]
    fn cells_are_bounded_and_the_total_stays_exact() {
        let mut p = Pane::new(0, 4);
        let mut total = 0;
        for i in 0..(MAX_CELLS as u16 * 3) {
            let cell = Cell {
                endpoint: 0,
                place: Place {
                    country: Some([b'A' + (i % 26) as u8, b'A' + (i / 26 % 26) as u8]),
                    region: Some(i),
                },
            };
            p.add(cell, Network::V4(u32::from(i)), 2);
            total += 2;
        }
        assert!(p.cells.len() <= MAX_CELLS + 1, "{}", p.cells.len());
        assert_eq!(p.cells.values().sum::<u64>(), total);
        assert_eq!(p.queries, total);
        assert_eq!(p.networks.counters().len(), 4);
    }
}
