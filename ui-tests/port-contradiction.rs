proxy_runtime::routes! {
    proxy Gateway;
    cluster web { backends: ["127.0.0.1:9001"] }
    route both: port(80) && port(443) => web;
    route default: _ => web;
}

fn main() {}
