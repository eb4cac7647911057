//! Live clusters: a `pingora_load_balancing::LoadBalancer` per declared cluster, its health
//! check running as a Pingora background service, and a peer template per backend.

use crate::error::Error;
use crate::peer;
use crate::spec::{Balance, ClusterSpec, HealthKind, HealthSpec};
use arc_swap::ArcSwap;
use pingora_core::services::background::background_service;
use pingora_core::services::ServiceWithDependents;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use pingora_ketama::{Bucket, Continuum};
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, Backends, LoadBalancer};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How many candidates a selection looks at before giving up. Ketama walks the ring, so
/// this bounds the walk; it is well above any real cluster size.
const MAX_ITERATIONS: usize = 256;

/// How long members that left stay known to the health registry after a swap.
const SWAP_OVERLAP: std::time::Duration = std::time::Duration::from_millis(250);

/// Most retries a request may make (the macro's bound on `retries`).
pub const MAX_RETRIES: u32 = 8;

/// How one request to a backend went, for passive health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered; `server_error` for a 5xx status.
    Answered {
        /// The status was 5xx.
        server_error: bool,
    },
    /// The connection failed, or the exchange broke before an answer.
    Failed,
}

/// One backend of a live cluster.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its address.
    pub addr: SocketAddr,
    /// Its weight.
    pub weight: u32,
}

/// A live cluster: its declaration, its members and the balancer that picks among them.
///
/// The members are one [`Membership`] snapshot: fixed for a cluster of addresses, swapped
/// atomically ([`LiveCluster::set_members`]) for a cluster whose backends are names that
/// discovery re-resolves. A request reads one snapshot from selection to its peer, so a
/// swap never hands it half of each.
pub struct LiveCluster {
    spec: &'static ClusterSpec,
    members: Members,
    health: Health,
    /// What the health registry's discovery reports: the members the active check and
    /// `ready` know of (during a swap, the old and the new ones together).
    known: Arc<Mutex<BTreeSet<Backend>>>,
    /// TLS material for peers of members that join later.
    files: peer::TlsFiles,
    /// Origin of the ejection deadlines.
    epoch: Instant,
    /// Round-robin position in the wheel (kept across swaps).
    next: AtomicUsize,
    /// The table's name, a metric label.
    proxy: &'static str,
    /// One swap at a time.
    swapping: tokio::sync::Mutex<()>,
}

/// The members of a cluster at one moment, and everything selection derives from them.
pub struct Membership {
    members: Vec<Member>,
    /// Peer templates, one per member, in `members` order: cloned per request, never
    /// re-parsed.
    peers: Vec<HttpPeer>,
    /// The Ketama ring of a `consistent` cluster.
    ring: Option<Continuum>,
    /// What the runtime tracks per member beside Pingora's active health, `members`
    /// order; shared with the next snapshot for members that stay.
    states: Box<[Arc<MemberState>]>,
    /// Member indices in smooth weighted round-robin order (nginx's interleaving): one
    /// pass over it gives each member as many slots as its weight.
    wheel: Box<[u16]>,
    /// The members as Pingora `Backend`s, to ask the health registry about them.
    backends: Vec<Backend>,
    /// Each member's address as text: metric labels, made once.
    labels: Box<[Arc<str>]>,
    /// Retries after a connect failure.
    connect_retries: u32,
}

/// A fixed membership, or one discovery swaps.
#[derive(Clone)]
enum Members {
    Fixed(Arc<Membership>),
    Dynamic(Arc<ArcSwap<Membership>>),
}

/// The membership a request reads: a reference for a fixed cluster (no atomic operation
/// at all), an `arc-swap` guard (no allocation, no lock) for a discovered one.
enum Current<'a> {
    Fixed(&'a Membership),
    Dynamic(arc_swap::Guard<Arc<Membership>>),
}

impl std::ops::Deref for Current<'_> {
    type Target = Membership;
    fn deref(&self) -> &Membership {
        match self {
            Current::Fixed(m) => m,
            Current::Dynamic(g) => g,
        }
    }
}

