//! What the proxy says it did: a real Prometheus scrape of the metrics endpoint after known
//! traffic, access-log lines read back from a file (and the file reopened on SIGUSR1),
//! and `--routes --json`.

use crate::support::*;
use proxy_runtime::access_log::{AccessLogConfig, Destination, Format};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

proxy_runtime::routes! {
    proxy Observed;
    cluster a { backends: ["127.0.0.1:1"] }
    cluster b { backends: ["127.0.0.1:1"] }
    cluster c { backends: ["127.0.0.1:1"] }
    route to_a: path_prefix("/a") => a;
    route to_c: path_prefix("/c") => c;
    route teapot: path("/teapot") => respond(418, "teapot\n");
    route limited: path("/limited") => b { limit: 1/m };
    route default: _ => b;
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn scrape(addr: std::net::SocketAddr) -> BTreeMap<String, f64> {
    let body = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .expect("scrape")
        .text()
        .expect("text");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Scrape until `want` holds (logging runs after the answer is sent), 5 s at most.
fn scrape_until(
    addr: std::net::SocketAddr,
    want: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let samples = scrape(addr);
        if want(&samples) || Instant::now() > deadline {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_scrape_after_known_traffic_counts_it_by_route_cluster_backend_and_status() {
    let (a1, a2, b1, c1) = (
        spawn_backend("a1"),
        spawn_backend("a2"),
        spawn_backend("b1"),
        spawn_backend("c1"),
    );
    // Cluster c: a closed port first, so its first request is retried on c1.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = Observed::builder()
        .backends("a", [a1.addr_string(), a2.addr_string()])
        .backends("b", [b1.addr_string()])
        .backends("c", [dead.to_string(), c1.addr_string()])
        .metrics("127.0.0.1:0")
        .start()
        .expect("proxy starts");
    let m = proxy.metrics_addr().expect("metrics address");
    let c = client();
    let mut statuses = Vec::new();
    for path in [
        "/a/1", "/a/2", "/a/3", "/a/4", "/b", "/teapot", "/limited", "/limited", "/c", "/c",
    ] {
        statuses.push(get(&c, proxy.addr(), path, &[]).status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 418, 200, 429, 200, 200]);

    let series = |route: &str, cluster: &str, backend: &str, status: &str| {
        format!(
            "switchyard_requests_total{{backend=\"{backend}\",cluster=\"{cluster}\",proxy=\"Observed\",route=\"{route}\",status=\"{status}\"}}"
        )
    };
    let a1s = series("to_a", "a", &a1.addr_string(), "2xx");
    let samples = scrape_until(m, |s| {
        s.get(&a1s) == Some(&2.0)
            && s.get("switchyard_requests_in_flight{proxy=\"Observed\"}") == Some(&0.0)
            && s.keys()
                .filter(|k| k.starts_with("switchyard_requests_total{") && k.contains("Observed"))
                .count()
                >= 7
    });
    let expect = [
        (series("to_a", "a", &a1.addr_string(), "2xx"), 2.0),
        (series("to_a", "a", &a2.addr_string(), "2xx"), 2.0),
        (series("default", "b", &b1.addr_string(), "2xx"), 1.0),
        (series("limited", "b", &b1.addr_string(), "2xx"), 1.0),
        (series("limited", "b", "-", "4xx"), 1.0),
        (series("teapot", "-", "-", "4xx"), 1.0),
        (series("to_c", "c", &c1.addr_string(), "2xx"), 2.0),
        ("switchyard_rate_limited_total{proxy=\"Observed\",route=\"limited\"}".to_owned(), 1.0),
        ("switchyard_request_duration_seconds_count{proxy=\"Observed\",route=\"to_a\"}".to_owned(), 4.0),
        (
            format!("switchyard_upstream_duration_seconds_count{{backend=\"{}\",cluster=\"a\",proxy=\"Observed\"}}", a1.addr_string()),
            2.0,
        ),
        ("switchyard_retries_total{cluster=\"c\",proxy=\"Observed\"}".to_owned(), 1.0),
        (format!("switchyard_ejections_total{{backend=\"{dead}\",cluster=\"c\",proxy=\"Observed\"}}"), 1.0),
        (format!("switchyard_backend_healthy{{backend=\"{}\",cluster=\"a\",proxy=\"Observed\"}}", a1.addr_string()), 1.0),
        ("switchyard_requests_in_flight{proxy=\"Observed\"}".to_owned(), 0.0),
    ];
    // Every request above went over its own connection (the client keeps them alive and
    // they are counted while open).
    let conns = samples.get("switchyard_downstream_connections{proxy=\"Observed\"}");
    assert!(
        conns.is_some_and(|n| *n >= 1.0),
        "open connections: {conns:?}"
    );
    for (key, value) in expect {
        assert_eq!(samples.get(&key), Some(&value), "{key}\n{samples:#?}");
    }
    // Exactly those request series, nothing else counted for this table.
    let total: f64 = samples
        .iter()
        .filter(|(k, _)| {
            k.starts_with("switchyard_requests_total{") && k.contains("proxy=\"Observed\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 10.0);
}

proxy_runtime::routes! {
    proxy Logged;
    cluster web { backends: ["127.0.0.1:1"] }
    route teapot: path("/teapot") => respond(418, "teapot\n");
    route web: _ => web;
}

/// The lines of `path` once it has `n` of them (the writer flushes when idle), 5 s at most.
fn lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn temp_log(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn access_log_lines_say_what_each_request_did_and_the_file_reopens_on_sigusr1() {
    let web = spawn_backend("web");
    let path = temp_log("access.json");
    let proxy = Logged::builder()
        .backends("web", [web.addr_string()])
        .access_log(AccessLogConfig {
            destination: Destination::File(path.clone()),
            format: Format::Json,
        })
        .start()
        .expect("proxy starts");
    let c = client();
    let r = c
        .post(format!("http://{}/a?x=1", proxy.addr()))
        .header("host", "h.test")
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&c, proxy.addr(), "/teapot", &[]).status, 418);
    let got = lines(&path, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    let first: serde_json::Value = serde_json::from_str(&got[0]).expect("a JSON line");
    let second: serde_json::Value = serde_json::from_str(&got[1]).expect("a JSON line");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["host"], "h.test");
    assert_eq!(first["path"], "/a?x=1");
    assert_eq!(first["status"], 200);
    assert_eq!(first["route"], "web");
    assert_eq!(first["cluster"], "web");
    assert_eq!(first["backend"], web.addr_string());
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["tries"], 1);
    assert_eq!(first["bytes_in"], 5);
    assert_eq!(first["bytes_out"], 3, "the backend's body: its name");
    assert!(first["upstream_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(first["total_ms"].as_f64() >= first["upstream_ms"].as_f64());
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(second["route"], "teapot");
    assert_eq!(second["status"], 418);
    assert_eq!(second["backend"], serde_json::Value::Null);
    assert_eq!(second["upstream_ms"], serde_json::Value::Null);

    // Rotation: move the file away, SIGUSR1, and the next lines go to a new file.
    let rotated = path.with_extension("json.1");
    std::fs::rename(&path, &rotated).unwrap();
    let pid = std::process::id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .unwrap()
        .success());
    // The writer reopens when its queue is idle; wait for the new file.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(path.exists(), "the log was reopened under its name");
    assert_eq!(get(&c, proxy.addr(), "/after", &[]).status, 200);
    let after = lines(&path, 1);
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(after[0].contains("\"path\":\"/after\""), "{after:?}");
    assert_eq!(lines(&rotated, 2).len(), 2, "the old file keeps its lines");
}

#[test]
fn access_log_in_logfmt() {
    let web = spawn_backend("web");
    let path = temp_log("access.logfmt");
    let proxy = Logged::builder()
        .backends("web", [web.addr_string()])
        .access_log(AccessLogConfig {
            destination: Destination::File(path.clone()),
            format: Format::Logfmt,
        })
        .start()
        .expect("proxy starts");
    assert_eq!(
        get(&client(), proxy.addr(), "/x%20y", &[("host", "h.test")]).status,
        200
    );
    let got = lines(&path, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    let rest = got[0].split_once(" client=").expect("a logfmt line").1;
    let want = format!(
        "127.0.0.1 method=GET host=h.test path=/x%20y status=200 route=web cluster=web backend={} tries=1 upstream_ms=",
        web.addr_string()
    );
    assert!(rest.starts_with(&want), "{rest}");
}

#[test]
fn routes_print_as_json() {
    let launch = proxy_runtime::Launch::<Observed>::default();
    let v: serde_json::Value =
        serde_json::from_str(&proxy_runtime::inspect::describe_json(&launch)).expect("JSON");
    assert_eq!(v["proxy"], "Observed");
    assert_eq!(v["routes"][3]["name"], "limited");
    assert_eq!(v["routes"][3]["target"], "b { limit: 1/m }");
    assert_eq!(v["routes"][3]["has_actions"], true);
    assert_eq!(v["clusters"][0]["name"], "a");
    assert_eq!(v["clusters"][0]["backends"][0]["addr"], "127.0.0.1:1");
    assert_eq!(v["forwarded_headers"], true);
}
