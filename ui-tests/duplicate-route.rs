proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    route api: path_prefix("/api") => web;
    route api: path_prefix("/v2") => web;
    route default: _ => web;
}

fn main() {}
