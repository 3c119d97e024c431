//! Stage: `[rum]`, real user measurements: the public listener's
//! settings and keys; then, once zones are read, the wildcard that answers
//! token names (`*.<rum.zone>`), and once profiles are read, that each
//! key's profiles exist and have something to measure.

use super::*;
use crate::config::keys;
use crate::config::raw::{RawRum, RawRumKey};
use crate::config::{RumKey, RumSettings};

/// Fewest characters in a key: shorter ones are guessed.
const MIN_KEY_LEN: usize = 16;
/// Most keys.
const MAX_KEYS: usize = 64;

/// `[rum]`, checked: every key read, the settings standing only if every
/// one was right.
pub(super) fn rum(
    r: &mut Report,
    src: usize,
    raw: &Spanned<RawRum>,
    base: &Path,
) -> Option<RumSettings> {
    let c = raw.get_ref();
    let mut k = r.section(src);
    let listen = match c.listen.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            k.r.err(
                src,
                &c.listen,
                "rum.listen",
                format!(
                    "`{}` is not an address with a port, e.g. \"0.0.0.0:443\"",
                    c.listen.get_ref()
                ),
            );
            None
        }
    };
    let listen = k.take(listen);
    let zone = match DomainName::parse(c.zone.get_ref(), None) {
        Ok(z) => Some(z.to_string().to_ascii_lowercase()),
        Err(e) => {
            k.r.err(src, &c.zone, "rum.zone", e);
            None
        }
    };
    let zone = k.take(zone);
    let answer = answers(k.r, src, c);
    let answer = k.take(answer);
    let tls = match (&c.tls_cert, &c.tls_key) {
        (Some(cert), Some(key)) => {
            let (cp, kp) = (base.join(cert.get_ref()), base.join(key.get_ref()));
            let certs = crate::health::tls::load_certs(&cp)
                .map_err(|e| k.r.err(src, cert, "rum.tls_cert", e))
                .ok();
            let key_ok = crate::health::tls::load_key(&kp)
                .map_err(|e| k.r.err(src, key, "rum.tls_key", e))
                .ok();
            k.take(certs.and(key_ok).map(|_| Some((cp, kp))))
        }
        (None, None) => Some(None),
        (Some(v), None) | (None, Some(v)) => {
            k.r.err(
                src,
                v,
                "rum.tls_cert",
                "HTTPS needs both `tls_cert` and `tls_key`",
            );
            k.take(None)
        }
    };
    let mut beacons_per_second = keys::RUM_BEACONS_PER_SECOND.default_int() as u32;
    k.key(
        &c.beacons_per_second,
        &keys::RUM_BEACONS_PER_SECOND,
        &mut beacons_per_second,
    );
    let max_body = match &c.max_body {
        Some(s) => k.r.size(src, s, "rum.max_body", 256, 1 << 20),
        None => Some(crate::config::DEFAULT_RUM_MAX_BODY),
    };
    let max_body = k.take(max_body);
    let lifetime = k.r.bounded(
        src,
        c.token_lifetime.as_ref(),
        None,
        &keys::RUM_TOKEN_LIFETIME,
    );
    let lifetime = k.take(lifetime);
    let proxies = trusted_proxies(k.r, src, c);
    let proxies = k.take(proxies);
    let keys = rum_keys(k.r, src, c);
    let keys = k.take(keys);
    k.done(())?;
    Some(RumSettings {
        listen: listen?,
        zone: zone?,
        answer: answer?,
        tls: tls?,
        beacons_per_second,
        max_body: max_body?,
        token_lifetime: lifetime?,
        trusted_proxies: proxies?,
        keys: keys?,
    })
}

