//! A settled batch: counted as delivered, or handed to the sink's dead
//! letter (with its own outbox entry) or, without one, logged with why.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::json;

use super::delivery::{Item, Shared, lane_of};

/// Counts `items` as delivered; the delay from change to delivery goes to
/// the histogram.
pub(super) fn delivered<'a>(shared: &Shared, items: impl Iterator<Item = &'a Item>) {
    let metrics = shared
        .metrics
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let now = SystemTime::now();
    for i in items {
        shared.stats.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &metrics {
            m.delivered(
                &shared.name,
                now.duration_since(i.n.time).unwrap_or_default(),
            );
        }
    }
}

/// Hands refused notifications to the dead-letter sink, or logs each one
/// with the reason when there is none. Nothing is dropped silently.
pub(super) async fn dead_letter(shared: &Shared, batch: &[Item], reason: &str) {
    let to = shared.dead_letter.to.as_ref().map(|(dl, ..)| dl.as_str());
    shared.report(batch, super::DeliveryEvent::DeadLettered { reason, to });
    shared
        .stats
        .dead_lettered
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    for item in batch {
        let n = &item.n;
        match &shared.dead_letter.to {
            Some((dl, lanes, stats)) => {
                let mut copy = (**n).clone();
                copy.dead_letter = Some(json!({
                    "sink": shared.name,
                    "id": n.id(&shared.name),
                    "reason": reason,
                }));
                // With a state dir the dead letter gets its own outbox entry,
                // submitted before this sink's ack: a crash loses neither.
                copy.durable = n.durable.as_ref().map(|d| super::notification::Durable {
                    outbox: d.outbox.clone(),
                    ready: d.outbox.enqueue(dl, &copy.id(dl), &copy.to_stored()),
                });
                let lane = &lanes[lane_of(&copy.uid, lanes.len())];
                stats.depth.fetch_add(1, Ordering::Relaxed);
                let sent = lane
                    .send(Item {
                        n: Arc::new(copy),
                        encoded: None,
                    })
                    .await;
                if sent.is_err() {
                    stats.depth.fetch_sub(1, Ordering::Relaxed);
                    tracing::error!(
                        sink = shared.name,
                        dead_letter = dl,
                        id = n.id(&shared.name),
                        object = n.subject(),
                        kind = n.gvk.kind,
                        "notification not delivered and the dead-letter sink is closed: {reason}"
                    );
                }
            }
            None => tracing::error!(
                sink = shared.name,
                id = n.id(&shared.name),
                object = n.subject(),
                kind = n.gvk.kind,
                change = %n.change,
                resource_version = n.resource_version,
                "notification not delivered: {reason}"
            ),
        }
    }
}
