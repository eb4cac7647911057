//! The launch description: everything that starts a proxy, whoever asks for it.
//!
//! The command line ([`serve`](crate::serve)), a Pingora configuration file (`-c`) and the
//! [`Builder`](crate::Builder) all produce one [`Launch`]; [`Launch::into_server`] is the
//! only code that turns one into a running Pingora `Server` — its listeners, its live
//! clusters and their health-check services. A new listener kind or option is added here,
//! once.

use crate::access_log::{AccessLog, AccessLogConfig};
use crate::cluster::LiveCluster;
use crate::discovery::{self, Discovery, Dns, Entry, Names};
use crate::error::Error;
use crate::proxy::Proxy;
use crate::table::Table;
use crate::tls::{Certificates, TlsConfig};
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::ServiceWithDependents;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::Arc;

/// Seconds a proxy keeps serving after SIGTERM, and then waits for requests in flight,
/// unless the configuration file sets `grace_period_seconds` and
/// `graceful_shutdown_timeout_seconds`.
pub const DEFAULT_GRACE_SECONDS: u64 = 3;

/// Address a proxy listens on when no listener is given: 127.0.0.1:6188.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6188));

/// A socket the proxy accepts requests on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listener {
    /// Plain HTTP over TCP (and HTTP/2 with prior knowledge when [`Launch::h2c`] is on).
    /// A port of 0 is replaced by a free one when the server is built.
    Tcp(SocketAddr),
    /// TLS over TCP, serving [`Launch::tls`]: HTTP/2 or HTTP/1.1 chosen by ALPN.
    Tls(SocketAddr),
}

impl Listener {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Listener::Tcp(addr) | Listener::Tls(addr) => *addr,
        }
    }

    /// The same kind of listener on `addr`.
    fn with_addr(&self, addr: SocketAddr) -> Listener {
        match self {
            Listener::Tcp(_) => Listener::Tcp(addr),
            Listener::Tls(_) => Listener::Tls(addr),
        }
    }
}

/// Everything that starts a proxy of table `T`.
pub struct Launch<T: Table> {
    /// Where to accept requests. Empty means [`DEFAULT_LISTEN`].
    pub listeners: Vec<Listener>,
    /// Per cluster (indexed like `T::CLUSTERS`): backends that replace the declared ones.
    overrides: Vec<Option<Vec<Entry>>>,
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// Tokio work stealing between the workers; `None` leaves the configuration file's
    /// choice (or Pingora's default).
    pub work_stealing: Option<bool>,
    /// Seconds of serving after SIGTERM; `None` leaves the configuration file's value, or
    /// [`DEFAULT_GRACE_SECONDS`].
    pub grace_period: Option<u64>,
    /// Seconds to wait for requests in flight after the grace period; as `grace_period`.
    pub shutdown_timeout: Option<u64>,
    /// Requests served on one downstream connection before it is closed; `None` for no
    /// limit. Default: [`KEEPALIVE_REQUESTS`].
    pub keepalive_requests: Option<u32>,
    /// Pingora's own command-line options (`-c FILE`, `-d`, `-u`, `-t`).
    pub pingora: Option<Opt>,
    /// The table's hooks (`proxy Gateway(Auth);`, or `NoHooks`): required to start.
    pub hooks: Option<T::Hooks>,
    /// Where Prometheus metrics are served (`--metrics`); `None`: no metrics are recorded.
    /// A port of 0 is replaced by a free one.
    pub metrics: Option<SocketAddr>,
    /// The access log (`--access-log`, `--access-log-format`); off by default.
    pub access_log: AccessLogConfig,
    /// What the TLS listeners serve: certificates, client verification, ALPN.
    pub tls: TlsConfig,
    /// Accept HTTP/2 with prior knowledge (h2c) on plain listeners, beside HTTP/1.1;
    /// off by default.
    pub h2c: bool,
    /// The DNS server backends given by name are resolved with (`--dns`); the system's
    /// configuration by default.
    pub dns: Dns,
}

/// What a started server listens on.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The proxy's listeners, ports of 0 replaced.
    pub listeners: Vec<SocketAddr>,
    /// Those of them that terminate TLS.
    pub tls_listeners: Vec<SocketAddr>,
    /// The metrics endpoint, when there is one.
    pub metrics: Option<SocketAddr>,
    /// The certificates of the TLS listeners, when there are any: reloadable.
    pub certificates: Option<Arc<Certificates>>,
}

impl<T: Table> Default for Launch<T> {
    fn default() -> Self {
        Launch {
            listeners: Vec::new(),
            overrides: vec![None; T::CLUSTERS.len()],
            threads: 1,
            work_stealing: None,
            grace_period: None,
            shutdown_timeout: None,
            keepalive_requests: Some(KEEPALIVE_REQUESTS),
            pingora: None,
            hooks: None,
            metrics: None,
            access_log: AccessLogConfig::default(),
            tls: TlsConfig::default(),
            h2c: false,
            dns: Dns::System,
        }
    }
}

