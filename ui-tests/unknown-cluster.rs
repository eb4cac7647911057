proxy_runtime::routes! {
    proxy Gateway;

    cluster sessions {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => sesions;
}

fn main() {}
