proxy_runtime::routes! {
    proxy Gateway;
    trusted_proxies: ["10.0.0.0/8", "10.0.0/16"];

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => api;
}

fn main() {}
