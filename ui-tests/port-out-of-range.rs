proxy_runtime::routes! {
    proxy Gateway;
    cluster web { backends: ["127.0.0.1:9001"] }
    cluster admin { backends: ["127.0.0.1:9002"] }
    route admin: port(0) => admin;
    route other: port(70000) => admin;
    route default: _ => web;
}

fn main() {}
