//! The decisions ring: what herald decided about each recent change, for
//! `GET /api/v1/decisions` and the status page. Per change: the dedup
//! verdict, each plugin's verdict, reason, edits and time, where the sinks
//! came from, the sinks left out and why, and each target sink's delivery
//! state and attempts, dead letters included. The words are `herald
//! explain`'s.
//!
//! Bounded by bytes (`decisions.maxBytes`): the oldest decisions go first.
//! Written by the pipeline's threads (a duplicate at admission, the rest
//! at the commit, both in the pipeline) and by the sinks' lanes (through
//! [`crate::sink::DeliveryLog`]); one short lock per write.

mod filter;
mod weight;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize, Serializer};

pub use filter::Filter;

use crate::change::{ChangeType, Gvk};
use crate::plugin::PluginStep;
use crate::sink::{DeliveryEvent, DeliveryLog};

/// The `decisions:` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionsConfig {
    /// Memory the ring may take; the oldest decisions go first. `0` turns
    /// it off. Default: 16MiB (about 14,000 decisions of a two-plugin chain).
    /// Example: `64MiB`
    #[serde(default = "default_max_bytes")]
    pub max_bytes: bytesize::ByteSize,
}

impl Default for DecisionsConfig {
    fn default() -> Self {
        DecisionsConfig {
            max_bytes: default_max_bytes(),
        }
    }
}

fn default_max_bytes() -> bytesize::ByteSize {
    bytesize::ByteSize::mib(16)
}

/// Where a change ended.
pub mod fate {
    /// Dedup had notified this state already.
    pub const DUPLICATE: &str = "duplicate";
    /// A plugin (or its `onError: drop`) dropped it.
    pub const DROPPED: &str = "dropped";
    /// No sink takes it (none wanted, or their namespaces leave it out).
    pub const UNROUTED: &str = "unrouted";
    /// Handed to its sinks.
    pub const DELIVERED: &str = "delivered";
    /// A plugin failed on it (`onError` route) or a sink refused it.
    pub const DEAD_LETTER: &str = "dead-letter";
    /// Every fate, for the query's error message.
    pub const ALL: [&str; 5] = [DUPLICATE, DROPPED, UNROUTED, DELIVERED, DEAD_LETTER];
}

/// A sink left out, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// The sink.
    pub sink: String,
    /// Why (not a sink, or the namespace is not among its `namespaces`).
    pub reason: String,
}

/// One target sink's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkDelivery {
    /// The sink.
    pub sink: String,
    /// `queued`, `retrying`, `delivered` or `dead-lettered`.
    pub state: &'static str,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where a refused notification went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
}

/// What herald decided about one change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Its place in the ring (rising).
    pub id: u64,
    /// When herald saw the change.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// The watch that saw it.
    pub watch: String,
    /// Added, modified or deleted.
    pub change: ChangeType,
    /// `apiVersion` of the object.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// `metadata.namespace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// One of [`fate`].
    pub fate: &'static str,
    /// The step that decided it: `dedup`, `plugin`, `routing` or `delivery`.
    pub step: &'static str,
    /// Why, in `herald explain`'s words.
    pub reason: String,
    /// The dedup verdict.
    pub dedup: &'static str,
    /// Each plugin's verdict, in chain order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginStep>,
    /// Where the sinks came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<&'static str>,
    /// The route verdicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// Sinks wanted but left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
    /// Each target sink's delivery.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkDelivery>,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

