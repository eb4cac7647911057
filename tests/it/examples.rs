//! Every example of `examples/` (one per scenario of the upstream-selection guide), run
//! through real sockets: the example's own table, real backends and a real client.
//!
//! Each example file is included as a module, so the test exercises exactly the table that
//! `cargo run --example NAME` serves; only the backend addresses are replaced by the test's
//! own backends on ephemeral ports.

use crate::support::*;
use proxy_runtime::Table;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[path = "../../examples/path_routing.rs"]
#[allow(dead_code)]
mod path_routing;

#[path = "../../examples/host_routing.rs"]
#[allow(dead_code)]
mod host_routing;

#[path = "../../examples/combined_routing.rs"]
#[allow(dead_code)]
mod combined_routing;

#[path = "../../examples/ab_testing.rs"]
#[allow(dead_code)]
mod ab_testing;

#[path = "../../examples/round_robin.rs"]
#[allow(dead_code)]
mod round_robin;

#[path = "../../examples/random.rs"]
#[allow(dead_code)]
mod random;

#[path = "../../examples/consistent_hash.rs"]
#[allow(dead_code)]
mod consistent_hash;

#[path = "../../examples/health_check.rs"]
#[allow(dead_code)]
mod health_check;

#[path = "../../examples/weighted.rs"]
#[allow(dead_code)]
mod weighted;

#[path = "../../examples/multi_cluster.rs"]
#[allow(dead_code)]
mod multi_cluster;

#[path = "../../examples/upstream_options.rs"]
#[allow(dead_code)]
mod upstream_options;

#[path = "../../examples/tls_edge.rs"]
#[allow(dead_code)]
mod tls_edge;

#[path = "../../examples/discovery.rs"]
#[allow(dead_code)]
mod discovery;

/// `n` backends named `CLUSTER-1` .. `CLUSTER-n`, as `run_example` names them.
fn backends(cluster: &str, n: usize) -> Vec<Backend> {
    (1..=n)
        .map(|i| spawn_backend(&format!("{cluster}-{i}")))
        .collect()
}

fn addrs(bs: &[Backend]) -> Vec<String> {
    bs.iter().map(Backend::addr_string).collect()
}

/// A request head for `decide`, without a socket.
fn head(path: &str, headers: &[(&str, &str)]) -> pingora_http::RequestHeader {
    let mut r = pingora_http::RequestHeader::build("GET", path.as_bytes(), None).expect("head");
    for (k, v) in headers {
        r.append_header(k.to_string(), *v).expect("header");
    }
    r
}

/// Assert that each `(path, headers, backend-name prefix)` is answered 200 by a backend
/// whose name starts with the prefix, and that the backend got the path as sent.
fn assert_routes(proxy: std::net::SocketAddr, cases: &[(&str, &[(&str, &str)], &str)]) {
    let c = client();
    for (path, headers, want) in cases {
        let a = get(&c, proxy, path, headers);
        assert_eq!(a.status, 200, "GET {path} {headers:?}: {a:?}");
        assert!(
            a.backend.starts_with(want) && a.body == a.backend,
            "GET {path} {headers:?} should reach {want}: {a:?}"
        );
        assert_eq!(a.path, *path, "the backend receives the path as sent");
    }
}

#[test]
fn path_routing_sends_each_prefix_to_its_cluster() {
    let (api, files, www) = (
        backends("api", 2),
        backends("static_files", 1),
        backends("www", 1),
    );
    let proxy = path_routing::PathRouting::builder()
        .backends("api", addrs(&api))
        .backends("static_files", addrs(&files))
        .backends("www", addrs(&www))
        .start()
        .expect("proxy starts");
    assert_routes(
        proxy.addr(),
        &[
            ("/api/users", &[], "api-"),
            ("/api", &[], "api-"),
            ("/api/v1/orders?id=7", &[], "api-"),
            ("/static/app.css", &[], "static_files-1"),
            ("/static", &[], "static_files-1"),
            // Segment-aware: /apiary and /staticx are not under /api and /static.
            ("/apiary", &[], "www-1"),
            ("/staticx/a", &[], "www-1"),
            ("/", &[], "www-1"),
            ("/index.html", &[], "www-1"),
        ],
    );
    // The API cluster is balanced over both of its servers.
    let counts = spread(&client(), proxy.addr(), "/api/x", 10);
    assert_eq!(
        counts,
        BTreeMap::from([("api-1".to_owned(), 5), ("api-2".to_owned(), 5)])
    );
}

