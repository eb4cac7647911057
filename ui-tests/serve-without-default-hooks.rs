// A hooks type without `Default` is started with a value: `serve_with` compiles, and only
// `serve()`, which would build one with `Default`, is an error.
proxy_runtime::routes! {
    proxy Gateway(Auth);

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => api;
}

struct Auth;

impl proxy_runtime::Hooks<Gateway> for Auth {}

fn main() {
    Gateway::serve_with(Auth);
    Gateway::serve();
}