impl Decision {
    /// A decision about the object `gvk` `namespace`/`name` (`uid`) seen by
    /// `watch`, with nothing decided yet (fate delivered, no sinks).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        watch: &str,
        change: ChangeType,
        gvk: &Gvk,
        namespace: Option<&str>,
        name: &str,
        uid: &str,
        resource_version: &str,
        time: SystemTime,
    ) -> Decision {
        let api_version = if gvk.group.is_empty() {
            gvk.version.clone()
        } else {
            format!("{}/{}", gvk.group, gvk.version)
        };
        Decision {
            id: 0,
            time,
            watch: watch.to_string(),
            change,
            api_version,
            kind: gvk.kind.clone(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            uid: uid.to_string(),
            resource_version: resource_version.to_string(),
            fate: fate::DELIVERED,
            step: "delivery",
            reason: String::new(),
            dedup: "new state: not notified before",
            plugins: Vec::new(),
            routing: None,
            routes: Vec::new(),
            left_out: Vec::new(),
            sinks: Vec::new(),
        }
    }

    /// What the ring counts for it, in bytes: its slot and what it holds
    /// on the heap.
    pub fn weight(&self) -> usize {
        weight::SLOT + weight::of(self)
    }

    /// Applies one sink's report.
    fn apply(&mut self, sink: &str, event: DeliveryEvent<'_>) {
        let i = match self.sinks.iter().position(|s| s.sink == sink) {
            Some(i) => i,
            // A dead letter's sink: not a target when the decision was made.
            None => {
                self.sinks.push(SinkDelivery {
                    sink: sink.to_string(),
                    state: "queued",
                    attempts: 0,
                    error: None,
                    dead_letter: None,
                });
                self.sinks.len() - 1
            }
        };
        let s = &mut self.sinks[i];
        match event {
            DeliveryEvent::Retrying { reason } => {
                s.state = "retrying";
                s.attempts += 1;
                s.error = Some(reason.to_string());
            }
            DeliveryEvent::Delivered => {
                s.state = "delivered";
                s.attempts += 1;
            }
            DeliveryEvent::DeadLettered { reason, to } => {
                s.state = "dead-lettered";
                s.attempts += 1;
                s.error = Some(reason.to_string());
                s.dead_letter = to.map(str::to_string);
                self.fate = fate::DEAD_LETTER;
                self.step = "delivery";
                self.reason = match to {
                    Some(dl) => format!("sink {sink} refused it ({reason}); dead letter to {dl}"),
                    None => format!("sink {sink} refused it ({reason}); logged, no dead letter"),
                };
            }
        }
    }
}

/// The ring. Cheap to clone; every clone is the same ring.
#[derive(Clone, Debug)]
pub struct Decisions {
    inner: Arc<Mutex<Ring>>,
}

#[derive(Debug)]
struct Ring {
    /// Oldest first, each with what it holds on the heap; ids rise by one.
    entries: VecDeque<(Decision, usize)>,
    next_id: u64,
    /// What the entries hold on the heap.
    bytes: usize,
    max: usize,
}

impl Ring {
    /// What the ring takes: its slots (spare ones too) and what they hold.
    fn total(&self) -> usize {
        self.bytes + self.entries.capacity() * weight::SLOT
    }

    /// Takes the oldest out until the ring fits its bound; they are
    /// returned to be dropped after the lock is let go.
    #[must_use]
    fn evict(&mut self) -> Vec<(Decision, usize)> {
        let mut gone = Vec::new();
        while self.total() > self.max
            && let Some(old) = self.entries.pop_front()
        {
            self.bytes -= old.1;
            gone.push(old);
        }
        if self.entries.is_empty() {
            // Nothing fits: give the slots back too.
            self.entries.shrink_to_fit();
        }
        gone
    }

    fn index(&self, id: u64) -> Option<usize> {
        let first = self.entries.front()?.0.id;
        let i = usize::try_from(id.checked_sub(first)?).ok()?;
        (i < self.entries.len()).then_some(i)
    }
}

impl Decisions {
    /// A ring of at most `max_bytes` (0: keeps nothing).
    pub fn new(max_bytes: u64) -> Decisions {
        Decisions {
            inner: Arc::new(Mutex::new(Ring {
                entries: VecDeque::new(),
                next_id: 1,
                bytes: 0,
                max: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            })),
        }
    }

    /// Whether it keeps anything (`maxBytes` is not 0).
    pub fn enabled(&self) -> bool {
        self.ring().max > 0
    }

