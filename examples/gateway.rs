// cargo run --example gateway
// curl -i -H 'Host: api.example.com' 127.0.0.1:6188/v1/users
//
// The README's table, with every feature of the language: weighted backends, every
// balancer, TCP and HTTP health checks, retries, a backup cluster, timeouts, TLS options,
// named predicates, all matchers and combinators, splits and fixed responses. Its
// backends run locally (`switchyard::run_example`); the TLS cluster `secure` is declared
// to show the syntax and only the `/secure` route uses it.

proxy_runtime::routes! {
    /// The public gateway of the README.
    proxy Gateway;

    /// API servers; the second takes five requests for every one of the first.
    cluster api {
        backends: ["127.0.0.1:9301", "127.0.0.1:9302" weight 5],
        balance: round_robin,
        health: tcp { every: 5s, fall: 3, rise: 2 },
        retries: 2,
        backup: api_dr,
        timeouts: { connect: 1s, total_connect: 3s, read: 30s, write: 30s, idle: 60s },
    }
    /// Disaster recovery for `api`.
    cluster api_dr { backends: ["127.0.0.1:9309"] }
    /// The website.
    cluster web {
        backends: ["127.0.0.1:9311" weight 10, "127.0.0.1:9312" weight 5],
        balance: random,
        health: http { path: "/healthz", host: "www.example.com", expect: 200, every: 5s },
    }
    /// The mobile site.
    cluster mobile { backends: ["127.0.0.1:9321"], balance: hash(header("user-agent")) }
    /// Session-sticky application servers.
    cluster sessions {
        backends: ["127.0.0.1:9331", "127.0.0.1:9332", "127.0.0.1:9333"],
        balance: consistent(cookie("session_id")),
    }
    /// The shop, and its canary.
    cluster shop    { backends: ["127.0.0.1:9341"], balance: consistent(client_ip) }
    cluster shop_v2 { backends: ["127.0.0.1:9342"], balance: hash(path) }
    /// An upstream spoken to over TLS (not running in this example).
    cluster secure {
        backends: ["127.0.0.1:9351"],
        tls: { sni: "secure.internal", verify: true, verify_hostname: true, alternative_cn: "secure", alpn: h2_h1 },
        balance: consistent(host),
    }

    /// Phones and tablets.
    let is_mobile = header("user-agent").contains("Mobile") || header("user-agent").contains("Android");
    /// Beta testers, by query or by cookie.
    let is_beta   = query("beta") == "true" || cookie("beta") == "true";
    /// Internal traffic.
    let internal  = client_ip("10.0.0.0/8") || client_ip("fd00::/8");

    /// Version 1 of the API.
    route api:     host("api.example.com") && path_prefix("/v1")   => api;
    /// User pages, by numeric id.
    route users:   path_regex("^/users/[0-9]+$")                   => api;
    route mobile:  host("www.example.com") && is_mobile            => mobile;
    route app:     path_prefix("/app") && method(GET | HEAD)       => sessions;
    route beta:    is_beta && !header("x-no-beta")                 => split { web: 1, mobile: 1 };
    route canary:  host("shop.example.com") => split { shop_v2: 5, shop: 95 } by cookie("uid");
    route wild:    host("*.shop.example.com") && query("ref").starts_with("ad") => shop;
    route secure:  path("/secure")                                 => secure;
    route admin:   path_prefix("/admin") && !(internal || header("x-admin-token") == "letmein") => respond(403, "forbidden\n");
    route default: _                                               => web;
}

fn main() {
    switchyard::run_example::<Gateway>()
}
