//! docs/semantics.md §4: every DNS answer rule, over UDP and TCP, IPv4 and IPv6.

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};

use crate::harness::*;

fn server() -> TestServer {
    Fixture::new("", &[("todoapi.toml", TODOAPI)]).start()
}

fn soa_ttl_in_authority(m: &Message) -> u32 {
    assert_eq!(m.authorities.len(), 1, "authority: {:?}", m.authorities);
    let soa = &m.authorities[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.name.to_ascii(), "tm.example.test.");
    soa.ttl
}

#[test]
fn profile_answer_is_authoritative_on_every_transport_and_family() {
    let s = server();
    for addr in [s.v4(), s.v6()] {
        for m in [
            udp(addr, "todoapi.tm.example.test.", RecordType::A),
            tcp(addr, "todoapi.tm.example.test.", RecordType::A),
        ] {
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(m.metadata.authoritative, "AA");
            assert!(!m.metadata.recursion_available, "RA is never set");
            assert!(m.metadata.recursion_desired, "RD is copied");
            assert_eq!(answers(&m), ["A 203.0.113.10"]);
            assert_eq!(m.answers[0].ttl, 30, "profile ttl");
        }
    }
}

#[test]
fn outside_our_zones_is_refused() {
    let s = server();
    for name in ["example.com.", "test.", ".", "xtm.example.test."] {
        let m = udp(s.v4(), name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!m.metadata.authoritative);
        assert!(m.answers.is_empty());
    }
}

