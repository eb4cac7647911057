// cargo run -p switchyard-bench --profile production --bin bench_proxy -- --listen 127.0.0.1:6191 --threads 1
// curl -i -H 'Host: rr.test' 127.0.0.1:6191/
//
// The Switchyard side of bench/e2e.sh and bench/callgrind.sh: the same four scenarios as
// `handwritten.rs` (round robin, path routing, host routing, cookie consistent hash) as a
// table. Backends: 127.0.0.1:18081-18083, as the scripts start them.

// SWITCHYARD_BENCH_TABLE picks one of four builds of that table, for the cost of a
// capability measured in one run: unset, the table as a user writes it (forwarding
// headers on, no hooks); `hooks`, the same with a hooks type left at its defaults;
// `plain`, the same with `forwarded_headers: off;`; `named`, the same routes with every
// cluster given by a DNS name re-resolved every second (`rr.sy.test:18081`, ...; give
// the DNS server with `--dns`), for bench/swap.sh.

use proxy_runtime::Hooks;
use switchyard_bench::alloc;

/// The benchmark table, named `$name`, with an optional hooks type and table settings;
/// `@named $name`, the same routes with the clusters given by name. (One list of routes
/// for every variant: bench/rebuild_time.sh edits one line of it.)
macro_rules! bench_table {
    (@named $name:ident) => {
        bench_table!(@clusters $name {}
            cluster rr { backends: ["rr.sy.test:18081"], resolve: { every: 1s } }
            cluster api { backends: ["api.sy.test:18081"], resolve: { every: 1s } }
            cluster web { backends: ["web.sy.test:18081"], resolve: { every: 1s } }
            cluster sticky {
                backends: ["sticky.sy.test:18081"],
                balance: consistent(cookie("session_id")),
                resolve: { every: 1s },
            }
        );
    };
    ($name:ident $(($hooks:ident))? ; $($setting:tt)*) => {
        bench_table!(@clusters $name $(($hooks))? { $($setting)* }
            cluster rr { backends: ["127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"] }
            cluster api { backends: ["127.0.0.1:18081", "127.0.0.1:18082"] }
            cluster web { backends: ["127.0.0.1:18082", "127.0.0.1:18083"] }
            cluster sticky {
                backends: ["127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"],
                balance: consistent(cookie("session_id")),
            }
        );
    };
    (@clusters $name:ident $(($hooks:ident))? { $($setting:tt)* } $($cluster:tt)*) => {
        proxy_runtime::routes! {
            proxy $name $(($hooks))?;
            $($setting)*

            $($cluster)*

            route round_robin: host("rr.test") => rr;
            route path_api:    host("path.test") && path_prefix("/api/") => api;
            route path_static: host("path.test") && path_prefix("/static/") => rr;
            route path_other:  host("path.test") => web;
            route host_a:      host("a.test") => api;
            route host_b:      host("b.test") => web;
            route hash:        host("hash.test") => sticky;
            route default:     _ => rr;
        }
    };
}

bench_table!(Bench;);
bench_table!(BenchHooks(Nop););
bench_table!(BenchPlain; forwarded_headers: off;);
bench_table!(@named BenchNamed);

/// Hooks that keep every default: what a table pays for naming a hooks type it leaves
/// unused.
#[derive(Default)]
pub struct Nop;

impl Hooks<BenchHooks> for Nop {}

fn main() {
    alloc::start();
    match std::env::var("SWITCHYARD_BENCH_TABLE").as_deref() {
        Ok("hooks") => BenchHooks::serve(),
        Ok("plain") => BenchPlain::serve(),
        Ok("named") => BenchNamed::serve(),
        Ok("") | Err(_) => Bench::serve(),
        Ok(other) => {
            eprintln!("SWITCHYARD_BENCH_TABLE={other}: expected `hooks`, `plain` or `named`");
            std::process::exit(2);
        }
    }
    alloc::report();
}
