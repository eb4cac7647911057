//! Switchyard's integration tests: real backends, real Pingora proxies and a real HTTP
//! client on loopback, all in one test binary.

// Table-driven cases (path, headers, expected backend) read best as inline tuples.
#![allow(clippy::type_complexity)]

mod actions;
mod alloc;
mod balancing;
mod cli;
mod conformance;
mod decide;
mod deploy;
mod dns;
mod examples;
mod failures;
mod fuzz;
mod gateway;
mod grpc;
mod health;
mod hooks;
mod lifecycle;
mod observe;
mod pki;
mod routing;
mod support;
mod tls;
mod websocket;

/// A table that uses every kind of matcher, shared by the allocation test.
mod decide_table {
    use pingora_http::RequestHeader;
    use std::net::IpAddr;

    proxy_runtime::routes! {
        proxy Mixed;
        cluster a { backends: ["127.0.0.1:1"] }
        cluster b { backends: ["127.0.0.1:1"] }
        let mobile = header("user-agent").contains("Mobile");
        route api:    host("api.example.com") && path_prefix("/v2") => a;
        route wild:   host("*.example.org") => b;
        route users:  path_regex("^/users/[0-9]+$") => a;
        route beta:   query("beta") == "true" || cookie("beta").starts_with("t") => b;
        route mob:    mobile && method(GET | HEAD) => a;
        route inside: client_ip("10.0.0.0/8") => a;
        route canary: path_prefix("/shop") => split { a: 5, b: 95 } by cookie("uid");
        route default: _ => b;
    }

    pub fn mix() -> Vec<(RequestHeader, Option<IpAddr>)> {
        let build = |path: &str, headers: &[(&str, &str)], client: Option<&str>| {
            let mut r = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
            for (k, v) in headers {
                r.append_header(k.to_string(), *v).unwrap();
            }
            (r, client.map(|c| c.parse().unwrap()))
        };
        vec![
            build("/v2/x", &[("host", "api.example.com")], None),
            build("/v2/x", &[("host", "API.Example.com:8080")], None),
            build("/", &[("host", "a.example.org")], None),
            build("/users/17", &[("host", "x")], None),
            build("/static/../users/17", &[], None),
            build("/?a=1&beta=true", &[], None),
            build("/", &[("cookie", "x=1; beta=true")], None),
            build("/", &[("user-agent", "Mobile Safari")], None),
            build("/", &[], Some("10.1.2.3")),
            build("/shop/cart", &[("cookie", "uid=7")], None),
            build("/%61nything", &[], None),
            build("/anything", &[], None),
        ]
    }
}
mod upstream;
