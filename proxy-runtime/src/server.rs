//! Server bootstrap: the command line, cluster construction with overrides, and running
//! Pingora either in the foreground (`serve`) or on a background thread (`Builder`).

use crate::cluster::{Cluster, Member};
use crate::error::Error;
use crate::proxy::{Proxy, Table};
use crate::request::RequestView;
use crate::spec::Target;
use clap::Parser;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora_core::services::ServiceWithDependents;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds a proxy keeps serving after SIGTERM, and then waits for requests in flight,
/// unless the configuration file sets `grace_period_seconds` and
/// `graceful_shutdown_timeout_seconds`.
pub const DEFAULT_GRACE_SECONDS: u64 = 3;

/// Address a proxy listens on when no `--listen` is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6188";

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
    /// Worker threads of the proxy service. Default: the number of CPUs.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Let idle worker threads take work from busy ones (tokio's multi-threaded
    /// scheduler). Off by default: each worker runs its own single-threaded scheduler,
    /// which costs less per request. With a configuration file (-c), its `work_stealing`
    /// applies instead (Pingora's default when the file does not set it: on).
    #[arg(long)]
    pub work_stealing: bool,
    /// Point cluster CLUSTER at other backends: `api=127.0.0.1:9001,127.0.0.1:9002@5`
    /// (`@N` sets a weight; default 1). Repeatable.
    #[arg(long = "backend", value_name = "CLUSTER=ADDR[@W][,ADDR[@W]...]")]
    pub backend: Vec<String>,
    /// Print the routing table and the clusters, then exit.
    #[arg(long)]
    pub routes: bool,
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

/// Parse the command line and run the proxy until SIGTERM/SIGINT. On a configuration
/// error, print it and exit with status 2.
pub fn serve<T: Table>() {
    serve_from::<T, _, _>(std::env::args_os())
}

/// [`serve`] with the given command line (the first item is the program name).
pub fn serve_from<T, I, S>(args: I)
where
    T: Table,
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    // An embedder may have installed a logger already: keep it.
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let cli = Cli::parse_from(args);
    if let Err(e) = run_cli::<T>(cli) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run_cli<T: Table>(cli: Cli) -> Result<(), Error> {
    let overrides = parse_overrides::<T>(&cli.backend)?;
    if cli.routes {
        print!("{}", describe::<T>(&overrides));
        return Ok(());
    }
    if let Some(request) = &cli.explain {
        println!("{}", explain::<T>(request, &cli.header, cli.client)?);
        return Ok(());
    }
    let listen = parse_listen(if cli.listen.is_empty() {
        vec![DEFAULT_LISTEN.to_owned()]
    } else {
        cli.listen
    })?;
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let conf_file = cli.pingora.conf.is_some();
    let mut server = Server::new(Some(cli.pingora)).map_err(|e| Error::Startup {
        what: format!("server configuration: {e}"),
    })?;
    if let Some(conf) = Arc::get_mut(&mut server.configuration) {
        conf.threads = threads;
        // Without a configuration file, off unless asked for; with one, the file decides
        // (Pingora's default when it does not say: on), and the flag can only turn it on.
        if cli.work_stealing || !conf_file {
            conf.work_stealing = cli.work_stealing;
        }
        // Pingora waits 300 s after SIGTERM unless told otherwise; a configuration file
        // (-c) can still set these.
        conf.grace_period_seconds
            .get_or_insert(DEFAULT_GRACE_SECONDS);
        conf.graceful_shutdown_timeout_seconds
            .get_or_insert(DEFAULT_GRACE_SECONDS);
    }
    server.bootstrap();
    install::<T>(&mut server, &listen, overrides)?;
    for addr in &listen {
        log::info!("{} listening on http://{addr}", T::NAME);
    }
    server.run(RunArgs::default());
    Ok(())
}

/// Build every cluster (declared backends, or an override) and add the proxy service and
/// the health-check services to `server`.
fn install<T: Table>(
    server: &mut Server,
    listen: &[SocketAddr],
    overrides: Vec<Option<Vec<Member>>>,
) -> Result<(), Error> {
    let mut clusters = Vec::with_capacity(T::CLUSTERS.len());
    let mut services: Vec<Box<dyn ServiceWithDependents>> = Vec::new();
    for (spec, members) in T::CLUSTERS.iter().zip(overrides) {
        let members = match members {
            Some(m) => m,
            None => declared_members(spec)?,
        };
        if members.is_empty() {
            return Err(Error::EmptyCluster(spec.name));
        }
        let (cluster, service) = Cluster::build(spec, members)?;
        clusters.push(cluster);
        services.extend(service);
    }
    let proxy = Proxy::<T>::new(clusters.into());
    let mut service =
        pingora_proxy::http_proxy_service_with_name(&server.configuration, proxy, T::NAME);
    for addr in listen {
        service.add_tcp(&addr.to_string());
    }
    server.add_service(service);
    for s in services {
        server.add_boxed_service(s);
    }
    Ok(())
}

