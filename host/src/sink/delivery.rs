//! Delivery, the same for every sink: a bounded queue per lane, lanes that
//! each deliver in order (an object always maps to the same lane, so a
//! later change of an object never overtakes an earlier one), batching where
//! the sink batches, retries with exponential backoff and jitter until the
//! maximum age, `Retry-After` honoured, dead letters for what is refused or
//! given up, and a sink disabled by 410 Gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Serialize;
use tokio::sync::mpsc;

use super::batch::Batch;
use super::config::RetryConfig;
use super::http::Attempt;
use super::log::LogOut;
use super::nats::Nats;
use super::notification::Notification;
use super::settle::{dead_letter, delivered};
use super::slack::{self, Slack};
use super::webhook::Webhook;

/// One queued notification, with its encoding when the sink pre-encodes
/// (batch: to count bytes as it fills a request).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The notification.
    pub n: Arc<Notification>,
    /// Pre-encoded bytes, for batch sinks.
    pub encoded: Option<Arc<[u8]>>,
}

/// The kind-specific part of a sink.
#[derive(Debug)]
pub(crate) enum Service {
    /// One POST per notification.
    Webhook(Webhook),
    /// Block Kit messages.
    Slack(Slack),
    /// Batches.
    Batch(Batch),
    /// Standard output.
    Log(LogOut),
    /// NATS JetStream (boxed: its connection state is the largest).
    Nats(Box<Nats>),
}

impl Service {
    /// (most items per attempt, most bytes per attempt, longest wait to fill).
    fn collect(&self) -> (usize, usize, Duration) {
        match self {
            Service::Webhook(_) | Service::Log(_) => (1, usize::MAX, Duration::ZERO),
            Service::Slack(s) => match s.group_window {
                Some(w) => (slack::MAX_GROUP, usize::MAX, w),
                None => (1, usize::MAX, Duration::ZERO),
            },
            // `maxBytes` bounds the whole body: the items, the commas
            // between them and the envelope around them. A batch waits up
            // to its interval to fill.
            Service::Batch(b) => (
                b.max_objects,
                b.max_bytes.saturating_sub(b.overhead()),
                b.interval,
            ),
            // What is queued already, without waiting: the publishes of a
            // group are pipelined, their acks awaited together.
            Service::Nats(n) => (n.max_in_flight, usize::MAX, Duration::ZERO),
        }
    }

    /// Whether a group holds at most one notification per object: a group
    /// whose members are sent at once and may fail one by one (NATS) would
    /// otherwise let a retried earlier change land after a later one.
    fn one_per_object(&self) -> bool {
        matches!(self, Service::Nats(_))
    }

    /// Batch sinks send items encoded when they were queued; a dead letter
    /// arrives without that encoding (its source does not know the target's
    /// format), so it is encoded here.
    fn prepare(&self, mut item: Item) -> Item {
        if let Service::Batch(b) = self
            && item.encoded.is_none()
        {
            item.encoded = Some(Arc::from(b.encode_item(&item.n)));
        }
        item
    }

    async fn send(&self, items: &[Item]) -> Attempt {
        match self {
            Service::Webhook(w) => w.send(&items[0].n).await,
            Service::Slack(s) => {
                let group: Vec<&Notification> = items.iter().map(|i| &*i.n).collect();
                s.send(&group).await
            }
            Service::Batch(b) => {
                let group: Vec<&Notification> = items.iter().map(|i| &*i.n).collect();
                let enc: Vec<&[u8]> = items
                    .iter()
                    .map(|i| i.encoded.as_deref().unwrap_or_default())
                    .collect();
                b.send(&group, &enc).await
            }
            Service::Log(l) => l.write(&items[0].n).await,
            Service::Nats(n) => {
                let group: Vec<&Notification> = items.iter().map(|i| &*i.n).collect();
                n.send(&group).await
            }
        }
    }
}

/// What a sink has done, for the admin API and metrics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Notifications queued and not yet taken by a lane.
    pub depth: AtomicU64,
    /// Notifications taken by a lane and not yet settled.
    pub in_flight: AtomicU64,
    /// Delivered.
    pub delivered: AtomicU64,
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Refused or given up, and sent to the dead letter (or the log).
    pub dead_lettered: AtomicU64,
    /// Set by a 410 Gone.
    pub disabled: AtomicBool,
    /// The last error, for the admin API.
    pub last_error: std::sync::Mutex<Option<String>>,
}

