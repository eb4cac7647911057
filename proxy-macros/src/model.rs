//! The checked table: what `check` produces and `lower`/`expand` consume. Everything here
//! is valid by construction: names are resolved to indices, addresses parsed, literals
//! normalized. Each declaration type is the compile-time twin of a runtime spec
//! (`ClusterModel` → `ClusterSpec`, `TargetModel` → `Target`, ..).

use proc_macro2::Span;
use std::net::{IpAddr, SocketAddr};
use syn::{Attribute, Ident};

pub struct Model {
    pub proxy: Ident,
    pub proxy_attrs: Vec<Attribute>,
    pub clusters: Vec<ClusterModel>,
    pub preds: Vec<PredModel>,
    pub routes: Vec<RouteModel>,
    pub splits: Vec<SplitModel>,
    /// `ambiguous_paths: ..;`
    pub paths: PathPolicyModel,
    /// The hooks type of `proxy Gateway(Auth);`.
    pub hooks: Option<syn::Path>,
    /// `trusted_proxies: [..];`
    pub trusted_proxies: Vec<CidrModel>,
    /// `forwarded_headers: on | off;` (default on).
    pub x_forwarded: bool,
    /// `via: "name";`
    pub via: Option<String>,
}

/// An address range, as the `client_ip(..)` matcher keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CidrModel {
    pub v6: bool,
    pub net: u128,
    pub prefix: u8,
}

/// `ambiguous_paths: reject | decode | forward;` (the runtime's `PathPolicy`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathPolicyModel {
    Reject,
    Decode,
    Forward,
}

/// A `cluster NAME { .. }` declaration.
pub struct ClusterModel {
    pub name: Ident,
    /// Its `GatewayCluster` variant.
    pub variant: Ident,
    pub attrs: Vec<Attribute>,
    pub backends: Vec<BackendModel>,
    pub balance: BalanceModel,
    pub health: Option<HealthModel>,
    /// `None`: the runtime's default (connect failures try every other backend once).
    pub retries: Option<u32>,
    /// Index of the backup cluster.
    pub backup: Option<usize>,
    pub tls: Option<TlsModel>,
    pub timeouts: TimeoutsModel,
    pub passive: Option<PassiveModel>,
    pub bind_to: Option<IpAddr>,
    pub tcp_keepalive_ms: Option<u64>,
    /// `alpn: h2` without `tls`: h2c upstream.
    pub h2c: bool,
    /// How often names among the backends are resolved again.
    pub resolve: ResolveModel,
}

/// `"127.0.0.1:9001" weight 5`, parsed once here and emitted as a finished `SocketAddr`;
/// or a name the runtime resolves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BackendModel {
    pub endpoint: EndpointModel,
    pub weight: u32,
}

/// Where a backend is: an address, a host name and port (A/AAAA), or an SRV name.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum EndpointModel {
    Addr(SocketAddr),
    /// Lowercase, checked against RFC 1123.
    Name {
        host: String,
        port: u16,
    },
    /// `_service._tcp.domain`, lowercase.
    Srv(String),
}

impl EndpointModel {
    /// A name to resolve.
    pub fn is_name(&self) -> bool {
        !matches!(self, EndpointModel::Addr(_))
    }
}

/// `resolve: { every: 30s }` (`Some(ms)`) or `{ every: ttl }` (`None`, the default).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ResolveModel {
    pub every_ms: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BalanceKind {
    RoundRobin,
    Random,
    Consistent,
    Hash,
}

/// `balance: consistent(cookie("sid"))`.
pub struct BalanceModel {
    pub kind: BalanceKind,
    /// The hashed key; `None` for the balancers that take none.
    pub key: Option<KeyModel>,
}

/// A hashing key of a balancer or a split.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum KeyModel {
    Cookie(String),
    /// Lowercase.
    Header(String),
    Query(String),
    ClientIp,
    Path,
    Host,
}

pub struct HealthModel {
    /// `None` for a TCP or gRPC check.
    pub http: Option<HttpProbeModel>,
    /// `health: grpc { service: "..", .. }`: the service asked about (`""`: the server).
    pub grpc: Option<String>,
    pub every_ms: u64,
    pub fall: u32,
    pub rise: u32,
    pub timeout_ms: u64,
    pub start_unhealthy: bool,
}

/// What an HTTP health check asks for and expects.
pub struct HttpProbeModel {
    pub path: String,
    pub host: String,
    pub expect: u16,
}

