proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backend: ["127.0.0.1:9001"],
    }

    route default: _ => web;
}

fn main() {}
