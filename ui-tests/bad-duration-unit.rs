proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
        timeouts: { connect: 2sec },
    }

    route default: _ => web;
}

fn main() {}
