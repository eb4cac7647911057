proxy_runtime::routes! {
    proxy Gateway;
    cluster grpc {
        backends: ["127.0.0.1:50051"],
        health: grpc { service: "orders.v1.Orders", every: 5s },
    }
    route default: _ => grpc;
}

fn main() {}
