//! Stage: zones and their static records, and the names they define.

use super::*;

/// A zone's NS set: each host with where it was written. Wrong entries
/// are reported and left out.
struct NsSet {
    rrs: Vec<WireRr>,
    hosts: Vec<(DomainName, At)>,
}

/// `ns`: at least one host name, relative names completed by the origin.
fn ns_set(
    r: &mut Report,
    src: usize,
    p: &str,
    z: &RawZone,
    origin: &DomainName,
    ttl: u32,
) -> NsSet {
    let mut set = NsSet {
        rrs: Vec::new(),
        hosts: Vec::new(),
    };
    if z.ns.get_ref().is_empty() {
        r.err(
            src,
            &z.ns,
            &format!("{p}.ns"),
            "at least one name server is required",
        );
    }
    for (i, ns) in z.ns.get_ref().iter().enumerate() {
        let field = format!("{p}.ns[{i}]");
        match DomainName::parse(ns.get_ref(), Some(origin)) {
            Ok(host) if host.is_hostname() => match WireRr::ns(ttl, &host) {
                Ok(rr) => {
                    set.rrs.push(rr);
                    set.hosts.push((host, r.at(src, ns, &field)));
                }
                Err(e) => r.err(src, ns, &field, e),
            },
            Ok(_) => r.err(
                src,
                ns,
                &field,
                format!("`{}` is not a host name", ns.get_ref()),
            ),
            Err(e) => r.err(src, ns, &field, e),
        }
    }
    set
}

/// A zone's SOA as configured (defaults for what is left out).
struct Soa {
    rr: WireRr,
    serial: u32,
    /// `soa.serial` was given; else it follows the content.
    serial_configured: bool,
    minimum: u32,
}

/// `soa`: the primary name server defaults to the first NS host, the
/// mailbox to `hostmaster` at the origin. `None` when it cannot be built
/// (reported).
fn soa(
    r: &mut Report,
    src: usize,
    p: &str,
    z: &RawZone,
    origin: &DomainName,
    ttl: u32,
    first_ns: Option<DomainName>,
) -> Option<Soa> {
    let soa = z.soa.as_ref().map(|s| s.get_ref());
    // No name server was usable (reported with `ns`): the primary has no
    // default, which says nothing new.
    let no_ns = first_ns.is_none();
    let name = |r: &mut Report, v: Option<&Spanned<String>>, field: &str, default| match v {
        None => Some(default),
        Some(v) => {
            let parsed = if field.ends_with("rname") {
                mailbox(v.get_ref())
            } else {
                DomainName::parse(v.get_ref(), Some(origin))
            };
            match parsed {
                Ok(n) => Some(Some(n)),
                Err(e) => {
                    r.err(src, v, field, e);
                    None
                }
            }
        }
    };
    let mname = name(
        r,
        soa.and_then(|s| s.mname.as_ref()),
        &format!("{p}.soa.mname"),
        first_ns,
    );
    let hostmaster = DomainName::parse("hostmaster", Some(origin)).ok();
    let rname = name(
        r,
        soa.and_then(|s| s.rname.as_ref()),
        &format!("{p}.soa.rname"),
        hostmaster,
    );
    let mut k = r.section(src);
    let (mut serial, mut refresh, mut retry, mut expire, mut minimum) =
        (0, 3600, 600, 1_209_600, 60);
    if let Some(s) = soa {
        let f = |key: &str| format!("{p}.soa.{key}");
        k.int(&s.serial, &f("serial"), (0, u32::MAX as i64), &mut serial);
        k.int(&s.refresh, &f("refresh"), (0, MAX_TTL), &mut refresh);
        k.int(&s.retry, &f("retry"), (0, MAX_TTL), &mut retry);
        k.int(&s.expire, &f("expire"), (0, MAX_TTL), &mut expire);
        k.int(&s.minimum, &f("minimum"), (0, MAX_TTL), &mut minimum);
    }
    let numbers = k.done(());
    // A name that did not parse is reported already.
    let (mname, rname) = (mname?, rname?);
    let (Some(mname), Some(rname)) = (mname, rname) else {
        if !no_ns {
            r.err(
                src,
                &z.origin,
                &format!("{p}.soa"),
                "cannot build the SOA record",
            );
        }
        return None;
    };
    numbers?;
    match WireRr::soa(ttl, &mname, &rname, serial, refresh, retry, expire, minimum) {
        Ok(rr) => Some(Soa {
            rr,
            serial,
            serial_configured: soa.is_some_and(|s| s.serial.is_some()),
            minimum,
        }),
        Err(e) => {
            r.err(src, &z.origin, &format!("{p}.soa"), e);
            None
        }
    }
}

