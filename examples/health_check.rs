// cargo run --example health_check
// curl -s 127.0.0.1:6188/   (stop a backend and it leaves the rotation within 2 s)
//
// An active TCP health check: every second each backend gets a TCP connect; after `fall`
// failures in a row it is skipped, after `rise` successes it is back. Replaces the guide's
// "健康检查" (`TcpHealthCheck::new()`, `health_check_frequency` and a hand-made
// `background_service`); here the check runs as a Pingora background service on its own.

proxy_runtime::routes! {
    /// Round robin over health-checked servers.
    proxy HealthCheck;

    /// Three servers, checked every second: out after 2 failed checks, back after 2 good ones.
    cluster app {
        backends: ["127.0.0.1:9171", "127.0.0.1:9172", "127.0.0.1:9173"],
        health: tcp { every: 1s, fall: 2, rise: 2 },
    }

    /// Every request, to a healthy server.
    route default: _ => app;
}

fn main() {
    switchyard::run_example::<HealthCheck>()
}