/// `answer`: one or more addresses, none twice.
fn answers(r: &mut Report, src: usize, c: &RawRum) -> Option<Vec<std::net::IpAddr>> {
    let mut out = Vec::new();
    let mut ok = true;
    if c.answer.get_ref().is_empty() {
        r.err(
            src,
            &c.answer,
            "rum.answer",
            "at least one address: where token names resolve (normally this listener's public address)",
        );
        ok = false;
    }
    for (i, a) in c.answer.get_ref().iter().enumerate() {
        match a.get_ref().trim().parse::<std::net::IpAddr>() {
            Ok(ip) if !out.contains(&ip) => out.push(ip),
            Ok(ip) => {
                r.err(
                    src,
                    a,
                    &format!("rum.answer[{i}]"),
                    format!("{ip} is listed twice"),
                );
                ok = false;
            }
            Err(_) => {
                r.err(
                    src,
                    a,
                    &format!("rum.answer[{i}]"),
                    format!("`{}` is not an IP address", a.get_ref()),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `trusted_proxies`: networks.
fn trusted_proxies(r: &mut Report, src: usize, c: &RawRum) -> Option<Vec<ipnet::IpNet>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, n) in c
        .trusted_proxies
        .iter()
        .flat_map(|l| l.get_ref())
        .enumerate()
    {
        let text = n.get_ref().trim();
        let net = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match net {
            Ok(net) => out.push(net.trunc()),
            Err(_) => {
                r.err(
                    src,
                    n,
                    &format!("rum.trusted_proxies[{i}]"),
                    format!(
                        "`{text}` is not a network: write e.g. \"10.0.0.0/8\" or \"2001:db8::1\""
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `[[rum.keys]]`: at least one; each a secret of 16 characters or more,
/// unique, measuring one or more profiles (checked against the profiles
/// once they are read).
fn rum_keys(r: &mut Report, src: usize, c: &RawRum) -> Option<Vec<RumKey>> {
    let mut ok = true;
    if c.keys.is_empty() {
        r.err(
            src,
            &c.listen,
            "rum.keys",
            "no [[rum.keys]]: each page embeds a key that names the profiles it measures",
        );
        ok = false;
    }
    if c.keys.len() > MAX_KEYS {
        r.err(
            src,
            &c.keys[MAX_KEYS],
            "rum.keys",
            format!("at most {MAX_KEYS} keys"),
        );
        ok = false;
    }
    let mut out: Vec<RumKey> = Vec::new();
    for (i, raw) in c.keys.iter().enumerate() {
        let RawRumKey { key, profiles } = raw.get_ref();
        let field = format!("rum.keys[{i}].key");
        // Not warned about when written in the file, as other secrets are:
        // the key is in the operator's pages anyway. Never logged or shown.
        let resolved = key
            .get_ref()
            .resolve(&base_dir(&r.sources[src].path))
            .map_err(|e| r.err(src, key, &field, e))
            .ok();
        let secret = match resolved {
            Some(s) if s.expose().trim().len() < MIN_KEY_LEN => {
                r.err(src, key, &field, format!("a key is at least {MIN_KEY_LEN} characters (letters, digits, `-`, `_`); make one with `head -c 18 /dev/urandom | base64 | tr '+/' '-_'`"));
                None
            }
            Some(s)
                if !s
                    .expose()
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                r.err(
                    src,
                    key,
                    &field,
                    "a key is letters, digits, `-` and `_` only (it goes in a page and a URL)",
                );
                None
            }
            Some(s) if out.iter().any(|k| k.key.expose() == s.expose().trim()) => {
                r.err(src, key, &field, "the same key is given twice");
                None
            }
            s => s.map(|s| crate::secret::Secret::from(s.expose().trim().to_string())),
        };
        let field = format!("rum.keys[{i}].profiles");
        if profiles.get_ref().is_empty() {
            r.err(
                src,
                profiles,
                &field,
                "name at least one profile to measure",
            );
            ok = false;
        }
        let names = profiles
            .get_ref()
            .iter()
            .map(|p| crate::snapshot::normalise_profile(p.get_ref()))
            .collect();
        match secret {
            Some(key) => out.push(RumKey {
                key,
                profiles: names,
            }),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

impl Loader<'_> {
    /// Defines `*.<rum.zone>` with the `answer` addresses, inside the zone
    /// that holds it; returns the wildcard's name.
    pub(super) fn rum_wildcard(
        &mut self,
        src: usize,
        raw: &Spanned<RawRum>,
        rum: &RumSettings,
    ) -> Option<DomainName> {
        let c = raw.get_ref();
        let zone_name = match DomainName::parse(&rum.zone, None) {
            Ok(z) => z,
            Err(e) => {
                self.r.err(src, &c.zone, "rum.zone", e);
                return None;
            }
        };
        let Some(zone) = self.table.zone_of(&zone_name) else {
            let msg = format!(
                "{zone_name} is not inside a zone this server answers: token names must reach it (use a name such as \"rum.<your zone>.\", or add a [[zones]] for it)"
            );
            self.r.err(src, &c.zone, "rum.zone", msg);
            return None;
        };
        let wildcard = match DomainName::parse(&format!("*.{zone_name}"), None) {
            Ok(w) => w,
            Err(e) => {
                self.r.err(src, &c.zone, "rum.zone", e);
                return None;
            }
        };
        let at = self.r.at(src, &c.zone, "rum.zone");
        if self.pending_index.contains_key(wildcard.wire()) {
            let msg = format!("{wildcard} is already defined: the token names need it");
            self.r.error(&at, msg);
            return None;
        }
        let origin = self.table.zones[zone as usize].origin.clone();
        let mut sets: Vec<StaticSet> = Vec::new();
        for ip in &rum.answer {
            let t = if ip.is_ipv4() { "A" } else { "AAAA" };
            let wire = match rr::parse_record(
                t,
                &ip.to_string(),
                &origin,
                crate::config::RUM_ANSWER_TTL,
            ) {
                Ok(w) => w,
                Err(e) => {
                    self.r.error(&at, e);
                    return None;
                }
            };
            match sets.iter_mut().find(|s| s.set.rtype == wire.rtype()) {
                Some(s) => {
                    s.set.rrs.push(wire);
                    s.ats.push(at.clone());
                }
                None => sets.push(StaticSet {
                    set: RrSet {
                        rtype: wire.rtype(),
                        rrs: vec![wire],
                    },
                    ats: vec![at.clone()],
                }),
            }
        }
        self.define(wildcard.clone(), zone, sets, None, at);
        Some(wildcard)
    }

    /// After every profile is read: the wildcard's node, and each key's
    /// profiles exist and have an endpoint with `rum_url`.
    pub(super) fn rum_links(
        &mut self,
        src: usize,
        raw: &Spanned<RawRum>,
        rum: &RumSettings,
        wildcard: &DomainName,
    ) {
        self.table.rum_wildcard = self.table.node_id(wildcard.wire());
        let c = raw.get_ref();
        for (i, (key, raw_key)) in rum.keys.iter().zip(&c.keys).enumerate() {
            for (j, (name, raw_name)) in key
                .profiles
                .iter()
                .zip(raw_key.get_ref().profiles.get_ref())
                .enumerate()
            {
                let field = format!("rum.keys[{i}].profiles[{j}]");
                let Some(p) = self.table.profile_by_name(name) else {
                    self.r
                        .err(src, raw_name, &field, format!("no profile is named {name}"));
                    continue;
                };
                if !self
                    .table
                    .endpoints_of(p)
                    .iter()
                    .any(|e| e.rum_url.is_some())
                {
                    let msg = format!(
                        "profile {name} has no endpoint with `rum_url`: nothing to measure"
                    );
                    self.r.err(src, raw_name, &field, msg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{errors, load_text, profile};

    const KEYED: &str =
        "[[rum.keys]]\nkey = \"page-key-0123456789\"\nprofiles = [\"p.tm.example.test.\"]\n";

    fn rum(zone: &str, answer: &str, keys: &str) -> String {
        format!("[rum]\nlisten = \"127.0.0.1:0\"\nzone = \"{zone}\"\nanswer = [{answer}]\n{keys}")
    }

    fn measured() -> String {
        profile(
            "routing = \"priority\"\n[[endpoints]]\nname = \"eu\"\ntarget = \"192.0.2.1\"\nrum_url = \"https://eu.example.com/rum.txt\"\n",
        )
    }

    #[test]
    fn token_names_get_a_wildcard_in_their_zone() {
        let c = load_text(
            &rum(
                "rum.tm.example.test.",
                "\"192.0.2.80\", \"2001:db8::80\"",
                KEYED,
            ),
            &[("p.toml", &measured())],
        )
        .unwrap();
        let w = c.table.rum_wildcard.expect("the wildcard");
        assert_eq!(
            c.table.nodes[w as usize].name.to_string(),
            "*.rum.tm.example.test."
        );
        let r = c.settings.rum.unwrap();
        assert_eq!(r.zone, "rum.tm.example.test.");
        assert_eq!(r.beacons_per_second, 5);
        assert_eq!(r.max_body, 4096);
        assert_eq!(r.token_lifetime, std::time::Duration::from_secs(120));
        assert_eq!(r.keys[0].profiles, ["p.tm.example.test."]);
        assert_eq!(
            c.table.endpoints[0].rum_url.as_deref(),
            Some("https://eu.example.com/rum.txt")
        );
    }

    #[test]
    fn mistakes_are_named() {
        let p = [("p.toml", measured())];
        let p: Vec<(&str, &str)> = p.iter().map(|(n, b)| (*n, b.as_str())).collect();
        let cases = [
            (
                rum("rum.example.org.", "\"192.0.2.80\"", KEYED),
                "rum.zone: rum.example.org. is not inside a zone",
            ),
            (
                rum("rum.tm.example.test.", "\"nope\"", KEYED),
                "rum.answer[0]: `nope` is not an IP address",
            ),
            (
                rum("rum.tm.example.test.", "\"192.0.2.80\"", ""),
                "rum.keys: no [[rum.keys]]",
            ),
            (
                rum(
                    "rum.tm.example.test.",
                    "\"192.0.2.80\"",
                    "[[rum.keys]]\nkey = \"short\"\nprofiles = [\"p.tm.example.test.\"]\n",
                ),
                "rum.keys[0].key: a key is at least 16 characters",
            ),
            (
                rum(
                    "rum.tm.example.test.",
                    "\"192.0.2.80\"",
                    "[[rum.keys]]\nkey = \"page-key-0123456789\"\nprofiles = [\"q.tm.example.test.\"]\n",
                ),
                "rum.keys[0].profiles[0]: no profile is named q.tm.example.test.",
            ),
            (
                format!(
                    "{}beacons_per_second = 0\n",
                    rum("rum.tm.example.test.", "\"192.0.2.80\"", "")
                ) + KEYED,
                "rum.beacons_per_second: 0 is out of range",
            ),
        ];
        for (server, want) in cases {
            let got = errors(load_text(&server, &p));
            assert!(got.iter().any(|e| e.starts_with(want)), "{want}\n{got:?}");
        }
        // Nothing to measure.
        let bare = profile(
            "routing = \"priority\"\n[[endpoints]]\nname = \"eu\"\ntarget = \"192.0.2.1\"\n",
        );
        let got = errors(load_text(
            &rum("rum.tm.example.test.", "\"192.0.2.80\"", KEYED),
            &[("p.toml", &bare)],
        ));
        assert!(
            got.iter()
                .any(|e| e.contains("has no endpoint with `rum_url`")),
            "{got:?}"
        );
        // A URL that is none.
        let bad = profile(
            "routing = \"priority\"\n[[endpoints]]\nname = \"eu\"\ntarget = \"192.0.2.1\"\nrum_url = \"ftp://x/y\"\n",
        );
        let got = errors(load_text("", &[("p.toml", &bad)]));
        assert!(
            got.iter()
                .any(|e| e.starts_with("endpoints[0].rum_url: `ftp://x/y` is not an absolute")),
            "{got:?}"
        );
    }
}
