//! Active health checks run, take a dead backend out within `every × fall`, and bring it
//! back within `every × rise`.

use crate::support::*;
use std::time::{Duration, Instant};

proxy_runtime::routes! {
    proxy Checked;

    cluster pool {
        backends: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"],
        health: tcp { every: 1s, fall: 2, rise: 2 },
    }
    cluster web {
        backends: ["127.0.0.1:1"],
        health: http { path: "/healthz", every: 1s, fall: 1, rise: 1 },
    }

    route web: path_prefix("/web") => web;
    route default: _ => pool;
}

const EVERY: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(1);

#[test]
fn a_stopped_backend_is_evicted_then_readmitted_within_bounds() {
    let mut bs: Vec<Backend> = (1..=3).map(|i| spawn_backend(&format!("p{i}"))).collect();
    let proxy = Checked::builder()
        .backends("pool", bs.iter().map(Backend::addr_string))
        .start()
        .expect("proxy starts");
    let c = client();
    let counts = spread(&c, proxy.addr(), "/", 30);
    assert_eq!(counts.len(), 3, "all three serve at first: {counts:?}");

    // Stop p2. Until its check fails `fall` times, some requests may still go to it.
    bs[1].stop();
    let stopped = Instant::now();
    let evict_bound = EVERY * 2 + SLACK;
    while stopped.elapsed() < evict_bound {
        let _ = c.get(format!("http://{}/", proxy.addr())).send();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Past the bound, no request fails and none goes to p2.
    let after = spread(&c, proxy.addr(), "/", 200);
    assert_eq!(after.get("p2"), None, "p2 is out of rotation: {after:?}");
    assert_eq!(after.values().sum::<usize>(), 200);

    // Bring it back: it gets traffic again within every × rise (+1 s).
    bs[1].start().expect("restart p2 on its port");
    let readmit_bound = EVERY * 2 + SLACK;
    wait_for_backend(&c, proxy.addr(), "/", "p2", readmit_bound);
}

#[test]
fn http_checks_run_against_the_declared_path() {
    let web = spawn_backend("web");
    let proxy = Checked::builder()
        .backends("web", [web.addr_string()])
        .start()
        .expect("proxy starts");
    let a = get(&client(), proxy.addr(), "/web", &[]);
    assert_eq!((a.status, a.backend.as_str()), (200, "web"));
    // The check is a real request: within two intervals the backend has seen it.
    let deadline = Instant::now() + EVERY * 2 + SLACK;
    while web.hits() < 2 {
        assert!(
            Instant::now() < deadline,
            "the HTTP health check never reached the backend"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