    /// A new bound (a reload); the oldest go until it holds.
    pub fn set_max_bytes(&self, max_bytes: u64) {
        let mut ring = self.ring();
        ring.max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let gone = ring.evict();
        drop(ring);
        drop(gone);
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `d`; returns its id (0 when the ring is off or `d` alone is
    /// bigger than it).
    pub fn record(&self, mut d: Decision) -> u64 {
        let mut ring = self.ring();
        if ring.max == 0 {
            return 0;
        }
        let id = ring.next_id;
        ring.next_id += 1;
        d.id = id;
        let w = weight::of(&d);
        ring.bytes += w;
        ring.entries.push_back((d, w));
        let gone = ring.evict();
        let kept = !ring.entries.is_empty();
        drop(ring);
        drop(gone);
        if kept { id } else { 0 }
    }

    /// Decisions that match `filter`, newest first, at most `filter.limit`.
    pub fn query(&self, filter: &Filter) -> Vec<Decision> {
        let ring = self.ring();
        ring.entries
            .iter()
            .rev()
            .map(|(d, _)| d)
            .filter(|d| filter.matches(d))
            .take(filter.limit)
            .cloned()
            .collect()
    }

    /// How many decisions are kept, and the bytes the ring counts for
    /// them (what `maxBytes` bounds).
    pub fn kept(&self) -> (usize, usize) {
        let ring = self.ring();
        (ring.entries.len(), ring.total())
    }
}

impl DeliveryLog for Decisions {
    fn report(&self, trace: u64, sink: &str, event: DeliveryEvent<'_>) {
        self.report_all(&[trace], sink, event);
    }

    fn report_all(&self, traces: &[u64], sink: &str, event: DeliveryEvent<'_>) {
        let mut guard = self.ring();
        let ring = &mut *guard;
        for trace in traces {
            // None: evicted before its delivery ended.
            if let Some(i) = ring.index(*trace) {
                let (d, w) = &mut ring.entries[i];
                d.apply(sink, event);
                let now = weight::of(d);
                let before = std::mem::replace(w, now);
                ring.bytes = ring.bytes - before + now;
            }
        }
        let gone = ring.evict();
        drop(guard);
        drop(gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(ns: &str, name: &str) -> Decision {
        let gvk = Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
        };
        let mut d = Decision::new(
            "configmap.v1.core",
            ChangeType::Added,
            &gvk,
            Some(ns),
            name,
            &format!("uid-{name}"),
            "7",
            SystemTime::now(),
        );
        d.sinks.push(SinkDelivery {
            sink: "hook".into(),
            state: "queued",
            attempts: 0,
            error: None,
            dead_letter: None,
        });
        d
    }

    #[test]
    fn the_oldest_go_once_the_bytes_are_spent_and_reports_find_theirs() {
        let one = decision("a", "x").weight() as u64;
        let max = one * 10 + one / 2;
        let ring = Decisions::new(max);
        let ids: Vec<u64> = (0..25)
            .map(|i| ring.record(decision("a", &format!("cm-{i:02}"))))
            .collect();
        let (kept, bytes) = ring.kept();
        assert!(bytes as u64 <= max, "{bytes} bytes of at most {max}");
        // Spare slots count too: fewer than ten fit, but not none.
        assert!((5..=10).contains(&kept), "{kept}");
        let all = ring.query(&Filter::default());
        assert_eq!(all.len(), kept);
        assert_eq!(all.first().map(|d| d.name.as_str()), Some("cm-24"));
        let oldest = format!("cm-{:02}", 25 - kept);
        assert_eq!(all.last().map(|d| d.name.as_str()), Some(oldest.as_str()));
        // A report for an evicted decision is ignored; a kept one is updated.
        ring.report(ids[0], "hook", DeliveryEvent::Delivered);
        ring.report(
            ids[24],
            "hook",
            DeliveryEvent::Retrying { reason: "HTTP 503" },
        );
        ring.report(
            ids[24],
            "hook",
            DeliveryEvent::DeadLettered {
                reason: "HTTP 400",
                to: Some("dl"),
            },
        );
        ring.report(ids[24], "dl", DeliveryEvent::Delivered);
        let d = &ring.query(&Filter::default())[0];
        assert_eq!((d.fate, d.step), (fate::DEAD_LETTER, "delivery"));
        assert_eq!(d.sinks[0].attempts, 2);
        assert_eq!(d.sinks[0].dead_letter.as_deref(), Some("dl"));
        assert_eq!(
            (d.sinks[1].sink.as_str(), d.sinks[1].state),
            ("dl", "delivered")
        );
        assert!(ring.kept().1 as u64 <= max);
        ring.set_max_bytes(0);
        assert_eq!(ring.kept(), (0, 0));
        assert_eq!(ring.record(decision("a", "y")), 0, "off");
    }
}
