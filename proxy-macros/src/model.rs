//! The checked table: what `check` produces and `lower`/`expand` consume. Everything here
//! is valid by construction; names are resolved to indices.

use syn::{Attribute, Ident};

pub struct Model {
    pub proxy: Ident,
    pub proxy_attrs: Vec<Attribute>,
    pub clusters: Vec<Cluster>,
    pub preds: Vec<Pred>,
    pub routes: Vec<Route>,
    pub splits: Vec<Split>,
}

pub struct Cluster {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    pub backends: Vec<(String, u32)>,
    pub balance: Balance,
    pub health: Option<Health>,
    pub retries: u32,
    pub backup: Option<usize>,
    pub tls: Option<Tls>,
    pub timeouts: Timeouts,
    /// `(failures, cooldown ms)`
    pub passive: Option<(u32, u64)>,
    pub bind_to: Option<String>,
    pub tcp_keepalive_ms: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BalanceKind {
    RoundRobin,
    Random,
    Consistent,
    Hash,
}

pub struct Balance {
    pub kind: BalanceKind,
    pub key: Option<Key>,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Key {
    Cookie(String),
    Header(String),
    Query(String),
    ClientIp,
    Path,
    Host,
}

pub struct Health {
    pub http: Option<(String, String, u16)>,
    pub every_ms: u64,
    pub fall: u32,
    pub rise: u32,
    pub timeout_ms: u64,
    pub start_unhealthy: bool,
}

pub struct Tls {
    pub sni: String,
    pub verify: bool,
    pub verify_hostname: bool,
    pub alternative_cn: Option<String>,
    pub alpn: &'static str,
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

#[derive(Default)]
pub struct Timeouts {
    pub connect: Option<u64>,
    pub total_connect: Option<u64>,
    pub read: Option<u64>,
    pub write: Option<u64>,
    pub idle: Option<u64>,
}

pub struct Pred {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    pub cond: Cond,
}

pub struct Route {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    pub cond: Cond,
    pub target: Target,
    /// The matcher and target as written, for `--routes`.
    pub matcher_text: String,
    pub target_text: String,
}

pub enum Target {
    Cluster(usize),
    Split(usize),
    Respond(u16, String),
}

pub struct Split {
    pub arms: Vec<(usize, u32)>,
    pub by: Option<Key>,
}

/// A condition over a request.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Cond {
    True,
    Pred(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Atom(Atom),
}

/// One test of the request.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Atom {
    /// Lowercase, no port, no trailing dot.
    HostExact(String),
    /// `".example.com"` for `*.example.com`.
    HostSuffix(String),
    Path(String),
    PathPrefix(String),
    PathRegex(String),
    Method(Vec<String>),
    Field(Field, String, Test),
    ClientIp {
        v6: bool,
        net: u128,
        prefix: u8,
    },
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
