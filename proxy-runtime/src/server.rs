//! Running a table: the command line and `serve` (foreground, until SIGTERM), and the
//! [`Builder`] (a background thread, for tests and embedding). Both produce a
//! [`Launch`] and start it the same way.

use crate::access_log::{AccessLogConfig, Format};
use crate::discovery::{Dns, Entry};
use crate::error::Error;
use crate::inspect::{describe, describe_json, explanation};
use crate::launch::{parse_addr, Launch, Listener};
use crate::table::Table;
use crate::tls::{CertPair, ClientAuth};
use clap::Parser;
use pingora_core::server::configuration::Opt;
use pingora_core::server::{RunArgs, ShutdownSignal, ShutdownSignalWatch};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use crate::launch::{DEFAULT_GRACE_SECONDS, DEFAULT_LISTEN};

/// The command line of a compiled table.
#[derive(Parser, Debug)]
#[command(about = "A Switchyard proxy: the routing table is compiled in; see --routes.")]
pub struct Cli {
    /// Pingora's own options (-c, -d, -u, -t).
    #[command(flatten)]
    pub pingora: Opt,
    /// Address to listen on (repeatable). Default: 127.0.0.1:6188.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Address to accept TLS on (repeatable), serving the --cert certificates: HTTP/2 or
    /// HTTP/1.1 by ALPN.
    #[arg(long = "listen-tls", value_name = "ADDR")]
    pub listen_tls: Vec<String>,
    /// A certificate chain and its key for the TLS listeners, `CERT.pem,KEY.pem`
    /// (repeatable): chosen by the name a client asks for (SNI); the first is the default.
    /// SIGHUP reads the files again.
    #[arg(long = "cert", value_name = "CERT.pem,KEY.pem")]
    pub cert: Vec<String>,
    /// Require client certificates signed by the CA in this PEM file on the TLS listeners
    /// (mTLS).
    #[arg(long, value_name = "CA.pem")]
    pub client_ca: Option<std::path::PathBuf>,
    /// With --client-ca: serve clients without a certificate too (a certificate that is
    /// given must still verify).
    #[arg(long, requires = "client_ca")]
    pub client_cert_optional: bool,
    /// Offer only HTTP/1.1 on the TLS listeners (no `h2` by ALPN).
    #[arg(long)]
    pub no_h2: bool,
    /// Accept HTTP/2 with prior knowledge (h2c) on the plain listeners, beside HTTP/1.1.
    #[arg(long)]
    pub h2c: bool,
    /// Resolve backends given by name with the DNS server at IP:PORT (UDP and TCP) instead
    /// of the system's configuration (/etc/resolv.conf): a sidecar resolver, say.
    #[arg(long, value_name = "IP:PORT")]
    pub dns: Option<String>,
    /// Worker threads of the proxy service. Default: the number of CPUs.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Let idle worker threads take work from busy ones (tokio's multi-threaded
    /// scheduler). Off by default: each worker runs its own single-threaded scheduler,
    /// which costs less per request. With a configuration file (-c), its `work_stealing`
    /// applies instead (Pingora's default when the file does not set it: on).
    #[arg(long)]
    pub work_stealing: bool,
    /// Requests one client connection may make before it is closed (nginx's
    /// `keepalive_requests`); 0 for no limit. Default: 1000.
    #[arg(long, value_name = "N")]
    pub keepalive_requests: Option<u32>,
    /// Point cluster CLUSTER at other backends: `api=127.0.0.1:9001,127.0.0.1:9002@5`
    /// (`@N` sets a weight; default 1), names `api=api.internal:8080` or SRV names
    /// `api=srv(_http._tcp.api.internal)`, resolved and re-resolved. Repeatable.
    #[arg(long = "backend", value_name = "CLUSTER=ADDR[@W][,ADDR[@W]...]")]
    pub backend: Vec<String>,
    /// Serve Prometheus metrics on ADDR (`127.0.0.1:9100`, or a port alone for
    /// 127.0.0.1). Off by default: nothing is recorded.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Write one line per request: `-` for standard output, a file path, or `off` (the
    /// default). SIGUSR1 reopens the file.
    #[arg(long, value_name = "PATH|-|off")]
    pub access_log: Option<String>,
    /// The access log's format.
    #[arg(long, value_name = "json|logfmt", default_value = "json")]
    pub access_log_format: AccessLogFormat,
    /// Print the routing table and the clusters, then exit.
    #[arg(long)]
    pub routes: bool,
    /// With --routes: print it as JSON.
    #[arg(long, requires = "routes")]
    pub json: bool,
    /// Show which rule and cluster a request gets, e.g. `GET http://api.example.com/v2/x`,
    /// then exit.
    #[arg(long, value_name = "'METHOD URL'")]
    pub explain: Option<String>,
    /// A request header for --explain, `name: value` (repeatable).
    #[arg(
        long = "header",
        short = 'H',
        value_name = "NAME: VALUE",
        requires = "explain"
    )]
    pub header: Vec<String>,
    /// The client address for --explain.
    #[arg(long, value_name = "IP", requires = "explain")]
    pub client: Option<std::net::IpAddr>,
}

