//! Delivery to one target: one HTTP/1.1 POST per attempt over a fresh
//! connection (webhooks are rare; a pool would only hold sockets open),
//! TLS by the prober's rustls set-up, every attempt bounded by the
//! target's timeout, retried with exponential backoff and jitter until
//! `retry_for` has passed since the message was queued.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::payload::{self, Message};
use super::target::{Format, TargetConfig, TargetStats};

/// First retry delay (before jitter).
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest delay between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Largest response head read from a receiver.
const HEADER_LIMIT: usize = 16 * 1024;

/// The delay before retry number `retry` (1 for the first): exponential
/// from 500 ms, capped at 60 s, with "equal jitter" (between half and all
/// of it), so receivers coming back are not hit by every sender at once.
/// `unit` is a uniform random number in `[0, 1)`.
pub fn backoff(retry: u32, unit: f64) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
    let cap = exp.min(BACKOFF_MAX);
    cap / 2 + cap.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
}

/// A message queued for a target, with when it was queued.
pub struct Queued {
    /// The message.
    pub message: Arc<Message>,
    /// When it entered the queue: `retry_for` counts from here.
    pub at: Instant,
}

/// Why an attempt failed.
struct AttemptError {
    reason: String,
    /// Retrying cannot help (a 4xx that means "this request is wrong").
    permanent: bool,
    /// `Retry-After` from a 429 or 503, in seconds.
    retry_after: Option<u64>,
}

