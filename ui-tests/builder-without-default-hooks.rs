// A hooks type without `Default` is started with a value: `builder_with` compiles, and
// only `builder()`, which would build one with `Default`, is an error.
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
    let _with = Gateway::builder_with(Auth);
    let _default = Gateway::builder();
}
