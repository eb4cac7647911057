//! The `ProxyHttp` shim every generated table runs in: decide, then select, then connect.

use crate::cluster::Cluster;
use crate::request::{BadRequest, RequestView};
use crate::spec::{ClusterSpec, Response, RouteSpec, SplitSpec, Target};
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error as PError, ErrorType, Result as PResult};
use pingora_http::RequestHeader;
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A routing table, as `routes!` generates it. Not meant to be implemented by hand.
pub trait Table: Sized + Send + Sync + 'static {
    /// The route enum (`GatewayRoute`).
    type Route: Copy + Eq + fmt::Debug + Send + Sync + 'static;
    /// The cluster enum (`GatewayCluster`).
    type Cluster: Copy + Eq + fmt::Debug + Send + Sync + 'static;
    /// The named predicates of one request.
    type Predicates: Copy + Default + fmt::Debug + Send + Sync + 'static;
    /// The per-request context (`GatewayCtx`).
    type Ctx: Send + Sync + 'static;

    /// The proxy's name (`Gateway`).
    const NAME: &'static str;
    /// The clusters, indexed like `Cluster`.
    const CLUSTERS: &'static [ClusterSpec];
    /// The rules, in order.
    const ROUTES: &'static [RouteSpec];
    /// The weighted splits, indexed by `Target::Split`.
    const SPLITS: &'static [SplitSpec];
    /// The fixed answers of `respond(..)` rules, indexed by `Target::Respond`.
    const RESPONSES: &'static [Response];

    /// Decide a request: which rule matches and where it goes. Allocates nothing.
    fn decide_view(view: &RequestView<'_>) -> Decision<Self>;
    /// The index of a cluster in `CLUSTERS`.
    fn cluster_index(cluster: Self::Cluster) -> usize;
    /// The cluster at an index of `CLUSTERS`.
    fn cluster_at(index: usize) -> Self::Cluster;
    /// The name of a route.
    fn route_name(route: Self::Route) -> &'static str;
    /// A fresh context.
    fn new_ctx() -> Self::Ctx;
    /// The context's fields the runtime writes.
    fn ctx_parts(ctx: &mut Self::Ctx) -> CtxParts<'_, Self>;
    /// Copy the predicates of a decision into the context's fields.
    fn record_predicates(ctx: &mut Self::Ctx, predicates: &Self::Predicates);

    /// Decide a request head from a client address.
    fn decide(req: &RequestHeader, client: Option<IpAddr>) -> Result<Decision<Self>, BadRequest> {
        RequestView::with(req, client, Self::decide_view)
    }
}

/// The result of deciding a request.
pub struct Decision<T: Table> {
    /// The rule that matched; `None` when none did.
    pub route: Option<T::Route>,
    /// Where the request goes.
    pub target: Target<T::Cluster>,
    /// The value of each named predicate for this request.
    pub predicates: T::Predicates,
}

impl<T: Table> Decision<T> {
    /// The status and body, when the target is a fixed answer (`respond(..)`).
    pub fn response(&self) -> Option<Response> {
        match self.target {
            Target::Respond(i) => T::RESPONSES.get(i as usize).copied(),
            _ => None,
        }
    }
}

impl<T: Table> Clone for Decision<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Table> Copy for Decision<T> {}

impl<T: Table> fmt::Debug for Decision<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("route", &self.route)
            .field("target", &self.target)
            .field("predicates", &self.predicates)
            .finish()
    }
}

impl<T: Table> PartialEq for Decision<T> {
    fn eq(&self, other: &Self) -> bool {
        self.route == other.route && self.target == other.target
    }
}

/// Mutable access to the context fields the runtime fills in.
pub struct CtxParts<'a, T: Table> {
    /// The rule that matched.
    pub route: &'a mut Option<T::Route>,
    /// The cluster the request was sent to (after split and backup).
    pub cluster: &'a mut Option<T::Cluster>,
    /// The backend of the latest attempt.
    pub backend: &'a mut Option<SocketAddr>,
    /// Connection attempts so far.
    pub tries: &'a mut u32,
    /// Runtime bookkeeping.
    pub state: &'a mut RequestState,
}

/// Most backends one request remembers having tried; retries past it may repeat one.
const TRIED: usize = 8;

/// Per-request bookkeeping of the runtime, kept in the generated context.
#[derive(Debug, Default, Clone)]
pub struct RequestState {
    /// The cluster picked by the rule (before backup).
    primary: Option<usize>,
    tried: [Option<SocketAddr>; TRIED],
    /// Set when no backend was left to try: the cluster that was asked.
    unavailable: Option<usize>,
    /// With `unavailable`: backends were tried and failed (502), rather than none being
    /// healthy (503).
    exhausted: bool,
}

impl RequestState {
    fn tried(&self, addr: &SocketAddr) -> bool {
        self.tried.iter().any(|t| t.as_ref() == Some(addr))
    }