impl Members {
    fn load(&self) -> Current<'_> {
        match self {
            Members::Fixed(m) => Current::Fixed(m),
            Members::Dynamic(cell) => Current::Dynamic(cell.load()),
        }
    }
}

impl Membership {
    /// The snapshot of `members`; members also in `previous` keep their passive-health
    /// state and label.
    fn build(
        spec: &'static ClusterSpec,
        files: &peer::TlsFiles,
        members: Vec<Member>,
        previous: Option<&Membership>,
    ) -> Result<Membership, Error> {
        // Where each member stood in `previous`, if it was there: found once per member.
        let kept: Vec<Option<(&Membership, usize)>> = members
            .iter()
            .map(|m| previous.and_then(|p| p.index(m.addr).map(|i| (p, i))))
            .collect();
        let peers = members
            .iter()
            .map(|m| peer::build(spec, files, m.addr))
            .collect::<Result<Vec<_>, _>>()?;
        let states = kept
            .iter()
            .map(|k| k.map_or_else(Default::default, |(p, i)| p.states[i].clone()))
            .collect();
        let labels = members
            .iter()
            .zip(&kept)
            .map(|(m, k)| k.map_or_else(|| m.addr.to_string().into(), |(p, i)| p.labels[i].clone()))
            .collect();
        let ring = matches!(spec.balance, Balance::Consistent(_)).then(|| {
            let buckets: Vec<Bucket> = members
                .iter()
                .map(|m| Bucket::new(m.addr, m.weight))
                .collect();
            Continuum::new(&buckets)
        });
        // Defaults that lose nothing: with no `retries`, a connect failure (which never
        // reached the backend) tries every other member once.
        let connect_retries = spec
            .retries
            .unwrap_or(members.len().saturating_sub(1) as u32)
            .min(MAX_RETRIES);
        Ok(Membership {
            wheel: smooth_wheel(&members),
            backends: members.iter().map(|m| backend(m.addr)).collect(),
            peers,
            ring,
            states,
            labels,
            connect_retries,
            members,
        })
    }

    fn index(&self, addr: SocketAddr) -> Option<usize> {
        self.members.iter().position(|m| m.addr == addr)
    }
}

/// Per-backend state beside Pingora's active health.
#[derive(Debug, Default)]
struct MemberState {
    /// Consecutive failed requests (what counts: [`LiveCluster::report`]).
    failures: AtomicU32,
    /// Passive health: no traffic until this many ms after `epoch` (0: not ejected).
    ejected_until: AtomicU64,
    /// An active check has passed at least once (for `start: unhealthy`).
    checked_ok: AtomicBool,
}

/// Membership and active health live in a Pingora `LoadBalancer` (whose background
/// service runs the checks); selection is ours and allocates nothing, so the balancer's own
/// selector is never asked.
type Health = Arc<LoadBalancer<RoundRobin>>;

