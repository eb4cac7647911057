// Cluster options: backends by name and SRV with `resolve`, h2c (`alpn: h2` without tls), tcp, http and grpc health checks, retries, backups, timeouts and tls (sni,
// verify, verify_hostname, alternative_cn, alpn, ca, client certificates).

use pingora_http::RequestHeader;
use proxy_runtime::Target;

proxy_runtime::routes! {
    proxy Upstreams;

    /// The API, checked over TCP, with a disaster-recovery backup.
    cluster api {
        backends: ["127.0.0.1:9001", "127.0.0.1:9002"],
        health: tcp { every: 5s, fall: 3, rise: 2, timeout: 500ms },
        retries: 2,
        backup: api_dr,
        timeouts: { connect: 500ms, total_connect: 2s, read: 30s, write: 30s, idle: 1m, websocket: 1h },
    }
    /// A plaintext gRPC service: h2c.
    cluster grpc {
        backends: ["127.0.0.1:50051"],
        alpn: h2,
        health: grpc { service: "orders.v1.Orders", every: 5s, fall: 2, rise: 2, timeout: 1s },
    }
    cluster api_dr {
        backends: ["[::1]:9003"],
        health: http { path: "/healthz", host: "api.internal", expect: 204, every: 10s },
        backup: last_resort,
    }
    cluster last_resort {
        backends: ["127.0.0.1:9004"],
        health: http { every: 1h },
    }
    cluster secure {
        backends: ["127.0.0.1:9443"],
        tls: {
            sni: "secure.internal",
            verify: true,
            verify_hostname: false,
            alternative_cn: "secure-alt.internal",
            alpn: h2_h1,
        },
        retries: 8,
    }
    cluster mtls {
        backends: ["127.0.0.1:9444"],
        tls: {
            sni: "mtls.internal",
            alpn: h2,
            ca: "/etc/switchyard/ca.pem",
            client_cert: "/etc/switchyard/client.pem",
            client_key: "/etc/switchyard/client.key",
        },
    }
    cluster lab {
        backends: ["127.0.0.1:9445"],
        tls: { verify: false, alpn: h1 },
        timeouts: { read: 2m },
    }

    /// Backends by name: addresses, a host name (re-resolved every 30 s) and an SRV name.
    cluster named {
        backends: ["10.0.0.5:80" weight 2, "API.internal.:8080", srv("_http._tcp.api.internal")],
        resolve: { every: 30s },
    }
    /// Re-resolved when the records expire (the default, written out).
    cluster by_ttl {
        backends: ["[::1]:8080", "api-2.internal:8080" weight 3],
        resolve: { every: ttl },
    }

    route named: host("named.example.com") => named;
    route by_ttl: host("ttl.example.com") => by_ttl;
    route secure: host("secure.example.com") => secure;
    route mtls: host("mtls.example.com") => mtls;
    route lab: host("lab.example.com") => lab;
    route default: _ => api;
}

fn req(host: &str) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/path", None).unwrap();
    req.insert_header("host", host).unwrap();
    req
}

fn main() {
    let d = Upstreams::decide(&req("secure.example.com"), None).unwrap();
    assert_eq!(d.route, Some(UpstreamsRoute::Secure));
    assert_eq!(d.target, Target::Cluster(UpstreamsCluster::Secure));

    let d = Upstreams::decide(&req("mtls.example.com"), None).unwrap();
    assert_eq!(d.route, Some(UpstreamsRoute::Mtls));

    let d = Upstreams::decide(&req("lab.example.com"), None).unwrap();
    assert_eq!(d.route, Some(UpstreamsRoute::Lab));

    let d = Upstreams::decide(&req("example.com"), None).unwrap();
    assert_eq!(d.route, Some(UpstreamsRoute::Default));
    assert_eq!(d.target, Target::Cluster(UpstreamsCluster::Api));

    assert_eq!(UpstreamsCluster::ALL.len(), 9);
    use proxy_runtime::__private::{Endpoint, Refresh};
    let named = &<Upstreams as proxy_runtime::Table>::CLUSTERS[7];
    assert_eq!(named.name, "named");
    let endpoints: Vec<_> = named.backends.iter().map(|b| (b.endpoint, b.weight)).collect();
    assert_eq!(
        endpoints,
        [
            (Endpoint::Addr("10.0.0.5:80".parse().unwrap()), 2),
            (Endpoint::Name { host: "api.internal.", port: 8080 }, 1),
            (Endpoint::Srv("_http._tcp.api.internal"), 1),
        ]
    );
    assert_eq!(named.resolve, Refresh::Every(std::time::Duration::from_secs(30)));
    assert_eq!(<Upstreams as proxy_runtime::Table>::CLUSTERS[8].resolve, Refresh::Ttl);
    use proxy_runtime::{Id, Table};
    let grpc = &<Upstreams as Table>::CLUSTERS[UpstreamsCluster::Grpc.index()];
    assert!(grpc.h2c && grpc.tls.is_none());
    assert!(!<Upstreams as Table>::CLUSTERS[UpstreamsCluster::Secure.index()].h2c);
    assert_eq!(UpstreamsCluster::ApiDr.name(), "api_dr");
}
