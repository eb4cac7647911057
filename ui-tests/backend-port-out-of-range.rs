proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:90001"],
    }

    route default: _ => web;
}

fn main() {}
