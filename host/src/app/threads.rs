//! The async runtime herald runs on (`herald run`, `demo`, `record`, and the
//! pipeline bench's child): one worker per core unless
//! `TOKIO_WORKER_THREADS` says otherwise, as with any tokio program.
//!
//! One worker per core is what keeps latency low when every event is its own
//! HTTP request: with one worker on 2 cores, p99 at 5,000 unbatched webhook
//! requests a second was 74 ms against 6.5 ms with two. One worker costs
//! less CPU per event (since the pipeline is a task on the runtime, 20–25 %
//! less at 1,000 webhook events a second; the same at 300), so on a small
//! node with a batched sink or a low change rate `TOKIO_WORKER_THREADS=1` is
//! the operator's choice (BENCHMARKS.md). Plugin compiles at a reload, and
//! the pipeline's waits on a full queue, hand the worker's other tasks on
//! (see `sync::off_the_runtime`), so even one worker never pauses the rest.

use std::io;

/// The runtime's worker count: `TOKIO_WORKER_THREADS` when it is a positive
/// number, else `cores` (a value that is not one is named in a warning;
/// tokio's own `Runtime::new` would panic on it).
pub fn async_workers(env: Option<&str>, cores: usize) -> usize {
    let set = env.map(|v| (v, v.trim().parse::<usize>().ok().filter(|n| *n > 0)));
    if let Some((v, None)) = set {
        tracing::warn!("TOKIO_WORKER_THREADS={v:?} is not a positive number; one worker per core");
    }
    set.and_then(|(_, n)| n).unwrap_or(cores.max(1))
}

/// A multi-thread runtime with [`async_workers`] workers for this machine.
///
/// # Errors
/// The runtime's threads cannot be started.
pub fn async_runtime() -> io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let env = std::env::var("TOKIO_WORKER_THREADS").ok();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(async_workers(env.as_deref(), cores))
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::async_workers;

    #[test]
    fn one_worker_per_core_unless_the_environment_says() {
        assert_eq!(async_workers(None, 1), 1);
        assert_eq!(async_workers(None, 2), 2);
        assert_eq!(async_workers(None, 0), 1);
        assert_eq!(async_workers(Some("1"), 2), 1);
        assert_eq!(async_workers(Some(" 3 "), 8), 3);
        for bad in ["0", "", "two", "-1"] {
            assert_eq!(async_workers(Some(bad), 8), 8, "{bad:?}");
        }
    }
}
