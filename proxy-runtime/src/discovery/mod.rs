//! Discovery: backends given by name, resolved off the request path.
//!
//! A cluster's backend list ([`Entry`]s: addresses, `HOST:PORT` names, SRV names) is
//! resolved once at start-up, before the proxy accepts requests, and then again by the
//! [`Discovery`] background service — every `resolve: { every: .. }`, or when the
//! records' TTL runs out. When the addresses change, the cluster's membership is swapped
//! atomically ([`LiveCluster::set_members`]). A name that fails keeps its last good
//! addresses (and says so in the log); a name that never resolved leaves its cluster
//! answering 503 until it does, retried from 1 s with doubling waits. Resolution uses
//! hickory-resolver with the system's configuration (`/etc/resolv.conf`, its search
//! domains, `/etc/hosts`) or a given server ([`Dns::Server`], `--dns`).

pub mod name;

use crate::cluster::{LiveCluster, Member};
use crate::error::Error;
use crate::spec::{BackendSpec, Endpoint, Refresh};
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long start-up waits for every name to resolve before it serves without them.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(5);
/// How long one DNS query may take (hickory's default is 5 s).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before a failed name is tried again; it doubles up to the refresh.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The heaviest weight of a member, as the macro allows; SRV weights (0–65535) are scaled
/// into 1..=1000.
const MAX_WEIGHT: u32 = 1000;
/// The most members a cluster takes from DNS; past it, the lowest addresses are kept (and
/// the log says so). It bounds the balancer wheel and the hash ring of a huge answer.
pub const MAX_MEMBERS: usize = 1024;

/// Where a backend is, as the table or `--backend` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An address: always a member.
    Addr(SocketAddr),
    /// `HOST:PORT`: the name's A records (AAAA when it has none), each on `port`.
    Name {
        /// The host name, lowercase.
        host: Box<str>,
        /// The port every address gets.
        port: u16,
    },
    /// `srv(NAME)`: the targets of the SRV records of the most preferred priority whose
    /// targets resolve.
    Srv(Box<str>),
}

/// One backend entry of a cluster and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it is.
    pub source: Source,
    /// Relative weight (≥ 1); every address of a name gets it. SRV entries take their
    /// records' weights instead.
    pub weight: u32,
}

impl Entry {
    /// The entry a table declares.
    pub fn declared(b: &BackendSpec) -> Entry {
        let source = match b.endpoint {
            Endpoint::Addr(addr) => Source::Addr(addr),
            Endpoint::Name { host, port } => Source::Name {
                host: host.into(),
                port,
            },
            Endpoint::Srv(name) => Source::Srv(name.into()),
        };
        Entry {
            source,
            weight: b.weight,
        }
    }

    /// `IP:PORT`, `HOST:PORT` (either with `@WEIGHT`) or `srv(NAME)`; `what` names the
    /// source in errors (`--backend api`).
    pub fn parse(what: &str, item: &str) -> Result<Entry, Error> {
        let item = item.trim();
        let refuse = |why: String| Error::BadArgument(format!("{what}: `{item}`: {why}"));
        let (target, weight) = match item.rsplit_once('@') {
            Some((target, w)) => match w.trim().parse::<u32>() {
                Ok(w @ 1..=MAX_WEIGHT) => (target.trim(), Some(w)),
                _ => {
                    return Err(refuse(format!(
                        "a weight is a whole number from 1 to {MAX_WEIGHT}"
                    )))
                }
            },
            None => (item, None),
        };
        if let Some(name) = target
            .strip_prefix("srv(")
            .and_then(|r| r.strip_suffix(')'))
        {
            if weight.is_some() {
                return Err(refuse(
                    "an SRV name takes its weights from its records; remove `@WEIGHT`".into(),
                ));
            }
            let name = name.trim().trim_matches('"').to_ascii_lowercase();
            if !name::srv_name_ok(name.as_bytes()) {
                return Err(refuse(
                    "expected an SRV name `_service._tcp.domain`, e.g. srv(_http._tcp.api.internal)".into(),
                ));
            }
            return Ok(Entry {
                source: Source::Srv(name.into()),
                weight: 1,
            });
        }
        let weight = weight.unwrap_or(1);
        let source = match target.parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Source::Addr(addr),
            Ok(_) => return Err(refuse("the port must be from 1 to 65535".into())),
            Err(_) => {
                let Some((host, port)) = target.rsplit_once(':') else {
                    return Err(refuse(
                        "no port; write IP:PORT or HOST:PORT, e.g. api.internal:8080".into(),
                    ));
                };
                let Some(port) = port.parse::<u16>().ok().filter(|&p| p != 0) else {
                    return Err(refuse("the port must be from 1 to 65535".into()));
                };
                if !name::host_name_ok(host.as_bytes()) {
                    return Err(refuse(format!(
                        "`{host}` is neither an IP address ([..] around IPv6) nor a host name \
                         (labels of letters, digits and `-`, separated by `.`)"
                    )));
                }
                Source::Name {
                    host: host.to_ascii_lowercase().into(),
                    port,
                }
            }
        };
        Ok(Entry { source, weight })
    }

    /// Whether it is resolved by DNS.
    pub fn is_name(&self) -> bool {
        !matches!(self.source, Source::Addr(_))
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Addr(addr) => write!(f, "{addr}")?,
            Source::Name { host, port } => write!(f, "{host}:{port}")?,
            Source::Srv(name) => return write!(f, "srv({name})"),
        }
        if self.weight != 1 {
            write!(f, " weight {}", self.weight)?;
        }
        Ok(())
    }
}

