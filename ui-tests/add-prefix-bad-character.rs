proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route v1: path_prefix("/v1") => api { add_prefix: "/internal api" };
    route default: _ => api;
}

fn main() {}
