//! Tiny GeoIP databases written at test time with `mmdb-writer`, in both
//! schemas Switchyard reads.

use std::path::Path;

use mmdb_writer::Writer;
use serde::Serialize;

/// (network, country, subdivision code, latitude, longitude)
pub const PLACES: &[(&str, &str, &str, f64, f64)] = &[
    ("81.2.69.0/24", "GB", "ENG", 51.51, -0.13),
    ("89.160.20.0/24", "SE", "AB", 59.33, 18.07),
    ("1.2.3.0/24", "AU", "NSW", -33.87, 151.21),
    ("8.8.8.0/24", "US", "CA", 37.39, -122.08),
    ("9.9.0.0/16", "US", "NY", 40.71, -74.01),
    ("200.160.0.0/20", "BR", "SP", -23.55, -46.63),
    ("2001:db8:e000::/40", "DE", "BY", 48.14, 11.58),
    ("127.0.0.0/8", "IE", "D", 53.35, -6.26),
    ("::1/128", "IE", "D", 53.35, -6.26),
];

#[derive(Serialize)]
struct Iso<'a> {
    iso_code: &'a str,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

/// MaxMind GeoIP2 City schema.
#[derive(Serialize)]
struct City<'a> {
    country: Iso<'a>,
    subdivisions: Vec<Iso<'a>>,
    location: Location,
}

/// DB-IP Lite / ip-location-db flat schema (floats stored as f32).
#[derive(Serialize)]
struct Flat<'a> {
    country_code: &'a str,
    latitude: f32,
    longitude: f32,
    state1: &'a str,
}

/// ip-location-db country-only schema.
#[derive(Serialize)]
struct CountryOnly<'a> {
    country_code: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    City,
    Flat,
    CountryOnly,
}

fn state_name(cc: &str, sub: &str) -> &'static str {
    match (cc, sub) {
        ("US", "CA") => "California",
        ("US", "NY") => "New York",
        ("GB", "ENG") => "England",
        ("AU", "NSW") => "New South Wales",
        ("DE", "BY") => "Bayern",
        _ => "Nowhere",
    }
}

/// Writes a database of [`PLACES`] in `schema` to `path`.
pub fn write(path: &Path, schema: Schema) {
    let mut w = Writer::new(match schema {
        Schema::City => "GeoIP2-City",
        Schema::Flat => "DBIP-City-Lite",
        Schema::CountryOnly => "geo-whois-asn-country",
    });
    for &(net, cc, sub, lat, lon) in PLACES {
        let net: ipnet::IpNet = net.parse().unwrap();
        match schema {
            Schema::City => w
                .insert(
                    net,
                    &City {
                        country: Iso { iso_code: cc },
                        subdivisions: vec![Iso { iso_code: sub }],
                        location: Location {
                            latitude: lat,
                            longitude: lon,
                        },
                    },
                )
                .unwrap(),
            Schema::Flat => w
                .insert(
                    net,
                    &Flat {
                        country_code: cc,
                        latitude: lat as f32,
                        longitude: lon as f32,
                        state1: state_name(cc, sub),
                    },
                )
                .unwrap(),
            Schema::CountryOnly => w.insert(net, &CountryOnly { country_code: cc }).unwrap(),
        }
    }
    std::fs::write(path, w.to_bytes().unwrap()).unwrap();
}
