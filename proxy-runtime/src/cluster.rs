//! Live clusters: a `pingora_load_balancing::LoadBalancer` per declared cluster, its health
//! check running as a Pingora background service, and a peer template per backend.

use crate::error::Error;
use crate::peer;
use crate::spec::{Balance, ClusterSpec, HealthKind, HealthSpec};
use pingora_core::services::background::background_service;
use pingora_core::services::ServiceWithDependents;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::health_check::{
    HealthCheck, HealthObserve, HttpHealthCheck, TcpHealthCheck,
};
use pingora_load_balancing::selection::{
    BackendIter, BackendSelection, Consistent, FNVHash, Random, RoundRobin,
};
use pingora_load_balancing::{Backend, Backends, LoadBalancer};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// How many candidates a selection looks at before giving up. Ketama walks the ring, so
/// this bounds the walk; it is well above any real cluster size.
const MAX_ITERATIONS: usize = 256;

/// One backend of a live cluster.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its address.
    pub addr: SocketAddr,
    /// Its weight.
    pub weight: u32,
}

/// A live cluster: its spec, its members and the balancer that picks among them.
pub struct Cluster {
    spec: &'static ClusterSpec,
    members: Vec<Member>,
    /// Peer templates, one per member, in `members` order: cloned per request, never
    /// re-parsed.
    peers: Vec<HttpPeer>,
    balancer: Balancer,
}

enum Balancer {
    RoundRobin(Arc<LoadBalancer<RoundRobin>>),
    Random(Arc<LoadBalancer<Random>>),
    Consistent(Arc<LoadBalancer<Consistent>>),
    Hash(Arc<LoadBalancer<FNVHash>>),
}

impl Cluster {
    /// Build cluster `spec` over `members` (the declared backends, or an override). Returns
    /// the cluster and, when it declares a health check, the background service that runs
    /// it; the caller must add that service to the server, or the check never runs.
    pub fn build(
        spec: &'static ClusterSpec,
        members: Vec<Member>,
    ) -> Result<(Cluster, Option<Box<dyn ServiceWithDependents>>), Error> {
        let peers = members
            .iter()
            .map(|m| peer::build(spec, m.addr))
            .collect::<Result<Vec<_>, _>>()?;
        let backends = members
            .iter()
            .map(|m| Backend {
                addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(m.addr),
                weight: m.weight as usize,
                ext: Default::default(),
            })
            .collect::<BTreeSet<_>>();
        let template = peers.first().cloned();
        let (balancer, service) = match spec.balance {
            Balance::RoundRobin => {
                let (lb, svc) = balancer::<RoundRobin>(spec, backends, template)?;
                (Balancer::RoundRobin(lb), svc)
            }
            Balance::Random => {
                let (lb, svc) = balancer::<Random>(spec, backends, template)?;
                (Balancer::Random(lb), svc)
            }
            Balance::Consistent(_) => {
                let (lb, svc) = balancer::<Consistent>(spec, backends, template)?;
                (Balancer::Consistent(lb), svc)
            }
            Balance::Hash(_) => {
                let (lb, svc) = balancer::<FNVHash>(spec, backends, template)?;
                (Balancer::Hash(lb), svc)
            }
        };
        Ok((
            Cluster {
                spec,
                members,
                peers,
                balancer,
            },
            service,
        ))
    }

    /// The cluster's declaration.
    pub fn spec(&self) -> &'static ClusterSpec {
        self.spec
    }

    /// The cluster's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Its members, as built.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Pick a healthy backend for `key` that `skip` does not refuse (used by retries to
    /// avoid backends already tried). `None` when no healthy backend is left.
    pub fn select(&self, key: &[u8], skip: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        let accept =
            |b: &Backend, healthy: bool| healthy && b.addr.as_inet().is_some_and(|a| !skip(a));
        let chosen = match &self.balancer {
            Balancer::RoundRobin(lb) => lb.select_with(key, MAX_ITERATIONS, accept),
            Balancer::Random(lb) => lb.select_with(key, MAX_ITERATIONS, accept),
            Balancer::Consistent(lb) => lb.select_with(key, MAX_ITERATIONS, accept),
            Balancer::Hash(lb) => lb.select_with(key, MAX_ITERATIONS, accept),
        }?;
        chosen.addr.as_inet().copied()
    }

    /// Whether backend `addr` is currently healthy (and a member).
    pub fn is_healthy(&self, addr: SocketAddr) -> bool {
        let backend = self
            .members
            .iter()
            .find(|m| m.addr == addr)
            .map(|m| Backend {
                addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(m.addr),
                weight: m.weight as usize,
                ext: Default::default(),
            });
        let Some(backend) = backend else {
            return false;
        };
        match &self.balancer {
            Balancer::RoundRobin(lb) => lb.backends().ready(&backend),
            Balancer::Random(lb) => lb.backends().ready(&backend),
            Balancer::Consistent(lb) => lb.backends().ready(&backend),
            Balancer::Hash(lb) => lb.backends().ready(&backend),
        }
    }

    /// The peer to connect to for backend `addr`.
    pub fn peer(&self, addr: SocketAddr) -> Option<HttpPeer> {
        let i = self.members.iter().position(|m| m.addr == addr)?;
        Some(self.peers[i].clone())
    }
}

