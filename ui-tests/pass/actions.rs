// Every route action (request and response header actions, `strip_prefix` and
// `add_prefix`, a regex rewrite with numbered and named groups, rate and body limits),
// redirects, the table settings (`trusted_proxies`, `forwarded_headers`, `via`) and a hooks
// type with an async method, started with `builder_with` (in a function never run).

use pingora_http::RequestHeader;
use proxy_runtime::hooks::{Answer, Flow, Hooks, Result, Session};
use proxy_runtime::spec::{HeaderAction, Key, PathRewrite, Piece};
use proxy_runtime::{Table, Target};

proxy_runtime::routes! {
    proxy Gateway(Auth);
    trusted_proxies: ["10.0.0.0/8", "::1/128"];
    forwarded_headers: on;
    via: "edge-1";

    cluster api {
        backends: ["127.0.0.1:9001"],
    }
    cluster web {
        backends: ["127.0.0.1:9002"],
    }

    let under_v2 = path_prefix("/v2");

    route v1: path_prefix("/v1") => api {
        strip_prefix: "/v1",
        add_prefix: "/internal",
        set_header("X-Tenant", "a"),
        append_header("x-tag", "b"),
        remove_header("cookie"),
        set_response_header("x-served-by", "edge"),
        append_response_header("cache-control", "no-store"),
        remove_response_header("server"),
        limit: 100/s by client_ip,
        max_body: 1mb,
    };
    // The prefix is guaranteed through a named predicate.
    route v2: under_v2 && method(GET) => api { strip_prefix: "/v2" };
    route legacy: path_prefix("/legacy") => api { add_prefix: "/old" };
    route users: path_regex("^/users/[0-9]+$") => api { rewrite("^/users/([0-9]+)$", "/u/$1") };
    route items: path_prefix("/items") => api { rewrite("^/items/(?<id>[0-9]+)$", "/i/${id}/$$") };
    route upload: path_prefix("/upload") => web { max_body: 64kb, limit: 5/m by cookie("sid") };
    route moved: path_prefix("/moved") => redirect(301, "/new{path}?{query}");
    route https: host("plain.example.com") => redirect(308, "https://{host}{uri}") {
        set_response_header("strict-transport-security", "max-age=63072000"),
        limit: 10/m by header("X-User"),
    };
    route braces: path("/braces") => redirect(302, "https://example.com/{{literal}}");
    route see_other: path("/form") => redirect(303, "/thanks");
    route temporary: path("/maintenance") => redirect(307, "http://status.example.com{path}");
    route teapot: path("/teapot") => respond(418, "I'm a teapot\n") {
        remove_response_header("server"),
        append_response_header("x-teapot", "yes"),
        limit: 1/s,
    };
    route default: _ => web;
}

/// Hooks with state: an API key checked on the `v1` rule. (`pub` so that this case tests
/// the actions: a private hooks type is `private-hooks-type.rs`.)
pub struct Auth {
    key: &'static str,
}

impl Hooks<Gateway> for Auth {
    async fn routed(&self, session: &mut Session, ctx: &mut GatewayCtx) -> Result<Flow> {
        if ctx.route != Some(GatewayRoute::V1) {
            return Ok(Flow::Continue);
        }
        let ok = session
            .req_header()
            .headers
            .get("x-api-key")
            .is_some_and(|k| k.as_bytes() == self.key.as_bytes());
        Ok(if ok {
            Flow::Continue
        } else {
            Flow::Answer(Answer::new(401).header("www-authenticate", "ApiKey").body("no key\n"))
        })
    }
}

/// Never run: the hooks value is given to the builder (`Auth` has no `Default`).
#[allow(dead_code)]
fn start() -> proxy_runtime::Handle {
    Gateway::builder_with(Auth { key: "secret" })
        .listen("127.0.0.1:0")
        .start()
        .unwrap()
}

fn req(path: &str, host: &str) -> RequestHeader {
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
    req.insert_header("host", host).unwrap();
    req
}

fn actions(route: GatewayRoute) -> &'static proxy_runtime::spec::Actions {
    Gateway::ROUTES[route as usize].actions.unwrap()
}

