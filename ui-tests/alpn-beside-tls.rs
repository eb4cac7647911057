proxy_runtime::routes! {
    proxy Gateway;
    cluster grpc {
        backends: ["127.0.0.1:50051"],
        tls: { sni: "grpc.example.com" },
        alpn: h2,
    }
    route default: _ => grpc;
}

fn main() {}
