//! Shared code of the benchmark proxies (`bench_proxy`, `handwritten`): the counting
//! allocator that bench/e2e.sh reads allocations per request from.

pub mod alloc;