/// `--access-log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
}

/// A metrics address: `IP:PORT`, or a port alone for 127.0.0.1 (metrics stay on loopback
/// unless an address says otherwise).
pub fn metrics_addr(arg: &str) -> Result<SocketAddr, Error> {
    match arg.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => parse_addr("--metrics", arg),
    }
}

/// Parse the command line and run the proxy until SIGTERM/SIGINT. On a configuration
/// error, print it and exit with status 2.
pub fn serve<T: Table>()
where
    T::Hooks: Default,
{
    serve_from::<T, _, _>(std::env::args_os())
}

/// [`serve`] with a value of the table's hooks (`proxy Gateway(Auth);`).
pub fn serve_with<T: Table>(hooks: T::Hooks) {
    serve_from_with::<T, _, _>(std::env::args_os(), hooks)
}

/// [`serve`] with the given command line (the first item is the program name).
pub fn serve_from<T, I, S>(args: I)
where
    T: Table,
    T::Hooks: Default,
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    serve_from_with::<T, _, _>(args, T::Hooks::default())
}

/// [`serve_with`] with the given command line (the first item is the program name).
pub fn serve_from_with<T, I, S>(args: I, hooks: T::Hooks)
where
    T: Table,
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    // An embedder may have installed a logger already: keep it.
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let cli = Cli::parse_from(args);
    if let Err(e) = run_cli::<T>(cli, hooks) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run_cli<T: Table>(cli: Cli, hooks: T::Hooks) -> Result<(), Error> {
    let mut launch = Launch::<T>::default();
    launch.hooks = Some(hooks);
    for arg in &cli.backend {
        launch.backend_arg(arg)?;
    }
    if cli.routes {
        if cli.json {
            println!("{}", describe_json(&launch));
        } else {
            print!("{}", describe(&launch));
        }
        return Ok(());
    }
    if let Some(request) = &cli.explain {
        let (text, matched) = explanation(&launch, request, &cli.header, cli.client)?;
        println!("{text}");
        if !matched {
            // Scripts can test a request against the table: no rule is a failure.
            std::process::exit(1);
        }
        return Ok(());
    }
    for addr in &cli.listen {
        launch
            .listeners
            .push(Listener::Tcp(parse_addr("--listen", addr)?));
    }
    for addr in &cli.listen_tls {
        launch
            .listeners
            .push(Listener::Tls(parse_addr("--listen-tls", addr)?));
    }
    for pair in &cli.cert {
        launch.tls.certs.push(CertPair::parse(pair)?);
    }
    if !launch.tls.certs.is_empty() && cli.listen_tls.is_empty() {
        return Err(Error::BadArgument(
            "--cert is given but no --listen-tls ADDR serves it".into(),
        ));
    }
    launch.tls.client_auth = match (cli.client_ca, cli.client_cert_optional) {
        (Some(ca), false) => ClientAuth::Required(ca),
        (Some(ca), true) => ClientAuth::Optional(ca),
        (None, _) => ClientAuth::Off,
    };
    launch.tls.h2 = !cli.no_h2;
    launch.h2c = cli.h2c;
    if let Some(addr) = &cli.dns {
        launch.dns = Dns::Server(parse_addr("--dns", addr)?);
    }
    launch.threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Without a configuration file, off unless asked for; with one, the file decides
    // (Pingora's default when it does not say: on), and the flag can only turn it on.
    if cli.work_stealing || cli.pingora.conf.is_none() {
        launch.work_stealing = Some(cli.work_stealing);
    }
    if let Some(n) = cli.keepalive_requests {
        launch.keepalive_requests = (n > 0).then_some(n);
    }
    if let Some(addr) = &cli.metrics {
        launch.metrics = Some(metrics_addr(addr)?);
    }
    if let Some(dest) = &cli.access_log {
        launch.access_log.destination = AccessLogConfig::destination_arg(dest);
    }
    launch.access_log.format = match cli.access_log_format {
        AccessLogFormat::Json => Format::Json,
        AccessLogFormat::Logfmt => Format::Logfmt,
    };
    launch.pingora = Some(cli.pingora);
    let (server, bound) = launch.into_server()?;
    for addr in &bound.listeners {
        let scheme = if bound.tls_listeners.contains(addr) {
            "https"
        } else {
            "http"
        };
        log::info!("{} listening on {scheme}://{addr}", T::NAME);
    }
    if let Some(addr) = bound.metrics {
        log::info!("{} metrics on http://{addr}/metrics", T::NAME);
    }
    if let Some(certs) = bound.certificates.clone() {
        reload_on_sighup(T::NAME, certs)?;
    }
    server.run(RunArgs::default());
    Ok(())
}

