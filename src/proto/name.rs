//! Domain names as the answer path needs them: lowercase wire form for
//! hashing and comparison, presentation form for logs and the admin API.

use std::fmt;

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

/// Longest domain name in wire form (RFC 1035 §2.3.4).
pub const MAX_WIRE_LEN: usize = 255;

/// An absolute domain name, validated and normalised once at load time.
///
/// Names compare and hash by their lowercase wire form: DNS names are
/// case-insensitive everywhere (lookups, the state file, the API, the CLI),
/// whatever case the operator wrote.
#[derive(Clone)]
pub struct DomainName {
    /// Uncompressed wire form, ASCII-lowercased; the key of every name lookup.
    wire: Box<[u8]>,
    /// Presentation form with the trailing dot, as written by the operator
    /// (case preserved, escapes normalised).
    text: Box<str>,
}

impl PartialEq for DomainName {
    fn eq(&self, other: &Self) -> bool {
        self.wire == other.wire
    }
}

impl Eq for DomainName {}

impl std::hash::Hash for DomainName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.wire.hash(state);
    }
}

impl DomainName {
    /// Parses a name in presentation format. A name without a trailing dot is
    /// relative to `origin` when one is given (zone-file rules, `@` is the
    /// origin itself) and absolute otherwise.
    pub fn parse(text: &str, origin: Option<&DomainName>) -> Result<DomainName, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty name".into());
        }
        if text == "@" {
            return origin
                .cloned()
                .ok_or_else(|| "`@` is only allowed inside a zone".to_string());
        }
        let name = Name::from_ascii(text).map_err(|e| format!("not a valid domain name: {e}"))?;
        let name = if name.is_fqdn() {
            name
        } else if let Some(origin) = origin {
            let origin = Name::from_ascii(&*origin.text).map_err(|e| format!("bad origin: {e}"))?;
            name.append_domain(&origin)
                .map_err(|e| format!("name too long: {e}"))?
        } else {
            let mut name = name;
            name.set_fqdn(true);
            name
        };
        Self::from_hickory(&name)
    }

    fn from_hickory(name: &Name) -> Result<DomainName, String> {
        let mut wire = Vec::with_capacity(name.len() + 2);
        {
            let mut enc = BinEncoder::new(&mut wire);
            enc.set_name_encoding(NameEncoding::UncompressedLowercase);
            name.emit(&mut enc)
                .map_err(|e| format!("cannot encode name: {e}"))?;
        }
        if wire.len() > MAX_WIRE_LEN {
            return Err(format!("name is {} bytes long (at most 255)", wire.len()));
        }
        let mut text = name.to_ascii();
        if !text.ends_with('.') {
            text.push('.');
        }
        Ok(DomainName {
            wire: wire.into_boxed_slice(),
            text: text.into_boxed_str(),
        })
    }

    /// The root name `.`.
    pub fn root() -> DomainName {
        DomainName {
            wire: Box::new([0]),
            text: ".".into(),
        }
    }

    /// Lowercase uncompressed wire form.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Presentation form with trailing dot.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        labels(&self.wire).count()
    }

    /// True when `self` equals `zone` or lies below it.
    pub fn is_within(&self, zone: &DomainName) -> bool {
        is_suffix(&self.wire, &zone.wire)
    }

    /// The parent name (one label removed), or `None` for the root.
    pub fn parent(&self) -> Option<DomainName> {
        let first = *self.wire.first()? as usize;
        if first == 0 {
            return None;
        }
        let wire: Box<[u8]> = self.wire[first + 1..].into();
        let text = match self.text.find('.') {
            // Escaped dots are rare enough that re-rendering is fine here.
            _ if self.text.contains('\\') => render(&wire),
            Some(i) if i + 1 < self.text.len() => self.text[i + 1..].into(),
            _ => ".".into(),
        };
        Some(DomainName { wire, text })
    }

    /// True when the name is a valid host name (RFC 952/1123 letters, digits,
    /// hyphens; underscores are accepted for service labels), with at least
    /// two labels and a top-level label that is not all digits.
    pub fn is_hostname(&self) -> bool {
        let all: Vec<&[u8]> = labels(&self.wire).collect();
        if all.len() < 2 {
            return false;
        }
        let host_label = |l: &&[u8]| {
            !l.is_empty()
                && l.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
                && l.first() != Some(&b'-')
                && l.last() != Some(&b'-')
        };
        all.iter().all(host_label)
            && !all
                .last()
                .is_some_and(|tld| tld.iter().all(u8::is_ascii_digit))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.text)
    }
}

