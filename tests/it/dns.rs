//! Backends by DNS name: a real authoritative DNS server on loopback (hickory-server), whose
//! records each test changes while a proxy resolves them, and real backends on the
//! addresses the records name (127.0.0.x share one port, as a Service's pods would).

use crate::support::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::dns::{DnsServer, SrvRecord};

proxy_runtime::routes! {
    proxy Discovered;

    cluster api {
        backends: ["api.sy.test:1"],
        resolve: { every: 1s },
    }
    cluster by_ttl {
        backends: ["ttl.sy.test:1"],
    }
    cluster sticky {
        backends: ["sticky.sy.test:1"],
        balance: consistent(header("x-key")),
        resolve: { every: 1s },
    }
    cluster checked {
        backends: ["checked.sy.test:1"],
        resolve: { every: 1s },
        health: tcp { every: 200ms, fall: 1, rise: 1 },
        // No retry to hide a request sent to a backend the check has not taken out.
        retries: 0,
    }
    cluster service {
        backends: [srv("_http._tcp.svc.sy.test")],
        resolve: { every: 1s },
    }

    route ttl:     path_prefix("/ttl")     => by_ttl;
    route sticky:  path_prefix("/sticky")  => sticky;
    route checked: path_prefix("/checked") => checked;
    route service: path_prefix("/service") => service;
    route default: _ => api;
}

/// The refresh the table declares, and the slack the issue allows beyond it.
const REFRESH: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(1);

/// Backends named `{prefix}{last}` on 127.0.0.{last}, all on one port (returned).
fn on_loopbacks(prefix: &str, lasts: &[u8]) -> (Vec<Backend>, u16) {
    let ip = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    let first = Backend::spawn_on(
        &format!("{prefix}{}", lasts[0]),
        SocketAddr::new(ip(lasts[0]), 0),
    )
    .expect("bind 127.0.0.x");
    let port = first.addr().port();
    let mut all = vec![first];
    for &last in &lasts[1..] {
        all.push(
            Backend::spawn_on(&format!("{prefix}{last}"), SocketAddr::new(ip(last), port))
                .expect("the same port on another loopback address"),
        );
    }
    (all, port)
}

fn ips(lasts: &[u8]) -> Vec<IpAddr> {
    lasts
        .iter()
        .map(|&l| IpAddr::V4(Ipv4Addr::new(127, 0, 0, l)))
        .collect()
}

/// Requests from two threads until stopped: how many were answered, and the answers that
/// were not a 200 from a backend.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(proxy: SocketAddr, path: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let threads = (0..2)
            .map(|_| {
                let (stop, sent) = (stop.clone(), sent.clone());
                std::thread::spawn(move || {
                    let c = client();
                    let mut failed = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match c.get(format!("http://{proxy}{path}")).send() {
                            Ok(r) if r.status() == 200 => {}
                            Ok(r) => failed.push(format!(
                                "{}: {}",
                                r.status(),
                                r.text().unwrap_or_default()
                            )),
                            Err(e) => failed.push(e.to_string()),
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    failed
                })
            })
            .collect();
        Load {
            stop,
            sent,
            threads,
        }
    }

    /// Stop, and return (requests sent, failures).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let failed = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().expect("load thread"))
            .collect();
        (self.sent.load(Ordering::Relaxed), failed)
    }
}

