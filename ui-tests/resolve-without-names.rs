proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
        resolve: { every: 10s },
    }

    route default: _ => web;
}

fn main() {}
