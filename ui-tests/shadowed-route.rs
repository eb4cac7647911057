proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }
    cluster web {
        backends: ["127.0.0.1:9002"],
    }

    route api: path_prefix("/api") => api;
    route api_v2: path_prefix("/api/v2") => web;
    route default: _ => web;
}

fn main() {}
