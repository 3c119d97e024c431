//! A real gRPC health server on loopback, for the grpc probe's tests: the
//! standard `grpc.health.v1.Health/Check` over HTTP/2, plaintext (h2c) or
//! TLS (ALPN h2), with per-service serving statuses set by the test.
//!
//! Built on the `h2` crate's server and prost, as gRPC over HTTP/2
//! specifies it: a POST to `/grpc.health.v1.Health/Check` with
//! `content-type: application/grpc`, one length-prefixed message each
//! way, `grpc-status` in the trailers, or alone in the head
//! (Trailers-Only) for an error, as grpc-go's health server answers
//! `NOT_FOUND` "unknown service".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use crate::backend::Pki;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServingStatus {
    Unknown = 0,
    Serving = 1,
    NotServing = 2,
}

/// One call the server received.
#[derive(Clone, Debug)]
pub struct Call {
    /// `:authority`.
    pub authority: String,
    /// The service asked about.
    pub service: String,
    /// The request headers (gRPC metadata).
    pub headers: HeaderMap,
}

#[derive(Default)]
struct State {
    /// Service name ("" for the server as a whole) to serving status;
    /// names not here are unknown (NOT_FOUND).
    services: HashMap<String, ServingStatus>,
    /// Answer every call with UNIMPLEMENTED: a gRPC server without the
    /// health service.
    no_health_service: bool,
    calls: Vec<Call>,
}

/// A running gRPC health server; dropping it stops it (connections too).
pub struct GrpcBackend {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GrpcBackend {
    /// Plaintext HTTP/2 (h2c), the whole server SERVING.
    pub fn plaintext() -> GrpcBackend {
        Self::start(None)
    }

    /// TLS with the test PKI's server certificate, ALPN h2.
    pub fn tls(pki: &Pki) -> GrpcBackend {
        let mut config = (*pki.server_config(false)).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Self::start(Some(Arc::new(config)))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> GrpcBackend {
        let state = Arc::new(Mutex::new(State::default()));
        state
            .lock()
            .unwrap()
            .services
            .insert(String::new(), ServingStatus::Serving);
        let shutdown = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (st, s) = (state.clone(), shutdown.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                loop {
                    let (stream, _) = tokio::select! {
                        _ = s.cancelled() => return,
                        a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
                    };
                    let (st, s, acceptor) = (st.clone(), s.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = s.cancelled() => {}
                            _ = async {
                                match acceptor {
                                    Some(a) => {
                                        if let Ok(tls) = a.accept(stream).await {
                                            serve(tls, &st).await;
                                        }
                                    }
                                    None => serve(stream, &st).await,
                                }
                            } => {}
                        }
                    });
                }
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        GrpcBackend {
            addr,
            state,
            shutdown,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sets a service's serving status ("" is the server as a whole).
    pub fn set(&self, service: &str, status: ServingStatus) {
        self.state
            .lock()
            .unwrap()
            .services
            .insert(service.to_string(), status);
    }

    /// Forgets a service: calls for it get NOT_FOUND "unknown service".
    pub fn remove(&self, service: &str) {
        self.state.lock().unwrap().services.remove(service);
    }

    /// Makes every call fail with UNIMPLEMENTED, as a gRPC server that
    /// does not register the health service does.
    pub fn without_health_service(&self) {
        self.state.lock().unwrap().no_health_service = true;
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection: each stream is one call.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(io: S, state: &Mutex<State>) {
    let Ok(mut conn) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((req, respond))) = conn.accept().await {
        answer(req, respond, state).await;
    }
}

/// Answers one call: the request read whole, then the health status.
async fn answer(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    state: &Mutex<State>,
) {
    let (head, mut body) = req.into_parts();
    let grpc = head
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !grpc {
        let resp = Response::builder()
            .status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .body(())
            .unwrap();
        let _ = respond.send_response(resp, true);
        return;
    }
    let mut data = BytesMut::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let request = match &data[..] {
        [0, _, _, _, _, msg @ ..] => HealthCheckRequest::decode(msg).ok(),
        _ => None,
    };
    let Some(request) = request else {
        return trailers_only(respond, 13, "malformed request");
    };
    let status = {
        let mut st = state.lock().unwrap();
        st.calls.push(Call {
            authority: head
                .uri
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            service: request.service.clone(),
            headers: head.headers.clone(),
        });
        if st.no_health_service || head.uri.path() != "/grpc.health.v1.Health/Check" {
            None
        } else {
            Some(st.services.get(&request.service).copied())
        }
    };
    let serving = match status {
        None => {
            return trailers_only(respond, 12, "unknown service grpc.health.v1.Health");
        }
        Some(None) => return trailers_only(respond, 5, "unknown service"),
        Some(Some(s)) => s,
    };
    let msg = HealthCheckResponse {
        status: serving as i32,
    }
    .encode_to_vec();
    let mut framed = BytesMut::with_capacity(5 + msg.len());
    framed.put_u8(0);
    framed.put_u32(msg.len() as u32);
    framed.put_slice(&msg);
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let Ok(mut stream) = respond.send_response(resp, false) else {
        return;
    };
    let _ = stream.send_data(framed.freeze(), false);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
}

/// An error status alone in the response head, ending the stream.
fn trailers_only(mut respond: h2::server::SendResponse<Bytes>, code: u32, message: &str) {
    let message: String = message
        .bytes()
        .map(|b| match b {
            b' '..=b'~' if b != b'%' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .header("grpc-status", code.to_string())
        .header("grpc-message", message)
        .body(())
        .unwrap();
    let _ = respond.send_response(resp, true);
}
