// cargo run --example upstream_options
// curl -i 127.0.0.1:6188/
//
// The connection options of an upstream: timeouts and retries on a plain HTTP cluster, and
// TLS with SNI, certificate and hostname verification and ALPN on another. Replaces the
// guide's "返回 HttpPeer 结构" (`HttpPeer::new(addr, tls, sni)` and the `PeerOptions` table:
// connection_timeout, total_connection_timeout, read/write/idle timeouts, verify_cert,
// verify_hostname, alternative_cn, alpn).
//
// The local backends this example starts speak plain HTTP, so `/secure` answers 502 here
// (the TLS handshake fails); point it at a real TLS server to use it, e.g.
// `cargo run --example upstream_options -- --backend secure=IP:443`.

proxy_runtime::routes! {
    /// Upstream connection options: timeouts, retries, TLS, SNI, ALPN.
    proxy UpstreamOptions;

    /// Plain HTTP servers with explicit timeouts; a refused connection is retried once on
    /// the other server.
    cluster app {
        backends: ["127.0.0.1:9201", "127.0.0.1:9202"],
        retries: 1,
        timeouts: { connect: 1s, total_connect: 2s, read: 10s, write: 10s, idle: 60s },
    }
    /// HTTPS servers: SNI `secure.example.com`, the certificate verified against the system
    /// roots and its name against the SNI (or `alternative_cn`), HTTP/2 offered with an
    /// HTTP/1.1 fallback.
    cluster secure {
        backends: ["127.0.0.1:9203"],
        tls: {
            sni: "secure.example.com",
            verify: true,
            verify_hostname: true,
            alternative_cn: "www.example.com",
            alpn: h2_h1,
        },
        timeouts: { connect: 1s, total_connect: 3s },
    }

    /// `/secure` and below, over TLS.
    route secure: path_prefix("/secure") => secure;
    /// Everything else, over plain HTTP.
    route default: _ => app;
}

fn main() {
    switchyard::run_example::<UpstreamOptions>()
}
