proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route upload: path_prefix("/upload") => api { set_header("content-length", "0") };
    route default: _ => api;
}

fn main() {}
