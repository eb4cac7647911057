proxy_runtime::routes! {
    proxy Gateway;

    cluster v1 {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => split { v1: 100 };
}

fn main() {}
