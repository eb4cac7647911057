//! The static description of a routing table, as `routes!` emits it.
//!
//! Everything here is plain `'static`, typed data: the macro has already checked it
//! (addresses parse, weights are non-zero, names exist) and emits finished values — socket
//! addresses, durations, indices — that the runtime never parses again. The runtime turns
//! these declarations into live clusters (`cluster::LiveCluster`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

/// One upstream cluster as declared in `routes!`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSpec {
    /// The cluster's name in the table (`cluster api { .. }` → `"api"`).
    pub name: &'static str,
    /// The declared backends, in declaration order.
    pub backends: &'static [BackendSpec],
    /// How a backend is picked among the healthy ones.
    pub balance: Balance,
    /// The active health check, if the cluster declares one.
    pub health: Option<HealthSpec>,
    /// `retries: N`: how many other backends a request may try after a failure — a connect
    /// failure, or (for an idempotent request whose body is still buffered) an error after
    /// sending. `None`, the default: a connect failure tries every other backend of the
    /// cluster once, and an error after sending is not retried (`LiveCluster::retries`).
    pub retries: Option<u32>,
    /// The index (in the table's cluster list) of the cluster used when none of this one's
    /// backends is healthy.
    pub backup: Option<usize>,
    /// Upstream TLS, if the cluster speaks it.
    pub tls: Option<TlsSpec>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Passive health: eject a backend after consecutive failures of real requests.
    /// A cluster that declares neither `passive` nor `health` gets
    /// [`PassiveSpec::DEFAULT`]; `passive: off` is `None`.
    pub passive: Option<PassiveSpec>,
    /// Local IP address to connect from.
    pub bind_to: Option<IpAddr>,
    /// TCP keep-alive idle time on upstream connections (probes every 10 s, 5 at most).
    pub tcp_keepalive: Option<Duration>,
    /// `alpn: h2` on a cluster without TLS: HTTP/2 with prior knowledge (h2c), as gRPC
    /// servers speak it in plaintext.
    pub h2c: bool,
    /// When names among `backends` are resolved again.
    pub resolve: Refresh,
}

/// Passive health: `passive: { failures: 5, cooldown: 10s }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveSpec {
    /// Consecutive failed requests that eject a backend.
    pub failures: u32,
    /// How long an ejected backend gets no traffic; after it, the active health check (if
    /// any) decides.
    pub cooldown: Duration,
    /// A 5xx answer counts as a failure too (a declared `passive`); otherwise only
    /// connect failures and errors while proxying do (the default).
    pub count_5xx: bool,
}

impl PassiveSpec {
    /// The default of a cluster without `health` or `passive`: a backend whose connection
    /// fails is set aside for 10 s — nginx's `max_fails=1 fail_timeout=10s`. 5xx answers
    /// do not count: the backend is up and answering.
    pub const DEFAULT: PassiveSpec = PassiveSpec {
        failures: 1,
        cooldown: Duration::from_secs(10),
        count_5xx: false,
    };
}

/// What the proxy does with a path a backend may read otherwise than routing does
/// (`ambiguous_paths: reject | decode | forward;` in the table; see
/// [`Ambiguity`](crate::request::Ambiguity) for the cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathPolicy {
    /// Answer 400 (the default).
    #[default]
    Reject,
    /// Read encoded slashes and backslashes (`%2F`, `%5C`, `\`) as separators, route on
    /// the normalized result and forward that path; refuse the other ambiguities with 400.
    Decode,
    /// Route on the path as today's normalization reads it and forward it unchanged: for
    /// backends known to read paths exactly as Switchyard does.
    Forward,
}

/// One declared backend: where it is (checked by the macro) and its weight (≥ 1).
#[derive(Debug, Clone, Copy)]
pub struct BackendSpec {
    /// An address, or a name resolved at start-up and again while the proxy runs.
    pub endpoint: Endpoint,
    /// Relative weight; the macro rejects 0. Every address a name resolves to gets it.
    pub weight: u32,
}

