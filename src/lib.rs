//! The kit shared by Switchyard's examples and integration tests: real HTTP backends on
//! loopback that answer with their own name.
//!
//! A [`Backend`] is a hyper server (HTTP/1.1 and HTTP/2) on its own Tokio runtime. Every
//! response carries the backend's name as its body and in `x-backend`, and the path and
//! query it received in `x-path`, so a test can assert who answered and what was forwarded.

pub mod dns;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running HTTP backend.
pub struct Backend {
    name: Arc<str>,
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
    behaviour: Behaviour,
}

/// How a backend answers.
#[derive(Clone)]
enum Behaviour {
    /// Plain HTTP: 200 with its name.
    Plain {
        status: Arc<std::sync::atomic::AtomicU16>,
    },
    /// HTTPS with this configuration.
    Tls(Arc<rustls::ServerConfig>),
    /// Accept connections and never answer.
    Stall,
    /// Read the request, then close the connection without answering.
    Hangup,
}

/// TLS settings of a test backend.
pub struct TlsBackend {
    /// PEM certificate chain the backend presents.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
    /// When set, clients must present a certificate signed by this PEM CA (mTLS).
    pub client_ca_pem: Option<String>,
}

/// Start a backend named `name` on an ephemeral loopback port.
pub fn spawn_backend(name: &str) -> Backend {
    Backend::spawn_on(name, "127.0.0.1:0".parse().expect("literal address"))
        .expect("bind an ephemeral loopback port")
}

impl Backend {
    /// Start a backend named `name` on `addr` (port 0 picks a free port).
    pub fn spawn_on(name: &str, addr: SocketAddr) -> io::Result<Backend> {
        Self::spawn_with(
            name,
            addr,
            Behaviour::Plain {
                status: Arc::new(200.into()),
            },
        )
    }

