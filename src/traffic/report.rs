//! One profile's Traffic View over a window, as the API returns it (JSON,
//! CSV) and the status page draws it: totals by endpoint and by country
//! (with where each country's queries went), the table of countries and
//! regions by endpoint, and the heaviest client networks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::heavy;
use super::view::{Place, ProfileView, Window};
use crate::geo::{self, GeoDb};
use crate::snapshot::{Profile, Routing, Snapshot};

/// Client networks listed at most.
pub const TOP_NETWORKS: usize = 100;

/// One profile's Traffic View over a window.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The profile's name.
    pub profile: String,
    /// `hour` or `day`.
    pub window: &'static str,
    /// The start of the oldest pane in the window (RFC 3339).
    pub from: String,
    /// Now (RFC 3339).
    pub to: String,
    /// Queries are being recorded (`[traffic] enabled`).
    pub recording: bool,
    /// Queries answered at the profile's name in the window.
    pub queries: u64,
    /// Queries by the endpoint answered, heaviest first.
    pub endpoints: Vec<EndpointRow>,
    /// Queries by client country, heaviest first.
    pub countries: Vec<CountryRow>,
    /// Queries by country, region and endpoint, heaviest first: the table.
    pub locations: Vec<LocationRow>,
    /// The heaviest client networks.
    pub networks: Networks,
    /// Queries not recorded since start because the queue was full (all
    /// profiles).
    pub dropped: u64,
}

/// An endpoint's queries.
#[derive(Debug, Serialize)]
pub struct EndpointRow {
    /// Its name (`child/endpoint` when a nested profile answered); `null`
    /// when no endpoint answered (NODATA, NXDOMAIN, SERVFAIL).
    pub endpoint: Option<String>,
    /// Queries it answered.
    pub queries: u64,
    /// Where it is (performance routing's `location`), for the map.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
}

