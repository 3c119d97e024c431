//! Validation of the per-method endpoint keys: `location` (performance),
//! `regions` (geographic) and `subnets` (subnet). Pure functions returning
//! messages a user can act on, with suggestions for near misses.

use std::net::IpAddr;

use crate::geo::{self, Group, Point, regions};
use crate::snapshot::RegionCode;

/// Resolves a `location` region name to a point.
pub fn region_point(name: &str) -> Result<Point, String> {
    if let Some((lat, lon)) = regions::lookup(name) {
        return Ok(Point::new(lat, lon));
    }
    let hint = regions::suggest(name);
    Err(if hint.is_empty() {
        format!(
            "unknown region `{name}`: use an Azure, AWS or Google Cloud region name (e.g. \"westeurope\", \"eu-central-1\", \"europe-west3\") or {{ lat, lon }}"
        )
    } else {
        format!(
            "unknown region `{name}`; did you mean {}?",
            quote_list(&hint)
        )
    })
}

/// Checks `{ lat, lon }`.
pub fn coordinates(lat: f64, lon: f64) -> Result<Point, String> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "lat {lat}, lon {lon} is not a place: latitude is -90..90, longitude -180..180"
        ));
    }
    Ok(Point::new(lat, lon))
}

/// How specific a region code is (higher wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Specificity {
    /// `WORLD`.
    World,
    /// `GEO-xx`.
    Group,
    /// An ISO 3166-1 country.
    Country,
    /// An ISO 3166-2 subdivision.
    Subdivision,
}

/// Parses a `regions` code: `WORLD`, `GEO-xx`, an ISO 3166-1 alpha-2
/// country, or an ISO 3166-2 subdivision.
pub fn region_code(code: &str) -> Result<(RegionCode, Specificity), String> {
    let upper = code.trim().to_ascii_uppercase();
    let packed =
        |s: &str| RegionCode::new(s).ok_or_else(|| format!("`{code}` is not a region code"));
    if upper == "WORLD" {
        return Ok((packed("WORLD")?, Specificity::World));
    }
    if let Some(g) = Group::ALL.iter().find(|g| g.code() == upper) {
        return Ok((packed(g.code())?, Specificity::Group));
    }
    if upper.starts_with("GEO-") {
        let groups: Vec<&str> = Group::ALL.iter().map(|g| g.code()).collect();
        let hint = suggest(&upper, groups.iter().copied());
        return Err(with_hint(
            format!(
                "unknown region group `{code}` (groups: {})",
                groups.join(", ")
            ),
            &hint,
        ));
    }
    if upper.len() == 2 {
        if geo::country(&upper).is_some() {
            return Ok((packed(&upper)?, Specificity::Country));
        }
        if upper == "UK" {
            return Err(
                "unknown country code `UK`; the ISO 3166-1 code of the United Kingdom is `GB`"
                    .into(),
            );
        }
        let hint = suggest(
            &upper,
            geo::COUNTRIES
                .iter()
                .map(|c| std::str::from_utf8(&c.code).unwrap_or("")),
        );
        return Err(with_hint(
            format!("unknown country code `{code}` (ISO 3166-1 alpha-2)"),
            &hint,
        ));
    }
    if let Some((cc, _)) = upper.split_once('-')
        && cc.len() == 2
    {
        if geo::subdivision(&upper).is_some() {
            return Ok((packed(&upper)?, Specificity::Subdivision));
        }
        if geo::country(cc).is_none() {
            return Err(format!("unknown country code `{cc}` in `{code}`"));
        }
        let prefix = format!("{cc}-");
        let hint = suggest(
            &upper,
            geo::SUBDIVISIONS
                .iter()
                .filter(|s| s.code.starts_with(&prefix))
                .map(|s| s.code),
        );
        return Err(with_hint(
            format!("unknown ISO 3166-2 subdivision `{code}`"),
            &hint,
        ));
    }
    let hint = suggest(
        &upper,
        ["WORLD"]
            .into_iter()
            .chain(Group::ALL.iter().map(|g| g.code())),
    );
    Err(with_hint(
        format!(
            "unknown region `{code}`: use WORLD, GEO-xx, a country (IE) or a subdivision (US-CA)"
        ),
        &hint,
    ))
}

