//! The README's table (examples/gateway.rs) routes as documented.

#[path = "../../examples/gateway.rs"]
#[allow(dead_code)]
mod example;

use crate::support::*;
use example::{Gateway, GatewayRoute as R};
use pingora_http::RequestHeader;

fn route(method: &str, path: &str, headers: &[(&str, &str)], client: Option<&str>) -> Option<R> {
    let mut r = RequestHeader::build(method, path.as_bytes(), None).unwrap();
    for (k, v) in headers {
        r.append_header(k.to_string(), *v).unwrap();
    }
    Gateway::decide(&r, client.map(|c| c.parse().unwrap()))
        .unwrap()
        .route
}

#[test]
fn the_documented_table_routes_as_documented() {
    let cases: &[(&str, &str, &[(&str, &str)], Option<&str>, R)] = &[
        (
            "GET",
            "/v1/users",
            &[("host", "api.example.com")],
            None,
            R::Api,
        ),
        (
            "GET",
            "/users/7",
            &[("host", "api.example.com")],
            None,
            R::Users,
        ),
        (
            "GET",
            "/",
            &[("host", "www.example.com"), ("user-agent", "Android 14")],
            None,
            R::Mobile,
        ),
        ("HEAD", "/app/x", &[], None, R::App),
        ("POST", "/app/x", &[], None, R::Default),
        ("GET", "/?beta=true", &[], None, R::Beta),
        (
            "GET",
            "/?beta=true",
            &[("x-no-beta", "1")],
            None,
            R::Default,
        ),
        ("GET", "/", &[("host", "shop.example.com")], None, R::Canary),
        (
            "GET",
            "/?ref=adwords",
            &[("host", "eu.shop.example.com")],
            None,
            R::Wild,
        ),
        ("GET", "/secure", &[], None, R::Secure),
        ("GET", "/admin", &[], Some("192.0.2.1"), R::Admin),
        ("GET", "/admin", &[], Some("10.1.1.1"), R::Default),
        (
            "GET",
            "/admin",
            &[("x-admin-token", "letmein")],
            Some("192.0.2.1"),
            R::Default,
        ),
        ("GET", "/anything", &[], None, R::Default),
    ];
    for (method, path, headers, client, want) in cases {
        assert_eq!(
            route(method, path, headers, *client),
            Some(*want),
            "{method} {path} {headers:?} {client:?}"
        );
    }
}

#[test]
fn the_documented_table_serves_through_a_proxy() {
    let (a1, a2, web) = (
        spawn_backend("api-1"),
        spawn_backend("api-2"),
        spawn_backend("web"),
    );
    let proxy = Gateway::builder()
        .backends(
            "api",
            [format!("{}@1", a1.addr()), format!("{}@5", a2.addr())],
        )
        .backends("web", [web.addr_string()])
        .start()
        .expect("proxy starts");
    let c = client();
    let counts = (0..60).fold(std::collections::BTreeMap::new(), |mut m, _| {
        let a = get(
            &c,
            proxy.addr(),
            "/v1/users",
            &[("host", "api.example.com")],
        );
        *m.entry(a.backend).or_insert(0) += 1;
        m
    });
    assert_eq!(
        (counts.get("api-1"), counts.get("api-2")),
        (Some(&10), Some(&50)),
        "{counts:?}"
    );
    let a = get(&c, proxy.addr(), "/admin", &[]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (403, "forbidden\n"),
        "loopback is not internal"
    );
    assert_eq!(get(&c, proxy.addr(), "/", &[]).backend, "web");
}
