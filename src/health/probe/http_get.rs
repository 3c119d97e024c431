//! The HTTP(S) probe: one GET over a fresh connection, through hyper's
//! connection API (see the module above for why).

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Failure, FailureKind, LocalFault, Source, close_with_reset, fail, io_failure};
use crate::health::spec::{ProbeSpec, Protocol};

/// Most body bytes read for `body_match`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Largest response head (status line and headers) a probe reads.
pub const HEADER_LIMIT: usize = 16 * 1024;

pub(super) struct HttpProbe {
    /// Address or host name to connect to, and port.
    host: String,
    port: u16,
    /// TLS configuration and the name to present and verify (https only).
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// Request target (path and query). Holds the health key: never log it.
    path: http::Uri,
    headers: HeaderMap,
    expected: Vec<RangeInclusive<u16>>,
    body_match: Option<String>,
}

impl HttpProbe {
    /// Builds the request for `spec` once: path (with the key), headers,
    /// Host, TLS name. Errors are configuration problems.
    pub(super) fn new(
        spec: &ProbeSpec,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<HttpProbe, String> {
        let m = &spec.monitor;
        let https = m.protocol == Protocol::Https;
        let default_port = if https { 443 } else { 80 };
        let path = match &m.key {
            Some(k) => spec.path.replace("{key}", &encode_path_segment(k.expose())),
            None => spec.path.clone(),
        };
        let path: http::Uri = path
            .parse()
            .map_err(|_| "the probe path is not a valid request target".to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchyard-probe/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in &spec.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("bad header name `{k}`"))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| format!("bad value for header `{k}`"))?;
            headers.insert(name, value);
        }
        // Host as configured (already among the headers) or derived.
        let (host_name, host) = super::host_header(spec, default_port);
        let host = HeaderValue::from_str(&host).map_err(|_| "bad Host header value".to_string())?;
        headers.insert(HOST, host);
        let tls = match (https, tls) {
            (true, Some(config)) => {
                // Present and verify the Host name when there is one,
                // else the address we connect to.
                let bare = super::bare_host(&host_name);
                let name = ServerName::try_from(bare.to_string())
                    .map_err(|_| format!("`{bare}` is not a name TLS can verify"))?;
                Some((tokio_rustls::TlsConnector::from(config), name))
            }
            (true, None) => return Err("https probe without a TLS configuration".into()),
            (false, _) => None,
        };
        Ok(HttpProbe {
            host: spec.host.clone(),
            port: spec.port,
            tls,
            path,
            headers,
            expected: m.expected_status.clone(),
            body_match: m.body_match.clone(),
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Skips the graceful write shutdown hyper performs on `Connection: close`:
/// the probe is over by then, and the socket is reset on drop
/// ([`close_with_reset`]), which costs the kernel far less than a FIN
/// exchange.
struct NoShutdown(Box<dyn Io>);

impl AsyncRead for NoShutdown {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for NoShutdown {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

type Attempt = Result<Option<u16>, (Option<u16>, Failure)>;

/// The response header a health page reports its load in: a number, 1.0
/// meaning at capacity (`X-Switchyard-Load: 0.91`).
pub const LOAD_HEADER: &str = "x-switchyard-load";

/// A load as reported, a number from 0 to 100 (1.0: at capacity), in
/// thousandths; anything else is ignored.
pub fn parse_load(text: &str) -> Option<u32> {
    let v: f64 = text.trim().parse().ok()?;
    (v.is_finite() && (0.0..=100.0).contains(&v)).then(|| (v * 1000.0).round() as u32)
}

/// The load a JSON health body reports in its top-level `load` field
/// (`{"status": "ok", "load": 0.91}`), reading at most [`BODY_LIMIT`]
/// bytes; `None` when there is none (or the body is not such JSON).
async fn json_load(mut body: hyper::body::Incoming) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct Doc {
        load: Option<serde_json::Value>,
    }
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(chunk) = frame.into_data() {
            if bytes.len() + chunk.len() > BODY_LIMIT {
                return None;
            }
            bytes.extend_from_slice(&chunk);
        }
    }
    let doc: Doc = serde_json::from_slice(&bytes).ok()?;
    match doc.load? {
        serde_json::Value::Number(n) => parse_load(&n.to_string()),
        serde_json::Value::String(s) => parse_load(&s),
        _ => None,
    }
}

impl HttpProbe {
    /// One GET. An HTTPS probe writes the `notAfter` of the certificate
    /// the endpoint presented to `cert_not_after` right after the handshake.
    pub(super) async fn get(
        &self,
        source: Source,
        cert_not_after: &mut Option<std::time::SystemTime>,
        load: &mut Option<u32>,
    ) -> Attempt {
        let tcp = source
            .connect(&self.host, self.port)
            .await
            .map_err(|e| (None, io_failure(&e)))?;
        let _ = tcp.set_nodelay(true);
        close_with_reset(&tcp);
        let io: Box<dyn Io> = match &self.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| (None, tls_failure(&e)))?;
                // The leaf certificate comes first (RFC 8446, 4.4.2).
                *cert_not_after = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| super::cert::not_after(leaf));
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        // The read buffer bounds the response head: a backend sending
        // endless headers fails the probe instead of being buffered.
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(HEADER_LIMIT)
            .handshake(TokioIo::new(NoShutdown(io)))
            .await
            .map_err(|e| (None, hyper_failure(&e)))?;
        let mut req = http::Request::get(self.path.clone())
            .body(Empty::<Bytes>::new())
            .map_err(|_| (None, fail(FailureKind::Protocol, "protocol: bad request")))?;
        *req.headers_mut() = self.headers.clone();
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| (None, hyper_failure(&e)))?;
            let status = resp.status().as_u16();
            if !self.expected.iter().any(|r| r.contains(&status)) {
                return Err((
                    Some(status),
                    fail(FailureKind::Status, format!("status {status}")),
                ));
            }
            *load = resp
                .headers()
                .get(LOAD_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_load);
            let json = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            let Some(needle) = &self.body_match else {
                if json && load.is_none() {
                    *load = json_load(resp.into_body()).await;
                }
                return Ok(Some(status));
            };
            let needle = needle.as_bytes();
            let mut body_stream = resp.into_body();
            let mut body: Vec<u8> = Vec::with_capacity(4096);
            while body.len() < BODY_LIMIT {
                let frame = match body_stream.frame().await {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => return Err((Some(status), hyper_failure(&e))),
                    None => break,
                };
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                // Search only what this chunk can have completed.
                let from = body.len().saturating_sub(needle.len().saturating_sub(1));
                let take = chunk.len().min(BODY_LIMIT - body.len());
                body.extend_from_slice(&chunk[..take]);
                if contains(&body[from..], needle) {
                    return Ok(Some(status));
                }
            }
            Err((
                Some(status),
                fail(
                    FailureKind::Body,
                    format!("body mismatch (not in the first {} bytes)", body.len()),
                ),
            ))
        };
        // The connection future drives the socket. It may finish (the
        // server closed after answering) before the exchange has read the
        // buffered response, so keep polling the exchange until it ends; a
        // connection error explains a failed exchange best.
        tokio::pin!(conn);
        tokio::pin!(exchange);
        let mut conn_failure = None;
        let mut conn_done = false;
        loop {
            tokio::select! {
                biased;
                r = &mut exchange => {
                    return match (r, conn_failure) {
                        (Err((status, f)), Some(cf)) if f.kind == FailureKind::Protocol => Err((status, cf)),
                        (r, _) => r,
                    };
                }
                c = &mut conn, if !conn_done => {
                    conn_done = true;
                    if let Err(e) = c {
                        conn_failure = Some(hyper_failure(&e));
                    }
                }
            }
        }
    }
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Percent-encodes what cannot appear raw in a path segment.
pub(super) fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A rustls error as a reason: its own text (which names the variant, for
/// searching) and, for the ones operators meet, what it means and what to
/// change.
fn tls_reason(e: &rustls::Error) -> String {
    let raw = e.to_string();
    let hint = if raw.contains("UnknownIssuer") {
        "not signed by a CA the prober trusts: for a private CA, set `ca_cert`"
    } else if raw.contains("CaUsedAsEndEntity") {
        "the server presents a CA certificate as its own: it must present a server certificate signed by that CA"
    } else if raw.contains("NotValidForName") || raw.contains("not valid for name") {
        "the certificate does not name the host checked: set a `Host` header in [monitor] to a name it carries (it is also the TLS server name)"
    } else if raw.contains("Expired") && !raw.contains("RevocationList") {
        "the certificate has expired"
    } else if raw.contains("NotValidYet") {
        "the certificate is not valid yet (or this host's clock is behind)"
    } else if raw.contains("BadSignature") {
        "the certificate's signature does not verify"
    } else if raw.contains("InvalidPurpose") {
        "the certificate is not for TLS servers (extended key usage)"
    } else {
        ""
    };
    if hint.is_empty() {
        format!("tls: {raw}")
    } else {
        format!("tls: {raw}: {hint}")
    }
}

/// A TLS handshake failure: the rustls error inside the io::Error.
pub(super) fn tls_failure(e: &std::io::Error) -> Failure {
    if LocalFault::of(e).is_some() {
        return io_failure(e);
    }
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return fail(FailureKind::Tls, tls_reason(tls));
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => fail(
            FailureKind::Tls,
            "tls: connection closed during the handshake",
        ),
        _ => {
            let f = io_failure(e);
            fail(FailureKind::Tls, format!("tls: {}", f.reason))
        }
    }
}

/// Turns a hyper error into a reason, looking through its causes (a TLS
/// alert or a reset surfaces as an io::Error inside).
fn hyper_failure(e: &hyper::Error) -> Failure {
    if e.is_parse_too_large() {
        return fail(
            FailureKind::Protocol,
            format!(
                "protocol: response headers larger than {} KiB",
                HEADER_LIMIT / 1024
            ),
        );
    }
    if e.is_parse() || e.is_parse_status() {
        return fail(FailureKind::Protocol, "protocol: not an HTTP response");
    }
    if e.is_incomplete_message() {
        return fail(
            FailureKind::Protocol,
            "protocol: connection closed before a complete response",
        );
    }
    if e.is_timeout() {
        return fail(FailureKind::Timeout, "timeout");
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return fail(FailureKind::Tls, tls_reason(tls));
            }
            let f = io_failure(io);
            return match f.kind {
                FailureKind::Connect | FailureKind::Timeout | FailureKind::Local => f,
                _ => fail(FailureKind::Protocol, format!("protocol: {}", f.reason)),
            };
        }
        cause = c.source();
    }
    fail(FailureKind::Protocol, format!("protocol: {e}"))
}
