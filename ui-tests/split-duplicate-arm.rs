proxy_runtime::routes! {
    proxy Gateway;

    cluster v1 {
        backends: ["127.0.0.1:9001"],
    }
    cluster v2 {
        backends: ["127.0.0.1:9002"],
    }

    route default: _ => split { v1: 45, v2: 10, v1: 45 };
}

fn main() {}
