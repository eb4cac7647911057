proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    route internal: client_ip("10.1.2.3/8") => web;
    route default: _ => web;
}

fn main() {}