/// A sink's figures at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Queued, not yet taken.
    pub depth: u64,
    /// Queue capacity.
    pub capacity: usize,
    /// Waiting in the outbox because the queue was full (`whenFull: spill`).
    pub spilled: u64,
    /// Being delivered.
    pub in_flight: u64,
    /// Delivered.
    pub delivered: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Sent to the dead letter.
    pub dead_lettered: u64,
    /// Disabled by 410 Gone.
    pub disabled: bool,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Where refused notifications go.
#[derive(Clone, Debug)]
pub(crate) struct DeadLetter {
    /// The dead-letter sink's lanes, if one is configured.
    pub to: Option<(String, Vec<mpsc::Sender<Item>>, Arc<Stats>)>,
}

/// Everything a lane needs, shared by the lanes of one sink.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The sink's name.
    pub name: String,
    /// What it is.
    pub service: Service,
    /// Retries.
    pub retry: RetryConfig,
    /// Figures.
    pub stats: Arc<Stats>,
    /// Where refused notifications go.
    pub dead_letter: DeadLetter,
    /// Delivery latency histogram, once metrics are attached.
    pub metrics: Arc<std::sync::RwLock<Option<crate::metrics::Metrics>>>,
    /// Told each attempt's result (the decisions ring).
    pub log: Option<Arc<dyn super::DeliveryLog>>,
}

impl Shared {
    /// Tells the delivery log what happened to each traced item of `batch`.
    pub(super) fn report(&self, batch: &[Item], event: super::DeliveryEvent<'_>) {
        if let Some(log) = &self.log {
            let traces: Vec<u64> = batch
                .iter()
                .map(|i| i.n.trace)
                .filter(|t| *t != 0)
                .collect();
            if !traces.is_empty() {
                log.report_all(&traces, &self.name, event);
            }
        }
    }
}