/// A parsed webhook URL.
struct Endpoint {
    host: String,
    port: u16,
    authority: String,
    path: http::Uri,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl Endpoint {
    fn new(t: &TargetConfig) -> Result<Endpoint, String> {
        let uri: http::Uri = t
            .url
            .expose()
            .parse()
            .map_err(|_| "not a URL".to_string())?;
        let https = uri.scheme_str() == Some("https");
        let authority = uri.authority().ok_or("no host")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<http::Uri>()
            .map_err(|_| "bad path".to_string())?;
        let tls = if https {
            let config = crate::health::tls::client_config(&crate::health::tls::TlsKey {
                verify: true,
                ca_cert: t.ca_cert.clone(),
                identity: None,
            })?;
            let name = ServerName::try_from(host.clone())
                .map_err(|_| format!("`{host}` is not a TLS server name"))?;
            Some((tokio_rustls::TlsConnector::from(config), name))
        } else {
            None
        };
        Ok(Endpoint {
            host,
            port,
            authority: authority.as_str().to_string(),
            path,
            tls,
        })
    }
}

/// Delivers what arrives on `rx` to the target, one message at a time and
/// in order, until the queue closes (the target was removed or changed:
/// what is queued is still delivered) or `shutdown`.
pub async fn run(
    target: TargetConfig,
    stats: Arc<TargetStats>,
    mut rx: mpsc::Receiver<Queued>,
    shutdown: CancellationToken,
) {
    let endpoint = match Endpoint::new(&target) {
        Ok(e) => Some(e),
        Err(e) => {
            warn!(target = %target.name, url = %target.shown_url(), error = %e, "notify target unusable: its messages are counted failed");
            None
        }
    };
    loop {
        let q = tokio::select! {
            _ = shutdown.cancelled() => return,
            q = rx.recv() => match q { Some(q) => q, None => return },
        };
        let Some(endpoint) = &endpoint else {
            stats.queued.fetch_sub(1, Ordering::Relaxed);
            stats.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let body = Bytes::from(match target.format {
            Format::Json => payload::json(&q.message),
            Format::Slack => payload::slack(&q.message),
        });
        let deadline = q.at + target.retry_for;
        let mut retry = 0u32;
        let outcome = loop {
            if Instant::now() >= deadline && retry == 0 && !target.retry_for.is_zero() {
                break Err(format!(
                    "expired in the queue (older than retry_for = {})",
                    humantime::format_duration(target.retry_for)
                ));
            }
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(target.timeout, attempt(endpoint, &target, &q.message, body.clone())) => r,
            };
            let err = match attempt {
                Ok(Ok(())) => break Ok(retry),
                Ok(Err(e)) => e,
                Err(_) => AttemptError {
                    reason: format!(
                        "no answer within timeout = {}",
                        humantime::format_duration(target.timeout)
                    ),
                    permanent: false,
                    retry_after: None,
                },
            };
            if err.permanent {
                break Err(err.reason);
            }
            retry += 1;
            let mut wait = backoff(retry, fastrand::f64());
            if let Some(s) = err.retry_after {
                wait = wait.max(Duration::from_secs(s).min(BACKOFF_MAX));
            }
            if Instant::now() + wait >= deadline {
                break Err(format!("{} (gave up after {retry} attempts)", err.reason));
            }
            stats.retries.fetch_add(1, Ordering::Relaxed);
            debug!(target = %target.name, id = %q.message.id, reason = %err.reason, retry, wait_ms = wait.as_millis() as u64, "notification not delivered; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        };
        stats.queued.fetch_sub(1, Ordering::Relaxed);
        match outcome {
            Ok(retries) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                debug!(target = %target.name, id = %q.message.id, event = q.message.event.as_str(), retries, "notification delivered");
            }
            Err(reason) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                warn!(target = %target.name, url = %target.shown_url(), id = %q.message.id, event = q.message.event.as_str(), reason = %reason, "notification failed");
            }
        }
    }
}

/// One POST; `Ok` on a 2xx answer.
async fn attempt(
    e: &Endpoint,
    target: &TargetConfig,
    m: &Message,
    body: Bytes,
) -> Result<(), AttemptError> {
    let soft = |reason: String| AttemptError {
        reason,
        permanent: false,
        retry_after: None,
    };
    let tcp = tokio::net::TcpStream::connect((e.host.as_str(), e.port))
        .await
        .map_err(|err| soft(format!("connect: {err}")))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match &e.tls {
        Some((connector, name)) => Box::new(
            connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|err| soft(format!("tls: {err}")))?,
        ),
        None => Box::new(tcp),
    };
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(HEADER_LIMIT)
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|err| soft(format!("http: {err}")))?;
    let driver = tokio::spawn(conn);
    let unix = crate::clock::unix_millis(SystemTime::now()) / 1000;
    let mut req = http::Request::post(e.path.clone());
    {
        let h = req
            .headers_mut()
            .ok_or_else(|| soft("bad request".into()))?;
        if let Ok(v) = HeaderValue::from_str(&e.authority) {
            h.insert(HOST, v);
        }
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&m.id) {
            h.insert("x-switchyard-event-id", v);
        }
        h.insert(
            "x-switchyard-event",
            HeaderValue::from_static(m.event.as_str()),
        );
        if let Some(secret) = &target.secret
            && let Ok(v) = HeaderValue::from_str(&super::hmac::signature(
                secret.expose().as_bytes(),
                unix,
                &body,
            ))
        {
            h.insert(super::hmac::SIGNATURE_HEADER, v);
        }
    }
    let req = req
        .body(Full::new(body))
        .map_err(|_| soft("bad request".into()))?;
    let result = sender.send_request(req).await;
    driver.abort();
    let resp = result.map_err(|err| soft(format!("http: {err}")))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let retry_after = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if (300..400).contains(&status) {
        return Err(AttemptError {
            reason: format!(
                "status {status}: redirects are not followed, set `url` to where it leads"
            ),
            permanent: true,
            retry_after: None,
        });
    }
    Err(AttemptError {
        reason: format!("status {status}"),
        // The request itself is wrong (or the URL is gone): the same
        // request cannot succeed later.
        permanent: matches!(status, 400 | 404 | 405 | 410 | 413 | 414 | 415 | 422),
        retry_after,
    })
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(2));
        // Capped at 60 s, however many retries.
        for r in [8, 9, 30, u32::MAX] {
            assert_eq!(backoff(r, 0.999_999).as_secs(), 59, "{r}");
            assert!(backoff(r, 0.0) >= Duration::from_secs(30));
        }
        // Jitter spreads senders: not all the same.
        let spread: std::collections::HashSet<_> = (0..20)
            .map(|_| backoff(4, fastrand::f64()).as_millis())
            .collect();
        assert!(spread.len() > 1);
    }
}
