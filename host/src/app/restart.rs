//! What a restart and a long run need besides the watches: the deletions
//! made while herald was down (with a state dir), and the periodic resync
//! through dedup.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::change::ChangeEvent;
use crate::source::{Sources, WatchSpec};

/// Restart catch-up for one watch (with a state dir), for what the first
/// list cannot say: once it is in, objects herald notified that are gone
/// are reported deleted, with the last state herald knew. (New and changed
/// objects come from the first list itself, in order with the watch; see
/// `pipeline::Stages`.) No live event can race these: a deleted uid never
/// comes back.
pub(super) async fn catch_up(
    sources: Sources,
    store: std::sync::Arc<crate::state::StateStore>,
    tx: mpsc::WeakSender<ChangeEvent>,
    spec: WatchSpec,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let watch = spec.id();
    tokio::select! {
        ready = sources.until_ready(Some(&watch)) => if !ready { return },
        _ = stop.wait_for(|s| *s) => return,
    }
    let Some(cached) = sources.cache().get(&watch) else {
        return;
    };
    // Reading the state dir blocks: off the async runtime.
    let (st, w) = (store.clone(), watch.clone());
    let gone = tokio::task::spawn_blocking(move || {
        let objects = cached.filter(|_| true);
        let listed: std::collections::HashSet<&str> =
            objects.iter().filter_map(|o| o.uid()).collect();
        st.objects(&w)
            .and_then(|stored| crate::state::vanished(&w, stored, &listed))
    })
    .await;
    let gone = match gone {
        Ok(Ok(gone)) => gone,
        Ok(Err(e)) => {
            tracing::error!(watch, "catch-up: reading the state: {e}");
            return;
        }
        Err(e) => {
            tracing::error!(watch, "catch-up: {e}");
            return;
        }
    };
    tracing::info!(
        watch,
        deleted = gone.len(),
        "caught up with deletions made while herald was down"
    );
    // From now on an object this watch's first list has that the state
    // does not know is new (a restart reports it as added).
    if let Err(e) = store
        .submit_nonblocking(vec![crate::state::Op::Listed {
            watch: watch.clone(),
        }])
        .await
    {
        tracing::error!(watch, "catch-up: recording the first list: {e}");
    }
    let wanted = spec.events.contains(&crate::change::ChangeType::Deleted);
    let Some(tx) = tx.upgrade() else { return };
    for ev in gone {
        if !wanted {
            // Not notified (`events` leaves deletions out): forgotten.
            drop(
                store.submit_nonblocking(vec![crate::state::Op::RemoveObject {
                    uid: ev.uid().to_string(),
                }]),
            );
            continue;
        }
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}

/// Every `every`, offers every cached object to the pipeline again; the dedup
/// stage drops each one whose state was notified already, so a resync finds
/// what a lost event hid without flooding the sinks with what they have.
pub(super) async fn resync(
    cache: crate::cache::Cache,
    tx: mpsc::WeakSender<ChangeEvent>,
    every: Duration,
    dedup: Option<std::sync::Arc<crate::dedup::Dedup>>,
    metrics: crate::metrics::Metrics,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(tx) = tx.upgrade() else { return };
        let mut offered = 0;
        let mut skipped = 0u64;
        for t in cache.all() {
            let gvk = crate::change::Gvk::from(&t.resource);
            for o in t.filter(|_| true) {
                // Dedup holds this very version: unchanged since it was
                // notified (or seeded), not worth a trip through the pipeline.
                if let (Some(d), Some(uid), Some(rv)) = (
                    &dedup,
                    o.uid(),
                    o.resource_version().and_then(|rv| rv.parse().ok()),
                ) && d.holds(uid, rv)
                {
                    metrics.dedup_dropped(&t.watch);
                    skipped += 1;
                    if skipped.is_multiple_of(4096) {
                        tokio::task::yield_now().await;
                    }
                    continue;
                }
                // The stored bytes: dedup hashes them, nothing parses them.
                let mut ev = ChangeEvent::of_docs(
                    crate::change::ChangeType::Modified,
                    gvk.clone(),
                    crate::change::Doc::stored(o),
                    None,
                )
                .with_watch(t.watch.clone());
                ev.resync = true;
                if tx.send(ev).await.is_err() {
                    return;
                }
                offered += 1;
            }
        }
        drop(tx);
        tracing::debug!(
            objects = offered,
            unchanged = skipped,
            "resync offered every cached object dedup does not hold at its version"
        );
    }
}
