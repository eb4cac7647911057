proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["api_v2.internal:9001"],
    }

    route default: _ => web;
}

fn main() {}
