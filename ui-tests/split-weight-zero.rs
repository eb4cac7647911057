proxy_runtime::routes! {
    proxy Gateway;

    cluster v1 {
        backends: ["127.0.0.1:9001"],
    }
    cluster v2 {
        backends: ["127.0.0.1:9002"],
    }

    route default: _ => split { v2: 0, v1: 100 };
}

fn main() {}
