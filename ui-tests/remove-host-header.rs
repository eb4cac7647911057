proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route api: path_prefix("/api") => api { remove_header("host") };
    route default: _ => api;
}

fn main() {}