#[test]
fn host_routing_matches_hosts_in_any_case_with_a_port_and_has_a_default() {
    let names = ["api", "blog", "secure", "fallback"];
    let bs: Vec<Backend> = names
        .iter()
        .map(|n| spawn_backend(&format!("{n}-1")))
        .collect();
    let mut builder = host_routing::HostRouting::builder();
    for (n, b) in names.iter().zip(&bs) {
        builder = builder.backends(n, [b.addr_string()]);
    }
    let proxy = builder.start().expect("proxy starts");
    assert_routes(
        proxy.addr(),
        &[
            ("/", &[("host", "api.example.com")], "api-1"),
            ("/x", &[("host", "API.EXAMPLE.COM")], "api-1"),
            ("/x", &[("host", "Api.Example.Com:6188")], "api-1"),
            ("/", &[("host", "blog.example.com:8080")], "blog-1"),
            ("/", &[("host", "BLOG.example.com")], "blog-1"),
            ("/login", &[("host", "secure.example.com")], "secure-1"),
            // Unknown hosts, and the client's own `Host: 127.0.0.1:PORT`, get the default.
            ("/", &[("host", "unknown.example.org")], "fallback-1"),
            ("/", &[("host", "api.example.com.evil.test")], "fallback-1"),
            ("/", &[], "fallback-1"),
        ],
    );
}

#[test]
fn combined_routing_takes_every_branch_and_types_is_mobile() {
    let names = ["api_v1", "api_v2", "shop", "mobile", "desktop", "fallback"];
    let bs: Vec<Backend> = names
        .iter()
        .map(|n| spawn_backend(&format!("{n}-1")))
        .collect();
    let mut builder = combined_routing::CombinedRouting::builder();
    for (n, b) in names.iter().zip(&bs) {
        builder = builder.backends(n, [b.addr_string()]);
    }
    let proxy = builder.start().expect("proxy starts");
    const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8)";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148";
    const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0";
    assert_routes(
        proxy.addr(),
        &[
            // api.example.com: v2 under /v2, v1 for the rest (/v2x is not under /v2).
            ("/v2/users", &[("host", "api.example.com")], "api_v2-1"),
            ("/v2/users", &[("host", "API.example.com:443")], "api_v2-1"),
            ("/v1/users", &[("host", "api.example.com")], "api_v1-1"),
            ("/v2x", &[("host", "api.example.com")], "api_v1-1"),
            (
                "/v1/users",
                &[("host", "api.example.com"), ("user-agent", ANDROID)],
                "api_v1-1",
            ),
            // www.example.com: the shop for every device, then mobile, then desktop.
            (
                "/shop/cart",
                &[("host", "www.example.com"), ("user-agent", IPHONE)],
                "shop-1",
            ),
            ("/shop", &[("host", "www.example.com")], "shop-1"),
            (
                "/",
                &[("host", "www.example.com"), ("user-agent", ANDROID)],
                "mobile-1",
            ),
            (
                "/news",
                &[("host", "www.example.com"), ("user-agent", IPHONE)],
                "mobile-1",
            ),
            (
                "/",
                &[("host", "www.example.com"), ("user-agent", DESKTOP)],
                "desktop-1",
            ),
            ("/", &[("host", "www.example.com")], "desktop-1"),
            // Any other host.
            (
                "/",
                &[("host", "other.example.com"), ("user-agent", ANDROID)],
                "fallback-1",
            ),
        ],
    );

    // `is_mobile` is a typed field of the decision's predicates and of the context.
    use combined_routing::{
        CombinedRouting, CombinedRoutingCluster, CombinedRoutingCtx, CombinedRoutingRoute,
    };
    let decide = |headers: &[(&str, &str)]| {
        CombinedRouting::decide(&head("/", headers), None).expect("a well-formed request")
    };
    let d = decide(&[("host", "www.example.com"), ("user-agent", ANDROID)]);
    assert!(d.predicates.is_mobile);
    assert_eq!(d.route, Some(CombinedRoutingRoute::Mobile));
    assert_eq!(
        d.target,
        proxy_runtime::Target::Cluster(CombinedRoutingCluster::Mobile)
    );
    let d = decide(&[("host", "www.example.com"), ("user-agent", DESKTOP)]);
    assert!(!d.predicates.is_mobile);
    assert_eq!(d.route, Some(CombinedRoutingRoute::Desktop));
    // Evaluated for every request, whichever rule matches.
    let d = decide(&[("host", "api.example.com"), ("user-agent", IPHONE)]);
    assert!(d.predicates.is_mobile);
    assert_eq!(d.route, Some(CombinedRoutingRoute::ApiV1));
    let ctx = CombinedRoutingCtx::new();
    let is_mobile: bool = ctx.predicates.is_mobile;
    assert!(!is_mobile, "false until a request is decided");
}

