//! herald's global allocator: mimalloc for small blocks, the system
//! allocator for large ones; and mimalloc's settings.
//!
//! Why split: the event path builds and frees many small blocks (JSON trees,
//! strings, queue nodes), where mimalloc is faster than glibc's malloc
//! (`scripts/bench pipeline`, "Allocator"); but most of herald's memory is
//! the cache's objects, one block of a few KB each, which mimalloc rounds
//! up to its size classes and glibc sizes to 16 bytes (RSS at 50k pods was
//! 1.22x glibc's with mimalloc for everything). Blocks of [`LARGE`] bytes or
//! more go to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this many bytes or more come from the system allocator.
pub const LARGE: usize = 4096;

/// The allocator the `herald` binary installs (`#[global_allocator]`).
pub struct Split;

fn large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY: every block is freed and resized by the allocator that made it:
// `dealloc` and `realloc` get the layout the block was allocated with, and
// its size picks the allocator, as in `alloc`. A `realloc` across the
// threshold allocates in the other one, copies and frees.
unsafe impl GlobalAlloc for Split {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if large(layout.size()) {
                System.alloc(layout)
            } else {
                MiMalloc.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if large(layout.size()) {
                System.alloc_zeroed(layout)
            } else {
                MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe {
            if large(layout.size()) {
                System.dealloc(ptr, layout)
            } else {
                MiMalloc.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            match (large(layout.size()), large(new_size)) {
                (true, true) => System.realloc(ptr, layout, new_size),
                (false, false) => MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    let new = Layout::from_size_align_unchecked(new_size, layout.align());
                    let out = self.alloc(new);
                    if !out.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, out, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    out
                }
            }
        }
    }
}

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3
/// headers): how long freed pages stay before they go back to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Purge freed pages after 1 s instead of mimalloc's default 10 ms.
///
/// Under a steady stream of changes the event path frees and reallocates
/// the same pages many times a second; with the 10 ms default each round
/// trip returns them to the OS and faults them back in (the pipeline bench
/// measured about 25 % more events per CPU-second with 1 s). Memory freed
/// when a burst ends still goes back within a second.
pub fn tune() {
    // SAFETY: sets an integer option; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_move_between_the_allocators_intact_when_they_grow_or_shrink_across_the_threshold() {
        let a = Split;
        for align in [1usize, 8, 64] {
            let small = Layout::from_size_align(100, align).unwrap();
            // SAFETY: layouts are valid; every block is freed with its layout.
            unsafe {
                let p = a.alloc(small);
                assert!(!p.is_null());
                for i in 0..100 {
                    *p.add(i) = i as u8;
                }
                let q = a.realloc(p, small, 3 * LARGE);
                assert!(!q.is_null() && (q as usize).is_multiple_of(align));
                assert!(
                    (0..100).all(|i| *q.add(i) == i as u8),
                    "kept across the move up"
                );
                let big = Layout::from_size_align(3 * LARGE, align).unwrap();
                let r = a.realloc(q, big, 50);
                assert!(
                    (0..50).all(|i| *r.add(i) == i as u8),
                    "kept across the move down"
                );
                a.dealloc(r, Layout::from_size_align(50, align).unwrap());
                let z = a.alloc_zeroed(big);
                assert!((0..3 * LARGE).all(|i| *z.add(i) == 0));
                a.dealloc(z, big);
            }
        }
    }
}