/// A country's queries and where they went.
#[derive(Debug, Serialize)]
pub struct CountryRow {
    /// ISO 3166-1 alpha-2; `null`: not in the GeoIP database.
    pub country: Option<String>,
    /// Its English name.
    pub name: Option<&'static str>,
    /// Its region group (`GEO-EU`).
    pub group: Option<&'static str>,
    /// Its representative point, for the map.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Queries from it.
    pub queries: u64,
    /// Queries by endpoint answered (`""`: none answered).
    pub to: BTreeMap<String, u64>,
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct LocationRow {
    /// ISO 3166-1 alpha-2; `null`: unknown.
    pub country: Option<String>,
    /// ISO 3166-2 subdivision (`US-CA`); `null`: unknown (country-level
    /// databases have none).
    pub region: Option<&'static str>,
    /// The subdivision's name.
    pub region_name: Option<&'static str>,
    /// The endpoint answered; `null`: none.
    pub endpoint: Option<String>,
    /// Queries.
    pub queries: u64,
}

/// The heaviest (client network, endpoint) pairs, from the Space-Saving
/// sketches of the window's panes.
#[derive(Debug, Serialize)]
pub struct Networks {
    /// Counters per pane (`[traffic] networks`).
    pub k: usize,
    /// Every count below is within this of the truth: the window's
    /// queries divided by `k`.
    pub error_bound: u64,
    /// Heaviest first, at most [`TOP_NETWORKS`].
    pub top: Vec<NetworkRow>,
}

/// A client network's queries to one endpoint.
#[derive(Debug, Serialize)]
pub struct NetworkRow {
    /// `192.0.2.0/24` or `2001:db8:aa00::/56`.
    pub network: String,
    /// Its country, when the GeoIP database knows it.
    pub country: Option<String>,
    /// The endpoint answered; `null`: none.
    pub endpoint: Option<String>,
    /// Estimated queries (never below the truth where the network was
    /// held in every pane).
    pub queries: u64,
    /// The most `queries` can be off by.
    pub error: u64,
}

fn code(cc: [u8; 2]) -> String {
    String::from_utf8_lossy(&cc).into_owned()
}

fn endpoint_name(view: &ProfileView, i: u16) -> Option<String> {
    let name = view.endpoints.get(usize::from(i))?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Where an endpoint of `profile` (or `child/endpoint` of a nested one)
/// is, when its routing knows (performance's `location`).
fn endpoint_point(table: &Snapshot, profile: &Profile, name: &str) -> Option<(f64, f64)> {
    let (p, ep) = match name.rsplit_once('/') {
        Some((child, ep)) => (table.profile_by_name(child)?, ep),
        None => (profile, name),
    };
    let Routing::Performance { points } = &p.routing else {
        return None;
    };
    let i = table.endpoints_of(p).iter().position(|e| &*e.name == ep)?;
    points.get(i).map(geo::Point::lat_lon)
}

/// What a report is built from besides the view.
pub struct Context<'a> {
    /// The running snapshot.
    pub table: &'a Snapshot,
    /// The profile, in it.
    pub profile: &'a Profile,
    /// The GeoIP database, for the networks' countries.
    pub geo: Option<&'a GeoDb>,
    /// Counters per pane.
    pub k: usize,
    /// Recording is on.
    pub recording: bool,
    /// Queries dropped since start.
    pub dropped: u64,
    /// Now (Unix seconds).
    pub now: u32,
}

/// The report of `view` (`None`: the profile saw no queries) over
/// `window`.
pub fn build(view: Option<&ProfileView>, window: Window, cx: &Context<'_>) -> Report {
    let now = cx.now;
    let start = now - now % window.pane();
    let mut from = start.saturating_sub(window.pane() * (window.panes() as u32 - 1));
    let mut report = Report {
        profile: cx.profile.name.as_str().to_string(),
        window: window.as_str(),
        from: String::new(),
        to: crate::clock::rfc3339_seconds(at(now)),
        recording: cx.recording,
        queries: 0,
        endpoints: Vec::new(),
        countries: Vec::new(),
        locations: Vec::new(),
        networks: Networks {
            k: cx.k,
            error_bound: 0,
            top: Vec::new(),
        },
        dropped: cx.dropped,
    };
    if let Some(view) = view {
        let panes = view.panes(window, now);
        if let Some(first) = panes.clone().next() {
            from = from.min(first.start);
        }
        let mut cells: BTreeMap<(u16, Place), u64> = BTreeMap::new();
        for pane in panes.clone() {
            report.queries += pane.queries;
            for (c, n) in &pane.cells {
                *cells.entry((c.endpoint, c.place)).or_default() += n;
            }
        }
        fill(&mut report, view, &cells, cx);
        report.networks.error_bound = report.queries / cx.k.max(1) as u64;
        report.networks.top = heavy::merge(panes.map(|p| &p.networks), TOP_NETWORKS)
            .into_iter()
            .map(|c| {
                let (network, endpoint) = c.key;
                let country = cx
                    .geo
                    .and_then(|g| g.lookup(network.addr()).location)
                    .and_then(|l| l.country)
                    .map(code);
                NetworkRow {
                    network: network.to_string(),
                    country,
                    endpoint: endpoint_name(view, endpoint),
                    queries: c.count,
                    error: c.error,
                }
            })
            .collect();
    }
    report.from = crate::clock::rfc3339_seconds(at(from));
    report
}

/// The totals and the table from the window's cells.
fn fill(
    report: &mut Report,
    view: &ProfileView,
    cells: &BTreeMap<(u16, Place), u64>,
    cx: &Context<'_>,
) {
    let mut by_endpoint: BTreeMap<u16, u64> = BTreeMap::new();
    let mut by_country: BTreeMap<Option<[u8; 2]>, CountryRow> = BTreeMap::new();
    for (&(ep, place), &n) in cells {
        *by_endpoint.entry(ep).or_default() += n;
        let name = endpoint_name(view, ep);
        let row = by_country.entry(place.country).or_insert_with(|| {
            let c = place.country.and_then(|cc| geo::country(&code(cc)));
            CountryRow {
                country: place.country.map(code),
                name: c.map(|c| c.name),
                group: c.map(|c| c.group.code()),
                lat: c.map(|c| c.lat),
                lon: c.map(|c| c.lon),
                queries: 0,
                to: BTreeMap::new(),
            }
        });
        row.queries += n;
        *row.to.entry(name.clone().unwrap_or_default()).or_default() += n;
        let sub = place
            .region
            .and_then(|i| geo::SUBDIVISIONS.get(usize::from(i)));
        report.locations.push(LocationRow {
            country: place.country.map(code),
            region: sub.map(|s| s.code),
            region_name: sub.map(|s| s.name),
            endpoint: name,
            queries: n,
        });
    }
    report.endpoints = by_endpoint
        .into_iter()
        .map(|(ep, n)| {
            let endpoint = endpoint_name(view, ep);
            let point = endpoint
                .as_deref()
                .and_then(|e| endpoint_point(cx.table, cx.profile, e));
            EndpointRow {
                endpoint,
                queries: n,
                lat: point.map(|p| p.0),
                lon: point.map(|p| p.1),
            }
        })
        .collect();
    // Endpoints that got nothing are listed too (the map marks them).
    for (i, e) in cx.table.endpoints_of(cx.profile).iter().enumerate() {
        if !report
            .endpoints
            .iter()
            .any(|r| r.endpoint.as_deref() == Some(&*e.name))
        {
            let point = match &cx.profile.routing {
                Routing::Performance { points } => points.get(i).map(geo::Point::lat_lon),
                _ => None,
            };
            report.endpoints.push(EndpointRow {
                endpoint: Some(e.name.to_string()),
                queries: 0,
                lat: point.map(|p| p.0),
                lon: point.map(|p| p.1),
            });
        }
    }
    report
        .endpoints
        .sort_by(|a, b| b.queries.cmp(&a.queries).then(a.endpoint.cmp(&b.endpoint)));
    report.countries = by_country.into_values().collect();
    report
        .countries
        .sort_by(|a, b| b.queries.cmp(&a.queries).then(a.country.cmp(&b.country)));
    report.locations.sort_by(|a, b| {
        b.queries
            .cmp(&a.queries)
            .then(a.country.cmp(&b.country))
            .then(a.region.cmp(&b.region))
            .then(a.endpoint.cmp(&b.endpoint))
    });
}

fn at(secs: u32) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(secs))
}

