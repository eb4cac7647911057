//! Route actions, redirects and forwarding headers through real sockets: what the backend
//! received (path, headers, body) and what the client got. The API gateway example is
//! tested as `cargo run --example api_gateway` serves it.

use crate::support::*;
use reqwest::blocking::{Client, Response};
use std::net::SocketAddr;

#[path = "../../examples/api_gateway.rs"]
#[allow(dead_code)]
mod api_gateway;

fn send(c: &Client, proxy: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = c.get(format!("http://{proxy}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().expect("request through the proxy")
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("text header").to_owned())
}

struct Gateway {
    proxy: proxy_runtime::Handle,
    users: Backend,
    search: Backend,
    web: Backend,
}

fn gateway() -> Gateway {
    let (users, search, web) = (
        spawn_backend("users-1"),
        spawn_backend("search-1"),
        spawn_backend("web-1"),
    );
    let proxy = api_gateway::ApiGateway::builder()
        .backends("users", [users.addr_string()])
        .backends("search", [search.addr_string()])
        .backends("web", [web.addr_string()])
        .start()
        .expect("proxy starts");
    Gateway {
        proxy,
        users,
        search,
        web,
    }
}

const API: (&str, &str) = ("host", "api.example.com");

#[test]
fn prefixes_are_stripped_and_added_and_request_headers_set() {
    let g = gateway();
    let c = no_redirects();
    // (path sent, path the users service receives)
    let cases = [
        ("/v1/users/7?fields=name", "/api/users/7?fields=name"),
        ("/v1/users", "/api/users"),
        // Routing and the rewrite work on the normalized path.
        ("/v1/./users/../users/9", "/api/users/9"),
    ];
    for (sent, received) in cases {
        let r = send(
            &c,
            g.proxy.addr(),
            sent,
            &[API, ("cookie", "sid=1"), ("x-api-version", "0")],
        );
        assert_eq!(r.status(), 200, "{sent}");
        assert_eq!(
            header(&r, "x-backend").as_deref(),
            Some("users-1"),
            "{sent}"
        );
        assert_eq!(header(&r, "x-path").as_deref(), Some(received), "{sent}");
        // set_header replaces what the client sent; remove_header drops it.
        assert_eq!(header(&r, "x-req-x-api-version").as_deref(), Some("1"));
        assert_eq!(header(&r, "x-req-cookie"), None, "the cookie is removed");
        // Response-header actions.
        assert_eq!(
            header(&r, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }
    // `/v1/usersx` is not under `/v1/users`: the default route, path untouched.
    let r = send(&c, g.proxy.addr(), "/v1/usersx", &[API]);
    assert_eq!(header(&r, "x-backend").as_deref(), Some("web-1"));
    assert_eq!(header(&r, "x-path").as_deref(), Some("/v1/usersx"));
    assert_eq!(
        header(&r, "x-content-type-options"),
        None,
        "actions are per rule"
    );
}

#[test]
fn regex_rewrites_replace_the_path_with_groups() {
    let g = gateway();
    let c = no_redirects();
    let r = send(&c, g.proxy.addr(), "/user.php/42?x=1", &[API]);
    assert_eq!(header(&r, "x-backend").as_deref(), Some("users-1"));
    assert_eq!(header(&r, "x-path").as_deref(), Some("/api/users/42?x=1"));
    // The rule does not match other paths: they keep theirs.
    let r = send(&c, g.proxy.addr(), "/user.php/x", &[API]);
    assert_eq!(header(&r, "x-backend").as_deref(), Some("web-1"));
    assert_eq!(header(&r, "x-path").as_deref(), Some("/user.php/x"));
}

#[test]
fn redirects_fill_their_template_and_keep_the_connection() {
    let g = gateway();
    let c = no_redirects();
    let r = send(
        &c,
        g.proxy.addr(),
        "/pricing?plan=pro",
        &[("host", "WWW.example.com:8080")],
    );
    assert_eq!(r.status(), 308);
    assert_eq!(
        header(&r, "location").as_deref(),
        Some("https://www.example.com/pricing?plan=pro")
    );
    assert_eq!(g.web.hits(), 0, "a redirect reaches no backend");
    // Two requests on one connection: the redirect does not close it.
    let answer = raw(
        g.proxy.addr(),
        "GET /a HTTP/1.1\r\nHost: www.example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.matches("HTTP/1.1 308").count(), 2, "{answer}");
    assert!(
        answer.contains("location: https://www.example.com/b")
            || answer.contains("Location: https://www.example.com/b"),
        "{answer}"
    );
}

#[test]
fn respond_carries_its_response_headers() {
    let g = gateway();
    let r = send(&no_redirects(), g.proxy.addr(), "/healthz", &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(r.text().unwrap(), "{\"status\":\"ok\"}\n");
    assert_eq!(g.users.hits() + g.search.hits() + g.web.hits(), 0);
}

#[test]
fn a_rate_limited_route_answers_429_per_client_past_its_rate() {
    let g = gateway();
    let c = no_redirects();
    // 10/s by client_ip; the proxy trusts 10.0.0.0/8, not loopback, so every request here
    // is from 127.0.0.1 whatever it claims.
    let mut statuses = Vec::new();
    for i in 0..14 {
        let spoof = format!("10.9.9.{i}");
        let r = send(
            &c,
            g.proxy.addr(),
            "/v1/search?q=x",
            &[API, ("x-forwarded-for", &spoof)],
        );
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
        } else {
            assert_eq!(header(&r, "x-path").as_deref(), Some("/search?q=x"));
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    // Within one second at most 10 pass; a window boundary may let a few more through.
    assert!((10..14).contains(&ok), "{statuses:?}");
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        g.search.hits(),
        ok as u64,
        "refused requests never reach the backend"
    );
    // Other routes are not limited.
    for _ in 0..12 {
        assert_eq!(
            send(&c, g.proxy.addr(), "/v1/users/1", &[API]).status(),
            200
        );
    }
}

#[test]
fn bodies_over_max_body_get_413_before_the_backend_sees_them() {
    let g = gateway();
    let c = no_redirects();
    let url = format!("http://{}/v1/users", g.proxy.addr());
    let small = c
        .post(&url)
        .header("host", "api.example.com")
        .body(vec![b'x'; 1000])
        .send()
        .unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(header(&small, "x-body-len").as_deref(), Some("1000"));
    let hits = g.users.hits();
    // 64kb + 1, announced by Content-Length: refused before reading it.
    let big = c
        .post(&url)
        .header("host", "api.example.com")
        .body(vec![b'x'; 65_537])
        .send()
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(g.users.hits(), hits, "the backend never saw the large body");
    // The same, chunked: counted as it streams, refused once over.
    let chunked = format!(
        "POST /v1/users HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        40_000,
        "y".repeat(40_000),
        40_000,
        "y".repeat(40_000)
    );
    let answer = raw(g.proxy.addr(), &chunked);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(200)]
    );
}

mod tables {
    proxy_runtime::routes! {
        proxy Untrusting;
        cluster inside { backends: ["127.0.0.1:1"] }
        cluster outside { backends: ["127.0.0.1:1"] }
        route inside: client_ip("10.0.0.0/8") => inside;
        route outside: _ => outside;
    }

    proxy_runtime::routes! {
        proxy Trusting;
        trusted_proxies: ["127.0.0.0/8"];
        cluster inside { backends: ["127.0.0.1:1"] }
        cluster outside { backends: ["127.0.0.1:1"] }
        route limited: path("/limited") => outside { limit: 2/m by client_ip };
        route inside: client_ip("10.0.0.0/8") => inside;
        route outside: _ => outside;
    }

    proxy_runtime::routes! {
        proxy Redirector;
        cluster web { backends: ["127.0.0.1:1"] }
        route old: path_prefix("/old") => redirect(301, "/new{path}?from={{old}}&{query}");
        route all: _ => redirect(302, "https://{host}{uri}");
    }

    proxy_runtime::routes! {
        proxy Quiet;
        forwarded_headers: off;
        via: "edge-test";
        cluster web { backends: ["127.0.0.1:1"] }
        route all: _ => web;
    }
}

fn start<T>(inside: &Backend, outside: &Backend) -> proxy_runtime::Handle
where
    T: proxy_runtime::Table<Hooks = proxy_runtime::NoHooks>,
{
    proxy_runtime::Builder::<T>::default()
        .backends("inside", [inside.addr_string()])
        .backends("outside", [outside.addr_string()])
        .start()
        .expect("proxy starts")
}

#[test]
fn an_untrusted_client_cannot_spoof_its_address() {
    let (inside, outside) = (spawn_backend("inside"), spawn_backend("outside"));
    let proxy = start::<tables::Untrusting>(&inside, &outside);
    let r = send(
        &client(),
        proxy.addr(),
        "/x",
        &[
            ("x-forwarded-for", "10.1.2.3"),
            ("host", "h.test"),
            ("x-forwarded-proto", "https"),
        ],
    );
    assert_eq!(
        header(&r, "x-backend").as_deref(),
        Some("outside"),
        "client_ip sees the peer"
    );
    // The backend gets the peer, not the claim.
    assert_eq!(
        header(&r, "x-req-x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        header(&r, "x-req-x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        header(&r, "x-req-x-forwarded-host").as_deref(),
        Some("h.test")
    );
    assert_eq!(header(&r, "x-req-via"), None);
}

#[test]
fn a_trusted_proxy_supplies_the_client_address_for_rules_and_limits() {
    let (inside, outside) = (spawn_backend("inside"), spawn_backend("outside"));
    let proxy = start::<tables::Trusting>(&inside, &outside);
    let c = client();
    let r = send(
        &c,
        proxy.addr(),
        "/x",
        &[
            ("x-forwarded-for", "203.0.113.5, 10.1.2.3"),
            ("x-forwarded-proto", "https"),
        ],
    );
    assert_eq!(
        header(&r, "x-backend").as_deref(),
        Some("inside"),
        "client_ip sees 10.1.2.3"
    );
    assert_eq!(
        header(&r, "x-req-x-forwarded-for").as_deref(),
        Some("203.0.113.5, 10.1.2.3, 127.0.0.1"),
        "a trusted peer's chain is kept and the peer appended"
    );
    assert_eq!(
        header(&r, "x-req-x-forwarded-proto").as_deref(),
        Some("https")
    );
    // The limit counts the client the trusted proxy names: 2 per minute each.
    let status = |xff: &str| {
        send(&c, proxy.addr(), "/limited", &[("x-forwarded-for", xff)])
            .status()
            .as_u16()
    };
    assert_eq!(
        [
            status("198.51.100.1"),
            status("198.51.100.1"),
            status("198.51.100.1")
        ],
        [200, 200, 429]
    );
    assert_eq!(
        status("198.51.100.2"),
        200,
        "another client has its own count"
    );
}

#[test]
fn forwarding_headers_can_be_turned_off_and_via_added() {
    let web = spawn_backend("web");
    let proxy = proxy_runtime::Builder::<tables::Quiet>::default()
        .backends("web", [web.addr_string()])
        .start()
        .expect("proxy starts");
    let r = send(
        &client(),
        proxy.addr(),
        "/",
        &[("x-forwarded-for", "6.6.6.6")],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-req-x-forwarded-for").as_deref(),
        Some("6.6.6.6"),
        "left as sent"
    );
    assert_eq!(header(&r, "x-req-x-forwarded-proto"), None);
    assert_eq!(header(&r, "x-req-via").as_deref(), Some("1.1 edge-test"));
}

#[test]
fn explain_and_routes_show_actions_and_redirects() {
    let explained = proxy_runtime::inspect::explain::<api_gateway::ApiGateway>(
        "GET http://www.example.com/pricing?plan=pro",
        &[],
        None,
    )
    .unwrap();
    assert!(
        explained.contains("target: redirect(308) to https://www.example.com/pricing?plan=pro"),
        "{explained}"
    );
    let launch = proxy_runtime::Launch::<api_gateway::ApiGateway>::default();
    let routes = proxy_runtime::inspect::describe(&launch);
    assert!(
        routes.contains(r#"search { strip_prefix: "/v1", limit: 10/s by client_ip, set_header("x-api-version", "1") }"#),
        "{routes}"
    );
}

#[test]
fn redirect_templates_fill_each_variable_and_need_a_host_for_host() {
    let web = spawn_backend("web");
    let proxy = proxy_runtime::Builder::<tables::Redirector>::default()
        .backends("web", [web.addr_string()])
        .start()
        .expect("proxy starts");
    let c = no_redirects();
    let r = send(&c, proxy.addr(), "/old/a%20b?x=1", &[]);
    assert_eq!(r.status(), 301);
    assert_eq!(
        header(&r, "location").as_deref(),
        Some("/new/old/a%20b?from={old}&x=1")
    );
    let r = send(&c, proxy.addr(), "/p", &[("host", "Example.COM:80")]);
    assert_eq!(
        (r.status().as_u16(), header(&r, "location")),
        (302, Some("https://example.com/p".to_owned()))
    );
    // HTTP/1.0 may come without a Host: `{host}` cannot be filled, so 400, not `https:///p`.
    let answer = raw(proxy.addr(), "GET /p HTTP/1.0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("request without Host header"), "{answer}");
    assert_eq!(web.hits(), 0);
}
