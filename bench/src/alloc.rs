//! Allocations per request for bench/e2e.sh. Both benchmark proxies run on the allocator
//! a Switchyard binary gets by default (`proxy_runtime::alloc`: mimalloc); its counter is on
//! only when `SWITCHYARD_COUNT_ALLOCS=1` is set, so the timed runs pay one relaxed load
//! and a thread-local increment per allocation, and no atomic add. bench/e2e.sh runs each
//! proxy twice with the counter on, with different request counts, and divides the
//! difference of the printed totals by the difference of the requests: start-up and
//! shutdown allocations cancel out.

use proxy_runtime::alloc;

/// Turn the counter on when the environment asks for it; call first thing in `main`.
pub fn start() {
    if std::env::var_os("SWITCHYARD_COUNT_ALLOCS").is_some_and(|v| v == "1") {
        alloc::start_counting();
    }
}

/// Print the total on stderr (`allocations: N`) when the counter is on; call when the
/// server has stopped.
pub fn report() {
    if std::env::var_os("SWITCHYARD_COUNT_ALLOCS").is_some_and(|v| v == "1") {
        eprintln!("allocations: {}", alloc::total_allocations());
    }
}
