//! Prometheus metrics: what the proxy did, by route, cluster, backend and status class,
//! recorded with the `prometheus` crate and served by a Pingora HTTP service on the address
//! `--metrics` names (or `Builder::metrics`).
//!
//! Nothing is recorded unless a metrics address is configured: a proxy nobody scrapes
//! pays nothing. Labels are the table's static names and each backend's address, rendered
//! once when the cluster is built, so recording a request allocates nothing once a series
//! exists (the `prometheus` crate hashes the label values and finds the series under a
//! read lock).

use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, TextEncoder,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

/// Whether any proxy of this process serves metrics.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Record metrics from now on (a metrics address was configured).
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Metrics are recorded.
#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric family, registered once per process in Prometheus's default registry.
/// The `proxy` label is the table's name (`Gateway`), so several tables in one process
/// keep their series apart.
pub struct Metrics {
    /// `switchyard_requests_total{proxy, route, cluster, backend, status}`: requests
    /// answered, by status class (`2xx` .. `5xx`; `0xx` when no answer was written).
    pub requests: IntCounterVec,
    /// `switchyard_request_duration_seconds{proxy, route}`: from the request head to the
    /// end of the answer.
    pub request_seconds: HistogramVec,
    /// `switchyard_upstream_duration_seconds{proxy, cluster, backend}`: from choosing the
    /// backend to its answer's head.
    pub upstream_seconds: HistogramVec,
    /// `switchyard_requests_in_flight{proxy}`: requests being served now.
    pub in_flight: IntGaugeVec,
    /// `switchyard_downstream_connections{proxy}`: client connections open now.
    pub connections: IntGaugeVec,
    /// `switchyard_retries_total{proxy, cluster}`: attempts beyond a request's first.
    pub retries: IntCounterVec,
    /// `switchyard_ejections_total{proxy, cluster, backend}`: backends set aside by passive
    /// health.
    pub ejections: IntCounterVec,
    /// `switchyard_health_checks_total{proxy, cluster, backend, result}`: active checks,
    /// `result` `ok` or `failed`.
    pub health_checks: IntCounterVec,
    /// `switchyard_backend_healthy{proxy, cluster, backend}`: 1 while active health lets
    /// the backend take traffic, else 0.
    pub backend_healthy: IntGaugeVec,
    /// `switchyard_rate_limited_total{proxy, route}`: requests refused with 429 by a rule's
    /// `limit`.
    pub rate_limited: IntCounterVec,
    /// `switchyard_access_log_dropped_total{proxy}`: access-log lines dropped because the
    /// writer fell behind.
    pub access_log_dropped: IntCounterVec,
    /// `switchyard_dns_resolutions_total{proxy, cluster, name, result}`: lookups of a
    /// backend name, `result` `ok` or `failed`.
    pub dns_resolutions: IntCounterVec,
    /// `switchyard_cluster_backends{proxy, cluster}`: the members a cluster has now (what
    /// its names resolved to, and its addresses).
    pub cluster_backends: IntGaugeVec,
    /// `switchyard_membership_changes_total{proxy, cluster}`: address-set swaps.
    pub membership_changes: IntCounterVec,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    let _ = prometheus::register(Box::new(c.clone()));
    c
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    let _ = prometheus::register(Box::new(g.clone()));
    g
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(h.clone()));
    h
}

/// The process's metric families.
pub fn metrics() -> &'static Metrics {
    // Names and labels are constants: `new` cannot fail on them, and the `expect`s above
    // run once, at the first use, never on request input.
    static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
        requests: counter(
            "switchyard_requests_total",
            "Requests answered, by route, cluster, backend and status class.",
            &["proxy", "route", "cluster", "backend", "status"],
        ),
        request_seconds: histogram(
            "switchyard_request_duration_seconds",
            "Time from the request head to the end of the answer.",
            &["proxy", "route"],
        ),
        upstream_seconds: histogram(
            "switchyard_upstream_duration_seconds",
            "Time from choosing a backend to the head of its answer.",
            &["proxy", "cluster", "backend"],
        ),
        in_flight: gauge(
            "switchyard_requests_in_flight",
            "Requests being served.",
            &["proxy"],
        ),
        connections: gauge(
            "switchyard_downstream_connections",
            "Client connections open.",
            &["proxy"],
        ),
        retries: counter(
            "switchyard_retries_total",
            "Attempts beyond a request's first.",
            &["proxy", "cluster"],
        ),
        ejections: counter(
            "switchyard_ejections_total",
            "Backends set aside by passive health.",
            &["proxy", "cluster", "backend"],
        ),
        health_checks: counter(
            "switchyard_health_checks_total",
            "Active health checks, by result.",
            &["proxy", "cluster", "backend", "result"],
        ),
        backend_healthy: gauge(
            "switchyard_backend_healthy",
            "1 while active health lets the backend take traffic.",
            &["proxy", "cluster", "backend"],
        ),
        rate_limited: counter(
            "switchyard_rate_limited_total",
            "Requests refused with 429 by a rule's rate limit.",
            &["proxy", "route"],
        ),
        access_log_dropped: counter(
            "switchyard_access_log_dropped_total",
            "Access-log lines dropped because the writer fell behind.",
            &["proxy"],
        ),
        dns_resolutions: counter(
            "switchyard_dns_resolutions_total",
            "Lookups of backend names, by result.",
            &["proxy", "cluster", "name", "result"],
        ),
        cluster_backends: gauge(
            "switchyard_cluster_backends",
            "The members a cluster has now.",
            &["proxy", "cluster"],
        ),
        membership_changes: counter(
            "switchyard_membership_changes_total",
            "Times a cluster's address set was swapped after resolution.",
            &["proxy", "cluster"],
        ),
    });
    &METRICS
}

/// `2xx` for 200..=299, and so on; `0xx` when nothing was answered.
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "0xx",
    }
}

/// The metrics endpoint: every registered family in Prometheus's text format, at any path.
pub struct Exporter;

#[async_trait::async_trait]
impl ServeHttp for Exporter {
    async fn response(&self, _session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let encoder = TextEncoder::new();
        let mut body = Vec::new();
        let (status, body) = match encoder.encode(&prometheus::gather(), &mut body) {
            Ok(()) => (200, body),
            Err(e) => (500, format!("metrics: {e}\n").into_bytes()),
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, encoder.format_type())
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .unwrap_or_default()
    }
}

/// A proxy application that counts its open client connections
/// (`switchyard_downstream_connections`): a connection is inside `process_new` from its
/// first request until it closes — a kept-alive one comes straight back in for the next.
pub struct Connections<A> {
    inner: std::sync::Arc<A>,
    gauge: prometheus::IntGauge,
}

impl<A> Connections<A> {
    /// Count the connections of `inner`, the proxy of table `proxy`.
    pub fn new(inner: A, proxy: &'static str) -> Self {
        Connections {
            inner: std::sync::Arc::new(inner),
            gauge: metrics().connections.with_label_values(&[proxy]),
        }
    }
}

/// Takes a connection out of the count however its processing ends (returned, or dropped
/// at shutdown).
struct Open<'a>(&'a prometheus::IntGauge);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[async_trait::async_trait]
impl<A> pingora_core::apps::ServerApp for Connections<A>
where
    A: pingora_core::apps::ServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &std::sync::Arc<Self>,
        session: pingora_core::protocols::Stream,
        shutdown: &pingora_core::server::ShutdownWatch,
    ) -> Option<pingora_core::protocols::Stream> {
        self.gauge.inc();
        let _open = Open(&self.gauge);
        self.inner.process_new(session, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}
