proxy_runtime::routes! {
    proxy Gateway;
    via: "edge-1";
    via: "edge-2";

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => api;
}

fn main() {}
