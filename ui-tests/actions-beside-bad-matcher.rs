proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    // Both mistakes are reported: a wrong matcher does not hide the actions' errors.
    route upload: method(post) => api { limit: 0/s };
    route default: _ => api;
}

fn main() {}
