//! The gRPC probe: the standard health check, `grpc.health.v1.Health/Check`,
//! over a fresh HTTP/2 connection: TLS with ALPN `h2`, or plaintext HTTP/2
//! with prior knowledge (h2c), as gRPC servers speak it.
//!
//! One unary call on one stream, through the `h2` crate directly (hyper's
//! HTTP/2 client is `h2` plus an executor it spawns the connection onto;
//! here the connection is driven inside the probe's own task, as the HTTP
//! probe drives its own). The two health messages are prost structures,
//! the five-byte gRPC message framing and the `grpc-status` trailers are
//! read here. Why not tonic: see `benches/README.md` (build cost measured).
//!
//! SERVING passes; NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN and every gRPC
//! error status fail with the status named (`grpc NOT_SERVING`,
//! `grpc status 12 UNIMPLEMENTED: ...`).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, TE, USER_AGENT};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::http_get::tls_failure;
use super::{Failure, FailureKind, Source, close_with_reset, fail, io_failure};
use crate::health::spec::ProbeSpec;

/// Largest response head (headers or trailers) a probe accepts, as for
/// HTTP probes.
const HEADER_LIMIT: u32 = super::HEADER_LIMIT as u32;

/// Largest response body read: the answer is a few bytes; the HTTP/2 flow
/// control windows are this size too, so a flooding server is stopped by
/// the protocol rather than buffered.
const BODY_LIMIT: usize = 16 * 1024;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct HealthCheckRequest {
    /// The service asked about; empty: the server as a whole.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct HealthCheckResponse {
    /// `ServingStatus`: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING,
    /// 3 SERVICE_UNKNOWN (Watch only).
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The RPC's path.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

pub(super) struct GrpcProbe {
    /// Address or host name to connect to, and port.
    host: String,
    port: u16,
    /// TLS configuration (ALPN h2) and the name to present and verify.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// `http(s)://authority/grpc.health.v1.Health/Check`.
    uri: http::Uri,
    /// gRPC's own headers and the configured metadata.
    headers: HeaderMap,
    /// The framed request message, built once.
    body: Bytes,
}

impl GrpcProbe {
    /// Builds the call for `spec` once: URI and authority, headers, the
    /// encoded request, TLS name. Errors are configuration problems.
    pub(super) fn new(
        spec: &ProbeSpec,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<GrpcProbe, String> {
        let m = &spec.monitor;
        let with_tls = m.protocol.uses_tls();
        let default_port = if with_tls { 443 } else { 80 };
        // :authority as an HTTP probe's Host.
        let (host_name, authority) = super::host_header(spec, default_port);
        let uri = http::Uri::builder()
            .scheme(if with_tls { "https" } else { "http" })
            .authority(authority.as_str())
            .path_and_query(CHECK_PATH)
            .build()
            .map_err(|_| format!("`{authority}` is not a valid gRPC authority"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchyard-probe/", env!("CARGO_PKG_VERSION"))),
        );
        // The deadline, so the server can give up when the probe has.
        let ms = m.timeout.as_millis().clamp(1, 99_999_999);
        headers.insert(
            HeaderName::from_static("grpc-timeout"),
            HeaderValue::try_from(format!("{ms}m")).map_err(|_| "bad grpc-timeout")?,
        );
        for (k, v) in &spec.headers {
            if k.eq_ignore_ascii_case("host") {
                continue; // it is the :authority
            }
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("bad header name `{k}`"))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| format!("bad value for header `{k}`"))?;
            headers.insert(name, value);
        }
        let tls = match (with_tls, tls) {
            (true, Some(config)) => {
                let bare = super::bare_host(&host_name);
                let name = ServerName::try_from(bare.to_string())
                    .map_err(|_| format!("`{bare}` is not a name TLS can verify"))?;
                // The shared configuration offers http/1.1; gRPC needs h2.
                let mut config = (*config).clone();
                config.alpn_protocols = vec![b"h2".to_vec()];
                Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
            }
            (true, None) => return Err("grpc probe over TLS without a TLS configuration".into()),
            (false, _) => None,
        };
        Ok(GrpcProbe {
            host: spec.host.clone(),
            port: spec.port,
            tls,
            uri,
            headers,
            body: request_body(m.grpc_service.as_deref().unwrap_or("")),
        })
    }

    /// One health check. Never returns an HTTP status (the outcome's is
    /// for HTTP probes) unless the server answered with one other than 200.
    pub(super) async fn check(
        &self,
        source: Source,
    ) -> Result<Option<u16>, (Option<u16>, Failure)> {
        let tcp = source
            .connect(&self.host, self.port)
            .await
            .map_err(|e| (None, io_failure(&e)))?;
        let _ = tcp.set_nodelay(true);
        close_with_reset(&tcp);
        match &self.tls {
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    let mut f = tls_failure(&e);
                    if f.reason.contains("InvalidContentType") {
                        f.reason
                            .push_str(": the port does not speak TLS (h2c needs no `tls`)");
                    }
                    (None, f)
                })?;
                let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                match alpn.as_deref() {
                    Some(b"h2") => self.call(tls).await,
                    Some(other) => Err((None, not_h2(other))),
                    // gRPC servers negotiate h2; one that negotiates
                    // nothing may still speak it, and is tried.
                    None => self.call(tls).await.map_err(|(s, mut f)| {
                        if f.kind == FailureKind::Protocol {
                            f.reason.push_str(
                                " (the server negotiated no ALPN protocol: gRPC servers choose h2)",
                            );
                        }
                        (s, f)
                    }),
                }
            }
            None => self.call(tcp).await,
        }
        .map(|()| None)
    }

    /// The call over an established connection: the HTTP/2 handshake, the
    /// request, the response read within the limits, then judged.
    async fn call<T>(&self, io: T) -> Result<(), (Option<u16>, Failure)>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let window = BODY_LIMIT as u32;
        let (client, conn) = h2::client::Builder::new()
            .initial_window_size(window)
            .initial_connection_window_size(window)
            .max_header_list_size(HEADER_LIMIT)
            .max_send_buffer_size(BODY_LIMIT)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| (None, self.h2_failure(&e)))?;
        let exchange = async {
            let mut client = client
                .ready()
                .await
                .map_err(|e| (None, self.h2_failure(&e)))?;
            let mut req = http::Request::post(self.uri.clone())
                .body(())
                .map_err(|_| (None, fail(FailureKind::Protocol, "protocol: bad request")))?;
            *req.headers_mut() = self.headers.clone();
            let (response, mut stream) = client
                .send_request(req, false)
                .map_err(|e| (None, self.h2_failure(&e)))?;
            stream
                .send_data(self.body.clone(), true)
                .map_err(|e| (None, self.h2_failure(&e)))?;
            let response = response.await.map_err(|e| (None, self.h2_failure(&e)))?;
            let (head, mut body) = response.into_parts();
            let status = head.status.as_u16();
            let http_status = (status != 200).then_some(status);
            let mut message = BytesMut::new();
            // A Trailers-Only response (an error at once) ends with its head.
            let trailers = if body.is_end_stream() {
                None
            } else {
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.map_err(|e| (http_status, self.h2_failure(&e)))?;
                    let _ = body.flow_control().release_capacity(chunk.len());
                    if message.len() + chunk.len() > BODY_LIMIT {
                        return Err((
                            http_status,
                            fail(
                                FailureKind::Protocol,
                                format!("protocol: response larger than {} KiB", BODY_LIMIT / 1024),
                            ),
                        ));
                    }
                    message.extend_from_slice(&chunk);
                }
                body.trailers()
                    .await
                    .map_err(|e| (http_status, self.h2_failure(&e)))?
            };
            judge(status, &head.headers, &message, trailers.as_ref()).map_err(|f| (http_status, f))
        };
        // The connection future drives the socket; it ends when the peer
        // closes, and may end before the exchange has read what was
        // buffered, so the exchange is polled until it ends. A connection
        // error explains a failed exchange best.
        //
        // Once the connection future has ended nothing reads the socket
        // any more: what the exchange can still use is buffered, so it
        // ends on its next poll or never (it would wait for the timeout,
        // the reason lost).
        tokio::pin!(conn);
        tokio::pin!(exchange);
        let conn_failure = tokio::select! {
            biased;
            r = &mut exchange => return r,
            c = &mut conn => c.err().map(|e| self.h2_failure(&e)),
        };
        let closed = || {
            fail(
                FailureKind::Protocol,
                if self.tls.is_some() {
                    "protocol: connection closed before a complete response"
                } else {
                    "protocol: connection closed before a complete response (a TLS port? set `tls = true`)"
                },
            )
        };
        tokio::select! {
            biased;
            r = &mut exchange => match (r, conn_failure) {
                (Err((status, f)), Some(cf)) if f.kind == FailureKind::Protocol => Err((status, cf)),
                (r, _) => r,
            },
            () = std::future::ready(()) => Err((None, conn_failure.unwrap_or_else(closed))),
        }
    }
}

