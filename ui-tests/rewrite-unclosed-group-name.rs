proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route users: path_prefix("/users") => api { rewrite("^/users/(?<id>[0-9]+)$", "/u/${id") };
    route default: _ => api;
}

fn main() {}
