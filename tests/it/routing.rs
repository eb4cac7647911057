//! Requests reach the cluster their rule names, through a real proxy.

use crate::support::*;

proxy_runtime::routes! {
    proxy Routing;

    cluster api { backends: ["127.0.0.1:1"] }
    cluster api_v2 { backends: ["127.0.0.1:1"] }
    cluster web { backends: ["127.0.0.1:1"] }
    cluster admin { backends: ["127.0.0.1:1"] }

    let is_mobile = header("user-agent").contains("Mobile");

    route v2:      host("api.example.com") && path_prefix("/v2") => api_v2;
    route api:     host("api.example.com")                       => api;
    route admin:   path_prefix("/admin")                         => admin;
    route blocked: path_prefix("/blocked")                       => respond(403, "blocked\n");
    route mobile:  is_mobile                                     => api_v2;
    route default: _                                             => web;
}

fn start() -> (Vec<Backend>, proxy_runtime::Handle) {
    let backends: Vec<Backend> = ["api", "api_v2", "web", "admin"]
        .iter()
        .map(|n| spawn_backend(n))
        .collect();
    let mut b = Routing::builder();
    for be in &backends {
        b = b.backends(be.name(), [be.addr_string()]);
    }
    (backends, b.start().expect("proxy starts"))
}

#[test]
fn rules_pick_clusters_in_order() {
    let (_backends, proxy) = start();
    let c = client();
    // (path, headers, expected backend) — each row one behaviour.
    let cases: &[(&str, &[(&str, &str)], &str)] = &[
        ("/v2/users", &[("host", "api.example.com")], "api_v2"),
        // Host matching ignores case and the port.
        ("/v2/users", &[("host", "API.Example.COM:8080")], "api_v2"),
        // A segment-aware prefix: /v2x is not under /v2.
        ("/v2x", &[("host", "api.example.com")], "api"),
        ("/v1/users", &[("host", "api.example.com")], "api"),
        ("/admin/x", &[("host", "www.example.com")], "admin"),
        ("/", &[("user-agent", "Foo Mobile Safari")], "api_v2"),
        ("/", &[("host", "www.example.com")], "web"),
        ("/anything", &[], "web"),
    ];
    for (path, headers, want) in cases {
        let a = get(&c, proxy.addr(), path, headers);
        assert_eq!(
            (a.status, a.backend.as_str()),
            (200, *want),
            "GET {path} {headers:?}"
        );
        assert_eq!(a.path, *path, "the backend receives the path as sent");
    }
}

#[test]
fn respond_target_answers_without_a_backend() {
    let (backends, proxy) = start();
    let a = get(&client(), proxy.addr(), "/blocked/x", &[]);
    assert_eq!(
        (a.status, a.backend.as_str(), a.body.as_str()),
        (403, "", "blocked\n")
    );
    assert!(
        backends.iter().all(|b| b.hits() == 0),
        "no backend was asked"
    );
}

#[test]
fn dot_segments_cannot_slip_past_a_rule_and_the_original_path_is_forwarded() {
    let (_backends, proxy) = start();
    for target in [
        "/static/../admin/x",
        "/static/%2e%2e/admin/x",
        "//admin/x",
        "/%61dmin/x",
    ] {
        let resp = raw(
            proxy.addr(),
            &format!("GET {target} HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"),
        );
        assert!(resp.starts_with("HTTP/1.1 200"), "{target}: {resp}");
        assert!(
            resp.contains("x-backend: admin"),
            "{target} must reach the admin cluster: {resp}"
        );
        assert!(
            resp.contains(&format!("x-path: {target}")),
            "{target} is forwarded as sent: {resp}"
        );
    }
}

#[test]
fn malformed_requests_get_4xx() {
    let (_backends, proxy) = start();
    let long = format!("/a/../{}", "x".repeat(5000));
    let resp = raw(
        proxy.addr(),
        &format!("GET {long} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    );
    assert!(
        resp.starts_with("HTTP/1.1 414"),
        "{}",
        &resp[..resp.len().min(200)]
    );
    let resp = raw(
        proxy.addr(),
        "GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
}