/// Where a backend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `"127.0.0.1:9001"` or `"[::1]:9001"`.
    Addr(SocketAddr),
    /// `"api.internal:8080"`: every address of the name's A records (AAAA when it has
    /// none), on `port`. Lowercase; RFC 1123 checked by the macro.
    Name {
        /// The host name.
        host: &'static str,
        /// The port every address gets.
        port: u16,
    },
    /// `srv("_http._tcp.api.internal")`: the targets of the name's SRV records of the most
    /// preferred priority whose targets resolve, with their ports and weights.
    Srv(&'static str),
}

/// When a cluster's names are resolved again (`resolve: { every: .. }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// When the records expire (`every: ttl`, the default), kept within
    /// [`Refresh::MIN_TTL`] and [`Refresh::MAX_TTL`].
    Ttl,
    /// At a fixed interval (`every: 30s`), whatever the records' TTL.
    Every(Duration),
}

impl Refresh {
    /// The shortest wait between resolutions under `every: ttl`: a TTL of 0 does not turn
    /// into a query loop.
    pub const MIN_TTL: Duration = Duration::from_secs(1);
    /// The longest wait under `every: ttl`: a day-long TTL still notices a change within a
    /// minute (nginx's `resolve` would wait the whole TTL).
    pub const MAX_TTL: Duration = Duration::from_secs(60);
}

/// The balancing algorithm of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Weighted round robin (`round_robin`, the default).
    RoundRobin,
    /// Weighted random (`random`).
    Random,
    /// Ketama consistent hashing on a request key (`consistent(KEY)`).
    Consistent(Key),
    /// Weighted FNV hash of a request key (`hash(KEY)`).
    Hash(Key),
}

impl Balance {
    /// The request key the algorithm hashes on, if it hashes on one.
    pub fn key(self) -> Option<Key> {
        match self {
            Balance::Consistent(k) | Balance::Hash(k) => Some(k),
            Balance::RoundRobin | Balance::Random => None,
        }
    }
}

/// A part of the request used as a hashing key.
///
/// When the key is absent from a request (no such cookie, header or query parameter),
/// the client's IP address is used instead, so one client keeps landing on one backend;
/// without a client IP (a Unix socket listener), the empty key is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `cookie("name")`
    Cookie(&'static str),
    /// `header("name")`, lowercase.
    Header(&'static str),
    /// `query("name")`
    Query(&'static str),
    /// `client_ip`
    ClientIp,
    /// `path`: the normalized path, without the query.
    Path,
    /// `host`: lowercase, port stripped.
    Host,
}

/// An active health check.
#[derive(Debug, Clone, Copy)]
pub struct HealthSpec {
    /// TCP connect or HTTP request.
    pub kind: HealthKind,
    /// Interval between two checks of a backend.
    pub every: Duration,
    /// Consecutive failures that take a healthy backend out.
    pub fall: u32,
    /// Consecutive successes that bring an unhealthy backend back.
    pub rise: u32,
    /// Timeout of one check (connect, and read for HTTP).
    pub timeout: Duration,
    /// `start: unhealthy`: a backend gets no traffic until its first successful check.
    pub start_unhealthy: bool,
}

/// What a health check does.
#[derive(Debug, Clone, Copy)]
pub enum HealthKind {
    /// A TCP connection (and TLS handshake, for a TLS cluster) must succeed.
    Tcp,
    /// `GET path` with `Host: host` must answer `expect`.
    Http {
        /// Request path, e.g. `/healthz`.
        path: &'static str,
        /// `Host` header; empty means the backend's address.
        host: &'static str,
        /// Expected status code.
        expect: u16,
    },
    /// The standard gRPC health check (`grpc.health.v1.Health/Check`) over HTTP/2 must
    /// answer `SERVING`.
    Grpc {
        /// The service asked about; empty for the server as a whole.
        service: &'static str,
    },
}

/// Upstream TLS settings of a cluster.
#[derive(Debug, Clone, Copy)]
pub struct TlsSpec {
    /// The SNI to send (and, with `verify`, the name the certificate must carry).
    pub sni: &'static str,
    /// Verify the upstream certificate chain.
    pub verify: bool,
    /// Verify that the certificate names `sni` (or `alternative_cn`).
    pub verify_hostname: bool,
    /// Another name accepted in the certificate.
    pub alternative_cn: Option<&'static str>,
    /// ALPN offered upstream.
    pub alpn: Alpn,
    /// PEM file of the CA that signs upstream certificates (else the system roots).
    pub ca: Option<&'static str>,
    /// PEM certificate chain for mTLS.
    pub client_cert: Option<&'static str>,
    /// PEM private key for mTLS.
    pub client_key: Option<&'static str>,
}

/// ALPN offered to a TLS upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// HTTP/1.1 only.
    H1,
    /// HTTP/2 only.
    H2,
    /// HTTP/2, falling back to HTTP/1.1.
    H2H1,
}

/// Upstream timeouts; `None` leaves Pingora's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Option<Duration>,
    /// TCP connect plus TLS handshake.
    pub total_connect: Option<Duration>,
    /// Each read from the upstream.
    pub read: Option<Duration>,
    /// Each write to the upstream.
    pub write: Option<Duration>,
    /// How long an idle pooled connection is kept.
    pub idle: Option<Duration>,
    /// How long an upgraded connection (WebSocket) may go without a message from the
    /// backend; replaces `read` once a request asks for an upgrade. `None`:
    /// [`Timeouts::WEBSOCKET_IDLE`].
    pub websocket: Option<Duration>,
}

