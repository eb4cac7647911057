//! `decide` allocates nothing: counted by a global allocator, per thread.

/// This thread's allocations so far, counted by the runtime's allocator (the test binary
/// enables its `count-allocations` feature).
fn allocations() -> u64 {
    proxy_runtime::alloc::thread_allocations()
}

#[test]
fn decide_allocates_nothing() {
    use crate::decide_table::*;
    let requests = mix();
    // Warm up: the regex is compiled on first use and its per-thread cache is made then.
    for (r, c) in &requests {
        let _ = Mixed::decide(r, *c);
    }
    // The counter sees this thread's allocations (so the zero below means something).
    let probe = allocations();
    drop(std::hint::black_box(Box::new(1u64)));
    assert_eq!(
        allocations(),
        probe + 1,
        "the counting allocator is installed"
    );
    let before = allocations();
    let mut routed = 0;
    for _ in 0..100 {
        for (r, c) in &requests {
            routed += usize::from(Mixed::decide(r, *c).is_ok_and(|d| d.route.is_some()));
        }
    }
    let allocated = allocations() - before;
    assert_eq!(routed, 100 * requests.len());
    assert_eq!(
        allocated,
        0,
        "decide allocated {allocated} times over {} decisions",
        100 * requests.len()
    );
}