/// The report as CSV (RFC 4180): a header, then one row per table row
/// (`kind` = `location`) and per network (`kind` = `network`). Summing
/// `queries` over either kind gives the window's total (networks: of the
/// heaviest only).
pub fn csv(r: &Report) -> String {
    let mut out = String::from("kind,country,region,network,endpoint,queries,error\r\n");
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    for l in &r.locations {
        row(
            &mut out,
            &[
                "location",
                &opt(&l.country),
                l.region.unwrap_or(""),
                "",
                &opt(&l.endpoint),
                &l.queries.to_string(),
                "0",
            ],
        );
    }
    for n in &r.networks.top {
        row(
            &mut out,
            &[
                "network",
                &opt(&n.country),
                "",
                &n.network,
                &opt(&n.endpoint),
                &n.queries.to_string(),
                &n.error.to_string(),
            ],
        );
    }
    out
}

fn row(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", field(f));
    }
    out.push_str("\r\n");
}

/// One CSV field: quoted (quotes doubled) when it holds a comma, a quote
/// or a line break; a text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, a tab or a carriage return first) gets a leading
/// `'`. Names come from configuration files, so they are escaped like
/// anything else.
pub fn field(s: &str) -> std::borrow::Cow<'_, str> {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = s.contains([',', '"', '\n', '\r']);
    if !formula && !quote {
        return s.into();
    }
    let mut t = String::with_capacity(s.len() + 3);
    if quote {
        t.push('"');
    }
    if formula {
        t.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            t.push('"');
        }
        t.push(c);
    }
    if quote {
        t.push('"');
    }
    t.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_escaped() {
        assert_eq!(field("primary"), "primary");
        assert_eq!(field("192.0.2.0/24"), "192.0.2.0/24");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1+2,3"), "\"'-1+2,3\"");
        assert_eq!(field("@x"), "'@x");
        assert_eq!(field(""), "");
    }

    #[test]
    fn a_csv_row_per_location_and_network() {
        let r = Report {
            profile: "p.".into(),
            window: "hour",
            from: String::new(),
            to: String::new(),
            recording: true,
            queries: 3,
            endpoints: Vec::new(),
            countries: Vec::new(),
            locations: vec![LocationRow {
                country: Some("GB".into()),
                region: Some("GB-ENG"),
                region_name: Some("England"),
                endpoint: Some("eu,west".into()),
                queries: 3,
            }],
            networks: Networks {
                k: 256,
                error_bound: 0,
                top: vec![NetworkRow {
                    network: "81.2.69.0/24".into(),
                    country: Some("GB".into()),
                    endpoint: None,
                    queries: 3,
                    error: 0,
                }],
            },
            dropped: 0,
        };
        assert_eq!(
            csv(&r),
            "kind,country,region,network,endpoint,queries,error\r\n\
             location,GB,GB-ENG,,\"eu,west\",3,0\r\n\
             network,GB,,81.2.69.0/24,,3,0\r\n"
        );
    }
}