type Service = Option<Box<dyn ServiceWithDependents>>;

fn balancer<S>(
    spec: &'static ClusterSpec,
    backends: BTreeSet<Backend>,
    template: Option<HttpPeer>,
) -> Result<(Arc<LoadBalancer<S>>, Service), Error>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    let mut lb = LoadBalancer::<S>::from_backends(Backends::new(Static::new(backends)));
    // Static discovery answers at once; run it now so the cluster has members before the
    // first request, whether or not a background service ever runs.
    let discovered = now_or_never(lb.update()).ok_or_else(|| Error::Startup {
        what: format!("cluster `{}`: static discovery did not complete", spec.name),
    })?;
    discovered.map_err(|e| Error::Startup {
        what: format!("cluster `{}`: {e}", spec.name),
    })?;
    let Some(health) = spec.health else {
        return Ok((Arc::new(lb), None));
    };
    lb.set_health_check(health_check(spec, &health, template));
    lb.health_check_frequency = Some(health.every);
    lb.parallel_health_check = true;
    let service = background_service(&format!("health check: cluster {}", spec.name), lb);
    let lb = service.task();
    Ok((lb, Some(Box::new(service))))
}

fn health_check(
    spec: &'static ClusterSpec,
    health: &HealthSpec,
    template: Option<HttpPeer>,
) -> Box<dyn HealthCheck + Send + Sync> {
    let observer = Some(Box::new(LogHealth { cluster: spec.name }) as _);
    match health.kind {
        HealthKind::Tcp => {
            let mut hc = match spec.tls {
                Some(tls) => TcpHealthCheck::new_tls(tls.sni),
                None => TcpHealthCheck::new(),
            };
            hc.consecutive_failure = health.fall as usize;
            hc.consecutive_success = health.rise as usize;
            hc.peer_template.options.connection_timeout = Some(health.timeout);
            if let Some(t) = &template {
                hc.peer_template.options.verify_cert = t.options.verify_cert;
                hc.peer_template.options.verify_hostname = t.options.verify_hostname;
            }
            hc.health_changed_callback = observer;
            hc
        }
        HealthKind::Http { path, host, expect } => {
            let host = if !host.is_empty() {
                host
            } else if let Some(tls) = spec.tls {
                tls.sni
            } else {
                "localhost"
            };
            let mut hc = HttpHealthCheck::new(host, spec.tls.is_some());
            if let Ok(mut req) = RequestHeader::build("GET", path.as_bytes(), None) {
                // `host` was checked by the macro to be a valid header value.
                let _ = req.append_header("Host", host);
                hc.req = req;
            }
            if let Some(t) = template {
                hc.peer_template = t;
            }
            hc.peer_template.options.connection_timeout = Some(health.timeout);
            hc.peer_template.options.read_timeout = Some(health.timeout);
            hc.consecutive_failure = health.fall as usize;
            hc.consecutive_success = health.rise as usize;
            hc.validator = Some(Box::new(move |resp| {
                if resp.status.as_u16() == expect {
                    Ok(())
                } else {
                    pingora_core::Error::e_explain(
                        pingora_core::ErrorType::CustomCode(
                            "unexpected health check status",
                            resp.status.as_u16(),
                        ),
                        format!("expected {expect}"),
                    )
                }
            }));
            hc.health_changed_callback = observer;
            Box::new(hc)
        }
    }
}

/// Logs each health change once, naming the cluster and the backend.
struct LogHealth {
    cluster: &'static str,
}

#[async_trait::async_trait]
impl HealthObserve for LogHealth {
    async fn observe(&self, target: &Backend, healthy: bool) {
        if healthy {
            log::info!(
                "cluster `{}`: backend {} is healthy again",
                self.cluster,
                target.addr
            );
        } else {
            log::warn!(
                "cluster `{}`: backend {} failed its health check and is out of rotation",
                self.cluster,
                target.addr
            );
        }
    }
}

/// Poll a future once; static discovery and selector builds complete immediately.
fn now_or_never<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