pub struct TlsModel {
    pub sni: String,
    pub verify: bool,
    pub verify_hostname: bool,
    pub alternative_cn: Option<String>,
    /// The runtime's `Alpn` variant: `H1`, `H2` or `H2H1`.
    pub alpn: &'static str,
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// Milliseconds, each optional.
#[derive(Default)]
pub struct TimeoutsModel {
    pub connect: Option<u64>,
    pub total_connect: Option<u64>,
    pub read: Option<u64>,
    pub write: Option<u64>,
    pub idle: Option<u64>,
    pub websocket: Option<u64>,
}

pub struct PassiveModel {
    pub failures: u32,
    pub cooldown_ms: u64,
    /// 5xx answers count as failures (a declared `passive`; the default counts only
    /// connect failures and broken exchanges).
    pub count_5xx: bool,
}

impl PassiveModel {
    /// What a cluster without `health` or `passive` gets: the runtime's
    /// `PassiveSpec::DEFAULT` (one failure, 10 s aside, 5xx answers not counted).
    pub const DEFAULT: PassiveModel = PassiveModel {
        failures: 1,
        cooldown_ms: 10_000,
        count_5xx: false,
    };
}

/// A `let NAME = MATCHER;` declaration.
pub struct PredModel {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    pub matcher: Matcher,
}

/// A `route NAME: MATCHER => TARGET;` rule.
pub struct RouteModel {
    pub name: Ident,
    /// Its `GatewayRoute` variant.
    pub variant: Ident,
    pub attrs: Vec<Attribute>,
    pub matcher: Matcher,
    pub target: TargetModel,
    /// The matcher and target as written (actions included), for `--routes` and the docs.
    pub matcher_text: String,
    pub target_text: String,
    /// The rule's actions; `None` when it has none.
    pub actions: Option<ActionsModel>,
}

/// A rule's checked actions (the runtime's `Actions`).
#[derive(Default, Debug, PartialEq, Eq)]
pub struct ActionsModel {
    pub request_headers: Vec<HeaderActionModel>,
    pub response_headers: Vec<HeaderActionModel>,
    pub path: Option<PathRewriteModel>,
    pub limit: Option<LimitModel>,
    pub max_body: Option<u64>,
}

/// A header action: the name is lowercase.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderActionModel {
    Set(String, String),
    Append(String, String),
    Remove(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum PathRewriteModel {
    Prefix {
        strip: String,
        add: String,
    },
    Regex {
        pattern: String,
        replacement: String,
    },
}

/// `limit: 100/s by client_ip`.
#[derive(Debug, PartialEq, Eq)]
pub struct LimitModel {
    pub requests: u32,
    pub per_secs: u64,
    pub by: Option<KeyModel>,
}

/// A piece of a redirect's `Location` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceModel {
    Text(String),
    Host,
    Path,
    Query,
    Uri,
}

/// Where a rule sends a request.
pub enum TargetModel {
    /// Index into `Model::clusters`.
    Cluster(usize),
    /// Index into `Model::splits`.
    Split(usize),
    Respond(u16, String),
    /// `redirect(STATUS, "template")`.
    Redirect(u16, Vec<PieceModel>),
}

/// `split { a: 5, b: 95 } by KEY`: `(cluster index, weight)` arms.
pub struct SplitModel {
    pub arms: Vec<(usize, u32)>,
    pub by: Option<KeyModel>,
}

/// A checked matcher expression, shaped as written (parentheses dropped): every name is
/// resolved and every atom validated. `lower` turns it into a `Cond`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Matcher {
    /// `_`
    Any,
    /// A `let` name: index into `Model::preds` (always an earlier one).
    Pred(usize),
    Not(Box<Matcher>),
    And(Box<Matcher>, Box<Matcher>),
    Or(Box<Matcher>, Box<Matcher>),
    Atom(Atom),
    /// `header("n") != "v"`: the field holds another value, or is absent.
    NotEqual(Field, String, String),
}

/// One test of the request.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Atom {
    /// Lowercase, no port, no trailing dot.
    HostExact(String),
    /// `".example.com"` for `*.example.com`.
    HostSuffix(String),
    /// Normalized.
    Path(String),
    /// Normalized.
    PathPrefix(String),
    PathRegex(String),
    /// Distinct methods, sorted.
    Method(Vec<String>),
    /// The field's name (lowercase for headers) and the test of its value.
    Field(Field, String, Test),
    ClientIp {
        v6: bool,
        net: u128,
        prefix: u8,
    },
    /// The request came in on a TLS listener.
    Tls,
    /// The local port of the listener it came in on.
    Port(u16),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Field {
    Header,
    Query,
    Cookie,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Test {
    Present,
    Eq(String),
    Contains(String),
    StartsWith(String),
}

/// The enum variant a route or cluster name becomes: `api_v2` → `ApiV2`; `None` when the
/// result is not a usable identifier (`self_` → the keyword `Self`).
pub fn variant_name(ident: &Ident) -> Option<Ident> {
    let text = variant_text(&ident.to_string());
    syn::parse_str::<Ident>(&text).ok()?;
    Some(Ident::new(&text, ident.span()))
}

/// `api_v2` → `ApiV2`; a name that would start with a digit (`_1`) gets an `R` in front.
pub fn variant_text(name: &str) -> String {
    let s = name.strip_prefix("r#").unwrap_or(name);
    let mut out = String::new();
    let mut up = true;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'R');
    }
    out
}

/// A placeholder name for a table without `proxy NAME;` (reported as an error).
pub fn unnamed_proxy() -> Ident {
    Ident::new("__SwitchyardProxy", Span::call_site())
}
