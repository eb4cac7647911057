//! The contract between `routes!` and the runtime: what only generated code can know.
//!
//! A table contributes its two enums (routes and clusters, both [`Id`]s), its predicates
//! struct, its declarations as `static` data, and the decision function. Everything that
//! acts on a request — the per-request [`Ctx`](crate::Ctx), selection, retries, answers —
//! is the runtime's, written once for every table.

use crate::hooks::Hooks;
use crate::request::{Arrival, BadRequest, RequestView};
use crate::spec::{
    Cidr, ClusterSpec, Forwarding, PathPolicy, PredicateSpec, RedirectSpec, Response, RouteSpec,
    SplitSpec, Target,
};
use pingora_http::RequestHeader;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;

/// A generated enum naming the routes or the clusters of a table (`GatewayRoute`,
/// `GatewayCluster`).
pub trait Id: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static {
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// The name as written in the table (also the log and metric label).
    fn name(self) -> &'static str;
    /// The position in [`Id::ALL`]; for clusters, also in [`Table::CLUSTERS`].
    fn index(self) -> usize;
    /// The variant at `index` of [`Id::ALL`].
    fn at(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }
}

/// A routing table, as `routes!` generates it. Not meant to be implemented by hand.
pub trait Table: Sized + Send + Sync + 'static {
    /// The route enum (`GatewayRoute`).
    type RouteId: Id;
    /// The cluster enum (`GatewayCluster`).
    type ClusterId: Id;
    /// The named predicates of one request (`GatewayPredicates`).
    type Predicates: Copy + Default + fmt::Debug + Send + Sync + 'static;
    /// The user code run at each phase of a request: the type named in `proxy
    /// Gateway(Auth);`, or [`NoHooks`](crate::hooks::NoHooks).
    type Hooks: Hooks<Self>;

    /// The proxy's name (`Gateway`).
    const NAME: &'static str;
    /// The clusters, indexed like [`Table::ClusterId`].
    const CLUSTERS: &'static [ClusterSpec];
    /// The rules, in order.
    const ROUTES: &'static [RouteSpec];
    /// The weighted splits, indexed by `Target::Split`.
    const SPLITS: &'static [SplitSpec];
    /// The fixed answers of `respond(..)` rules, indexed by `Target::Respond`.
    const RESPONSES: &'static [Response];
    /// What happens to ambiguous paths (`ambiguous_paths: ..;`, default `reject`).
    const PATHS: PathPolicy = PathPolicy::Reject;
    /// The redirects of `redirect(..)` rules, indexed by `Target::Redirect`.
    const REDIRECTS: &'static [RedirectSpec] = &[];
    /// Peers whose `X-Forwarded-For` is believed (`trusted_proxies: [..];`): for a request
    /// from one of them, the client address that matchers, hashing and rate limits see is
    /// the nearest untrusted address in that header.
    const TRUSTED_PROXIES: &'static [Cidr] = &[];
    /// The forwarding headers added upstream.
    const FORWARDING: Forwarding = Forwarding::DEFAULT;
    /// The named predicates as data, in declaration order (for `--explain`).
    const PREDICATES: &'static [PredicateSpec] = &[];
    /// A rule tests `port(..)`: the listener's local port is looked up per request.
    const LISTENER_PORT: bool = false;

    /// Decide a request: which rule matches and where it goes. Allocates nothing.
    fn decide_view(view: &RequestView<'_>) -> Decision<Self>;

    /// Decide a request head from a client address.
    fn decide(req: &RequestHeader, client: Option<IpAddr>) -> Result<Decision<Self>, BadRequest> {
        RequestView::with_policy(req, client, Self::PATHS, Self::decide_view)
    }

    /// [`decide`](Table::decide) for a request that came in on listener `arrival` (for
    /// tables with `tls` or `port(..)` rules).
    fn decide_at(
        req: &RequestHeader,
        client: Option<IpAddr>,
        arrival: Arrival,
    ) -> Result<Decision<Self>, BadRequest> {
        RequestView::arrived(req, client, arrival, Self::PATHS, Self::decide_view)
    }
}

/// The result of deciding a request.
pub struct Decision<T: Table> {
    /// The rule that matched; `None` when none did.
    pub route: Option<T::RouteId>,
    /// Where the request goes.
    pub target: Target<T::ClusterId>,
    /// The value of each named predicate for this request.
    pub predicates: T::Predicates,
}

impl<T: Table> Decision<T> {
    /// The status and body, when the target is a fixed answer (`respond(..)`).
    pub fn response(&self) -> Option<Response> {
        match self.target {
            Target::Respond(i) => T::RESPONSES.get(usize::from(i)).copied(),
            _ => None,
        }
    }

    /// The status and `Location` template, when the target is a redirect.
    pub fn redirect(&self) -> Option<RedirectSpec> {
        match self.target {
            Target::Redirect(i) => T::REDIRECTS.get(usize::from(i)).copied(),
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
