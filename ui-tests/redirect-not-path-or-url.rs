proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route old: path_prefix("/old") => redirect(301, "www.example.com{uri}");
    route default: _ => api;
}

fn main() {}
