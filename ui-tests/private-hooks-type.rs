// A hooks type must be as public as the table it serves: `pub struct Auth;`.

proxy_runtime::routes! {
    proxy Gateway(Auth);

    cluster api {
        backends: ["127.0.0.1:9001"],
    }

    route default: _ => api;
}

#[derive(Default)]
struct Auth;

impl proxy_runtime::Hooks<Gateway> for Auth {}

/// Never run.
#[allow(dead_code)]
fn start() {
    Gateway::serve();
}

fn main() {
    assert_eq!(GatewayRoute::ALL.len(), 1);
}