impl<T: Table> Launch<T> {
    /// Replace the backends of cluster `name` with `entries`.
    pub fn override_backends(&mut self, name: &str, entries: Vec<Entry>) -> Result<(), Error> {
        let index = T::CLUSTERS
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::UnknownCluster {
                name: name.to_owned(),
                known: T::CLUSTERS.iter().map(|c| c.name).collect(),
            })?;
        let list = self.overrides[index].get_or_insert_with(Vec::new);
        for e in entries {
            if list.iter().any(|o| o.source == e.source) {
                return Err(Error::BadArgument(format!(
                    "backends of cluster `{name}`: {e} is listed twice"
                )));
            }
            list.push(e);
        }
        if list.is_empty() {
            return Err(Error::EmptyCluster(T::CLUSTERS[index].name));
        }
        Ok(())
    }

    /// Apply one `--backend CLUSTER=ADDR[@W][,ADDR[@W]...]` argument (an address may be
    /// `HOST:PORT` or `srv(NAME)`).
    pub fn backend_arg(&mut self, arg: &str) -> Result<(), Error> {
        let (name, list) = arg.split_once('=').ok_or_else(|| {
            Error::BadArgument(format!(
                "--backend `{arg}`: expected CLUSTER=ADDR[,ADDR...]"
            ))
        })?;
        let entries = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| Entry::parse(&format!("--backend {name}"), item))
            .collect::<Result<Vec<_>, _>>()?;
        self.override_backends(name, entries)
    }

    /// The backends cluster `index` runs with: an override, or the declared ones.
    pub fn entries(&self, index: usize) -> Vec<Entry> {
        match self.overrides.get(index).and_then(Option::as_ref) {
            Some(list) => list.clone(),
            None => T::CLUSTERS.get(index).map_or_else(Vec::new, |spec| {
                spec.backends.iter().map(Entry::declared).collect()
            }),
        }
    }

    /// Whether cluster `index` runs with overridden backends.
    pub fn is_overridden(&self, index: usize) -> bool {
        self.overrides.get(index).is_some_and(Option::is_some)
    }

    /// Build the Pingora server this launch describes: configuration, listeners (ports of
    /// 0 replaced by free ones), live clusters and their health-check services. Returns the
    /// server, ready to `run`, and the addresses it listens on.
    pub fn into_server(mut self) -> Result<(Server, Bound), Error> {
        if self.listeners.is_empty() {
            self.listeners.push(Listener::Tcp(DEFAULT_LISTEN));
        }
        let listeners = self
            .listeners
            .iter()
            .map(|l| pick_port(l.addr()).map(|addr| l.with_addr(addr)))
            .collect::<Result<Vec<_>, _>>()?;
        let certificates = if listeners.iter().any(|l| matches!(l, Listener::Tls(_))) {
            Some(Arc::new(Certificates::load(&self.tls.certs)?))
        } else {
            None
        };
        let mut opt = self.pingora.take();
        let conf = match &opt {
            Some(o) if o.conf.is_some() => Some(
                ServerConf::load_yaml_with_opt_override(o).map_err(|e| Error::Startup {
                    what: format!("server configuration: {e}"),
                })?,
            ),
            Some(o) => ServerConf::new_with_opt_override(o),
            None => ServerConf::new(),
        };
        let mut conf = conf.ok_or_else(|| Error::Startup {
            what: "server configuration: Pingora could not make its default".into(),
        })?;
        if let Some(o) = opt.as_mut() {
            // Loaded above; Pingora would otherwise warn that it ignores the file.
            o.conf = None;
        }
        conf.threads = self.threads.max(1);
        if let Some(steal) = self.work_stealing {
            conf.work_stealing = steal;
        }
        // Pingora waits 300 s after SIGTERM unless told otherwise.
        conf.grace_period_seconds = self
            .grace_period
            .or(conf.grace_period_seconds)
            .or(Some(DEFAULT_GRACE_SECONDS));
        conf.graceful_shutdown_timeout_seconds = self
            .shutdown_timeout
            .or(conf.graceful_shutdown_timeout_seconds)
            .or(Some(DEFAULT_GRACE_SECONDS));
        let mut server = Server::new_with_opt_and_conf(opt, conf);
        server.bootstrap();
        let metrics = self.metrics.map(pick_port).transpose()?;
        if metrics.is_some() {
            // Before the clusters: they record health from their first check.
            crate::metrics::enable();
        }

        // Names resolve before the proxy serves; discovery keeps them current afterwards.
        let entries: Vec<Vec<Entry>> = (0..T::CLUSTERS.len()).map(|i| self.entries(i)).collect();
        let (mut named, mut names) = (Vec::new(), Vec::new());
        for ((index, spec), entries) in T::CLUSTERS.iter().enumerate().zip(&entries) {
            if entries.is_empty() {
                return Err(Error::EmptyCluster(spec.name));
            }
            if entries.iter().any(Entry::is_name) {
                named.push(index);
                names.push(Names::new(
                    T::NAME,
                    spec.name,
                    spec.resolve,
                    entries.clone(),
                ));
            }
        }
        let (names, mut rounds): (Vec<Names>, Vec<discovery::Round>) = if names.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            discovery::resolve_at_start(self.dns, names)?
                .into_iter()
                .unzip()
        };
        let mut clusters = Vec::with_capacity(T::CLUSTERS.len());
        let mut services: Vec<Box<dyn ServiceWithDependents>> = Vec::new();
        for (index, spec) in T::CLUSTERS.iter().enumerate() {
            let (members, dynamic) = match named.iter().position(|&i| i == index) {
                Some(p) => (std::mem::take(&mut rounds[p].members), true),
                None => (discovery::literal_members(&entries[index]), false),
            };
            let (cluster, service) = LiveCluster::build(T::NAME, spec, members, dynamic)?;
            clusters.push(cluster);
            services.extend(service);
        }
        let work: Vec<_> = named
            .into_iter()
            .zip(names)
            .zip(&rounds)
            .map(|((index, n), round)| (index, n, round.wait))
            .collect();
        let clusters: Arc<[LiveCluster]> = clusters.into();
        if !work.is_empty() {
            let service = pingora_core::services::background::background_service(
                &format!("{} DNS discovery", T::NAME),
                Discovery::new(self.dns, clusters.clone(), work),
            );
            services.push(Box::new(service));
        }
        let hooks = self.hooks.take().ok_or_else(|| Error::Startup {
            what: format!(
                "table `{}` has hooks but none were given: start it with `serve_with(..)` or \
                 `builder_with(..)`",
                T::NAME
            ),
        })?;
        let access_log = AccessLog::start(&self.access_log, T::NAME)?;
        let proxy = Proxy::<T>::new(clusters, hooks)?.observed(metrics.is_some(), access_log);
        let mut app = pingora_proxy::http_proxy(&server.configuration, proxy);
        let mut options = HttpServerOptions::default();
        // nginx's `keepalive_requests`: a connection (pipelined or not) is closed after
        // this many requests, which bounds what one client holds; Pingora has no limit.
        // Pingora counts reuses after the first request.
        options.keepalive_request_limit = self.keepalive_requests.map(|n| n.saturating_sub(1));
        options.h2c = self.h2c;
        app.server_options = Some(options);
        let tls = certificates.as_ref().map(|c| (&self.tls, c));
        if metrics.is_some() {
            // Counting open connections wraps each connection's processing: only when
            // metrics are on.
            let app = crate::metrics::Connections::new(app, T::NAME);
            add_proxy_service(&mut server, T::NAME, app, &listeners, tls)?;
        } else {
            add_proxy_service(&mut server, T::NAME, app, &listeners, tls)?;
        }
        for s in services {
            server.add_boxed_service(s);
        }
        if let Some(addr) = metrics {
            let mut exporter = pingora_core::services::listening::Service::new(
                format!("{} metrics", T::NAME),
                pingora_core::apps::http_app::HttpServer::new_app(crate::metrics::Exporter),
            );
            exporter.add_tcp(&addr.to_string());
            server.add_service(exporter);
        }
        let bound = Bound {
            listeners: listeners.iter().map(Listener::addr).collect(),
            tls_listeners: listeners
                .iter()
                .filter(|l| matches!(l, Listener::Tls(_)))
                .map(Listener::addr)
                .collect(),
            metrics,
            certificates,
        };
        Ok((server, bound))
    }
}

