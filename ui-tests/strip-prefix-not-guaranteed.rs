proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route v2: path_prefix("/api") => api { strip_prefix: "/v2" };
    route default: _ => api;
}

fn main() {}
