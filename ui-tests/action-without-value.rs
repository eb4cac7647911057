proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route private: path_prefix("/private") => api { remove_header };
    route default: _ => api;
}

fn main() {}
