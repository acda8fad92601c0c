//! The async runtime herald runs on (`herald run`, `demo`, `record`).
//!
//! herald's event path has threads of its own (the pipeline's intake and
//! committer, one chain worker per core for each watch with plugins), so the
//! async runtime — watch decoding, sinks, the API — gets half the cores, at
//! least one. On a 2-core machine one worker costs about a quarter less CPU
//! than two: a second worker is woken to steal each task for no gain
//! (BENCHMARKS.md). `TOKIO_WORKER_THREADS` sets the count, as with any tokio
//! program. Plugin compiles at a reload hand the worker's other tasks on (see
//! `reload::off_the_runtime`), so one worker never pauses the rest.

use std::io;

/// The runtime's worker count: `TOKIO_WORKER_THREADS` when it is a positive
/// number, else half of `cores`, at least one.
pub fn async_workers(env: Option<&str>, cores: usize) -> usize {
    env.and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or((cores / 2).max(1))
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
    fn half_the_cores_at_least_one_unless_the_environment_says() {
        assert_eq!(async_workers(None, 1), 1);
        assert_eq!(async_workers(None, 2), 1);
        assert_eq!(async_workers(None, 3), 1);
        assert_eq!(async_workers(None, 8), 4);
        assert_eq!(async_workers(Some("3"), 2), 3);
        assert_eq!(async_workers(Some(" 2 "), 8), 2);
        for bad in ["0", "", "two", "-1"] {
            assert_eq!(async_workers(Some(bad), 8), 4, "{bad:?}");
        }
    }
}