    fn remember(&mut self, addr: SocketAddr) {
        if let Some(slot) = self.tried.iter_mut().find(|t| t.is_none()) {
            *slot = Some(addr);
        }
    }
}

/// A running table: the live clusters and the rules that pick them.
pub struct Proxy<T: Table> {
    clusters: Arc<[Cluster]>,
    /// Counters for unkeyed splits, one per split.
    split_counters: Box<[AtomicU64]>,
    /// Per cluster: it or one of its backups balances on a request key, so selecting a
    /// backend needs the request view.
    keyed: Box<[bool]>,
    _table: std::marker::PhantomData<fn() -> T>,
}

impl<T: Table> Proxy<T> {
    /// Wrap live clusters, indexed like `T::CLUSTERS`.
    pub fn new(clusters: Arc<[Cluster]>) -> Self {
        let keyed = (0..clusters.len())
            .map(|first| {
                backup_chain(&clusters, first).any(|i| clusters[i].spec().balance.key().is_some())
            })
            .collect();
        Proxy {
            clusters,
            split_counters: T::SPLITS.iter().map(|_| AtomicU64::new(0)).collect(),
            keyed,
            _table: std::marker::PhantomData,
        }
    }

    /// The live cluster a request is at.
    fn cluster_of(&self, cluster: Option<T::Cluster>) -> Option<&Cluster> {
        self.clusters.get(T::cluster_index(cluster?))
    }

    /// Which cluster a split sends this request to.
    fn split_arm(&self, view: &RequestView<'_>, index: usize) -> usize {
        let split = &T::SPLITS[index];
        let point = match split.by {
            Some(key) => {
                let mut ip = [0u8; 16];
                let bytes = view.key(key, &mut ip).unwrap_or(b"");
                crate::cluster::fnv1a(bytes) % u64::from(split.total)
            }
            None => {
                self.split_counters[index].fetch_add(1, Ordering::Relaxed) % u64::from(split.total)
            }
        };
        pick_arm(split, point)
    }

    /// Pick a backend of cluster `index` (or of its backups) not tried yet. `view` is
    /// needed only when a cluster of the chain balances on a request key.
    fn select(
        &self,
        view: Option<&RequestView<'_>>,
        first: usize,
        state: &RequestState,
    ) -> Result<(usize, SocketAddr), usize> {
        for index in backup_chain(&self.clusters, first) {
            let cluster = &self.clusters[index];
            let mut ip = [0u8; 16];
            let key = cluster
                .spec()
                .balance
                .key()
                .and_then(|k| view?.key(k, &mut ip))
                .unwrap_or(b"");
            if let Some(addr) = cluster.select(key, |a| state.tried(a)) {
                return Ok((index, addr));
            }
        }
        Err(first)
    }
}

/// Cluster `first`, then its backup, the backup's backup, and so on. Backup chains are
/// acyclic (checked by the macro); the bound on the length is a second guard.
fn backup_chain(clusters: &[Cluster], first: usize) -> impl Iterator<Item = usize> + '_ {
    std::iter::successors(Some(first), |&i| clusters.get(i)?.spec().backup)
        .take_while(|&i| i < clusters.len())
        .take(clusters.len() + 1)
}

