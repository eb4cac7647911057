proxy_runtime::routes! {
    proxy Gateway(Auht);

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => api;
}

#[derive(Default)]
struct Auth;

impl proxy_runtime::Hooks<Gateway> for Auth {}

fn main() {}
