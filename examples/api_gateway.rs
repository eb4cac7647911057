// cargo run --example api_gateway
// curl -i -H 'Host: api.example.com' '127.0.0.1:6188/v1/users/7?fields=name'
//
// An API gateway in front of services that know nothing of the public URL scheme: the
// version prefix is stripped and the services' own prefix added, the tenant header set,
// cookies kept from the backends, a search route rate-limited per client, old URLs
// rewritten, plain-HTTP web traffic redirected to HTTPS, and a health answer in JSON.
// Every action is checked when this file compiles: `strip_prefix: "/v1"` on a rule whose
// matcher does not guarantee `/v1` is a compile error.
//
// curl -i -H 'Host: www.example.com' '127.0.0.1:6188/pricing?plan=pro'  # 308 to https://
// curl -i '127.0.0.1:6188/healthz'                                      # JSON, no backend
// for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code} ' \
//     -H 'Host: api.example.com' 127.0.0.1:6188/v1/search?q=x; done    # 200 x10, then 429

proxy_runtime::routes! {
    /// The public API gateway.
    proxy ApiGateway;

    // The L4 balancer in front (10.0.0.0/8) says who the client is in X-Forwarded-For;
    // nobody else is believed.
    trusted_proxies: ["10.0.0.0/8"];
    via: "switchyard";

    /// The users service serves `/api/users/..`.
    cluster users { backends: ["127.0.0.1:9501", "127.0.0.1:9502"] }
    /// The search service serves `/search`.
    cluster search { backends: ["127.0.0.1:9511"] }
    /// The website.
    cluster web { backends: ["127.0.0.1:9521"] }

    route health: path("/healthz")
        => respond(200, "{\"status\":\"ok\"}\n") { set_response_header("content-type", "application/json") };
    route www: host("www.example.com") => redirect(308, "https://{host}{uri}");
    route search: host("api.example.com") && path_prefix("/v1/search") => search {
        strip_prefix: "/v1",
        limit: 10/s by client_ip,
        set_header("x-api-version", "1"),
    };
    route users: host("api.example.com") && path_prefix("/v1/users") => users {
        strip_prefix: "/v1",
        add_prefix: "/api",
        set_header("x-api-version", "1"),
        remove_header("cookie"),
        max_body: 64kb,
        set_response_header("x-content-type-options", "nosniff"),
        remove_response_header("x-powered-by"),
    };
    // Links from the old site: /user.php/7 → /api/users/7.
    route legacy: host("api.example.com") && path_regex("^/user\\.php/[0-9]+$") => users {
        rewrite("^/user\\.php/([0-9]+)$", "/api/users/$1"),
    };
    route default: _ => web;
}

fn main() {
    switchyard::run_example::<ApiGateway>();
}
