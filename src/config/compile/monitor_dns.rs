//! Stage: the `dns` probe's keys of a `[monitor]` table (`query_name`,
//! `query_type`, `transport`, `expected_rcode`, `expected_answer`), which
//! no other protocol may set, and `tls_verify`, which dns may not. The
//! keys dns shares with the others (and those it refuses: `path`, `key`,
//! `headers`, `expected_status`, `body_match`, certificates) are read in
//! `monitor`.

use super::*;
use crate::health::spec::{DnsQuery, Transport};
use crate::proto::query;

/// Longest `expected_answer`: more than any address, name or single TXT
/// string needs.
const ANSWER_MAX: usize = 1024;

/// The dns keys: the question and expectations for `protocol = "dns"`
/// (`Some(Some(..))`), `Some(None)` for another protocol that sets none of
/// them, `None` when one was wrong (reported).
pub(super) fn dns(
    r: &mut Report,
    src: usize,
    prefix: &str,
    m: &Spanned<RawMonitor>,
    protocol: Protocol,
) -> Option<Option<DnsQuery>> {
    let raw = m.get_ref();
    let mut k = r.section(src);
    if protocol != Protocol::Dns {
        let own = [
            (&raw.query_name, "query_name"),
            (&raw.query_type, "query_type"),
            (&raw.transport, "transport"),
            (&raw.expected_rcode, "expected_rcode"),
            (&raw.expected_answer, "expected_answer"),
        ];
        for (v, key) in own {
            if let Some(v) = v {
                k.r.err(
                    src,
                    v,
                    &format!("{prefix}.{key}"),
                    "only dns probes ask a question: this needs protocol = \"dns\"",
                );
                k.fail();
            }
        }
        return k.done(None);
    }
    if raw.tls_verify.is_some() {
        k.r.err(
            src,
            m,
            &format!("{prefix}.tls_verify"),
            "dns probes use no TLS",
        );
        k.fail();
    }
    let name = match &raw.query_name {
        None => {
            k.r.err(
                src,
                m,
                &format!("{prefix}.query_name"),
                "dns probes need a `query_name`: the name they ask",
            );
            None
        }
        Some(v) => DomainName::parse(v.get_ref(), None)
            .map_err(|e| k.r.err(src, v, &format!("{prefix}.query_name"), e))
            .ok(),
    };
    let name = k.take(name);
    let qtype = match &raw.query_type {
        None => Some(rtype::A),
        Some(v) => query::query_type(v.get_ref())
            .map_err(|e| k.r.err(src, v, &format!("{prefix}.query_type"), e))
            .ok(),
    };
    let qtype = k.take(qtype);
    let transport = match raw.transport.as_ref() {
        None => Some(Transport::Udp),
        Some(v) => match v.get_ref().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            other => {
                k.r.err(
                    src,
                    v,
                    &format!("{prefix}.transport"),
                    format!("unknown transport `{other}` (expected udp or tcp)"),
                );
                None
            }
        },
    };
    let transport = k.take(transport);
    let rcode = match &raw.expected_rcode {
        None => Some(0),
        Some(v) => {
            let code = query::rcode_code(v.get_ref().trim());
            if code.is_none() {
                let known: Vec<&str> = query::rcode_names().collect();
                k.r.err(
                    src,
                    v,
                    &format!("{prefix}.expected_rcode"),
                    format!(
                        "unknown rcode `{}` (expected one of {})",
                        v.get_ref(),
                        known.join(", ")
                    ),
                );
            }
            code
        }
    };
    let rcode = k.take(rcode);
    let answer = match &raw.expected_answer {
        None => Some(None),
        Some(v) => match answer_problem(v.get_ref(), qtype, rcode) {
            Some(problem) => {
                k.r.err(src, v, &format!("{prefix}.expected_answer"), problem);
                None
            }
            None => Some(Some(v.get_ref().trim().to_string())),
        },
    };
    let answer = k.take(answer);
    let query = DnsQuery {
        name: name?,
        qtype: qtype?,
        transport: transport?,
        expected_rcode: rcode?,
        expected_answer: answer?,
    };
    k.done(Some(query))
}