/// Serve `app`, the proxy, on its listeners; TLS ones serve `tls`.
fn add_proxy_service<A>(
    server: &mut Server,
    name: &str,
    app: A,
    listeners: &[Listener],
    tls: Option<(&TlsConfig, &Arc<Certificates>)>,
) -> Result<(), Error>
where
    A: pingora_core::apps::ServerApp + Send + Sync + 'static,
{
    let mut service = pingora_core::services::listening::Service::new(name.into(), app);
    for listener in listeners {
        match listener {
            // No L4 read buffer: Pingora's default gives every connection a 64 KiB buffer
            // for as long as it lives (about 100 kB of RSS per idle keep-alive connection,
            // bench/idle_rss.sh). Plain HTTP reads straight into the request's own header
            // and body buffers instead.
            Listener::Tcp(addr) => service.add_listener(
                ListenerConfig::tcp(addr.to_string())
                    .l4_buffer(L4BufferSettings::default().read(0)),
            ),
            Listener::Tls(addr) => {
                let Some((config, certs)) = tls else {
                    return Err(Error::Startup {
                        what: format!("TLS listener {addr}: no certificates were loaded"),
                    });
                };
                let settings = crate::tls::settings(config, certs.clone())?;
                service.add_listener(ListenerConfig::tcp(addr.to_string()).tls(settings));
            }
        }
    }
    server.add_service(service);
    Ok(())
}

/// Requests served on one downstream connection before it is closed, by default (nginx's
/// `keepalive_requests`).
pub const KEEPALIVE_REQUESTS: u32 = 1000;

/// `IP:PORT` given for `what` (`--listen`).
pub fn parse_addr(what: &str, addr: &str) -> Result<SocketAddr, Error> {
    addr.trim().parse().map_err(|_| Error::BadAddress {
        what: what.to_owned(),
        addr: addr.to_owned(),
    })
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
