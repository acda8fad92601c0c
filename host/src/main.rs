//! The `herald` binary.
//!
//! herald allocates small blocks with mimalloc and large ones with the system
//! allocator (`herald::alloc`); `scripts/bench pipeline` measures that
//! against the system allocator alone (the `herald-sysalloc` binary, the same
//! program) in one run; see BENCHMARKS.md.

#[global_allocator]
static GLOBAL: herald::alloc::Split = herald::alloc::Split;

include!("entry.rs");
