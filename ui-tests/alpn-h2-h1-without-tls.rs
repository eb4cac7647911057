proxy_runtime::routes! {
    proxy Gateway;
    cluster grpc { backends: ["127.0.0.1:50051"], alpn: h2_h1 }
    route default: _ => grpc;
}

fn main() {}
