// Every target (a cluster, a split with and without `by KEY`, a fixed response) and every
// balancer and hashing key.

use pingora_http::RequestHeader;
use proxy_runtime::{Response, Target};

proxy_runtime::routes! {
    proxy Targets;

    cluster rr {
        backends: ["127.0.0.1:9001", "127.0.0.1:9002" weight 3],
        balance: round_robin,
    }
    cluster rnd {
        backends: ["127.0.0.1:9003", "127.0.0.1:9004"],
        balance: random,
    }
    cluster by_cookie {
        backends: ["127.0.0.1:9005", "127.0.0.1:9006"],
        balance: consistent(cookie("session_id")),
    }
    cluster by_header {
        backends: ["127.0.0.1:9007", "127.0.0.1:9008"],
        balance: consistent(header("x-user")),
    }
    cluster by_query {
        backends: ["127.0.0.1:9009", "127.0.0.1:9010"],
        balance: consistent(query("user")),
    }
    cluster by_ip {
        backends: ["127.0.0.1:9011", "127.0.0.1:9012"],
        balance: consistent(client_ip),
    }
    cluster by_path {
        backends: ["127.0.0.1:9013", "127.0.0.1:9014"],
        balance: consistent(path),
    }
    cluster by_host {
        backends: ["127.0.0.1:9015", "127.0.0.1:9016"],
        balance: consistent(host),
    }
    cluster hashed {
        backends: ["127.0.0.1:9017", "[::1]:9018"],
        balance: hash(cookie("sid")),
    }
    cluster hashed_ip {
        backends: ["127.0.0.1:9019", "127.0.0.1:9020"],
        balance: hash(client_ip),
    }

    route canary: path_prefix("/app") => split { by_cookie: 5, rr: 95 } by cookie("session_id");
    route ab: path_prefix("/shop") => split { by_header: 1, by_query: 1 };
    route sticky: path_prefix("/cart") => split { rnd: 1, hashed: 1, hashed_ip: 2 } by client_ip;
    route teapot: path("/teapot") => respond(418, "I'm a teapot\n");
    route gone: path_prefix("/old") => respond(410, "gone");
    route by_ip: path_prefix("/ip") => by_ip;
    route by_path: path_prefix("/files") => by_path;
    route by_host: host("*.tenants.example.com") => by_host;
    route default: _ => rr;
}

fn req(path: &str, host: &str) -> RequestHeader {
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
    req.insert_header("host", host).unwrap();
    req
}

fn main() {
    let d = Targets::decide(&req("/app/home", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::Canary));
    assert!(matches!(d.target, Target::Split(_)));

    let d = Targets::decide(&req("/shop", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::Ab));
    assert!(matches!(d.target, Target::Split(_)));

    let d = Targets::decide(&req("/cart", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::Sticky));

    let d = Targets::decide(&req("/teapot", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::Teapot));
    assert_eq!(
        d.response(),
        Some(Response { status: 418, body: "I'm a teapot\n" })
    );

    let d = Targets::decide(&req("/old/page", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::Gone));
    assert_eq!(d.response(), Some(Response { status: 410, body: "gone" }));

    let d = Targets::decide(&req("/ip", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::ByIp));
    assert_eq!(d.target, Target::Cluster(TargetsCluster::ByIp));

    let d = Targets::decide(&req("/files/a.txt", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::ByPath));

    let d = Targets::decide(&req("/", "acme.tenants.example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::ByHost));
    assert_eq!(d.target, Target::Cluster(TargetsCluster::ByHost));

    let d = Targets::decide(&req("/", "example.com"), None).unwrap();
    assert_eq!(d.route, Some(TargetsRoute::Default));
    assert_eq!(d.target, Target::Cluster(TargetsCluster::Rr));

    assert_eq!(TargetsCluster::ALL.len(), 10);
    assert_eq!(TargetsCluster::HashedIp.name(), "hashed_ip");
}
