//! Balancing within a cluster: round robin, weights, consistent hashing, splits.

use crate::support::*;

proxy_runtime::routes! {
    proxy Balancing;

    cluster even { backends: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"] }
    cluster weighted { backends: ["127.0.0.1:1" weight 10, "127.0.0.1:2" weight 5, "127.0.0.1:3" weight 1] }
    cluster sticky {
        backends: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"],
        balance: consistent(cookie("session_id")),
    }
    cluster left { backends: ["127.0.0.1:1"] }
    cluster right { backends: ["127.0.0.1:1"] }

    route even:     path_prefix("/even")     => even;
    route weighted: path_prefix("/weighted") => weighted;
    route sticky:   path_prefix("/sticky")   => sticky;
    route canary:   path_prefix("/canary")   => split { left: 5, right: 95 };
    route ab:       path_prefix("/ab")       => split { left: 1, right: 1 } by cookie("uid");
    route default:  _                        => even;
}

fn backends(prefix: &str, n: usize) -> Vec<Backend> {
    (1..=n)
        .map(|i| spawn_backend(&format!("{prefix}{i}")))
        .collect()
}

fn addrs(bs: &[Backend]) -> Vec<String> {
    bs.iter().map(Backend::addr_string).collect()
}

#[test]
fn round_robin_gives_each_backend_a_third() {
    let bs = backends("even", 3);
    let proxy = Balancing::builder()
        .backends("even", addrs(&bs))
        .start()
        .expect("proxy starts");
    let counts = spread(&client(), proxy.addr(), "/even", 300);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![100, 100, 100],
        "{counts:?}"
    );
}

#[test]
fn weights_10_5_1_split_1600_requests_1000_500_100() {
    let bs = backends("w", 3);
    let weighted: Vec<String> = bs
        .iter()
        .zip([10, 5, 1])
        .map(|(b, w)| format!("{}@{w}", b.addr()))
        .collect();
    let proxy = Balancing::builder()
        .backends("weighted", weighted)
        .start()
        .expect("proxy starts");
    let counts = spread(&client(), proxy.addr(), "/weighted", 1600);
    for (name, want) in [("w1", 1000.0), ("w2", 500.0), ("w3", 100.0)] {
        let got = counts.get(name).copied().unwrap_or(0) as f64;
        assert!(
            (got - want).abs() <= want * 0.01,
            "{name}: {got} of 1600, want {want} ±1%: {counts:?}"
        );
    }
}

#[test]
fn consistent_hash_keeps_a_session_on_one_backend() {
    let bs = backends("s", 4);
    let proxy = Balancing::builder()
        .backends("sticky", addrs(&bs))
        .start()
        .expect("proxy starts");
    let c = client();
    let mut owners = std::collections::BTreeSet::new();
    for id in 0..40 {
        let cookie = format!("session_id=user-{id}");
        let first = get(&c, proxy.addr(), "/sticky", &[("cookie", &cookie)]).backend;
        for _ in 0..3 {
            assert_eq!(
                get(&c, proxy.addr(), "/sticky", &[("cookie", &cookie)]).backend,
                first,
                "{cookie}"
            );
        }
        owners.insert(first);
    }
    assert!(
        owners.len() >= 3,
        "40 sessions should spread over the backends: {owners:?}"
    );
}

#[test]
fn splits_follow_weights_and_stick_by_key() {
    let (l, r) = (spawn_backend("left"), spawn_backend("right"));
    let proxy = Balancing::builder()
        .backends("left", [l.addr_string()])
        .backends("right", [r.addr_string()])
        .start()
        .expect("proxy starts");
    let c = client();
    let counts = spread(&c, proxy.addr(), "/canary", 100);
    assert_eq!(
        (counts.get("left"), counts.get("right")),
        (Some(&5), Some(&95)),
        "{counts:?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for uid in 0..20 {
        let cookie = format!("uid={uid}");
        let first = get(&c, proxy.addr(), "/ab", &[("cookie", &cookie)]).backend;
        for _ in 0..3 {
            assert_eq!(
                get(&c, proxy.addr(), "/ab", &[("cookie", &cookie)]).backend,
                first
            );
        }
        seen.insert(first);
    }
    assert_eq!(seen.len(), 2, "20 users land on both arms: {seen:?}");
}