#[test]
fn apex_soa_ns_and_glue() {
    let s = server();
    let m = udp(s.v4(), "tm.example.test.", RecordType::SOA);
    assert_eq!(m.answers.len(), 1);
    match &m.answers[0].data {
        RData::SOA(soa) => {
            assert_eq!(soa.serial, 2026112301);
            assert_eq!(soa.minimum, 60);
            assert_eq!(soa.mname.to_ascii(), "ns1.tm.example.test.");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.answers[0].ttl, 3600);

    let m = tcp(s.v6(), "tm.example.test.", RecordType::NS);
    assert_eq!(
        answers(&m),
        ["NS ns1.tm.example.test.", "NS ns2.tm.example.test."]
    );
    let glue: Vec<String> = m
        .additionals
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    assert_eq!(
        glue,
        [
            "ns1.tm.example.test. A 192.0.2.53",
            "ns2.tm.example.test. AAAA 2001:db8::53"
        ]
    );
}

#[test]
fn static_record_types() {
    let s = server();
    let cases = [
        ("ns1.tm.example.test.", RecordType::A, "A 192.0.2.53"),
        (
            "ns2.tm.example.test.",
            RecordType::AAAA,
            "AAAA 2001:db8::53",
        ),
        ("tm.example.test.", RecordType::TXT, "TXT v=spf1 -all"),
        (
            "tm.example.test.",
            RecordType::MX,
            "MX 10 mail.tm.example.test.",
        ),
        (
            "tm.example.test.",
            RecordType::CAA,
            "CAA 0 issue \"letsencrypt.org\"",
        ),
        (
            "_sip._tcp.tm.example.test.",
            RecordType::SRV,
            "SRV 10 60 5060 sip.tm.example.test.",
        ),
        (
            "external.tm.example.test.",
            RecordType::CNAME,
            "CNAME api.example.com.",
        ),
    ];
    for (name, t, want) in cases {
        let m = udp(s.v4(), name, t);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(answers(&m), [want], "{name} {t}");
    }
    // MX and SRV targets inside the zone come with their addresses.
    let m = udp(s.v4(), "tm.example.test.", RecordType::MX);
    assert_eq!(m.additionals[0].data.to_string(), "192.0.2.25");
    let m = udp(s.v4(), "_sip._tcp.tm.example.test.", RecordType::SRV);
    assert_eq!(m.additionals[0].data.to_string(), "2001:db8::5060");
}

#[test]
fn nxdomain_and_nodata_carry_soa_with_negative_ttl() {
    let s = server();
    let m = udp(s.v4(), "nope.tm.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    // min(SOA TTL 3600, minimum 60)
    assert_eq!(soa_ttl_in_authority(&m), 60);

    let m = udp(s.v4(), "a.b.nope.tm.example.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    let m = udp(s.v4(), "ns1.tm.example.test.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(soa_ttl_in_authority(&m), 60);

    // A profile name with an IPv4 target has no AAAA.
    let m = udp(s.v4(), "todoapi.tm.example.test.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    soa_ttl_in_authority(&m);
}

#[test]
fn empty_non_terminal_is_nodata() {
    let s = server();
    let m = udp(s.v4(), "ent.tm.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "RFC 8020");
    assert!(m.answers.is_empty());
    soa_ttl_in_authority(&m);
    let m = udp(s.v4(), "_tcp.tm.example.test.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // Below an existing name that has no children: NXDOMAIN.
    let m = udp(s.v4(), "x.deep.ent.tm.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn cname_chains_inside_our_zones_are_followed() {
    let s = server();
    let m = udp(s.v4(), "alias.tm.example.test.", RecordType::A);
    assert_eq!(
        answers(&m),
        [
            "CNAME www.tm.example.test.",
            "CNAME todoapi.tm.example.test.",
            "A 203.0.113.10"
        ]
    );
    let owners: Vec<String> = m.answers.iter().map(|r| r.name.to_ascii()).collect();
    assert_eq!(
        owners,
        [
            "alias.tm.example.test.",
            "www.tm.example.test.",
            "todoapi.tm.example.test."
        ]
    );
    // The CNAME itself when asked for; NODATA of the target carries the SOA.
    let m = udp(s.v4(), "www.tm.example.test.", RecordType::CNAME);
    assert_eq!(answers(&m), ["CNAME todoapi.tm.example.test."]);
    let m = udp(s.v4(), "www.tm.example.test.", RecordType::AAAA);
    assert_eq!(answers(&m), ["CNAME todoapi.tm.example.test."]);
    soa_ttl_in_authority(&m);
    // A chain ending at a missing in-zone name: NXDOMAIN with the CNAME (RFC 6604).
    let m = udp(s.v4(), "dangling.tm.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(answers(&m), ["CNAME missing.tm.example.test."]);
    // Out-of-zone targets are left to the resolver.
    let m = udp(s.v4(), "external.tm.example.test.", RecordType::A);
    assert_eq!(answers(&m), ["CNAME api.example.com."]);
    assert!(m.authorities.is_empty());
}

#[test]
fn question_is_echoed_byte_for_byte() {
    let s = server();
    for name in [
        "ToDoApI.Tm.ExAmPlE.TeSt.",
        "NoPe.TM.example.TEST.",
        "EXAMPLE.com.",
    ] {
        let q = build(name, RecordType::A, Opts::default())
            .to_vec()
            .unwrap();
        let qlen = q.len() - 11; // question ends before the OPT record
        for reply in [
            udp_raw(s.v4(), &q, TIMEOUT).unwrap(),
            tcp_raw(s.v6(), std::slice::from_ref(&q)).remove(0),
        ] {
            assert_eq!(&reply[12..qlen], &q[12..qlen], "{name}");
        }
    }
}

#[test]
fn edns_payload_badvers_do_and_unknown_options() {
    let s = server();
    let m = udp_opts(
        s.v4(),
        "todoapi.tm.example.test.",
        RecordType::A,
        Opts {
            edns: Some(4096),
            dnssec_ok: true,
        },
    );
    let e = m.edns.as_ref().expect("OPT echoed");
    assert_eq!(e.max_payload(), 1232);
    assert_eq!(e.version(), 0);
    assert!(e.flags().dnssec_ok, "DO copied");

    let m = udp_opts(
        s.v4(),
        "todoapi.tm.example.test.",
        RecordType::A,
        Opts {
            edns: Some(1232),
            dnssec_ok: false,
        },
    );
    assert!(!m.edns.unwrap().flags().dnssec_ok);

    // No OPT in, no OPT out.
    let m = udp_opts(
        s.v4(),
        "todoapi.tm.example.test.",
        RecordType::A,
        Opts {
            edns: None,
            dnssec_ok: false,
        },
    );
    assert!(m.edns.is_none());

    // EDNS version 1: BADVERS, with an OPT saying version 0.
    let mut q = build("todoapi.tm.example.test.", RecordType::A, Opts::default());
    q.edns.as_mut().unwrap().set_version(1);
    let m = Message::from_vec(&udp_raw(s.v4(), &q.to_vec().unwrap(), TIMEOUT).unwrap()).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    assert_eq!(m.edns.unwrap().version(), 0);
    assert!(m.answers.is_empty());

    // Unknown options are ignored.
    let mut q = build("todoapi.tm.example.test.", RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    let opt = [0xFD, 0xE9, 0, 3, 1, 2, 3]; // code 65001, 3 bytes
    let n = q.len();
    q[n - 2..].copy_from_slice(&(opt.len() as u16).to_be_bytes());
    q.extend_from_slice(&opt);
    let m = Message::from_vec(&udp_raw(s.v4(), &q, TIMEOUT).unwrap()).unwrap();
    assert_eq!(addrs(&m), ["203.0.113.10"]);

    // Two OPT records: FORMERR.
    let mut q = build("todoapi.tm.example.test.", RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    let opt_rr = q[q.len() - 11..].to_vec();
    q.extend_from_slice(&opt_rr);
    q[11] = 2;
    let m = Message::from_vec(&udp_raw(s.v4(), &q, TIMEOUT).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
}

/// A zone with an RRset too big for 512 bytes but fine for TCP.
fn big_server() -> TestServer {
    let mut records = String::new();
    for i in 0..30 {
        records.push_str(&format!(
            "  {{ name = \"big\", type = \"TXT\", value = \"record {i:02} {}\" }},\n",
            "x".repeat(40)
        ));
    }
    Fixture::with_zone("", &zone_with_records(&records), &[]).start()
}

#[test]
fn udp_truncates_beyond_client_limit_and_tcp_serves_everything() {
    let s = big_server();
    for (edns, limit) in [(None, 512usize), (Some(1232), 1232), (Some(4096), 1232)] {
        let q = build(
            "big.tm.example.test.",
            RecordType::TXT,
            Opts {
                edns,
                dnssec_ok: false,
            },
        );
        let raw = udp_raw(s.v4(), &q.to_vec().unwrap(), TIMEOUT).unwrap();
        assert!(raw.len() <= limit, "{} > {limit}", raw.len());
        let m = Message::from_vec(&raw).unwrap();
        assert!(m.metadata.truncation, "TC with edns {edns:?}");
        assert!(m.answers.is_empty());
        assert_eq!(m.edns.is_some(), edns.is_some());
    }
    let m = tcp(s.v4(), "big.tm.example.test.", RecordType::TXT);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 30);
    // Small answers are never truncated, even at 512.
    let m = udp_opts(
        s.v4(),
        "ns1.tm.example.test.",
        RecordType::A,
        Opts {
            edns: None,
            dnssec_ok: false,
        },
    );
    assert!(!m.metadata.truncation);
}

#[test]
fn tcp_pipelining_answers_every_query_in_order() {
    let s = server();
    let names = [
        "todoapi.tm.example.test.",
        "ns1.tm.example.test.",
        "nope.tm.example.test.",
        "www.tm.example.test.",
        "example.com.",
    ];
    let queries: Vec<Message> = names
        .iter()
        .map(|n| build(n, RecordType::A, Opts::default()))
        .collect();
    let raw: Vec<Vec<u8>> = queries.iter().map(|q| q.to_vec().unwrap()).collect();
    let replies = tcp_raw(s.v4(), &raw);
    for (q, r) in queries.iter().zip(replies) {
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        assert_eq!(m.queries[0].name(), q.queries[0].name());
    }
}

#[test]
fn any_is_minimal() {
    let s = server();
    let m = udp(s.v4(), "tm.example.test.", RecordType::ANY);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        m.answers.len(),
        1,
        "one RRset (RFC 8482): {:?}",
        answers(&m)
    );
    let m = tcp(s.v4(), "todoapi.tm.example.test.", RecordType::ANY);
    assert_eq!(answers(&m), ["A 203.0.113.10"]);
    let m = udp(s.v4(), "www.tm.example.test.", RecordType::ANY);
    assert_eq!(answers(&m), ["CNAME todoapi.tm.example.test."]);
}

#[test]
fn other_opcodes_are_notimp() {
    let s = server();
    for op in [OpCode::Notify, OpCode::Update, OpCode::Status] {
        let mut q = build("tm.example.test.", RecordType::SOA, Opts::default());
        q.metadata.op_code = op;
        let m =
            Message::from_vec(&udp_raw(s.v4(), &q.to_vec().unwrap(), TIMEOUT).unwrap()).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp, "{op:?}");
        assert_eq!(m.metadata.op_code, op);
    }
}

#[test]
fn zone_transfers_and_other_classes_are_refused() {
    let s = server();
    for t in [RecordType::AXFR, RecordType::IXFR] {
        let q = build("tm.example.test.", t, Opts::default());
        let m = Message::from_vec(&tcp_raw(s.v4(), &[q.to_vec().unwrap()]).remove(0)).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{t}");
        assert!(m.answers.is_empty());
    }
    for class in [DNSClass::CH, DNSClass::HS] {
        let q = with_class("tm.example.test.", RecordType::SOA, class);
        let m = Message::from_vec(&udp_raw(s.v4(), &q, TIMEOUT).unwrap()).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{class}");
    }
    // version.bind is not answered either.
    let q = with_class("version.bind.", RecordType::TXT, DNSClass::CH);
    let m = Message::from_vec(&udp_raw(s.v4(), &q, TIMEOUT).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn malformed_queries_with_a_header_get_formerr() {
    let s = server();
    let good = build("todoapi.tm.example.test.", RecordType::A, Opts::default())
        .to_vec()
        .unwrap();
    // Question cut short.
    let m = Message::from_vec(&udp_raw(s.v4(), &good[..20], TIMEOUT).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(m.metadata.id, u16::from_be_bytes([good[0], good[1]]));
    // QDCOUNT 0.
    let mut zero = good.clone();
    zero[5] = 0;
    let m = Message::from_vec(&udp_raw(s.v4(), &zero, TIMEOUT).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Fewer than 12 bytes, or a response: no reply at all.
    assert!(udp_raw(s.v4(), &good[..8], std::time::Duration::from_millis(300)).is_none());
    let mut resp = good.clone();
    resp[2] |= 0x80;
    assert!(udp_raw(s.v4(), &resp, std::time::Duration::from_millis(300)).is_none());
}

/// NSID (RFC 5001): `dig +nsid` and `kdig +nsid` learn which server
/// answered, over UDP and TCP; nothing is sent to clients that do not ask,
/// nor by a server without `dns.nsid`.
#[test]
fn nsid_names_the_server_that_answered() {
    let s = Fixture::new(
        "[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nnsid = \"ns1.example\"\n",
        &[("todoapi.toml", TODOAPI)],
    )
    .start();
    let run = |tool: &str, args: &[&str]| {
        let out = std::process::Command::new(tool)
            .arg(format!("@{}", s.v4().ip()))
            .args([
                "-p",
                &s.v4().port().to_string(),
                "todoapi.tm.example.test",
                "A",
            ])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {tool} ({e}); run the tests with scripts/test.sh")
            });
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for tcp in [&[][..], &["+tcp"][..]] {
        let dig = run("dig", &[&["+nsid"][..], tcp].concat());
        assert!(
            dig.contains("NSID: 6e 73 31 2e 65 78 61 6d 70 6c 65 (\"ns1.example\")"),
            "{dig}"
        );
        let kdig = run("kdig", &[&["+nsid"][..], tcp].concat());
        assert!(kdig.contains("ns1.example"), "{kdig}");
    }
    assert!(!run("dig", &[]).contains("NSID"));
    let plain = server();
    let out = std::process::Command::new("dig")
        .arg(format!("@{}", plain.v4().ip()))
        .args([
            "-p",
            &plain.v4().port().to_string(),
            "todoapi.tm.example.test",
            "A",
            "+nsid",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("NOERROR") && !out.contains("NSID:"), "{out}");
}