    /// Start an HTTPS backend (HTTP/1.1 and HTTP/2 by ALPN) on an ephemeral loopback port.
    /// Responses also carry `x-version` (the HTTP version it served) and `x-client-cert`
    /// (`yes` when the client presented a certificate).
    pub fn spawn_tls(name: &str, tls: &TlsBackend) -> io::Result<Backend> {
        use rustls::pki_types::pem::PemObject;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("certificate: {e}")))?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())
            .map_err(|e| invalid(format!("key: {e}")))?;
        let builder = rustls::ServerConfig::builder();
        let builder = match &tls.client_ca_pem {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    roots
                        .add(c.map_err(|e| invalid(format!("client CA: {e}")))?)
                        .map_err(|e| invalid(e.to_string()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| invalid(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::spawn_with(
            name,
            "127.0.0.1:0".parse().expect("literal"),
            Behaviour::Tls(Arc::new(config)),
        )
    }

    /// Start a backend that accepts connections and never answers (for read timeouts).
    pub fn spawn_stalling(name: &str) -> io::Result<Backend> {
        Self::spawn_with(
            name,
            "127.0.0.1:0".parse().expect("literal"),
            Behaviour::Stall,
        )
    }

    /// Start a backend that reads each request and hangs up without answering (a failure
    /// after the request was sent).
    pub fn spawn_hangup(name: &str) -> io::Result<Backend> {
        Self::spawn_with(
            name,
            "127.0.0.1:0".parse().expect("literal"),
            Behaviour::Hangup,
        )
    }

    /// From now on, answer every request with `status` (plain backends only).
    pub fn set_status(&self, status: u16) {
        if let Behaviour::Plain { status: s } = &self.behaviour {
            s.store(status, Ordering::Relaxed);
        }
    }

    fn spawn_with(name: &str, addr: SocketAddr, behaviour: Behaviour) -> io::Result<Backend> {
        let mut b = Backend {
            name: name.into(),
            addr,
            hits: Arc::new(AtomicU64::new(0)),
            runtime: None,
            behaviour,
        };
        b.start()?;
        Ok(b)
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `addr()` as text, for `--backend` and builder overrides.
    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Requests answered since start.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.runtime.is_some()
    }

    /// Stop listening and close every connection, as a crashed backend would.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }

    /// Start (again) on the same address.
    pub fn start(&mut self) -> io::Result<()> {
        if self.runtime.is_some() {
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("backend-{}", self.name))
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind(self.addr)?;
        std_listener.set_nonblocking(true)?;
        self.addr = std_listener.local_addr()?;
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let (name, hits, behaviour) =
            (self.name.clone(), self.hits.clone(), self.behaviour.clone());
        rt.spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let (name, hits) = (name.clone(), hits.clone());
                match &behaviour {
                    Behaviour::Stall => held.push(stream),
                    Behaviour::Hangup => {
                        tokio::spawn(async move {
                            use tokio::io::AsyncReadExt;
                            let mut stream = stream;
                            let mut buf = [0u8; 4096];
                            if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
                                hits.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                    Behaviour::Plain { status } => {
                        let status = status.clone();
                        tokio::spawn(serve(
                            hyper_util::rt::TokioIo::new(stream),
                            name,
                            hits,
                            status,
                            false,
                            peer,
                        ));
                    }
                    Behaviour::Tls(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                        tokio::spawn(async move {
                            let Ok(tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            let client_cert = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .is_some_and(|c| !c.is_empty());
                            let ok = Arc::new(std::sync::atomic::AtomicU16::new(200));
                            serve(
                                hyper_util::rt::TokioIo::new(tls),
                                name,
                                hits,
                                ok,
                                client_cert,
                                peer,
                            )
                            .await;
                        });
                    }
                }
            }
        });
        self.runtime = Some(rt);
        wait_for_port(self.addr, Duration::from_secs(5))
    }
}

/// Serve one connection: every request gets `status` and the backend's name.
async fn serve<I>(
    io: I,
    name: Arc<str>,
    hits: Arc<AtomicU64>,
    status: Arc<std::sync::atomic::AtomicU16>,
    client_cert: bool,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        hits.fetch_add(1, Ordering::Relaxed);
        let (name, status) = (name.clone(), status.load(Ordering::Relaxed));
        async move {
            let (parts, body) = req.into_parts();
            // `x-delay-ms: N` makes the answer wait (a slow backend, for drain tests).
            let delay = parts
                .headers
                .get("x-delay-ms")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if let Some(ms) = delay {
                tokio::time::sleep(Duration::from_millis(ms.min(30_000))).await;
            }
            // What arrived, for tests to assert on: the body (read whole, so pipelined
            // requests after it are parsed) and the framing and `Expect` lines.
            let body = http_body_util::BodyExt::collect(body)
                .await
                .map(|b| b.to_bytes().len().to_string())
                .unwrap_or_else(|e| format!("error: {e}"));
            let lines = |name: &str| {
                let values: Vec<&str> = parts
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap_or("(not text)"))
                    .collect();
                values.join(" | ")
            };
            let path = parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.to_string());
            let mut resp = Response::builder();
            // Every request header, as `x-req-NAME: value | value`: what a rule's header
            // actions, the forwarding headers and hooks sent.
            for name in parts.headers.keys() {
                resp = resp.header(format!("x-req-{name}"), lines(name.as_str()));
            }
            let resp = resp
                .status(status)
                .header("x-backend", &*name)
                .header("x-path", path)
                .header("x-version", format!("{:?}", parts.version))
                .header("x-client-cert", if client_cert { "yes" } else { "no" })
                .header("x-peer-ip", peer.ip().to_string())
                .header("x-body-len", body)
                .header("x-content-length", lines("content-length"))
                .header("x-transfer-encoding", lines("transfer-encoding"))
                .header("x-expect", lines("expect"))
                .header("x-host", lines("host"))
                .body(Full::new(Bytes::from(name.to_string())))
                .expect("static response parts");
            Ok::<_, Infallible>(resp)
        }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let _ = builder.serve_connection(io, service).await;
}

/// An address on loopback that never completes a TCP handshake: a listener whose accept
/// queue is full and never drained, so further connection attempts hang (for connect
/// timeouts). Keep the returned guard alive while it is used.
pub fn black_hole() -> io::Result<(SocketAddr, Vec<std::net::TcpStream>, socket2::Socket)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(0)?;
    let addr = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an inet socket"))?;
    // Fill the queue: these complete the handshake and sit there unaccepted.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    Ok((addr, fillers, socket))
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll until `addr` accepts a TCP connection, or fail after `timeout`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Run a compiled table as an example: start one local backend per declared backend
/// address (named `CLUSTER-N`, e.g. `api-1`), then serve the table with its command line.
///
/// With `--backend`, `--routes`, `--explain` or `--help` on the command line, no local
/// backends are started: the table runs against the addresses given, or only describes
/// itself.
pub fn run_example<T: proxy_runtime::Table>()
where
    T::Hooks: Default,
{
    run_example_with::<T>(T::Hooks::default())
}

/// [`run_example`] for a table whose hooks are given as a value.
pub fn run_example_with<T: proxy_runtime::Table>(hooks: T::Hooks) {
    run_example_from::<T>(std::env::args().collect(), hooks)
}

/// [`run_example_with`] with the given command line (the first item is the program name).
pub fn run_example_from<T: proxy_runtime::Table>(args: Vec<String>, hooks: T::Hooks) {
    let external = args.iter().any(|a| {
        a.starts_with("--backend")
            || matches!(
                a.as_str(),
                "--routes" | "--explain" | "--help" | "-h" | "-t" | "--test"
            )
    });
    let mut backends: Vec<Backend> = Vec::new();
    if !external {
        for cluster in T::CLUSTERS {
            for (i, b) in cluster.backends.iter().enumerate() {
                // Names are served by whoever they resolve to, not spawned here.
                let proxy_runtime::__private::Endpoint::Addr(addr) = b.endpoint else {
                    continue;
                };
                if backends.iter().any(|running| running.addr() == addr) {
                    continue;
                }
                let name = format!("{}-{}", cluster.name, i + 1);
                match Backend::spawn_on(&name, addr) {
                    Ok(b) => {
                        println!("backend {name} on {addr}");
                        backends.push(b);
                    }
                    Err(e) => {
                        eprintln!("error: cannot start backend {name} on {addr}: {e}");
                        eprintln!(
                            "hint: point the cluster elsewhere with --backend {}=IP:PORT",
                            cluster.name
                        );
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    proxy_runtime::serve_from_with::<T, _, _>(args, hooks);
    drop(backends);
}