impl LiveCluster {
    /// Build cluster `spec` over `members` (the declared backends, an override, or what its
    /// names resolved to; possibly none yet). `dynamic`: discovery may swap the members
    /// later. Returns the cluster and, when it declares a health check, the background
    /// service that runs it; the caller must add that service to the server, or the check
    /// never runs.
    pub fn build(
        proxy: &'static str,
        spec: &'static ClusterSpec,
        members: Vec<Member>,
        dynamic: bool,
    ) -> Result<(LiveCluster, Option<Box<dyn ServiceWithDependents>>), Error> {
        let files = peer::load_tls(spec)?;
        let snapshot = Membership::build(spec, &files, members, None)?;
        let known = Arc::new(Mutex::new(
            snapshot.backends.iter().cloned().collect::<BTreeSet<_>>(),
        ));
        let template = snapshot.peers.first().cloned().unwrap_or_else(|| {
            // No member yet (a name that has not resolved): checks of later members use
            // the cluster's options all the same.
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            peer::build(spec, &files, any)
                .unwrap_or_else(|_| HttpPeer::new(any, false, String::new()))
        });
        let members = if dynamic {
            Members::Dynamic(Arc::new(ArcSwap::from_pointee(snapshot)))
        } else {
            Members::Fixed(Arc::new(snapshot))
        };
        let tracker = Tracker {
            members: members.clone(),
            proxy,
        };
        if crate::metrics::enabled() {
            let now = members.load();
            gauge_members(proxy, spec, now.labels.iter(), now.labels.len());
        }
        let (health, service) = balancer(spec, known.clone(), template, tracker)?;
        Ok((
            LiveCluster {
                spec,
                members,
                health,
                known,
                files,
                epoch: Instant::now(),
                next: AtomicUsize::new(0),
                proxy,
                swapping: tokio::sync::Mutex::new(()),
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

    /// Its members now.
    pub fn members(&self) -> Vec<Member> {
        self.members.load().members.clone()
    }

    /// Whether it has no member at all (its names have not resolved yet).
    pub fn is_empty(&self) -> bool {
        self.members.load().members.is_empty()
    }

    /// How many other backends a request may try after a failure: `(after a connect
    /// failure, after an error once sent)`.
    pub fn retries(&self) -> (u32, u32) {
        let send = self.spec.retries.unwrap_or(0).min(MAX_RETRIES);
        (self.members.load().connect_retries, send)
    }

    /// Replace the members with `members` (discovery found a new address set): build the
    /// new snapshot, let the health registry know the new members beside the old ones,
    /// publish the snapshot, then forget the members that left. Requests in flight to a
    /// member that left finish on the peer they hold; members that stay keep their active
    /// and passive health; a `consistent` ring moves only the keys of members that changed.
    /// Returns whether anything changed.
    pub async fn set_members(&self, members: Vec<Member>) -> Result<bool, Error> {
        let Members::Dynamic(cell) = &self.members else {
            return Err(Error::Startup {
                what: format!("cluster `{}` has fixed backends", self.spec.name),
            });
        };
        let _one = self.swapping.lock().await;
        let old = cell.load_full();
        if same_members(&old.members, &members) {
            return Ok(false);
        }
        let new = Membership::build(self.spec, &self.files, members, Some(&old))?;
        let gone: Vec<Arc<str>> = old
            .labels
            .iter()
            .filter(|l| !new.labels.contains(l))
            .cloned()
            .collect();
        if crate::metrics::enabled() {
            let joined = new.labels.iter().filter(|l| !old.labels.contains(l));
            gauge_members(self.proxy, self.spec, joined, new.labels.len());
            crate::metrics::metrics()
                .membership_changes
                .with_label_values(&[self.proxy, self.spec.name])
                .inc();
        }
        let both: BTreeSet<Backend> = old.backends.iter().chain(&new.backends).cloned().collect();
        let only_new: BTreeSet<Backend> = new.backends.iter().cloned().collect();
        self.tell_health(both).await?;
        if let Some(health) = self.spec.health.filter(|h| h.start_unhealthy) {
            // Members that join take no traffic before their first check passes: check
            // them now rather than at the next pass, up to `every` away, while the members
            // that leave still serve.
            let pass = self.health.backends().run_health_check(true);
            let _ = tokio::time::timeout(health.timeout * 2, pass).await;
        }
        cell.store(Arc::new(new));
        // A request that read the old snapshot just before the swap is still selecting
        // among its members for a few microseconds: they stay known to the health
        // registry (so `ready`) well past that.
        tokio::time::sleep(SWAP_OVERLAP).await;
        self.tell_health(only_new).await?;
        if crate::metrics::enabled() {
            for label in &gone {
                // A member that left has no health to report (and no label to keep).
                let _ = crate::metrics::metrics()
                    .backend_healthy
                    .remove_label_values(&[self.proxy, self.spec.name, label]);
            }
        }
        Ok(true)
    }

    /// Point the health registry's discovery at `backends` and have it read them.
    async fn tell_health(&self, backends: BTreeSet<Backend>) -> Result<(), Error> {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = backends;
        self.health.update().await.map_err(|e| Error::Startup {
            what: format!("cluster `{}`: {e}", self.spec.name),
        })
    }

    /// Pick a healthy backend for `key` that `skip` does not refuse (used by retries to
    /// avoid backends already tried), and hand its address and peer template to `take`
    /// (the proxy boxes a clone for Pingora, without moving the peer around first). `None`
    /// when no healthy backend is left.
    ///
    /// `obey_ejection: false` disregards passive health: the caller's last resort when
    /// passive health has set aside every backend otherwise usable (as Envoy's panic
    /// threshold does), since a guess beats a certain 503 and a failure is retried.
    pub fn select<R>(
        &self,
        key: &[u8],
        skip: impl Fn(&SocketAddr) -> bool,
        obey_ejection: bool,
        take: impl FnOnce(SocketAddr, &HttpPeer) -> R,
    ) -> Option<R> {
        let now = self.members.load();
        let m = &*now;
        let gated = (obey_ejection && self.spec.passive.is_some())
            || self.spec.health.is_some_and(|h| h.start_unhealthy);
        let usable = |i: usize| {
            self.health.backends().ready(&m.backends[i])
                && !skip(&m.members[i].addr)
                && (!gated || self.admits(&m.states[i], obey_ejection))
        };
        // Candidates in the balancer's order, bounded, then every member as a last resort;
        // the first usable one wins. Nothing here allocates.
        let pick = |candidates: &mut dyn Iterator<Item = usize>| {
            candidates
                .take(MAX_ITERATIONS)
                .chain(0..m.members.len())
                .find(|&i| usable(i))
        };
        let chosen = match self.spec.balance {
            Balance::Consistent(_) => {
                // The Ketama ring from the key's point onwards.
                let ring = m.ring.as_ref()?;
                let mut idx = ring.node_idx(key);
                let mut walk = std::iter::from_fn(|| {
                    let addr = ring.get_addr(&mut idx)?;
                    Some(m.index(*addr).unwrap_or(usize::MAX))
                })
                .filter(|&i| i != usize::MAX);
                pick(&mut walk)
            }
            balance => {
                // Draws from the wheel as the balancer says; when a pick is unusable the next
                // draw (the next slot, another random one, a rehash) spreads the share of a
                // member that is down evenly over the rest.
                let len = m.wheel.len().max(1);
                let hash = if matches!(balance, Balance::Hash(_)) {
                    fnv1a(key)
                } else {
                    0
                };
                let mut draws = (0..m.wheel.len() as u64).map(|attempt| {
                    let slot = match balance {
                        Balance::RoundRobin => self.next.fetch_add(1, Relaxed),
                        Balance::Random => random(),
                        _ if attempt == 0 => hash as usize,
                        _ => fnv1a(
                            &(hash ^ attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
                        ) as usize,
                    };
                    usize::from(m.wheel[slot % len])
                });
                pick(&mut draws)
            }
        };
        chosen.map(|i| take(m.members[i].addr, &m.peers[i]))
    }

    /// `start: unhealthy` and (when `obey_ejection`) passive health let a member with
    /// `state` take traffic.
    fn admits(&self, state: &MemberState, obey_ejection: bool) -> bool {
        if self.spec.health.is_some_and(|h| h.start_unhealthy) && !state.checked_ok.load(Relaxed) {
            return false;
        }
        let until = state.ejected_until.load(Relaxed);
        !obey_ejection || until == 0 || self.now_ms() >= until
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Record how a request to `addr` went, for passive health. Enough failures in a row
    /// (connect failures and broken exchanges; 5xx answers too where `passive` is declared)
    /// eject the backend for the cool-down. A backend that left the cluster meanwhile is
    /// not counted.
    pub fn report(&self, addr: SocketAddr, outcome: Outcome) {
        let Some(passive) = self.spec.passive else {
            return;
        };
        let ok = match outcome {
            Outcome::Answered { server_error } => !(server_error && passive.count_5xx),
            Outcome::Failed => false,
        };
        let now = self.members.load();
        let Some(i) = now.index(addr) else {
            return;
        };
        let state = &now.states[i];
        if ok {
            state.failures.store(0, Relaxed);
            return;
        }
        let failures = state.failures.fetch_add(1, Relaxed) + 1;
        if failures >= passive.failures {
            state.failures.store(0, Relaxed);
            let until = self.now_ms() + passive.cooldown.as_millis() as u64;
            let previous = state.ejected_until.swap(until, Relaxed);
            if previous < self.now_ms() {
                if crate::metrics::enabled() {
                    crate::metrics::metrics()
                        .ejections
                        .with_label_values(&[self.proxy, self.spec.name, &now.labels[i]])
                        .inc();
                }
                log::warn!(
                    "cluster `{}`: backend {addr} ejected for {:?} after {failures} failed requests in a row",
                    self.spec.name,
                    passive.cooldown
                );
            }
        }
    }

    /// The metric label of backend `addr` (its address as text), or `None` for one that
    /// is no longer a member.
    pub fn label(&self, addr: SocketAddr) -> Option<Arc<str>> {
        let now = self.members.load();
        now.index(addr).and_then(|i| now.labels.get(i)).cloned()
    }
}

/// The same members with the same weights, in any order.
fn same_members(a: &[Member], b: &[Member]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|m| b.iter().any(|n| n.addr == m.addr && n.weight == m.weight))
}

/// Active health starts healthy unless the cluster says otherwise.
/// Metrics of a cluster that now has `count` members, `joined` of them new.
fn gauge_members<'a>(
    proxy: &'static str,
    spec: &ClusterSpec,
    joined: impl Iterator<Item = &'a Arc<str>>,
    count: usize,
) {
    let start = i64::from(!spec.health.is_some_and(|h| h.start_unhealthy));
    let m = crate::metrics::metrics();
    m.cluster_backends
        .with_label_values(&[proxy, spec.name])
        .set(count as i64);
    for label in joined {
        m.backend_healthy
            .with_label_values(&[proxy, spec.name, label])
            .set(start);
    }
}

type Service = Option<Box<dyn ServiceWithDependents>>;

/// Where a health check reports its successes (for `start: unhealthy`) and its results
/// (metrics): the cluster's current members.
struct Tracker {
    members: Members,
    proxy: &'static str,
}

/// The health registry's discovery: the members the cluster tells it of.
struct Known(Arc<Mutex<BTreeSet<Backend>>>);

#[async_trait::async_trait]
impl ServiceDiscovery for Known {
    async fn discover(&self) -> pingora_core::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok((known, HashMap::new()))
    }
}

fn balancer(
    spec: &'static ClusterSpec,
    known: Arc<Mutex<BTreeSet<Backend>>>,
    template: HttpPeer,
    tracker: Tracker,
) -> Result<(Health, Service), Error> {
    let mut lb = LoadBalancer::<RoundRobin>::from_backends(Backends::new(Box::new(Known(known))));
    // Discovery answers at once; run it now so the cluster has members before the first
    // request, whether or not a background service ever runs.
    let discovered = now_or_never(lb.update()).ok_or_else(|| Error::Startup {
        what: format!("cluster `{}`: discovery did not complete", spec.name),
    })?;
    discovered.map_err(|e| Error::Startup {
        what: format!("cluster `{}`: {e}", spec.name),
    })?;
    let Some(health) = spec.health else {
        return Ok((Arc::new(lb), None));
    };
    lb.set_health_check(Box::new(Tracked {
        inner: health_check(spec, &health, Some(template)),
        cluster: spec.name,
        start_unhealthy: health.start_unhealthy,
        tracker,
    }));
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
            hc
        }
        HealthKind::Grpc { service } => {
            let template = template.unwrap_or_else(|| {
                HttpPeer::new(
                    std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                    spec.tls.is_some(),
                    spec.tls.map(|t| t.sni.to_owned()).unwrap_or_default(),
                )
            });
            let authority = spec.tls.map_or("localhost", |t| t.sni);
            Box::new(crate::grpc::HealthCheck::new(
                template,
                service,
                authority,
                health.timeout,
                health.fall,
                health.rise,
            ))
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
            Box::new(hc)
        }
    }
}

/// Wraps a cluster's health check: remembers which backends have passed (for
/// `start: unhealthy`) and names the cluster in Pingora's one log line per health change.
struct Tracked {
    inner: Box<dyn HealthCheck + Send + Sync>,
    cluster: &'static str,
    start_unhealthy: bool,
    tracker: Tracker,
}

impl Tracked {
    /// What the current membership knows of `target`: its state and metric label.
    fn member<R>(&self, target: &Backend, f: impl FnOnce(&MemberState, &str) -> R) -> Option<R> {
        let addr = target.addr.as_inet()?;
        let now = self.tracker.members.load();
        let i = now.index(*addr)?;
        Some(f(&now.states[i], &now.labels[i]))
    }
}

#[async_trait::async_trait]
impl HealthCheck for Tracked {
    async fn check(&self, target: &Backend) -> pingora_core::Result<()> {
        let result = self.inner.check(target).await;
        let proxy = self.tracker.proxy;
        let first = self.member(target, |state, label| {
            if crate::metrics::enabled() {
                let outcome = if result.is_ok() { "ok" } else { "failed" };
                crate::metrics::metrics()
                    .health_checks
                    .with_label_values(&[proxy, self.cluster, label, outcome])
                    .inc();
            }
            result.is_ok() && !state.checked_ok.swap(true, Relaxed)
        });
        if first == Some(true) && self.start_unhealthy {
            log::info!(
                "cluster `{}`: backend {} passed its first health check",
                self.cluster,
                target.addr
            );
        }
        result
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        if crate::metrics::enabled() {
            self.member(target, |_, label| {
                crate::metrics::metrics()
                    .backend_healthy
                    .with_label_values(&[self.tracker.proxy, self.cluster, label])
                    .set(i64::from(healthy));
            });
        }
        self.inner.health_status_change(target, healthy).await
    }

