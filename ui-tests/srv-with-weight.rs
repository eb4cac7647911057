proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: [srv("_http._tcp.api.internal") weight 2],
    }

    route default: _ => web;
}

fn main() {}
