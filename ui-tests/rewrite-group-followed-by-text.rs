proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route images: path_prefix("/img") => api { rewrite("^/img/([0-9]+)$", "/images/$1px") };
    route default: _ => api;
}

fn main() {}