/// Iterates the labels of an uncompressed wire name (without the root).
pub fn labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let len = *wire.get(pos)? as usize;
        if len == 0 {
            return None;
        }
        let label = wire.get(pos + 1..pos + 1 + len)?;
        pos += 1 + len;
        Some(label)
    })
}

/// True when wire name `name` ends with wire name `suffix` on a label boundary.
pub fn is_suffix(name: &[u8], suffix: &[u8]) -> bool {
    if suffix.len() > name.len() {
        return false;
    }
    let mut pos = 0;
    loop {
        if name.len() - pos == suffix.len() {
            return name[pos..] == *suffix;
        }
        match name.get(pos) {
            Some(&len) if len != 0 => pos += 1 + len as usize,
            _ => return false,
        }
        if pos > name.len() {
            return false;
        }
    }
}

/// Renders a wire name in presentation format (for names that came off the
/// wire and were never parsed from text).
pub fn render(wire: &[u8]) -> Box<str> {
    let mut out = String::with_capacity(wire.len() + 1);
    for label in labels(wire) {
        for &c in label {
            match c {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(c as char);
                }
                0x21..=0x7e => out.push(c as char),
                _ => out.push_str(&format!("\\{c:03}")),
            }
        }
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out.into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> DomainName {
        DomainName::parse(s, None).unwrap()
    }

    #[test]
    fn wire_is_lowercase_text_keeps_case() {
        let name = n("TodoApi.TM.example.test.");
        assert_eq!(name.wire()[..8], *b"\x07todoapi");
        assert_eq!(name.as_str(), "TodoApi.TM.example.test.");
    }

    #[test]
    fn relative_names_and_at() {
        let origin = n("tm.example.test.");
        assert_eq!(
            DomainName::parse("www", Some(&origin)).unwrap().as_str(),
            "www.tm.example.test."
        );
        assert_eq!(DomainName::parse("@", Some(&origin)).unwrap(), origin);
        assert_eq!(
            DomainName::parse("other.test.", Some(&origin))
                .unwrap()
                .as_str(),
            "other.test."
        );
        assert!(DomainName::parse("@", None).is_err());
    }

    #[test]
    fn suffix_on_label_boundary_only() {
        let zone = n("example.test.");
        assert!(n("a.example.test.").is_within(&zone));
        assert!(n("example.test.").is_within(&zone));
        assert!(!n("badexample.test.").is_within(&zone));
        assert!(n("x.").is_within(&DomainName::root()));
    }

    #[test]
    fn parent_walks_up() {
        let name = n("a.b.test.");
        let p = name.parent().unwrap();
        assert_eq!(p.as_str(), "b.test.");
        assert_eq!(p.wire(), n("b.test.").wire());
        assert_eq!(p.parent().unwrap().parent().unwrap().as_str(), ".");
    }

    #[test]
    fn hostnames() {
        assert!(n("api-eu.example.com").is_hostname());
        assert!(n("_sip._tcp.example.com").is_hostname());
        assert!(!n("localhost").is_hostname());
        assert!(DomainName::parse("-bad.example.com", None).is_err());
        assert!(!n("203.0.113.300").is_hostname());
        assert!(DomainName::parse("not a host!.com", None).map_or(true, |n| !n.is_hostname()));
    }

    #[test]
    fn too_long_is_rejected() {
        let long = format!("{}.test.", vec!["a".repeat(63); 4].join("."));
        assert!(DomainName::parse(&long, None).is_err());
    }

    #[test]
    fn render_round_trips() {
        assert_eq!(&*render(n("a.b.test.").wire()), "a.b.test.");
        assert_eq!(&*render(&[0]), ".");
    }
}
