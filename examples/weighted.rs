// cargo run --example weighted
// curl -s 127.0.0.1:6188/   (app-1 ten times, app-2 five times, app-3 once, per 16 requests)
//
// Weighted round robin: weights 10/5/1 give 62.5% / 31.25% / 6.25% of the requests.
// Replaces the guide's "加权负载均衡" (a `BTreeSet` of `Backend::new(addr, weight)` and
// `LoadBalancer::<RoundRobin>::new`).

proxy_runtime::routes! {
    /// Weighted round robin over servers of different capacity.
    proxy Weighted;

    /// A big, a medium and a small server: 10 : 5 : 1.
    cluster app {
        backends: [
            "127.0.0.1:9181" weight 10,
            "127.0.0.1:9182" weight 5,
            "127.0.0.1:9183" weight 1,
        ],
    }

    /// Every request.
    route default: _ => app;
}

fn main() {
    switchyard::run_example::<Weighted>()
}
