// cargo run -p switchyard-bench --profile production --bin future_size
//
// How many bytes Pingora allocates for one request of a keep-alive connection before it
// has read a byte of it: the future of `HttpServerApp::process_new_http` (the proxy's whole
// state machine for a request), which pingora-core's keep-alive loop creates, boxed, and
// then awaits the next request head in. bench/idle_rss.sh measures the resident memory of
// idle connections; this tells how much of it that one allocation can explain. Loopback
// only; it makes one connection to itself and sends nothing.

use pingora_core::apps::HttpServerApp;
use pingora_core::protocols::http::ServerSession;
use proxy_runtime::cluster::LiveCluster;
use proxy_runtime::discovery::{literal_members, Entry};
use proxy_runtime::proxy::Proxy;
use proxy_runtime::Table;
use std::sync::Arc;

proxy_runtime::routes! {
    proxy Probe;
    cluster rr { backends: ["127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"] }
    route default: _ => rr;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let clusters: Vec<LiveCluster> = Probe::CLUSTERS
        .iter()
        .map(|spec| {
            let entries: Vec<Entry> = spec.backends.iter().map(Entry::declared).collect();
            LiveCluster::build("Probe", spec, literal_members(&entries), false)
                .expect("cluster")
                .0
        })
        .collect();
    let conf = Arc::new(pingora_core::server::configuration::ServerConf::default());
    let app = Arc::new(pingora_proxy::HttpProxy::new(
        Proxy::<Probe>::new(clusters.into(), proxy_runtime::NoHooks)
            .expect("no route state to fail"),
        conf,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let _client = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to self");
    let (server, _) = listener.accept().await.expect("accept");
    let stream: pingora_core::protocols::Stream =
        Box::new(pingora_core::protocols::l4::stream::Stream::from(server));
    let session = ServerSession::new_http1(stream);
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let request = app.process_new_http(session, &shutdown);
    println!(
        "process_new_http future: {} bytes (allocated per request, before the request head is read)",
        std::mem::size_of_val(&*request)
    );
}