/// What is wrong with `expected_answer` for a query of `qtype` expecting
/// `rcode` (either `None` when itself wrong), if anything.
fn answer_problem(text: &str, qtype: Option<u16>, rcode: Option<u16>) -> Option<String> {
    let text = text.trim();
    let ip = text.parse::<IpAddr>().ok();
    if text.is_empty() {
        Some("must not be empty".into())
    } else if text.len() > ANSWER_MAX {
        Some(format!("at most {ANSWER_MAX} bytes"))
    } else if text.chars().any(char::is_control) {
        Some("must not contain control characters".into())
    } else if rcode.is_some_and(|c| c != 0) {
        Some("only a NOERROR reply has answers to check: set expected_rcode = \"NOERROR\" (the default) or drop expected_answer".into())
    } else if qtype == Some(rtype::A) && ip.is_some_and(|ip| ip.is_ipv6()) {
        Some(format!(
            "`{text}` is an IPv6 address: an A query answers IPv4 addresses (query_type = \"AAAA\" asks for IPv6)"
        ))
    } else if qtype == Some(rtype::AAAA) && ip.is_some_and(|ip| ip.is_ipv4()) {
        Some(format!(
            "`{text}` is an IPv4 address: an AAAA query answers IPv6 addresses (query_type = \"A\" asks for IPv4)"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::health::spec::{DnsQuery, Protocol, Transport};

    fn load(monitor: &str) -> Result<crate::config::Config, Vec<String>> {
        let p = profile(&format!(
            "routing = \"priority\"\n[monitor]\n{monitor}\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n"
        ));
        match load_text("", &[("p.toml", &p)]) {
            Ok(c) => Ok(c),
            Err(e) => Err(errors(Err(e))),
        }
    }

    #[test]
    fn defaults_udp_a_noerror_port_53() {
        let c = load("protocol = \"dns\"\nquery_name = \"check.example.test\"").unwrap();
        let spec = &c.probes[0];
        assert_eq!((spec.host.as_str(), spec.port), ("192.0.2.1", 53));
        let m = &spec.monitor;
        assert_eq!(m.protocol, Protocol::Dns);
        assert_eq!(
            m.dns,
            Some(DnsQuery {
                name: crate::proto::name::DomainName::parse("check.example.test.", None).unwrap(),
                qtype: 1,
                transport: Transport::Udp,
                expected_rcode: 0,
                expected_answer: None,
            })
        );
        let c = load(
            "protocol = \"dns\"\nport = 5353\nquery_name = \"_dmarc.example.test.\"\nquery_type = \"txt\"\ntransport = \"tcp\"\nexpected_rcode = \"nxdomain\"",
        )
        .unwrap();
        let d = c.probes[0].monitor.dns.clone().unwrap();
        assert_eq!(
            (d.qtype, d.transport, d.expected_rcode),
            (16, Transport::Tcp, 3)
        );
        assert_eq!(c.probes[0].port, 5353);
    }

    #[test]
    fn every_bad_key_is_reported_at_once() {
        let e = load(
            "protocol = \"dns\"\nquery_name = \"bad name!.test\"\nquery_type = \"ANY\"\ntransport = \"quic\"\nexpected_rcode = \"OK\"\npath = \"/health\"\nkey = \"k\"\nheaders = { A = \"b\" }\nexpected_status = [200]\nbody_match = \"x\"\ntls_verify = false",
        )
        .unwrap_err();
        for want in [
            "monitor.query_name: ",
            "monitor.query_type: `ANY` answers differ",
            "monitor.transport: unknown transport `quic` (expected udp or tcp)",
            "monitor.expected_rcode: unknown rcode `OK` (expected one of NOERROR, FORMERR, SERVFAIL, NXDOMAIN",
            "monitor.path: dns probes have no path",
            "monitor.key: dns probes send no key",
            "monitor.headers: dns probes send no headers",
            "monitor.expected_status: dns probes have no HTTP status",
            "monitor.body_match: dns probes have no body",
            "monitor.tls_verify: dns probes use no TLS",
        ] {
            assert!(
                e.iter().any(|l| l.starts_with(want)),
                "no `{want}` in {e:#?}"
            );
        }
        let e = load("protocol = \"dns\"").unwrap_err();
        assert!(
            e[0].starts_with("monitor.query_name: dns probes need a `query_name`"),
            "{e:?}"
        );
    }

    #[test]
    fn expected_answer_must_fit_the_question() {
        let base = "protocol = \"dns\"\nquery_name = \"a.example.test.\"\n";
        assert!(load(&format!("{base}expected_answer = \"192.0.2.1\"")).is_ok());
        for (extra, want) in [
            ("expected_answer = \"2001:db8::1\"", "is an IPv6 address"),
            (
                "query_type = \"AAAA\"\nexpected_answer = \"192.0.2.1\"",
                "is an IPv4 address",
            ),
            ("expected_answer = \" \"", "must not be empty"),
            (
                "expected_rcode = \"NXDOMAIN\"\nexpected_answer = \"192.0.2.1\"",
                "only a NOERROR reply",
            ),
        ] {
            let e = load(&format!("{base}{extra}")).unwrap_err();
            assert!(e[0].starts_with("monitor.expected_answer: "), "{e:?}");
            assert!(e[0].contains(want), "{extra}: {e:?}");
        }
    }

    #[test]
    fn every_dns_key_makes_another_probe() {
        let base = "protocol = \"dns\"\nquery_name = \"a.test\"\n";
        let fp = |extra: &str| load(&format!("{base}{extra}")).unwrap().probes[0].fingerprint();
        let all = [
            fp(""),
            fp("query_type = \"AAAA\""),
            fp("transport = \"tcp\""),
            fp("expected_rcode = \"REFUSED\""),
            fp("expected_answer = \"192.0.2.1\""),
            load("protocol = \"dns\"\nquery_name = \"b.test\"")
                .unwrap()
                .probes[0]
                .fingerprint(),
        ];
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
        // Defaults written out are the same probe.
        assert_eq!(
            fp(""),
            fp("query_type = \"a\"\ntransport = \"udp\"\nport = 53")
        );
    }

    #[test]
    fn dns_keys_need_protocol_dns() {
        let e = load(
            "protocol = \"tcp\"\nport = 53\nquery_name = \"a.test\"\nexpected_rcode = \"NOERROR\"",
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e.iter().all(|l| l.contains("needs protocol = \"dns\"")),
            "{e:?}"
        );
    }

    #[test]
    fn endpoint_overrides_that_make_no_sense_for_dns() {
        let p = profile(
            "routing = \"priority\"\n[monitor]\nprotocol = \"dns\"\nquery_name = \"a.test\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\nprobe = { address = \"127.0.0.1\", port = 5300, path = \"/x\", headers = { A = \"b\" } }\n",
        );
        let e = errors(load_text("", &[("p.toml", &p)]));
        assert!(
            e.iter()
                .any(|l| l.contains("probe.path: dns probes have no path")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|l| l.contains("probe.headers: dns probes send no headers")),
            "{e:?}"
        );
    }
}
