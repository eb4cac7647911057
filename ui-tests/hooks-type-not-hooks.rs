// A hooks type that does not implement `Hooks<Gateway>`: the error is at the type in
// `proxy Gateway(NotHooks);`.
proxy_runtime::routes! {
    proxy Gateway(NotHooks);

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => api;
}

#[derive(Default)]
struct NotHooks;

fn main() {}
