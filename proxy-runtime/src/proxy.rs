//! The `ProxyHttp` shim every generated table runs in: decide, then select, then connect.

use crate::cluster::LiveCluster;
use crate::context::{Ctx, RequestState, Unavailable};
use crate::request::RequestView;
use crate::spec::{SplitSpec, Target};
use crate::table::{Id, Table};
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error as PError, ErrorType, Result as PResult};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A running table: the live clusters and the rules that pick them.
pub struct Proxy<T: Table> {
    clusters: Arc<[LiveCluster]>,
    /// Counters for unkeyed splits, one per split.
    split_counters: Box<[AtomicU64]>,
    /// Per cluster: it or one of its backups balances on a request key, so selecting a
    /// backend needs the request view.
    keyed: Box<[bool]>,
    _table: std::marker::PhantomData<fn() -> T>,
}

impl<T: Table> Proxy<T> {
    /// Wrap live clusters, indexed like `T::CLUSTERS`.
    pub fn new(clusters: Arc<[LiveCluster]>) -> Self {
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
    fn cluster_of(&self, cluster: Option<T::ClusterId>) -> Option<&LiveCluster> {
        self.clusters.get(cluster?.index())
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

    /// Give up on cluster `index` for this request: log why once, and leave the answer
    /// (502 or 503 naming the cluster) to `fail_to_proxy`.
    fn give_up(&self, ctx: &mut Ctx<T>, index: usize, why: Unavailable) {
        let name = self.clusters.get(index).map_or("-", LiveCluster::name);
        let route = ctx.route_name();
        match why {
            Unavailable::NoneHealthy => log::warn!(
                "{}: route `{route}`: {} in cluster `{name}`",
                T::NAME,
                why.reason()
            ),
            Unavailable::AllFailed => log::warn!(
                "{}: route `{route}`: {} in cluster `{name}` ({} tries in {:?})",
                T::NAME,
                why.reason(),
                ctx.tries,
                ctx.elapsed()
            ),
        }
        ctx.state.unavailable = Some((index, why));
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
fn backup_chain(clusters: &[LiveCluster], first: usize) -> impl Iterator<Item = usize> + '_ {
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
    type CTX = Ctx<T>;

    fn new_ctx(&self) -> Self::CTX {
        Ctx::new()
    }

    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {
        // No per-request compression module: the proxy forwards bodies as they are.
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> PResult<bool> {
        let client = client_ip(session);
        let routed = RequestView::with(session.req_header(), client, |view| {
            let decision = T::decide_view(view);
            let cluster = match decision.target {
                Target::Cluster(c) => Some(c.index()),
                Target::Split(i) => Some(self.split_arm(view, usize::from(i))),
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
        ctx.predicates = decision.predicates;
        ctx.route = decision.route;
        ctx.state.primary = cluster;
        ctx.cluster = cluster.and_then(T::ClusterId::at);
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
        let Some(primary) = ctx.state.primary else {
            // request_filter answered every request that has no cluster.
            return Err(PError::explain(
                ErrorType::InternalError,
                "no cluster chosen",
            ));
        };
        let state = &ctx.state;
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
                ctx.state.remember(addr);
                ctx.cluster = T::ClusterId::at(index);
                ctx.backend = Some(addr);
                ctx.tries += 1;
                let peer = cluster.peer(addr).ok_or_else(|| {
                    PError::explain(ErrorType::InternalError, "selected backend has no peer")
                })?;
                Ok(Box::new(peer))
            }
            Err(index) => {
                // Nothing left to try: either no backend was healthy to begin with, or
                // every backend this request could use was tried (a retry asked for one
                // more than the cluster had left).
                let why = if ctx.tries == 0 {
                    Unavailable::NoneHealthy
                } else {
                    Unavailable::AllFailed
                };
                self.give_up(ctx, index, why);
                Err(PError::explain(
                    ErrorType::HTTPStatus(why.status()),
                    why.reason(),
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
        let Some(index) = ctx.cluster.map(Id::index) else {
            return e;
        };
        let Some(cluster) = self.clusters.get(index) else {
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
        if ctx.tries <= cluster.spec().retries {
            e.set_retry(true);
        } else if !timed_out(&e) {
            // The last try the cluster allows was refused or reset: every backend tried
            // failed (a timeout stays a 504, answered from the error).
            self.give_up(ctx, index, Unavailable::AllFailed);
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
        let cluster = self.cluster_of(ctx.cluster);
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
        } else if ctx.tries <= retries {
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
        if let (Some(cluster), Some(addr)) = (self.cluster_of(ctx.cluster), ctx.backend) {
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
        if let Some((index, why)) = ctx.state.unavailable {
            let name = self.clusters.get(index).map_or("-", LiveCluster::name);
            let code = why.status();
            let body = format!("{code} {} in cluster `{name}`\n", why.reason());
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
            _ if timed_out(e) => 504,
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

/// The backend did not answer in time: a gateway timeout (504), as nginx answers.
fn timed_out(e: &PError) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout
    )
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
