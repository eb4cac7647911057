//! The kit shared by Switchyard's examples and integration tests: real HTTP backends on
//! loopback that answer with their own name.
//!
//! A [`Backend`] is a hyper server (HTTP/1.1 and HTTP/2) on its own Tokio runtime. Every
//! response carries the backend's name as its body and in `x-backend`, and the path and
//! query it received in `x-path`, so a test can assert who answered and what was forwarded.

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
}

/// Start a backend named `name` on an ephemeral loopback port.
pub fn spawn_backend(name: &str) -> Backend {
    Backend::spawn_on(name, "127.0.0.1:0".parse().expect("literal address"))
        .expect("bind an ephemeral loopback port")
}

impl Backend {
    /// Start a backend named `name` on `addr` (port 0 picks a free port).
    pub fn spawn_on(name: &str, addr: SocketAddr) -> io::Result<Backend> {
        let mut b = Backend {
            name: name.into(),
            addr,
            hits: Arc::new(AtomicU64::new(0)),
            runtime: None,
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
        let (name, hits) = (self.name.clone(), self.hits.clone());
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (name, hits) = (name.clone(), hits.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            hits.fetch_add(1, Ordering::Relaxed);
                            let path = req
                                .uri()
                                .path_and_query()
                                .map_or("/".to_owned(), |p| p.to_string());
                            let resp = Response::builder()
                                .header("x-backend", &*name)
                                .header("x-path", path)
                                .body(Full::new(Bytes::from(name.to_string())))
                                .expect("static response parts");
                            async move { Ok::<_, Infallible>(resp) }
                        });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let builder = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    let _ = builder.serve_connection(io, service).await;
                });
            }
        });
        self.runtime = Some(rt);
        wait_for_port(self.addr, Duration::from_secs(5))
    }
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
pub fn run_example<T: proxy_runtime::Table>() {
    let args: Vec<String> = std::env::args().collect();
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
                let Ok(addr) = b.addr.parse::<SocketAddr>() else {
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
    proxy_runtime::serve::<T>();
    drop(backends);
}
