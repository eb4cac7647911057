// Every matcher: exact and wildcard hosts, path, path_prefix, path_regex, method, header /
// query / cookie with presence, `==`, `!=`, `.contains` and `.starts_with`, client_ip (IPv4
// and IPv6), the listener (`tls`, `port`), `_`, `&&`, `||`, `!`, parentheses and named predicates, one built on others.

use pingora_http::RequestHeader;
use std::net::IpAddr;

proxy_runtime::routes! {
    /// A table that uses every matcher.
    proxy Matchers;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }
    cluster web {
        backends: ["127.0.0.1:9002"],
    }

    /// Phones and tablets.
    let is_mobile = header("user-agent").contains("Mobile");
    /// Beta testers, by query or by cookie.
    let is_beta = query("beta") == "true" || cookie("beta") == "true";
    /// Both of the above.
    let mobile_beta = is_mobile && is_beta;

    route status: host("api.example.com") && path("/status") => api;
    route internal: host("*.internal.example.com") => api;
    route user: path_regex("^/users/[0-9]+$") && method(GET | HEAD) => api;
    route mobile_beta: mobile_beta => web;
    route json: header("accept") == "application/json" => api;
    route token: header("authorization").starts_with("Bearer ") => api;
    route debug: header("x-debug") && !path_prefix("/public") => api;
    route docs: (cookie("lang") == "fr" || cookie("lang").starts_with("de")) && path_prefix("/docs") => web;
    route search: query("q").contains("rust") => web;
    route tracked: query("utm_source") || cookie("tracking") => web;
    route intl: path_prefix("/intl") && query("lang") != "en" => web;
    route office_v4: client_ip("10.0.0.0/8") => api;
    route office_v6: client_ip("2001:db8::/32") => api;
    route api_prefix: path_prefix("/api") => api;
    route admin: tls && port(8443) && path_prefix("/admin") => api;
    route default: _ => web;
}

fn req(method: &str, path: &str, host: &str, headers: &[(&'static str, &str)]) -> RequestHeader {
    let mut req = RequestHeader::build(method, path.as_bytes(), None).unwrap();
    req.insert_header("host", host).unwrap();
    for (name, value) in headers {
        req.insert_header(*name, *value).unwrap();
    }
    req
}

fn route(req: &RequestHeader, client: Option<&str>) -> Option<MatchersRoute> {
    let client = client.map(|c| c.parse::<IpAddr>().unwrap());
    Matchers::decide(req, client).unwrap().route
}

fn main() {
    use MatchersRoute::*;

    let d = Matchers::decide(&req("GET", "/status", "api.example.com", &[]), None).unwrap();
    assert_eq!(d.route, Some(MatchersRoute::Status));
    assert_eq!(d.target, proxy_runtime::Target::Cluster(MatchersCluster::Api));
    // The host is matched without its port and case-insensitively.
    assert_eq!(route(&req("GET", "/status", "API.Example.com:8443", &[]), None), Some(Status));
    assert_eq!(route(&req("GET", "/status/x", "api.example.com", &[]), None), Some(Default));

    assert_eq!(route(&req("GET", "/", "db.internal.example.com", &[]), None), Some(Internal));
    assert_eq!(route(&req("GET", "/", "internal.example.com", &[]), None), Some(Default));

    assert_eq!(route(&req("GET", "/users/42", "example.com", &[]), None), Some(User));
    assert_eq!(route(&req("HEAD", "/users/42", "example.com", &[]), None), Some(User));
    assert_eq!(route(&req("POST", "/users/42", "example.com", &[]), None), Some(Default));
    assert_eq!(route(&req("GET", "/users/me", "example.com", &[]), None), Some(Default));

    let phone = [("user-agent", "Foo/1.0 (Mobile)")];
    let d = Matchers::decide(&req("GET", "/?beta=true", "example.com", &phone), None).unwrap();
    assert_eq!(d.route, Some(MobileBeta));
    assert!(d.predicates.is_mobile && d.predicates.is_beta && d.predicates.mobile_beta);
    let beta_cookie = [("user-agent", "Mobile"), ("cookie", "a=1; beta=true")];
    assert_eq!(route(&req("GET", "/", "example.com", &beta_cookie), None), Some(MobileBeta));
    let d = Matchers::decide(&req("GET", "/", "example.com", &phone), None).unwrap();
    assert_eq!(d.route, Some(Default));
    assert!(d.predicates.is_mobile && !d.predicates.is_beta && !d.predicates.mobile_beta);

    let json = [("accept", "application/json")];
    assert_eq!(route(&req("GET", "/", "example.com", &json), None), Some(Json));
    let bearer = [("authorization", "Bearer abc")];
    assert_eq!(route(&req("GET", "/", "example.com", &bearer), None), Some(Token));
    let basic = [("authorization", "Basic abc")];
    assert_eq!(route(&req("GET", "/", "example.com", &basic), None), Some(Default));

    let debug = [("x-debug", "1")];
    assert_eq!(route(&req("GET", "/private", "example.com", &debug), None), Some(Debug));
    assert_eq!(route(&req("GET", "/public/a", "example.com", &debug), None), Some(Default));

    let fr = [("cookie", "lang=fr")];
    let de = [("cookie", "lang=de-AT")];
    assert_eq!(route(&req("GET", "/docs/intro", "example.com", &fr), None), Some(Docs));
    assert_eq!(route(&req("GET", "/docs/intro", "example.com", &de), None), Some(Docs));
    assert_eq!(route(&req("GET", "/blog", "example.com", &fr), None), Some(Default));

    assert_eq!(route(&req("GET", "/find?q=rustacean", "example.com", &[]), None), Some(Search));
    assert_eq!(route(&req("GET", "/?utm_source=mail", "example.com", &[]), None), Some(Tracked));
    let tracking = [("cookie", "tracking=1")];
    assert_eq!(route(&req("GET", "/", "example.com", &tracking), None), Some(Tracked));

    assert_eq!(route(&req("GET", "/intl?lang=fr", "example.com", &[]), None), Some(Intl));
    assert_eq!(route(&req("GET", "/intl", "example.com", &[]), None), Some(Intl));
    assert_eq!(route(&req("GET", "/intl?lang=en", "example.com", &[]), None), Some(Default));

    assert_eq!(route(&req("GET", "/", "example.com", &[]), Some("10.1.2.3")), Some(OfficeV4));
    assert_eq!(route(&req("GET", "/", "example.com", &[]), Some("2001:db8::1")), Some(OfficeV6));
    assert_eq!(route(&req("GET", "/", "example.com", &[]), Some("192.0.2.1")), Some(Default));

    assert_eq!(route(&req("GET", "/api/users", "example.com", &[]), None), Some(ApiPrefix));
    assert_eq!(route(&req("GET", "/api", "example.com", &[]), None), Some(ApiPrefix));
    assert_eq!(route(&req("GET", "/apiary", "example.com", &[]), None), Some(Default));

    assert_eq!(MatchersRoute::ALL.len(), 16);
    assert_eq!(MatchersRoute::ApiPrefix.name(), "api_prefix");
    let admin = req("GET", "/admin/x", "a.test", &[]);
    let at = |tls, port| proxy_runtime::Arrival { tls, port };
    assert_eq!(Matchers::decide_at(&admin, None, at(true, 8443)).unwrap().route, Some(Admin));
    assert_eq!(Matchers::decide_at(&admin, None, at(false, 8443)).unwrap().route, Some(Default));
    assert_eq!(Matchers::decide_at(&admin, None, at(true, 443)).unwrap().route, Some(Default));
}
