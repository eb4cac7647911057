// cargo run --example random
// curl -s 127.0.0.1:6188/   (repeat: app-1, app-2 or app-3, at random)
//
// One cluster of three equal servers, one picked at random per request. Replaces the
// guide's "负载均衡算法" random case (`LoadBalancer::<Random>`).

proxy_runtime::routes! {
    /// Random choice among three equal servers.
    proxy Random;

    /// Three equal servers; each request picks one at random.
    cluster app {
        backends: ["127.0.0.1:9151", "127.0.0.1:9152", "127.0.0.1:9153"],
        balance: random,
    }

    /// Every request.
    route default: _ => app;
}

fn main() {
    switchyard::run_example::<Random>()
}
