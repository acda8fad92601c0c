//! The allocator's settings. The `herald` binary allocates with mimalloc
//! (see src/main.rs); these are set first thing in `main`.

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
