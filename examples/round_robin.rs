// cargo run --example round_robin
// curl -s 127.0.0.1:6188/   (repeat: app-1, app-2, app-3, app-1, ...)
//
// One cluster of three equal servers, taken in turn. Replaces the guide's "LoadBalancer
// 基础" (`LoadBalancer::<RoundRobin>::try_from_iter([..])` and `select(b"", 256)` in
// `upstream_peer`).

proxy_runtime::routes! {
    /// Round robin over three equal servers.
    proxy RoundRobin;

    /// Three equal servers, each taking every third request.
    cluster app {
        backends: ["127.0.0.1:9141", "127.0.0.1:9142", "127.0.0.1:9143"],
        balance: round_robin,
    }

    /// Every request.
    route default: _ => app;
}

fn main() {
    switchyard::run_example::<RoundRobin>()
}
