proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: [],
    }

    route default: _ => web;
}

fn main() {}
