//! The `ProxyHttp` shim every generated table runs in: decide, then select, then connect.

use crate::access_log::{AccessLog, Entry};
use crate::actions::{self, RouteState};
use crate::cluster::{LiveCluster, Outcome};
use crate::conform;
use crate::context::{Ctx, RequestState, Unavailable};
use crate::error::Error;
use crate::hooks::{Answer, Flow, Hooks};
use crate::metrics;
use crate::request::{Arrival, BadRequest, RequestView};
use crate::spec::{Actions, Cidr, PathPolicy, SplitSpec, Target};
use crate::table::{Decision, Id, Table};
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
    /// The user code of the table.
    hooks: T::Hooks,
    /// Per rule: its compiled rewrite and rate counter.
    routes: Box<[RouteState]>,
    /// This table's `switchyard_requests_in_flight`, looked up once; `Some` exactly when
    /// metrics are recorded (a metrics address is configured).
    in_flight: Option<prometheus::IntGauge>,
    /// The access log, when it is on.
    access_log: Option<AccessLog>,
}

impl<T: Table> Proxy<T> {
    /// Wrap live clusters, indexed like `T::CLUSTERS`, with the table's hooks.
    pub fn new(clusters: Arc<[LiveCluster]>, hooks: T::Hooks) -> Result<Self, Error> {
        let keyed = (0..clusters.len())
            .map(|first| {
                backup_chain(&clusters, first).any(|i| clusters[i].spec().balance.key().is_some())
            })
            .collect();
        Ok(Proxy {
            clusters,
            split_counters: T::SPLITS.iter().map(|_| AtomicU64::new(0)).collect(),
            keyed,
            hooks,
            routes: actions::route_states(T::ROUTES)?,
            in_flight: None,
            access_log: None,
        })
    }

    /// Record metrics and write the access log as configured.
    pub fn observed(mut self, metrics: bool, access_log: Option<AccessLog>) -> Self {
        self.in_flight =
            metrics.then(|| metrics::metrics().in_flight.with_label_values(&[T::NAME]));
        self.access_log = access_log;
        self
    }

    /// Metrics are recorded.
    fn metrics(&self) -> bool {
        self.in_flight.is_some()
    }

    /// A retry is decided for a request at cluster `index`.
    fn count_retry(&self, index: usize) {
        if self.metrics() {
            let name = self.clusters.get(index).map_or("-", LiveCluster::name);
            metrics::metrics()
                .retries
                .with_label_values(&[T::NAME, name])
                .inc();
        }
    }

    /// Route a request: the decision, the cluster index (a split's arm picked), and what
    /// the rule's actions found — a rate limit passed, the path to forward, a redirect's
    /// `Location`.
    fn route(&self, view: &RequestView<'_>) -> (Decision<T>, Option<usize>, Routed) {
        let decision = T::decide_view(view);
        let cluster = match decision.target {
            Target::Cluster(c) => Some(c.index()),
            Target::Split(i) => Some(self.split_arm(view, usize::from(i))),
            Target::Respond(..) | Target::Redirect(..) | Target::NoRoute => None,
        };
        let mut routed = Routed {
            limited: None,
            forward: None,
            location: None,
        };
        if let Some(route) = decision.route {
            let index = route.index();
            if let (Some(actions), Some(state)) = (T::ROUTES[index].actions, self.routes.get(index))
            {
                if let Some(limiter) = &state.limiter {
                    let limit = limiter.spec();
                    let mut ip = [0u8; 16];
                    let key = limit.by.and_then(|k| view.key(k, &mut ip)).unwrap_or(b"");
                    if limiter.over(key) {
                        routed.limited = Some(limit.per.as_secs());
                    }
                }
                if let Some(rewrite) = &actions.path {
                    routed.forward =
                        actions::rewrite_path(view.path, rewrite, state.rewrite.as_ref());
                }
            }
        }
        // `ambiguous_paths: decode` forwards the path it routed on.
        if routed.forward.is_none()
            && T::PATHS == PathPolicy::Decode
            && view.path != view.req.uri.path().as_bytes()
        {
            routed.forward = Some(view.path.to_vec());
        }
        if let Some(redirect) = decision.redirect() {
            // A `{host}` needs a host: an HTTP/1.0 request may come without one.
            let needs_host = redirect.location.contains(&crate::spec::Piece::Host);
            if !(needs_host && view.host.is_empty()) {
                routed.location = Some(actions::render_location(
                    redirect.location,
                    view.req,
                    view.host,
                ));
            }
        }
        (decision, cluster, routed)
    }

