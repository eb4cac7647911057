//! The per-request context: owned by the runtime, parameterized by a table's enums and
//! predicates. `routes!` names it (`pub type GatewayCtx = Ctx<Gateway>;`); it is the shape
//! user hooks receive.

use crate::table::{Id, Table};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What the proxy knows about one request as it goes through the phases.
pub struct Ctx<T: Table> {
    /// The rule that matched (`None` before routing, or when no rule matched).
    pub route: Option<T::RouteId>,
    /// The cluster the request goes to: the rule's, or the split arm's, then the backup's
    /// if the backup took it.
    pub cluster: Option<T::ClusterId>,
    /// The backend of the latest attempt.
    pub backend: Option<SocketAddr>,
    /// Connection attempts made so far.
    pub tries: u32,
    /// When the request arrived.
    pub started: Instant,
    /// The value of each named predicate for this request (all `false` before routing).
    pub predicates: T::Predicates,
    /// The client's address as the rules see it: the connection's peer, or the address
    /// it forwards for when it is one of the table's `trusted_proxies`.
    pub client: Option<IpAddr>,
    /// Values hooks keep for the rest of the request (a tenant found by `routed`, read by
    /// `upstream_request`), by type: `ctx.extensions.insert(Tenant(..))`. Empty, it holds
    /// no allocation.
    pub extensions: http::Extensions,
    /// Runtime bookkeeping: which backends were tried, why none was left.
    pub(crate) state: RequestState,
}

impl<T: Table> Ctx<T> {
    /// A context for a request that arrives now.
    pub fn new() -> Self {
        Ctx {
            route: None,
            cluster: None,
            backend: None,
            tries: 0,
            started: Instant::now(),
            predicates: T::Predicates::default(),
            client: None,
            extensions: http::Extensions::new(),
            state: RequestState::default(),
        }
    }

    /// Time since the request arrived.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The matched rule's name, or `-`.
    pub fn route_name(&self) -> &'static str {
        self.route.map_or("-", Id::name)
    }

    /// The cluster's name, or `-`.
    pub fn cluster_name(&self) -> &'static str {
        self.cluster.map_or("-", Id::name)
    }

    /// How long the backend took to answer with its head (the latest attempt), once it
    /// has.
    pub fn upstream_duration(&self) -> Option<Duration> {
        self.state.upstream_time
    }
}

impl<T: Table> Default for Ctx<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Table> fmt::Debug for Ctx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("route", &self.route)
            .field("cluster", &self.cluster)
            .field("backend", &self.backend)
            .field("tries", &self.tries)
            .field("started", &self.started)
            .field("predicates", &self.predicates)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Most backends one request remembers having tried; retries past it may repeat one.
const TRIED: usize = 8;

/// Per-request bookkeeping of the runtime.
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestState {
    /// The cluster index picked by the rule or split (before any backup).
    pub(crate) primary: Option<usize>,
    tried: [Option<SocketAddr>; TRIED],
    /// Set when the request ends without an upstream answer that the runtime explains
    /// itself: the cluster (index) and why.
    pub(crate) unavailable: Option<(usize, Unavailable)>,
    /// The path (and query) to send upstream instead of the one received: set by
    /// `ambiguous_paths: decode` and by path actions.
    pub(crate) forward_path: Option<Vec<u8>>,
    /// Request body bytes read so far, for a rule's `max_body`.
    pub(crate) body_bytes: u64,
    /// When the latest attempt's backend was chosen, and how long until its answer's head.
    pub(crate) upstream_started: Option<Instant>,
    pub(crate) upstream_time: Option<Duration>,
    /// Counted in `switchyard_requests_in_flight` (to be taken out once, at the end).
    pub(crate) in_flight: bool,
    /// The listener the request came in on: read once, for routing and for
    /// `X-Forwarded-Proto`.
    pub(crate) arrival: crate::request::Arrival,
}

/// Why a request found no backend to send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// No backend of the cluster (or its backups) was healthy to begin with: 503.
    NoneHealthy,
    /// Every backend the request was allowed to try was tried and failed: 502.
    AllFailed,
    /// The cluster's backends are names, none of which has resolved yet: 503.
    Unresolved,
}

impl Unavailable {
    /// The status a client gets.
    pub(crate) fn status(self) -> u16 {
        match self {
            Unavailable::NoneHealthy | Unavailable::Unresolved => 503,
            Unavailable::AllFailed => 502,
        }
    }

    /// The words of the answer's body and the log line, before the cluster's name.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Unavailable::NoneHealthy => "no healthy backend",
            Unavailable::AllFailed => "every backend tried failed",
            Unavailable::Unresolved => "no backend address has resolved yet",
        }
    }
}

impl RequestState {
    pub(crate) fn tried(&self, addr: &SocketAddr) -> bool {
        self.tried.iter().any(|t| t.as_ref() == Some(addr))
    }

    pub(crate) fn remember(&mut self, addr: SocketAddr) {
        if let Some(slot) = self.tried.iter_mut().find(|t| t.is_none()) {
            *slot = Some(addr);
        }
    }
}
