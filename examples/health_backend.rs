//! Run with: cargo run --release --example health_backend -- [PORT] [STATUS]
//!
//! A minimal health endpoint for local drills and benchmarks: answers every
//! HTTP/1.1 request on 127.0.0.1:PORT (default 8081) with STATUS (default
//! 200) and closes the connection. `GET /count` returns how many health
//! requests it has answered. Loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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
