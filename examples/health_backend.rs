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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let count = count.clone();
        tokio::spawn(async move {
            let mut first = [0u8; 4];
            if matches!(s.peek(&mut first).await, Ok(4)) && &first == b"PRI " {
                return grpc(s, status == 200, &count).await;
            }
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
        });
    }
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
