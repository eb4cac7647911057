// cargo run -p switchyard-bench --profile production --bin handwritten
// curl -i -H 'Host: rr.test' 127.0.0.1:6190/
//
// The baseline of bench/e2e.sh and bench/callgrind.sh: the four benchmark scenarios written
// by hand in the style of the upstream-selection guide (if/else on host and path,
// `LoadBalancer::select(..).unwrap()`, `HttpPeer::new` with a `String` SNI) — what
// Switchyard replaces. Backends: 127.0.0.1:18081-18083, as the scripts start them.

use async_trait::async_trait;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_load_balancing::selection::{Consistent, RoundRobin};
use pingora_load_balancing::LoadBalancer;
use pingora_proxy::{ProxyHttp, Session};
use std::sync::Arc;

use switchyard_bench::alloc;

const BACKENDS: [&str; 3] = ["127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"];

struct Handwritten {
    rr: Arc<LoadBalancer<RoundRobin>>,
    api: Arc<LoadBalancer<RoundRobin>>,
    web: Arc<LoadBalancer<RoundRobin>>,
    sticky: Arc<LoadBalancer<Consistent>>,
}

fn session_id(session: &Session) -> Option<String> {
    let cookie = session.req_header().headers.get("cookie")?.to_str().ok()?;
    cookie
        .split(';')
        .find_map(|part| part.trim().strip_prefix("session_id=").map(str::to_string))
}

#[async_trait]
impl ProxyHttp for Handwritten {
    type CTX = Option<String>;

    fn new_ctx(&self) -> Self::CTX {
        None
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let req = session.req_header();
        let host = match req.headers.get("host") {
            Some(h) => h.to_str().unwrap_or(""),
            None => "",
        };
        let path = req.uri.path();
        let upstream = if host == "rr.test" {
            self.rr.select(b"", 256).unwrap()
        } else if host == "path.test" {
            if path.starts_with("/api/") {
                self.api.select(b"", 256).unwrap()
            } else if path.starts_with("/static/") {
                self.rr.select(b"", 256).unwrap()
            } else {
                self.web.select(b"", 256).unwrap()
            }
        } else if host == "a.test" {
            self.api.select(b"", 256).unwrap()
        } else if host == "b.test" {
            self.web.select(b"", 256).unwrap()
        } else if host == "hash.test" {
            let id = session_id(session).unwrap_or_else(|| "default".to_string());
            self.sticky.select(id.as_bytes(), 256).unwrap()
        } else {
            self.rr.select(b"", 256).unwrap()
        };
        *ctx = Some(host.to_string());
        Ok(Box::new(HttpPeer::new(upstream, false, String::new())))
    }
}

fn main() {
    alloc::start();
    let mut server = Server::new(None).unwrap();
    server.bootstrap();
    let rr = Arc::new(LoadBalancer::try_from_iter(BACKENDS).unwrap());
    let api = Arc::new(LoadBalancer::try_from_iter(&BACKENDS[..2]).unwrap());
    let web = Arc::new(LoadBalancer::try_from_iter(&BACKENDS[1..]).unwrap());
    let sticky = Arc::new(LoadBalancer::try_from_iter(BACKENDS).unwrap());
    let mut proxy = pingora_proxy::http_proxy_service(
        &server.configuration,
        Handwritten {
            rr,
            api,
            web,
            sticky,
        },
    );
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:6190".into());
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run(pingora_core::server::RunArgs::default());
    alloc::report();
}