    /// The actions of the rule a request matched, if it has any.
    fn actions_of(ctx: &Ctx<T>) -> Option<&'static Actions> {
        T::ROUTES.get(ctx.route?.index())?.actions
    }

    /// Answer with the rule's own response (`respond`, `redirect`, 429, or 404 when no
    /// rule matched): the rule's response-header actions and the `response` hook apply to
    /// it as to a backend's. The connection stays open, so keep-alive and pipelined
    /// requests carry on after it.
    async fn answer_rule(
        &self,
        session: &mut Session,
        ctx: &mut Ctx<T>,
        status: u16,
        extra: Option<(http::HeaderName, Vec<u8>)>,
        body: &'static str,
    ) -> PResult<bool> {
        // A gRPC client reads errors from `grpc-status`, not from a page (grpc.rs).
        let grpc_error = status >= 400 && crate::grpc::is_grpc(session.req_header());
        let (mut resp, body) = if grpc_error {
            (crate::grpc::error_head(status, body)?, "")
        } else {
            let mut resp = pingora_http::ResponseHeader::build(status, Some(4))?;
            resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
            resp.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
            (resp, body)
        };
        resp.insert_header(http::header::CACHE_CONTROL, "private, no-store")?;
        if let Some((name, value)) = extra {
            resp.insert_header(name, value)?;
        }
        if let Some(a) = Self::actions_of(ctx) {
            actions::edit_headers(&mut resp, a.response_headers)?;
        }
        self.hooks.response(session, &mut resp, ctx).await?;
        write_answer(session, resp, Bytes::from_static(body.as_bytes())).await
    }

    /// The live cluster a request is at.
    fn cluster_of(&self, cluster: Option<T::ClusterId>) -> Option<&LiveCluster> {
        self.clusters.get(cluster?.index())
    }

    /// Which cluster a split sends this request to.
    fn split_arm(&self, view: &RequestView<'_>, index: usize) -> usize {
        let split = &T::SPLITS[index];
        let point = keyed_point(split, view).unwrap_or_else(|| {
            self.split_counters[index].fetch_add(1, Ordering::Relaxed) % u64::from(split.total)
        });
        pick_arm(split, point)
    }

    /// Give up on cluster `index` for this request: log why once, and leave the answer
    /// (502 or 503 naming the cluster) to `fail_to_proxy`.
    fn give_up(&self, ctx: &mut Ctx<T>, index: usize, why: Unavailable) {
        let name = self.clusters.get(index).map_or("-", LiveCluster::name);
        let route = ctx.route_name();
        match why {
            Unavailable::NoneHealthy | Unavailable::Unresolved => log::warn!(
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
    ) -> Result<(usize, SocketAddr, Box<HttpPeer>), usize> {
        // Backups come before backends that passive health has set aside: those are the
        // last resort.
        for obey_ejection in [true, false] {
            for index in backup_chain(&self.clusters, first) {
                let cluster = &self.clusters[index];
                if !obey_ejection && cluster.spec().passive.is_none() {
                    continue;
                }
                let mut ip = [0u8; 16];
                let key = cluster
                    .spec()
                    .balance
                    .key()
                    .and_then(|k| view?.key(k, &mut ip))
                    .unwrap_or(b"");
                let boxed = |addr, peer: &HttpPeer| (addr, Box::new(peer.clone()));
                if let Some((addr, peer)) =
                    cluster.select(key, |a| state.tried(a), obey_ejection, boxed)
                {
                    return Ok((index, addr, peer));
                }
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

/// Where a split keyed `by` a request key puts this request (`None` for an unkeyed split).
pub(crate) fn keyed_point(split: &SplitSpec, view: &RequestView<'_>) -> Option<u64> {
    let mut ip = [0u8; 16];
    let bytes = view.key(split.by?, &mut ip).unwrap_or(b"");
    Some(crate::cluster::fnv1a(bytes) % u64::from(split.total))
}

/// The cluster of the split arm `point` falls in (`point` < the split's total).
pub(crate) fn pick_arm(split: &SplitSpec, mut point: u64) -> usize {
    for &(cluster, weight) in split.arms {
        if point < u64::from(weight) {
            return cluster;
        }
        point -= u64::from(weight);
    }
    // Unreachable while `total` is the sum of the weights; the last arm is a safe answer.
    split.arms.last().map_or(0, |a| a.0)
}

/// What routing found beside the decision.
struct Routed {
    /// The rule's rate limit refused the request: its window, in seconds.
    limited: Option<u64>,
    /// The path to send upstream instead of the one received.
    forward: Option<Vec<u8>>,
    /// A redirect's `Location`.
    location: Option<Vec<u8>>,
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The listener `session` came in on. Its port is looked up only for a table that tests
/// `port(..)` (the first lookup on a connection asks the kernel).
fn arrival<T: Table>(session: &Session) -> Arrival {
    let digest = session.digest();
    Arrival {
        tls: digest.is_some_and(|d| d.ssl_digest.is_some()),
        port: if T::LISTENER_PORT {
            session
                .server_addr()
                .and_then(|a| a.as_inet())
                .map_or(0, |a| a.port())
        } else {
            0
        },
    }
}

/// Refuse a request the runtime will not route or forward, saying why in the log.
/// The connection is closed after it: what follows a malformed request cannot be trusted
/// to be framed as the client meant.
async fn refuse<T: Table>(session: &mut Session, bad: BadRequest) -> PResult<bool> {
    log::info!("{}: {} ({})", T::NAME, bad.reason(), bad.status());
    let body = Bytes::from_static(bad.reason().as_bytes());
    let mut resp = pingora_core::protocols::http::ServerSession::generate_error(bad.status());
    resp.set_content_length(body.len())?;
    if bad == BadRequest::MethodNotAllowed {
        // RFC 9110 §15.5.6: a 405 lists what is allowed. The proxy does not know each
        // resource's methods; these are what it forwards.
        resp.insert_header(http::header::ALLOW, ALLOWED_METHODS)?;
    }
    session.write_error_response(resp, body).await?;
    Ok(true)
}

/// The `Allow` header of a 405: every method the proxy forwards by default.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

/// Write an answer's head and body; the connection stays open.
async fn write_answer(
    session: &mut Session,
    resp: pingora_http::ResponseHeader,
    body: Bytes,
) -> PResult<bool> {
    let end = body.is_empty();
    session.write_response_header(Box::new(resp), end).await?;
    if !end {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(true)
}

/// Answer with what a hook gave.
async fn hook_answer<T: Table>(session: &mut Session, answer: Answer) -> PResult<bool> {
    let (status, headers, body, invalid) = answer.into_parts();
    if let Some(what) = invalid {
        log::error!("{}: {what} is not a valid header: answering 500", T::NAME);
        return Err(PError::explain(
            ErrorType::HTTPStatus(500),
            "a hook's answer had an invalid header",
        ));
    }
    let mut resp = pingora_http::ResponseHeader::build(status, Some(headers.len() + 1))?;
    for (name, value) in headers {
        resp.append_header(name, value)?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    write_answer(session, resp, body).await
}

/// `path` with the request's query, as a request target.
fn with_query(req: &pingora_http::RequestHeader, mut path: Vec<u8>) -> Vec<u8> {
    if let Some(query) = req.uri.query() {
        path.push(b'?');
        path.extend_from_slice(query.as_bytes());
    }
    path
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
        // HTTP/1.1 pipelining (RFC 9112 §9.3.2): requests a client sends before reading the
        // previous answer are served one after another, answers in order. Pingora keeps it
        // on for the rest of the connection; off, it drops every request after the first.
        session.set_pipelining_enabled(true);
        if let Some(gauge) = &self.in_flight {
            gauge.inc();
            ctx.state.in_flight = true;
        }
        let head = match conform::check_head(session.req_header()) {
            Ok(head) => head,
            Err(bad) => return refuse::<T>(session, bad).await,
        };
        let peer = client_ip(session);
        ctx.client = if T::TRUSTED_PROXIES.is_empty() {
            peer
        } else {
            actions::client_behind(peer, session.req_header(), T::TRUSTED_PROXIES)
        };
        if let Flow::Answer(a) = self.hooks.request(session, ctx).await? {
            return hook_answer::<T>(session, a).await;
        }
        ctx.state.arrival = arrival::<T>(session);
        let routed = RequestView::arrived(
            session.req_header(),
            ctx.client,
            ctx.state.arrival,
            T::PATHS,
            |view| self.route(view),
        );
        let (decision, cluster, routed) = match routed {
            Ok(routed) => routed,
            Err(bad) => return refuse::<T>(session, bad).await,
        };
        ctx.predicates = decision.predicates;
        ctx.route = decision.route;
        ctx.state.primary = cluster;
        ctx.cluster = cluster.and_then(T::ClusterId::at);
        if let (Some(_), true) = (routed.limited, self.metrics()) {
            metrics::metrics()
                .rate_limited
                .with_label_values(&[T::NAME, ctx.route_name()])
                .inc();
        }
        if let Some(window) = routed.limited {
            log::info!(
                "{}: route `{}`: over its rate limit (429)",
                T::NAME,
                ctx.route_name()
            );
            let retry = (
                http::header::RETRY_AFTER,
                window.max(1).to_string().into_bytes(),
            );
            return self
                .answer_rule(session, ctx, 429, Some(retry), "429 too many requests\n")
                .await;
        }
        if let Flow::Answer(a) = self.hooks.routed(session, ctx).await? {
            return hook_answer::<T>(session, a).await;
        }
        if let Some(r) = decision.response() {
            return self.answer_rule(session, ctx, r.status, None, r.body).await;
        }
        if let Some(r) = decision.redirect() {
            let Some(location) = routed.location else {
                return refuse::<T>(session, BadRequest::MissingHost).await;
            };
            let location = (http::header::LOCATION, location);
            return self
                .answer_rule(session, ctx, r.status, Some(location), "")
                .await;
        }
        if cluster.is_none() {
            return self
                .answer_rule(session, ctx, 404, None, "no route matches this request\n")
                .await;
        }
        // Forwarded from here on.
        let req = session.req_header();
        if req.method == http::Method::TRACE
            && !decision.route.is_some_and(|r| T::ROUTES[r.index()].trace)
        {
            return refuse::<T>(session, BadRequest::MethodNotAllowed).await;
        }
        let length = conform::single_length(req);
        let max_body = Self::actions_of(ctx).and_then(|a| a.max_body);
        if let (Some(max), Some(length)) = (max_body, length) {
            let length = std::str::from_utf8(length)
                .ok()
                .and_then(|l| l.trim().parse::<u64>().ok());
            if length.is_some_and(|l| l > max) {
                return refuse::<T>(session, BadRequest::BodyTooLarge).await;
            }
        }
        if let (true, Some(length)) = (head.collapse_length, length.map(<[u8]>::to_vec)) {
            session
                .req_header_mut()
                .insert_header(http::header::CONTENT_LENGTH, length)?;
        }
        if let Some(path) = routed.forward {
            ctx.state.forward_path = Some(with_query(session.req_header(), path));
        }
        if head.expects_continue {
            session
                .req_header_mut()
                .remove_header(&http::header::EXPECT);
            session.write_continue_response().await?;
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> PResult<()> {
        if let (Some(max), Some(chunk)) = (Self::actions_of(ctx).and_then(|a| a.max_body), body) {
            ctx.state.body_bytes += chunk.len() as u64;
            if ctx.state.body_bytes > max {
                log::info!(
                    "{}: route `{}`: {} (413)",
                    T::NAME,
                    ctx.route_name(),
                    BadRequest::BodyTooLarge.reason()
                );
                return Err(PError::explain(
                    ErrorType::HTTPStatus(413),
                    BadRequest::BodyTooLarge.reason(),
                ));
            }
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora_http::RequestHeader,
        ctx: &mut Self::CTX,
    ) -> PResult<()> {
        if let Some(target) = &ctx.state.forward_path {
            upstream_request.set_raw_path(target)?;
        }
        let forwarding = &T::FORWARDING;
        if forwarding.x_forwarded || forwarding.via.is_some() {
            let peer = client_ip(session);
            let trusted = peer.is_some_and(|p| Cidr::any_contains(T::TRUSTED_PROXIES, p));
            let tls = ctx.state.arrival.tls;
            actions::add_forwarding(upstream_request, peer, trusted, tls, forwarding)?;
        }
        if let Some(a) = Self::actions_of(ctx) {
            actions::edit_headers(upstream_request, a.request_headers)?;
        }
        self.hooks
            .upstream_request(session, upstream_request, ctx)
            .await
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut pingora_http::ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> PResult<()> {
        if let Some(a) = Self::actions_of(ctx) {
            actions::edit_headers(response, a.response_headers)?;
        }
        if session.is_process_shutting_down() {
            // Draining (SIGTERM, or an upgrade handing over): the client learns from this
            // answer that the connection ends, instead of from a close while it is idle.
            session.set_keepalive(None);
        }
        self.hooks.response(session, response, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&PError>, ctx: &mut Self::CTX) {
        self.hooks.log(session, e, ctx).await;
        if !self.metrics() && self.access_log.is_none() {
            return;
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let label = match (self.cluster_of(ctx.cluster), ctx.backend) {
            (Some(c), Some(addr)) => c.label(addr),
            _ => None,
        };
        let backend = label.as_deref().unwrap_or("-");
        if self.metrics() {
            let m = metrics::metrics();
            m.requests
                .with_label_values(&[
                    T::NAME,
                    ctx.route_name(),
                    ctx.cluster_name(),
                    backend,
                    metrics::status_class(status),
                ])
                .inc();
            m.request_seconds
                .with_label_values(&[T::NAME, ctx.route_name()])
                .observe(ctx.elapsed().as_secs_f64());
            if let (true, Some(gauge)) = (ctx.state.in_flight, &self.in_flight) {
                gauge.dec();
                ctx.state.in_flight = false;
            }
        }
        if let Some(log) = &self.access_log {
            let req = session.req_header();
            let host = req
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri.host())
                .unwrap_or("");
            let target = req.uri.path_and_query().map_or("", |p| p.as_str());
            let entry = Entry {
                client: ctx.client,
                method: req.method.as_str(),
                host,
                target,
                status,
                route: ctx.route_name(),
                cluster: ctx.cluster_name(),
                backend: ctx.backend.map(|_| backend),
                tries: ctx.tries,
                upstream: ctx.state.upstream_time,
                total: ctx.elapsed(),
                bytes_in: session.body_bytes_read(),
                bytes_out: session.body_bytes_sent(),
            };
            if !log.record(&entry) && self.metrics() {
                metrics::metrics()
                    .access_log_dropped
                    .with_label_values(&[T::NAME])
                    .inc();
            }
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
            RequestView::with(session.req_header(), ctx.client, |view| {
                self.select(Some(view), primary, state)
            })
            .map_err(|bad| PError::explain(ErrorType::HTTPStatus(bad.status()), bad.reason()))?
        } else {
            self.select(None, primary, state)
        };
        match chosen {
            Ok((index, addr, mut peer)) => {
                let cluster = &self.clusters[index];
                ctx.state.remember(addr);
                ctx.cluster = T::ClusterId::at(index);
                ctx.backend = Some(addr);
                ctx.tries += 1;
                ctx.state.upstream_started = Some(std::time::Instant::now());
                ctx.state.upstream_time = None;
                if session.is_upgrade_req() {
                    // A WebSocket waits for messages, not for an answer: its own idle
                    // timeout replaces the HTTP `read` one.
                    let t = &cluster.spec().timeouts;
                    peer.options.read_timeout =
                        Some(t.websocket.unwrap_or(crate::spec::Timeouts::WEBSOCKET_IDLE));
                }
                Ok(peer)
            }
            Err(index) => {
                // Nothing left to try: either no backend was healthy to begin with, or
                // every backend this request could use was tried (a retry asked for one
                // more than the cluster had left).
                let why = if ctx.tries == 0
                    && self.clusters.get(index).is_some_and(LiveCluster::is_empty)
                {
                    Unavailable::Unresolved
                } else if ctx.tries == 0 {
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
            cluster.report(*addr, Outcome::Failed);
        }
        // A connect failure never reached the backend: always safe to try another one.
        if ctx.tries <= cluster.retries().0 {
            e.set_retry(true);
            self.count_retry(index);
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
        if !matches!(e.esource(), pingora_core::ErrorSource::Upstream) {
            // The client went away (or sent something wrong): nothing to hold against the
            // backend, and nobody to retry for.
            return e;
        }
        let cluster = self.cluster_of(ctx.cluster);
        // An error on a pooled connection says little about the backend: it may have
        // closed the connection while it sat idle, and Pingora sends the request again on
        // a new one. Only an error on a fresh connection counts against the backend.
        if let (Some(cluster), Some(addr), false) =
            (cluster, peer._address.as_inet(), client_reused)
        {
            cluster.report(*addr, Outcome::Failed);
        }
        // The request may have reached the backend: retry elsewhere only when repeating it
        // is harmless (an idempotent method and a body still fully buffered).
        let idempotent = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        let retries = cluster.map_or(0, |c| c.retries().1);
        if !idempotent {
            e.set_retry(false);
        } else if ctx.tries <= retries {
            e.set_retry(true);
            if let Some(index) = ctx.cluster.map(Id::index) {
                self.count_retry(index);
            }
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
            let server_error = upstream_response.status.is_server_error();
            cluster.report(addr, Outcome::Answered { server_error });
            if let Some(started) = ctx.state.upstream_started {
                let took = started.elapsed();
                ctx.state.upstream_time = Some(took);
                if self.metrics() {
                    let label = cluster.label(addr);
                    metrics::metrics()
                        .upstream_seconds
                        .with_label_values(&[
                            T::NAME,
                            cluster.name(),
                            label.as_deref().unwrap_or("-"),
                        ])
                        .observe(took.as_secs_f64());
                }
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &PError,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let grpc = crate::grpc::is_grpc(session.req_header());
        if let Some((index, why)) = ctx.state.unavailable {
            let name = self.clusters.get(index).map_or("-", LiveCluster::name);
            let code = why.status();
            if grpc {
                let message = format!("{} in cluster `{name}`", why.reason());
                return grpc_failure::<T>(session, code, &message).await;
            }
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
        if code > 0 && grpc {
            let message = match code {
                504 => "the backend did not answer in time",
                502 => "the backend failed",
                _ => "the proxy could not forward the call",
            };
            return grpc_failure::<T>(session, code, message).await;
        }
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

/// Answer a gRPC call the proxy failed with a trailers-only gRPC error (grpc.rs).
async fn grpc_failure<T: Table>(session: &mut Session, code: u16, message: &str) -> FailToProxy {
    let written = match crate::grpc::error_head(code, message) {
        Ok(head) => session.write_response_header(Box::new(head), true).await,
        Err(e) => Err(e),
    };
    if let Err(err) = written {
        log::debug!(
            "{}: could not answer a gRPC error for {code}: {err}",
            T::NAME
        );
    }
    FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
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
