proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9443"],
        tls: { sni: "web.internal", alpn: http2 },
    }

    route default: _ => web;
}

fn main() {}