fn suggest<'a>(code: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    geo::suggest(code, candidates, 0.75)
}

fn with_hint(msg: String, hint: &[&str]) -> String {
    if hint.is_empty() {
        msg
    } else {
        format!("{msg}; did you mean {}?", quote_list(hint))
    }
}

fn quote_list(items: &[&str]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("`{s}`")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        _ => format!("{} or {}", q[..q.len() - 1].join(", "), q[q.len() - 1]),
    }
}

/// Parses a subnet entry: a CIDR (`10.0.0.0/8`), a range
/// (`198.51.100.10-198.51.100.99`) or a single address; returns the first
/// and last address covered.
pub fn subnet(text: &str) -> Result<(IpAddr, IpAddr), String> {
    let text = text.trim();
    if let Some((a, b)) = text.split_once('-') {
        let (a, b) = (a.trim(), b.trim());
        let first: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let last: IpAddr = b
            .parse()
            .map_err(|_| format!("`{b}` is not an IP address"))?;
        if first.is_ipv4() != last.is_ipv4() {
            return Err(format!("range `{text}` mixes IPv4 and IPv6"));
        }
        if first > last {
            return Err(format!("range `{text}` ends before it starts"));
        }
        return Ok((first, last));
    }
    if text.contains('/') {
        let net: ipnet::IpNet = text.parse().map_err(|_| {
            format!("`{text}` is not a CIDR block (e.g. \"10.0.0.0/8\", \"2001:db8::/32\") or a range (\"a-b\")")
        })?;
        if net.trunc() != net {
            return Err(format!(
                "`{text}` has host bits set; did you mean `{}`?",
                net.trunc()
            ));
        }
        return Ok((net.network(), net.broadcast()));
    }
    let ip: IpAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address, CIDR block or range"))?;
    Ok((ip, ip))
}

pub use crate::snapshot::ip_key;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            subnet("10.0.0.0/8").unwrap(),
            (v4("10.0.0.0"), v4("10.255.255.255"))
        );
        assert_eq!(
            subnet("198.51.100.10-198.51.100.99").unwrap(),
            (v4("198.51.100.10"), v4("198.51.100.99"))
        );
        assert_eq!(
            subnet("2001:db8::/32").unwrap().1,
            v4("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert!(
            subnet("10.0.0.1/8")
                .unwrap_err()
                .contains("did you mean `10.0.0.0/8`")
        );
        assert!(subnet("10.0.0.0/33").is_err());
        assert!(
            subnet("10.0.0.9-10.0.0.1")
                .unwrap_err()
                .contains("ends before")
        );
        assert!(subnet("10.0.0.1-::1").unwrap_err().contains("mixes"));
        assert!(subnet("banana").is_err());
    }

    #[test]
    fn region_codes() {
        assert_eq!(region_code("WORLD").unwrap().1, Specificity::World);
        assert_eq!(region_code("geo-eu").unwrap().1, Specificity::Group);
        assert_eq!(region_code("IE").unwrap().1, Specificity::Country);
        assert_eq!(region_code("US-CA").unwrap().1, Specificity::Subdivision);
        assert!(region_code("GEO-EUR").unwrap_err().contains("GEO-EU"));
        assert!(region_code("UK").unwrap_err().contains("`GB`"));
        assert!(region_code("US-XX").unwrap_err().contains("subdivision"));
        assert!(region_code("QQ").unwrap_err().contains("unknown country"));
        assert!(region_code("WROLD").unwrap_err().contains("WORLD"));
    }

    #[test]
    fn region_names() {
        assert!(region_point("westeurope").is_ok());
        let e = region_point("westeurop").unwrap_err();
        assert!(e.contains("did you mean `westeurope`"), "{e}");
        assert!(region_point("atlantis").unwrap_err().contains("lat, lon"));
        assert!(coordinates(91.0, 0.0).is_err());
    }
}
