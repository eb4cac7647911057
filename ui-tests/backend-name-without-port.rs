proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["api.internal"],
    }

    route default: _ => web;
}

fn main() {}
