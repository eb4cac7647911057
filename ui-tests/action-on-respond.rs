proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route admin: path_prefix("/admin") => respond(403, "closed") { strip_prefix: "/admin" };
    route default: _ => api;
}

fn main() {}
