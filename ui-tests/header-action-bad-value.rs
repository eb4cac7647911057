proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route tenant: path_prefix("/a") => api { set_header("x-tenant", "a\r\nx-admin: true") };
    route default: _ => api;
}

fn main() {}
