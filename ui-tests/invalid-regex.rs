proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    route user: path_regex("^/users/([0-9]+$") => web;
    route default: _ => web;
}

fn main() {}
