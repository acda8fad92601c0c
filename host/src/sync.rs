//! Locks that survive a panic elsewhere, and blocking calls made safe on the
//! async runtime.
//!
//! Herald's shared state is replaced whole under its locks, so a panic
//! cannot leave it half-made, and one failed task must not take every other
//! one down with a poisoned lock.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking the data even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f`, which may block (loading and compiling plugins: a second for a
/// Rust plugin, tens of seconds for an uncached JavaScript or Python one; a
/// wait for room in a full queue), with the async runtime's other tasks
/// handed to another thread first, so watches, sinks and the API go on
/// meanwhile, even with one runtime worker (`TOKIO_WORKER_THREADS=1`).
/// Without a multi-thread runtime (a thread of its own, a test), runs it
/// here.
pub(crate) fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Sends `value` on the bounded `tx`; when it is full, waits for room with
/// the runtime's other tasks handed on first ([`off_the_runtime`]). The
/// value comes back when the receiver is gone.
pub(crate) fn send_or_wait<T>(tx: &SyncSender<T>, value: T) -> Result<(), T> {
    match tx.try_send(value) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(value)) => off_the_runtime(|| tx.send(value)).map_err(|e| e.0),
        Err(TrySendError::Disconnected(value)) => Err(value),
    }
}

/// A multi-thread runtime with one worker: where a task that blocks it
/// would stall every other task (tests).
#[cfg(test)]
pub(crate) fn one_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

#[cfg(test)]
mod tests {
    use super::{off_the_runtime, one_worker_runtime};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// How often a task that ticks every 5 ms ticked while another task on
    /// the runtime's one worker blocked for 300 ms, handed off the runtime
    /// or not.
    fn ticks_during_a_block(handed_off: bool) -> u32 {
        let rt = one_worker_runtime();
        let ticks = Arc::new(AtomicU32::new(0));
        rt.block_on(async {
            let t = ticks.clone();
            tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = ticks.load(Ordering::Relaxed);
            tokio::spawn(async move {
                let block = || std::thread::sleep(Duration::from_millis(300));
                if handed_off {
                    off_the_runtime(block)
                } else {
                    block()
                }
            })
            .await
            .expect("blocking task");
            ticks.load(Ordering::Relaxed) - before
        })
    }

    #[test]
    fn with_one_runtime_worker_other_tasks_go_on_while_one_blocks() {
        let on = ticks_during_a_block(true);
        assert!(
            on >= 10,
            "the other task ticked {on} times in 300 ms (about 60 expected)"
        );
        let stalled = ticks_during_a_block(false);
        assert!(
            stalled <= 2,
            "a block on the worker let the other task tick {stalled} times"
        );
    }

    #[test]
    fn without_a_multi_thread_runtime_it_runs_in_place() {
        assert_eq!(off_the_runtime(|| 7), 7);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(rt.block_on(async { off_the_runtime(|| 8) }), 8);
    }
}