fn declared_members(spec: &crate::spec::ClusterSpec) -> Result<Vec<Member>, Error> {
    spec.backends
        .iter()
        .map(|b| {
            let addr = b.addr.parse().map_err(|_| Error::BadAddress {
                what: format!("cluster `{}`", spec.name),
                addr: b.addr.to_owned(),
            })?;
            Ok(Member {
                addr,
                weight: b.weight,
            })
        })
        .collect()
}

fn parse_listen(addrs: Vec<String>) -> Result<Vec<SocketAddr>, Error> {
    addrs
        .into_iter()
        .map(|a| {
            a.parse().map_err(|_| Error::BadAddress {
                what: "--listen".into(),
                addr: a,
            })
        })
        .collect()
}

/// Parse `--backend CLUSTER=ADDR[@W],...` values into one optional member list per cluster.
pub fn parse_overrides<T: Table>(args: &[String]) -> Result<Vec<Option<Vec<Member>>>, Error> {
    let mut out: Vec<Option<Vec<Member>>> = vec![None; T::CLUSTERS.len()];
    for arg in args {
        let (name, list) = arg.split_once('=').ok_or_else(|| {
            Error::BadArgument(format!(
                "--backend `{arg}`: expected CLUSTER=ADDR[,ADDR...]"
            ))
        })?;
        let index = T::CLUSTERS
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::UnknownCluster {
                name: name.to_owned(),
                known: T::CLUSTERS.iter().map(|c| c.name).collect(),
            })?;
        let members = out[index].get_or_insert_with(Vec::new);
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            members.push(parse_member(name, item)?);
        }
        if members.is_empty() {
            return Err(Error::EmptyCluster(T::CLUSTERS[index].name));
        }
        for (i, m) in members.iter().enumerate() {
            if members[..i].iter().any(|o| o.addr == m.addr) {
                return Err(Error::BadArgument(format!(
                    "--backend {name}: {} is listed twice",
                    m.addr
                )));
            }
        }
    }
    Ok(out)
}

fn parse_member(cluster: &str, item: &str) -> Result<Member, Error> {
    let bad = || Error::BadAddress {
        what: format!("--backend {cluster}"),
        addr: item.to_owned(),
    };
    let (addr, weight) = match item.rsplit_once('@') {
        Some((addr, w)) => {
            let weight: u32 = w.parse().map_err(|_| bad())?;
            if weight == 0 {
                return Err(Error::BadArgument(format!(
                    "--backend {cluster}: `{item}`: weight must be at least 1"
                )));
            }
            (addr, weight)
        }
        None => (item, 1),
    };
    Ok(Member {
        addr: addr.parse().map_err(|_| bad())?,
        weight,
    })
}

/// The table as text: rules in order, then clusters with their backends.
pub fn describe<T: Table>(overrides: &[Option<Vec<Member>>]) -> String {
    use std::fmt::Write;
    let mut s = format!("proxy {}\n\nroutes (first match wins):\n", T::NAME);
    let width = T::ROUTES.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for r in T::ROUTES {
        let _ = writeln!(s, "  {:width$}  {}  =>  {}", r.name, r.matcher, r.target);
    }
    s.push_str("\nclusters:\n");
    for (i, c) in T::CLUSTERS.iter().enumerate() {
        let _ = write!(s, "  {}  balance={:?}", c.name, c.balance);
        if let Some(h) = &c.health {
            let _ = write!(
                s,
                " health={:?} every={:?} fall={} rise={}",
                h.kind, h.every, h.fall, h.rise
            );
        }
        s.push('\n');
        match overrides.get(i).and_then(Option::as_ref) {
            Some(members) => {
                for m in members {
                    let _ = writeln!(s, "    {} weight {} (--backend)", m.addr, m.weight);
                }
            }
            None => {
                for b in c.backends {
                    let _ = writeln!(s, "    {} weight {}", b.addr, b.weight);
                }
            }
        }
    }
    s
}

