//! Helpers for tests that compare a client's view with the simulator's.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// Retries `check` every 20 ms until it returns `Ok`; panics with `what`
/// and the last error after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("{what}: not reached in {timeout:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// `Ok` when `got` equals `want`; else the first few differing entries.
pub fn same_state<K: Ord + Debug, V: PartialEq + Debug>(
    want: &BTreeMap<K, V>,
    got: &BTreeMap<K, V>,
) -> Result<(), String> {
    if want == got {
        return Ok(());
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .take(3)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, v)| want.get(*k) != Some(v))
        .take(3)
        .collect();
    Err(format!(
        "cache differs: missing/stale {missing:?}, extra/stale {extra:?}"
    ))
}
