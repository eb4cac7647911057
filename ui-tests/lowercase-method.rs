proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    route upload: method(post) => web;
    route default: _ => web;
}

fn main() {}