#[test]
fn ab_testing_sends_beta_testers_by_query_or_cookie_and_nobody_else() {
    let (beta, prod) = (backends("beta", 1), backends("production", 2));
    let proxy = ab_testing::AbTesting::builder()
        .backends("beta", addrs(&beta))
        .backends("production", addrs(&prod))
        .start()
        .expect("proxy starts");
    assert_routes(
        proxy.addr(),
        &[
            ("/?beta=true", &[], "beta-1"),
            ("/page?x=1&beta=true", &[], "beta-1"),
            ("/", &[("cookie", "beta=true")], "beta-1"),
            ("/", &[("cookie", "theme=dark; beta=true")], "beta-1"),
            // Parsed, not searched: these are not `beta=true`.
            ("/?notbeta=true", &[], "production-"),
            ("/", &[("cookie", "notbeta=true")], "production-"),
            ("/?beta=false", &[], "production-"),
            ("/?beta=truex", &[], "production-"),
            ("/", &[("cookie", "beta=false")], "production-"),
            ("/", &[], "production-"),
        ],
    );
}

#[test]
fn round_robin_spreads_300_requests_100_100_100() {
    let bs = backends("app", 3);
    let proxy = round_robin::RoundRobin::builder()
        .backends("app", addrs(&bs))
        .start()
        .expect("proxy starts");
    let counts = spread(&client(), proxy.addr(), "/", 300);
    assert_eq!(
        counts,
        BTreeMap::from([
            ("app-1".to_owned(), 100),
            ("app-2".to_owned(), 100),
            ("app-3".to_owned(), 100),
        ])
    );
}

#[test]
fn random_spreads_3000_requests_within_850_to_1150_each() {
    // Each count is Binomial(3000, 1/3): mean 1000, standard deviation ≈ 25.8, so the
    // tolerance of ±150 is almost six standard deviations.
    let bs = backends("app", 3);
    let proxy = random::Random::builder()
        .backends("app", addrs(&bs))
        .start()
        .expect("proxy starts");
    let counts = spread(&client(), proxy.addr(), "/", 3000);
    assert_eq!(counts.len(), 3, "{counts:?}");
    for name in ["app-1", "app-2", "app-3"] {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(
            (850..=1150).contains(&got),
            "{name}: {got} of 3000, want 1000 ± 150: {counts:?}"
        );
    }
}

