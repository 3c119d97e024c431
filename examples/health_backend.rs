//! Run with: cargo run --release --example health_backend -- [PORT] [STATUS]
//!
//! A minimal health endpoint for local drills and benchmarks: answers every
//! HTTP/1.1 request on 127.0.0.1:PORT (default 8081) with STATUS (default
//! 200) and closes the connection. `GET /count` returns how many health
//! requests it has answered. Loopback only.
//!
//! The same port speaks gRPC: a connection that opens with the HTTP/2
//! preface (h2c, as a `protocol = "grpc"` probe) is served the standard
//! health check, `grpc.health.v1.Health/Check`: SERVING when STATUS is
//! 200, NOT_SERVING otherwise (counted alike).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8081);
    let status: u16 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    eprintln!(
        "health backend on {} answering {status}",
        listener.local_addr().unwrap()
    );
    let count = Arc::new(AtomicU64::new(0));
    let tls = tls_acceptor();
    loop {
        let Ok((s, _)) = listener.accept().await else {
            continue;
        };
        let count = count.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut first = [0u8; 4];
            if matches!(s.peek(&mut first).await, Ok(4)) && &first == b"PRI " {
                return grpc(s, status == 200, &count).await;
            }
            // A TLS ClientHello (an `https` probe): the same answers over
            // TLS, with a certificate made at start (probes set
            // `tls_verify = false`).
            if matches!(s.peek(&mut first).await, Ok(n) if n >= 1) && first[0] == 0x16 {
                if let Ok(tls) = tls.accept(s).await {
                    http(tls, status, &count).await;
                }
                return;
            }
            http(s, status, &count).await;
        });
    }
}

/// Answers one HTTP/1.1 request: STATUS, or the count for `GET /count`.
async fn http<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, status: u16, count: &AtomicU64) {
    let mut buf = [0u8; 4096];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let reply = if head.starts_with(b"GET /count ") {
        let n = count.load(Ordering::Relaxed).to_string();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{n}",
            n.len()
        )
    } else {
        count.fetch_add(1, Ordering::Relaxed);
        format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
    };
    let _ = s.write_all(reply.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A TLS acceptor with a self-signed certificate for 127.0.0.1 made now.
fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Serves gRPC health checks on one HTTP/2 connection.
async fn grpc(s: TcpStream, serving: bool, count: &AtomicU64) {
    let Ok(mut conn) = h2::server::handshake(s).await else {
        return;
    };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        let mut body = req.into_body();
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        count.fetch_add(1, Ordering::Relaxed);
        // One message: HealthCheckResponse { status: SERVING (1) or
        // NOT_SERVING (2) }, field 1 as a varint, after the 5-byte prefix.
        let message: &'static [u8] = if serving {
            b"\x00\x00\x00\x00\x02\x08\x01"
        } else {
            b"\x00\x00\x00\x00\x02\x08\x02"
        };
        let head = http::Response::builder()
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let Ok(mut stream) = respond.send_response(head, false) else {
            continue;
        };
        let _ = stream.send_data(Bytes::from_static(message), false);
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let _ = stream.send_trailers(trailers);
    }
}