impl Timeouts {
    /// No timeout set.
    pub const NONE: Timeouts = Timeouts {
        connect: None,
        total_connect: None,
        read: None,
        write: None,
        idle: None,
        websocket: None,
    };

    /// The idle timeout of an upgraded connection when the cluster sets none: one hour.
    /// A WebSocket is quiet for long stretches; the HTTP `read` timeout would cut it.
    pub const WEBSOCKET_IDLE: Duration = Duration::from_secs(3600);
}

/// A weighted split between clusters (`split { a: 5, b: 95 } by KEY`).
#[derive(Debug, Clone, Copy)]
pub struct SplitSpec {
    /// `(cluster index, weight)` pairs in declaration order.
    pub arms: &'static [(usize, u32)],
    /// Sum of the weights.
    pub total: u32,
    /// Sticky key: the same key always gets the same arm. `None` spreads requests by weight.
    pub by: Option<Key>,
}

/// The fixed answer of a `respond(status, body)` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The response body.
    pub body: &'static str,
}

/// What a rule sends a request to. `C` is the table's cluster enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<C: 'static> {
    /// A cluster.
    Cluster(C),
    /// A weighted split: the index of the split in [`Table::SPLITS`](crate::Table::SPLITS).
    Split(u16),
    /// A fixed answer: the index of its status and body in
    /// [`Table::RESPONSES`](crate::Table::RESPONSES). (An index, not the text, keeps a
    /// `Decision` small enough to be returned in registers.)
    Respond(u16),
    /// A redirect: the index of its status and `Location` template in
    /// [`Table::REDIRECTS`](crate::Table::REDIRECTS).
    Redirect(u16),
    /// No rule matched: answered with 404.
    NoRoute,
}

/// One rule as written, for `--routes` and `--explain`.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// The rule's name.
    pub name: &'static str,
    /// The matcher, as written.
    pub matcher: &'static str,
    /// The target, as written.
    pub target: &'static str,
    /// The rule names `TRACE` in a `method(..)` matcher: TRACE requests it matches are
    /// forwarded. Any other TRACE request gets 405 (it echoes the request, credentials
    /// included, to whoever can make a browser send it).
    pub trace: bool,
    /// The rule's actions (`=> api { strip_prefix: "/v1", set_header(..) }`); `None` for a
    /// rule without any, which then costs nothing for the feature.
    pub actions: Option<&'static Actions>,
    /// The matcher as data, for `--explain` to say which condition failed (the decision
    /// function never reads it).
    pub check: &'static Check,
}

