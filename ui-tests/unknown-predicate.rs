proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    let is_mobile = header("user-agent").contains("Mobile");

    route mobile: is_mobil => web;
    route default: _ => web;
}

fn main() {}
