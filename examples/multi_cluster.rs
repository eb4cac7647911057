// cargo run --example multi_cluster
// curl -i 127.0.0.1:6188/api/users
//
// Several clusters, each balanced and health-checked on its own: `/api/..` to the API
// cluster, `/static/..` to the static cluster, everything else to the web cluster. When a
// whole cluster is down its routes answer 503 naming it, and the others keep serving.
// Replaces the guide's "多集群路由" (`MultiClusterRouter` with three `LoadBalancer`s, a
// `build_cluster` helper and `select(..).unwrap()`, which panics when a cluster is down).

proxy_runtime::routes! {
    /// Three clusters behind one proxy, each with its own health check.
    proxy MultiCluster;

    /// The API servers.
    cluster api {
        backends: ["127.0.0.1:9191", "127.0.0.1:9192", "127.0.0.1:9193"],
        health: tcp { every: 1s, fall: 1, rise: 1 },
    }
    /// The web servers.
    cluster web {
        backends: ["127.0.0.1:9194", "127.0.0.1:9195"],
        health: tcp { every: 1s, fall: 1, rise: 1 },
    }
    /// The static file servers.
    cluster static_files {
        backends: ["127.0.0.1:9196", "127.0.0.1:9197", "127.0.0.1:9198"],
        health: tcp { every: 1s, fall: 1, rise: 1 },
    }

    /// `/api` and below.
    route api: path_prefix("/api") => api;
    /// `/static` and below.
    route static_files: path_prefix("/static") => static_files;
    /// Everything else: the web site.
    route default: _ => web;
}

fn main() {
    switchyard::run_example::<MultiCluster>()
}