/// Send requests to `path` until `name` answers; returns how long that took. Fails past
/// `bound`.
fn until_answered_by(proxy: SocketAddr, path: &str, name: &str, bound: Duration) -> Duration {
    let (c, started) = (client(), Instant::now());
    loop {
        let a = get(&c, proxy, path, &[]);
        if a.status == 200 && a.backend == name {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "{name} did not answer within {bound:?}; last answer {a:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn traffic_follows_a_changed_record_without_a_failed_request() {
    let dns = DnsServer::start("sy.test.").expect("DNS server");
    let (backends, port) = on_loopbacks("api-", &[11, 12, 13]);
    dns.set_addrs("api.sy.test", &ips(&[11, 12]), 1);
    let proxy = Discovered::builder()
        .dns(dns.addr())
        .backends("api", [format!("api.sy.test:{port}")])
        .start()
        .expect("proxy starts");
    // Resolved before the first request: the two addresses share the traffic.
    let counts = spread(&client(), proxy.addr(), "/", 40);
    assert_eq!(
        counts,
        BTreeMap::from([("api-11".to_owned(), 20), ("api-12".to_owned(), 20)])
    );

    let load = Load::start(proxy.addr(), "/");
    std::thread::sleep(Duration::from_millis(300));
    dns.set_addrs("api.sy.test", &ips(&[12, 13]), 1);
    let moved = until_answered_by(proxy.addr(), "/", "api-13", REFRESH + SLACK);
    std::thread::sleep(Duration::from_millis(500));
    let (sent, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    assert!(sent > 50, "the load ran ({sent} requests)");
    // Once the new set is in, the address that left gets nothing more (counted with the
    // load stopped: it shares the round-robin position).
    let hits_11 = backends[0].hits();
    let after = spread(&client(), proxy.addr(), "/", 40);
    assert_eq!(
        after,
        BTreeMap::from([("api-12".to_owned(), 20), ("api-13".to_owned(), 20)]),
        "moved after {moved:?}"
    );
    assert_eq!(backends[0].hits(), hits_11, "api-11 left the cluster");
}

#[test]
fn srv_records_give_ports_and_weights() {
    let dns = DnsServer::start("sy.test.").expect("DNS server");
    let heavy = spawn_backend("heavy");
    let light = spawn_backend("light");
    let spare = spawn_backend("spare");
    for (name, b) in [("heavy", &heavy), ("light", &light), ("spare", &spare)] {
        dns.set_addrs(&format!("{name}.sy.test"), &[b.addr().ip()], 1);
    }
    let record = |priority, weight, b: &Backend, target: &str| SrvRecord {
        priority,
        weight,
        port: b.addr().port(),
        target: format!("{target}.sy.test"),
    };
    dns.set_srv(
        "_http._tcp.svc.sy.test",
        &[
            record(10, 30, &heavy, "heavy"),
            record(10, 10, &light, "light"),
            // A less preferred priority: used by nobody while priority 10 answers.
            record(20, 100, &spare, "spare"),
        ],
        1,
    );
    let proxy = Discovered::builder()
        .dns(dns.addr())
        .start()
        .expect("proxy starts");
    let counts = spread(&client(), proxy.addr(), "/service", 400);
    assert_eq!(
        counts,
        BTreeMap::from([("heavy".to_owned(), 300), ("light".to_owned(), 100)])
    );
    assert_eq!(spare.hits(), 0);
    // When no target of priority 10 resolves any more, priority 20 serves.
    dns.remove("heavy.sy.test");
    dns.remove("light.sy.test");
    until_answered_by(proxy.addr(), "/service", "spare", REFRESH + SLACK * 2);
}

#[test]
fn a_name_missing_at_start_answers_503_then_serves_when_it_appears() {
    let dns = DnsServer::start("sy.test.").expect("DNS server");
    let (_backends, port) = on_loopbacks("late-", &[31]);
    let proxy = Discovered::builder()
        .dns(dns.addr())
        .backends("api", [format!("api.sy.test:{port}")])
        .start()
        .expect("the proxy starts although the name does not resolve");
    let a = get(&client(), proxy.addr(), "/", &[]);
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(
        a.body,
        "503 no backend address has resolved yet in cluster `api`\n"
    );
    dns.set_addrs("api.sy.test", &ips(&[31]), 1);
    // Retried 1 s after each failure (the refresh caps the doubling here).
    until_answered_by(proxy.addr(), "/", "late-31", Duration::from_secs(4));
}

#[test]
fn a_name_that_stops_resolving_keeps_its_last_addresses() {
    let dns = DnsServer::start("sy.test.").expect("DNS server");
    let (_backends, port) = on_loopbacks("kept-", &[41, 42]);
    dns.set_addrs("api.sy.test", &ips(&[41, 42]), 1);
    let name = format!("api.sy.test:{port}");
    let proxy = Discovered::builder()
        .dns(dns.addr())
        .backends("api", [name.clone()])
        .metrics("127.0.0.1:0")
        .start()
        .expect("proxy starts");
    let metrics = proxy.metrics_addr().expect("metrics are served");
    let both = BTreeMap::from([("kept-41".to_owned(), 10), ("kept-42".to_owned(), 10)]);
    assert_eq!(spread(&client(), proxy.addr(), "/", 20), both);
    // NXDOMAIN: once lookups have failed twice, the cluster still serves what it had.
    dns.remove("api.sy.test");
    let before = failed_lookups(metrics, &name);
    until_failed(metrics, &name, before + 2);
    assert_eq!(spread(&client(), proxy.addr(), "/", 20), both);
    // And with the DNS server gone altogether: a lookup waits out the resolver's
    // timeouts (2 s, twice, over UDP and TCP) before it fails.
    drop(dns);
    let before = failed_lookups(metrics, &name);
    until_failed(metrics, &name, before + 1);
    assert_eq!(spread(&client(), proxy.addr(), "/", 20), both);
}

/// Failed lookups of `name` so far, from the proxy's Prometheus endpoint.
fn failed_lookups(metrics: SocketAddr, name: &str) -> u64 {
    let text = client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("scrape metrics");
    let label = format!("name=\"{name}\"");
    text.lines()
        .filter(|l| l.starts_with("switchyard_dns_resolutions_total{"))
        .filter(|l| l.contains(&label) && l.contains("result=\"failed\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Wait until `name` has failed `count` lookups in all (a failed round is retried within
/// a second here; one that times out takes up to 8 s, so 30 s is far beyond it).
fn until_failed(metrics: SocketAddr, name: &str, count: u64) {
    let started = Instant::now();
    while failed_lookups(metrics, name) < count {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: fewer than {count} failed lookups"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn consistent_hashing_moves_only_the_keys_of_changed_members() {
    let dns = DnsServer::start("sy.test.").expect("DNS server");
    let (_backends, port) = on_loopbacks("ring-", &[51, 52, 53, 54, 55]);
    dns.set_addrs("sticky.sy.test", &ips(&[51, 52, 53, 54]), 1);
    let proxy = Discovered::builder()
        .dns(dns.addr())
        .backends("sticky", [format!("sticky.sy.test:{port}")])
        .start()
        .expect("proxy starts");
    let c = client();
    let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let owners = |c: &reqwest::blocking::Client| -> Vec<String> {
        keys.iter()
            .map(|k| {
                let a = get(c, proxy.addr(), "/sticky", &[("x-key", k)]);
                assert_eq!(a.status, 200, "{a:?}");
                a.backend
            })
            .collect()
    };
    let before = owners(&c);
    assert_eq!(
        before
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        4,
        "200 keys spread over the 4 members"
    );

    // ring-54 leaves: only its keys move.
    dns.set_addrs("sticky.sy.test", &ips(&[51, 52, 53]), 1);
    let started = Instant::now();
    let after = loop {
        let now = owners(&c);
        if !now.iter().any(|o| o == "ring-54") {
            break now;
        }
        assert!(
            started.elapsed() < REFRESH + SLACK * 2,
            "ring-54 still owns keys"
        );
    };
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if b != "ring-54" {
            assert_eq!(b, a, "key {} moved from {b} to {a}", keys[i]);
        }
    }

    // ring-55 joins: a key either stays or moves to ring-55.
    dns.set_addrs("sticky.sy.test", &ips(&[51, 52, 53, 55]), 1);
    let started = Instant::now();
    let joined = loop {
        let now = owners(&c);
        if now.iter().any(|o| o == "ring-55") {
            break now;
        }
        assert!(
            started.elapsed() < REFRESH + SLACK * 2,
            "ring-55 owns no key"
        );
    };
    for (a, j) in after.iter().zip(&joined) {
        assert!(a == j || j == "ring-55", "a key moved from {a} to {j}");
    }
}

#[test]
fn health_checks_follow_the_new_members_and_a_removed_backend_finishes_its_request() {
    let dns = DnsServer::start("sy.test.").expect("DNS server");
    let (mut backends, port) = on_loopbacks("hc-", &[61, 62, 63]);
    dns.set_addrs("checked.sy.test", &ips(&[61]), 1);
    let proxy = Discovered::builder()
        .dns(dns.addr())
        .backends("checked", [format!("checked.sy.test:{port}")])
        .start()
        .expect("proxy starts");
    // A slow request to hc-61, in flight while hc-61 leaves the cluster.
    let addr = proxy.addr();
    let slow =
        std::thread::spawn(move || get(&client(), addr, "/checked", &[("x-delay-ms", "2500")]));
    std::thread::sleep(Duration::from_millis(200));
    dns.set_addrs("checked.sy.test", &ips(&[62, 63]), 1);
    until_answered_by(proxy.addr(), "/checked", "hc-63", REFRESH + SLACK);
    let a = slow.join().expect("slow request");
    assert_eq!((a.status, a.backend.as_str()), (200, "hc-61"), "{a:?}");

    // hc-63 goes down: the active check, now running on the new members, takes it out.
    backends[2].stop();
    std::thread::sleep(Duration::from_millis(800));
    let counts = spread(&client(), proxy.addr(), "/checked", 20);
    assert_eq!(counts, BTreeMap::from([("hc-62".to_owned(), 20)]));
}

#[test]
fn every_ttl_resolves_again_when_the_records_expire() {
    let dns = DnsServer::start("sy.test.").expect("DNS server");
    let (_backends, port) = on_loopbacks("ttl-", &[71, 72]);
    // TTL 1 s: the default `every: ttl` asks again a second later.
    dns.set_addrs("ttl.sy.test", &ips(&[71]), 1);
    let proxy = Discovered::builder()
        .dns(dns.addr())
        .backends("by_ttl", [format!("ttl.sy.test:{port}")])
        .start()
        .expect("proxy starts");
    assert_eq!(
        spread(&client(), proxy.addr(), "/ttl", 5),
        BTreeMap::from([("ttl-71".to_owned(), 5)])
    );
    dns.set_addrs("ttl.sy.test", &ips(&[72]), 1);
    until_answered_by(proxy.addr(), "/ttl", "ttl-72", REFRESH + SLACK);
}