    fn backend_summary(&self, target: &Backend) -> String {
        format!("cluster `{}`: backend {}", self.cluster, target.addr)
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.inner.health_threshold(success)
    }
}

/// Member `addr` as the health registry knows it. Pingora keys health by address *and*
/// weight, so the weight stays 1: our wheel and ring do the weighting, and a member whose
/// weight changes (an SRV record's) keeps its health.
fn backend(addr: SocketAddr) -> Backend {
    Backend {
        addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(addr),
        weight: 1,
        ext: Default::default(),
    }
}

/// Smooth weighted round robin (as nginx does it): weights 5, 1, 1 give a a b a c a a
/// rather than a a a a a b c, so no backend gets a burst.
fn smooth_wheel(members: &[Member]) -> Box<[u16]> {
    let total: i64 = members.iter().map(|m| i64::from(m.weight)).sum();
    let mut current = vec![0i64; members.len()];
    let mut wheel = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, m) in current.iter_mut().zip(members) {
            *c += i64::from(m.weight);
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i)))
        else {
            break;
        };
        current[best] -= total;
        wheel.push(best as u16);
    }
    wheel.into_boxed_slice()
}

/// FNV-1a: stable across processes and replicas.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A per-thread xorshift generator for `random`, seeded once per thread.
fn random() -> usize {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::thread::current().id()) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x as usize
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_wheel_interleaves_by_weight() {
        let m = |w| Member {
            addr: "127.0.0.1:1".parse().unwrap(),
            weight: w,
        };
        assert_eq!(&*smooth_wheel(&[m(5), m(1), m(1)]), &[0, 0, 1, 0, 2, 0, 0]);
        let wheel = smooth_wheel(&[m(10), m(5), m(1)]);
        let count = |i| wheel.iter().filter(|&&x| x == i).count();
        assert_eq!((wheel.len(), count(0), count(1), count(2)), (16, 10, 5, 1));
    }
}
