proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    route admin: path_prefix("/static/../admin") => web;
    route default: _ => web;
}

fn main() {}