/// Which rule and target `METHOD URL` gets.
pub fn explain<T: Table>(
    request: &str,
    headers: &[String],
    client: Option<std::net::IpAddr>,
) -> Result<String, Error> {
    let bad = |why: &str| Error::BadArgument(format!("--explain `{request}`: {why}"));
    let (method, url) = request
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("expected `METHOD URL`"))?;
    let uri: http::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = pingora_http::RequestHeader::build(method, path.as_bytes(), None)
        .map_err(|_| bad("bad method or path"))?;
    if let Some(host) = uri.authority() {
        req.insert_header("host", host.as_str())
            .map_err(|_| bad("bad host"))?;
    }
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| bad("a --header is not `name: value`"))?;
        req.append_header(name.trim().to_ascii_lowercase(), value.trim())
            .map_err(|_| bad("bad header"))?;
    }
    let decision = T::decide(&req, client).map_err(|e| bad(e.reason()))?;
    let route = decision.route.map_or("(none)", T::route_name);
    let target = match decision.target {
        Target::Cluster(c) => format!("cluster `{}`", T::CLUSTERS[T::cluster_index(c)].name),
        Target::Split(i) => {
            let split = &T::SPLITS[i as usize];
            let arms: Vec<String> = split
                .arms
                .iter()
                .map(|(c, w)| format!("{}: {w}", T::CLUSTERS[*c].name))
                .collect();
            format!("split {{ {} }}", arms.join(", "))
        }
        Target::Respond(_) => match decision.response() {
            Some(r) => format!("respond({}, {:?})", r.status, r.body),
            None => "respond(?)".to_owned(),
        },
        Target::NoRoute => "404 (no rule matches)".to_owned(),
    };
    let normalized = RequestView::with(&req, client, |v| {
        String::from_utf8_lossy(v.path).into_owned()
    })
    .unwrap_or_default();
    Ok(format!(
        "route: {route}\ntarget: {target}\nnormalized path: {normalized}\npredicates: {:?}",
        decision.predicates
    ))
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
    listen: Vec<String>,
    backends: Vec<String>,
    threads: usize,
    _table: std::marker::PhantomData<fn() -> T>,
}

impl<T: Table> Default for Builder<T> {
    fn default() -> Self {
        Builder {
            listen: Vec::new(),
            backends: Vec::new(),
            threads: 1,
            _table: std::marker::PhantomData,
        }
    }
}

impl<T: Table> Builder<T> {
    /// Listen on `addr`; a port of 0 picks a free one (see [`Handle::addr`]). Repeatable;
    /// default `127.0.0.1:0`.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen.push(addr.into());
        self
    }

    /// Point cluster `cluster` at `addrs` (each `IP:PORT`, optionally `@WEIGHT`), as
    /// `--backend` does.
    pub fn backends<I, S>(mut self, cluster: &str, addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list: Vec<String> = addrs.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self.backends.push(format!("{cluster}={}", list.join(",")));
        self
    }

    /// Worker threads of the proxy service (default 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Build the clusters, start the server on a background thread and wait until it
    /// accepts connections (10 s at most).
    pub fn start(self) -> Result<Handle, Error> {
        let overrides = parse_overrides::<T>(&self.backends)?;
        let listen = if self.listen.is_empty() {
            vec!["127.0.0.1:0".to_owned()]
        } else {
            self.listen
        };
        let listen = parse_listen(listen)?
            .into_iter()
            .map(pick_port)
            .collect::<Result<Vec<_>, _>>()?;
        let mut conf = ServerConf::new().ok_or_else(|| Error::Startup {
            what: "default server configuration".into(),
        })?;
        conf.threads = self.threads;
        // Kept on here, unlike `serve`: Pingora's single-threaded (no-steal) runtimes find
        // their pool through a thread-local keyed by recycled thread IDs, so a server
        // started after another one stopped in the same process can pick up the stopped
        // server's runtime and never accept. One server per process (`serve`) is not
        // affected.
        conf.work_stealing = true;
        conf.grace_period_seconds = Some(0);
        conf.graceful_shutdown_timeout_seconds = Some(1);
        let mut server = Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();
        install::<T>(&mut server, &listen, overrides)?;
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
            addrs: listen,
            stop: Some(tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in &handle.addrs {
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

/// Ask the kernel for a free port when `addr` has port 0. Pingora binds by address, so the
/// port is picked here and handed over; the window in which another process could take it
/// is the few microseconds until Pingora binds.
fn pick_port(addr: SocketAddr) -> Result<SocketAddr, Error> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let l = TcpListener::bind(addr).map_err(|e| Error::Startup {
        what: format!("bind {addr}: {e}"),
    })?;
    l.local_addr().map_err(|e| Error::Startup {
        what: format!("bind {addr}: {e}"),
    })
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
