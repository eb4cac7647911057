//! `decide` allocates nothing: counted by a global allocator, per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
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