/// The members entries give without DNS: their addresses.
pub fn literal_members(entries: &[Entry]) -> Vec<Member> {
    let mut out = Vec::new();
    for e in entries {
        if let Source::Addr(addr) = e.source {
            add(&mut out, addr, e.weight);
        }
    }
    out
}

/// Add `addr` to `members` unless it is there already (two names may share an address:
/// the first entry's weight holds).
fn add(members: &mut Vec<Member>, addr: SocketAddr, weight: u32) {
    if !members.iter().any(|m| m.addr == addr) {
        members.push(Member { addr, weight });
    }
}

/// Which DNS server names are resolved with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dns {
    /// The system's configuration: `/etc/resolv.conf` (servers, search domains, `ndots`)
    /// and `/etc/hosts`.
    #[default]
    System,
    /// One server, over UDP and TCP (`--dns 127.0.0.1:5353`): a sidecar resolver, or a
    /// test's.
    Server(SocketAddr),
}

/// A resolver for `dns`, on the current Tokio runtime. It keeps no cache: the refresh
/// schedule decides when a name is asked again.
pub fn resolver(dns: Dns) -> Result<TokioResolver, Error> {
    let failed = |e: &dyn fmt::Display| Error::Startup {
        what: format!("DNS resolver: {e}"),
    };
    let mut builder = match dns {
        Dns::System => TokioResolver::builder_tokio().map_err(|e| failed(&e))?,
        Dns::Server(addr) => {
            let connection = |mut c: ConnectionConfig| {
                c.port = addr.port();
                c
            };
            let server = NameServerConfig::new(
                addr.ip(),
                true,
                vec![
                    connection(ConnectionConfig::udp()),
                    connection(ConnectionConfig::tcp()),
                ],
            );
            let config = ResolverConfig::from_parts(None, Vec::new(), vec![server]);
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = QUERY_TIMEOUT;
    opts.attempts = 2;
    // IPv4 when the name has A records, IPv6 otherwise (Envoy's V4_PREFERRED).
    opts.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
    builder.build().map_err(|e| failed(&e))
}

/// A cluster's backend entries and what each name last resolved to.
pub struct Names {
    proxy: &'static str,
    cluster: &'static str,
    refresh: Refresh,
    entries: Vec<Entry>,
    /// Per entry: the last good answer of a name (`None` for addresses, and for names that
    /// never resolved).
    last: Vec<Option<Vec<Member>>>,
    /// The wait before the next retry of a failing name.
    retry: Duration,
}

/// What one resolution of a cluster's names gave.
#[derive(Debug, Clone)]
pub struct Round {
    /// The members: addresses, fresh answers, and the last answers of names that failed.
    pub members: Vec<Member>,
    /// When to resolve again.
    pub wait: Duration,
}

impl Names {
    /// The names of cluster `cluster` of table `proxy` among `entries`.
    pub fn new(
        proxy: &'static str,
        cluster: &'static str,
        refresh: Refresh,
        entries: Vec<Entry>,
    ) -> Names {
        Names {
            proxy,
            cluster,
            refresh,
            last: vec![None; entries.len()],
            entries,
            retry: RETRY_FIRST,
        }
    }

    /// Resolve every name once. A name that fails keeps its last answer; the wait is then
    /// the retry backoff rather than the refresh.
    pub async fn resolve(&mut self, resolver: &TokioResolver) -> Round {
        let mut expires: Option<Instant> = None;
        let mut failed = false;
        // With no address of its own, the cluster is empty until some name resolves.
        let no_addresses = self.entries.iter().all(Entry::is_name);
        for (i, entry) in self.entries.iter().enumerate() {
            if !entry.is_name() {
                continue;
            }
            let result = lookup(resolver, entry).await;
            if crate::metrics::enabled() {
                let outcome = if result.is_ok() { "ok" } else { "failed" };
                crate::metrics::metrics()
                    .dns_resolutions
                    .with_label_values(&[self.proxy, self.cluster, &entry.to_string(), outcome])
                    .inc();
            }
            match result {
                Ok((found, valid_until)) => {
                    expires = Some(expires.map_or(valid_until, |e| e.min(valid_until)));
                    self.last[i] = Some(found);
                }
                Err(why) => {
                    failed = true;
                    match &self.last[i] {
                        Some(kept) => log::warn!(
                            "cluster `{}`: {entry} did not resolve ({why}); keeping its last {} address(es)",
                            self.cluster,
                            kept.len()
                        ),
                        None => log::warn!(
                            "cluster `{}`: {entry} did not resolve ({why}); it has no address yet{}",
                            self.cluster,
                            if no_addresses && self.last.iter().all(Option::is_none) {
                                ": the cluster answers 503 until a name resolves"
                            } else {
                                ""
                            }
                        ),
                    }
                }
            }
        }
        let refresh = match self.refresh {
            Refresh::Every(every) => every,
            Refresh::Ttl => expires
                .map_or(Refresh::MAX_TTL, |e| {
                    e.saturating_duration_since(Instant::now())
                })
                .clamp(Refresh::MIN_TTL, Refresh::MAX_TTL),
        };
        let wait = if failed {
            let wait = self.retry.min(refresh);
            self.retry = (self.retry * 2).min(refresh.max(RETRY_FIRST));
            wait
        } else {
            self.retry = RETRY_FIRST;
            refresh
        };
        Round {
            members: self.known(),
            wait,
        }
    }

    /// What the entries give now without asking: their addresses and the names' last
    /// answers (a round's result, or what a round cut short at start-up leaves).
    fn known(&self) -> Vec<Member> {
        let mut members = Vec::new();
        for (entry, last) in self.entries.iter().zip(&self.last) {
            if let Source::Addr(addr) = entry.source {
                add(&mut members, addr, entry.weight);
            }
            for m in last.iter().flatten() {
                add(&mut members, m.addr, m.weight);
            }
        }
        self.bounded(members)
    }

    /// `members` in address order (so every replica, and every refresh, lists a set the
    /// same way: `hash` balancing and the round-robin wheel do not depend on the order DNS
    /// answered in), at most [`MAX_MEMBERS`] of them.
    fn bounded(&self, mut members: Vec<Member>) -> Vec<Member> {
        members.sort_by_key(|m| m.addr);
        if members.len() > MAX_MEMBERS {
            log::warn!(
                "cluster `{}`: its names gave {} addresses; keeping the lowest {MAX_MEMBERS}",
                self.cluster,
                members.len()
            );
            members.truncate(MAX_MEMBERS);
        }
        members
    }
}

/// The members one name entry resolves to, and until when the answer holds.
async fn lookup(resolver: &TokioResolver, entry: &Entry) -> Result<(Vec<Member>, Instant), String> {
    let mut out = Vec::new();
    match &entry.source {
        Source::Addr(addr) => Ok((
            vec![Member {
                addr: *addr,
                weight: entry.weight,
            }],
            Instant::now(),
        )),
        Source::Name { host, port } => {
            let found = resolver
                .lookup_ip(&**host)
                .await
                .map_err(|e| e.to_string())?;
            for ip in found.iter() {
                add(&mut out, SocketAddr::new(ip, *port), entry.weight);
            }
            if out.is_empty() {
                return Err("no address records".to_owned());
            }
            Ok((out, found.valid_until()))
        }
        Source::Srv(name) => {
            let found = resolver
                .srv_lookup(&**name)
                .await
                .map_err(|e| e.to_string())?;
            // Target `.` means "no such service here" (RFC 2782); port 0 reaches nothing.
            let records: Vec<_> = found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) if !srv.target.is_root() && srv.port != 0 => Some(srv),
                    _ => None,
                })
                .collect();
            if records.is_empty() {
                return Err("no usable SRV records".to_owned());
            }
            let mut priorities: Vec<u16> = records.iter().map(|s| s.priority).collect();
            priorities.sort_unstable();
            priorities.dedup();
            let mut valid_until = found.valid_until();
            let mut failures = Vec::new();
            // The most preferred priority whose targets resolve (RFC 2782: lower first).
            for priority in priorities {
                let chosen: Vec<_> = records.iter().filter(|s| s.priority == priority).collect();
                let heaviest = chosen
                    .iter()
                    .map(|s| u32::from(s.weight))
                    .max()
                    .unwrap_or(1);
                for srv in chosen {
                    let weight = srv_weight(srv.weight, heaviest);
                    // Servers usually send the targets' addresses along; ask when they did not.
                    let mut ips: Vec<IpAddr> = found
                        .additionals()
                        .iter()
                        .filter(|r| r.name == srv.target)
                        .filter_map(|r| match &r.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                            _ => None,
                        })
                        .collect();
                    if ips.is_empty() {
                        match resolver.lookup_ip(srv.target.clone()).await {
                            Ok(answer) => {
                                valid_until = valid_until.min(answer.valid_until());
                                ips.extend(answer.iter());
                            }
                            Err(e) => failures.push(format!("{}: {e}", srv.target)),
                        }
                    }
                    for ip in ips {
                        add(&mut out, SocketAddr::new(ip, srv.port), weight);
                    }
                }
                if !out.is_empty() {
                    return Ok((out, valid_until));
                }
            }
            Err(format!("no SRV target resolved ({})", failures.join("; ")))
        }
    }
}

