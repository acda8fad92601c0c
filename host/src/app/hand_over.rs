//! Where each outcome goes after the pipeline: the tap, the metrics, then
//! the HA gate or the sinks.

use std::ops::ControlFlow;

use crate::metrics::Metrics;
use crate::pipeline::{Deliver, Delivery, Outcome};
use crate::plugin::Fate;

use super::Tap;

/// Where each outcome of the pipeline goes: the tap, the metrics, then the
/// HA gate or the sinks.
pub(super) fn hand_over(
    metrics: Metrics,
    delivery: Delivery,
    gate: Option<crate::ha::GateSender>,
    mut tap: Option<Tap>,
) -> impl FnMut(Outcome) -> ControlFlow<()> + Send + 'static {
    let mut drops = crate::plugin::DropLog::new(std::time::Duration::from_secs(10));
    let mut counters: std::collections::HashMap<String, crate::metrics::WatchCounters> =
        Default::default();
    move |o| {
        if let Some(tap) = tap.as_mut() {
            tap(&o);
        }
        // Looked up by reference: a clone would touch every counter's Arc.
        if !counters.contains_key(&o.watch) {
            counters.insert(o.watch.clone(), metrics.watch_counters(&o.watch));
        }
        let count = &counters[&o.watch];
        count.event(o.change);
        metrics.touch(&o.watch);
        if let Fate::Dropped { plugin, reason } = &o.fate {
            metrics.plugin_dropped(plugin, &o.watch);
            let object = || match &o.namespace {
                Some(ns) => format!("{ns}/{}", o.name),
                None => o.name.clone(),
            };
            drops.dropped(plugin, &o.watch, object, reason);
        }
        let fate = match &o.fate {
            Fate::Deliver { .. } => "delivered",
            Fate::Dropped { .. } => "dropped",
            Fate::DeadLetter { .. } => "dead_letter",
        };
        if let Some(tx) = &gate {
            count.outcome(fate);
            return match tx.send(o) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            };
        }
        let object = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            let ns = o.namespace.as_deref().unwrap_or_default();
            (
                o.watch.clone(),
                format!("{ns}/{}", o.name),
                o.change.as_str(),
            )
        });
        let sent = delivery.deliver(o, None);
        let fate = if sent == 0 && fate == "delivered" {
            "unrouted"
        } else {
            fate
        };
        if let Some((watch, object, change)) = object {
            tracing::debug!(
                watch,
                object,
                change,
                fate,
                sinks = sent,
                "change handed to the sinks"
            );
        }
        count.outcome(fate);
        ControlFlow::Continue(())
    }
}
