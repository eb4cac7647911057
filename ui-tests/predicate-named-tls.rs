proxy_runtime::routes! {
    proxy Gateway;
    cluster web { backends: ["127.0.0.1:9001"] }
    let tls = header("x-forwarded-proto") == "https";
    route default: _ => web;
}

fn main() {}