/// The request body: one uncompressed gRPC message (flag, 4-byte length,
/// then the encoded `HealthCheckRequest`).
fn request_body(service: &str) -> Bytes {
    let msg = HealthCheckRequest {
        service: service.to_string(),
    };
    let len = prost::Message::encoded_len(&msg);
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(len as u32);
    // Cannot fail: the buffer has room for the whole message.
    let _ = prost::Message::encode(&msg, &mut out);
    out.freeze()
}

/// The server chose another application protocol than HTTP/2.
fn not_h2(alpn: &[u8]) -> Failure {
    let alpn: String = String::from_utf8_lossy(alpn)
        .chars()
        .take(32)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    fail(
        FailureKind::Tls,
        format!("tls: the server chose ALPN `{alpn}`, not h2: gRPC needs HTTP/2"),
    )
}

/// The gRPC status code names (the `grpc-status` values).
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Judges a complete response: HTTP status, content type, `grpc-status`
/// (in the trailers, or in the head of a Trailers-Only response), then the
/// one message and its serving status.
pub(super) fn judge(
    status: u16,
    head: &HeaderMap,
    body: &[u8],
    trailers: Option<&HeaderMap>,
) -> Result<(), Failure> {
    let grpc_status = trailers
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| head.get("grpc-status"));
    if status != 200 {
        // A proxy's error page, or not a gRPC server at all.
        return Err(fail(FailureKind::Status, format!("http status {status}")));
    }
    let content_type = head
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match content_type.as_deref() {
        Some(ct) if ct.starts_with("application/grpc") => {}
        other => {
            let ct =
                other.map_or_else(|| "none".to_string(), |c| format!("`{}`", printable(c, 40)));
            return Err(fail(
                FailureKind::Protocol,
                format!("protocol: content-type {ct}, not application/grpc"),
            ));
        }
    }
    let Some(code) = grpc_status else {
        return Err(fail(
            FailureKind::Protocol,
            "protocol: no grpc-status in the response",
        ));
    };
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or_else(|| fail(FailureKind::Protocol, "protocol: malformed grpc-status"))?;
    if code != 0 {
        let name = CODES
            .get(code as usize)
            .copied()
            .unwrap_or("(unknown code)");
        let message = trailers
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| head.get("grpc-message"))
            .map(|m| printable(&percent_decode(m.as_bytes()), 200))
            .filter(|m| !m.is_empty());
        let reason = match message {
            Some(m) => format!("grpc status {code} {name}: {m}"),
            None => format!("grpc status {code} {name}"),
        };
        return Err(fail(FailureKind::Status, reason));
    }
    let message = match body {
        [0, l0, l1, l2, l3, rest @ ..]
            if u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize == rest.len() =>
        {
            rest
        }
        [1, ..] => {
            return Err(fail(
                FailureKind::Protocol,
                "protocol: compressed response (the probe accepts none)",
            ));
        }
        [] => return Err(fail(FailureKind::Protocol, "protocol: no response message")),
        _ => {
            return Err(fail(
                FailureKind::Protocol,
                "protocol: response not one gRPC message (truncated or several)",
            ));
        }
    };
    let response = <HealthCheckResponse as prost::Message>::decode(message).map_err(|_| {
        fail(
            FailureKind::Protocol,
            "protocol: malformed HealthCheckResponse",
        )
    })?;
    match response.status {
        1 => Ok(()),
        0 => Err(fail(FailureKind::Status, "grpc UNKNOWN")),
        2 => Err(fail(FailureKind::Status, "grpc NOT_SERVING")),
        3 => Err(fail(FailureKind::Status, "grpc SERVICE_UNKNOWN")),
        n => Err(fail(
            FailureKind::Status,
            format!("grpc serving status {n}"),
        )),
    }
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2, "Responses").
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if raw[i] == b'%'
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// At most `max` characters, control characters replaced: server text in
/// a one-line reason.
fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

