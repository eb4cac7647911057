proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route search: path_prefix("/search") => api { rewrite("^/search/(.+)$", "/search?q=$1") };
    route default: _ => api;
}

fn main() {}
