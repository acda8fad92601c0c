//! Locks that survive a panic elsewhere: herald's shared state is replaced
//! whole under its locks, so a panic cannot leave it half-made, and one
//! failed task must not take every other one down with a poisoned lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking the data even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
