// cargo run -p switchyard-bench --profile production --bin bench_proxy -- --listen 127.0.0.1:6191 --threads 1
// curl -i -H 'Host: rr.test' 127.0.0.1:6191/
//
// The Switchyard side of bench/e2e.sh and bench/callgrind.sh: the same four scenarios as
// `handwritten.rs` (round robin, path routing, host routing, cookie consistent hash) as a
// table. Backends: 127.0.0.1:18081-18083, as the scripts start them.

use switchyard_bench::alloc;

proxy_runtime::routes! {
    proxy Bench;

    cluster rr { backends: ["127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"] }
    cluster api { backends: ["127.0.0.1:18081", "127.0.0.1:18082"] }
    cluster web { backends: ["127.0.0.1:18082", "127.0.0.1:18083"] }
    cluster sticky {
        backends: ["127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"],
        balance: consistent(cookie("session_id")),
    }

    route round_robin: host("rr.test") => rr;
    route path_api:    host("path.test") && path_prefix("/api/") => api;
    route path_static: host("path.test") && path_prefix("/static/") => rr;
    route path_other:  host("path.test") => web;
    route host_a:      host("a.test") => api;
    route host_b:      host("b.test") => web;
    route hash:        host("hash.test") => sticky;
    route default:     _ => rr;
}

fn main() {
    alloc::start();
    Bench::serve();
    alloc::report();
}
