proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
        backup: api_dr,
    }
    cluster api_dr {
        backends: ["127.0.0.1:9002"],
        backup: api,
    }

    route default: _ => api;
}

fn main() {}