/// Read the TLS certificates again on every SIGHUP, on a thread of its own. A reload that
/// fails is logged and the certificates being served stay.
fn reload_on_sighup(
    name: &'static str,
    certs: std::sync::Arc<crate::tls::Certificates>,
) -> Result<(), Error> {
    let mut signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]).map_err(|e| {
            Error::Startup {
                what: format!("SIGHUP handler: {e}"),
            }
        })?;
    std::thread::Builder::new()
        .name(format!("{name}-tls-reload"))
        .spawn(move || {
            for _ in signals.forever() {
                match certs.reload() {
                    Ok(()) => log::info!("{name}: TLS certificates reloaded"),
                    Err(e) => log::error!("{name}: TLS certificates not reloaded, still serving the previous ones: {e}"),
                }
            }
        })
        .map_err(|e| Error::Startup {
            what: format!("TLS reload thread: {e}"),
        })?;
    Ok(())
}

/// Starts a proxy on a background thread: for tests and for embedding.
///
/// ```no_run
/// # proxy_runtime::routes! {
/// #     proxy Demo;
/// #     cluster web { backends: ["127.0.0.1:9001"] }
/// #     route all: _ => web;
/// # }
/// let proxy = Demo::builder()
///     .listen("127.0.0.1:0")
///     .backends("web", ["127.0.0.1:9100"])
///     .start()
///     .expect("proxy starts");
/// println!("proxy on {}", proxy.addr());
/// proxy.shutdown();
/// ```
pub struct Builder<T: Table> {
    launch: Launch<T>,
    /// The first invalid setting, reported by `start`.
    error: Option<Error>,
}

impl<T: Table> Default for Builder<T>
where
    T::Hooks: Default,
{
    fn default() -> Self {
        Self::with_hooks(T::Hooks::default())
    }
}

impl<T: Table> Builder<T> {
    /// A builder for a table with hooks, given their value.
    pub fn with_hooks(hooks: T::Hooks) -> Self {
        let mut launch = Launch::default();
        launch.hooks = Some(hooks);
        // Kept on here, unlike `serve`: Pingora's single-threaded (no-steal) runtimes find
        // their pool through a thread-local keyed by recycled thread IDs, so a server
        // started after another one stopped in the same process can pick up the stopped
        // server's runtime and never accept. One server per process (`serve`) is not
        // affected.
        launch.work_stealing = Some(true);
        launch.grace_period = Some(0);
        launch.shutdown_timeout = Some(1);
        Builder {
            launch,
            error: None,
        }
    }

