// cargo run --bin scale_out -- --listen 127.0.0.1:8080 --backend app=127.0.0.1:9001,127.0.0.1:9002 --backend sessions=127.0.0.1:9001,127.0.0.1:9002
//   # with, in another terminal, `cargo run --example demo`: backends api-1, api-2 on 127.0.0.1:9001-9002
// curl -s 127.0.0.1:8080/ ; curl -s -b sid=42 127.0.0.1:8080/session/cart   (api-1, api-2 in turn; one of them for sid=42, every time)
//
// The table of a proxy run as several replicas in Kubernetes (deploy/kubernetes.yaml). The
// backends are the pods behind the headless Service `app-backend`: the short name is
// resolved with the pod's /etc/resolv.conf (its search domains complete it to
// app-backend.NAMESPACE.svc.cluster.local), every address it returns is a backend on
// port 8080, and the name is resolved again every 5 s, so pods that come and go join and
// leave the rotation without a restart. Each replica resolves, checks and balances on its
// own: they share no state. Outside a cluster, point the clusters at local backends with
// `--backend` (above), or at a DNS server of your own with `--dns IP:PORT`.

proxy_runtime::routes! {
    /// A Switchyard replica in front of the `app-backend` pods.
    proxy ScaleOut;

    /// Every pod of the headless Service, round robin, health-checked on /healthz.
    cluster app {
        backends: ["app-backend:8080"],
        resolve: { every: 5s },
        health: http { path: "/healthz", expect: 200, every: 2s },
    }
    /// The same pods, chosen by the `sid` cookie (ketama): every replica that sees the same
    /// pods sends one session to the same pod.
    cluster sessions {
        backends: ["app-backend:8080"],
        balance: consistent(cookie("sid")),
        resolve: { every: 5s },
        health: http { path: "/healthz", expect: 200, every: 2s },
    }

    /// Session traffic sticks to one pod.
    route session: path_prefix("/session") => sessions;
    /// Everything else.
    route default: _ => app;
}

fn main() {
    ScaleOut::serve()
}