#[test]
fn consistent_hash_keeps_sessions_and_moves_only_a_removed_backends_keys() {
    const IDS: usize = 1000;
    let bs = backends("sessions", 4);
    let c = client();
    // Map every session id to the backend that answers it, through a proxy over `members`.
    let map = |members: Vec<String>, repeat: usize| -> Vec<String> {
        let proxy = consistent_hash::ConsistentHash::builder()
            .backends("sessions", members)
            .start()
            .expect("proxy starts");
        (0..IDS)
            .map(|id| {
                let cookie = format!("theme=dark; session_id=user-{id}");
                let a = get(&c, proxy.addr(), "/cart", &[("cookie", &cookie)]);
                assert_eq!(a.status, 200, "{a:?}");
                // The same id always reaches the same backend.
                for _ in 0..repeat {
                    let again = get(&c, proxy.addr(), "/other", &[("cookie", &cookie)]);
                    assert_eq!(again.backend, a.backend, "{cookie}");
                }
                a.backend
            })
            .collect()
    };
    let before = map(addrs(&bs), 0);
    // Repeat a tenth of the ids on a fresh proxy: same answers, so the mapping is stable.
    let again = {
        let proxy = consistent_hash::ConsistentHash::builder()
            .backends("sessions", addrs(&bs))
            .start()
            .expect("proxy starts");
        (0..IDS / 10)
            .map(|id| {
                let cookie = format!("session_id=user-{id}");
                get(&c, proxy.addr(), "/", &[("cookie", &cookie)]).backend
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(again, before[..IDS / 10], "the same id, the same backend");
    let mut owned: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &before {
        *owned.entry(b.as_str()).or_insert(0) += 1;
    }
    assert_eq!(owned.len(), 4, "1,000 ids spread over all four: {owned:?}");

    // Remove sessions-2: the same addresses minus one.
    let removed = bs[1].name().to_owned();
    let after = map(
        bs.iter()
            .filter(|b| b.name() != removed)
            .map(Backend::addr_string)
            .collect(),
        0,
    );
    let mut moved = 0;
    for (id, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_ne!(a, &removed, "user-{id} still reaches the removed backend");
        if a != b {
            assert_eq!(
                b, &removed,
                "user-{id} moved from {b} to {a}, but only {removed}'s keys may move"
            );
            moved += 1;
        }
    }
    assert_eq!(
        moved,
        owned[removed.as_str()],
        "all of {removed}'s keys moved"
    );
    assert!(
        moved * 100 <= IDS * 30,
        "{moved} of {IDS} ids moved (at most 30%): {owned:?}"
    );
}

#[test]
fn health_check_evicts_a_stopped_backend_and_readmits_it_within_bounds() {
    use health_check::HealthCheck;
    let spec = HealthCheck::CLUSTERS[0]
        .health
        .expect("the cluster is checked");
    let slack = Duration::from_secs(1);
    let evict_bound = spec.every * spec.fall + slack;
    let readmit_bound = spec.every * spec.rise + slack;

    let mut bs = backends("app", 3);
    let proxy = HealthCheck::builder()
        .backends("app", addrs(&bs))
        .start()
        .expect("proxy starts");
    let c = client();
    let counts = spread(&c, proxy.addr(), "/", 30);
    assert_eq!(counts.len(), 3, "all three serve at first: {counts:?}");

    // Stop app-2. Until its check has failed `fall` times, round robin still picks it and
    // those requests fail (the cluster has no retries). Eviction shows as a run of 30
    // successes in a row: with app-2 in rotation every third request would fail.
    bs[1].stop();
    let stopped = Instant::now();
    let mut streak_start = Instant::now();
    let mut streak = 0;
    while streak < 30 {
        let a = get(&c, proxy.addr(), "/", &[]);
        if a.status == 200 {
            if streak == 0 {
                streak_start = Instant::now();
            }
            streak += 1;
        } else {
            streak = 0;
        }
        assert!(
            stopped.elapsed() < evict_bound + Duration::from_secs(2),
            "app-2 not evicted: requests still fail {:?} after the stop",
            stopped.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let evicted_after = streak_start.duration_since(stopped);
    assert!(
        evicted_after <= evict_bound,
        "evicted after {evicted_after:?}, bound {evict_bound:?}"
    );
    // After eviction no request fails, and the two others share the load.
    let after = spread(&c, proxy.addr(), "/", 200);
    assert_eq!(
        after,
        BTreeMap::from([("app-1".to_owned(), 100), ("app-3".to_owned(), 100)])
    );

    // Bring it back on its port: it serves again within every × rise (+1 s), and no
    // request fails meanwhile.
    bs[1].start().expect("restart app-2 on its port");
    wait_for_backend(&c, proxy.addr(), "/", "app-2", readmit_bound);
}

#[test]
fn weighted_10_5_1_splits_1600_requests_1000_500_100() {
    use weighted::Weighted;
    // The weights are the example's own: the test only replaces the addresses.
    let weights: Vec<u32> = Weighted::CLUSTERS[0]
        .backends
        .iter()
        .map(|b| b.weight)
        .collect();
    assert_eq!(weights, [10, 5, 1]);
    let bs = backends("app", 3);
    let proxy = Weighted::builder()
        .backends(
            "app",
            bs.iter()
                .zip(&weights)
                .map(|(b, w)| format!("{}@{w}", b.addr())),
        )
        .start()
        .expect("proxy starts");
    let counts = spread(&client(), proxy.addr(), "/", 1600);
    for (name, want) in [("app-1", 1000.0), ("app-2", 500.0), ("app-3", 100.0)] {
        let got = counts.get(name).copied().unwrap_or(0) as f64;
        assert!(
            (got - want).abs() <= want * 0.01,
            "{name}: {got} of 1600, want {want} ±1%: {counts:?}"
        );
    }
}

#[test]
fn multi_cluster_routes_by_path_and_a_dead_cluster_does_not_affect_the_others() {
    use multi_cluster::MultiCluster;
    let (api, web, mut files) = (
        backends("api", 3),
        backends("web", 2),
        backends("static_files", 3),
    );
    let proxy = MultiCluster::builder()
        .backends("api", addrs(&api))
        .backends("web", addrs(&web))
        .backends("static_files", addrs(&files))
        .start()
        .expect("proxy starts");
    let c = client();
    assert_routes(
        proxy.addr(),
        &[
            ("/api/users", &[], "api-"),
            ("/static/app.js", &[], "static_files-"),
            ("/", &[], "web-"),
            ("/apiary", &[], "web-"),
        ],
    );
    // Each cluster balances over its own servers.
    assert_eq!(spread(&c, proxy.addr(), "/api/x", 30).len(), 3);
    assert_eq!(spread(&c, proxy.addr(), "/static/x", 30).len(), 3);
    assert_eq!(spread(&c, proxy.addr(), "/page", 30).len(), 2);

    // Stop every static server. Once its check marks them down (every × fall + 1 s), the
    // static route answers 503 naming the cluster; api and web answer 200 throughout.
    let health = MultiCluster::CLUSTERS
        .iter()
        .find(|c| c.name == "static_files")
        .and_then(|c| c.health)
        .expect("static_files is checked");
    let bound = health.every * health.fall + Duration::from_secs(1);
    for b in &mut files {
        b.stop();
    }
    let stopped = Instant::now();
    let down = loop {
        let a = get(&c, proxy.addr(), "/static/app.js", &[]);
        if a.status == 503 {
            break a;
        }
        assert!(
            stopped.elapsed() < bound,
            "static_files not marked down within {bound:?}: {a:?}"
        );
        for (path, want) in [("/api/users", "api-"), ("/", "web-")] {
            let a = get(&c, proxy.addr(), path, &[]);
            assert!(
                a.status == 200 && a.backend.starts_with(want),
                "{path}: {a:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        down.body.contains("`static_files`") && down.backend.is_empty(),
        "the proxy's 503 names the cluster: {down:?}"
    );
    for _ in 0..20 {
        let a = get(&c, proxy.addr(), "/static/app.js", &[]);
        assert_eq!(a.status, 503, "{a:?}");
        for (path, want) in [("/api/users", "api-"), ("/", "web-")] {
            let a = get(&c, proxy.addr(), path, &[]);
            assert!(
                a.status == 200 && a.backend.starts_with(want),
                "{path}: {a:?}"
            );
        }
    }
}

#[test]
fn upstream_options_serves_the_plain_cluster_and_declares_tls_for_secure() {
    use proxy_runtime::spec::Alpn;
    use upstream_options::{UpstreamOptions, UpstreamOptionsCluster};

    // The table as declared: timeouts and retries on `app`, TLS on `secure`.
    let app = &UpstreamOptions::CLUSTERS[0];
    assert_eq!(
        (app.name, app.retries, app.tls.is_none()),
        ("app", Some(1), true)
    );
    assert_eq!(app.timeouts.connect, Some(Duration::from_secs(1)));
    assert_eq!(app.timeouts.total_connect, Some(Duration::from_secs(2)));
    assert_eq!(app.timeouts.read, Some(Duration::from_secs(10)));
    assert_eq!(app.timeouts.write, Some(Duration::from_secs(10)));
    assert_eq!(app.timeouts.idle, Some(Duration::from_secs(60)));
    let secure = &UpstreamOptions::CLUSTERS[1];
    let tls = secure.tls.expect("secure speaks TLS");
    assert_eq!(
        (tls.sni, tls.verify, tls.verify_hostname, tls.alpn),
        ("secure.example.com", true, true, Alpn::H2H1)
    );
    assert_eq!(tls.alternative_cn, Some("www.example.com"));
    let d = UpstreamOptions::decide(&head("/secure/account", &[]), None).expect("decides");
    assert_eq!(
        d.target,
        proxy_runtime::Target::Cluster(UpstreamOptionsCluster::Secure)
    );

    // Through the proxy: the plain cluster answers, in turn, and with `retries: 1` a
    // refused connection is retried on the other server, so no request fails.
    let bs = backends("app", 2);
    let proxy = UpstreamOptions::builder()
        .backends("app", addrs(&bs))
        .start()
        .expect("proxy starts");
    assert_routes(
        proxy.addr(),
        &[("/", &[], "app-"), ("/secured", &[], "app-")],
    );
    let counts = spread(&client(), proxy.addr(), "/page", 20);
    assert_eq!(
        counts,
        BTreeMap::from([("app-1".to_owned(), 10), ("app-2".to_owned(), 10)])
    );

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let proxy = UpstreamOptions::builder()
        .backends("app", [bs[0].addr_string(), closed])
        .start()
        .expect("proxy starts");
    let counts = spread(&client(), proxy.addr(), "/page", 20);
    assert_eq!(counts, BTreeMap::from([("app-1".to_owned(), 20)]));
}

#[test]
fn tls_edge_redirects_plain_http_and_picks_the_certificate_by_name() {
    use crate::pki::{self, Ca, KeyKind};
    let (www, api) = (spawn_backend("www-1"), spawn_backend("api-1"));
    let ca = Ca::new("example CA");
    let dir = pki::dir("tls_edge");
    let www_cert = ca.server(&["www.example.test"], KeyKind::Ecdsa);
    let api_cert = ca.server(&["api.example.test"], KeyKind::Rsa);
    let (wc, wk) = www_cert.write(&dir, "www");
    let (ac, ak) = api_cert.write(&dir, "api");
    let proxy = tls_edge::TlsEdge::builder()
        .backends("www", [www.addr_string()])
        .backends("api", [api.addr_string()])
        .listen("127.0.0.1:0")
        .listen_tls("127.0.0.1:0")
        .cert(wc, wk)
        .cert(ac, ak)
        .start()
        .expect("proxy starts");
    let (plain, tls) = (proxy.addrs()[0], proxy.addrs()[1]);
    let r = no_redirects()
        .get(format!("http://{plain}/docs?x=1"))
        .header("host", "www.example.test")
        .send()
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        "https://www.example.test:6189/docs?x=1"
    );
    let c = pki::https_client(
        &ca.pem(),
        tls,
        &["www.example.test", "api.example.test"],
        None,
        false,
    );
    for (host, backend, cert) in [
        ("www.example.test", "www-1", &www_cert),
        ("api.example.test", "api-1", &api_cert),
    ] {
        let r = c
            .get(format!("https://{host}:{}/v1", tls.port()))
            .send()
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.headers()["x-backend"], backend);
        let (_, served) = pki::connect(tls, Some(host), &rustls::version::TLS13);
        assert!(served == cert.der(), "{host}");
    }
    let (_, served) = pki::connect(tls, None, &rustls::version::TLS12);
    assert!(served == www_cert.der(), "no SNI: the first certificate");
}

#[test]
fn discovery_serves_a_name_and_keeps_sessions_on_srv_targets() {
    use switchyard::dns::{DnsServer, SrvRecord};
    let dns = DnsServer::start("discovery.test.").expect("DNS server");
    let app = spawn_backend("app-1");
    let sessions = backends("sessions", 2);
    dns.set_addrs("app.discovery.test", &[app.addr().ip()], 2);
    let records: Vec<SrvRecord> = sessions
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let target = format!("sessions-{}.discovery.test", i + 1);
            dns.set_addrs(&target, &[b.addr().ip()], 5);
            SrvRecord {
                priority: 10,
                weight: 1,
                port: b.addr().port(),
                target,
            }
        })
        .collect();
    dns.set_srv("_http._tcp.sessions.discovery.test", &records, 5);
    let proxy = discovery::Discovery::builder()
        .dns(dns.addr())
        // The example's port for `app` is fixed (9701); the test's backend is elsewhere.
        .backends("app", [format!("app.discovery.test:{}", app.addr().port())])
        .start()
        .expect("proxy starts");
    let c = client();
    assert_eq!(get(&c, proxy.addr(), "/", &[]).backend, "app-1");
    let owner = get(&c, proxy.addr(), "/session", &[("cookie", "sid=alice")]).backend;
    assert!(owner.starts_with("sessions-"), "{owner}");
    for _ in 0..10 {
        let a = get(&c, proxy.addr(), "/session", &[("cookie", "sid=alice")]);
        assert_eq!((a.status, a.backend.as_str()), (200, owner.as_str()));
    }
}