    /// Listen on `addr`; a port of 0 picks a free one (see [`Handle::addr`]). Repeatable;
    /// default `127.0.0.1:0`.
    pub fn listen(mut self, addr: impl AsRef<str>) -> Self {
        match parse_addr("listen", addr.as_ref()) {
            Ok(addr) => self.launch.listeners.push(Listener::Tcp(addr)),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Accept TLS on `addr` (a port of 0 picks a free one), serving the [`cert`](Self::cert)
    /// certificates. Repeatable; [`Handle::addrs`] lists every listener in the order
    /// given (a builder with only TLS listeners has no plain one).
    pub fn listen_tls(mut self, addr: impl AsRef<str>) -> Self {
        match parse_addr("listen_tls", addr.as_ref()) {
            Ok(addr) => self.launch.listeners.push(Listener::Tls(addr)),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Serve this certificate chain and key on the TLS listeners (PEM files); the first
    /// given is the default for clients whose SNI no certificate names.
    pub fn cert(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.launch.tls.certs.push(CertPair {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Client-certificate verification on the TLS listeners (mTLS).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.launch.tls.client_auth = auth;
        self
    }

    /// Offer HTTP/2 by ALPN on the TLS listeners (default on).
    pub fn h2(mut self, on: bool) -> Self {
        self.launch.tls.h2 = on;
        self
    }

    /// Resolve backends given by name with the DNS server at `addr` (UDP and TCP), as
    /// `--dns` does, instead of the system's configuration.
    pub fn dns(mut self, addr: SocketAddr) -> Self {
        self.launch.dns = Dns::Server(addr);
        self
    }

    /// Accept HTTP/2 with prior knowledge (h2c) on the plain listeners (default off).
    pub fn h2c(mut self, on: bool) -> Self {
        self.launch.h2c = on;
        self
    }

    /// Point cluster `cluster` at `addrs` (each `IP:PORT` or `HOST:PORT`, optionally
    /// `@WEIGHT`, or `srv(NAME)`), as `--backend` does.
    pub fn backends<I, S>(mut self, cluster: &str, addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let what = format!("backends of cluster `{cluster}`");
        let members = addrs
            .into_iter()
            .map(|a| Entry::parse(&what, a.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|members| self.launch.override_backends(cluster, members));
        if let Err(e) = members {
            self.fail(e);
        }
        self
    }

    /// Serve Prometheus metrics on `addr` (a port of 0 picks a free one: see
    /// [`Handle::metrics_addr`]).
    pub fn metrics(mut self, addr: impl AsRef<str>) -> Self {
        match metrics_addr(addr.as_ref()) {
            Ok(addr) => self.launch.metrics = Some(addr),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Write the access log as `config` says.
    pub fn access_log(mut self, config: AccessLogConfig) -> Self {
        self.launch.access_log = config;
        self
    }

    /// Replace the table's hooks with this value.
    pub fn hooks(mut self, hooks: T::Hooks) -> Self {
        self.launch.hooks = Some(hooks);
        self
    }

    /// Worker threads of the proxy service (default 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.launch.threads = n.max(1);
        self
    }

    fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }

    /// Build the clusters, start the server on a background thread and wait until it
    /// accepts connections (10 s at most).
    pub fn start(mut self) -> Result<Handle, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.launch.listeners.is_empty() {
            self.launch
                .listeners
                .push(Listener::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))));
        }
        let (server, bound) = self.launch.into_server()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{}-server", T::NAME))
            .spawn(move || {
                server.run(RunArgs {
                    shutdown_signal: Box::new(OnSignal(std::sync::Mutex::new(Some(rx)))),
                })
            })
            .map_err(|e| Error::Startup {
                what: format!("server thread: {e}"),
            })?;
        let handle = Handle {
            addrs: bound.listeners,
            metrics: bound.metrics,
            certificates: bound.certificates,
            stop: Some(tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in handle.addrs.iter().chain(&handle.metrics) {
            while TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_err() {
                if Instant::now() > deadline {
                    return Err(Error::Startup {
                        what: format!("proxy did not accept on {addr} within 10 s"),
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(handle)
    }
}

struct OnSignal(std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>);

#[async_trait::async_trait]
impl ShutdownSignalWatch for OnSignal {
    async fn recv(&self) -> ShutdownSignal {
        let rx = self.0.lock().ok().and_then(|mut g| g.take());
        if let Some(rx) = rx {
            // A dropped sender also stops the server.
            let _ = rx.await;
        }
        ShutdownSignal::FastShutdown
    }
}

/// A proxy running on a background thread. Dropping it shuts the proxy down.
pub struct Handle {
    addrs: Vec<SocketAddr>,
    metrics: Option<SocketAddr>,
    certificates: Option<std::sync::Arc<crate::tls::Certificates>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// The first address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// All addresses the proxy listens on.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Where its metrics are served, when they are (`Builder::metrics`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// Read the TLS listeners' certificate files again, as SIGHUP does for `serve`: the
    /// next handshakes get the new certificates, open connections keep theirs. On an error
    /// the certificates being served stay.
    pub fn reload_tls(&self) -> Result<(), Error> {
        match &self.certificates {
            Some(c) => c.reload(),
            None => Err(Error::BadArgument("the proxy has no TLS listener".into())),
        }
    }

    /// Stop the proxy and wait for its thread to end.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
