proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        retries: 2,
    }

    route default: _ => web;
}

fn main() {}