/// The lane a uid delivers through: stable for the life of the process.
pub(crate) fn lane_of(uid: &str, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

/// Runs one lane until its queue is closed and empty.
pub(crate) async fn lane(shared: Arc<Shared>, mut rx: mpsc::Receiver<Item>) {
    let (max_items, max_bytes, linger) = shared.service.collect();
    let one_per_object = shared.service.one_per_object();
    let mut carry: Option<Item> = None;
    let stats = &shared.stats;
    loop {
        let first = match carry.take() {
            Some(i) => i,
            None => match rx.recv().await {
                Some(i) => {
                    stats.depth.fetch_sub(1, Ordering::Relaxed);
                    shared.service.prepare(i)
                }
                None => break,
            },
        };
        let mut bytes = first.encoded.as_ref().map_or(0, |e| e.len());
        let mut batch = vec![first];
        if max_items > 1 {
            // One timer for the batch's whole wait, not one per item.
            let deadline = tokio::time::sleep(linger);
            tokio::pin!(deadline);
            while batch.len() < max_items {
                let next = if linger.is_zero() {
                    rx.try_recv().ok()
                } else {
                    tokio::select! {
                        biased;
                        i = rx.recv() => i,
                        () = &mut deadline => None,
                    }
                };
                let Some(item) = next else { break };
                stats.depth.fetch_sub(1, Ordering::Relaxed);
                let item = shared.service.prepare(item);
                if one_per_object && batch.iter().any(|b| b.n.uid == item.n.uid) {
                    carry = Some(item);
                    break;
                }
                // The item and the comma before it.
                let size = item.encoded.as_ref().map_or(0, |e| e.len()) + 1;
                if bytes + size > max_bytes {
                    carry = Some(item);
                    break;
                }
                bytes += size;
                batch.push(item);
            }
        }
        let n = batch.len() as u64;
        shared.stats.in_flight.fetch_add(n, Ordering::Relaxed);
        deliver(&shared, &batch).await;
        shared.stats.in_flight.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The waits between attempts: exponential from `initialBackoff`, with
/// jitter, never longer than `maxBackoff`.
fn backoff(retry: &RetryConfig) -> impl Iterator<Item = Duration> + use<> {
    let (initial, max) = (retry.initial_backoff, retry.max_backoff);
    // backon's jitter adds up to the delay itself, so the delay grows to half
    // of `maxBackoff` and the jittered wait stays within it.
    ExponentialBuilder::default()
        .with_min_delay(initial)
        .with_max_delay((max / 2).max(initial))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .map(move |d| d.clamp(initial, max))
}

/// Delivers one batch: retries until delivered, refused, gone or too old.
/// Delivers one batch, once its outbox entries are on disk (with a state
/// dir), then acknowledges them in the outbox: delivered or dead-lettered,
/// the sink is done with them.
async fn deliver(shared: &Shared, batch: &[Item]) {
    for i in batch {
        if let Some(d) = &i.n.durable
            && let Err(e) = d.ready.clone().await
        {
            tracing::error!(
                sink = shared.name,
                id = i.n.id(&shared.name),
                "the outbox write failed ({e}); delivering without it"
            );
        }
    }
    attempt_until_settled(shared, batch).await;
    for i in batch {
        if let Some(d) = &i.n.durable {
            // Not awaited: an ack lost in a crash means one redelivery with
            // the same id.
            d.outbox.ack(&shared.name, &i.n.id(&shared.name));
        }
    }
}

async fn attempt_until_settled(shared: &Shared, batch: &[Item]) {
    let stats = &shared.stats;
    let first_try = Instant::now();
    let mut backoff = backoff(&shared.retry);
    loop {
        if stats.disabled.load(Ordering::Relaxed) {
            return dead_letter(
                shared,
                batch,
                "the sink is disabled: its endpoint answered 410 Gone",
            )
            .await;
        }
        match shared.service.send(batch).await {
            Attempt::Delivered => {
                shared.report(batch, super::DeliveryEvent::Delivered);
                return delivered(shared, batch.iter());
            }
            Attempt::Partial { refused } => {
                let is_refused = |i: usize| refused.iter().any(|(r, _)| *r == i);
                for (_, item) in batch.iter().enumerate().filter(|(i, _)| !is_refused(*i)) {
                    shared.report(std::slice::from_ref(item), super::DeliveryEvent::Delivered);
                }
                delivered(
                    shared,
                    batch
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !is_refused(*i))
                        .map(|(_, item)| item),
                );
                if let Some((_, reason)) = refused.first() {
                    *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(reason.clone());
                }
                for (i, reason) in &refused {
                    dead_letter(shared, std::slice::from_ref(&batch[*i]), reason).await;
                }
                return;
            }
            Attempt::Retry { after, reason } => {
                // `Retry-After` is honoured as given, floored at
                // `initialBackoff` so a receiver that keeps saying "now"
                // (0, or a date in the past) does not get a tight loop.
                // Without it, the exponential backoff applies.
                let wait = match after {
                    Some(a) => a.max(shared.retry.initial_backoff),
                    None => backoff.next().unwrap_or(shared.retry.max_backoff),
                };
                if first_try.elapsed() + wait > shared.retry.max_age {
                    let why = format!(
                        "gave up after {:?} (retry.maxAge {:?}): {reason}",
                        first_try.elapsed(),
                        shared.retry.max_age
                    );
                    return dead_letter(shared, batch, &why).await;
                }
                stats.retries.fetch_add(1, Ordering::Relaxed);
                shared.report(batch, super::DeliveryEvent::Retrying { reason: &reason });
                *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                tracing::warn!(
                    sink = shared.name,
                    notifications = batch.len(),
                    retry_in = ?wait,
                    retry_after = after.is_some(),
                    "delivery failed, will retry: {reason}"
                );
                tokio::time::sleep(wait).await;
            }
            Attempt::Rejected { reason } => {
                *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                return dead_letter(shared, batch, &reason).await;
            }
            Attempt::Gone { reason } => {
                stats.disabled.store(true, Ordering::Relaxed);
                *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                tracing::error!(
                    sink = shared.name,
                    "THE ENDPOINT IS GONE ({reason}); sink {} is disabled until herald restarts or its config changes; its notifications go to the dead letter",
                    shared.name
                );
                return dead_letter(shared, batch, &reason).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_within_max() {
        let retry = RetryConfig {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            max_age: Duration::from_secs(300),
        };
        let waits: Vec<Duration> = backoff(&retry).take(1000).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= retry.initial_backoff && *w <= retry.max_backoff)
        );
        assert!(waits[0] < Duration::from_millis(400), "{:?}", waits[0]);
        let late: std::collections::BTreeSet<Duration> = waits[10..].iter().copied().collect();
        assert!(late.len() > 100, "jitter goes on at the cap");
        assert!(late.iter().all(|w| *w >= Duration::from_secs(1)));
    }

    #[test]
    fn an_object_always_maps_to_the_same_lane() {
        for lanes in 1..8 {
            for uid in ["a", "b", "4f7c-11", ""] {
                let l = lane_of(uid, lanes);
                assert!(l < lanes);
                assert_eq!(l, lane_of(uid, lanes));
            }
        }
        let spread: std::collections::BTreeSet<usize> =
            (0..100).map(|i| lane_of(&format!("uid-{i}"), 4)).collect();
        assert_eq!(spread.len(), 4, "uids spread over every lane");
    }
}
