proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9443"],
        tls: { alpn: h2 },
    }

    route default: _ => web;
}

fn main() {}
