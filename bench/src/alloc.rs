//! The global allocator of the two benchmark proxies (`bench_proxy`, `handwritten`):
//! mimalloc, with an allocation counter that is on only when `SWITCHYARD_COUNT_ALLOCS=1`
//! is set, so the timed runs of bench/e2e.sh pay one relaxed load per allocation and no
//! atomic add. bench/e2e.sh runs each proxy twice with the counter on, with different
//! request counts, and divides the difference of the printed totals by the difference of
//! the requests: start-up and shutdown allocations cancel out.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count() {
    if ON.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Turn the counter on when the environment asks for it; call first thing in `main`.
pub fn start() {
    if std::env::var_os("SWITCHYARD_COUNT_ALLOCS").is_some_and(|v| v == "1") {
        ON.store(true, Relaxed);
    }
}

/// Print the total on stderr (`allocations: N`) when the counter is on; call when the
/// server has stopped.
pub fn report() {
    if ON.load(Relaxed) {
        eprintln!("allocations: {}", ALLOCATIONS.load(Relaxed));
    }
}
