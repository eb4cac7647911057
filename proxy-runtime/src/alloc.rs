//! The allocator a Switchyard binary gets: mimalloc, installed as the global allocator by
//! the default `mimalloc` feature.
//!
//! The benchmarks run on it (bench/README.md); with the system allocator a request costs
//! about 8% more CPU (PERFORMANCE-NOTES.md). A program that installs its own
//! `#[global_allocator]` turns the feature off:
//! `proxy-runtime = { version = "..", default-features = false }`.
//!
//! The `count-allocations` feature (for tests and benchmarks, never needed otherwise)
//! counts allocations: per thread, always, and process-wide once
//! [`start_counting`] is called.

use std::alloc::{GlobalAlloc, Layout};

/// mimalloc, counting allocations when the `count-allocations` feature is on.
pub struct Allocator;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: Allocator = Allocator;

#[cfg(feature = "count-allocations")]
mod counter {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

    pub static ON: AtomicBool = AtomicBool::new(false);
    pub static TOTAL: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        pub static THREAD: Cell<u64> = const { Cell::new(0) };
    }

    #[inline]
    pub fn count() {
        // `try_with`: allocations while the thread's locals are torn down are not counted.
        let _ = THREAD.try_with(|c| c.set(c.get() + 1));
        if ON.load(Relaxed) {
            TOTAL.fetch_add(1, Relaxed);
        }
    }
}

#[inline(always)]
fn count() {
    #[cfg(feature = "count-allocations")]
    counter::count();
}

unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made so far by the calling thread (`count-allocations`).
#[cfg(feature = "count-allocations")]
pub fn thread_allocations() -> u64 {
    counter::THREAD.with(std::cell::Cell::get)
}

/// Count every thread's allocations from now on (`count-allocations`).
#[cfg(feature = "count-allocations")]
pub fn start_counting() {
    counter::ON.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Allocations of every thread since [`start_counting`] (`count-allocations`).
#[cfg(feature = "count-allocations")]
pub fn total_allocations() -> u64 {
    counter::TOTAL.load(std::sync::atomic::Ordering::Relaxed)
}