/// A matcher as data: what `--explain` evaluates condition by condition to say why a rule
/// did not match. The same conditions as the generated decision function, which a test
/// proves agree on the rule they pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `_`
    Any,
    /// A `let` predicate: its index in [`Table::PREDICATES`](crate::Table::PREDICATES).
    Pred(usize),
    /// `!X`
    Not(&'static Check),
    /// `X && Y`
    And(&'static Check, &'static Check),
    /// `X || Y`
    Or(&'static Check, &'static Check),
    /// `host("a.example.com")`: lowercase, no port.
    Host(&'static str),
    /// `host("*.example.com")`, as the suffix `.example.com`.
    HostSuffix(&'static str),
    /// `path("/x")`, normalized.
    Path(&'static str),
    /// `path_prefix("/x")`, normalized, segment-aware.
    PathPrefix(&'static str),
    /// `path_regex("..")`.
    PathRegex(&'static str),
    /// `method(GET | HEAD)`.
    Method(&'static [&'static str]),
    /// `header("n")`, `query("n")`, `cookie("n")` with a test.
    Field(Field, &'static str, FieldTest),
    /// `header("n") != "v"`: another value, or absent.
    NotEqual(Field, &'static str, &'static str),
    /// `client_ip("10.0.0.0/8")`.
    ClientIp(Cidr),
    /// `tls`: the request came in on a TLS listener.
    Tls,
    /// `port(443)`: the local port of the listener it came in on.
    Port(u16),
}

/// The part of a request a field test reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A header (name lowercase); the test holds when any line passes.
    Header,
    /// A query parameter, compared percent-decoded.
    Query,
    /// A cookie.
    Cookie,
}

/// The test of a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldTest {
    /// Present.
    Present,
    /// `== "v"`
    Eq(&'static str),
    /// `.contains("v")`
    Contains(&'static str),
    /// `.starts_with("v")`
    StartsWith(&'static str),
}

/// A named predicate (`let is_beta = ..;`) as data, for `--explain`.
#[derive(Debug, Clone, Copy)]
pub struct PredicateSpec {
    /// Its name.
    pub name: &'static str,
    /// Its matcher.
    pub check: &'static Check,
}

/// What a rule does to the requests it matches and their answers, beside picking a target.
/// Checked by `routes!` (a prefix strip fits the rule's matcher, header names and values
/// are valid, a rewrite's groups exist); applied by the runtime's `actions` module.
#[derive(Debug, Clone, Copy)]
pub struct Actions {
    /// Applied to the request sent upstream, in order.
    pub request_headers: &'static [HeaderAction],
    /// Applied to the answer sent to the client (the backend's, or the rule's own), in
    /// order.
    pub response_headers: &'static [HeaderAction],
    /// How the path sent upstream is made from the normalized path routing used.
    pub path: Option<PathRewrite>,
    /// At most this many requests per window, per key: over it, 429.
    pub limit: Option<LimitSpec>,
    /// Largest request body accepted, in bytes: over it, 413.
    pub max_body: Option<u64>,
}

impl Actions {
    /// No action.
    pub const NONE: Actions = Actions {
        request_headers: &[],
        response_headers: &[],
        path: None,
        limit: None,
        max_body: None,
    };
}

/// One header action. Names are lowercase and valid, values valid header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderAction {
    /// `set_header("x-tenant", "a")`: replace every line of the header with this value.
    Set(&'static str, &'static str),
    /// `append_header("x-tag", "b")`: add a line, keeping the others.
    Append(&'static str, &'static str),
    /// `remove_header("cookie")`: drop every line of the header.
    Remove(&'static str),
}

/// The path sent upstream: the normalized path with `strip` removed (segment-aware; the
/// macro proves the rule's matcher guarantees it), then `add` put in front; or the
/// normalized path rewritten by a regex. The query is kept as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRewrite {
    /// `strip_prefix: "/v1"` and/or `add_prefix: "/internal"` (either may be empty).
    Prefix {
        /// Removed from the front (`""` for none).
        strip: &'static str,
        /// Put in front (`""` for none).
        add: &'static str,
    },
    /// `rewrite("^/users/([0-9]+)$", "/u/$1")`: the first match of `pattern` is replaced by
    /// `replacement` (`$1`, `${name}`); a path it does not match is forwarded as it is.
    Regex {
        /// The regex, checked by the macro.
        pattern: &'static str,
        /// What the match becomes; starts with `/` when the pattern is anchored at `^`.
        replacement: &'static str,
    },
}

/// `limit: 100/s by client_ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSpec {
    /// Requests allowed per window (≥ 1).
    pub requests: u32,
    /// The window: one second or one minute.
    pub per: Duration,
    /// What is counted apart; `None` counts every request of the rule together. A request
    /// without the key is counted by its client address, as hashing does.
    pub by: Option<Key>,
}

/// `redirect(308, "https://{host}{uri}")`: the status and the `Location` template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectSpec {
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// The template's pieces, in order.
    pub location: &'static [Piece],
}

/// A piece of a redirect template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Text as written (`{{` and `}}` already unescaped).
    Text(&'static str),
    /// `{host}`: the request's host, lowercase, without the port.
    Host,
    /// `{path}`: the path as the client sent it, without the query.
    Path,
    /// `{query}`: the query as the client sent it, without `?` (empty when none).
    Query,
    /// `{uri}`: the path and, when there is one, `?` and the query.
    Uri,
}

/// The forwarding headers added to a request sent upstream (table settings
/// `forwarded_headers`, `via` and `trusted_proxies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    /// Add `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`
    /// (`forwarded_headers: off;` turns them off).
    pub x_forwarded: bool,
    /// `via: "edge-1";` adds `Via: 1.1 edge-1`.
    pub via: Option<&'static str>,
}

impl Forwarding {
    /// The default: `X-Forwarded-*` on, no `Via`.
    pub const DEFAULT: Forwarding = Forwarding {
        x_forwarded: true,
        via: None,
    };
}

/// An address range: `10.0.0.0/8` as `(v6, network bits, prefix length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// An IPv6 range.
    pub v6: bool,
    /// The network address, as a number (IPv4 in the low 32 bits).
    pub net: u128,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// `ip` is in the range (an IPv4-mapped IPv6 address matches IPv4 ranges).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        crate::request::ip_in(Some(ip), self.v6, self.net, self.prefix)
    }

    /// `ip` is in one of `ranges` (a table's `trusted_proxies`).
    pub fn any_contains(ranges: &[Cidr], ip: std::net::IpAddr) -> bool {
        ranges.iter().any(|c| c.contains(ip))
    }
}

/// `a.b.c.d:port`, for the addresses `routes!` emits in `static` data.
pub const fn socket_v4(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
        port,
    ))
}

/// `[segments%scope_id]:port`, for the addresses `routes!` emits in `static` data.
pub const fn socket_v6(segments: [u16; 8], port: u16, scope_id: u32) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::new(
            segments[0],
            segments[1],
            segments[2],
            segments[3],
            segments[4],
            segments[5],
            segments[6],
            segments[7],
        ),
        port,
        0,
        scope_id,
    ))
}

/// An IPv4 address, for `routes!`'s `static` data.
pub const fn ip_v4(ip: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
}

/// An IPv6 address, for `routes!`'s `static` data.
pub const fn ip_v6(s: [u16; 8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn const_constructors_build_the_addresses_they_name() {
        assert_eq!(
            socket_v4([127, 0, 0, 1], 9001),
            "127.0.0.1:9001".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            socket_v6([0, 0, 0, 0, 0, 0, 0, 1], 443, 0),
            "[::1]:443".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(ip_v4([10, 0, 0, 2]), "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(
            ip_v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 5]),
            "2001:db8::5".parse::<IpAddr>().unwrap()
        );
    }
}
