proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: [srv("_dns._udp.api.internal")],
    }

    route default: _ => web;
}

fn main() {}