fn main() {
    use GatewayRoute::*;

    let d = Gateway::decide(&req("/v1/users", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(V1));
    assert_eq!(d.target, Target::Cluster(GatewayCluster::Api));
    let a = actions(V1);
    assert_eq!(
        a.request_headers,
        [
            HeaderAction::Set("x-tenant", "a"),
            HeaderAction::Append("x-tag", "b"),
            HeaderAction::Remove("cookie"),
        ]
    );
    assert_eq!(
        a.response_headers,
        [
            HeaderAction::Set("x-served-by", "edge"),
            HeaderAction::Append("cache-control", "no-store"),
            HeaderAction::Remove("server"),
        ]
    );
    assert_eq!(
        a.path,
        Some(PathRewrite::Prefix { strip: "/v1", add: "/internal" })
    );
    let limit = a.limit.unwrap();
    assert_eq!((limit.requests, limit.per.as_secs(), limit.by), (100, 1, Some(Key::ClientIp)));
    assert_eq!(a.max_body, Some(1 << 20));

    let d = Gateway::decide(&req("/v2/users", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(V2));
    assert_eq!(actions(V2).path, Some(PathRewrite::Prefix { strip: "/v2", add: "" }));
    assert_eq!(actions(Legacy).path, Some(PathRewrite::Prefix { strip: "", add: "/old" }));

    let d = Gateway::decide(&req("/users/42", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(Users));
    assert_eq!(
        actions(Users).path,
        Some(PathRewrite::Regex { pattern: "^/users/([0-9]+)$", replacement: "/u/$1" })
    );
    assert_eq!(
        actions(Items).path,
        Some(PathRewrite::Regex { pattern: "^/items/(?<id>[0-9]+)$", replacement: "/i/${id}/$$" })
    );

    let upload = actions(Upload);
    assert_eq!(upload.max_body, Some(64 << 10));
    let limit = upload.limit.unwrap();
    assert_eq!((limit.requests, limit.per.as_secs(), limit.by), (5, 60, Some(Key::Cookie("sid"))));

    let d = Gateway::decide(&req("/moved/a?b=1", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(Moved));
    let r = d.redirect().unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.location, [Piece::Text("/new"), Piece::Path, Piece::Text("?"), Piece::Query]);

    let d = Gateway::decide(&req("/", "plain.example.com"), None).unwrap();
    assert_eq!(d.route, Some(Https));
    let r = d.redirect().unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(r.location, [Piece::Text("https://"), Piece::Host, Piece::Uri]);
    let a = actions(Https);
    assert_eq!(
        a.response_headers,
        [HeaderAction::Set("strict-transport-security", "max-age=63072000")]
    );
    assert_eq!(a.limit.unwrap().by, Some(Key::Header("x-user")));

    let d = Gateway::decide(&req("/braces", "example.com"), None).unwrap();
    assert_eq!(
        d.redirect().unwrap().location,
        [Piece::Text("https://example.com/{literal}")]
    );
    let d = Gateway::decide(&req("/form", "example.com"), None).unwrap();
    assert_eq!(d.redirect().unwrap().status, 303);
    let d = Gateway::decide(&req("/maintenance", "example.com"), None).unwrap();
    assert_eq!(d.redirect().unwrap().status, 307);

    let d = Gateway::decide(&req("/teapot", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(Teapot));
    assert_eq!(d.response().unwrap().status, 418);
    assert_eq!(actions(Teapot).limit.unwrap().by, None);

    let d = Gateway::decide(&req("/", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(Default));
    assert!(Gateway::ROUTES[Default as usize].actions.is_none());

    assert_eq!(Gateway::TRUSTED_PROXIES.len(), 2);
    assert!(Gateway::TRUSTED_PROXIES[0].contains("10.1.2.3".parse().unwrap()));
    assert!(Gateway::TRUSTED_PROXIES[1].contains("::1".parse().unwrap()));
    assert!(!Gateway::TRUSTED_PROXIES[1].contains("::2".parse().unwrap()));
    assert!(Gateway::FORWARDING.x_forwarded);
    assert_eq!(Gateway::FORWARDING.via, Some("edge-1"));
}
