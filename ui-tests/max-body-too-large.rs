proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route upload: path_prefix("/upload") => api { max_body: 2048gb };
    route default: _ => api;
}

fn main() {}