impl Loader<'_> {
    /// One `[[zones]]` entry: its origin, SOA and NS (its records come
    /// later, once every origin is known).
    pub(super) fn zone(&mut self, src: usize, z: &Spanned<RawZone>) -> Option<ZoneHead> {
        let zi = self.table.zones.len();
        let p = format!("zones[{zi}]");
        let z = z.get_ref();
        let origin = self.origin(src, &p, z)?;
        let ttl = match &z.ttl {
            Some(t) => self
                .r
                .int(src, t, &format!("{p}.ttl"), 0, MAX_TTL)
                .unwrap_or(3600),
            None => 3600,
        };
        let ns = ns_set(&mut self.r, src, &p, z, &origin, ttl);
        let first_ns = ns.hosts.first().map(|(h, _)| h.clone());
        let ns_ats: Vec<At> = ns.hosts.iter().map(|(_, at)| at.clone()).collect();
        for (host, at) in ns.hosts {
            self.ns_hosts.push(NsHost {
                zone: zi as ZoneId,
                host,
                at,
            });
        }
        let soa = soa(&mut self.r, src, &p, z, &origin, ttl, first_ns)?;
        let zone_at = self.r.at(src, &z.origin, &format!("{p}.origin"));
        let (signer, key_sets) = match &z.dnssec {
            Some(d) => match self.zone_dnssec(src, zi, &origin, ttl, d) {
                Some((signer, sets)) => (Some(signer), sets),
                None => (None, Vec::new()),
            },
            None => (None, Vec::new()),
        };
        self.table.zones.push(Zone {
            origin: origin.clone(),
            apex: NodeId::MAX, // set in finish()
            negative_soa: soa.rr.with_ttl(ttl.min(soa.minimum)),
            serial: soa.serial,
            serial_configured: soa.serial_configured,
            digest: 0,
            signer,
            parent: None,
            parent_ds: Vec::new(),
        });
        let mut apex_sets = vec![
            StaticSet {
                set: RrSet {
                    rtype: rtype::SOA,
                    rrs: vec![soa.rr],
                },
                ats: vec![zone_at.clone()],
            },
            StaticSet {
                set: RrSet {
                    rtype: rtype::NS,
                    rrs: ns.rrs,
                },
                ats: ns_ats,
            },
        ];
        apex_sets.extend(key_sets);
        self.define(origin.clone(), zi as ZoneId, apex_sets, None, zone_at);
        Some(ZoneHead {
            id: zi as ZoneId,
            origin,
            ttl,
        })
    }

    /// A zone's origin: a name, not configured twice.
    fn origin(&mut self, src: usize, p: &str, z: &RawZone) -> Option<DomainName> {
        let origin = match DomainName::parse(z.origin.get_ref(), None) {
            Ok(o) => o,
            Err(e) => {
                self.r.err(src, &z.origin, &format!("{p}.origin"), e);
                return None;
            }
        };
        if self.table.zones.iter().any(|other| other.origin == origin) {
            self.r.err(
                src,
                &z.origin,
                &format!("{p}.origin"),
                format!("zone {origin} is configured twice"),
            );
            return None;
        }
        Some(origin)
    }

    /// Record `i` of `zone`.
    pub(super) fn record(&mut self, src: usize, head: &ZoneHead, i: usize, r: &Spanned<RawRecord>) {
        let (zone, origin, zone_ttl) = (head.id, &head.origin, head.ttl);
        let p = format!("zones[{zone}].records[{i}]");
        let r = r.get_ref();
        let name = match DomainName::parse(r.name.get_ref(), Some(origin)) {
            Ok(n) => n,
            Err(e) => return self.r.err(src, &r.name, &format!("{p}.name"), e),
        };
        if !name.is_within(origin) {
            return self.r.err(
                src,
                &r.name,
                &format!("{p}.name"),
                format!("{name} is not inside zone {origin}"),
            );
        }
        let owner_zone = self.table.zone_of(&name);
        if owner_zone != Some(zone) {
            let other = owner_zone
                .map(|z| self.table.zones[z as usize].origin.to_string())
                .unwrap_or_default();
            return self.r.err(
                src,
                &r.name,
                &format!("{p}.name"),
                format!("{name} belongs to zone {other}; define it there"),
            );
        }
        let t = r.rtype.get_ref().to_ascii_uppercase();
        if t == "NS" && name == *origin {
            return self.r.err(
                src,
                &r.rtype,
                &format!("{p}.type"),
                "the apex NS records come from the zone's `ns` list; NS records elsewhere delegate a name",
            );
        }
        if matches!(t.as_str(), "NS" | "DS") && name.wire().starts_with(b"\x01*") {
            return self.r.err(
                src,
                &r.name,
                &format!("{p}.name"),
                format!("a wildcard cannot be delegated ({t} at {name}); delegate each name"),
            );
        }
        let ttl = match &r.ttl {
            Some(v) => match self.r.int(src, v, &format!("{p}.ttl"), 0, MAX_TTL) {
                Some(t) => t,
                None => return,
            },
            None => zone_ttl,
        };
        let wire = match rr::parse_record(&t, r.value.get_ref(), origin, ttl) {
            Ok(w) => w,
            Err(e) if e.starts_with("unsupported record type") => {
                return self.r.err(src, &r.rtype, &format!("{p}.type"), e);
            }
            Err(e) => return self.r.err(src, &r.value, &format!("{p}.value"), e),
        };
        let at = self.r.at(src, &r.name, &format!("{p}.name"));
        let code = wire.rtype();
        if let Some(&idx) = self.pending_index.get(name.wire()) {
            let existing = &mut self.pending[idx];
            if existing.profile.is_some() {
                let msg = format!("{name} is already the name of a routing profile");
                return self.r.error(&at, msg);
            }
            let sets = &mut existing.records;
            let is_apex = name == *origin;
            let has_cname = sets.iter().any(|s| s.set.rtype == rtype::CNAME);
            if code == rtype::CNAME && (is_apex || !sets.is_empty()) {
                let msg = if is_apex {
                    "a CNAME cannot be at the zone apex (it holds SOA and NS)".to_string()
                } else if has_cname {
                    format!("{name} has more than one CNAME record")
                } else {
                    format!("{name} has other records; a CNAME must be the only record at its name")
                };
                return self.r.error(&at, msg);
            }
            if has_cname {
                let msg = format!(
                    "{name} has a CNAME record; a CNAME must be the only record at its name"
                );
                return self.r.error(&at, msg);
            }
            match sets.iter_mut().find(|s| s.set.rtype == code) {
                Some(StaticSet { set, ats }) => {
                    if set.rrs.iter().any(|x| x.rdata() == wire.rdata()) {
                        let msg = format!("duplicate {t} record for {name}");
                        return self.r.error(&at, msg);
                    }
                    set.rrs.push(wire);
                    ats.push(at);
                }
                None => sets.push(StaticSet {
                    set: RrSet {
                        rtype: code,
                        rrs: vec![wire],
                    },
                    ats: vec![at],
                }),
            }
        } else {
            let set = RrSet {
                rtype: code,
                rrs: vec![wire],
            };
            let sets = vec![StaticSet {
                set,
                ats: vec![at.clone()],
            }];
            self.define(name, zone, sets, None, at);
        }
    }

    pub(super) fn define(
        &mut self,
        name: DomainName,
        zone: ZoneId,
        records: Vec<StaticSet>,
        profile: Option<ProfileId>,
        at: At,
    ) {
        self.pending_index
            .insert(name.wire().into(), self.pending.len());
        self.pending.push(Pending {
            name,
            zone,
            records,
            profile,
            at,
        });
    }

    // -------------------------------------------------------------- profiles
}