fn pick_arm(split: &SplitSpec, mut point: u64) -> usize {
    for &(cluster, weight) in split.arms {
        if point < u64::from(weight) {
            return cluster;
        }
        point -= u64::from(weight);
    }
    // Unreachable while `total` is the sum of the weights; the last arm is a safe answer.
    split.arms.last().map_or(0, |a| a.0)
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

async fn respond(session: &mut Session, status: u16, body: &'static str) -> PResult<bool> {
    session
        .respond_error_with_body(status, Bytes::from_static(body.as_bytes()))
        .await?;
    Ok(true)
}

#[async_trait]
impl<T: Table> ProxyHttp for Proxy<T> {
    type CTX = T::Ctx;

    fn new_ctx(&self) -> Self::CTX {
        T::new_ctx()
    }

    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {
        // No per-request compression module: the proxy forwards bodies as they are.
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> PResult<bool> {
        let client = client_ip(session);
        let routed = RequestView::with(session.req_header(), client, |view| {
            let decision = T::decide_view(view);
            let cluster = match decision.target {
                Target::Cluster(c) => Some(T::cluster_index(c)),
                Target::Split(i) => Some(self.split_arm(view, i as usize)),
                Target::Respond(..) | Target::NoRoute => None,
            };
            (decision, cluster)
        });
        let (decision, cluster) = match routed {
            Ok(routed) => routed,
            Err(bad) => {
                log::info!("{}: {} ({})", T::NAME, bad.reason(), bad.status());
                return respond(session, bad.status(), bad.reason()).await;
            }
        };
        T::record_predicates(ctx, &decision.predicates);
        let parts = T::ctx_parts(ctx);
        *parts.route = decision.route;
        parts.state.primary = cluster;
        *parts.cluster = cluster.map(T::cluster_at);
        if let Some(r) = decision.response() {
            return respond(session, r.status, r.body).await;
        }
        match decision.target {
            Target::NoRoute => respond(session, 404, "no route matches this request\n").await,
            Target::Cluster(_) | Target::Split(_) | Target::Respond(_) => Ok(false),
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> PResult<Box<HttpPeer>> {
        let parts = T::ctx_parts(ctx);
        let Some(primary) = parts.state.primary else {
            // request_filter answered every request that has no cluster.
            return Err(PError::explain(
                ErrorType::InternalError,
                "no cluster chosen",
            ));
        };
        let state = &*parts.state;
        let chosen = if self.keyed.get(primary).copied().unwrap_or(false) {
            RequestView::with(session.req_header(), client_ip(session), |view| {
                self.select(Some(view), primary, state)
            })
            .map_err(|bad| PError::explain(ErrorType::HTTPStatus(bad.status()), bad.reason()))?
        } else {
            self.select(None, primary, state)
        };
        match chosen {
            Ok((index, addr)) => {
                let cluster = &self.clusters[index];
                parts.state.remember(addr);
                *parts.cluster = Some(T::cluster_at(index));
                *parts.backend = Some(addr);
                *parts.tries += 1;
                let peer = cluster.peer(addr).ok_or_else(|| {
                    PError::explain(ErrorType::InternalError, "selected backend has no peer")
                })?;
                Ok(Box::new(peer))
            }
            Err(index) => {
                let name = self.clusters[index].name();
                let route = parts.route.map_or("-", T::route_name);
                log::warn!(
                    "{}: route `{route}`: no healthy backend in cluster `{name}` (after {} tries)",
                    T::NAME,
                    *parts.tries
                );
                parts.state.unavailable = Some(index);
                Err(PError::explain(
                    ErrorType::HTTPStatus(503),
                    "no healthy backend",
                ))
            }
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<PError>,
    ) -> Box<PError> {
        let parts = T::ctx_parts(ctx);
        let Some(cluster) = self.cluster_of(*parts.cluster) else {
            return e;
        };
        log::warn!(
            "{}: cluster `{}`: connect to {} failed: {e}",
            T::NAME,
            cluster.name(),
            peer._address
        );
        if let Some(addr) = peer._address.as_inet() {
            cluster.report(*addr, false);
        }
        // A connect failure never reached the backend: always safe to try another one.
        if *parts.tries <= cluster.spec().retries {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<PError>,
        ctx: &mut Self::CTX,
        client_reused: bool,
    ) -> Box<PError> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let parts = T::ctx_parts(ctx);
        let cluster = self.cluster_of(*parts.cluster);
        if let (Some(cluster), Some(addr)) = (cluster, peer._address.as_inet()) {
            cluster.report(*addr, false);
        }
        // The request may have reached the backend: retry elsewhere only when repeating it
        // is harmless (an idempotent method and a body still fully buffered).
        let idempotent = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        let retries = cluster.map_or(0, |c| c.spec().retries);
        if !idempotent {
            e.set_retry(false);
        } else if *parts.tries <= retries {
            e.set_retry(true);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut pingora_http::ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> PResult<()> {
        let parts = T::ctx_parts(ctx);
        if let (Some(cluster), Some(addr)) = (self.cluster_of(*parts.cluster), *parts.backend) {
            cluster.report(addr, upstream_response.status.as_u16() < 500);
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &PError,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let parts = T::ctx_parts(ctx);
        if let Some(index) = parts.state.unavailable {
            let name = self.clusters[index].name();
            let (code, body) = if parts.state.exhausted {
                (
                    502,
                    format!("502 every backend tried in cluster `{name}` failed\n"),
                )
            } else {
                (503, format!("503 no healthy backend in cluster `{name}`\n"))
            };
            if let Err(err) = session
                .respond_error_with_body(code, Bytes::from(body))
                .await
            {
                log::debug!("{}: could not answer {code}: {err}", T::NAME);
            }
            return FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            };
        }
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            // The backend did not answer in time: a gateway timeout, as nginx answers.
            ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout => 504,
            _ => match e.esource() {
                pingora_core::ErrorSource::Upstream => 502,
                pingora_core::ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                _ => 500,
            },
        };
        if code > 0 {
            if let Err(err) = session.respond_error(code).await {
                log::debug!("{}: could not answer {code}: {err}", T::NAME);
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_arms_follow_weights() {
        static SPLIT: SplitSpec = SplitSpec {
            arms: &[(3, 5), (7, 95)],
            total: 100,
            by: None,
        };
        let mut counts = [0u32; 8];
        for point in 0..100 {
            counts[pick_arm(&SPLIT, point)] += 1;
        }
        assert_eq!((counts[3], counts[7]), (5, 95));
    }
}
