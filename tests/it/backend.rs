//! Real health backends on loopback: HTTP, HTTPS (certificates generated at
//! test time, optionally requiring a client certificate), and the hostile
//! kinds: hanging, trickling, flooding, redirecting, non-HTTP, resetting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

/// What a backend does with each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 200 with body "HealthCheck OK".
    Ok = 0,
    /// 503.
    Unavailable,
    /// Accepts, reads the request, never answers.
    Hang,
    /// 200 headers, then one body byte every 200 ms.
    Trickle,
    /// 200 with a 100 MB body of zeros.
    Huge,
    /// 301 to another path.
    Redirect,
    /// Speaks SSH instead of HTTP.
    Garbage,
    /// Resets the connection after reading the request.
    Reset,
    /// 200 after 200 KB of response headers.
    HugeHeaders,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        [
            Mode::Ok,
            Mode::Unavailable,
            Mode::Hang,
            Mode::Trickle,
            Mode::Huge,
            Mode::Redirect,
            Mode::Garbage,
            Mode::Reset,
            Mode::HugeHeaders,
        ][v as usize]
    }
}

/// A test PKI: a CA, a server certificate for `localhost` and 127.0.0.1, and
/// a client certificate, written as PEM files.
pub struct Pki {
    pub dir: tempfile::TempDir,
    server_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
    client_ca: rustls::pki_types::CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "switchyard test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut sp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        sp.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let server_cert = sp.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
        cp.distinguished_name
            .push(DnType::CommonName, "switchyard probe");
        let client_cert = cp.signed_by(&client_key, &issuer).unwrap();
        let other_key = KeyPair::generate().unwrap();

        let w = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        w("ca.pem", ca_cert.pem());
        w("client.pem", client_cert.pem());
        w("client.key", client_key.serialize_pem());
        w("other.key", other_key.serialize_pem());
        Pki {
            server_certs: vec![server_cert.der().clone(), ca_cert.der().clone()],
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            client_ca: ca_cert.der().clone(),
            issuer,
            dir,
        }
    }

    /// A server configuration with a new certificate for `localhost` and
    /// 127.0.0.1 signed by the CA, valid until `not_after` (Unix seconds).
    pub fn server_config_until(&self, not_after: u64) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut sp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        sp.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        sp.not_before = rcgen::date_time_ymd(2020, 1, 1);
        sp.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(not_after);
        let cert = sp.signed_by(&key, &self.issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone(), self.client_ca.clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .unwrap(),
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn server_config(&self, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.client_ca.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(
            builder
                .with_single_cert(self.server_certs.clone(), self.server_key.clone_key())
                .unwrap(),
        )
    }
}

/// A running backend; dropping it stops it.
pub struct Backend {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// HTTPS: what each new connection is served with.
    tls: Option<Arc<Mutex<Arc<rustls::ServerConfig>>>>,
    /// Request heads received (request line and headers).
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    /// Plain HTTP.
    pub fn http(mode: Mode) -> Backend {
        Self::start(mode, None)
    }

    /// HTTPS with the test PKI's server certificate.
    pub fn https(mode: Mode, pki: &Pki, require_client_cert: bool) -> Backend {
        Self::start(mode, Some(pki.server_config(require_client_cert)))
    }

    /// HTTPS with `config` (see [`Backend::set_tls`]).
    pub fn https_with(mode: Mode, config: Arc<rustls::ServerConfig>) -> Backend {
        Self::start(mode, Some(config))
    }

    /// HTTPS: serves new connections with `config` (a renewed certificate).
    pub fn set_tls(&self, config: Arc<rustls::ServerConfig>) {
        *self.tls.as_ref().expect("an HTTPS backend").lock().unwrap() = config;
    }

    fn start(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Backend {
        let tls = tls.map(|t| Arc::new(Mutex::new(t)));
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (m, r, c, s, t) = (
            mode.clone(),
            requests.clone(),
            connections.clone(),
            shutdown.clone(),
            tls.clone(),
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        _ = s.cancelled() => return,
                        a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
                    };
                    c.fetch_add(1, Ordering::SeqCst);
                    let acceptor = t
                        .as_ref()
                        .map(|t| tokio_rustls::TlsAcceptor::from(t.lock().unwrap().clone()));
                    let (m, r, s) = (m.clone(), r.clone(), s.clone());
                    tokio::spawn(async move {
                        let mode = Mode::from_u8(m.load(Ordering::SeqCst));
                        if mode == Mode::Reset {
                            let _ =
                                socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                        }
                        tokio::select! {
                            _ = s.cancelled() => {}
                            _ = async {
                                match acceptor {
                                    Some(a) => {
                                        if let Ok(tls) = a.accept(stream).await {
                                            serve(tls, mode, &r).await;
                                        }
                                    }
                                    None => serve(stream, mode, &r).await,
                                }
                            } => {}
                        }
                    });
                }
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Backend {
            addr,
            mode,
            tls,
            requests,
            connections,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Changes what the next requests get.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Number of requests seen so far.
    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut byte).await.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, mode: Mode, log: &Mutex<Vec<String>>) {
    if mode == Mode::Garbage {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        return;
    }
    let Some(head) = read_head(&mut s).await else {
        return;
    };
    log.lock().unwrap().push(head);
    let simple = |code: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {code}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    match mode {
        Mode::Ok => {
            let _ = s
                .write_all(simple("200 OK", "", "HealthCheck OK").as_bytes())
                .await;
        }
        Mode::Unavailable => {
            let _ = s
                .write_all(simple("503 Service Unavailable", "", "down").as_bytes())
                .await;
        }
        Mode::Redirect => {
            let _ = s
                .write_all(
                    simple("301 Moved Permanently", "Location: /elsewhere\r\n", "").as_bytes(),
                )
                .await;
        }
        Mode::Hang => {
            // Hold the connection until the client gives up.
            let mut sink = [0u8; 64];
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        Mode::Trickle => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
                .await;
            for _ in 0..1000 {
                if s.write_all(b"x").await.is_err() || s.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Mode::Huge => {
            let total: usize = 100 * 1024 * 1024;
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            let chunk = vec![0u8; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        }
        Mode::Reset => {
            // Dropping with SO_LINGER 0 sends RST.
        }
        Mode::HugeHeaders => {
            let mut head = String::from("HTTP/1.1 200 OK\r\n");
            // Few headers (hyper allows 100), each long.
            for i in 0..20 {
                head.push_str(&format!("X-Filler-{i}: {}\r\n", "y".repeat(10_000)));
            }
            head.push_str("Content-Length: 14\r\nConnection: close\r\n\r\nHealthCheck OK");
            let _ = s.write_all(head.as_bytes()).await;
        }
        Mode::Garbage => unreachable!(),
    }
    let _ = s.shutdown().await;
}

/// A loopback port with nothing listening.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// Polls `f` every 10 ms until it returns true or `within` passes; returns
/// the time it took.
pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Watches `f` every 10 ms for `window`: `Err` with the time it first
/// returned false, `Ok` when it held throughout. For tests that prove
/// nothing changed: the window is the claim, so say how long and why.
pub fn holds_for(window: Duration, mut f: impl FnMut() -> bool) -> Result<(), Duration> {
    let start = std::time::Instant::now();
    loop {
        if !f() {
            return Err(start.elapsed());
        }
        if start.elapsed() >= window {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
