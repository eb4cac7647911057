proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route http: host("example.com") => redirect(308, "https://{host");
    route default: _ => api;
}

fn main() {}