impl GrpcProbe {
    /// An HTTP/2 error as a reason (see [`h2_failure`]).
    fn h2_failure(&self, e: &h2::Error) -> Failure {
        h2_failure(e, self.tls.is_some())
    }
}

/// An HTTP/2 error as a reason, through to the I/O or TLS error inside.
fn h2_failure(e: &h2::Error, tls: bool) -> Failure {
    if let Some(io) = e.get_io() {
        if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
            return tls_failure(io);
        }
        return match io.kind() {
            // A TLS server (grpc-go, grpcio) closes on a plaintext preface;
            // closing with our frames unread, it resets.
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset => fail(
                FailureKind::Protocol,
                if tls {
                    "protocol: connection closed before a complete response"
                } else {
                    "protocol: connection closed before a complete response (a TLS port? set `tls = true`)"
                },
            ),
            _ => {
                let f = io_failure(io);
                match f.kind {
                    FailureKind::Connect | FailureKind::Timeout | FailureKind::Local => f,
                    _ => fail(FailureKind::Protocol, format!("protocol: {}", f.reason)),
                }
            }
        };
    }
    let reason = e.reason().map_or_else(String::new, |r| format!("{r:?}"));
    if e.is_go_away() && e.is_remote() {
        return fail(
            FailureKind::Protocol,
            format!("protocol: the server closed the connection (GOAWAY {reason})"),
        );
    }
    if e.is_reset() && e.is_remote() {
        return fail(
            FailureKind::Protocol,
            format!("protocol: the server reset the stream ({reason})"),
        );
    }
    if e.reason() == Some(h2::Reason::HTTP_1_1_REQUIRED) {
        return fail(
            FailureKind::Protocol,
            "protocol: the server requires HTTP/1.1: not a gRPC server",
        );
    }
    // What this side's HTTP/2 stack refused: most often a server that does
    // not speak HTTP/2 at all (an HTTP/1.1 server answering the preface, or
    // a TLS server's alert).
    let hint = if tls {
        "an HTTP/1.1 server?"
    } else {
        "an HTTP/1.1 server? for a TLS port, set `tls = true`"
    };
    match e.reason() {
        Some(r) => fail(
            FailureKind::Protocol,
            format!("protocol: not an HTTP/2 server ({r:?}): {hint}"),
        ),
        None => fail(FailureKind::Protocol, format!("protocol: HTTP/2: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(status: i32) -> Vec<u8> {
        let msg = HealthCheckResponse { status };
        let enc = prost::Message::encode_to_vec(&msg);
        let mut out = vec![0];
        out.extend_from_slice(&(enc.len() as u32).to_be_bytes());
        out.extend_from_slice(&enc);
        out
    }

    fn grpc_head() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h
    }

    fn trailers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn reason(r: Result<(), Failure>) -> (FailureKind, String) {
        let f = r.unwrap_err();
        (f.kind, f.reason)
    }

    #[test]
    fn the_request_is_one_framed_health_check_request() {
        // Field 1 (string, wire type 2) = "api.v1".
        assert_eq!(
            &request_body("api.v1")[..],
            b"\x00\x00\x00\x00\x08\x0a\x06api.v1"
        );
        // The server as a whole: an empty message.
        assert_eq!(&request_body("")[..], b"\x00\x00\x00\x00\x00");
    }

    #[test]
    fn serving_passes_and_every_other_status_is_named() {
        let ok = trailers(&[("grpc-status", "0")]);
        assert_eq!(judge(200, &grpc_head(), &framed(1), Some(&ok)), Ok(()));
        for (status, why) in [
            (0, "grpc UNKNOWN"),
            (2, "grpc NOT_SERVING"),
            (3, "grpc SERVICE_UNKNOWN"),
            (7, "grpc serving status 7"),
        ] {
            let r = judge(200, &grpc_head(), &framed(status), Some(&ok));
            assert_eq!(reason(r), (FailureKind::Status, why.to_string()));
        }
        // An absent field is its default, UNKNOWN.
        let empty = b"\x00\x00\x00\x00\x00";
        assert_eq!(
            reason(judge(200, &grpc_head(), empty, Some(&ok))).1,
            "grpc UNKNOWN"
        );
        // Unknown fields a newer server adds are skipped.
        let mut extra = framed(1);
        extra.extend_from_slice(b"\x12\x02hi");
        extra[4] += 4;
        assert_eq!(judge(200, &grpc_head(), &extra, Some(&ok)), Ok(()));
    }

    #[test]
    fn grpc_errors_carry_code_name_and_decoded_message() {
        let t = trailers(&[
            ("grpc-status", "12"),
            ("grpc-message", "unknown service grpc.health.v1.Health"),
        ]);
        assert_eq!(
            reason(judge(200, &grpc_head(), b"", Some(&t))),
            (
                FailureKind::Status,
                "grpc status 12 UNIMPLEMENTED: unknown service grpc.health.v1.Health".into()
            )
        );
        // Trailers-Only: the status in the head; the message percent-encoded.
        let mut head = grpc_head();
        head.insert("grpc-status", HeaderValue::from_static("5"));
        head.insert(
            "grpc-message",
            HeaderValue::from_static("no%20such%0Aservice%"),
        );
        assert_eq!(
            reason(judge(200, &head, b"", None)).1,
            "grpc status 5 NOT_FOUND: no such service%"
        );
        let t = trailers(&[("grpc-status", "99")]);
        assert_eq!(
            reason(judge(200, &grpc_head(), b"", Some(&t))).1,
            "grpc status 99 (unknown code)"
        );
    }

    #[test]
    fn non_grpc_answers_are_protocol_failures() {
        let ok = trailers(&[("grpc-status", "0")]);
        assert_eq!(
            reason(judge(404, &HeaderMap::new(), b"", None)).1,
            "http status 404"
        );
        let mut html = HeaderMap::new();
        html.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        assert_eq!(
            reason(judge(200, &html, b"", Some(&ok))),
            (
                FailureKind::Protocol,
                "protocol: content-type `text/html`, not application/grpc".into()
            )
        );
        assert_eq!(
            reason(judge(200, &grpc_head(), &framed(1), None)).1,
            "protocol: no grpc-status in the response"
        );
        let bad = trailers(&[("grpc-status", "zero")]);
        assert_eq!(
            reason(judge(200, &grpc_head(), &framed(1), Some(&bad))).1,
            "protocol: malformed grpc-status"
        );
        assert_eq!(
            reason(judge(200, &grpc_head(), b"", Some(&ok))).1,
            "protocol: no response message"
        );
        let mut compressed = framed(1);
        compressed[0] = 1;
        assert!(
            reason(judge(200, &grpc_head(), &compressed, Some(&ok)))
                .1
                .contains("compressed")
        );
        let truncated = &framed(1)[..6];
        assert!(
            reason(judge(200, &grpc_head(), truncated, Some(&ok)))
                .1
                .contains("truncated")
        );
        let garbage = b"\x00\x00\x00\x00\x02\xff\xff";
        assert_eq!(
            reason(judge(200, &grpc_head(), garbage, Some(&ok))).1,
            "protocol: malformed HealthCheckResponse"
        );
    }

    #[test]
    fn http2_errors_say_what_the_peer_likely_is() {
        let frame = h2::Error::from(h2::Reason::FRAME_SIZE_ERROR);
        assert_eq!(
            h2_failure(&frame, false).reason,
            "protocol: not an HTTP/2 server (FRAME_SIZE_ERROR): an HTTP/1.1 server? for a TLS port, set `tls = true`"
        );
        assert_eq!(
            h2_failure(&frame, true).reason,
            "protocol: not an HTTP/2 server (FRAME_SIZE_ERROR): an HTTP/1.1 server?"
        );
    }

    #[test]
    fn tls_names_lose_port_and_brackets() {
        assert_eq!(
            super::super::bare_host("api.example.com:8443"),
            "api.example.com"
        );
        assert_eq!(super::super::bare_host("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(super::super::bare_host("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(super::super::bare_host("localhost"), "localhost");
    }

    #[test]
    fn server_text_is_one_bounded_line() {
        assert_eq!(printable("a\r\nb", 10), "a  b");
        assert_eq!(printable(&"x".repeat(300), 5), "xxxxx…");
        assert_eq!(
            not_h2(b"http/1.1").reason,
            "tls: the server chose ALPN `http/1.1`, not h2: gRPC needs HTTP/2"
        );
    }
}
