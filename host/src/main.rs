//! The `herald` binary.
//!
//! herald allocates with mimalloc: the event path builds and frees many small
//! JSON trees and buffers, and `scripts/bench pipeline` measures mimalloc
//! against the system allocator (the `herald-sysalloc` binary, the same
//! program) in one run; see BENCHMARKS.md.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

include!("entry.rs");
