proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["localhost:9001"],
    }

    route default: _ => web;
}

fn main() {}