/// The SOA's RNAME (RFC 1035 §3.3.13) from `soa.rname`: an e-mail
/// address (`john.doe@example.com`: the mailbox `john\.doe.example.com.`,
/// dots in the local part escaped), or an absolute name ending in a dot.
/// Anything else is an error, never completed with the zone's origin: a
/// relative `hostmaster.example.com` was meant as an address far more
/// often than as `hostmaster.example.com.<origin>`.
fn mailbox(text: &str) -> Result<DomainName, String> {
    let text = text.trim();
    let Some((local, domain)) = text.split_once('@') else {
        if text.ends_with('.') {
            return DomainName::parse(text, None);
        }
        let (local, domain) = text.split_once('.').unwrap_or((text, "example.com"));
        return Err(format!(
            "`{text}` is not an absolute name: write it as an e-mail address (`{local}@{domain}`) \
             or as an absolute name ending in a dot (`{local}.{domain}.`)"
        ));
    };
    if domain.contains('@') {
        return Err(format!("`{text}` has more than one `@`"));
    }
    if local.is_empty() {
        return Err(format!("`{text}`: the part before `@` is empty"));
    }
    if domain.trim_end_matches('.').is_empty() {
        return Err(format!("`{text}`: the part after `@` is empty"));
    }
    // The local part is one label: its dots (and backslashes) escaped.
    let mut name = String::with_capacity(text.len() + 8);
    for c in local.chars() {
        if matches!(c, '.' | '\\') {
            name.push('\\');
        }
        name.push(c);
    }
    name.push('.');
    name.push_str(domain);
    if !name.ends_with('.') {
        name.push('.');
    }
    DomainName::parse(&name, None)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::mailbox;

    #[test]
    fn rname_is_an_address_or_an_absolute_name() {
        let text = |s: &str| mailbox(s).map(|n| n.as_str().to_string());
        assert_eq!(
            text("hostmaster@example.com").unwrap(),
            "hostmaster.example.com."
        );
        assert_eq!(
            text("john.doe@example.com.").unwrap(),
            "john\\.doe.example.com."
        );
        assert_eq!(
            mailbox("john.doe@example.com").unwrap().wire(),
            b"\x08john.doe\x07example\x03com\x00"
        );
        assert_eq!(text("h.example.com.").unwrap(), "h.example.com.");
        let err = text("h.example.com").unwrap_err();
        assert!(
            err.contains("(`h@example.com`)") && err.contains("(`h.example.com.`)"),
            "{err}"
        );
        assert!(text("h").unwrap_err().contains("`h@example.com`"));
        assert!(text("a@b@c.").unwrap_err().contains("more than one"));
        assert!(text("@c.").unwrap_err().contains("before `@`"));
        assert!(text("a@.").unwrap_err().contains("after `@`"));
    }

    use crate::snapshot::Lookup;

    #[test]
    fn static_records_become_nodes_with_their_empty_parents() {
        let c = load_text("", &[]).unwrap();
        let t = &c.table;
        let ns1 = crate::proto::name::DomainName::parse("ns1.tm.example.test.", None).unwrap();
        let Lookup::Found(id) = t.lookup(ns1.wire()) else {
            panic!("ns1 not found")
        };
        assert!(!t.nodes[id as usize].records.is_empty());
        let none = crate::proto::name::DomainName::parse("nope.tm.example.test.", None).unwrap();
        assert!(matches!(t.lookup(none.wire()), Lookup::NxDomain(_)));
    }
}