/// An SRV weight (0–65535) as a member weight (1–1000), in proportion to the heaviest
/// record's: weights 60/30/10 stay 60/30/10; 0 (RFC 2782's "rarely") becomes 1.
fn srv_weight(weight: u16, heaviest: u32) -> u32 {
    let w = u32::from(weight);
    if heaviest <= MAX_WEIGHT {
        w.max(1)
    } else {
        (w * MAX_WEIGHT / heaviest).max(1)
    }
}

/// Resolve `names` once, before the proxy serves: on a thread and runtime of their own
/// (the caller may be inside a runtime), every cluster at once, for at most
/// [`STARTUP_LIMIT`]. A cluster whose names did not answer in time starts with its
/// addresses alone, and discovery keeps trying. Returns each cluster's names (with what
/// they resolved to) and its first round, in order.
pub fn resolve_at_start(dns: Dns, names: Vec<Names>) -> Result<Vec<(Names, Round)>, Error> {
    let failed = |e: &dyn fmt::Display| Error::Startup {
        what: format!("DNS resolution at start-up: {e}"),
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| failed(&e))?;
            runtime.block_on(async {
                let resolver = match resolver(dns) {
                    Ok(r) => Arc::new(r),
                    Err(e) => {
                        // Serve the addresses; discovery keeps trying to build a resolver.
                        log::error!("{e}; serving without the backends given by name for now");
                        return Ok(names
                            .into_iter()
                            .map(|n| {
                                let members = n.known();
                                (n, Round { members, wait: RETRY_FIRST })
                            })
                            .collect());
                    }
                };
                let mut tasks = tokio::task::JoinSet::new();
                for (i, mut n) in names.into_iter().enumerate() {
                    let resolver = resolver.clone();
                    tasks.spawn(async move {
                        let round =
                            tokio::time::timeout(STARTUP_LIMIT, n.resolve(&resolver)).await;
                        let round = round.unwrap_or_else(|_| {
                            log::warn!(
                                "cluster `{}`: its names did not resolve within {STARTUP_LIMIT:?} of start-up; serving without them until they do",
                                n.cluster
                            );
                            Round {
                                members: n.known(),
                                wait: RETRY_FIRST,
                            }
                        });
                        (i, n, round)
                    });
                }
                let mut done: Vec<(usize, Names, Round)> = tasks
                    .join_all()
                    .await
                    .into_iter()
                    .collect();
                done.sort_by_key(|(i, _, _)| *i);
                Ok(done.into_iter().map(|(_, n, r)| (n, r)).collect())
            })
        })
        .join()
        .unwrap_or_else(|_| Err(failed(&"the resolving thread panicked")))
    })
}

