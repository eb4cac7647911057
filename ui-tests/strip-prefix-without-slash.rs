proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route v1: path_prefix("/v1") => api { strip_prefix: "v1" };
    route default: _ => api;
}

fn main() {}
