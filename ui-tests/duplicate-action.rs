proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route search: path_prefix("/search") => api { limit: 100/s by client_ip, limit: 10/s };
    route default: _ => api;
}

fn main() {}