/// The background service that re-resolves the names of clusters and swaps their
/// members when the addresses change.
pub struct Discovery {
    dns: Dns,
    clusters: Arc<[LiveCluster]>,
    /// Per cluster with names: its index, its names, and the wait before the first round.
    work: Mutex<Vec<(usize, Names, Duration)>>,
}

impl Discovery {
    /// Discovery for the clusters of `clusters` that `work` lists.
    pub fn new(
        dns: Dns,
        clusters: Arc<[LiveCluster]>,
        work: Vec<(usize, Names, Duration)>,
    ) -> Discovery {
        Discovery {
            dns,
            clusters,
            work: Mutex::new(work),
        }
    }
}

#[async_trait::async_trait]
impl BackgroundService for Discovery {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let work = std::mem::take(&mut *self.work.lock().unwrap_or_else(|p| p.into_inner()));
        // The resolver's configuration can be missing for a moment (a container's
        // /etc/resolv.conf being written): try again rather than give up discovery.
        let mut retry = RETRY_FIRST;
        let resolver = loop {
            match resolver(self.dns) {
                Ok(r) => break Arc::new(r),
                Err(e) => {
                    log::error!("{e}; backends given by name keep their addresses, trying again in {retry:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = shutdown.changed() => return,
                    }
                    retry = (retry * 2).min(Refresh::MAX_TTL);
                }
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (index, mut names, first) in work {
            let (clusters, resolver) = (self.clusters.clone(), resolver.clone());
            tasks.spawn(async move {
                let Some(cluster) = clusters.get(index) else {
                    return;
                };
                let mut next = tokio::time::Instant::now() + first;
                loop {
                    tokio::time::sleep_until(next).await;
                    let round = names.resolve(&resolver).await;
                    // The refresh counts from when this round asked, not from when its
                    // swap (which waits out the overlap) finished.
                    next = tokio::time::Instant::now() + round.wait;
                    apply(cluster, round.members).await;
                }
            });
        }
        // Until shutdown (or a closed watch); dropping the set stops the tasks.
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        tasks.abort_all();
    }
}

/// Swap `cluster`'s members for `members`, and log what changed.
async fn apply(cluster: &LiveCluster, members: Vec<Member>) {
    let before = cluster.members();
    match cluster.set_members(members).await {
        Ok(true) => {
            let list = |ms: &[Member]| {
                if ms.is_empty() {
                    return "none".to_owned();
                }
                ms.iter()
                    .map(|m| m.addr.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            log::info!(
                "cluster `{}`: backends now {} (were {})",
                cluster.name(),
                list(&cluster.members()),
                list(&before)
            );
        }
        Ok(false) => {}
        Err(e) => log::error!("cluster `{}`: {e}", cluster.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries() {
        let e = |s| Entry::parse("--backend api", s);
        assert_eq!(
            e("10.0.0.1:80@3").unwrap(),
            Entry {
                source: Source::Addr("10.0.0.1:80".parse().unwrap()),
                weight: 3
            }
        );
        assert_eq!(
            e("Api.Internal:8080").unwrap(),
            Entry {
                source: Source::Name {
                    host: "api.internal".into(),
                    port: 8080
                },
                weight: 1
            }
        );
        assert_eq!(
            e("srv(_http._tcp.api.internal)").unwrap().source,
            Source::Srv("_http._tcp.api.internal".into())
        );
        for bad in [
            "api.internal",
            "api.internal:0",
            "api.internal:99999",
            "api_x:80",
            "10.0.0.256:80",
            "srv(api.internal)",
            "srv(_http._udp.x)",
            "a.b:80@0",
            "a.b:80@1001",
            "10.0.0.1:0",
            "srv(_http._tcp.x)@3",
        ] {
            assert!(e(bad).is_err(), "{bad}");
        }
        assert_eq!(e("a.b:80@2").unwrap().to_string(), "a.b:80 weight 2");
        // The message says what is wrong with a name, not only that it is no address.
        let why = e("api_x:80").unwrap_err().to_string();
        assert!(why.contains("`api_x` is neither an IP address"), "{why}");
        let why = e("api.internal").unwrap_err().to_string();
        assert!(why.contains("no port"), "{why}");
    }

    #[test]
    fn srv_weights_scale_into_range() {
        assert_eq!(srv_weight(0, 10), 1);
        assert_eq!(srv_weight(60, 60), 60);
        assert_eq!(srv_weight(65535, 65535), 1000);
        assert_eq!(srv_weight(6553, 65535), 99);
        assert_eq!(srv_weight(1, 65535), 1);
    }
}
