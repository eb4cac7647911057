proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: [srv("api.internal")],
    }

    route default: _ => web;
}

fn main() {}
