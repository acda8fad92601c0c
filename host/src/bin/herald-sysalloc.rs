//! `herald` with the system allocator (glibc's malloc on Linux) instead of
//! mimalloc: the baseline `scripts/bench pipeline` runs beside `herald` to
//! measure the allocator. Built only with `--features sysalloc-baseline`.

include!("../entry.rs");
