proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route users: path_prefix("/v1") => api {
        strip_prefix: "/v1",
        rewrite("^/v1/users/([0-9]+)$", "/u/$1"),
    };
    route default: _ => api;
}

fn main() {}
