//! Stage: the `grpc` probe's own keys of a monitor table (`tls`,
//! `service`), which no other protocol may set, and the headers it sends as
//! gRPC metadata. The keys grpc shares with the others (and those it
//! refuses: `path`, `key`, `expected_status`, `body_match`) are read in
//! `monitor`.

use super::*;

/// The keys only grpc probes have, `tls` and `service`: wrong with any
/// other protocol; `service` must be a name a server could register.
pub(super) fn service(
    r: &mut Report,
    src: usize,
    prefix: &str,
    raw: &RawMonitor,
    protocol: Protocol,
) -> Option<Option<String>> {
    let mut ok = true;
    if let Some(t) = &raw.tls
        && !protocol.is_grpc()
    {
        let msg = if protocol == Protocol::Http && *t.get_ref() {
            "`tls` is for protocol = \"grpc\"; HTTP over TLS is protocol = \"https\""
        } else {
            "`tls` is for protocol = \"grpc\""
        };
        r.err(src, t, &format!("{prefix}.tls"), msg);
        ok = false;
    }
    let Some(v) = &raw.service else {
        return ok.then_some(None);
    };
    let name = v.get_ref();
    let problem = if !protocol.is_grpc() {
        "`service` is for protocol = \"grpc\" (the gRPC health service name)"
    } else if name.len() > 200 {
        "at most 200 bytes"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain spaces or control characters"
    } else {
        // The empty name is the server as a whole, as when omitted: one
        // spelling, so the two are the same probe.
        return ok.then(|| (!name.is_empty()).then(|| name.clone()));
    };
    r.err(src, v, &format!("{prefix}.service"), problem);
    None
}

/// Headers of a grpc probe are sent as gRPC metadata: the names gRPC and
/// HTTP/2 reserve for themselves are refused (`Host` is the HTTP/2
/// `:authority`). True when all are usable.
pub(super) fn metadata(
    r: &mut Report,
    src: usize,
    h: &Spanned<BTreeMap<String, Spanned<String>>>,
    field: &str,
) -> bool {
    let mut ok = true;
    for (name, v) in h.get_ref() {
        let lower = name.to_ascii_lowercase();
        let problem = if lower.starts_with("grpc-") {
            "names starting with `grpc-` are reserved by gRPC"
        } else if ["content-type", "te", "content-length"].contains(&lower.as_str()) {
            "set by the gRPC probe itself"
        } else if [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
        ]
        .contains(&lower.as_str())
        {
            "HTTP/2 forbids connection-specific headers"
        } else if lower.ends_with("-bin") {
            "binary metadata (`-bin`) is not supported"
        } else {
            continue;
        };
        r.err(src, v, &format!("{field}.{name}"), problem);
        ok = false;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn grpc_settings_and_their_fingerprint() {
        use crate::health::spec::Protocol;
        let load = |monitor: &str| {
            let p = profile(&format!(
                "routing = \"priority\"\n[monitor]\nprotocol = \"grpc\"\nport = 50051\n{monitor}\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n"
            ));
            load_text("", &[("p.toml", &p)])
        };
        let c =
            load("service = \"todo.v1.Api\"\nheaders = { Host = \"api.example.com\" }").unwrap();
        let spec = &c.probes[0];
        assert_eq!(spec.monitor.protocol, Protocol::Grpc { tls: false });
        assert_eq!(spec.monitor.grpc_service.as_deref(), Some("todo.v1.Api"));
        assert!(spec.tls.is_none());
        let tls = load("tls = true\ntls_verify = false").unwrap();
        assert_eq!(tls.probes[0].monitor.protocol, Protocol::Grpc { tls: true });
        assert!(tls.probes[0].tls.is_some());
        // The empty name is the server as a whole: the same probe as none.
        let whole = load("").unwrap();
        let empty = load("service = \"\"").unwrap();
        assert_eq!(empty.probes[0].monitor.grpc_service, None);
        assert_eq!(whole.probes[0].fingerprint(), empty.probes[0].fingerprint());
        // Service and TLS make a different probe.
        assert_ne!(whole.probes[0].fingerprint(), spec.fingerprint());
        assert_ne!(whole.probes[0].fingerprint(), tls.probes[0].fingerprint());
        // Metadata gRPC reserves.
        let e = errors(load(
            "headers = { \"Grpc-Encoding\" = \"gzip\", \"x-bin\" = \"AA\" }",
        ));
        assert_eq!(
            e,
            [
                "monitor.headers.Grpc-Encoding: names starting with `grpc-` are reserved by gRPC",
                "monitor.headers.x-bin: binary metadata (`-bin`) is not supported"
            ]
        );
    }

    #[test]
    fn a_named_grpc_monitor_beside_an_http_one() {
        let p = |grpc: &str| {
            profile(&format!(
                "routing = \"priority\"\n[[monitors]]\nname = \"api\"\nprotocol = \"http\"\n[[monitors]]\nname = \"rpc\"\nprotocol = \"grpc\"\n{grpc}\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n"
            ))
        };
        let c = load_text(
            "",
            &[("p.toml", &p("port = 50051\nservice = \"orders.v1.Orders\""))],
        )
        .unwrap();
        let rpc = c
            .probes
            .iter()
            .find(|s| s.monitor.protocol.is_grpc())
            .expect("the grpc monitor is probed");
        assert_eq!(
            rpc.monitor.grpc_service.as_deref(),
            Some("orders.v1.Orders")
        );
        // Its problems are named by the monitor's own prefix.
        let e = errors(load_text(
            "",
            &[("p.toml", &p("service = \"a b\"\npath = \"/x\""))],
        ));
        for want in [
            "monitors[1].port: grpc probes need a port",
            "monitors[1].service: must not contain spaces",
            "monitors[1].path: grpc probes have no path",
        ] {
            assert!(e.iter().any(|e| e.starts_with(want)), "{want}: {e:?}");
        }
    }
}
