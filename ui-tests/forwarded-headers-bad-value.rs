proxy_runtime::routes! {
    proxy Gateway;
    forwarded_headers: true;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => api;
}

fn main() {}
