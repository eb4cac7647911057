//! `decide`, rate limits, the trusted-proxy walk and recording metrics allocate nothing:
//! counted by a global allocator, per thread.

/// This thread's allocations so far, counted by the runtime's allocator (the test binary
/// enables its `count-allocations` feature).
fn allocations() -> u64 {
    proxy_runtime::alloc::thread_allocations()
}

#[test]
fn decide_allocates_nothing() {
    use crate::decide_table::*;
    let requests = mix();
    // Warm up: the regex is compiled on first use and its per-thread cache is made then.
    for (r, c) in &requests {
        let _ = Mixed::decide(r, *c);
    }
    // The counter sees this thread's allocations (so the zero below means something).
    let probe = allocations();
    drop(std::hint::black_box(Box::new(1u64)));
    assert_eq!(
        allocations(),
        probe + 1,
        "the counting allocator is installed"
    );
    let before = allocations();
    let mut routed = 0;
    for _ in 0..100 {
        for (r, c) in &requests {
            routed += usize::from(Mixed::decide(r, *c).is_ok_and(|d| d.route.is_some()));
        }
    }
    let allocated = allocations() - before;
    assert_eq!(routed, 100 * requests.len());
    assert_eq!(
        allocated,
        0,
        "decide allocated {allocated} times over {} decisions",
        100 * requests.len()
    );
}

#[test]
fn rate_limits_and_trusted_proxy_walks_allocate_nothing() {
    use proxy_runtime::actions::{client_behind, RateLimiter};
    use proxy_runtime::spec::{Cidr, LimitSpec};
    let limiter = RateLimiter::new(LimitSpec {
        requests: 50,
        per: std::time::Duration::from_secs(60),
        by: None,
    });
    let trusted = [Cidr {
        v6: false,
        net: u128::from(u32::from_be_bytes([127, 0, 0, 0])),
        prefix: 8,
    }];
    let mut req = pingora_http::RequestHeader::build("GET", b"/", None).unwrap();
    req.insert_header("x-forwarded-for", "203.0.113.9, 127.0.0.2")
        .unwrap();
    let peer = Some("127.0.0.1".parse().unwrap());
    let _ = limiter.over(b"warm-up");
    let before = allocations();
    let mut over = 0;
    for i in 0..1000u32 {
        over += usize::from(limiter.over(&i.to_le_bytes()[..1]));
        assert_eq!(
            client_behind(peer, &req, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
    }
    assert_eq!(allocations() - before, 0);
    // 256 keys (the low byte) of about 4 requests each: none over 50 a minute...
    assert_eq!(over, 0);
    // ...and one key past its 50.
    let refused = (0..60).filter(|_| limiter.over(b"busy")).count();
    assert_eq!(refused, 10);
}

#[test]
fn recording_metrics_allocates_nothing_once_a_series_exists() {
    // What the proxy records per request, with its label shapes (static names, a backend
    // label made once per cluster).
    let m = proxy_runtime::metrics::metrics();
    let record = || {
        m.requests
            .with_label_values(&["AllocProbe", "api", "api", "127.0.0.1:9001", "2xx"])
            .inc();
        m.request_seconds
            .with_label_values(&["AllocProbe", "api"])
            .observe(0.001);
        m.upstream_seconds
            .with_label_values(&["AllocProbe", "api", "127.0.0.1:9001"])
            .observe(0.0005);
    };
    record();
    let before = allocations();
    for _ in 0..1000 {
        record();
    }
    assert_eq!(allocations() - before, 0);
}

/// Selection in a cluster whose members discovery swaps (a name) reads the snapshot
/// without allocating, as in a cluster of addresses (the proxy then boxes a clone of the
/// chosen peer for Pingora, the one allocation Pingora's API asks for). Both kinds, round robin and ketama, before and after a swap.
#[test]
fn selection_allocates_nothing_in_fixed_and_swapped_clusters() {
    use proxy_runtime::cluster::{LiveCluster, Member};
    use proxy_runtime::spec::{Balance, ClusterSpec, Key, Refresh, Timeouts};
    const fn spec(name: &'static str, balance: Balance) -> ClusterSpec {
        ClusterSpec {
            name,
            backends: &[],
            balance,
            health: None,
            retries: None,
            backup: None,
            tls: None,
            timeouts: Timeouts::NONE,
            passive: None,
            bind_to: None,
            tcp_keepalive: None,
            h2c: false,
            resolve: Refresh::Ttl,
        }
    }
    static RR: ClusterSpec = spec("rr", Balance::RoundRobin);
    static RING: ClusterSpec = spec("ring", Balance::Consistent(Key::ClientIp));
    let members = |lasts: &[u8]| -> Vec<Member> {
        lasts
            .iter()
            .map(|&l| Member {
                addr: std::net::SocketAddr::from(([127, 0, 0, l], 80)),
                weight: 1,
            })
            .collect()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for spec in [&RR, &RING] {
        for dynamic in [false, true] {
            let (cluster, _) =
                LiveCluster::build("Alloc", spec, members(&[1, 2, 3]), dynamic).unwrap();
            if dynamic {
                let swapped = runtime.block_on(cluster.set_members(members(&[2, 3, 4])));
                assert!(swapped.unwrap(), "the members changed");
            }
            // Warm up (thread-locals of the random generator and arc-swap).
            let _ = cluster.select(b"key", |_| false, true, |a, _| a);
            let before = allocations();
            let mut picked = 0;
            for i in 0..1000u32 {
                let key = i.to_le_bytes();
                let chosen =
                    cluster.select(&key, |_| false, true, |a, p| (a, p.options.read_timeout));
                picked += usize::from(chosen.is_some());
            }
            let allocated = allocations() - before;
            assert_eq!(picked, 1000, "{} dynamic={dynamic}", spec.name);
            assert_eq!(
                allocated, 0,
                "{} (dynamic: {dynamic}) allocated {allocated} times in 1000 selections",
                spec.name
            );
        }
    }
}
